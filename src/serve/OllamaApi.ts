/**
 * Ollama's REST API (ollama/ollama `docs/api.md`, `api/types.go`) in front of LocalLLM: version,
 * tags, ps, show, pull (NDJSON progress), delete, chat, generate, embed and the legacy embeddings.
 * Streams are NDJSON (on by default), errors `{"error": …}` with Ollama's status codes, the final
 * `done` record carries counts and durations in nanoseconds, `keep_alive` sets how long the model
 * stays loaded afterwards. Model names are llmspell specs.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { Completion, GenerateEvent, GenerateRequest, LoadedModel, ModelInfo, PullProgress, ToolCall } from "../domain/Types.js"
import { toApiFailure } from "./ApiTerms.js"
import { decodeBody, HttpFailure, json, ndjson, readJson } from "./Http.js"
import {
  ChatBody,
  EmbedBody,
  EmbeddingsBody,
  GenerateBody,
  ModelBody,
  OLLAMA_TERMS,
  PullBody,
  refusedOllamaField,
  responseFormat,
  sampling,
  toImages,
  toMessages,
  toTools
} from "./OllamaRequest.js"
import { checkedBody } from "./RequestFields.js"
import {
  checkSpec,
  checkWritable,
  keepAliveSeconds,
  noteTokens,
  type RouteContext,
  type RouteEnv,
  servedName,
  started
} from "./Routes.js"

/**
 * The Ollama version whose API this one implements (its fields, `think`, `tools`, `/api/embed`),
 * reported by `/api/version`: clients gate features on it (tools need ≥ 0.3, `think` ≥ 0.9), so
 * llmspell's own version there (0.x) would switch them off. llmspell's version is the `llmspell` field.
 */
export const OLLAMA_API_LEVEL = "0.12.6"

const ns = (ms: number | undefined) => Math.max(0, Math.round((ms ?? 0) * 1e6))

const now = () => new Date().toISOString()

const doneReason = (completion: Completion) => (completion.finishReason === "length" ? "length" : "stop")

/** The counts and durations (ns) of Ollama's final record. */
const doneFields = (completion: Completion) => {
  const t = completion.timings
  const firstToken = t.timeToFirstTokenMs ?? t.totalMs
  return {
    done_reason: doneReason(completion),
    total_duration: ns(t.totalMs),
    load_duration: ns(t.loadMs),
    // Ollama's semantics (api/types.go): the whole prompt, and the part read from the cache
    prompt_eval_count: completion.usage.promptTokens,
    ...(completion.usage.cachedPromptTokens !== undefined ? { prompt_eval_cached_count: completion.usage.cachedPromptTokens } : {}),
    prompt_eval_duration: ns(Math.max(0, firstToken - t.loadMs)),
    eval_count: completion.usage.completionTokens,
    eval_duration: ns(Math.max(0, t.totalMs - firstToken))
  }
}

const wireToolCall = (call: ToolCall, index: number) => ({ id: call.id, function: { index, name: call.name, arguments: call.params } })

const fail = (message: string) => Effect.fail(new HttpFailure(400, message))

const fromEither = <A>(either: Either.Either<A, string>) => Either.match(either, { onLeft: fail, onRight: Effect.succeed })

/** Sets the model's keep-alive after a request that gave one (0: unload now; negative: keep loaded). */
const applyKeepAlive = (ctx: RouteContext, spec: string, seconds: number | undefined) =>
  seconds === undefined ? Effect.void : ctx.llm.keepAlive(spec, seconds).pipe(Effect.ignore)

/** The Ollama routes, over a RouteContext. */
export const routes = (ctx: RouteContext): HttpRouter.HttpRouter<never, never> => {
  const body = <A, I>(schema: Schema.Schema<A, I>) => Effect.flatMap(readJson(ctx), decodeBody(schema))

  /** A chat or generate body: every field and option checked against the table, then decoded. */
  const generationBody = <A, I>(schema: Schema.Schema<A, I>) =>
    Effect.flatMap(readJson(ctx), (raw) => checkedBody(schema, refusedOllamaField(raw))(raw))

  /** Errors as Ollama sends them: `{"error": "…"}` with the status code, in Ollama's field names. */
  const handle = <E>(effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, RouteEnv>) =>
    Effect.catchAll(effect, (e) => {
      const failure = toApiFailure(OLLAMA_TERMS)(e)
      return Effect.succeed(json({ error: failure.message }, failure.status, failure.headers))
    })

  /** A chat or generate request run through LocalLLM; `render` turns events into Ollama records. */
  const generation = (
    spec: string,
    request: GenerateRequest,
    stream: boolean,
    keepAlive: number | undefined,
    render: {
      readonly delta: (event: Exclude<GenerateEvent, { _tag: "Finish" }>, index: number) => unknown
      readonly done: (completion: Completion) => unknown
      readonly whole: (completion: Completion) => unknown
    }
  ) =>
    Effect.gen(function*() {
      yield* ctx.admission.enter
      const events = yield* started(ctx.llm.generate(spec, request))
      const finish = (completion: Completion) =>
        Effect.zipRight(noteTokens(completion.usage.totalTokens), applyKeepAlive(ctx, spec, keepAlive))
      if (!stream) {
        const all = yield* Stream.runCollect(events)
        const last = [...all].at(-1)
        if (last?._tag !== "Finish") return yield* new HttpFailure(500, "the generation ended without a completion")
        yield* finish(last.completion)
        return json(render.whole(last.completion))
      }
      let calls = 0
      return ndjson(events.pipe(
        Stream.mapEffect((event) =>
          event._tag === "Finish"
            ? Effect.as(finish(event.completion), render.done(event.completion))
            : Effect.succeed(render.delta(event, event._tag === "ToolCall" ? calls++ : 0))
        ),
        Stream.mapError(toApiFailure(OLLAMA_TERMS))
      ))
    })

  /**
   * A request with no messages or prompt: Ollama loads the model (or with keep_alive 0 unloads it);
   * a model that does not exist is a 404 either way, as from Ollama, not a `done` record.
   */
  const loadOnly = (spec: string, keepAlive: number | undefined, shape: (reason: string) => unknown) =>
    Effect.gen(function*() {
      if (keepAlive === 0) {
        yield* ctx.llm.info(spec)
        yield* ctx.llm.unload(spec)
      } else {
        yield* ctx.llm.load(spec, keepAlive)
      }
      return json(shape(keepAlive === 0 ? "unload" : "load"))
    })

  const chat = handle(Effect.gen(function*() {
    const b = yield* generationBody(ChatBody)
    const spec = yield* checkSpec(ctx, b.model)
    const keepAlive = yield* fromEither(keepAliveSeconds(b.keep_alive))
    const created = now()
    if (b.messages === undefined || b.messages.length === 0) {
      return yield* loadOnly(spec, keepAlive, (reason) => ({
        model: spec,
        created_at: created,
        message: { role: "assistant", content: "" },
        done_reason: reason,
        done: true
      }))
    }
    const messages = yield* fromEither(toMessages(b.messages))
    const format = yield* fromEither(responseFormat(b.format))
    const tools = toTools(b.tools)
    const request: GenerateRequest = {
      messages,
      ...sampling(b.options),
      ...(tools !== undefined ? { tools } : {}),
      ...(format !== undefined ? { responseFormat: format } : {}),
      ...(b.think !== undefined ? { reasoning: b.think !== false } : {})
    }
    return yield* generation(spec, request, b.stream ?? true, keepAlive, {
      delta: (event, index) => ({
        model: spec,
        created_at: now(),
        message: event._tag === "TextDelta"
          ? { role: "assistant", content: event.text }
          : event._tag === "ReasoningDelta"
          ? { role: "assistant", content: "", thinking: event.text }
          : { role: "assistant", content: "", tool_calls: [wireToolCall(event.call, index)] },
        done: false
      }),
      done: (completion) => ({
        model: spec,
        created_at: now(),
        message: { role: "assistant", content: "" },
        done: true,
        ...doneFields(completion)
      }),
      whole: (completion) => ({
        model: spec,
        created_at: created,
        message: {
          role: "assistant",
          content: completion.text,
          ...(completion.reasoning !== undefined ? { thinking: completion.reasoning } : {}),
          ...(completion.toolCalls !== undefined && completion.toolCalls.length > 0
            ? { tool_calls: completion.toolCalls.map(wireToolCall) }
            : {})
        },
        done: true,
        ...doneFields(completion)
      })
    })
  }))

  const generate = handle(Effect.gen(function*() {
    const b = yield* generationBody(GenerateBody)
    const spec = yield* checkSpec(ctx, b.model)
    const keepAlive = yield* fromEither(keepAliveSeconds(b.keep_alive))
    const images = b.images != null && b.images.length > 0 ? yield* fromEither(toImages(b.images, "images")) : []
    // raw, suffix and template were refused with the other fields (RequestFields.OLLAMA_FIELDS):
    // each changes what the model is given, and an answer to another prompt than the one sent is worse than an error
    const created = now()
    if (b.prompt === undefined || b.prompt === "") {
      return yield* loadOnly(spec, keepAlive, (reason) => ({ model: spec, created_at: created, response: "", done_reason: reason, done: true }))
    }
    const format = yield* fromEither(responseFormat(b.format))
    const request: GenerateRequest = {
      messages: [
        ...(b.system !== undefined && b.system !== "" ? [{ role: "system" as const, content: b.system }] : []),
        { role: "user" as const, content: b.prompt, ...(images.length > 0 ? { images } : {}) }
      ],
      ...sampling(b.options),
      ...(format !== undefined ? { responseFormat: format } : {}),
      ...(b.think !== undefined ? { reasoning: b.think !== false } : {})
    }
    return yield* generation(spec, request, b.stream ?? true, keepAlive, {
      delta: (event) => ({
        model: spec,
        created_at: now(),
        response: event._tag === "TextDelta" ? event.text : "",
        ...(event._tag === "ReasoningDelta" ? { thinking: event.text } : {}),
        done: false
      }),
      done: (completion) => ({ model: spec, created_at: now(), response: "", done: true, ...doneFields(completion) }),
      whole: (completion) => ({
        model: spec,
        created_at: created,
        response: completion.text,
        ...(completion.reasoning !== undefined ? { thinking: completion.reasoning } : {}),
        done: true,
        ...doneFields(completion)
      })
    })
  }))

  const embed = handle(Effect.gen(function*() {
    const b = yield* body(EmbedBody)
    const spec = yield* checkSpec(ctx, b.model)
    const keepAlive = yield* fromEither(keepAliveSeconds(b.keep_alive))
    const inputs = typeof b.input === "string" ? [b.input] : b.input
    const started = Date.now()
    yield* ctx.admission.enter
    const result = yield* ctx.llm.embed(spec, inputs)
    yield* noteTokens(result.promptTokens)
    yield* applyKeepAlive(ctx, spec, keepAlive)
    const vectors = b.dimensions !== undefined ? result.vectors.map((v) => normalize(v.slice(0, b.dimensions))) : result.vectors
    return json({
      model: spec,
      embeddings: vectors,
      total_duration: ns(Date.now() - started),
      load_duration: 0,
      prompt_eval_count: result.promptTokens
    })
  }))

  const embeddings = handle(Effect.gen(function*() {
    const b = yield* body(EmbeddingsBody)
    const spec = yield* checkSpec(ctx, b.model)
    const keepAlive = yield* fromEither(keepAliveSeconds(b.keep_alive))
    yield* ctx.admission.enter
    const result = yield* ctx.llm.embed(spec, [b.prompt])
    yield* noteTokens(result.promptTokens)
    yield* applyKeepAlive(ctx, spec, keepAlive)
    return json({ embedding: result.vectors[0] ?? [] })
  }))

  const tags = handle(Effect.gen(function*() {
    // Ollama's ListModelResponse has no capabilities: none are asked for it
    const list = yield* ctx.llm.list("all", { capabilities: false })
    return json({
      models: list.models.map((m) => ({
        name: servedName(m),
        model: servedName(m),
        modified_at: m.modifiedAt ?? new Date(0).toISOString(),
        size: m.sizeBytes,
        digest: m.sha256 ?? m.digest?.replace(/^sha256:/, "") ?? "",
        details: {
          parent_model: "",
          format: m.format ?? "gguf",
          family: m.family ?? "",
          families: m.family !== undefined ? [m.family] : null,
          parameter_size: m.parameterSize ?? "",
          quantization_level: m.quantization ?? ""
        }
      }))
    })
  }))

  const ps = handle(Effect.gen(function*() {
    const loaded = yield* ctx.llm.ps("all")
    return json({ models: loaded.map(psEntry) })
  }))

  const show = handle(Effect.gen(function*() {
    const b = yield* body(ModelBody)
    const spec = yield* checkSpec(ctx, b.model ?? b.name)
    const info = yield* ctx.llm.info(spec)
    return json(showReply(info))
  }))

  const pull = handle(Effect.gen(function*() {
    yield* checkWritable(ctx, "pull")
    const b = yield* body(PullBody)
    const spec = yield* checkSpec(ctx, b.model ?? b.name)
    const progress = yield* started(ctx.llm.pull(spec))
    const records = progress.pipe(Stream.mapConcat(pullRecords))
    if (b.stream === false) {
      yield* Stream.runDrain(records)
      return json({ status: "success" })
    }
    return ndjson(records)
  }))

  const remove = handle(Effect.gen(function*() {
    yield* checkWritable(ctx, "delete")
    const b = yield* body(ModelBody)
    const spec = yield* checkSpec(ctx, b.model ?? b.name)
    yield* ctx.llm.remove(spec)
    return HttpServerResponse.empty({ status: 200 })
  }))

  return HttpRouter.empty.pipe(
    HttpRouter.get("/", Effect.succeed(HttpServerResponse.text("Ollama is running"))),
    HttpRouter.get("/api/version", Effect.succeed(json({ version: OLLAMA_API_LEVEL, llmspell: ctx.version }))),
    HttpRouter.get("/api/tags", tags),
    HttpRouter.get("/api/ps", ps),
    HttpRouter.post("/api/show", show),
    HttpRouter.post("/api/pull", pull),
    HttpRouter.del("/api/delete", remove),
    HttpRouter.post("/api/chat", chat),
    HttpRouter.post("/api/generate", generate),
    HttpRouter.post("/api/embed", embed),
    HttpRouter.post("/api/embeddings", embeddings)
  ) as unknown as HttpRouter.HttpRouter<never, never>
}

const normalize = (v: ReadonlyArray<number>) => {
  const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0))
  return norm > 0 ? v.map((x) => x / norm) : [...v]
}

/** A far-off date for "kept loaded" (what Ollama reports for a negative keep_alive). */
const FOREVER = "2318-11-01T00:00:00.000Z"

// ps says of a loaded model what tags says of it (the backend's digest, family and quantization)
const psEntry = (m: LoadedModel) => ({
  name: servedName(m),
  model: servedName(m),
  size: m.sizeBytes ?? 0,
  digest: m.digest?.replace(/^sha256:/, "") ?? "",
  details: {
    parent_model: "",
    format: "gguf",
    family: m.family ?? "",
    families: m.family !== undefined ? [m.family] : null,
    parameter_size: "",
    quantization_level: m.quantization ?? ""
  },
  expires_at: m.expiresAt ?? FOREVER,
  size_vram: m.vramBytes ?? 0,
  ...(m.contextLength !== undefined ? { context_length: m.contextLength } : {})
})

const showReply = (info: ModelInfo) => {
  const arch = info.architecture ?? "unknown"
  const details = info.details as Record<string, unknown>
  const text = (key: string) => (typeof details[key] === "string" ? details[key] as string : "")
  const modelInfo: Record<string, unknown> = { "general.architecture": arch }
  if (info.parameterCount !== undefined) modelInfo["general.parameter_count"] = info.parameterCount
  const numbers: Array<[string, number | undefined]> = [
    ["context_length", info.contextLength],
    ["embedding_length", info.embeddingLength],
    ["block_count", info.layers],
    ["attention.head_count", info.heads],
    ["attention.head_count_kv", info.headsKv],
    ["vocab_size", info.vocabularySize]
  ]
  for (const [key, value] of numbers) if (value !== undefined) modelInfo[`${arch}.${key}`] = value
  return {
    license: "",
    modelfile: "",
    parameters: text("parameters"),
    template: text("template"),
    details: {
      parent_model: "",
      format: info.backend === "gguf" ? "gguf" : text("format") || "gguf",
      family: arch,
      families: [arch],
      parameter_size: info.parameterSize ?? "",
      quantization_level: info.quantization ?? ""
    },
    model_info: modelInfo,
    // unknown (an Ollama older than its capabilities field, an openai_compatible model) stays
    // unknown, as in /v1/models: a guessed ["completion"] would tell a client the model cannot see
    ...(info.capabilities !== undefined ? { capabilities: info.capabilities } : {}),
    modified_at: new Date().toISOString()
  }
}

/** One llmspell pull event → Ollama's progress records (`pulling manifest`, per file, `success`). */
const pullRecords = (p: PullProgress): Array<unknown> => {
  switch (p.phase) {
    case "resolving":
    case "waiting":
      return [{ status: "pulling manifest" }]
    case "downloading":
      return p.files.filter((f) => f.status === "downloading" || f.status === "done").map((f) => ({
        status: `pulling ${f.name}`,
        digest: f.name,
        ...(f.totalBytes !== undefined ? { total: f.totalBytes } : {}),
        completed: f.completedBytes
      }))
    case "verifying":
      return [{ status: "verifying sha256 digest" }]
    case "done":
      return [{ status: "writing manifest" }, { status: "success" }]
  }
}

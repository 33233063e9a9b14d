/**
 * The live OllamaBackend: one `ollama` client per configured Ollama server, reached only through
 * `ollamaClient.ts` (typed errors, spans, aborts) and translated to the shared types by
 * `ollamaMapping.ts`. Instances are `OllamaInstance`s: a `Backend` plus load/unload and
 * raw-prompt completion.
 *
 * `verify`: Ollama checks each blob's sha256 itself when it pulls it, and keeps its store to
 * itself, so there is nothing for llmspell to re-hash. `verify(model)` checks the model exists
 * (ModelNotFound otherwise) and reports ok with no files; `verify()` reports ok with no files.
 *
 * Every reply is decoded with the Schemas of `ollamaMapping.ts` before it is used: a malformed
 * entry of a model list is skipped with one warning (logged; in `status`, in its warnings), a
 * malformed reply or streamed record is a BackendError. `maxTokens` is enforced here as well as
 * sent as `num_predict`: a server that ignores it is cut off (the request aborted) and the
 * completion finishes with reason `length`.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import type { AbortableAsyncIterator, Message, Ollama, Tool } from "ollama"
import type { OllamaInstanceConfig } from "../../domain/ConfigSchema.js"
import { hasImages } from "../../domain/Images.js"
import { BackendError, type BackendUnavailable, ContextOverflow, ToolChoiceViolated, UnsupportedOperation, UsageError } from "../../domain/Errors.js"
import { errorToJson } from "../../domain/Failure.js"
import type { BackendStatus, Embeddings, GenerateEvent, LoadedModel, PullProgress, ToolCall, ToolChoice } from "../../domain/Types.js"
import {
  OllamaBackendFactory,
  type OllamaCompleteError,
  type OllamaInstance,
  type OllamaModelError
} from "../../services/OllamaBackend.js"
import * as OllamaClient from "./ollamaClient.js"
import * as Mapping from "./ollamaMapping.js"

/** Status probes answer quickly even when timeout_seconds is long: a hung server is "unavailable", not a hang. */
const STATUS_TIMEOUT_MS = 10_000

/**
 * A streamed record is about one token, and no tokenizer makes tokens this long on average: text
 * longer than `maxTokens` × this is cut off too, so a server cannot send huge records instead.
 */
const MAX_CHARS_PER_TOKEN = 64

/** Prompts shorter than this are never checked against the context: no model runs with a smaller one. */
const CONTEXT_CHECK_FROM = 128

/** Builds the instance for one configured server. */
export const make = (instance: OllamaInstanceConfig): Effect.Effect<OllamaInstance, BackendUnavailable> =>
  Effect.gen(function*() {
    const client = yield* OllamaClient.make(instance)
    const origin = { instance: instance.name }
    const probeMs = Math.min(STATUS_TIMEOUT_MS, instance.timeoutSeconds * 1000)

    const malformed = (operation: string, what: string, detail: string) =>
      new BackendError({
        backend: "ollama",
        instance: instance.name,
        operation,
        reason: `the server's ${what} is not what Ollama sends (${detail})`,
        suggestion: `check that ${instance.baseUrl} is an Ollama server (and that any proxy in front of it passes its replies through)`
      })

    /** Decodes a reply; a mismatch is a BackendError naming the route. */
    const decode = <A, I>(schema: Schema.Schema<A, I>, operation: string, what: string) => {
      const run = Mapping.decodeReply(schema)
      return (value: unknown): Effect.Effect<A, BackendError> =>
        Either.match(run(value), {
          onLeft: (detail) => Effect.fail(malformed(operation, what, detail)),
          onRight: Effect.succeed
        })
    }

    /** A model list (`/api/tags`, `/api/ps`): the good entries, and one warning for the bad ones. */
    const modelList = (operation: string, route: string, fetch: (c: Ollama) => Promise<unknown>, timeoutMs?: number) =>
      client.call(operation, fetch, timeoutMs !== undefined ? { timeoutMs } : undefined).pipe(
        Effect.flatMap(decode(Mapping.ModelListReply, operation, `${route} reply`)),
        Effect.map((reply) => {
          const { models, skipped } = Mapping.decodeModelEntries(reply.models)
          return { models, warning: skipped.length > 0 ? Mapping.skippedWarning(route, skipped) : undefined }
        })
      )

    // Each model's /api/show capabilities, asked once per model for this backend's lifetime (and
    // again after a pull or remove under its name): a request needing one the model lacks is
    // refused before it is sent. A failed show is not kept (the request itself then reports it).
    const specOf = (model: string) => OllamaClient.pullSpecFor(instance, Mapping.normalizeName(model))
    const capabilityCache = new Map<string, ReadonlyArray<string> | undefined>()
    const remember = (model: string, show: Mapping.ShowReply) => {
      capabilityCache.set(Mapping.normalizeName(model), Mapping.showCapabilities(show))
      return show
    }
    const list = modelList("list", "/api/tags", (c) => c.list()).pipe(
      Effect.tap(({ warning }) =>
        warning !== undefined ? Effect.logWarning(`${instance.name}: ${warning}`) : Effect.void
      ),
      // /api/tags carries no capabilities: a model's come from the show answers this backend
      // already holds (never a show per listed model)
      Effect.map(({ models }) =>
        models.map((m) => {
          const local = Mapping.toLocalModel(origin, m)
          const capabilities = capabilityCache.get(Mapping.normalizeName(m.name))
          return capabilities !== undefined ? { ...local, capabilities } : local
        })
      )
    )

    const capabilitiesOf = (model: string): Effect.Effect<ReadonlyArray<string> | undefined> => {
      const key = Mapping.normalizeName(model)
      return capabilityCache.has(key)
        ? Effect.succeed(capabilityCache.get(key))
        : client.callModel("generate", (c) => c.show({ model }), { model }).pipe(
          Effect.flatMap(decode(Mapping.ShowReply, "generate", "/api/show reply")),
          Effect.map((show) => Mapping.showCapabilities(remember(model, show))),
          Effect.orElseSucceed(() => undefined)
        )
    }
    const forget = (model: string) => Effect.sync(() => capabilityCache.delete(Mapping.normalizeName(model)))

    const sizeOf = (model: string) =>
      list.pipe(
        Effect.map((models) => models.find((m) => m.name === Mapping.normalizeName(model))?.sizeBytes),
        Effect.orElseSucceed(() => undefined)
      )

    const status: Effect.Effect<BackendStatus> = Effect.gen(function*() {
      const version = yield* Effect.either(
        client.call("status", (c) => c.version(), { timeoutMs: probeMs }).pipe(
          Effect.flatMap(decode(Mapping.VersionReply, "status", "/api/version reply"))
        )
      )
      if (Either.isLeft(version)) {
        return {
          instance: instance.name,
          backend: "ollama" as const,
          endpoint: instance.baseUrl,
          available: false,
          error: errorToJson(version.left),
          loaded: [],
          details: {},
          warnings: []
        }
      }
      const [tags, ps] = yield* Effect.all([
        Effect.either(modelList("status", "/api/tags", (c) => c.list(), probeMs)),
        Effect.either(modelList("status", "/api/ps", (c) => c.ps(), probeMs))
      ], { concurrency: 2 })
      const warnings = [
        ...(Either.isLeft(tags) ? [`could not list models: ${tags.left.message}`] : []),
        ...(Either.isLeft(ps) ? [`could not list loaded models: ${ps.left.message}`] : []),
        ...(Either.isRight(tags) && tags.right.warning !== undefined ? [tags.right.warning] : []),
        ...(Either.isRight(ps) && ps.right.warning !== undefined ? [ps.right.warning] : [])
      ]
      return Mapping.toStatus(
        { ...origin, url: instance.baseUrl, timeoutSeconds: instance.timeoutSeconds },
        version.right.version,
        Either.isRight(tags) ? tags.right.models : undefined,
        Either.isRight(ps) ? ps.right.models : undefined,
        warnings
      )
    })

    const pull = (model: string, options?: { readonly quantization?: string }): Stream.Stream<PullProgress, UsageError | OllamaModelError> =>
      options?.quantization !== undefined
        ? Stream.fail(
          new UsageError({
            reason: "--quantization does not apply to Ollama models",
            suggestion: "Ollama names quantizations in the tag: pull e.g. `llama3.2:3b-instruct-q8_0@ollama`"
          })
        )
        : Stream.unwrap(
          Effect.map(Clock.currentTimeMillis, (startedAt) => {
            const state = Mapping.initialPull(origin, model, startedAt)
            const decodeRecord = decode(Mapping.WirePullRecord, "pull", "pull progress record")
            return client.stream("pull", (c) => c.pull({ model, stream: true }), { model }).pipe(
              Stream.mapEffect((raw) =>
                Effect.flatMap(decodeRecord(raw), (record) =>
                  Effect.map(Clock.currentTimeMillis, (now) => Mapping.stepPull(state, record, now)))
              )
            )
          })
        )

    /** The context the server loaded `model` with (`/api/ps`), when it says. */
    const contextLength = (model: string) =>
      modelList("generate", "/api/ps", (c) => c.ps()).pipe(
        Effect.map(({ models }) => {
          const entry = models.find((m) => m.name === Mapping.normalizeName(model))
          return typeof entry?.context_length === "number" && entry.context_length > 0 ? entry.context_length : undefined
        }),
        Effect.orElseSucceed(() => undefined)
      )

    // Ollama cuts a prompt longer than the context and answers anyway (#17889, the runner's
    // "truncating input prompt … new=<num_ctx>"): a cut prompt counts exactly num_ctx tokens, so a
    // prompt_eval_count that reaches the loaded context is a ContextOverflow. Below this count no
    // context is that small, and /api/ps is not asked.
    const checkContext = (model: string, promptTokens: number | undefined): Effect.Effect<void, ContextOverflow> =>
      promptTokens === undefined || promptTokens < CONTEXT_CHECK_FROM
        ? Effect.void
        : Effect.flatMap(contextLength(model), (contextSize) =>
          contextSize !== undefined && promptTokens >= contextSize
            ? Effect.fail(
              new ContextOverflow({ model: Mapping.normalizeName(model), backend: "ollama", instance: instance.name, promptTokens, contextSize })
            )
            : Effect.void)

    // `required` and a named tool, which Ollama does not enforce (#8421, #17921): the answer is
    // checked, and one without a call (or with another tool's) is a ToolChoiceViolated.
    const checkToolChoice = (
      model: string,
      choice: ToolChoice | undefined,
      calls: ReadonlyArray<ToolCall>
    ): Effect.Effect<void, ToolChoiceViolated> => {
      if (choice === undefined || choice === "auto" || choice === "none") return Effect.void
      const named = typeof choice === "object" ? choice.tool : undefined
      const ok = calls.length > 0 && (named === undefined || calls.every((c) => c.name === named))
      return ok ? Effect.void : Effect.fail(
        new ToolChoiceViolated({
          model: Mapping.normalizeName(model),
          backend: "ollama",
          toolChoice: named !== undefined ? `{ tool: ${named} }` : "required",
          answered: calls.length === 0 ? "without a tool call" : `with a call to ${calls.map((c) => c.name).join(", ")}`
        })
      )
    }

    // Our GenerateEvents from a chat or generate stream: reasoning and text deltas, whole tool
    // calls, then Finish from the `done` record (after the context and toolChoice checks).
    // With `maxTokens`, a delta beyond it (a server ignoring num_predict) ends the stream here:
    // the Finish says `length`, and ending the stream closes its scope, which aborts the request.
    const inference = (
      operation: string,
      model: string,
      request: {
        readonly maxTokens?: number | undefined
        readonly toolChoice?: ToolChoice | undefined
        readonly parallelToolCalls?: boolean | undefined
      },
      open: (c: Ollama) => Promise<AbortableAsyncIterator<object>>
    ): Stream.Stream<GenerateEvent, OllamaCompleteError> =>
      Stream.unwrap(
        Effect.map(Clock.currentTimeMillis, (startedAt) => {
          const maxTokens = request.maxTokens
          let text = ""
          let reasoning = ""
          const toolCalls: Array<ToolCall> = []
          let deltas = 0
          let firstTokenMs: number | undefined
          const maxChars = maxTokens !== undefined ? maxTokens * MAX_CHARS_PER_TOKEN : Infinity
          const decodeRecord = decode(Mapping.WireInferenceRecord, operation, "streamed record")
          const newId = () => `call_${randomBytes(8).toString("hex")}`
          return client.stream(operation, open, { model }).pipe(
            Stream.mapEffect(decodeRecord),
            Stream.mapConcatEffect((record) =>
              Effect.flatMap(Clock.currentTimeMillis, (now) => {
                const events: Array<GenerateEvent> = []
                const delta = record.message?.content ?? record.response ?? ""
                const thought = record.message?.thinking ?? ""
                const size = delta.length + thought.length
                if (size > 0 && !record.done && maxTokens !== undefined &&
                  (deltas >= maxTokens || text.length + reasoning.length + size > maxChars))
                {
                  const cut: Mapping.WireDone = {
                    done_reason: "length",
                    eval_count: deltas,
                    total_duration: (now - startedAt) * 1_000_000
                  }
                  events.push({
                    _tag: "Finish",
                    completion: Mapping.toCompletion(origin, model, text, cut, firstTokenMs, { reasoning, toolCalls })
                  })
                  return Effect.succeed(events)
                }
                if (size > 0) {
                  firstTokenMs ??= now - startedAt
                  deltas++
                }
                if (thought.length > 0) {
                  reasoning += thought
                  events.push({ _tag: "ReasoningDelta", text: thought })
                }
                if (delta.length > 0) {
                  text += delta
                  events.push({ _tag: "TextDelta", text: delta })
                }
                const calls = Mapping.toToolCalls(record.message?.tool_calls ?? [], newId)
                // parallelToolCalls false, which Ollama cannot enforce: the answer is checked, and
                // a second call is refused before any call reaches the caller (the calls of an
                // answer come whole in one record)
                if (request.parallelToolCalls === false && toolCalls.length + calls.length > 1) {
                  const names = [...toolCalls, ...calls].map((c) => c.name)
                  return Effect.fail(
                    new ToolChoiceViolated({
                      model: Mapping.normalizeName(model),
                      backend: "ollama",
                      toolChoice: "one call per answer (parallel tool calls off)",
                      answered: `with ${names.length} calls (${names.join(", ")})`
                    })
                  )
                }
                for (const call of calls) {
                  toolCalls.push(call)
                  events.push({ _tag: "ToolCall", call })
                }
                if (!record.done) return Effect.succeed(events)
                return checkContext(model, record.prompt_eval_count).pipe(
                  // a forced call the token limit cut is a `length` finish (marked incomplete by LocalLLM), not a violation
                  Effect.zipRight(record.done_reason === "length" ? Effect.void : checkToolChoice(model, request.toolChoice, toolCalls)),
                  Effect.as([
                    ...events,
                    {
                      _tag: "Finish" as const,
                      completion: Mapping.toCompletion(origin, model, text, record, firstTokenMs, { reasoning, toolCalls })
                    }
                  ])
                )
              })
            ),
            Stream.takeUntil((event) => event._tag === "Finish")
          )
        })
      )

    const embed = (model: string, inputs: ReadonlyArray<string>) =>
      inputs.length === 0
        ? Effect.succeed<Embeddings>({ model: Mapping.normalizeName(model), backend: "ollama", instance: instance.name, dimensions: 0, vectors: [], promptTokens: 0 })
        : client.callModel(
          "embed",
          // truncate: false — an input longer than the context is an error, not a silently cut vector
          (c) => c.embed({ model, input: [...inputs], truncate: false }),
          { model }
        ).pipe(
          // with truncate:false the server refuses an input over the context (HTTP 400)
          Effect.catchIf(
            (e) => e._tag === "BackendError" && /exceeds (the|maximum) context length/i.test(e.message),
            () =>
              Effect.flatMap(contextLength(model), (contextSize) =>
                Effect.fail(
                  new ContextOverflow({
                    model: Mapping.normalizeName(model),
                    backend: "ollama",
                    instance: instance.name,
                    operation: "embed",
                    ...(contextSize !== undefined ? { contextSize } : {})
                  })
                ))
          ),
          // a model that cannot embed fails on the server with a message that does not say so
          // plainly: when its capabilities are known and lack "embedding", that is the error (only
          // for the server's own refusal: an unreachable server or a proxy's page stays what it is)
          Effect.catchIf(
            (e): e is BackendError => e._tag === "BackendError" && /^HTTP [45]\d\d: /.test(e.reason),
            (e) =>
              Effect.flatMap(capabilitiesOf(model), (capabilities): Effect.Effect<never, BackendError | UnsupportedOperation> => {
                const lacked = Mapping.lackedCapability(model, capabilities, "embedding", "embed", specOf(model))
                return lacked !== undefined
                  ? Effect.fail(new UnsupportedOperation({ backend: "ollama", ...lacked }))
                  : Effect.fail(e)
              })
          ),
          Effect.flatMap(decode(Mapping.EmbedReply, "embed", "/api/embed reply")),
          Effect.flatMap((reply) =>
            reply.embeddings.length !== inputs.length
              ? Effect.fail(malformed("embed", "/api/embed reply", `${reply.embeddings.length} vectors for ${inputs.length} inputs`))
              : Effect.succeed<Embeddings>({
                model: Mapping.normalizeName(model),
                backend: "ollama",
                instance: instance.name,
                dimensions: reply.embeddings[0]?.length ?? 0,
                vectors: reply.embeddings,
                promptTokens: reply.prompt_eval_count ?? 0
              })
          )
        )

    const self: OllamaInstance = {
      name: instance.name,
      type: "ollama",
      status: status.pipe(Effect.withSpan("OllamaBackend.status", { attributes: { instance: instance.name } })),
      list,
      info: (model) =>
        Effect.all([
          client.callModel("info", (c) => c.show({ model }), { model }).pipe(
            Effect.flatMap(decode(Mapping.ShowReply, "info", "/api/show reply")),
            Effect.map((show) => remember(model, show))
          ),
          sizeOf(model)
        ], { concurrency: 2 }).pipe(Effect.map(([show, size]) => Mapping.toModelInfo(origin, model, show, size))),
      pull: (model, options) => Stream.ensuring(pull(model, options), forget(model)),
      remove: (model) =>
        Effect.gen(function*() {
          yield* forget(model)
          const freedBytes = yield* sizeOf(model)
          yield* client.callModel("remove", (c) => c.delete({ model }), { model })
          return {
            model: Mapping.normalizeName(model),
            backend: "ollama" as const,
            instance: instance.name,
            // Ollama owns its blob store and does not say which blobs a delete freed.
            removedFiles: [],
            ...(freedBytes !== undefined ? { freedBytes } : {})
          }
        }),
      verify: (model) =>
        model === undefined
          ? Effect.succeed({ ok: true, files: [] })
          : client.callModel("verify", (c) => c.show({ model }), { model }).pipe(Effect.as({ ok: true, files: [] })),
      generate: (model, request) => {
        const unsupported = Mapping.unsupportedField(request)
        if (unsupported !== undefined) {
          return Stream.fail(new UnsupportedOperation({ backend: "ollama", operation: unsupported.field, reason: unsupported.reason }))
        }
        const tools = Mapping.toOllamaTools(request)
        const format = Mapping.toOllamaFormat(request)
        const send = inference("generate", model, request, (c) =>
          c.chat({
            model,
            messages: Mapping.toOllamaMessages(request.messages) as unknown as Array<Message>,
            ...(tools !== undefined ? { tools: tools as unknown as Array<Tool> } : {}),
            ...(format !== undefined ? { format } : {}),
            ...(request.reasoning !== undefined ? { think: request.reasoning } : {}),
            options: Mapping.toOllamaOptions(request),
            stream: true
          }))
        // images for a model whose /api/show capabilities lack "vision": refused before the chat
        // is sent (Ollama would drop them or fail deep in the runner)
        return hasImages(request.messages)
          ? Stream.unwrap(Effect.map(capabilitiesOf(model), (capabilities) => {
            const lacked = Mapping.lackedCapability(model, capabilities, "vision", "images", specOf(model))
            return lacked !== undefined ? Stream.fail(new UnsupportedOperation({ backend: "ollama", ...lacked })) : send
          }))
          : send
      },
      embed,
      // Ollama has no rerank API (ollama/ollama#3368): refused at once, naming what can rank
      rerank: () => Effect.fail(Mapping.noRerank(instance.name)),
      complete: (model, request) =>
        inference("complete", model, request, (c) =>
          c.generate({
            model,
            prompt: request.prompt,
            ...(request.system !== undefined ? { system: request.system } : {}),
            options: Mapping.toOllamaOptions({ ...request, messages: [] }),
            stream: true
          })),
      load: (model, keepAlive) =>
        client.callModel(
          "load",
          (c) => c.generate({ model, prompt: "", stream: false, ...(keepAlive !== undefined ? { keep_alive: keepAlive } : {}) }),
          { model }
        ).pipe(
          Effect.zipRight(modelList("load", "/api/ps", (c) => c.ps())),
          Effect.map((ps): LoadedModel | undefined => {
            const entry = ps.models.find((m) => m.name === Mapping.normalizeName(model))
            return entry !== undefined ? Mapping.toLoadedModel(entry) : undefined
          })
        ),
      ps: modelList("ps", "/api/ps", (c) => c.ps()).pipe(
        Effect.map(({ models }) =>
          models.map((m): LoadedModel => ({
            ...Mapping.toLoadedModel(m),
            ...(typeof m.context_length === "number" && m.context_length > 0 ? { contextLength: m.context_length } : {}),
            device: typeof m.size_vram === "number" && m.size_vram > 0 ? "gpu" : "cpu"
          }))
        )
      ),
      // an empty generate request with keep_alive sets it (0 unloads, negative keeps loaded): only for a loaded model
      keepAlive: (model, seconds) =>
        modelList("keepAlive", "/api/ps", (c) => c.ps()).pipe(
          Effect.flatMap(({ models }) =>
            models.some((m) => m.name === Mapping.normalizeName(model))
              ? client.callModel("keepAlive", (c) => c.generate({ model, prompt: "", stream: false, keep_alive: seconds }), { model })
              : Effect.void
          ),
          Effect.asVoid
        ),
      unload: (model) =>
        client.callModel("unload", (c) => c.generate({ model, prompt: "", stream: false, keep_alive: 0 }), { model }).pipe(
          Effect.asVoid
        )
    }
    return self
  })

/** The live Ollama backend factory. */
export const layer: Layer.Layer<OllamaBackendFactory> = Layer.succeed(OllamaBackendFactory, { type: "ollama", make })

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
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import type { AbortableAsyncIterator, Message, Ollama, Tool } from "ollama"
import type { OllamaInstanceConfig } from "../../domain/ConfigSchema.js"
import { hasImages, unfetchedImageReason, unfetchedImageUrl } from "../../domain/Images.js"
import { BackendError, type BackendUnavailable, ContextOverflow, ToolChoiceViolated, UnsupportedOperation, UsageError } from "../../domain/Errors.js"
import { errorToJson } from "../../domain/Failure.js"
import type { BackendStatus, Embeddings, GenerateEvent, LoadedModel, LocalModel, PullProgress, ToolCall, ToolChoice } from "../../domain/Types.js"
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

/**
 * `/api/show` requests a listing keeps in flight at once, per Ollama server (the server reads each
 * model's manifest and GGUF header for it; a few at a time keep a 100-model listing short without
 * crowding the server).
 */
export const SHOW_CONCURRENCY = 4

/**
 * Shows one listing asks at most: a listing of thousands of models costs at most this many
 * requests (64 rounds of SHOW_CONCURRENCY), a count, not a clock; the models beyond are listed
 * without capabilities, and the next listing asks for them.
 */
export const SHOWS_PER_LISTING = 256

/** A model's capabilities as /api/show said them, and the digest of the model asked about (when known). */
interface KnownCapabilities {
  readonly digest: string | undefined
  readonly capabilities: ReadonlyArray<string> | undefined
}

/**
 * Why a listing's show gave nothing: the server answered an error (that model stays unknown), gave
 * no answer (the listing asks no more), or the listing that sent it went away (another asks again).
 */
type ShowMiss = "answered" | "no answer" | "abandoned"

/** Whether the server answered (an HTTP error, a missing model, a reply that is not a show): not a hang or an outage. */
const answered = (e: { readonly _tag: string; readonly reason?: string }): boolean =>
  e._tag === "ModelNotFound" ||
  (e._tag === "BackendError" && /^(HTTP \d|the server answered HTTP|the server's )/.test(e.reason ?? ""))

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

    // Each model's /api/show capabilities, kept for this backend's lifetime with the digest of the
    // model they were asked for (none when a request asked: /api/show does not say it). A request
    // needing one the model lacks is refused before it is sent; a listing re-asks a model whose
    // digest it has not seen (re-pulled, re-created). A failed show is not kept.
    const specOf = (model: string) => OllamaClient.pullSpecFor(instance, Mapping.normalizeName(model))
    const capabilityCache = new Map<string, KnownCapabilities>()
    const remember = (model: string, show: Mapping.ShowReply, digest?: string) => {
      capabilityCache.set(Mapping.normalizeName(model), { digest, capabilities: Mapping.showCapabilities(show) })
      return show
    }
    const askShow = (operation: string, model: string) =>
      client.callModel(operation, (c) => c.show({ model }), { model }).pipe(
        Effect.flatMap(decode(Mapping.ShowReply, operation, "/api/show reply"))
      )

    // A listing's shows: at most SHOW_CONCURRENCY at the server at once for this backend, however
    // many listings run; a show already in flight for the same model and digest is awaited, not
    // sent again (a page polling the list while Ollama is slow adds nothing). Bounds, none of them
    // a clock of its own: each show is one request under the instance's timeout_seconds, as
    // /api/tags is; the first show that gets no answer (timed out, refused, dropped) makes that
    // listing start no more, so a hung server costs one timeout, not one per model; a listing sends
    // at most SHOWS_PER_LISTING; interrupting the listing (Ctrl-C, a client gone) aborts the shows it sent.
    const showPermits = yield* Effect.makeSemaphore(SHOW_CONCURRENCY)
    const inFlight = new Map<string, Deferred.Deferred<ReadonlyArray<string> | undefined, ShowMiss>>()
    const sharedShow = (
      name: string,
      digest: string | undefined,
      go: () => boolean
    ): Effect.Effect<ReadonlyArray<string> | undefined, ShowMiss> =>
      Effect.suspend(() => {
        const key = `${name}\u0000${digest ?? ""}`
        const running = inFlight.get(key)
        if (running !== undefined) {
          // the listing that sent it went away or gave up: this one asks for itself
          return Deferred.await(running).pipe(
            Effect.catchIf((miss) => miss === "abandoned", () => sharedShow(name, digest, go))
          )
        }
        const done = Deferred.unsafeMake<ReadonlyArray<string> | undefined, ShowMiss>(FiberId.none)
        inFlight.set(key, done)
        const settle = (exit: Exit.Exit<ReadonlyArray<string> | undefined, ShowMiss>) =>
          Effect.suspend(() => {
            if (inFlight.get(key) === done) inFlight.delete(key)
            return Deferred.done(done, Exit.isInterrupted(exit) ? Exit.fail("abandoned" as const) : exit)
          })
        const ask: Effect.Effect<ReadonlyArray<string> | undefined, ShowMiss> = Effect.suspend(() =>
          !go()
            ? Effect.fail("abandoned" as const)
            : askShow("list", name).pipe(
              Effect.map((show) => Mapping.showCapabilities(remember(name, show, digest))),
              Effect.mapError((e): ShowMiss => (answered(e) ? "answered" : "no answer"))
            )
        )
        return showPermits.withPermits(1)(ask).pipe(Effect.onExit(settle))
      })

    /** The listed models with the capabilities known for their digest, asking /api/show for the rest. */
    const withCapabilities = (models: ReadonlyArray<LocalModel>): Effect.Effect<ReadonlyArray<LocalModel>> =>
      Effect.suspend(() => {
        let stop = false
        let sent = 0
        // asked as each show gets its permit: no more after one went unanswered, or past the budget
        const go = () => !stop && sent < SHOWS_PER_LISTING && ++sent > 0
        return Effect.forEach(models, (local) => {
          const known = capabilityCache.get(local.name)
          const current = known !== undefined && known.digest !== undefined && known.digest === local.digest
          const asked: Effect.Effect<ReadonlyArray<string> | undefined> = current || (known !== undefined && local.digest === undefined)
            ? Effect.succeed(known!.capabilities)
            : sharedShow(local.name, local.digest, go).pipe(
              Effect.catchAll((miss) => {
                if (miss === "no answer") stop = true
                return Effect.succeed(undefined)
              })
            )
          return Effect.map(asked, (capabilities) => (capabilities !== undefined ? { ...local, capabilities } : local))
        }, { concurrency: "unbounded" })
      })

    /** /api/tags as LocalModels, without capabilities. */
    const tags = modelList("list", "/api/tags", (c) => c.list()).pipe(
      Effect.tap(({ warning }) =>
        warning !== undefined ? Effect.logWarning(`${instance.name}: ${warning}`) : Effect.void
      ),
      Effect.map(({ models }) => models.map((m) => Mapping.toLocalModel(origin, m)))
    )
    // /api/tags carries no capabilities (api/types.go ListModelResponse): they come from /api/show
    const list = Effect.flatMap(tags, withCapabilities)

    const capabilitiesOf = (model: string): Effect.Effect<ReadonlyArray<string> | undefined> => {
      const key = Mapping.normalizeName(model)
      const known = capabilityCache.get(key)
      return known !== undefined
        ? Effect.succeed(known.capabilities)
        : askShow("generate", model).pipe(
          Effect.map((show) => Mapping.showCapabilities(remember(model, show))),
          Effect.orElseSucceed(() => undefined)
        )
    }
    const forget = (model: string) => Effect.sync(() => capabilityCache.delete(Mapping.normalizeName(model)))

    const sizeOf = (model: string) =>
      tags.pipe(
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
      listNames: tags,
      info: (model) =>
        Effect.all([
          askShow("info", model).pipe(Effect.map((show) => remember(model, show))),
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
        const url = unfetchedImageUrl(request.messages)
        if (url !== undefined) return Stream.fail(new UnsupportedOperation({ backend: "ollama", operation: "images", reason: unfetchedImageReason(url) }))
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

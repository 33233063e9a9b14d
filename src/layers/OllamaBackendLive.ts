/**
 * The live OllamaBackend: one `ollama` client per configured Ollama server, reached only through
 * `internal/ollamaClient.ts` (typed errors, spans, aborts) and translated to the shared types by
 * `internal/ollamaMapping.ts`. Instances are `OllamaInstance`s: a `Backend` plus load/unload and
 * raw-prompt completion.
 *
 * `verify`: Ollama checks each blob's sha256 itself when it pulls it, and keeps its store to
 * itself, so there is nothing for llmspell to re-hash. `verify(model)` checks the model exists
 * (ModelNotFound otherwise) and reports ok with no files; `verify()` reports ok with no files.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import type { AbortableAsyncIterator } from "ollama"
import type { OllamaInstanceConfig } from "../domain/ConfigSchema.js"
import { errorToJson, type LlmspellError, UsageError } from "../domain/Errors.js"
import type { BackendStatus, GenerateEvent, LoadedModel, PullProgress } from "../domain/Types.js"
import { OllamaBackend, type OllamaInstance } from "../services/OllamaBackend.js"
import * as OllamaClient from "./internal/ollamaClient.js"
import * as Mapping from "./internal/ollamaMapping.js"

/** Status probes answer quickly even when timeout_seconds is long: a hung server is "unavailable", not a hang. */
const STATUS_TIMEOUT_MS = 10_000

/** A streamed chat/generate record: text in `message.content` (chat) or `response` (generate). */
type InferenceRecord = Mapping.WireDone & {
  readonly done: boolean
  readonly message?: { readonly content?: string }
  readonly response?: string
}

/** Builds the instance for one configured server. */
export const make = (instance: OllamaInstanceConfig): Effect.Effect<OllamaInstance, LlmspellError> =>
  Effect.gen(function*() {
    const client = yield* OllamaClient.make(instance)
    const origin = { instance: instance.name }
    const probeMs = Math.min(STATUS_TIMEOUT_MS, instance.timeoutSeconds * 1000)

    const list = client.call("list", (c) => c.list()).pipe(
      Effect.map((r) => r.models.map((m) => Mapping.toLocalModel(origin, m)))
    )

    const sizeOf = (model: string) =>
      list.pipe(
        Effect.map((models) => models.find((m) => m.name === Mapping.normalizeName(model))?.sizeBytes),
        Effect.orElseSucceed(() => undefined)
      )

    const status: Effect.Effect<BackendStatus> = Effect.gen(function*() {
      const version = yield* Effect.either(client.call("status", (c) => c.version(), { timeoutMs: probeMs }))
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
        Effect.either(client.call("status", (c) => c.list(), { timeoutMs: probeMs })),
        Effect.either(client.call("status", (c) => c.ps(), { timeoutMs: probeMs }))
      ], { concurrency: 2 })
      const warnings = [
        ...(Either.isLeft(tags) ? [`could not list models: ${tags.left.message}`] : []),
        ...(Either.isLeft(ps) ? [`could not list loaded models: ${ps.left.message}`] : [])
      ]
      return Mapping.toStatus(
        { ...origin, url: instance.baseUrl, timeoutSeconds: instance.timeoutSeconds },
        version.right.version,
        Either.isRight(tags) ? tags.right.models : undefined,
        Either.isRight(ps) ? ps.right.models : undefined,
        warnings
      )
    })

    const pull = (model: string, options?: { readonly quantization?: string }): Stream.Stream<PullProgress, LlmspellError> =>
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
            return client.stream("pull", (c) => c.pull({ model, stream: true }), { model }).pipe(
              Stream.mapEffect((record) =>
                Effect.map(Clock.currentTimeMillis, (now) => Mapping.stepPull(state, record, now))
              )
            )
          })
        )

    // Our GenerateEvents from a chat or generate stream: deltas, then Finish from the `done` record.
    const inference = (
      operation: string,
      model: string,
      open: (c: import("ollama").Ollama) => Promise<AbortableAsyncIterator<InferenceRecord>>
    ): Stream.Stream<GenerateEvent, LlmspellError> =>
      Stream.unwrap(
        Effect.map(Clock.currentTimeMillis, (startedAt) => {
          let text = ""
          let firstTokenMs: number | undefined
          return client.stream(operation, open, { model }).pipe(
            Stream.mapConcatEffect((record) =>
              Effect.map(Clock.currentTimeMillis, (now) => {
                const events: Array<GenerateEvent> = []
                const delta = record.message?.content ?? record.response ?? ""
                if (delta.length > 0) {
                  firstTokenMs ??= now - startedAt
                  text += delta
                  events.push({ _tag: "TextDelta", text: delta })
                }
                if (record.done) {
                  events.push({ _tag: "Finish", completion: Mapping.toCompletion(origin, model, text, record, firstTokenMs) })
                }
                return events
              })
            )
          )
        })
      )

    const self: OllamaInstance = {
      name: instance.name,
      type: "ollama",
      status: status.pipe(Effect.withSpan("OllamaBackend.status", { attributes: { instance: instance.name } })),
      list,
      info: (model) =>
        Effect.all([
          client.call("info", (c) => c.show({ model }), { model }),
          sizeOf(model)
        ], { concurrency: 2 }).pipe(Effect.map(([show, size]) => Mapping.toModelInfo(origin, model, show, size))),
      pull,
      remove: (model) =>
        Effect.gen(function*() {
          const freedBytes = yield* sizeOf(model)
          yield* client.call("remove", (c) => c.delete({ model }), { model })
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
          : client.call("verify", (c) => c.show({ model }), { model }).pipe(Effect.as({ ok: true, files: [] })),
      generate: (model, request) =>
        inference("generate", model, (c) =>
          c.chat({
            model,
            messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
            options: Mapping.toOllamaOptions(request),
            stream: true
          })),
      complete: (model, request) =>
        inference("complete", model, (c) =>
          c.generate({
            model,
            prompt: request.prompt,
            ...(request.system !== undefined ? { system: request.system } : {}),
            options: Mapping.toOllamaOptions({ ...request, messages: [] }),
            stream: true
          })),
      load: (model, keepAlive) =>
        client.call(
          "load",
          (c) => c.generate({ model, prompt: "", stream: false, ...(keepAlive !== undefined ? { keep_alive: keepAlive } : {}) }),
          { model }
        ).pipe(
          Effect.zipRight(client.call("load", (c) => c.ps())),
          Effect.map((ps): LoadedModel | undefined => {
            const entry = ps.models.find((m) => m.name === Mapping.normalizeName(model))
            return entry !== undefined ? Mapping.toLoadedModel(entry) : undefined
          })
        ),
      unload: (model) =>
        client.call("unload", (c) => c.generate({ model, prompt: "", stream: false, keep_alive: 0 }), { model }).pipe(
          Effect.asVoid
        )
    }
    return self
  })

/** The live Ollama backend factory. */
export const layer: Layer.Layer<OllamaBackend> = Layer.succeed(OllamaBackend, { type: "ollama", make })

/**
 * A fake GGUF loader, the seam under GgufBackend below its model pool: loads (chat or embedding),
 * unloads, generations, embeddings and tokenize recorded in a `CallLog` (and as `load <file>` /
 * `unload <file>` lines), with Deferreds a test can hold loads and generations on.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { BackendError, ContextOverflow } from "../domain/Errors.js"
import type { GenerateRequest } from "../domain/Types.js"
import { LlamaLoader, type LlamaLoaderService, type LoaderEvent } from "../services/LlamaLoader.js"
import { type CallLog, recordCall } from "./CallLog.js"
import { DEFAULT_TOKENS } from "./internal.js"
import { deterministicEmbedding, deterministicRelevance, deterministicTokens } from "./MockBackend.js"

/** Script of the fake GGUF loader (the seam under GgufBackend, below its model pool). */
export interface MockLoaderOptions {
  /** Tokens per model file name. */
  readonly tokens?: Readonly<Record<string, ReadonlyArray<string>>>
  /** Tokens of any other file (default: the words of "This is a scripted answer."). */
  readonly defaultTokens?: ReadonlyArray<string>
  /** Loading these file names (or the paths the predicate accepts) fails. */
  readonly failLoad?: ReadonlyArray<string> | ((path: string) => boolean)
  /** Every load waits for this before it completes (to hold loads in flight). */
  readonly loadGate?: Deferred.Deferred<void>
  /** Runs when a load starts (before `loadGate`). */
  readonly onLoad?: (path: string) => Effect.Effect<void>
  /** Every generation waits for this, holding its sequence, before it produces text. */
  readonly generationGate?: Deferred.Deferred<void>
  /** Runs when a generation has its sequence and starts. */
  readonly onGenerate?: (request: GenerateRequest) => Effect.Effect<void>
  readonly sizeBytes?: number
  /** The length of the deterministic vectors an embedding load returns (default 8). */
  readonly embeddingDimensions?: number
  /** The vector of a text, instead of the deterministic one. */
  readonly embed?: (text: string) => ReadonlyArray<number>
  /** The token ids of a text (default: one deterministic id per word); an embedded input also counts a BOS. */
  readonly tokenize?: (text: string) => ReadonlyArray<number>
  /** Where its calls are recorded (default: a log of its own); share one log between fakes to see their order. */
  readonly calls?: CallLog
}

/** What the fake loader saw: `load <file>` / `unload <file>` in order, what is loaded, generations running. */
export interface MockLoaderLog {
  readonly events: Array<string>
  readonly loaded: Set<string>
  active: number
  maxActive: number
}

/**
 * A scripted LlamaLoader: provide it under `GgufBackendLive.layerWithoutLoader` to test the real
 * pool (lazy loads, sharing, idle unload with TestClock, LRU eviction) without llama.cpp. Like the
 * live loader, each loaded model has `sequences` context sequences and generations beyond them wait.
 */
export const LlamaLoaderMock = (options: MockLoaderOptions = {}) => {
  const log: MockLoaderLog = { events: [], loaded: new Set(), active: 0, maxActive: 0 }
  const calls: CallLog = options.calls ?? []
  const record = (operation: string, path: string, input?: unknown) =>
    recordCall(calls, { source: "loader", backend: "gguf", operation, model: path, ...(input !== undefined ? { input } : {}) })
  const tokenize = (text: string) => [...(options.tokenize ?? deterministicTokens)(text)]
  const fileName = (path: string) => path.split(/[\\/]/).at(-1)!
  const fails = (path: string) =>
    typeof options.failLoad === "function" ? options.failLoad(path) : options.failLoad?.includes(fileName(path)) ?? false
  const sizeBytes = options.sizeBytes ?? 1_000_000
  const service: LlamaLoaderService = {
    runtime: () =>
      Effect.succeed({ device: "cpu", reason: "mock loader", binary: "prebuilt", gpuNames: [], warnings: [] }),
    memoryNeeds: (_path, o) => Effect.succeed({ contextSize: o.contextSize, ramBytes: sizeBytes, vramBytes: 0 }),
    load: (path, loadOptions) => {
      const embedding = loadOptions.purpose === "embedding"
      const ranking = loadOptions.purpose === "ranking"
      // an embedding or ranking copy is listed apart from the chat one
      const suffix = embedding ? " (embedding)" : ranking ? " (ranking)" : ""
      const entry = `${path}${suffix}`
      const label = `${fileName(path)}${suffix}`
      return Effect.acquireRelease(
        Effect.gen(function*() {
          yield* record("load", path, loadOptions)
          log.events.push(`load ${label}`)
          if (options.onLoad) yield* options.onLoad(path)
          if (options.loadGate) yield* Deferred.await(options.loadGate)
          if (fails(path)) {
            return yield* new BackendError({ backend: "gguf", operation: "load model", reason: "mock: load failed" })
          }
          log.loaded.add(entry)
          const contextSize = typeof loadOptions.contextSize === "number" ? loadOptions.contextSize : 256
          const sequences = yield* Effect.makeSemaphore(loadOptions.sequences)
          const running = Effect.acquireRelease(
            Effect.zipRight(
              sequences.take(1),
              Effect.sync(() => {
                log.active++
                log.maxActive = Math.max(log.maxActive, log.active)
              })
            ),
            () => Effect.zipRight(Effect.sync(() => void log.active--), sequences.release(1))
          )
          return {
            path,
            sizeBytes,
            vramBytes: 0,
            contextSize,
            alive: Effect.succeed(true),
            embed: (inputs: ReadonlyArray<string>) =>
              Effect.gen(function*() {
                yield* record("embed", path, inputs)
                if (!embedding) {
                  return yield* new BackendError({ backend: "gguf", operation: "embed", reason: "mock: loaded for chat" })
                }
                // like node-llama-cpp: the BOS counts, and an input that does not fit is refused, not cut
                const lengths = inputs.map((text) => tokenize(text).length + 1)
                const over = lengths.find((n) => n >= contextSize)
                if (over !== undefined) {
                  return yield* new ContextOverflow({
                    model: loadOptions.model ?? path,
                    backend: "gguf",
                    ...(loadOptions.instance !== undefined ? { instance: loadOptions.instance } : {}),
                    promptTokens: over,
                    contextSize,
                    operation: "embed"
                  })
                }
                return inputs.map((text, i) => ({
                  vector: options.embed !== undefined ? [...options.embed(text)] : deterministicEmbedding(text, options.embeddingDimensions ?? 8),
                  tokens: lengths[i]!
                }))
              }),
            rank: (query: string, documents: ReadonlyArray<string>) =>
              Effect.gen(function*() {
                yield* record("rank", path, { query, documents })
                if (!ranking) {
                  return yield* new BackendError({ backend: "gguf", operation: "rerank", reason: "mock: not loaded for ranking" })
                }
                // like node-llama-cpp: BOS + query + EOS + document + EOS, refused (naming the document) when over the context
                const lengths = documents.map((d) => tokenize(query).length + tokenize(d).length + 3)
                const over = lengths.findIndex((n) => n >= contextSize)
                if (over >= 0) {
                  return yield* new ContextOverflow({
                    model: loadOptions.model ?? path,
                    backend: "gguf",
                    ...(loadOptions.instance !== undefined ? { instance: loadOptions.instance } : {}),
                    promptTokens: lengths[over]!,
                    contextSize,
                    operation: "rerank",
                    document: over
                  })
                }
                return documents.map((d, i) => ({ score: deterministicRelevance(query, d), tokens: lengths[i]! }))
              }),
            tokenize: (text: string) => Effect.as(record("tokenize", path, text), tokenize(text)),
            generate: (request: GenerateRequest) =>
              Stream.unwrapScoped(Effect.gen(function*() {
                yield* record("generate", path, request)
                if (embedding || ranking) {
                  return yield* new BackendError({ backend: "gguf", operation: "generate", reason: `mock: loaded for ${embedding ? "embeddings" : "ranking"}` })
                }
                yield* running
                if (options.onGenerate) yield* options.onGenerate(request)
                if (options.generationGate) yield* Deferred.await(options.generationGate)
                const tokens = (options.tokens?.[fileName(path)] ?? options.defaultTokens ?? DEFAULT_TOKENS)
                  .slice(0, request.maxTokens ?? Infinity)
                const done: LoaderEvent = {
                  _tag: "Done",
                  text: tokens.join(""),
                  promptTokens: request.messages.length,
                  completionTokens: tokens.length,
                  finishReason: request.maxTokens !== undefined && tokens.length >= request.maxTokens ? "length" : "stop"
                }
                return Stream.fromIterable<LoaderEvent>([...tokens.map((text): LoaderEvent => ({ _tag: "Text", text })), done])
              }))
          }
        }),
        () =>
          Effect.suspend(() =>
            log.loaded.delete(entry)
              ? Effect.zipRight(record("unload", path), Effect.sync(() => void log.events.push(`unload ${label}`)))
              : Effect.void
          )
      )
    }
  }
  return { layer: Layer.succeed(LlamaLoader, service), service, log, events: log.events, loaded: log.loaded, calls }
}

/**
 * Scriptable backends (`OllamaBackendMock`, `GgufBackendMock`, `CloudBackendMock`): models present or pullable, token
 * streams or scripted turns (reasoning, text, tool calls), deterministic (or scripted) embeddings
 * and token ids, injected failures per operation, and every call recorded in a `CallLog`.
 */
import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { BackendUnavailable, ChecksumMismatch, type LlmspellError, ModelNotFound } from "../domain/Errors.js"
import type {
  BackendType,
  Completion,
  GenerateEvent,
  GenerateRequest,
  LocalModel,
  ModelInfo,
  PullProgress,
  VerifyReport
} from "../domain/Types.js"
import type {
  Backend,
  BackendEmbedError,
  BackendFactory,
  BackendGenerateError,
  BackendInfoError,
  BackendListError,
  BackendPullError,
  BackendRemoveError,
  BackendRerankError,
  BackendTokenizeError,
  BackendVerifyError
} from "../services/Backend.js"
import { noRerank } from "../layers/ollama/ollamaMapping.js"
import { CloudBackendFactory } from "../services/CloudBackend.js"
import { GgufBackendFactory } from "../services/GgufBackend.js"
import { OllamaBackendFactory } from "../services/OllamaBackend.js"
import { type Call, type CallLog, recordCall } from "./CallLog.js"
import { DEFAULT_TOKENS, failureFor } from "./internal.js"

/** One scripted answer: reasoning, text tokens and tool calls (ids default to `call_<n>`). */
export interface MockTurn {
  readonly tokens?: ReadonlyArray<string>
  readonly reasoning?: ReadonlyArray<string>
  readonly toolCalls?: ReadonlyArray<{ readonly name: string; readonly params: unknown; readonly id?: string }>
}

/** A model a fake backend has (or can pull). */
export interface MockModel {
  readonly name: string
  readonly sizeBytes?: number
  /** The token stream `generate` answers with (default: the words of "This is a scripted answer."). */
  readonly tokens?: ReadonlyArray<string>
  /**
   * Scripted answers, one per `generate` call in order (the last one repeats), or a function of
   * the request (e.g. call a tool first, answer in text once a tool result is in the messages).
   * Takes precedence over `tokens`.
   */
  readonly turns?: ReadonlyArray<MockTurn> | ((request: GenerateRequest) => MockTurn)
  /** The length of the vectors `embed` returns (default 8); vectors are deterministic in the text. */
  readonly embeddingDimensions?: number
  /** The vector of a text, instead of the deterministic one (its length is the model's dimensions). */
  readonly embed?: (text: string) => ReadonlyArray<number>
  /** A document's relevance score for a query, instead of the default (`deterministicRelevance`). */
  readonly rerank?: (query: string, document: string) => number
  /** The token ids of a text, instead of one deterministic id per word (`deterministicTokens`). */
  readonly tokenize?: (text: string) => ReadonlyArray<number>
  /** Extra fields of `info`. */
  readonly info?: Partial<ModelInfo>
  readonly quantization?: string
}

/** A failure to inject: by name, or any llmspell error. */
export type MockFailure = "unavailable" | "notFound" | "checksumMismatch" | LlmspellError

/**
 * Failures to inject per operation (every call): by name — "unavailable" (BackendUnavailable),
 * "notFound" (ModelNotFound), "checksumMismatch" (ChecksumMismatch, for a pull) — or an error the
 * operation can fail with (its `Backend…Error`); `status` reports any failure as unavailable.
 */
export interface MockFailures {
  readonly status?: MockFailure
  readonly list?: "unavailable" | BackendListError
  readonly info?: "unavailable" | "notFound" | BackendInfoError
  readonly pull?: "unavailable" | "notFound" | "checksumMismatch" | BackendPullError
  readonly remove?: "unavailable" | "notFound" | BackendRemoveError
  readonly verify?: "unavailable" | "notFound" | BackendVerifyError
  readonly generate?: "unavailable" | "notFound" | BackendGenerateError
  readonly embed?: "unavailable" | "notFound" | BackendEmbedError
  readonly rerank?: "unavailable" | "notFound" | BackendRerankError
  readonly tokenize?: "unavailable" | "notFound" | BackendTokenizeError
}

/** Operations of a backend. */
export type MockOperation = "status" | "list" | "info" | "pull" | "remove" | "verify" | "generate" | "embed" | "rerank" | "tokenize"

/** Script of one fake backend type. */
export interface MockBackendOptions {
  /** Models present from the start. */
  readonly models?: ReadonlyArray<MockModel | string>
  /** Models `pull` can fetch (they appear in `list` afterwards). Default: any name. */
  readonly pullable?: ReadonlyArray<MockModel | string> | "any"
  /** Progress events a pull emits before `done` (default: resolving, 3 downloading steps, verifying). */
  readonly pullSteps?: number
  /** Failures per operation (every call), e.g. `{ generate: "notFound" }`. */
  readonly fail?: MockFailures
  readonly version?: string
}

/** One call a fake received: the `Call` every fake of llmspell/testing records. */
export type MockCall = Call

/**
 * A deterministic unit vector for a text: the same text always gives the same vector, whatever
 * else is in the batch. Used by the scripted backends' `embed`.
 */
export const deterministicEmbedding = (text: string, dimensions: number): Array<number> => {
  const raw: Array<number> = []
  for (let block = 0; raw.length < dimensions; block++) {
    const digest = createHash("sha256").update(`${block}:${text}`).digest()
    for (let i = 0; i + 1 < digest.length && raw.length < dimensions; i += 2) raw.push(digest.readUInt16BE(i) / 32768 - 1)
  }
  const norm = Math.sqrt(raw.reduce((sum, x) => sum + x * x, 0)) || 1
  return raw.map((x) => x / norm)
}

/**
 * The share of the query's words (lower-cased) that occur in the document, in [0, 1]: the same
 * pair always scores the same. Used by the scripted backends' `rerank`.
 */
export const deterministicRelevance = (query: string, document: string): number => {
  const words = (text: string) => text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 0)
  const wanted = [...new Set(words(query))]
  if (wanted.length === 0) return 0
  const present = new Set(words(document))
  return wanted.filter((w) => present.has(w)).length / wanted.length
}

/** One id per whitespace-separated word, the same for the same word (ids below 32000). */
export const deterministicTokens = (text: string): Array<number> =>
  text.split(/\s+/).filter((w) => w.length > 0).map((word) => createHash("sha256").update(word).digest().readUInt32BE(0) % 32000)

const toModel = (m: MockModel | string): MockModel => (typeof m === "string" ? { name: m } : m)

/** Builds one scripted backend instance; state (models present) is shared by the type's instances. */
const makeBackend = (
  type: BackendType,
  instance: string,
  endpoint: string,
  options: MockBackendOptions,
  present: Map<string, MockModel>,
  calls: CallLog
): Backend => {
  const record = (operation: MockOperation, model?: string, input?: unknown) =>
    recordCall(calls, {
      source: type,
      backend: type,
      instance,
      operation,
      ...(model !== undefined ? { model } : {}),
      ...(input !== undefined ? { input } : {}),
      ...(operation === "generate" && input !== undefined ? { request: input as GenerateRequest } : {}),
      ...(operation === "embed" && input !== undefined ? { inputs: input as ReadonlyArray<string> } : {})
    })
  // An injected failure as the error it stands for: each operation accepts only the names (and
  // errors) it can fail with, so a scripted backend fails as a real one can.
  const unavailable = () => new BackendUnavailable({ backend: type, instance, reason: "mock: backend unavailable" })
  const notFound = (model: string) =>
    new ModelNotFound({ model, backend: type, instance, pullSpec: type === "ollama" ? `${model}@ollama` : model })
  const inject = <E>(error: E | undefined): Effect.Effect<void, E> => (error === undefined ? Effect.void : Effect.fail(error))
  const failUnavailable = <E>(failure: "unavailable" | E | undefined) => inject(failure === "unavailable" ? unavailable() : failure)
  const failMissing = <E>(failure: "unavailable" | "notFound" | E | undefined, model: string | undefined) =>
    inject(failure === "unavailable" ? unavailable() : failure === "notFound" ? notFound(model ?? "?") : failure)
  const failPull = <E>(failure: "unavailable" | "notFound" | "checksumMismatch" | E | undefined, model: string) =>
    failure === "checksumMismatch"
      ? Effect.fail(new ChecksumMismatch({ file: `${model}.gguf`, expected: "0".repeat(64), actual: "f".repeat(64) }))
      : failMissing(failure, model)
  const find = (model: string): Effect.Effect<MockModel, ModelNotFound> =>
    Option.match(Option.fromNullable(present.get(model)), { onNone: () => Effect.fail(notFound(model)), onSome: Effect.succeed })
  const asLocal = (m: MockModel): LocalModel => ({
    name: m.name,
    backend: type,
    instance,
    sizeBytes: m.sizeBytes ?? 1_000_000,
    ...(m.quantization !== undefined ? { quantization: m.quantization } : {})
  })
  const pullable = options.pullable ?? "any"
  const turnIndex = new Map<string, number>()

  return {
    name: instance,
    type,
    status: Effect.gen(function*() {
      yield* record("status")
      const f = options.fail?.status
      return {
        instance,
        backend: type,
        endpoint,
        available: f === undefined,
        ...(options.version !== undefined ? { version: options.version } : {}),
        ...(f !== undefined
          ? (() => {
            const e = failureFor(f, type, instance, undefined)
            return { error: { _tag: e._tag, message: e.message } }
          })()
          : {}),
        modelsPresent: present.size,
        loaded: [],
        details: { mock: true },
        warnings: []
      }
    }),
    list: Effect.gen(function*() {
      yield* record("list")
      yield* failUnavailable(options.fail?.list)
      return [...present.values()].map(asLocal)
    }),
    info: (model) =>
      Effect.gen(function*() {
        yield* record("info", model)
        yield* failMissing(options.fail?.info, model)
        const m = yield* find(model)
        return {
          name: m.name,
          backend: type,
          instance,
          chatTemplate: true,
          sizeBytes: m.sizeBytes ?? 1_000_000,
          details: {},
          ...m.info
        }
      }),
    pull: (model, pullOptions) =>
      Stream.unwrap(
        Effect.gen(function*() {
          yield* record("pull", model)
          yield* failPull(options.fail?.pull, model)
          const alreadyPresent = present.has(model) && pullOptions?.force !== true
          const known = pullable === "any"
            ? { name: model }
            : pullable.map(toModel).find((m) => m.name === model)
          if (known === undefined && !alreadyPresent) {
            return yield* Effect.fail(new ModelNotFound({ model, backend: type, instance }))
          }
          const m = present.get(model) ?? known!
          const total = m.sizeBytes ?? 1_000_000
          const steps = alreadyPresent ? 0 : options.pullSteps ?? 3
          const base = { model, backend: type, instance, files: [] } as const
          const events: Array<PullProgress> = [{ ...base, phase: "resolving", completedBytes: 0, totalBytes: total }]
          for (let i = 1; i <= steps; i++) {
            const done = Math.round((total * i) / steps)
            events.push({
              ...base,
              phase: "downloading",
              files: [{ name: model, completedBytes: done, totalBytes: total, status: i === steps ? "done" : "downloading" }],
              completedBytes: done,
              totalBytes: total
            })
          }
          if (steps > 0) events.push({ ...base, phase: "verifying", completedBytes: total, totalBytes: total })
          return Stream.fromIterable(events).pipe(
            Stream.concat(
              Stream.fromEffect(
                Effect.sync((): PullProgress => {
                  present.set(model, m)
                  return {
                    ...base,
                    phase: "done",
                    completedBytes: total,
                    totalBytes: total,
                    result: {
                      model,
                      backend: type,
                      instance,
                      alreadyPresent,
                      sizeBytes: total,
                      files: [model],
                      downloadedBytes: alreadyPresent ? 0 : total
                    }
                  }
                })
              )
            )
          )
        })
      ),
    remove: (model) =>
      Effect.gen(function*() {
        yield* record("remove", model)
        yield* failMissing(options.fail?.remove, model)
        const m = yield* find(model)
        present.delete(model)
        return { model, backend: type, instance, removedFiles: [model], freedBytes: m.sizeBytes ?? 1_000_000 }
      }),
    verify: (model) =>
      Effect.gen(function*() {
        yield* record("verify", model)
        yield* failMissing(options.fail?.verify, model)
        const models = model === undefined ? [...present.values()] : [yield* find(model)]
        const report: VerifyReport = {
          ok: true,
          files: models.map((m) => ({ model: m.name, file: m.name, status: "ok" as const }))
        }
        return report
      }),
    generate: (model, request) =>
      Stream.unwrap(
        Effect.gen(function*() {
          yield* record("generate", model, request)
          yield* failMissing(options.fail?.generate, model)
          const m = yield* find(model)
          const index = turnIndex.get(model) ?? 0
          turnIndex.set(model, index + 1)
          const turn: MockTurn = typeof m.turns === "function"
            ? m.turns(request)
            : m.turns !== undefined && m.turns.length > 0
            ? m.turns[Math.min(index, m.turns.length - 1)]!
            : { tokens: m.tokens ?? DEFAULT_TOKENS }
          const tokens = (turn.tokens ?? []).slice(0, request.maxTokens ?? Infinity)
          const reasoningTokens = request.reasoning === false ? [] : turn.reasoning ?? []
          // like a backend that sends no tools for `none`: the scripted calls are not made
          const toolCalls = (request.toolChoice === "none" ? [] : turn.toolCalls ?? []).map((c, i) => ({ id: c.id ?? `call_${index}_${i}`, name: c.name, params: c.params }))
          const text = tokens.join("")
          const promptTokens = request.messages.reduce((n, msg) => n + msg.content.split(/\s+/).length, 0)
          const completionTokens = tokens.length + reasoningTokens.length + toolCalls.length
          const completion: Completion = {
            model,
            backend: type,
            instance,
            text,
            ...(reasoningTokens.length > 0 ? { reasoning: reasoningTokens.join("") } : {}),
            ...(toolCalls.length > 0 ? { toolCalls } : {}),
            finishReason: toolCalls.length > 0
              ? "tool-calls"
              : request.maxTokens !== undefined && tokens.length >= request.maxTokens
              ? "length"
              : "stop",
            usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
            timings: { loadMs: 0, timeToFirstTokenMs: 0, totalMs: 0 }
          }
          const events: Array<GenerateEvent> = [
            ...reasoningTokens.map((t): GenerateEvent => ({ _tag: "ReasoningDelta", text: t })),
            ...tokens.map((t): GenerateEvent => ({ _tag: "TextDelta", text: t })),
            ...toolCalls.map((call): GenerateEvent => ({ _tag: "ToolCall", call })),
            { _tag: "Finish", completion }
          ]
          return Stream.fromIterable(events)
        })
      ),
    embed: (model, inputs) =>
      Effect.gen(function*() {
        yield* record("embed", model, [...inputs])
        yield* failMissing(options.fail?.embed, model)
        const m = yield* find(model)
        const vectors = inputs.map((text) => (m.embed !== undefined ? [...m.embed(text)] : deterministicEmbedding(text, m.embeddingDimensions ?? 8)))
        return {
          model,
          backend: type,
          instance,
          dimensions: vectors[0]?.length ?? m.embeddingDimensions ?? 8,
          vectors,
          promptTokens: inputs.reduce((n, text) => n + (m.tokenize ?? deterministicTokens)(text).length, 0)
        }
      }),
    rerank: (model, request) =>
      Effect.gen(function*() {
        yield* record("rerank", model, request)
        // like the real Ollama backend: no rerank API
        if (type === "ollama") return yield* Effect.fail(noRerank(instance))
        yield* failMissing(options.fail?.rerank, model)
        const m = yield* find(model)
        const count = (text: string) => (m.tokenize ?? deterministicTokens)(text).length
        return {
          model,
          backend: type,
          instance,
          results: request.documents.map((document, index) => ({
            index,
            relevanceScore: (m.rerank ?? deterministicRelevance)(request.query, document)
          })),
          promptTokens: request.documents.reduce((n, document) => n + count(request.query) + count(document), 0)
        }
      }),
    tokenize: (model, text) =>
      Effect.gen(function*() {
        yield* record("tokenize", model, text)
        yield* failMissing(options.fail?.tokenize, model)
        const m = yield* find(model)
        return [...(m.tokenize ?? deterministicTokens)(text)]
      })
  }
}

/** A scripted backend factory of one type, and the calls its instances received. */
export const makeMockBackend = <T extends BackendType>(
  type: T,
  options: MockBackendOptions = {},
  calls: CallLog = []
) => {
  const present = new Map(options.models?.map((m) => [toModel(m).name, toModel(m)]) ?? [])
  const factory: BackendFactory<any> = {
    type,
    make: (instance) =>
      Effect.succeed(
        makeBackend(
          type,
          instance.name,
          type === "gguf" ? (instance.modelDirectory ?? "mock://gguf") : (instance.baseUrl ?? `mock://${type}`),
          options,
          present,
          calls
        )
      )
  }
  return { factory, calls, present }
}

/** A scripted OllamaBackend layer and its call record. */
export const OllamaBackendMock = (options: MockBackendOptions = {}, calls: CallLog = []) => {
  const mock = makeMockBackend("ollama", options, calls)
  return { layer: Layer.succeed(OllamaBackendFactory, mock.factory), calls: mock.calls }
}

/** A scripted GgufBackend layer and its call record. */
export const GgufBackendMock = (options: MockBackendOptions = {}, calls: CallLog = []) => {
  const mock = makeMockBackend("gguf", options, calls)
  return { layer: Layer.succeed(GgufBackendFactory, mock.factory), calls: mock.calls }
}

/** A scripted CloudBackend layer and its call record: cloud specs (`openai/gpt-4o-mini`) answer from the script. */
export const CloudBackendMock = (options: MockBackendOptions = {}, calls: CallLog = []) => {
  const mock = makeMockBackend("cloud", options, calls)
  return { layer: Layer.succeed(CloudBackendFactory, mock.factory), calls: mock.calls }
}

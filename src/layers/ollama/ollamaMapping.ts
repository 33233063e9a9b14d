/**
 * Pure translations from Ollama's wire records to the shared types of `domain/Types.ts`, and the
 * Schemas every reply is decoded with first: the `ollama` client types its results but checks
 * nothing, and a server (or a proxy, or a fake) can send `null` where a model should be. No I/O,
 * so each mapping is tested on its own. Used only by `layers/OllamaBackendLive.ts`.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { UnsupportedOperation } from "../../domain/Errors.js"
import { inlineImages } from "../../domain/Images.js"
import { RERANK_ALTERNATIVES } from "../../domain/Rerank.js"
import { transferRate } from "../../domain/TransferRate.js"
import type {
  BackendStatus,
  ChatMessage,
  Completion,
  FinishReason,
  GenerateRequest,
  ToolCall,
  LoadedModel,
  LocalModel,
  ModelInfo,
  PullFileProgress,
  PullProgress
} from "../../domain/Types.js"
import { reportedCachedTokens } from "../../domain/Types.js"

/** Where a record came from. */
export interface Origin {
  readonly instance: string
}

/** `llama3.2` → `llama3.2:latest`, as Ollama names models. */
export const normalizeName = (name: string): string => {
  const last = name.slice(name.lastIndexOf("/") + 1)
  return last.includes(":") ? name : `${name}:latest`
}

// The client types dates as Date, but returns the JSON strings unchanged.
const isoDate = (value: unknown): string | undefined => {
  if (value === undefined || value === null || value === "") return undefined
  if (typeof value !== "string" && !(value instanceof Date)) return undefined
  const date = value instanceof Date ? value : new Date(String(value))
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString()
}

const nonEmpty = (value: unknown): string | undefined =>
  typeof value === "string" && value.length > 0 ? value : undefined

// ---------------------------------------------------------------------------------------------
// Reply schemas
// ---------------------------------------------------------------------------------------------

/**
 * A model record of `/api/tags` or `/api/ps`. Only what we cannot do without is checked strictly
 * (a name and a size); the descriptive fields are read defensively by the mappings below, so an
 * odd `details` costs a column, not the model.
 */
export const WireModel = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1)),
  size: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
  digest: Schema.optional(Schema.Unknown),
  modified_at: Schema.optional(Schema.Unknown),
  expires_at: Schema.optional(Schema.Unknown),
  size_vram: Schema.optional(Schema.Unknown),
  /** `/api/ps`: the context the model was loaded with (newer servers). */
  context_length: Schema.optional(Schema.Unknown),
  details: Schema.optional(Schema.Unknown)
})
/** A model record of `/api/tags` or `/api/ps`. */
export type WireModel = typeof WireModel.Type

/** `/api/tags` and `/api/ps`: the list itself must be there; its entries are decoded one by one. */
export const ModelListReply = Schema.Struct({ models: Schema.Array(Schema.Unknown) })

/** `/api/version`. */
export const VersionReply = Schema.Struct({ version: Schema.String })

/** `/api/show`: an object; every field is read defensively by `toModelInfo`. */
export const ShowReply = Schema.Struct({
  details: Schema.optional(Schema.Unknown),
  model_info: Schema.optional(Schema.Unknown),
  parameters: Schema.optional(Schema.Unknown),
  template: Schema.optional(Schema.Unknown),
  system: Schema.optional(Schema.Unknown),
  license: Schema.optional(Schema.Unknown),
  capabilities: Schema.optional(Schema.Unknown),
  modified_at: Schema.optional(Schema.Unknown)
})
/** `/api/show`. */
export type ShowReply = typeof ShowReply.Type

const count = Schema.optional(Schema.Number)

/** One record of a streaming `/api/pull`. */
export const WirePullRecord = Schema.Struct({
  status: Schema.String,
  digest: Schema.optional(Schema.String),
  total: count,
  completed: count
})
/** One record of a streaming `/api/pull`. */
export type WirePullRecord = typeof WirePullRecord.Type

/**
 * A tool call in a chat message (api/types.go `ToolCall`): `id` since v0.12.10, `arguments` an
 * object (a JSON string from some proxies is accepted and parsed by `toToolCalls`).
 */
export const WireToolCall = Schema.Struct({
  id: Schema.optional(Schema.String),
  function: Schema.Struct({
    index: Schema.optional(Schema.Number),
    name: Schema.String.pipe(Schema.minLength(1)),
    arguments: Schema.optional(Schema.Unknown)
  })
})
/** A tool call in a chat message. */
export type WireToolCall = typeof WireToolCall.Type

/** One record of a streaming `/api/chat` (text in `message.content`) or `/api/generate` (in `response`). */
export const WireInferenceRecord = Schema.Struct({
  done: Schema.Boolean,
  message: Schema.optional(Schema.Struct({
    content: Schema.optional(Schema.String),
    thinking: Schema.optional(Schema.String),
    tool_calls: Schema.optional(Schema.NullOr(Schema.Array(WireToolCall)))
  })),
  response: Schema.optional(Schema.String),
  done_reason: Schema.optional(Schema.String),
  total_duration: count,
  load_duration: count,
  prompt_eval_count: count,
  // Ollama 0.33+; checked where it is used (toCompletion): a bad one is dropped, not a malformed reply
  prompt_eval_cached_count: Schema.optional(Schema.Unknown),
  prompt_eval_duration: count,
  eval_count: count,
  eval_duration: count
})
/** One record of a streaming `/api/chat` or `/api/generate`. */
export type WireInferenceRecord = typeof WireInferenceRecord.Type

/** `/api/embed`. */
export const EmbedReply = Schema.Struct({
  embeddings: Schema.Array(Schema.Array(Schema.Number)),
  prompt_eval_count: count
})
/** `/api/embed`. */
export type EmbedReply = typeof EmbedReply.Type

/** Why a value does not fit a reply schema, in one short line (values cut, so a huge reply stays short). */
export const describeMismatch = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  if (first === undefined) return "unexpected shape"
  const where = first.path.length > 0 ? `${first.path.map(String).join(".")}: ` : ""
  // Schema spells out the whole expected struct; for a value that is not one, say just that.
  const actual = /actual (.*)$/s.exec(first.message)?.[1]
  const message = first.message.startsWith("Expected {") ? `not an object (got ${actual ?? "something else"})` : first.message
  const text = `${where}${message.replace(/\s+/g, " ")}`
  return text.length > 160 ? `${text.slice(0, 160)}…` : text
}

/** Decodes a value with a reply schema: the value, or why it does not fit. */
export const decodeReply = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (value: unknown): Either.Either<A, string> => Either.mapLeft(decode(value), describeMismatch)
}

/** The entries of a model list that decode, and a note for each that does not (by its position). */
export const decodeModelEntries = (
  entries: ReadonlyArray<unknown>
): { readonly models: ReadonlyArray<WireModel>; readonly skipped: ReadonlyArray<string> } => {
  const decode = decodeReply(WireModel)
  const models: Array<WireModel> = []
  const skipped: Array<string> = []
  entries.forEach((entry, index) => {
    const result = decode(entry)
    if (Either.isRight(result)) models.push(result.right)
    else skipped.push(`entry ${index + 1}: ${result.left}`)
  })
  return { models, skipped }
}

/** The one warning for the malformed entries of a list (the first three described). */
export const skippedWarning = (route: string, skipped: ReadonlyArray<string>): string =>
  `skipped ${skipped.length} malformed ${skipped.length === 1 ? "entry" : "entries"} in the server's ${route} reply (` +
  `${skipped.slice(0, 3).join("; ")}${skipped.length > 3 ? "; …" : ""})`

/** One `/api/tags` entry → LocalModel. */
export const toLocalModel = (origin: Origin, m: WireModel): LocalModel => {
  const details = asRecord(m.details)
  const digest = nonEmpty(m.digest)
  const modifiedAt = isoDate(m.modified_at)
  const family = nonEmpty(details["family"])
  const parameterSize = nonEmpty(details["parameter_size"])
  const quantization = nonEmpty(details["quantization_level"])
  const format = nonEmpty(details["format"])
  return {
    name: m.name,
    backend: "ollama",
    instance: origin.instance,
    sizeBytes: m.size,
    ...(digest !== undefined ? { digest } : {}),
    ...(modifiedAt !== undefined ? { modifiedAt } : {}),
    ...(family !== undefined ? { family } : {}),
    ...(parameterSize !== undefined ? { parameterSize } : {}),
    ...(quantization !== undefined ? { quantization } : {}),
    ...(format !== undefined ? { format } : {})
  }
}

/** One `/api/ps` entry → LoadedModel. */
export const toLoadedModel = (m: WireModel): LoadedModel => {
  const expiresAt = isoDate(m.expires_at)
  return {
    name: m.name,
    sizeBytes: m.size,
    ...(typeof m.size_vram === "number" ? { vramBytes: m.size_vram } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {})
  }
}

/** A reachable server's status. */
export const toStatus = (
  origin: Origin & { readonly url: string; readonly timeoutSeconds: number },
  version: string,
  models: ReadonlyArray<WireModel> | undefined,
  loaded: ReadonlyArray<WireModel> | undefined,
  warnings: ReadonlyArray<string>
): BackendStatus => ({
  instance: origin.instance,
  backend: "ollama",
  endpoint: origin.url,
  available: true,
  version,
  ...(models !== undefined ? { modelsPresent: models.length } : {}),
  loaded: (loaded ?? []).map(toLoadedModel),
  details: { "timeout seconds": origin.timeoutSeconds },
  warnings
})

/** `/api/show` → ModelInfo; `sizeBytes` comes from `/api/tags` when known. */
export const toModelInfo = (
  origin: Origin,
  model: string,
  show: ShowReply,
  sizeBytes: number | undefined
): ModelInfo => {
  const info = asRecord(show.model_info)
  const showDetails = asRecord(show.details)
  const strings = (u: unknown): Array<string> | undefined =>
    Array.isArray(u) ? u.filter((x): x is string => typeof x === "string") : undefined
  const arch = typeof info["general.architecture"] === "string" ? info["general.architecture"] : undefined
  const num = (key: string): number | undefined => {
    const v = info[key]
    return typeof v === "number" && Number.isFinite(v) ? v : undefined
  }
  const archNum = (key: string) => (arch !== undefined ? num(`${arch}.${key}`) : undefined)
  const tokens = info["tokenizer.ggml.tokens"]
  const vocabularySize = archNum("vocab_size") ?? (Array.isArray(tokens) && tokens.length > 0 ? tokens.length : undefined)
  const heads = archNum("attention.head_count")
  const fields: Record<string, unknown> = {
    architecture: arch,
    parameterCount: num("general.parameter_count"),
    parameterSize: nonEmpty(showDetails["parameter_size"]),
    quantization: nonEmpty(showDetails["quantization_level"]),
    contextLength: archNum("context_length"),
    embeddingLength: archNum("embedding_length"),
    layers: archNum("block_count"),
    heads,
    headsKv: archNum("attention.head_count_kv"),
    vocabularySize,
    sizeBytes,
    capabilities: strings(show.capabilities)
  }
  const details: Record<string, unknown> = {
    format: nonEmpty(showDetails["format"]),
    family: nonEmpty(showDetails["family"]),
    families: strings(showDetails["families"]),
    parentModel: nonEmpty(showDetails["parent_model"]),
    parameters: nonEmpty(show.parameters),
    template: nonEmpty(show.template),
    system: nonEmpty(show.system),
    modifiedAt: isoDate(show.modified_at),
    modelInfo: show.model_info !== undefined ? info : undefined
  }
  return {
    name: normalizeName(model),
    backend: "ollama",
    instance: origin.instance,
    chatTemplate: nonEmpty(show.template) !== undefined,
    ...dropUndefined(fields),
    details: dropUndefined(details)
  } as ModelInfo
}

function asRecord(u: unknown): Record<string, unknown> {
  if (u instanceof Map) return Object.fromEntries(u)
  return typeof u === "object" && u !== null && !Array.isArray(u) ? (u as Record<string, unknown>) : {}
}

const dropUndefined = (r: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))

// ---------------------------------------------------------------------------------------------
// Pull progress
// ---------------------------------------------------------------------------------------------

interface LayerState {
  readonly name: string
  /**
   * What was on disk before this pull: `completed` of the layer's first record (Ollama omits it
   * for a layer it starts from nothing, and reports it for a cached or partly downloaded one).
   */
  readonly baseline: number
  completed: number
  total: number | undefined
}

/** The running state of one pull; `step` folds records into it and yields the event to emit. */
export interface PullState {
  readonly model: string
  readonly origin: Origin
  readonly startedAt: number
  readonly layers: Map<string, LayerState>
  phase: PullProgress["phase"]
}

/** A fresh pull state. */
export const initialPull = (origin: Origin, model: string, startedAt: number): PullState => ({
  model: normalizeName(model),
  origin,
  startedAt,
  layers: new Map(),
  phase: "resolving"
})

const fileStatus = (phase: PullProgress["phase"], layer: LayerState): PullFileProgress["status"] => {
  if (phase === "done") return "done"
  if (phase === "verifying") return "verifying"
  if (layer.total !== undefined && layer.completed >= layer.total) return "done"
  return layer.completed > 0 ? "downloading" : "pending"
}

/**
 * Folds one Ollama record into the state and returns our event. Ollama's statuses: `pulling
 * manifest` → resolving; `pulling <digest>` with digest/total/completed → downloading (one file per
 * layer, keyed by its digest); `verifying sha256 digest`, `writing manifest`, `removing …` →
 * verifying; `success` → done with its result. Anything else keeps the phase and becomes the message.
 */
export const stepPull = (state: PullState, record: WirePullRecord, now: number): PullProgress => {
  const status = record.status ?? ""
  let message: string | undefined = status.length > 0 ? status : undefined
  if (record.digest !== undefined && record.digest.length > 0) {
    const completed = typeof record.completed === "number" ? record.completed : undefined
    const layer = state.layers.get(record.digest) ?? {
      name: record.digest,
      baseline: completed ?? 0,
      completed: 0,
      total: undefined
    }
    if (typeof record.total === "number") layer.total = record.total
    if (completed !== undefined) layer.completed = Math.max(layer.completed, completed)
    state.layers.set(record.digest, layer)
    state.phase = "downloading"
    message = undefined
  } else if (status === "pulling manifest") {
    state.phase = "resolving"
  } else if (status === "success") {
    state.phase = "done"
    message = undefined
  } else if (/^(verifying|writing|removing)/.test(status)) {
    state.phase = "verifying"
  }

  const layers = [...state.layers.values()]
  const completedBytes = layers.reduce((sum, l) => sum + l.completed, 0)
  const totals = layers.map((l) => l.total)
  const totalBytes = totals.length > 0 && totals.every((t) => t !== undefined)
    ? totals.reduce((sum: number, t) => sum + (t ?? 0), 0)
    : undefined
  const downloadedBytes = layers.reduce((sum, l) => sum + Math.max(0, l.completed - l.baseline), 0)
  const elapsedSeconds = (now - state.startedAt) / 1000

  return {
    phase: state.phase,
    model: state.model,
    backend: "ollama",
    instance: state.origin.instance,
    ...(message !== undefined ? { message } : {}),
    files: layers.map((l) => ({
      name: l.name,
      completedBytes: l.completed,
      ...(l.total !== undefined ? { totalBytes: l.total } : {}),
      status: fileStatus(state.phase, l)
    })),
    completedBytes,
    ...(totalBytes !== undefined ? { totalBytes } : {}),
    ...transferRate({ phase: state.phase, downloadedBytes, elapsedSeconds, completedBytes, totalBytes }),
    ...(state.phase === "done"
      ? {
        result: {
          model: state.model,
          backend: "ollama" as const,
          instance: state.origin.instance,
          alreadyPresent: layers.length > 0 && downloadedBytes === 0,
          ...(totalBytes !== undefined ? { sizeBytes: totalBytes } : {}),
          files: layers.map((l) => l.name),
          downloadedBytes
        }
      }
      : {})
  }
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

/** Our request → Ollama's `options` (only what was set). */
export const toOllamaOptions = (request: GenerateRequest): Record<string, unknown> =>
  dropUndefined({
    num_predict: request.maxTokens,
    temperature: request.temperature,
    top_p: request.topP,
    top_k: request.topK,
    min_p: request.minP,
    seed: request.seed,
    repeat_penalty: request.repeatPenalty,
    repeat_last_n: request.repeatLastN,
    presence_penalty: request.presencePenalty,
    frequency_penalty: request.frequencyPenalty,
    stop: request.stop !== undefined ? [...request.stop] : undefined,
    num_ctx: request.contextSize
  })

/**
 * The capabilities `/api/show` lists (`completion`, `vision`, `embedding`, `tools`, `thinking`, …),
 * or undefined when the server does not say (older servers): then nothing is refused on them.
 */
export const showCapabilities = (show: ShowReply): ReadonlyArray<string> | undefined =>
  Array.isArray(show.capabilities)
    ? show.capabilities.filter((x): x is string => typeof x === "string")
    : undefined

/**
 * What a request needs that the model's known capabilities lack, as the UnsupportedOperation's
 * fields: undefined when the capabilities are unknown or include it.
 */
export const lackedCapability = (
  model: string,
  capabilities: ReadonlyArray<string> | undefined,
  needed: "vision" | "embedding",
  operation: string,
  /** The spec that names the model to llmspell (`qwen3:8b@ollama`, `lab/qwen3:8b`). */
  spec: string
): { readonly operation: string; readonly reason: string; readonly suggestion: string } | undefined =>
  capabilities === undefined || capabilities.includes(needed)
    ? undefined
    : {
      operation,
      reason: `${normalizeName(model)} lacks the "${needed}" capability (Ollama lists: ${
        capabilities.length > 0 ? capabilities.join(", ") : "none"
      })`,
      suggestion: needed === "vision"
        ? `use a model whose capabilities include vision, e.g. llava or gemma3 (\`llmspell model info ${spec}\` shows a model's)`
        : `use an embedding model, e.g. nomic-embed-text (\`llmspell model info ${spec}\` shows a model's capabilities)`
    }

/**
 * A request field Ollama cannot honour, with why (refused by the backend rather than dropped):
 * it has no logit bias. (`parallelToolCalls: false`, which it cannot enforce either, is checked on
 * the answer instead, as `toolChoice` is: agents such as Codex send it with every request.)
 */
export const unsupportedField = (request: GenerateRequest): { readonly field: string; readonly reason: string } | undefined =>
  request.logitBias !== undefined && Object.keys(request.logitBias).length > 0
    ? { field: "logitBias", reason: "Ollama has no logit bias" }
    : undefined

/** Our messages → Ollama's (api/types.go `Message`): assistant `tool_calls`, tool results by `tool_name`/`tool_call_id`. */
export const toOllamaMessages = (messages: ReadonlyArray<ChatMessage>): Array<Record<string, unknown>> =>
  messages.map((m) => {
    switch (m.role) {
      case "assistant":
        return {
          role: "assistant",
          content: m.content,
          ...(m.toolCalls !== undefined && m.toolCalls.length > 0
            ? {
              tool_calls: m.toolCalls.map((call, index) => ({
                id: call.id,
                function: { index, name: call.name, arguments: call.params ?? {} }
              }))
            }
            : {})
        }
      case "tool":
        return {
          role: "tool",
          content: m.content,
          ...(m.toolName !== undefined ? { tool_name: m.toolName } : {}),
          ...(m.toolCallId !== undefined ? { tool_call_id: m.toolCallId } : {})
        }
      default:
        // Ollama takes a message's images as bare base64 (api/types.go Message.Images)
        return { role: m.role, content: m.content, ...(m.images !== undefined && m.images.length > 0 ? { images: inlineImages(m.images).map((i) => i.data) } : {}) }
    }
  })

/**
 * The tools to offer, with `toolChoice` applied where Ollama ignores it (#8421): `none` offers no
 * tool, a named tool offers only that one; `required` offers them all and the answer is checked.
 */
export const toOllamaTools = (request: GenerateRequest): Array<Record<string, unknown>> | undefined => {
  const choice = request.toolChoice ?? "auto"
  if (choice === "none" || request.tools === undefined || request.tools.length === 0) return undefined
  const offered = typeof choice === "object" ? request.tools.filter((t) => t.name === choice.tool) : request.tools
  return offered.map((tool) => ({
    type: "function",
    function: {
      name: tool.name,
      ...(tool.description !== undefined ? { description: tool.description } : {}),
      parameters: tool.parameters
    }
  }))
}

/** `responseFormat` → Ollama's `format`: `"json"`, a JSON Schema, or nothing for text. */
export const toOllamaFormat = (request: GenerateRequest): string | Record<string, unknown> | undefined => {
  const format = request.responseFormat
  if (format === undefined || format === "text") return undefined
  return format === "json" ? "json" : { ...format.schema }
}

/** Ollama's tool calls → ours: ids kept, or generated with `newId` when the server sent none. */
export const toToolCalls = (
  calls: ReadonlyArray<WireToolCall>,
  newId: () => string
): Array<ToolCall> =>
  calls.map((call) => {
    let params: unknown = call.function.arguments ?? {}
    if (typeof params === "string") {
      try {
        params = JSON.parse(params)
      } catch {
        // left as the string: the caller's schema decides
      }
    }
    return { id: call.id !== undefined && call.id.length > 0 ? call.id : newId(), name: call.function.name, params }
  })

/** The final `done` record of a chat or generate stream. */
export interface WireDone {
  readonly done_reason?: string
  readonly total_duration?: number
  readonly load_duration?: number
  readonly prompt_eval_count?: number
  /** The part of `prompt_eval_count` read from Ollama's cache (Ollama 0.33+; absent before). */
  readonly prompt_eval_cached_count?: unknown
  readonly prompt_eval_duration?: number
  readonly eval_count?: number
  readonly eval_duration?: number
}

const NS_PER_MS = 1_000_000

const finishReason = (reason: string | undefined): FinishReason =>
  reason === "stop" ? "stop" : reason === "length" ? "length" : "unknown"

/** The final record → Completion, with Ollama's own timings (ns → ms) and token rates. */
export const toCompletion = (
  origin: Origin,
  model: string,
  text: string,
  done: WireDone,
  timeToFirstTokenMs: number | undefined,
  extra: { readonly reasoning?: string; readonly toolCalls?: ReadonlyArray<ToolCall> } = {}
): Completion => {
  const promptTokens = done.prompt_eval_count ?? 0
  const cachedPromptTokens = reportedCachedTokens(done.prompt_eval_cached_count, promptTokens)
  const completionTokens = done.eval_count ?? 0
  const rate = (count: number | undefined, ns: number | undefined) =>
    count !== undefined && ns !== undefined && ns > 0 ? count / (ns / 1e9) : undefined
  const tokensPerSecond = rate(done.eval_count, done.eval_duration)
  const promptTokensPerSecond = rate(done.prompt_eval_count, done.prompt_eval_duration)
  return {
    model: normalizeName(model),
    backend: "ollama",
    instance: origin.instance,
    text,
    ...(extra.reasoning !== undefined && extra.reasoning.length > 0 ? { reasoning: extra.reasoning } : {}),
    ...(extra.toolCalls !== undefined && extra.toolCalls.length > 0 ? { toolCalls: extra.toolCalls } : {}),
    // Ollama's done_reason stays `stop` after tool calls.
    finishReason: extra.toolCalls !== undefined && extra.toolCalls.length > 0 && done.done_reason !== "length"
      ? "tool-calls"
      : finishReason(done.done_reason),
    usage: {
      promptTokens,
      ...(cachedPromptTokens !== undefined ? { cachedPromptTokens } : {}),
      completionTokens,
      totalTokens: promptTokens + completionTokens
    },
    timings: {
      loadMs: (done.load_duration ?? 0) / NS_PER_MS,
      ...(timeToFirstTokenMs !== undefined ? { timeToFirstTokenMs } : {}),
      totalMs: (done.total_duration ?? 0) / NS_PER_MS,
      ...(tokensPerSecond !== undefined ? { tokensPerSecond } : {}),
      ...(promptTokensPerSecond !== undefined ? { promptTokensPerSecond } : {})
    }
  }
}

/** Ollama has no rerank API (ollama/ollama#3368, open since 2024): the refusal, naming what can. */
export const noRerank = (instance: string) =>
  new UnsupportedOperation({
    backend: instance,
    operation: "rerank",
    reason: "Ollama has no rerank API (ollama/ollama#3368)",
    suggestion: RERANK_ALTERNATIVES
  })

/**
 * Pure translations from Ollama's wire records (as the `ollama` client returns them) to the shared
 * types of `domain/Types.ts`. No I/O, so each mapping is tested on its own. Used only by
 * `layers/OllamaBackendLive.ts`.
 */
import { transferRate } from "../../domain/TransferRate.js"
import type {
  BackendStatus,
  Completion,
  FinishReason,
  GenerateRequest,
  LoadedModel,
  LocalModel,
  ModelInfo,
  PullFileProgress,
  PullProgress
} from "../../domain/Types.js"

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
  const date = value instanceof Date ? value : new Date(String(value))
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString()
}

const nonEmpty = (value: unknown): string | undefined =>
  typeof value === "string" && value.length > 0 ? value : undefined

/** A model record of `/api/tags` or `/api/ps`. */
export interface WireModel {
  readonly name: string
  readonly model?: string
  readonly size: number
  readonly digest?: string
  readonly modified_at?: unknown
  readonly expires_at?: unknown
  readonly size_vram?: number
  readonly details?: {
    readonly format?: string
    readonly family?: string
    readonly parameter_size?: string
    readonly quantization_level?: string
  }
}

/** One `/api/tags` entry → LocalModel. */
export const toLocalModel = (origin: Origin, m: WireModel): LocalModel => {
  const digest = nonEmpty(m.digest)
  const modifiedAt = isoDate(m.modified_at)
  const family = nonEmpty(m.details?.family)
  const parameterSize = nonEmpty(m.details?.parameter_size)
  const quantization = nonEmpty(m.details?.quantization_level)
  const format = nonEmpty(m.details?.format)
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
  show: {
    readonly details?: WireModel["details"] & { readonly families?: ReadonlyArray<string> | null; readonly parent_model?: string }
    readonly model_info?: unknown
    readonly parameters?: string
    readonly template?: string
    readonly system?: string
    readonly license?: string
    readonly capabilities?: ReadonlyArray<string>
    readonly modified_at?: unknown
  },
  sizeBytes: number | undefined
): ModelInfo => {
  const info = asRecord(show.model_info)
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
    parameterSize: nonEmpty(show.details?.parameter_size),
    quantization: nonEmpty(show.details?.quantization_level),
    contextLength: archNum("context_length"),
    embeddingLength: archNum("embedding_length"),
    layers: archNum("block_count"),
    heads,
    headsKv: archNum("attention.head_count_kv"),
    vocabularySize,
    sizeBytes,
    capabilities: show.capabilities !== undefined ? [...show.capabilities] : undefined
  }
  const details: Record<string, unknown> = {
    format: nonEmpty(show.details?.format),
    family: nonEmpty(show.details?.family),
    families: show.details?.families ?? undefined,
    parentModel: nonEmpty(show.details?.parent_model),
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

const asRecord = (u: unknown): Record<string, unknown> => {
  if (u instanceof Map) return Object.fromEntries(u)
  return typeof u === "object" && u !== null && !Array.isArray(u) ? (u as Record<string, unknown>) : {}
}

const dropUndefined = (r: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))

// ---------------------------------------------------------------------------------------------
// Pull progress
// ---------------------------------------------------------------------------------------------

/** One record of a streaming `/api/pull`. */
export interface WirePullRecord {
  readonly status: string
  readonly digest?: string
  readonly total?: number
  readonly completed?: number
}

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
    seed: request.seed,
    stop: request.stop !== undefined ? [...request.stop] : undefined
  })

/** The final `done` record of a chat or generate stream. */
export interface WireDone {
  readonly done_reason?: string
  readonly total_duration?: number
  readonly load_duration?: number
  readonly prompt_eval_count?: number
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
  timeToFirstTokenMs: number | undefined
): Completion => {
  const promptTokens = done.prompt_eval_count ?? 0
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
    finishReason: finishReason(done.done_reason),
    usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
    timings: {
      loadMs: (done.load_duration ?? 0) / NS_PER_MS,
      ...(timeToFirstTokenMs !== undefined ? { timeToFirstTokenMs } : {}),
      totalMs: (done.total_duration ?? 0) / NS_PER_MS,
      ...(tokensPerSecond !== undefined ? { tokensPerSecond } : {}),
      ...(promptTokensPerSecond !== undefined ? { promptTokensPerSecond } : {})
    }
  }
}

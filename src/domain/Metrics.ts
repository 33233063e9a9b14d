/**
 * llmspell's metrics: one catalogue of Effect `Metric`s (names, help, buckets), updated where the
 * thing happens (the metered LocalLLM, the server, the GGUF worker supervisor) and read by
 * `GET /metrics` (src/serve/MetricsApi.ts) through `Metric.snapshot`. Library users see the same
 * metrics in Effect's registry and can export them with any Effect metrics exporter.
 *
 * Names follow the Prometheus conventions (the `llmspell_` prefix, base units in the name,
 * `_total` on counters) and, where one exists, the meaning of vLLM's metric of the same suffix
 * (`vllm:time_to_first_token_seconds` → `llmspell_time_to_first_token_seconds`), so dashboards
 * translate. Labels come only from bounded sets: a model label is a spec that served a request
 * (at most MAX_MODEL_LABELS distinct ones, then `other`), a backend type, a route of the server's
 * route table, a status class, a finish reason. Never text from a request body, never a key.
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type { BackendType } from "./Types.js"

/** What `/metrics` says of a family before its first sample. */
export interface FamilyInfo {
  readonly name: string
  readonly help: string
  readonly type: "counter" | "histogram"
}

const families: Array<FamilyInfo> = []

const histogram = (name: string, bounds: ReadonlyArray<number>, help: string) => {
  families.push({ name, help, type: "histogram" })
  return Metric.histogram(name, MetricBoundaries.fromIterable(bounds), help)
}

const counter = (name: string, help: string) => {
  families.push({ name, help, type: "counter" })
  return Metric.counter(name, { description: help, incremental: true })
}

// vLLM's buckets, with finer steps at the low end: a small local model answers in milliseconds.
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640]
const TPOT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10]
const LATENCY_BUCKETS = [0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920]
const QUEUE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
const LOAD_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

/** Time from the start of a generation to its first output (text, reasoning or a tool call). */
export const timeToFirstToken = histogram(
  "llmspell_time_to_first_token_seconds",
  TTFT_BUCKETS,
  "Time from the start of a generation to its first output token (after the queue; see llmspell_request_queue_time_seconds)."
)
/** Mean time per output token after the first, one observation per generation. */
export const timePerOutputToken = histogram(
  "llmspell_time_per_output_token_seconds",
  TPOT_BUCKETS,
  "Mean time per output token after the first, one observation per generation."
)
/** A generation from its start to its last event. */
export const e2eRequestLatency = histogram(
  "llmspell_e2e_request_latency_seconds",
  LATENCY_BUCKETS,
  "Time of a generation from its start to its end (finished, failed or cancelled)."
)
/** Time a request of the server waited for a generation slot. */
export const requestQueueTime = histogram(
  "llmspell_request_queue_time_seconds",
  QUEUE_BUCKETS,
  "Time a request waited in the server's queue for a generation slot."
)
/** An HTTP request from its arrival to its last byte sent. */
export const httpRequestDuration = histogram(
  "llmspell_http_request_duration_seconds",
  LATENCY_BUCKETS,
  "Time of an HTTP request from its arrival until its response was sent."
)
/** Loading a model into memory. */
export const modelLoadDuration = histogram(
  "llmspell_model_load_duration_seconds",
  LOAD_BUCKETS,
  "Time to load a model into memory."
)

/** HTTP requests answered, by route and status class. */
export const httpRequests = counter("llmspell_http_requests_total", "HTTP requests answered, by route and status class.")
/** Generations ended, by model, backend and outcome (a finish reason, `error` or `cancelled`). */
export const generations = counter(
  "llmspell_generations_total",
  "Generations ended, by model, backend and outcome (the finish reason; error; cancelled when the caller went away)."
)
/** Prompt tokens of finished generations (cached ones included). */
export const promptTokens = counter("llmspell_prompt_tokens_total", "Prompt tokens of finished generations (the cached ones included).")
/** The part of the prompt tokens read from the prompt cache. */
export const cachedPromptTokens = counter(
  "llmspell_cached_prompt_tokens_total",
  "Prompt tokens read from the prompt cache (part of llmspell_prompt_tokens_total), where the backend reports them."
)
/** Output tokens of finished generations. */
export const completionTokens = counter("llmspell_completion_tokens_total", "Output tokens of finished generations.")
/** Models loaded into memory. */
export const modelLoads = counter("llmspell_model_loads_total", "Models loaded into memory (GGUF: each load of a worker's model).")
/** Models unloaded from memory. */
export const modelUnloads = counter("llmspell_model_unloads_total", "Models unloaded from memory (idle, evicted, asked, or after a crash).")
/** Worker processes that ended without being asked to. */
export const workerCrashes = counter(
  "llmspell_worker_crashes_total",
  "GGUF worker processes that ended unasked: cause crash (an assert, a signal, out of memory) or watchdog (stopped by llmspell, stuck)."
)
/** Bytes a pull transferred. */
export const pullBytes = counter("llmspell_pull_bytes_total", "Bytes transferred by model pulls (resumed bytes counted once).")
/** Pulls ended, by backend and outcome. */
export const pulls = counter("llmspell_pulls_total", "Model pulls ended, by backend and outcome (success, error, cancelled, verify_failed).")
/** Downloads whose checksum did not match. */
export const pullVerifyFailures = counter(
  "llmspell_pull_verify_failures_total",
  "Downloaded files whose sha256 differed from the one the hub published (discarded)."
)

/** Every family of the catalogue, in the order `/metrics` lists them (a family is listed, empty, before its first sample). */
export const catalogue: ReadonlyArray<FamilyInfo> = families

/** Distinct model label values before further ones are `other`: a bound even for a config with many models. */
export const MAX_MODEL_LABELS = 100

const modelLabels = new Set<string>()

/**
 * The `model` label for a spec that served a request: itself while fewer than MAX_MODEL_LABELS
 * have been seen in this process, else `other`.
 */
export const modelLabel = (spec: string): string => {
  if (modelLabels.has(spec)) return spec
  if (modelLabels.size >= MAX_MODEL_LABELS) return "other"
  modelLabels.add(spec)
  return spec
}

/**
 * The spec a model answers to, from its name, backend and instance (`name@type` for the instance
 * named after its type, else `instance/name`): the same model gets one label however it was asked for.
 */
export const specOf = (model: { readonly name: string; readonly backend?: BackendType | undefined; readonly instance?: string | undefined }) =>
  model.instance === undefined || model.backend === undefined
    ? model.name
    : model.instance === model.backend
    ? `${model.name}@${model.backend}`
    : `${model.instance}/${model.name}`

/** `2xx`, `4xx`, …: the status class label. */
export const statusClass = (status: number): string => (status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other")

/** A metric with labels (Effect's tags). */
export const labelled = <T extends Metric.Metric<any, any, any>>(metric: T, labels: Readonly<Record<string, string>>): T =>
  Object.entries(labels).reduce((m, [k, v]) => Metric.tagged(m, k, v) as T, metric)

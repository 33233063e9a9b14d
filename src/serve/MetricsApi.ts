/**
 * `GET /metrics`: the server's metrics in the Prometheus text format, behind the same Host,
 * Origin and API-key checks as every route. Counters and histograms come from Effect's metric
 * registry (the catalogue in `domain/Metrics.ts`, updated by the metered LocalLLM, the GGUF
 * supervisor and the server itself); gauges are read at scrape time: generations running and
 * waiting, requests in flight, and per loaded model its memory and sequences (from `ps`).
 *
 * Also here: the bounded `route` label of a request (a path of the route table, `/rpc`, the
 * page, or `other`: a scanner probing random paths cannot grow the label set).
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as M from "../domain/Metrics.js"
import * as PrometheusText from "../domain/PrometheusText.js"
import { type RouteContext } from "./Routes.js"

/** The server's load read at scrape time. */
export interface MetricsLoad {
  readonly running: number
  readonly queued: number
  readonly inFlight: number
}

/** What the route needs from the server. */
export interface MetricsContext {
  readonly load: Effect.Effect<MetricsLoad>
  readonly concurrency: number
  readonly maxQueue: number
}

type Gauge = PrometheusText.Family & { readonly type: "gauge" }

const gauge = (name: string, help: string, samples: Gauge["samples"]): Gauge => ({ type: "gauge", name, help, samples })

/** The exposition now: the catalogue's counters and histograms, then the gauges read now. */
export const exposition = (ctx: RouteContext, metrics: MetricsContext): Effect.Effect<string> =>
  Effect.gen(function*() {
    const [snapshot, load, loaded] = yield* Effect.all([Metric.snapshot, metrics.load, ctx.llm.ps("all")], { concurrency: 3 })
    const chat = loaded.filter((m) => m.purpose !== "embedding")
    const byBackend = new Map<string, number>()
    for (const m of loaded) byBackend.set(m.backend ?? "unknown", (byBackend.get(m.backend ?? "unknown") ?? 0) + 1)
    const modelLabels = (m: (typeof loaded)[number]) => ({
      model: M.specOf(m),
      backend: m.backend ?? "unknown",
      ...(m.purpose === "embedding" ? { purpose: "embedding" } : {})
    })
    const gauges: Array<Gauge> = [
      gauge("llmspell_requests_running", "Generations running now (holding a slot of --concurrency).", [{ labels: {}, value: load.running }]),
      gauge("llmspell_requests_waiting", "Generations waiting for a slot now (at most --max-queue).", [{ labels: {}, value: load.queued }]),
      gauge("llmspell_requests_concurrency", "Generations the server runs at once (--concurrency).", [{ labels: {}, value: metrics.concurrency }]),
      gauge("llmspell_http_requests_in_flight", "HTTP requests being answered now.", [{ labels: {}, value: load.inFlight }]),
      gauge(
        "llmspell_models_loaded",
        "Models loaded in memory now, by backend (what llmspell ps lists).",
        [...byBackend].map(([backend, value]) => ({ labels: { backend }, value }))
      ),
      gauge(
        "llmspell_model_memory_bytes",
        "Memory a loaded model takes, where its backend says (GGUF: the file; Ollama: its reported size).",
        loaded.flatMap((m) => (m.sizeBytes !== undefined ? [{ labels: modelLabels(m), value: m.sizeBytes }] : []))
      ),
      gauge(
        "llmspell_sequences_busy",
        "Context sequences of a loaded GGUF model that a generation holds now.",
        chat.flatMap((m) => (m.sequences !== undefined ? [{ labels: modelLabels(m), value: m.sequences.busy }] : []))
      ),
      gauge(
        "llmspell_sequences_capacity",
        "Context sequences a loaded GGUF model has (its instance's parallel).",
        chat.flatMap((m) => (m.sequences !== undefined ? [{ labels: modelLabels(m), value: m.sequences.total }] : []))
      ),
      gauge("llmspell_process_resident_memory_bytes", "Resident memory of the server process.", [{ labels: {}, value: process.memoryUsage.rss() }]),
      gauge("llmspell_build_info", "The llmspell version serving (always 1).", [{ labels: { version: ctx.version }, value: 1 }])
    ]
    return PrometheusText.render([...PrometheusText.fromSnapshot(M.catalogue, snapshot), ...gauges])
  })

/** The `/metrics` route. */
export const routes = (ctx: RouteContext, metrics: MetricsContext): HttpRouter.HttpRouter<never, never> =>
  HttpRouter.empty.pipe(
    HttpRouter.get(
      "/metrics",
      Effect.map(exposition(ctx, metrics), (text) =>
        HttpServerResponse.text(text, { contentType: PrometheusText.CONTENT_TYPE, headers: { "cache-control": "no-store" } }))
    )
  )

const patternOf = (path: string): RegExp =>
  new RegExp(`^${path.split("/").map((part) => (part.startsWith(":") ? "[^/]+" : part === "*" ? ".*" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("/")}$`)

/**
 * The `route` label of a request path: the route of the table it matches (`/api/chat`,
 * `/v1/chat/completions`, with `:params` as written), `/rpc`, `/ui` for the page's files and
 * `/` for the root; anything else is `other`.
 */
export const routeLabeller = (
  router: HttpRouter.HttpRouter<any, any>,
  extra: { readonly rpcPath: string; readonly assetPrefix: string }
): (path: string) => string => {
  const exact = new Set<string>()
  const patterns: Array<readonly [RegExp, string]> = []
  for (const route of router.routes) {
    const path = String(route.path)
    if (path.includes(":") || path.includes("*")) patterns.push([patternOf(path), path])
    else exact.add(path)
  }
  return (path) => {
    if (exact.has(path)) return path
    for (const [pattern, label] of patterns) if (pattern.test(path)) return label
    if (path === extra.rpcPath || path.startsWith(`${extra.rpcPath}/`)) return extra.rpcPath
    if (path.startsWith(extra.assetPrefix)) return extra.assetPrefix.replace(/\/$/, "")
    if (path === "/" || path === "/metrics") return path
    return "other"
  }
}

/**
 * `llmspell ps`: the models loaded in memory now, on every backend: name (as a spec), size,
 * context, device, sequences busy/total (GGUF), what it served (requests, tokens/s of its last
 * answers, prompt-cache hits, from the metered LocalLLM of the server or of this process) and
 * when it unloads if unused. Connected to a server, that is the server's
 * warm models; embedded, only what this process and the Ollama servers hold.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { formatBytes } from "../../domain/Format.js"
import { type LoadedModel, PsReport } from "../../domain/Types.js"
import { LocalLLM } from "../../services/LocalLLM.js"
import { printJson, printOut, table } from "../output.js"
import { json } from "./shared.js"

/** "in 4 min", "in 12 s", "never" (kept loaded), "in use" — from an expiry date and now. */
export const unloadsIn = (model: LoadedModel, now: number): string => {
  if (model.expiresAt === undefined) return (model.activeRequests ?? 0) > 0 ? "in use" : "never"
  const ms = Date.parse(model.expiresAt) - now
  if (!Number.isFinite(ms)) return "unknown"
  if (ms > 50 * 365 * 86_400_000) return "never"
  if (ms <= 0) return "now"
  const s = Math.round(ms / 1000)
  return s < 120 ? `in ${s} s` : s < 7200 ? `in ${Math.round(s / 60)} min` : `in ${Math.round(s / 3600)} h`
}

const specOf = (m: LoadedModel) =>
  m.instance === undefined || m.backend === undefined ? m.name : m.instance === m.backend ? `${m.name}@${m.backend}` : `${m.instance}/${m.name}`

/** `ps`. */
export const psCommand = Command.make("ps", { json }, (o) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const models = yield* llm.ps("all")
    if (o.json) return yield* printJson(PsReport, { models })
    if (models.length === 0) return yield* printOut("no models loaded")
    const now = Date.now()
    // the served figures only when some model has them (a server that served it, or this process)
    const served = models.some((m) => m.requests !== undefined)
    const sequences = models.some((m) => m.sequences !== undefined)
    const cache = models.some((m) => m.cacheHitRate !== undefined)
    yield* printOut(table(
      [
        "NAME",
        "SIZE",
        "CONTEXT",
        "DEVICE",
        ...(sequences ? ["BUSY"] : []),
        ...(served ? ["REQUESTS", "TOKENS/S"] : []),
        ...(cache ? ["CACHE HITS"] : []),
        "UNLOADS"
      ],
      models.map((m) => [
        specOf(m),
        m.sizeBytes !== undefined ? formatBytes(m.sizeBytes) : "",
        m.contextLength ?? "",
        m.device ?? "",
        ...(sequences ? [m.sequences !== undefined ? `${m.sequences.busy}/${m.sequences.total}` : ""] : []),
        ...(served ? [m.requests ?? "", m.tokensPerSecond !== undefined ? m.tokensPerSecond.toFixed(1) : ""] : []),
        ...(cache ? [m.cacheHitRate !== undefined ? `${Math.round(m.cacheHitRate * 100)}%` : ""] : []),
        unloadsIn(m, now)
      ])
    ))
  })).pipe(
    Command.withDescription(
      "list the models loaded in memory now (size, context, device, sequences busy/total, requests served, tokens/s of the last answers, cache hits, when each unloads)"
    )
  )

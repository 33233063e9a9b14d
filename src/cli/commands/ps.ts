/**
 * `llmspell ps`: the models loaded in memory now, on every backend: name (as a spec), size,
 * context, device and when it unloads if unused. Connected to a server, that is the server's
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
    yield* printOut(table(
      ["NAME", "SIZE", "CONTEXT", "DEVICE", "UNLOADS"],
      models.map((m) => [
        specOf(m),
        m.sizeBytes !== undefined ? formatBytes(m.sizeBytes) : "",
        m.contextLength ?? "",
        m.device ?? "",
        unloadsIn(m, now)
      ])
    ))
  })).pipe(Command.withDescription("list the models loaded in memory now (size, context, device, when each unloads)"))

/**
 * `llmspell model status`: each configured backend instance, where it points and its health. It
 * exits 0 with the down ones marked (it is a report); `--check` makes it a health check that exits
 * 4 when any of them is down.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { ExitCode } from "../../../domain/Failure.js"
import { formatBytes } from "../../../domain/Format.js"
import { StatusReport } from "../../../domain/Types.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { requestExitCode } from "../../ExitStatus.js"
import { printErr, printJson, printOut } from "../../output.js"
import { backend, json } from "../shared.js"

const show = (v: unknown): string =>
  typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : JSON.stringify(v)

const check = Options.boolean("check").pipe(
  Options.withDescription("exit 4 when any of the backends is unavailable (for scripts and health checks)")
)

/** `model status`. */
export const statusCommand = Command.make("status", { json, backend, check }, ({ backend, check, json }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const backends = yield* llm.status(backend)
    const down = backends.filter((s) => !s.available)
    if (check && down.length > 0) yield* requestExitCode(ExitCode.BackendUnavailable)
    if (json) return yield* printJson(StatusReport, { backends })
    const blocks = backends.map((s) => {
      const lines = [
        `${s.instance} (${s.backend}) ${s.endpoint}`,
        `  state: ${s.available ? "available" : "unavailable"}${s.version ? `, version ${s.version}` : ""}`
      ]
      if (s.error) lines.push(`  error: ${s.error.message}`, ...(s.error.hint ? [`  hint: ${s.error.hint}`] : []))
      for (const [k, v] of Object.entries(s.details)) lines.push(`  ${k}: ${show(v)}`)
      if (s.modelsPresent !== undefined) lines.push(`  models present: ${s.modelsPresent}`)
      lines.push(
        `  loaded now: ${
          s.loaded.length === 0
            ? "none"
            : s.loaded.map((m) => `${m.name}${m.sizeBytes !== undefined ? ` (${formatBytes(m.sizeBytes)})` : ""}`).join(", ")
        }`
      )
      for (const w of s.warnings) lines.push(`  warning: ${w}`)
      return lines.join("\n")
    })
    yield* printOut(blocks.length > 0 ? blocks.join("\n\n") : "no backend instances configured")
    if (down.length > 0) {
      yield* printErr(`unavailable: ${down.map((s) => `${s.instance} (${s.backend})`).join(", ")}`)
    }
  })).pipe(Command.withDescription("show the configured backends, where each points and whether it is available"))

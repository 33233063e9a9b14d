/**
 * `llmspell model available [--recommended] [--json]`: the curated catalog, with whether each model
 * fits this machine's free memory, and which are already on this machine (in any store: llmspell's,
 * Ollama's, the HF cache, …; such a pull downloads nothing). Needs no backend and no network.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Catalog from "../../../domain/Catalog.js"
import { formatBytes } from "../../../domain/Format.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { printJson, printOut, table } from "../../output.js"
import { json } from "../shared.js"

const recommended = Options.boolean("recommended").pipe(Options.withDescription("only the recommended models"))

/** `model available`. */
export const availableCommand = Command.make("available", { recommended, json }, ({ json, recommended }) =>
  Effect.gen(function*() {
    const report = yield* (yield* LocalLLM).available({ recommendedOnly: recommended })
    const { freeMemoryBytes, models, totalMemoryBytes } = report
    if (json) return yield* printJson(Catalog.AvailableReport, report)
    const gb = (n: number) => `${(n / 1e9).toFixed(1)}G`
    yield* printOut(
      table(
        ["ALIAS", "PARAMS", "QUANTIZATIONS (size)", "CONTEXT", "LICENSE", "RAM", "FITS", "ON MACHINE", "REPO"],
        models.map((m) => [
          `${m.alias}${m.recommended ? " *" : ""}`,
          m.parameters,
          m.quantizations.map((q) =>
            `${q.name}${q.name === m.defaultQuantization ? "*" : ""} ${gb(q.sizeBytes)}${q.onMachine !== undefined ? " (here)" : ""}`
          ).join(", "),
          m.contextLength >= 1024 ? `${Math.round(m.contextLength / 1024)}k` : m.contextLength,
          m.license,
          `~${formatBytes(m.ramBytes)}`,
          m.fits ? "yes" : "no",
          m.onMachine?.join(", "),
          m.repo
        ])
      )
    )
    yield* printOut(
      `\n* recommended / default quantization. RAM is an estimate for the default quantization with a 4k context; ` +
        `${formatBytes(freeMemoryBytes)} of ${formatBytes(totalMemoryBytes)} is free now.\n` +
        "pull one with `llmspell model pull <alias>` (e.g. `llmspell model pull qwen2.5:0.5b`), another size with --quantization"
    )
  })).pipe(Command.withDescription("list the curated GGUF models that `pull` and `run` know by alias"))

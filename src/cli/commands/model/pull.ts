/** `llmspell model pull <ref>`: downloads a model (hub GGUF or Ollama) with progress. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { formatBytes } from "../../../domain/Format.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { CliIO } from "../../CliIO.js"
import { printOut } from "../../output.js"
import { progressMode, renderPull } from "../../progress.js"
import { json } from "../shared.js"

const ref = Args.text({ name: "ref" }).pipe(
  Args.withDescription("catalog alias (qwen2.5:0.5b), org/repo:QUANT, org/repo/file.gguf, or name@ollama")
)
const quantization = Options.text("quantization").pipe(
  Options.withAlias("q"),
  Options.optional,
  Options.withDescription("quantization to pull (default Q4_K_M)")
)
const force = Options.boolean("force").pipe(Options.withDescription("download again even if present and verified"))
const copy = Options.boolean("copy").pipe(
  Options.withDescription("copy a file already in another store (Ollama, HF cache) instead of hard-linking it")
)

/** `model pull`. */
export const pullCommand = Command.make("pull", { ref, quantization, force, copy, json }, ({ copy, force, json, quantization, ref }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const io = yield* CliIO
    const q = Option.getOrUndefined(quantization)
    const result = yield* renderPull(
      llm.pull(ref, { force, ...(copy ? { copy } : {}), ...(q !== undefined ? { quantization: q } : {}) }),
      progressMode({ json, stderrIsTTY: io.stderrIsTTY, dumbTerminal: io.dumbTerminal, columns: io.stderrColumns() })
    )
    if (json || result === undefined) return
    yield* printOut(
      result.satisfiedFrom !== undefined
        ? `${result.model}: already on this machine (${result.satisfiedFrom}): 0 B downloaded${
          result.path ? `; now at ${result.path}` : ""
        }`
        : result.alreadyPresent
        ? `${result.model} is already present${result.path ? ` at ${result.path}` : ""}`
        : `pulled ${result.model}${result.sizeBytes !== undefined ? ` (${formatBytes(result.sizeBytes)})` : ""}${
          result.path ? ` to ${result.path}` : ""
        }`
    )
  })).pipe(Command.withDescription("download a model"))

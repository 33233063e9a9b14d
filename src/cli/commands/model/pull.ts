/** `llmspell model pull <ref>`: downloads a model (hub GGUF or Ollama) with progress. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { formatBytes } from "../../../domain/Format.js"
import { PullResult } from "../../../domain/Types.js"
import { LocalLLM, pullResult } from "../../../services/LocalLLM.js"
import { CliIO } from "../../CliIO.js"
import { printJson, printOut } from "../../output.js"
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

const dryRun = Options.boolean("dry-run").pipe(
  Options.withDescription("say what would be downloaded (files, sizes) and whether it fits this disk and this machine's memory; download nothing")
)

const fitText = (fits: boolean) => (fits ? "fits" : "does NOT fit")

/** A dry run's answer as text. */
export const planText = (result: PullResult): string => {
  const plan = result.plan
  if (plan === undefined) {
    return result.alreadyPresent
      ? `${result.model} is already present${result.path ? ` at ${result.path}` : ""}: nothing to download`
      : `${result.model}: nothing to download`
  }
  const width = Math.max(...plan.files.map((f) => f.path.length))
  return [
    `${result.model}${plan.quantization !== undefined ? ` (${plan.quantization})` : ""} would download ${plan.files.length} file${plan.files.length === 1 ? "" : "s"}, ${formatBytes(plan.totalBytes)}:`,
    ...plan.files.map((f) => `  ${f.path.padEnd(width)}  ${formatBytes(f.sizeBytes)}`),
    ...(plan.header !== undefined
      ? [`header:  ${[plan.header.architecture, plan.header.quantization, plan.header.contextLength !== undefined ? `context ${plan.header.contextLength}` : undefined, plan.header.parameters !== undefined ? `${(plan.header.parameters / 1e9).toFixed(2)}B parameters` : undefined].filter((x) => x !== undefined).join(", ")} (${formatBytes(plan.header.bytesRead)} read)`]
      : []),
    `disk:    ${formatBytes(plan.totalBytes)} needed, ${formatBytes(plan.disk.freeBytes)} free at ${plan.disk.directory}: ${fitText(plan.disk.fits)}`,
    `memory:  about ${formatBytes(plan.memory.neededBytes)} to run it, ${formatBytes(plan.memory.availableBytes)} available of ${formatBytes(plan.memory.totalBytes)}: ${fitText(plan.memory.fits)}`
  ].join("\n")
}

/** `model pull`. */
export const pullCommand = Command.make("pull", { ref, quantization, force, copy, dryRun, json }, ({ copy, dryRun, force, json, quantization, ref }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const io = yield* CliIO
    const q = Option.getOrUndefined(quantization)
    if (dryRun) {
      const planned = yield* pullResult(llm.pull(ref, { dryRun: true, ...(q !== undefined ? { quantization: q } : {}) }))
      return yield* json ? printJson(PullResult, planned) : printOut(planText(planned))
    }
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
  })).pipe(Command.withDescription("download a model (--dry-run: its size, and whether it fits disk and memory, first)"))

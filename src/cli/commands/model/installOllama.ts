/** `llmspell model install-ollama [--dry-run] [--yes]`: says whether Ollama is installed and running, or installs it. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { InstallOllamaReport } from "../../../domain/InstallOllama.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { printErr, printJson, printOut } from "../../output.js"
import { json } from "../shared.js"

const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("print the steps; change nothing"))
const yes = Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("run the official installer"))

/** `model install-ollama`. */
export const installOllamaCommand = Command.make("install-ollama", { dryRun, yes, json }, ({ dryRun, json, yes }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const plan = yield* llm.planOllamaInstall({ dryRun, yes })
    if (!json) yield* printOut(plan.lines.join("\n"))
    if (plan.action === null) return json ? yield* printJson(InstallOllamaReport, plan) : undefined
    // The installer writes to stderr, so stdout keeps only the JSON document.
    const report = yield* llm.installOllama({ dryRun, yes })
    if (json) return yield* printJson(InstallOllamaReport, report)
    yield* printErr("done; check it with `llmspell model status --backend ollama`")
  })).pipe(Command.withDescription("check whether Ollama is installed and running; install it with --yes"))

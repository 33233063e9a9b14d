/** `llmspell model install-ollama [--dry-run] [--yes]`: says whether Ollama is installed and running, or installs it. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as os from "node:os"
import { defaultInstance } from "../../../domain/ConfigSchema.js"
import { InstallOllamaReport, planInstall } from "../../../domain/InstallOllama.js"
import * as OllamaInstaller from "../../../layers/OllamaInstaller.js"
import { Config } from "../../../services/Config.js"
import { ProviderRegistry } from "../../../services/ProviderRegistry.js"
import { printErr, printJson, printOut } from "../../output.js"
import { json } from "../shared.js"

const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("print the steps; change nothing"))
const yes = Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("run the official installer"))

/** `model install-ollama`. */
export const installOllamaCommand = Command.make("install-ollama", { dryRun, yes, json }, ({ dryRun, json, yes }) =>
  Effect.gen(function*() {
    const config = yield* Config
    const registry = yield* ProviderRegistry
    const instance = defaultInstance(config, "ollama")
    const [installedVersion, status] = yield* Effect.all([
      OllamaInstaller.installedVersion,
      instance !== undefined
        ? registry.instance(instance.name).pipe(Effect.flatMap((b) => b.status), Effect.option)
        : Effect.succeedNone
    ], { concurrency: 2 })
    const server = status._tag === "Some"
      ? { url: status.value.endpoint, available: status.value.available, version: status.value.version }
      : { url: instance?.baseUrl ?? "http://127.0.0.1:11434", available: false }
    const plan = planInstall({ platform: os.platform(), arch: os.arch(), installedVersion, server }, { dryRun, yes })
    const report = (ran: boolean) =>
      printJson(InstallOllamaReport, {
        state: plan.state,
        installedVersion: installedVersion ?? null,
        server: server.version !== undefined ? server : { url: server.url, available: server.available },
        lines: plan.lines,
        action: plan.run !== undefined ? { description: plan.run.description, argv: plan.run.argv } : null,
        ran
      })
    if (!json) yield* printOut(plan.lines.join("\n"))
    if (plan.run === undefined) return json ? yield* report(false) : undefined
    yield* OllamaInstaller.checkReachable(plan.run.requires)
    // The installer writes to stderr (OllamaInstaller.run), so stdout keeps only the JSON document.
    yield* OllamaInstaller.run(plan.run)
    if (json) return yield* report(true)
    yield* printErr("done; check it with `llmspell model status --backend ollama`")
  })).pipe(Command.withDescription("check whether Ollama is installed and running; install it with --yes"))

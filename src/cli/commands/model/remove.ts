/**
 * `llmspell model remove <spec>`: deletes one model. Before anything is deleted it lists every file and the
 * bytes it frees; it asks only when stdin and stderr are terminals, and without a terminal it needs `--yes`.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { UsageError } from "../../../domain/Errors.js"
import { formatBytes } from "../../../domain/Format.js"
import { RemoveResult } from "../../../domain/Types.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { CliIO } from "../../CliIO.js"
import { printErr, printJson, printOut } from "../../output.js"
import { json } from "../shared.js"

const spec = Args.text({ name: "spec" }).pipe(Args.withDescription("the model to remove (one model: a catalog alias names its default quantization)"))
const yes = Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("do not ask for confirmation"))

/** `model remove`. */
export const removeCommand = Command.make("remove", { spec, yes, json }, ({ json, spec, yes }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const io = yield* CliIO
    const plan = yield* llm.planRemoval(spec)
    // Nothing known to delete: let remove itself say the model is not there (or delete its partial downloads).
    const known = plan.files.length > 0 || plan.sizeBytes !== undefined
    if (!yes && known) {
      if (!(io.stdinIsTTY && io.stderrIsTTY)) {
        return yield* new UsageError({
          reason: `not removing ${plan.model} from ${plan.instance}: there is no terminal to confirm on`,
          suggestion: `confirm with --yes: \`llmspell model remove ${spec} --yes\``
        })
      }
      const freed = plan.files.length > 0
        ? plan.files.reduce((n, f) => n + (f.sharedWith === undefined ? f.sizeBytes ?? 0 : 0), 0)
        : plan.sizeBytes ?? 0
      const lines = plan.files.map((f) =>
        f.sharedWith !== undefined
          ? `  ${f.path} (kept: ${f.sharedWith} uses it too)`
          : `  ${f.path} (${f.sizeBytes !== undefined ? formatBytes(f.sizeBytes) : "size unknown"})`
      )
      yield* printErr([`${plan.model} on ${plan.instance}:`, ...lines, `frees ${formatBytes(freed)}`].join("\n"))
      const ok = yield* io.confirm(`remove ${plan.model} from ${plan.instance}?`)
      if (!ok) return yield* printErr("not removed")
    }
    const result = yield* llm.remove(spec)
    if (json) return yield* printJson(RemoveResult, result)
    yield* printOut(
      `removed ${result.model} from ${result.instance}${result.freedBytes !== undefined ? ` (${formatBytes(result.freedBytes)} freed)` : ""}`
    )
  })).pipe(Command.withDescription("remove one model (and its partial downloads); asks first on a terminal, --yes otherwise"))

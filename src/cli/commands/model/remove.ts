/** `llmspell model remove <spec>`: deletes a model; asks first on a TTY unless `--yes`. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { formatBytes } from "../../../domain/Errors.js"
import { RemoveResult } from "../../../domain/Types.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { CliIO } from "../../CliIO.js"
import { printErr, printJson, printOut } from "../../output.js"
import { json } from "../shared.js"

const spec = Args.text({ name: "spec" }).pipe(Args.withDescription("the model to remove"))
const yes = Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("do not ask for confirmation"))

/** `model remove`. */
export const removeCommand = Command.make("remove", { spec, yes, json }, ({ json, spec, yes }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const io = yield* CliIO
    const resolved = yield* llm.resolve(spec)
    if (!yes && io.stdinIsTTY && io.stderrIsTTY) {
      const ok = yield* io.confirm(`remove ${resolved.model} from ${resolved.instance.name}?`)
      if (!ok) return yield* printErr("not removed")
    }
    const result = yield* llm.remove(spec)
    if (json) return yield* printJson(RemoveResult, result)
    yield* printOut(
      `removed ${result.model} from ${result.instance}${result.freedBytes !== undefined ? ` (${formatBytes(result.freedBytes)} freed)` : ""}`
    )
  })).pipe(Command.withDescription("remove a model (and its partial downloads)"))

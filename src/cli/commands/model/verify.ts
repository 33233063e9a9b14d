/** `llmspell model verify [spec]`: re-hashes installed files; exit code 1 if any is not ok. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { VerifyReport } from "../../../domain/Types.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { requestExitCode } from "../../ExitStatus.js"
import { printJson, printOut, table } from "../../output.js"
import { json } from "../shared.js"

const spec = Args.text({ name: "spec" }).pipe(Args.optional, Args.withDescription("a model (default: every pulled model)"))

/** `model verify`. */
export const verifyCommand = Command.make("verify", { spec, json }, ({ json, spec }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const report = yield* llm.verify(Option.getOrUndefined(spec))
    if (!report.ok) yield* requestExitCode(1)
    if (json) return yield* printJson(VerifyReport, report)
    if (report.files.length === 0) return yield* printOut("no pulled models to verify")
    yield* printOut(table(["MODEL", "FILE", "STATUS"], report.files.map((f) => [
        f.model,
        f.file,
        f.status === "ok" && f.unverified === true ? "ok (unverified: the hub gave no sha256)" : f.status
      ])))
    // Each bad file: what is wrong with it and the command that repairs it.
    const bad = report.files.filter((f) => f.status !== "ok")
    if (bad.length > 0) {
      yield* printOut(
        bad.map((f) => `${f.file}: ${f.problem ?? f.status}\n  repair: ${f.repair ?? `llmspell model pull ${f.model} --force`}`)
          .join("\n")
      )
    }
  })).pipe(Command.withDescription("check installed model files against their recorded sha256"))

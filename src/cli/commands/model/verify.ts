/**
 * `llmspell model verify [spec]`: re-hashes the files of llmspell's store against the sha256 recorded for
 * them, and says what that sha256 is: the hub's, the one an import computed from the user's file, or the
 * one a download computed because the hub published none (then "unverified": the bytes may have been
 * wrong as they arrived). Exit code 1 if any file is not ok.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { type VerifyFile, VerifyReport } from "../../../domain/Types.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { requestExitCode } from "../../ExitStatus.js"
import { printJson, printOut, table } from "../../output.js"
import { json } from "../shared.js"

const spec = Args.text({ name: "spec" }).pipe(Args.optional, Args.withDescription("a model (default: every pulled model)"))

/** A file's status, with what an ok was checked against when that is not the hub's sha256. */
const statusText = (f: VerifyFile): string =>
  f.status !== "ok"
    ? f.status
    : f.expectedFrom === "import"
    ? "ok (matches the sha256 recorded at import)"
    : f.unverified === true || f.expectedFrom === "download"
    ? "ok (unverified: the hub gave no sha256; matches the one computed at download)"
    : "ok"

/** `model verify`. */
export const verifyCommand = Command.make("verify", { spec, json }, ({ json, spec }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const report = yield* llm.verify(Option.getOrUndefined(spec))
    if (!report.ok) yield* requestExitCode(1)
    if (json) return yield* printJson(VerifyReport, report)
    if (report.files.length === 0) return yield* printOut("no pulled models to verify")
    yield* printOut(table(["MODEL", "FILE", "STATUS"], report.files.map((f) => [f.model, f.file, statusText(f)])))
    // Each bad file: what is wrong with it and the command that repairs it.
    const bad = report.files.filter((f) => f.status !== "ok")
    if (bad.length > 0) {
      yield* printOut(
        bad.map((f) => `${f.file}: ${f.problem ?? f.status}\n  repair: ${f.repair ?? `llmspell model pull ${f.model} --force`}`)
          .join("\n")
      )
    }
  })).pipe(Command.withDescription("check installed model files against their recorded sha256"))

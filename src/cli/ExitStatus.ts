/**
 * ExitStatus: lets a command that succeeded still ask for a non-zero exit code (e.g. `model verify`
 * found a corrupt file). `main` provides a fresh one per invocation and reads it when the command ends.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"

/** The exit code a successful command asked for (0 unless it asked). */
export class ExitStatus extends Context.Tag("llmspell/cli/ExitStatus")<ExitStatus, Ref.Ref<number>>() {}

/** Asks for at least this exit code when the command ends. */
export const requestExitCode = (code: number) => Effect.flatMap(ExitStatus, (ref) => Ref.update(ref, (c) => Math.max(c, code)))

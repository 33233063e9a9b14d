/**
 * ExitStatus: lets a command that succeeded still ask for a non-zero exit code (e.g. `model verify`
 * found a corrupt file). The runtime reads it when the command ends.
 */
import * as Effect from "effect/Effect"

let requested = 0

/** The requested exit code of a successful command. */
export const ExitStatus = {
  set: (code: number) => Effect.sync(() => void (requested = Math.max(requested, code))),
  get: Effect.sync(() => requested),
  reset: Effect.sync(() => void (requested = 0))
}

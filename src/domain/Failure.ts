/**
 * What a failed llmspell operation means for a front end — the CLI, the Promise facade and the
 * server alike: the one error-to-exit-code table, the JSON shape of an error (`--json`, protocol
 * envelopes), and `describeCause`, which turns any Effect failure (interruption, typed error,
 * defect) into those. Pure: no I/O.
 */
import * as Cause from "effect/Cause"
import * as Schema from "effect/Schema"
import { isLlmspellError, type LlmspellError } from "./Errors.js"
import { redactUrlsIn } from "./ServerUrl.js"
import { ErrorInfo } from "./Types.js"

/** Exit codes shared by the CLI and every other front end. */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  ModelNotFound: 3,
  BackendUnavailable: 4,
  Interrupted: 130
} as const

/** The one error-to-exit-code table. */
export const exitCodeFor = (error: { readonly _tag: string }): number => {
  switch (error._tag) {
    case "InvalidModelSpec":
    case "ConfigError":
    case "ProviderNotAvailable":
    case "UsageError":
    case "InvalidRequest":
    case "UnsupportedSchema":
    case "MissingCredentials":
    case "ServerRefused":
      return ExitCode.Usage
    case "ModelNotFound":
      return ExitCode.ModelNotFound
    case "BackendUnavailable":
      return ExitCode.BackendUnavailable
    default:
      return ExitCode.Failure
  }
}

/** The JSON shape of an error in `--json` output and protocol envelopes: `{ _tag, message, hint }` (`Types.ErrorInfo`). */
export const ErrorJson = ErrorInfo
/** The JSON shape of an error. */
export type ErrorJson = ErrorInfo

/** The `--json` error envelope: `{"error":{"_tag","message","hint"}}`. */
export const ErrorEnvelope = Schema.Struct({ error: ErrorJson })
/** The `--json` error envelope. */
export type ErrorEnvelope = typeof ErrorEnvelope.Type

/**
 * Turns any llmspell error into its `--json` shape. Every URL in the message and hint is shown
 * through `redactUrl`: a library's words can carry one llmspell never built (a CDN redirect with
 * its signature, a proxy echoing a key in a query).
 */
export const errorToJson = (error: LlmspellError): ErrorJson => ({
  _tag: error._tag,
  message: redactUrlsIn(error.message),
  hint: redactUrlsIn(error.hint)
})

/** The `--json` envelope of an llmspell error, as one line of text. */
export const errorEnvelopeText = (error: LlmspellError): string =>
  `${JSON.stringify(Schema.encodeSync(ErrorEnvelope)({ error: errorToJson(error) }))}\n`

/** What a failed llmspell operation amounts to, for any front end (CLI, Promise facade, server). */
export interface FailureDescription {
  readonly error: ErrorJson
  readonly exitCode: number
  /** The typed error, the interruption, or the defect behind it. */
  readonly original: unknown
  /** False for defects: something llmspell did not expect (a bug). */
  readonly expected: boolean
}

/** Describes a failure cause with the one exit-code table: interrupted, a typed error, or a defect. */
export const describeCause = (cause: Cause.Cause<unknown>): FailureDescription => {
  if (Cause.isInterruptedOnly(cause)) {
    return {
      error: { _tag: "Interrupted", message: "the operation was interrupted" },
      exitCode: ExitCode.Interrupted,
      original: cause,
      expected: true
    }
  }
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some" && isLlmspellError(failure.value)) {
    return { error: errorToJson(failure.value), exitCode: exitCodeFor(failure.value), original: failure.value, expected: true }
  }
  const squashed = Cause.squash(cause)
  return {
    error: {
      _tag: "UnexpectedError",
      message: redactUrlsIn(squashed instanceof Error ? squashed.message : String(squashed)),
      hint: "this is a bug in llmspell"
    },
    exitCode: ExitCode.Failure,
    original: squashed,
    expected: false
  }
}

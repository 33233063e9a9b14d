/**
 * The one place the CLI renders: JSON documents (always the Schema-encoded shared types), aligned
 * tables, key/value blocks, and errors (`error:`/`hint:` on stderr, or `{"error":…}` on stdout
 * with `--json`). Also the one mapping from a failure to an exit code.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import { UsageError } from "../domain/Errors.js"
import { describeCause, ErrorEnvelope, errorToJson, ExitCode } from "../domain/Failure.js"
import { redactUrlsIn } from "../domain/ServerUrl.js"
import type { ErrorInfo } from "../domain/Types.js"
import { CliIO } from "./CliIO.js"

/** Prints a value as one JSON document on stdout, encoded with its schema. */
export const printJson = <A, I>(schema: Schema.Schema<A, I>, value: A) =>
  Effect.flatMap(CliIO, (io) => io.stdout(`${JSON.stringify(Schema.encodeSync(schema)(value))}\n`))

/** Prints one NDJSON line on stdout. */
export const printJsonLine = <A, I>(schema: Schema.Schema<A, I>, value: A) => printJson(schema, value)

/** Prints text on stdout. */
export const printOut = (text: string) => Effect.flatMap(CliIO, (io) => io.stdout(text.endsWith("\n") ? text : `${text}\n`))

/** Prints a line on stderr (warnings, notes). */
export const printErr = (text: string) => Effect.flatMap(CliIO, (io) => io.stderr(text.endsWith("\n") ? text : `${text}\n`))

// Widths are folded, never `Math.max(...cells)`: spreading an unbounded array into a call's
// arguments overflows the stack (a table of ~120k rows did).
const longest = (texts: ReadonlyArray<string>, atLeast = 0) =>
  texts.reduce((width, text) => (text.length > width ? text.length : width), atLeast)

/** Renders rows as an aligned table with a header; empty cells for undefined. */
export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number | undefined>>) => {
  const cells = rows.map((r) => r.map((c) => (c === undefined ? "" : String(c))))
  const widths = headers.map((h, i) => longest(cells.map((r) => r[i] ?? ""), h.length))
  const line = (r: ReadonlyArray<string>) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(headers), ...cells.map(line)].join("\n")
}

/** Renders `key: value` lines with aligned values. */
export const keyValues = (pairs: ReadonlyArray<readonly [string, unknown]>) => {
  const shown = pairs.filter(([, v]) => v !== undefined)
  const width = longest(shown.map(([k]) => k))
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n")
}

/**
 * How an error is printed: `error:`/`hint:` on stderr, or `{"error":…}` on stdout with `--json`.
 * Every URL in them is shown redacted (`redactUrl`), whoever built the message.
 */
export const renderError = (
  error: ErrorInfo,
  options: { readonly json: boolean; readonly unexpected?: boolean }
): { readonly stdout?: string; readonly stderr?: string } => {
  const shown: ErrorInfo = {
    ...error,
    message: redactUrlsIn(error.message),
    ...(error.hint !== undefined ? { hint: redactUrlsIn(error.hint) } : {})
  }
  return options.json
    ? { stdout: `${JSON.stringify(Schema.encodeSync(ErrorEnvelope)({ error: shown }))}\n` }
    : {
      stderr: `${options.unexpected ? "error: unexpected: " : "error: "}${shown.message}\n${
        shown.hint !== undefined ? `hint: ${shown.hint}\n` : ""
      }`
    }
}

/** Prints an error (one that is part of a result, e.g. the backend the user named was down) as a failure is printed. */
export const printError = (error: ErrorInfo, options: { readonly json: boolean }) =>
  Effect.flatMap(CliIO, (io) => {
    const text = renderError(error, options)
    return Effect.zipRight(text.stdout ? io.stdout(text.stdout) : Effect.void, text.stderr ? io.stderr(text.stderr) : Effect.void)
  })

/** The exit code of a failed run, and what to print for it. */
export const describeFailure = (
  cause: Cause.Cause<unknown>,
  options: {
    readonly json: boolean
    readonly verbose: boolean
    /** The hint for @effect/cli's usage errors: the help of the command that was typed. */
    readonly usageHint?: string
  }
): { readonly code: number; readonly stdout?: string; readonly stderr?: string } => {
  const failure = Cause.failureOption(cause)
  // @effect/cli's own printing of usage errors is dropped (`consoleOf`): they are rendered here,
  // once, like every other error.
  if (failure._tag === "Some" && ValidationError.isValidationError(failure.value)) {
    const error = failure.value
    if (error._tag === "HelpRequested") return { code: ExitCode.Ok }
    const usage = errorToJson(new UsageError({ reason: usageText(error), suggestion: options.usageHint ?? "see `llmspell --help`" }))
    return { code: ExitCode.Usage, ...renderError(usage, options) }
  }
  const described = describeCause(cause)
  if (described.exitCode === ExitCode.Interrupted) return { code: ExitCode.Interrupted, stderr: "interrupted\n" }
  const error = described.expected
    ? described.error
    : { ...described.error, hint: `${described.error.hint}; run again with --verbose (or LLMSPELL_DEBUG=1) for details` }
  const detail = !options.verbose
    ? ""
    : described.expected
    ? described.original instanceof Error && described.original.stack ? `${described.original.stack}\n` : ""
    : `${Cause.pretty(cause)}\n`
  const text = renderError(error, { json: options.json, unexpected: !described.expected })
  // Stack traces and causes quote what libraries said, URLs included: shown redacted like the rest.
  const stderr = `${text.stderr ?? ""}${redactUrlsIn(detail)}`
  return { code: described.exitCode, ...(text.stdout ? { stdout: text.stdout } : {}), ...(stderr ? { stderr } : {}) }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g

// Escape sequences (CSI, OSC/DCS/APC/PM/SOS strings, two-byte ESC codes), then any other C0/C1
// control character but newline and tab.
const TERMINAL_CONTROL =
  // eslint-disable-next-line no-control-regex
  /\u001b\[[0-?]*[ -/]*[@-~]|\u009b[0-?]*[ -/]*[@-~]|[\u001b\u009d\u0090\u009e\u009f][\]P^_X][\s\S]*?(?:\u0007|\u001b\\|\u009c|$)|\u001b[ -~]?|[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g

/**
 * Model output made safe for a terminal: escape sequences and control characters removed, newline
 * and tab kept, so a model cannot move the cursor, retitle the window or plant a hyperlink. A
 * sequence split across two chunks loses its ESC here and prints its rest as plain text, which is
 * harmless.
 */
export const sanitizeForTerminal = (text: string): string => text.replace(TERMINAL_CONTROL, "")

/** The plain text of @effect/cli's usage message (its help docs always carry ANSI escapes). */
const usageText = (error: ValidationError.ValidationError): string => {
  const text = "error" in error ? HelpDoc.toAnsiText(error.error).replace(ANSI, "").trim() : ""
  // @effect/cli says "'abc' is not a integer"
  return text.length > 0 ? text.replace(/\s*\n\s*/g, " ").replace(/\ba (integer|option)\b/g, "an $1") : "invalid command line"
}

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
import { describeCause, ExitCode } from "../domain/Errors.js"
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

/** Renders rows as an aligned table with a header; empty cells for undefined. */
export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number | undefined>>) => {
  const cells = rows.map((r) => r.map((c) => (c === undefined ? "" : String(c))))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)))
  const line = (r: ReadonlyArray<string>) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(headers), ...cells.map(line)].join("\n")
}

/** Renders `key: value` lines with aligned values. */
export const keyValues = (pairs: ReadonlyArray<readonly [string, unknown]>) => {
  const shown = pairs.filter(([, v]) => v !== undefined)
  const width = Math.max(0, ...shown.map(([k]) => k.length))
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n")
}

/** The exit code of a failed run, and what to print for it. */
export const describeFailure = (
  cause: Cause.Cause<unknown>,
  options: { readonly json: boolean; readonly verbose: boolean }
): { readonly code: number; readonly stdout?: string; readonly stderr?: string } => {
  const failure = Cause.failureOption(cause)
  // @effect/cli has already printed its usage message; printing it again would say it twice.
  if (failure._tag === "Some" && ValidationError.isValidationError(failure.value)) {
    const error = failure.value
    if (error._tag === "HelpRequested") return { code: ExitCode.Ok }
    return options.json
      ? {
        code: ExitCode.Usage,
        stdout: `${JSON.stringify({ error: { _tag: "UsageError", message: usageText(error), hint: "see `llmspell --help`" } })}\n`
      }
      : { code: ExitCode.Usage }
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
  if (options.json) {
    return { code: described.exitCode, stdout: `${JSON.stringify({ error })}\n`, ...(detail ? { stderr: detail } : {}) }
  }
  const prefix = described.expected ? "error: " : "error: unexpected: "
  return {
    code: described.exitCode,
    stderr: `${prefix}${error.message}\n${error.hint !== undefined ? `hint: ${error.hint}\n` : ""}${detail}`
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g

/** The plain text of @effect/cli's usage message (its help docs always carry ANSI escapes). */
const usageText = (error: ValidationError.ValidationError): string => {
  const text = "error" in error ? HelpDoc.toAnsiText(error.error).replace(ANSI, "").trim() : ""
  return text.length > 0 ? text.replace(/\s*\n\s*/g, " ") : "invalid command line"
}

/**
 * CliIO: where the CLI writes. Live: the process's stdout/stderr. Tests swap in a capture. Only the
 * CLI uses it; library code returns values and never prints.
 */
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { format, stripVTControlCharacters as stripAnsi } from "node:util"

/** Output streams of the CLI. */
export interface CliIOService {
  readonly stdout: (text: string) => Effect.Effect<void>
  readonly stderr: (text: string) => Effect.Effect<void>
  readonly stdoutIsTTY: boolean
  readonly stderrIsTTY: boolean
  readonly stdinIsTTY: boolean
  /**
   * Width of the stderr terminal now, when it is one and says. Read on every call: Node updates it
   * on SIGWINCH, so a redraw after a resize fits the new width.
   */
  readonly stderrColumns: () => number | undefined
  /** `TERM=dumb`: a terminal that cannot redraw a line, so progress gets plain lines. */
  readonly dumbTerminal: boolean
  /** Reads all of stdin (for prompts piped in). */
  readonly readStdin: Effect.Effect<string>
  /** Asks a yes/no question on a TTY; false when there is no TTY. */
  readonly confirm: (question: string) => Effect.Effect<boolean>
}

/** The CLI's output streams. */
export class CliIO extends Context.Tag("llmspell/cli/CliIO")<CliIO, CliIOService>() {}

const write = (stream: NodeJS.WriteStream, text: string) =>
  Effect.async<void>((resume) => {
    // Waiting for the callback keeps ordering and back-pressure when stdout is a pipe.
    if (stream.write(text)) resume(Effect.void)
    else stream.once("drain", () => resume(Effect.void))
  })

/** The real process streams. */
export const layerLive: Layer.Layer<CliIO> = Layer.sync(CliIO, () => ({
  stdout: (text) => write(process.stdout, text),
  stderr: (text) => write(process.stderr, text),
  stdoutIsTTY: process.stdout.isTTY === true,
  stderrIsTTY: process.stderr.isTTY === true,
  stdinIsTTY: process.stdin.isTTY === true,
  stderrColumns: () => (process.stderr.isTTY === true && process.stderr.columns > 0 ? process.stderr.columns : undefined),
  dumbTerminal: process.env["TERM"] === "dumb",
  readStdin: Effect.promise(async () => {
    const chunks: Array<Buffer> = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString("utf8")
  }),
  confirm: (question) =>
    process.stdin.isTTY !== true || process.stderr.isTTY !== true
      ? Effect.succeed(false)
      : Effect.async<boolean>((resume) => {
        process.stderr.write(`${question} [y/N] `)
        process.stdin.setEncoding("utf8")
        process.stdin.resume()
        process.stdin.once("data", (data) => {
          process.stdin.pause()
          resume(Effect.succeed(/^y(es)?$/i.test(String(data).trim())))
        })
      })
}))

/** A captured CliIO for tests: what was written, and scripted stdin/confirm answers. */
export const makeCapture = (
  options: { stdin?: string; confirm?: boolean; tty?: boolean; columns?: number; dumb?: boolean } = {}
) => {
  const out: Array<string> = []
  const err: Array<string> = []
  const layer = Layer.succeed(CliIO, {
    stdout: (text) => Effect.sync(() => void out.push(text)),
    stderr: (text) => Effect.sync(() => void err.push(text)),
    stdoutIsTTY: options.tty ?? false,
    stderrIsTTY: options.tty ?? false,
    stdinIsTTY: options.stdin === undefined,
    stderrColumns: () => options.columns,
    dumbTerminal: options.dumb ?? false,
    readStdin: Effect.succeed(options.stdin ?? ""),
    confirm: () => Effect.succeed(options.confirm ?? false)
  })
  return { layer, stdout: () => out.join(""), stderr: () => err.join("") }
}

/**
 * A Console that writes through CliIO. @effect/cli prints help, usage errors and `--version` with
 * `Console`; routing it here keeps all output in one place, so a captured run sees it too.
 */
export const consoleOf = (io: CliIOService): Console.Console => {
  // @effect/cli colours everything it prints (NOTES), piped or not: `--version` is plain text here.
  // (Help is rendered by `Help.ts`, which colours only on a colour TTY.) What it prints with
  // `Console.error` is its usage errors, which `main` renders itself with a hint: dropped here so
  // they are said once.
  const plain = (args: ReadonlyArray<unknown>) => `${stripAnsi(format(...args))}\n`
  const out = (...args: ReadonlyArray<unknown>) => io.stdout(plain(args))
  const err = (...args: ReadonlyArray<unknown>) => io.stderr(plain(args))
  return {
    [Console.TypeId]: Console.TypeId,
    assert: (condition, ...args) => (condition ? Effect.void : err("Assertion failed:", ...args)),
    clear: Effect.void,
    count: () => Effect.void,
    countReset: () => Effect.void,
    debug: err,
    dir: (item) => out(item),
    dirxml: out,
    error: () => Effect.void,
    group: () => Effect.void,
    groupEnd: Effect.void,
    info: out,
    log: out,
    table: (data) => out(data),
    time: () => Effect.void,
    timeEnd: () => Effect.void,
    timeLog: () => Effect.void,
    trace: err,
    warn: err,
    unsafe: globalThis.console
  }
}

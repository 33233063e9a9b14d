/**
 * Where `llmspell chat` reads its lines: a terminal (line editing and history by `node:readline`,
 * Ctrl-C and Ctrl-D as keys) or a pipe (one line after another). The only module of the CLI that
 * reads process.stdin line by line; the session itself (`commands/chat.ts`) sees `LineSource`.
 *
 * On a terminal, a new readline interface reads each line and is closed before the answer streams:
 * while it streams the terminal stays in raw mode with only a listener for Ctrl-C (byte 3), so the
 * key stops the answer instead of raising SIGINT (which would end the whole program, `bin.ts`), and
 * keys typed meanwhile are not echoed into the answer: they are kept, and typed into the next prompt.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as readline from "node:readline"

/** What reading one line gave. */
export type LineRead =
  | { readonly _tag: "Line"; readonly text: string }
  /** Ctrl-D on an empty line, or the end of piped input. */
  | { readonly _tag: "End" }
  /** Ctrl-C at the prompt; `hadText`: it discarded a line being typed. */
  | { readonly _tag: "Cancel"; readonly hadText: boolean }

/** A source of input lines. */
export interface LineSource {
  /** Reads one line, showing `prompt` on a terminal. */
  readonly read: (prompt: string) => Effect.Effect<LineRead>
  /**
   * Succeeds when the user presses Ctrl-C (a terminal); never, for a pipe (there SIGINT ends the
   * program, as for any command). Raced against an answer to stop it.
   */
  readonly ctrlC: Effect.Effect<void>
}

// What was typed while an answer was written, made fit to type again at the next prompt: escape
// sequences (arrow keys) and control keys other than Enter and Tab dropped, Backspace applied.
const typeahead = (text: string): string => {
  let out = ""
  // eslint-disable-next-line no-control-regex
  for (const ch of text.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1bO.|\x1b./g, "")) {
    if (ch === "\x7f" || ch === "\b") out = out.slice(0, -1)
    else if (ch === "\r" || ch === "\n" || ch === "\t" || ch >= " ") out += ch
  }
  return out
}

/** Lines typed on the terminal (stdin and stdout both TTYs), with history across the session. */
export const terminalLines: Effect.Effect<LineSource, never, Scope.Scope> = Effect.gen(function*() {
  const stdin = process.stdin
  let history: Array<string> = []
  // Lines that arrived together (a paste of several lines) wait here for the reads that follow.
  const queued: Array<string> = []
  // Typed ahead during an answer, or left unfinished after the last line of a paste: typed again
  // into the next prompt, so nothing typed is lost.
  let pending = ""
  let ended = false
  // Whatever ends the session (Ctrl-D, /bye, an error, a signal), the terminal is left cooked.
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      if (stdin.isTTY) stdin.setRawMode(false)
      stdin.pause()
    })
  )
  const ask = (prompt: string) =>
    Effect.async<LineRead>((resume) => {
      const rl = readline.createInterface({
        input: stdin,
        output: process.stdout,
        terminal: true,
        prompt,
        history,
        historySize: 1000,
        removeHistoryDuplicates: true
      })
      let settled = false
      let scheduled = false
      const finish = (result: LineRead) => {
        if (settled) return
        settled = true
        history = [...(rl as unknown as { history: Array<string> }).history]
        pending = result._tag === "Line" ? rl.line : ""
        rl.close()
        resume(Effect.succeed(result))
      }
      // A chunk of input is turned into lines synchronously: the interface stays open until the
      // chunk is done, so every line of a paste is queued before it closes.
      rl.on("line", (text) => {
        queued.push(text)
        if (scheduled) return
        scheduled = true
        process.nextTick(() => finish({ _tag: "Line", text: queued.shift()! }))
      })
      rl.on("SIGINT", () => {
        const hadText = rl.line.length > 0 || queued.length > 0
        queued.length = 0
        process.stdout.write("^C\n")
        finish({ _tag: "Cancel", hadText })
      })
      rl.on("close", () => {
        if (settled) return
        if (queued.length > 0) {
          ended = true
          return finish({ _tag: "Line", text: queued.shift()! })
        }
        process.stdout.write("\n")
        finish({ _tag: "End" })
      })
      rl.prompt()
      if (pending.length > 0) {
        const text = pending
        pending = ""
        rl.write(text)
      }
      return Effect.sync(() => {
        settled = true
        rl.close()
      })
    })
  const read = (prompt: string): Effect.Effect<LineRead> =>
    Effect.suspend(() =>
      queued.length > 0
        ? Effect.succeed({ _tag: "Line", text: queued.shift()! })
        : ended
        ? Effect.succeed({ _tag: "End" })
        : ask(prompt)
    )
  const ctrlC = Effect.async<void>((resume) => {
    if (stdin.isTTY) stdin.setRawMode(true)
    const onData = (chunk: Buffer | string) => {
      const text = typeof chunk === "string" ? chunk : chunk.toString("utf8")
      const at = text.indexOf("\x03")
      if (at >= 0) {
        pending += typeahead(text.slice(0, at))
        resume(Effect.void)
      } else {
        pending += typeahead(text)
      }
    }
    stdin.on("data", onData)
    stdin.resume()
    return Effect.sync(() => {
      stdin.off("data", onData)
      stdin.pause()
      if (stdin.isTTY) stdin.setRawMode(false)
    })
  })
  return { read, ctrlC }
})

/** Lines piped on stdin, read as they come (the session answers each before reading on). */
export const pipedLines: Effect.Effect<LineSource, never, Scope.Scope> = Effect.gen(function*() {
  const rl = yield* Effect.acquireRelease(
    Effect.sync(() => readline.createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity })),
    (rl) => Effect.sync(() => rl.close())
  )
  // The interface's own iterator: it pauses stdin while lines wait, so a long file is not read ahead.
  const lines = rl[Symbol.asyncIterator]()
  const read = () =>
    Effect.map(
      Effect.promise(() => lines.next()),
      (next): LineRead => (next.done === true ? { _tag: "End" } : { _tag: "Line", text: next.value })
    )
  return { read, ctrlC: Effect.never }
})

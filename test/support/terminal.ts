/**
 * A command on a real pseudo-terminal, for tests of interactive sessions: tmux runs it in a pane of
 * its own server (a socket in a temp dir, no user config), driven in control mode (`tmux -C`) over
 * pipes. Keys go in as bytes (`send-keys -H`); what the program writes comes back as `%output`
 * events, so a test waits for a pattern in the output as it arrives, never for time to pass.
 * `bash .ci/run` installs tmux when it is missing.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { stripVTControlCharacters } from "node:util"

/** The keys a test sends besides text. */
export const KEYS = { enter: "\r", ctrlC: "\x03", ctrlD: "\x04" } as const

/** A running terminal session. */
export interface TerminalSession {
  /** Everything the program wrote so far, escape sequences included. */
  readonly raw: () => string
  /** What it wrote as plain text (escape sequences removed, CRLF as LF). */
  readonly text: () => string
  /**
   * Resolves with the text after the first match of `pattern` that starts at or after `from` (an
   * offset in `text()`; default: where the previous wait matched); rejects with what was written
   * if it does not come within `limitMs` (a hang detector, not a synchronisation).
   */
  readonly waitFor: (pattern: string | RegExp, options?: { readonly from?: number; readonly limitMs?: number }) => Promise<number>
  /** Types text or keys (bytes, as a terminal sends them). */
  readonly send: (keys: string) => void
  /** The program's exit code, once it exits. */
  readonly exited: Promise<number>
  /** Ends the tmux server (and the program, if it still runs). */
  readonly close: () => Promise<void>
}

const EXIT_MARK = /\[exited (\d+)\]/

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** Runs `argv` on a fresh pseudo-terminal of `columns`×`rows`, in `cwd` with exactly `env`. */
export const startTerminal = (
  argv: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env: Record<string, string>; readonly columns?: number; readonly rows?: number }
): TerminalSession => {
  const dir = mkdtempSync(join(tmpdir(), "llmspell-tmux-"))
  // The shell around the program prints its exit code (control mode would only say the pane closed),
  // then waits for input that never comes: a pane whose process exits can close before tmux has
  // read its last output, which lost the exit line now and then. `close()` ends it.
  const command = `cd ${shellQuote(options.cwd)} && ${argv.map(shellQuote).join(" ")}; echo "[exited $?]"; read -r _`
  const tmux: ChildProcessWithoutNullStreams = spawn(
    "tmux",
    ["-S", join(dir, "socket"), "-f", "/dev/null", "-C", "new-session", "-x", String(options.columns ?? 120), "-y", String(options.rows ?? 40), command],
    { env: { ...options.env, TERM: options.env["TERM"] ?? "xterm-256color" }, stdio: ["pipe", "pipe", "pipe"] }
  )
  const bytes: Array<Buffer> = []
  let raw = ""
  let pending = ""
  let lastMatch = 0
  const listeners = new Set<() => void>()
  let exitCode: ((code: number) => void) | undefined
  const exited = new Promise<number>((resolve) => (exitCode = resolve))
  let ended = false

  const text = () => stripVTControlCharacters(raw).replace(/\r\n/g, "\n").replace(/\r/g, "")
  const notify = () => {
    for (const l of [...listeners]) l()
  }
  tmux.stdout.on("data", (chunk: Buffer) => {
    pending += chunk.toString("latin1")
    let nl: number
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      const match = /^%output %\d+ (.*)$/.exec(line)
      if (match === null) continue
      // control mode escapes bytes below 32 and the backslash as \ooo; the rest are the bytes written
      const data = match[1]!.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
      bytes.push(Buffer.from(data, "latin1"))
      // decoded whole each time: a character split between two events is whole once both are in
      raw = Buffer.concat(bytes).toString("utf8")
      const exit = EXIT_MARK.exec(text())
      if (exit !== null) exitCode?.(Number(exit[1]))
    }
    notify()
  })
  // once the program's pane closes tmux exits on its own: a key or kill-server sent then meets a closed pipe
  tmux.stdin.on("error", () => undefined)
  tmux.on("close", () => {
    ended = true
    notify()
  })

  const waitFor = (pattern: string | RegExp, opts: { readonly from?: number; readonly limitMs?: number } = {}) =>
    new Promise<number>((resolve, reject) => {
      const from = opts.from ?? lastMatch
      const check = () => {
        const t = text()
        const rest = t.slice(from)
        const found = typeof pattern === "string"
          ? (() => {
            const at = rest.indexOf(pattern)
            return at < 0 ? undefined : { at, length: pattern.length }
          })()
          : (() => {
            const m = new RegExp(pattern.source, pattern.flags.replace("g", "")).exec(rest)
            return m === null ? undefined : { at: m.index, length: m[0].length }
          })()
        if (found !== undefined) {
          done()
          lastMatch = from + found.at + found.length
          resolve(lastMatch)
        } else if (ended) {
          done()
          reject(new Error(`the terminal closed before ${String(pattern)} appeared; it showed:\n${t}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${String(pattern)} did not appear within ${opts.limitMs ?? 90_000} ms; the terminal showed:\n${text()}`))
      }, opts.limitMs ?? 90_000)
      const done = () => {
        clearTimeout(timer)
        listeners.delete(check)
      }
      listeners.add(check)
      check()
    })

  const send = (keys: string) => {
    const hex = [...Buffer.from(keys, "utf8")].map((b) => b.toString(16).padStart(2, "0")).join(" ")
    tmux.stdin.write(`send-keys -H ${hex}\n`)
  }

  const close = async () => {
    if (!ended && tmux.exitCode === null) {
      const closed = new Promise<void>((resolve) => tmux.once("close", () => resolve()))
      tmux.stdin.write("kill-server\n")
      tmux.stdin.end()
      await closed
    }
    rmSync(dir, { recursive: true, force: true })
  }

  return { raw: () => raw, text, waitFor, send, exited, close }
}

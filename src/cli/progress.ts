/**
 * Renders a `Stream<PullProgress>` for every backend the same way: a one-row progress bar redrawn
 * at most ~10 times a second on a TTY stderr, plain lines every few seconds otherwise (a pipe,
 * `TERM=dumb`, a terminal that does not say its width), or NDJSON events on stdout with `--json`,
 * ended by an `{"interrupted":true,…}` record when the pull is stopped. Phase changes and the final
 * event are always shown (NOTES: throttling with `enforce` would drop the last 100% event, so
 * events are grouped and the last one kept). Also the spinner shown while `run` loads a model.
 * The line builders are pure functions of an event and a width, tested as such.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { type LlmspellError } from "../domain/Errors.js"
import { formatBytes } from "../domain/Format.js"
import { PullInterrupted, PullProgress, type PullResult } from "../domain/Types.js"
import { CliIO } from "./CliIO.js"

/** How progress is shown. */
export type ProgressMode = "json" | "bar" | "lines"

/** The mode for this terminal: a redrawn bar only where a line can be redrawn and its width is known. */
export const progressMode = (options: {
  readonly json: boolean
  readonly stderrIsTTY: boolean
  readonly dumbTerminal: boolean
  readonly columns: number | undefined
}): ProgressMode =>
  options.json
    ? "json"
    : options.stderrIsTTY && !options.dumbTerminal && options.columns !== undefined && options.columns > 0
    ? "bar"
    : "lines"

const formatDuration = (seconds: number) => {
  if (!Number.isFinite(seconds)) return "?"
  const s = Math.round(seconds)
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : s >= 60
    ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
    : `${s}s`
}

const percent = (p: PullProgress): string | undefined => {
  if (p.totalBytes === undefined || p.totalBytes <= 0) return p.phase === "done" ? "100%" : undefined
  const pct = Math.min(100, (p.completedBytes / p.totalBytes) * 100)
  return `${pct.toFixed(pct >= 100 ? 0 : 1)}%`
}

/** The figures of an event, most important first: percent, speed, ETA, then the byte counts. */
const figures = (p: PullProgress): Array<string> => {
  const parts: Array<string> = []
  const pct = percent(p)
  if (pct !== undefined) parts.push(pct)
  if (p.phase === "downloading" && p.bytesPerSecond !== undefined) parts.push(`${formatBytes(p.bytesPerSecond)}/s`)
  if (p.phase === "downloading" && p.etaSeconds !== undefined) parts.push(`eta ${formatDuration(p.etaSeconds)}`)
  return parts
}

const sizes = (p: PullProgress): string | undefined =>
  p.totalBytes !== undefined && p.totalBytes > 0
    ? `${formatBytes(p.completedBytes)}/${formatBytes(p.totalBytes)}`
    : p.completedBytes > 0
    ? formatBytes(p.completedBytes)
    : undefined

/** One plain line describing an event (for logs and pipes, which do not wrap): `model: phase figures`. */
export const describe = (p: PullProgress): string => {
  const parts: Array<string> = [p.phase]
  const pct = percent(p)
  if (pct !== undefined && p.totalBytes !== undefined && p.totalBytes > 0) parts.push(pct)
  const size = sizes(p)
  if (size !== undefined) parts.push(size)
  if (p.phase === "downloading" && p.bytesPerSecond !== undefined) parts.push(`${formatBytes(p.bytesPerSecond)}/s`)
  if (p.phase === "downloading" && p.etaSeconds !== undefined) parts.push(`eta ${formatDuration(p.etaSeconds)}`)
  if (p.message !== undefined) parts.push(p.message)
  return `${p.model}: ${parts.join(" ")}`
}

/** Shortens text to at most `width` characters, keeping its start and end (`bartowski/Ll…Q4_K_M`). */
export const shorten = (text: string, width: number): string => {
  if (width <= 0) return ""
  if (text.length <= width) return text
  if (width === 1) return "…"
  const tail = Math.floor((width - 1) / 2)
  return `${text.slice(0, width - 1 - tail)}…${tail > 0 ? text.slice(-tail) : ""}`
}

const BAR_MAX = 30
const BAR_MIN = 8

/**
 * The bar line of an event for a terminal `columns` wide, never wider than `columns - 1` (a line
 * as wide as the terminal wraps, and `\r` then redraws only its last row): figures first, then the
 * bar if there is room, the byte counts, a message, and the model name shortened to what is left.
 */
export const barLine = (p: PullProgress, columns: number): string => {
  const width = Math.max(1, columns - 1)
  const head = [p.phase === "downloading" ? undefined : p.phase, ...figures(p)].filter((x) => x !== undefined).join(" ")
  const tailParts = [sizes(p), p.message].filter((x): x is string => x !== undefined)
  const tail = tailParts.join(" ")
  const fixed = head.length + (tail.length > 0 ? tail.length + 1 : 0)
  // Room for the bar (with its brackets and a space) after the figures, keeping ≥ 24 for the name.
  const room = width - fixed - 1 - 24
  const barWidth = Math.min(BAR_MAX, room - 3)
  let line = head
  if (barWidth >= BAR_MIN) {
    const frac = p.totalBytes ? Math.min(1, p.completedBytes / p.totalBytes) : p.phase === "done" ? 1 : 0
    const full = Math.round(frac * barWidth)
    line += ` [${"#".repeat(full)}${"-".repeat(barWidth - full)}]`
  }
  if (tail.length > 0 && line.length + 1 + tail.length <= width) line += line.length > 0 ? ` ${tail}` : tail
  // Too narrow even for the figures: cut at the end, so what is shown is still the most important.
  if (line.length > width) return `${line.slice(0, width - 1)}…`
  const nameRoom = width - line.length - 1
  return nameRoom >= 4 ? `${line} ${shorten(p.model, nameRoom)}`.trimStart() : line
}

/** Runs a pull stream to its end, rendering it; returns the result of the `done` event. */
export const renderPull = <R>(
  stream: Stream.Stream<PullProgress, LlmspellError, R>,
  mode: ProgressMode
): Effect.Effect<PullResult | undefined, LlmspellError, R | CliIO> =>
  Effect.gen(function*() {
    const io = yield* CliIO
    let result: PullResult | undefined
    let last: PullProgress | undefined
    let lastLineAt = 0
    let lastMessage: string | undefined
    let drewBar = false
    const encode = (p: PullProgress) => `${JSON.stringify(Schema.encodeSync(PullProgress)(p))}\n`
    const emit = (p: PullProgress, now: number): Effect.Effect<void> => {
      if (p.result !== undefined) result = p.result
      const phaseChanged = p.phase !== last?.phase
      last = p
      switch (mode) {
        case "json":
          return io.stdout(encode(p))
        case "bar": {
          // The width is read on every redraw: Node updates it on SIGWINCH, so a resize takes effect.
          const line = `\r\x1b[2K${barLine(p, io.stderrColumns() ?? 80)}`
          drewBar = true
          return io.stderr(p.phase === "done" ? `${line}\n` : line)
        }
        case "lines": {
          // Retries and waits carry a message worth a line of its own; plain progress every 2 s.
          const newMessage = p.message !== undefined && p.message !== lastMessage
          lastMessage = p.message ?? lastMessage
          if (!phaseChanged && !newMessage && p.phase !== "done" && now - lastLineAt < 2000) return Effect.void
          lastLineAt = now
          return io.stderr(`${describe(p)}\n`)
        }
      }
    }
    const interrupted = Effect.suspend(() => {
      if (mode !== "json") return Effect.void
      const record = last !== undefined
        ? {
          interrupted: true as const,
          model: last.model,
          phase: last.phase,
          completedBytes: last.completedBytes,
          ...(last.totalBytes !== undefined ? { totalBytes: last.totalBytes } : {})
        }
        : { interrupted: true as const }
      return io.stdout(`${JSON.stringify(Schema.encodeSync(PullInterrupted)(record))}\n`)
    })
    yield* stream.pipe(
      // the failure travels as a value through the grouping: a group still open when the stream
      // fails (a warning or retry message just before a refusal) is rendered, then the failure
      Stream.map(Either.right),
      Stream.catchAll((e) => Stream.succeed(Either.left(e))),
      Stream.groupedWithin(256, "100 millis"),
      Stream.runForEach((chunk) =>
        Effect.gen(function*() {
          const now = Date.now()
          let previous = last?.phase
          // Keep every phase change and new message inside the chunk, and its last event; skip the rest.
          const all = Chunk.toReadonlyArray(chunk)
          const failure = all.find((e) => Either.isLeft(e))
          const events = all.flatMap((e) => (Either.isRight(e) ? [e.right] : []))
          for (let i = 0; i < events.length; i++) {
            const e = events[i]!
            const isLast = i === events.length - 1
            const message = e.message !== undefined && e.message !== events[i - 1]?.message
            if (isLast || e.phase !== previous || e.result !== undefined || message) yield* emit(e, now)
            previous = e.phase
          }
          if (failure !== undefined && Either.isLeft(failure)) return yield* Effect.fail(failure.left)
        })),
      Effect.onInterrupt(() => interrupted),
      Effect.ensuring(Effect.suspend(() => (drewBar && last?.phase !== "done" ? io.stderr("\n") : Effect.void)))
    )
    return result
  })

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

/** The spinner line while a model loads: `⠋ loading qwen2.5:0.5b (337 MiB)…`, fitted to the terminal. */
export const loadingLine = (model: string, sizeBytes: number | undefined, frame: number, columns: number): string => {
  const width = Math.max(1, columns - 1)
  const size = sizeBytes !== undefined ? ` (${formatBytes(sizeBytes)})` : ""
  const fixed = `${SPINNER[frame % SPINNER.length]} loading `.length + size.length + 1
  return shorten(`${SPINNER[frame % SPINNER.length]} loading ${shorten(model, Math.max(4, width - fixed))}${size}…`, width)
}

/**
 * Draws the loading spinner on stderr until interrupted (by the first generation event), then
 * erases its line. Only for a terminal: the caller checks.
 */
export const loadingSpinner = (model: string, sizeBytes: number | undefined): Effect.Effect<void, never, CliIO> =>
  Effect.flatMap(CliIO, (io) => {
    let frame = 0
    let drew = false
    const draw = Effect.suspend(() => {
      drew = true
      return io.stderr(`\r\x1b[2K${loadingLine(model, sizeBytes, frame++, io.stderrColumns() ?? 80)}`)
    })
    return draw.pipe(
      Effect.repeat(Schedule.spaced("100 millis")),
      Effect.asVoid,
      Effect.ensuring(Effect.suspend(() => (drew ? io.stderr("\r\x1b[2K") : Effect.void)))
    )
  })

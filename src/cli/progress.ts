/**
 * Renders a `Stream<PullProgress>` for every backend the same way: a progress bar redrawn at most
 * ~10 times a second on a TTY stderr, plain lines every few seconds otherwise, or NDJSON events on
 * stdout with `--json`. Phase changes and the final event are always shown (NOTES: throttling
 * with `enforce` would drop the last 100% event, so events are grouped and the last one kept).
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { formatBytes, type LlmspellError } from "../domain/Errors.js"
import { PullProgress, type PullResult } from "../domain/Types.js"
import { CliIO } from "./CliIO.js"

/** How progress is shown. */
export type ProgressMode = "json" | "bar" | "lines"

const formatDuration = (seconds: number) => {
  if (!Number.isFinite(seconds)) return "?"
  const s = Math.round(seconds)
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : s >= 60
    ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
    : `${s}s`
}

/** One line describing an event, without the bar. */
export const describe = (p: PullProgress): string => {
  const parts: Array<string> = [p.phase]
  if (p.totalBytes !== undefined && p.totalBytes > 0) {
    const pct = Math.min(100, (p.completedBytes / p.totalBytes) * 100)
    parts.push(`${pct.toFixed(pct >= 100 ? 0 : 1)}%`, `${formatBytes(p.completedBytes)}/${formatBytes(p.totalBytes)}`)
  } else if (p.completedBytes > 0) parts.push(formatBytes(p.completedBytes))
  if (p.bytesPerSecond !== undefined && p.phase === "downloading") parts.push(`${formatBytes(p.bytesPerSecond)}/s`)
  if (p.etaSeconds !== undefined && p.phase === "downloading") parts.push(`eta ${formatDuration(p.etaSeconds)}`)
  if (p.message !== undefined) parts.push(p.message)
  return `${p.model}: ${parts.join(" ")}`
}

const bar = (p: PullProgress, width = 24) => {
  const frac = p.totalBytes ? Math.min(1, p.completedBytes / p.totalBytes) : p.phase === "done" ? 1 : 0
  const full = Math.round(frac * width)
  return `[${"#".repeat(full)}${"-".repeat(width - full)}]`
}

/** Runs a pull stream to its end, rendering it; returns the result of the `done` event. */
export const renderPull = <R>(
  stream: Stream.Stream<PullProgress, LlmspellError, R>,
  mode: ProgressMode
): Effect.Effect<PullResult | undefined, LlmspellError, R | CliIO> =>
  Effect.gen(function*() {
    const io = yield* CliIO
    let result: PullResult | undefined
    let lastPhase: string | undefined
    let lastLineAt = 0
    let lastMessage: string | undefined
    let drewBar = false
    // A bar wider than the terminal wraps, and `\r` then redraws only its last row: keep it to one row.
    const width = Math.max(20, (io.stderrColumns() ?? 100) - 1)
    const encode = (p: PullProgress) => `${JSON.stringify(Schema.encodeSync(PullProgress)(p))}\n`
    const emit = (p: PullProgress, now: number): Effect.Effect<void> => {
      if (p.result !== undefined) result = p.result
      const phaseChanged = p.phase !== lastPhase
      lastPhase = p.phase
      switch (mode) {
        case "json":
          return io.stdout(encode(p))
        case "bar": {
          const text = `${bar(p)} ${describe(p)}`
          const line = `\r\x1b[2K${text.length > width ? `${text.slice(0, width - 1)}…` : text}`
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
    yield* stream.pipe(
      Stream.groupedWithin(256, "100 millis"),
      Stream.runForEach((chunk) =>
        Effect.gen(function*() {
          const now = Date.now()
          let previous = lastPhase
          // Keep every phase change and new message inside the chunk, and its last event; skip the rest.
          const events = Chunk.toReadonlyArray(chunk)
          for (let i = 0; i < events.length; i++) {
            const e = events[i]!
            const isLast = i === events.length - 1
            const message = e.message !== undefined && e.message !== events[i - 1]?.message
            if (isLast || e.phase !== previous || e.result !== undefined || message) yield* emit(e, now)
            previous = e.phase
          }
        })),
      Effect.ensuring(Effect.suspend(() => (drewBar && mode === "bar" && lastPhase !== "done" ? io.stderr("\n") : Effect.void)))
    )
    return result
  })

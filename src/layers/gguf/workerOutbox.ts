/**
 * How a GGUF worker's messages leave for the host: in batches, one encode and one IPC write each.
 * Text and thinking text are the hot path: a request's first chunk leaves at the end of the
 * event-loop turn (time to first token stays exact); later chunks wait up to `windowMs`, joined
 * with the request's previous chunk, so the host handles a few messages a second per sequence
 * however often node-llama-cpp yields text. Each message costs the host ~1 ms of CPU in its Effect
 * stream (the code is never hot at this rate), taken from llama.cpp on a busy 2-core machine
 * (BENCHMARKS.md, the worker link). Anything else goes at once, after what is waiting, in order:
 * `Started` must leave before a synchronous preparation blocks the thread, and `Done` closes the
 * request's text.
 */
import type { FromWorker } from "./workerProtocol.js"

/** How long text after a request's first chunk may wait to cross with what follows it. */
export const TEXT_WINDOW_MS = 50

/** An outbox over `write` (called with each batch, in order). */
export const makeOutbox = (write: (batch: ReadonlyArray<FromWorker>) => void, windowMs: number = TEXT_WINDOW_MS) => {
  let pending: Array<FromWorker> = []
  let timer: ReturnType<typeof setTimeout> | undefined
  let immediate: ReturnType<typeof setImmediate> | undefined
  // requests whose first chunk has left
  const streaming = new Set<number>()
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer)
    if (immediate !== undefined) clearImmediate(immediate)
    timer = immediate = undefined
    if (pending.length === 0) return
    const batch = pending
    pending = []
    for (const m of batch) if (m._tag === "Text" || m._tag === "Reasoning") streaming.add(m.id)
    write(batch)
  }
  return (message: FromWorker) => {
    if (message._tag === "Text" || message._tag === "Reasoning") {
      const same = pending.findLastIndex((m) => "id" in m && m.id !== undefined && m.id === message.id)
      const last = same >= 0 ? pending[same]! : undefined
      if (last !== undefined && last._tag === message._tag) pending[same] = { ...last, text: last.text + message.text }
      else pending.push(message)
      if (!streaming.has(message.id)) immediate ??= setImmediate(flush)
      else timer ??= setTimeout(flush, windowMs)
      return
    }
    if ((message._tag === "Done" || message._tag === "Failed" || message._tag === "Stopped") && message.id !== undefined) {
      streaming.delete(message.id)
    }
    pending.push(message)
    flush()
  }
}

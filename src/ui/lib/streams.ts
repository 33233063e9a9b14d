/**
 * The two streaming framings the page reads, parsed as text arrives in arbitrary pieces:
 * server-sent events (OpenAI's chat completions) and NDJSON (Ollama's pull progress). Pure:
 * no DOM, so the unit tests run them under Node (test/uiStreams.test.ts).
 */

/** One server-sent event: its type (`message` unless an `event:` line says otherwise) and its data lines joined by "\n". */
export interface SseEvent {
  readonly event: string
  readonly data: string
}

/**
 * An incremental parser of the event-stream format (WHATWG HTML, "Interpreting an event stream"):
 * lines end in CRLF, LF or CR (a CRLF may be split between two pieces); `field: value` with one
 * leading space dropped; `data` lines accumulate; a blank line dispatches the event if it has data;
 * a line starting with `:` is a comment. An event not closed by a blank line at the end is dropped,
 * as the standard says.
 */
export class SseParser {
  private buffer = ""
  private data: Array<string> = []
  private event = ""
  private skipLineFeed = false

  /** Feeds text; returns the events it completed. */
  push(text: string): Array<SseEvent> {
    let input = text
    if (this.skipLineFeed && input.startsWith("\n")) input = input.slice(1)
    this.skipLineFeed = false
    const buffer = this.buffer + input
    const out: Array<SseEvent> = []
    let start = 0
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i)
      if (c !== 10 && c !== 13) continue
      this.line(buffer.slice(start, i), out)
      if (c === 13) {
        if (i + 1 < buffer.length) {
          if (buffer.charCodeAt(i + 1) === 10) i++
        } else {
          this.skipLineFeed = true
        }
      }
      start = i + 1
    }
    this.buffer = buffer.slice(start)
    return out
  }

  private line(line: string, out: Array<SseEvent>) {
    if (line === "") {
      if (this.data.length > 0) out.push({ event: this.event === "" ? "message" : this.event, data: this.data.join("\n") })
      this.data = []
      this.event = ""
      return
    }
    if (line.startsWith(":")) return
    const colon = line.indexOf(":")
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? "" : line.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    if (field === "data") this.data.push(value)
    else if (field === "event") this.event = value
  }
}

/** One NDJSON line: its value, or the line that was not JSON. */
export type NdjsonItem =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly line: string; readonly error: string }

/** An incremental NDJSON parser: one JSON value a line (LF or CRLF), blank lines skipped, the last line needing no newline. */
export class NdjsonParser {
  private buffer = ""

  /** Feeds text; returns the lines it completed. */
  push(text: string): Array<NdjsonItem> {
    const lines = (this.buffer + text).split("\n")
    this.buffer = lines.pop() ?? ""
    return lines.flatMap(parseLine)
  }

  /** The last line, if the stream ended without a newline. */
  end(): Array<NdjsonItem> {
    const rest = this.buffer
    this.buffer = ""
    return parseLine(rest)
  }
}

const parseLine = (raw: string): Array<NdjsonItem> => {
  const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
  if (line.trim() === "") return []
  try {
    return [{ ok: true, value: JSON.parse(line) as unknown }]
  } catch (e) {
    return [{ ok: false, line: line.length > 200 ? `${line.slice(0, 200)}…` : line, error: e instanceof Error ? e.message : String(e) }]
  }
}

/**
 * The text of a response body as it arrives, decoded as UTF-8 (a character split between two
 * chunks is kept whole). Stopping early (a `break`, an abort) cancels the body.
 */
export async function* textChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let finished = false
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      const text = decoder.decode(value, { stream: true })
      if (text !== "") yield text
    }
    finished = true
    const rest = decoder.decode()
    if (rest !== "") yield rest
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined)
  }
}

/** The server-sent events of a response body. */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const parser = new SseParser()
  for await (const text of textChunks(body)) yield* parser.push(text)
}

/** The NDJSON lines of a response body. */
export async function* ndjsonLines(body: ReadableStream<Uint8Array>): AsyncGenerator<NdjsonItem> {
  const parser = new NdjsonParser()
  for await (const text of textChunks(body)) yield* parser.push(text)
  yield* parser.end()
}

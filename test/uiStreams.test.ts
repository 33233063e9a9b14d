/**
 * The web page's stream parsing (src/ui/lib/streams.ts): server-sent events as OpenAI's chat
 * completions send them and NDJSON as Ollama's pull sends it, fed in every possible split of the
 * bytes (a UTF-8 character, a CRLF or a JSON line cut between two network chunks), and through a
 * real ReadableStream of bytes.
 */
import { describe, expect, it } from "vitest"
import { NdjsonParser, ndjsonLines, SseParser, sseEvents } from "../src/ui/lib/streams.js"

const encoder = new TextEncoder()

/** A byte stream delivering `text` in the given chunk boundaries. */
const streamOf = (bytes: Uint8Array, cuts: ReadonlyArray<number>): ReadableStream<Uint8Array> => {
  const points = [0, ...cuts.filter((c) => c > 0 && c < bytes.length), bytes.length]
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i + 1 < points.length; i++) controller.enqueue(bytes.slice(points[i], points[i + 1]))
      controller.close()
    }
  })
}

const collect = async <A>(it: AsyncIterable<A>) => {
  const out: Array<A> = []
  for await (const x of it) out.push(x)
  return out
}

const SSE = [
  ": a comment the server may send to keep the connection open",
  'data: {"choices":[{"delta":{"content":"Grüße 👋"}}]}',
  "",
  "event: custom",
  "data: line one",
  "data:line two",
  "",
  "data: [DONE]",
  "",
  ""
]

describe("server-sent events", () => {
  it("parses data, event types, multi-line data and comments", () => {
    const events = new SseParser().push(SSE.join("\n"))
    expect(events).toEqual([
      { event: "message", data: '{"choices":[{"delta":{"content":"Grüße 👋"}}]}' },
      { event: "custom", data: "line one\nline two" },
      { event: "message", data: "[DONE]" }
    ])
  })

  it("gives the same events whatever the line ends (LF, CRLF, CR) and wherever the text is cut", () => {
    for (const eol of ["\n", "\r\n", "\r"]) {
      const text = SSE.join(eol)
      const whole = new SseParser().push(text)
      for (let cut = 0; cut <= text.length; cut++) {
        const parser = new SseParser()
        expect([...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))], `${JSON.stringify(eol)} cut at ${cut}`).toEqual(whole)
      }
    }
  })

  it("drops an event the stream ended before closing, and an event with no data", () => {
    const parser = new SseParser()
    expect(parser.push("event: ping\n\ndata: unfinished")).toEqual([])
  })

  it("decodes a byte stream cut inside a multi-byte character, at every byte", async () => {
    const bytes = encoder.encode(SSE.join("\r\n"))
    const expected = new SseParser().push(SSE.join("\r\n"))
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(await collect(sseEvents(streamOf(bytes, [cut]))), `cut at byte ${cut}`).toEqual(expected)
    }
  })

  it("cancels the body when the reader stops early (a Stop button)", async () => {
    let cancelled = false
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(encoder.encode("data: x\n\n"))
      },
      cancel() {
        cancelled = true
      }
    })
    for await (const event of sseEvents(body)) {
      expect(event.data).toBe("x")
      break
    }
    expect(cancelled).toBe(true)
  })
})

describe("NDJSON", () => {
  const LINES = [
    { status: "pulling manifest" },
    { status: "pulling abc", digest: "sha256:abc", total: 100, completed: 50 },
    { status: "success" }
  ]

  it("parses one value a line, CRLF or LF, blank lines skipped, the last line without a newline", () => {
    const parser = new NdjsonParser()
    const text = `${JSON.stringify(LINES[0])}\r\n\n${JSON.stringify(LINES[1])}\n${JSON.stringify(LINES[2])}`
    expect([...parser.push(text), ...parser.end()]).toEqual(LINES.map((value) => ({ ok: true, value })))
  })

  it("reports a line that is not JSON and goes on", () => {
    const parser = new NdjsonParser()
    const items = [...parser.push('{"a":1}\n\u001b[31mnot json\u001b[0m\n{"b":2}\n'), ...parser.end()]
    expect(items[0]).toEqual({ ok: true, value: { a: 1 } })
    expect(items[1]).toMatchObject({ ok: false, line: "\u001b[31mnot json\u001b[0m" })
    expect(items[2]).toEqual({ ok: true, value: { b: 2 } })
  })

  it("gives the same values from a byte stream cut at every byte", async () => {
    const bytes = encoder.encode(`${LINES.map((l) => JSON.stringify({ ...l, note: "naïve ✓" })).join("\n")}\n`)
    const expected = LINES.map((l) => ({ ok: true, value: { ...l, note: "naïve ✓" } }))
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(await collect(ndjsonLines(streamOf(bytes, [cut]))), `cut at byte ${cut}`).toEqual(expected)
    }
  })
})

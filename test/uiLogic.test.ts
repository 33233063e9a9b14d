/**
 * The web page's own logic, apart from the browser: an OpenAI stream built into an answer (text,
 * reasoning, tool calls by index, usage with and without cached tokens, in-band errors), a pull's
 * bytes, rate and ETA from Ollama's records, Markdown read into text nodes (markup in an answer
 * stays text, unsafe links stay text), and a Prometheus exposition's headline figures.
 */
import { describe, expect, it } from "vitest"
import { answerFigures, applyChunk, endAnswer, finishReasonOf, startAnswer, toolCallParams } from "../src/ui/lib/chatStream.js"
import { unloadsIn } from "../src/ui/lib/format.js"
import { type Block, type Inline, parseInline, parseMarkdown, safeHref } from "../src/ui/lib/markdown.js"
import { headlines, histogramQuantile, parseMetrics } from "../src/ui/lib/metrics.js"
import { applyPullRecord, endPull, startPull } from "../src/ui/lib/pull.js"

const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta, finish_reason: finish }]
})

describe("a streamed chat answer", () => {
  it("text and reasoning accumulate; the first token of either sets the TTFT", () => {
    let a = startAnswer(0)
    a = applyChunk(a, chunk({ role: "assistant" }), 5)
    expect(a.firstTokenAt).toBeUndefined()
    a = applyChunk(a, chunk({ reasoning_content: "Let me " }), 40)
    a = applyChunk(a, chunk({ reasoning_content: "think." }), 50)
    a = applyChunk(a, chunk({ content: "Done" }), 60)
    a = applyChunk(a, chunk({}, "stop"), 70)
    expect(a).toMatchObject({ reasoning: "Let me think.", content: "Done", finishReason: "stop", firstTokenAt: 40 })
  })

  it("tool calls are assembled by index: id and name first, then argument fragments", () => {
    let a = startAnswer(0)
    a = applyChunk(a, chunk({ tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "get_weather", arguments: "" } }] }), 1)
    a = applyChunk(a, chunk({ tool_calls: [{ index: 1, id: "call_b", type: "function", function: { name: "get_time", arguments: "{}" } }] }), 2)
    a = applyChunk(a, chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }), 3)
    a = applyChunk(a, chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }), 4)
    a = applyChunk(a, chunk({}, "tool_calls"), 5)
    expect(a.toolCalls.map((c) => [c.id, c.name, toolCallParams(c)])).toEqual([["call_a", "get_weather", { city: "Paris" }], ["call_b", "get_time", {}]])
    expect(finishReasonOf(a.finishReason)).toBe("tool-calls")
    expect(toolCallParams({ index: 0, id: "x", name: "f", arguments: "{broken" })).toBe("{broken")
  })

  it("usage: cached prompt tokens when the server reports them, absent when it does not", () => {
    const usage = (extra: Record<string, unknown>) => ({ choices: [], usage: { prompt_tokens: 50, completion_tokens: 11, total_tokens: 61, ...extra } })
    let a = applyChunk(startAnswer(0), usage({ prompt_tokens_details: { cached_tokens: 42 } }), 1)
    expect(a.usage).toEqual({ promptTokens: 50, completionTokens: 11, cachedPromptTokens: 42 })
    a = applyChunk(startAnswer(0), usage({}), 1)
    expect(a.usage).toEqual({ promptTokens: 50, completionTokens: 11 })
    expect(answerFigures(endAnswer(a, 10))).not.toHaveProperty("cachedPromptTokens")
  })

  it("tokens per second count the tokens after the first over the time after it", () => {
    let a = startAnswer(1000)
    a = applyChunk(a, chunk({ content: "a" }), 1200)
    a = applyChunk(a, { choices: [], usage: { prompt_tokens: 3, completion_tokens: 21 } }, 3200)
    const f = answerFigures(endAnswer(a, 3200))
    expect(f.timeToFirstTokenMs).toBe(200)
    expect(f.tokensPerSecond).toBe(10)
    // one token, or no time after it: no rate rather than a division by zero
    expect(answerFigures(endAnswer(applyChunk(applyChunk(startAnswer(0), chunk({ content: "a" }), 5), { usage: { completion_tokens: 1 } }, 5), 5)).tokensPerSecond).toBeUndefined()
  })

  it("an in-band error (OpenAI's shape or a bare string) is kept as the answer's error", () => {
    expect(applyChunk(startAnswer(0), { error: { message: "model crashed", type: "server_error" } }, 1).error).toBe("model crashed")
    expect(applyChunk(startAnswer(0), { error: "boom" }, 1).error).toBe("boom")
  })

  it("a stopped answer keeps what was written and says abort", () => {
    const a = endAnswer(applyChunk(startAnswer(0), chunk({ content: "Hel" }), 1), 2, "abort")
    expect([a.content, a.finishReason, finishReasonOf(a.finishReason)]).toEqual(["Hel", "abort", "abort"])
  })

  it("junk chunks change nothing", () => {
    const a = startAnswer(0)
    for (const junk of [null, 3, "text", [], { choices: "x" }, { choices: [null, 5] }]) expect(applyChunk(a, junk, 1)).toEqual(a)
  })
})

describe("a pull's progress", () => {
  const records = (digest: string, total: number, steps: ReadonlyArray<number>) =>
    [{ status: `pulling ${digest}`, digest, total }, ...steps.map((completed) => ({ status: `pulling ${digest}`, digest, total, completed }))]

  it("bytes summed over files, rate and ETA from bytes that arrived in this pull, then success", () => {
    let s = startPull("org/repo:Q4_K_M")
    s = applyPullRecord(s, { status: "pulling manifest" }, 0)
    let t = 0
    for (const r of [...records("a.gguf", 4000, [1000, 2000]), ...records("b.gguf", 1000, [0])]) s = applyPullRecord(s, r, (t += 250))
    expect(s.phase).toBe("downloading")
    expect(s.completedBytes).toBe(2000)
    expect(s.totalBytes).toBe(5000)
    // 1000 bytes over 0.75 s since the first count (the first record with `completed`)
    expect(s.bytesPerSecond).toBe(Math.round(1000 / 0.75))
    expect(s.etaSeconds).toBe(Math.round(3000 / (1000 / 0.75)))
    s = applyPullRecord(s, { status: "verifying sha256 digest" }, 2000)
    expect(s.phase).toBe("verifying")
    s = applyPullRecord(s, { status: "success" }, 2100)
    expect(s).toMatchObject({ phase: "done", completedBytes: 5000 })
    expect(endPull(s, "cancelled").phase).toBe("done")
  })

  it("a resumed pull's bytes already on disk do not count toward the rate", () => {
    let s = startPull("x")
    s = applyPullRecord(s, { status: "pulling a", digest: "a", total: 10_000, completed: 9000 }, 0)
    s = applyPullRecord(s, { status: "pulling a", digest: "a", total: 10_000, completed: 9500 }, 1000)
    expect(s.bytesPerSecond).toBe(500)
    expect(s.etaSeconds).toBe(1)
  })

  it("the total is unknown until every file has one", () => {
    let s = applyPullRecord(startPull("x"), { status: "pulling a", digest: "a", completed: 10 }, 0)
    expect(s.totalBytes).toBeUndefined()
    s = applyPullRecord(s, { status: "pulling a", digest: "a", completed: 20, total: 100 }, 1)
    expect(s.totalBytes).toBe(100)
  })

  it("an error line fails it; a cut stream or a cancel ends it so", () => {
    expect(applyPullRecord(startPull("x"), { error: "pull model manifest: file does not exist" }, 0)).toMatchObject({ phase: "failed", error: "pull model manifest: file does not exist" })
    expect(endPull(startPull("x"), { error: "cut" })).toMatchObject({ phase: "failed", error: "cut" })
    expect(endPull(startPull("x"), "cancelled").phase).toBe("cancelled")
  })
})

/** Every text of a tree, in order, as it would be rendered (text nodes only). */
const texts = (blocks: ReadonlyArray<Block>): Array<string> => {
  const inline = (nodes: ReadonlyArray<Inline>): Array<string> =>
    nodes.flatMap((n) => (typeof n === "string" ? [n] : n.t === "code" ? [n.text] : inline(n.children)))
  return blocks.flatMap((b) =>
    b.t === "p" || b.t === "h" ? inline(b.children) : b.t === "pre" ? [b.text] : b.t === "list" ? b.items.flatMap(texts) : b.t === "quote" ? texts(b.children) : []
  )
}

describe("Markdown of model answers", () => {
  it("markup in an answer is text: it reaches the tree as characters, never as elements", () => {
    const evil = `<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">`
    expect(texts(parseMarkdown(evil)).join("")).toBe(evil)
    expect(texts(parseMarkdown(`**bold <b>x</b>**`))).toEqual(["bold <b>x</b>"])
  })

  it("only http(s) and mailto links become links; javascript: and data: stay text", () => {
    expect(parseInline("[ok](https://example.com/a)")).toEqual([{ t: "link", href: "https://example.com/a", children: ["ok"] }])
    expect(parseInline("[x](javascript:alert(1))")).toEqual(["[x](javascript:alert(1))"])
    expect(parseInline("[x](data:text/html,hi)")).toEqual(["[x](data:text/html,hi)"])
    expect(safeHref("JAVASCRIPT:alert(1)")).toBeUndefined()
    expect(safeHref(" mailto:a@b.c ")).toBe("mailto:a@b.c")
  })

  it("blocks: headings, fenced code (unclosed while streaming), lists, quotes, rules, paragraphs", () => {
    const blocks = parseMarkdown("# Title\n\nSome *em* and `code`.\n\n- one\n- two\n\n1. first\n2. second\n\n> quoted\n\n---\n```ts\nconst x = 1\n")
    expect(blocks.map((b) => b.t)).toEqual(["h", "p", "list", "list", "quote", "hr", "pre"])
    expect(blocks[1]).toEqual({ t: "p", children: ["Some ", { t: "em", children: ["em"] }, " and ", { t: "code", text: "code" }, "."] })
    expect(blocks[6]).toEqual({ t: "pre", lang: "ts", text: "const x = 1" })
    expect(blocks[3]).toMatchObject({ ordered: true, start: 1 })
  })

  it("snake_case and lone asterisks stay as written", () => {
    expect(parseInline("call get_weather_now with 2 * 3")).toEqual(["call get_weather_now with 2 * 3"])
    expect(parseInline("a__b__c and window.__x")).toEqual(["a__b__c and window.__x"])
    expect(parseInline("the __init__ method")).toEqual(["the ", { t: "strong", children: ["init"] }, " method"])
  })
})

describe("Prometheus metrics", () => {
  const exposition = [
    "# HELP llmspell_requests_total Requests by route and status class.",
    "# TYPE llmspell_requests_total counter",
    'llmspell_requests_total{route="/v1/chat/completions",status="2xx"} 7',
    'llmspell_requests_total{route="/api/chat",status="4xx"} 2',
    "# TYPE llmspell_prompt_tokens_total counter",
    "llmspell_prompt_tokens_total 500",
    "# TYPE llmspell_prompt_tokens_cached_total counter",
    "llmspell_prompt_tokens_cached_total 320",
    "# TYPE llmspell_time_to_first_token_seconds histogram",
    'llmspell_time_to_first_token_seconds_bucket{model="a",le="0.1"} 2',
    'llmspell_time_to_first_token_seconds_bucket{model="a",le="0.5"} 8',
    'llmspell_time_to_first_token_seconds_bucket{model="a",le="+Inf"} 10',
    'llmspell_time_to_first_token_seconds_sum{model="a"} 3.1',
    'llmspell_time_to_first_token_seconds_count{model="a"} 10',
    'llmspell_label_escapes{text="a \\"quoted\\" \\\\ value\\n"} 1 1700000000000',
    "not a metric line at all",
    ""
  ].join("\n")

  it("parses families, labels (escapes included), timestamps, and skips junk", () => {
    const families = parseMetrics(exposition)
    expect(families.map((f) => f.name)).toEqual([
      "llmspell_requests_total",
      "llmspell_prompt_tokens_total",
      "llmspell_prompt_tokens_cached_total",
      "llmspell_time_to_first_token_seconds",
      "llmspell_label_escapes"
    ])
    expect(families[0]!.help).toBe("Requests by route and status class.")
    expect(families[4]!.samples[0]!.labels["text"]).toBe('a "quoted" \\ value\n')
  })

  it("histogram quantiles interpolate inside the bucket, as histogram_quantile does", () => {
    const ttft = parseMetrics(exposition).find((f) => f.name === "llmspell_time_to_first_token_seconds")!
    expect(histogramQuantile(ttft, 0.5)).toBeCloseTo(0.1 + (0.4 * 3) / 6)
    expect(histogramQuantile(ttft, 0.95)).toBe(0.5) // in the +Inf bucket: its lower bound
  })

  it("headlines: what the exposition has, nothing it lacks", () => {
    expect(headlines(parseMetrics(exposition)).map((h) => [h.label, h.value])).toEqual([
      ["Requests", 9],
      ["Prompt tokens", 500],
      ["Cached prompt tokens", 320],
      ["Time to first token (median)", 0.1 + (0.4 * 3) / 6],
      ["Time to first token (p95)", 0.5]
    ])
    expect(headlines(parseMetrics(""))).toEqual([])
  })
})

describe("formatting", () => {
  it("when a loaded model unloads", () => {
    const now = Date.parse("2026-12-01T00:00:00Z")
    expect(unloadsIn(undefined, false, now)).toBe("never")
    expect(unloadsIn(undefined, true, now)).toBe("in use")
    expect(unloadsIn("2026-12-01T00:00:30Z", false, now)).toBe("in 30 s")
    expect(unloadsIn("2318-11-01T00:00:00.000Z", false, now)).toBe("never")
    expect(unloadsIn("2026-11-30T00:00:00Z", false, now)).toBe("now")
  })
})

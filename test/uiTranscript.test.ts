/**
 * The chat transcript contract (src/domain/Transcript.ts) and the web page's side of it
 * (src/ui/lib/transcript.ts): the page's small checker gives the Schema's verdict on valid and
 * broken files, what the page exports decodes with the Schema, a transcript `llmspell chat`
 * would write loads in the page, and a transcript becomes the request and the OpenAI messages
 * that continue it; conversations too big for the browser's storage kept without their images'
 * bytes, the heaviest first.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { describe, expect, it } from "vitest"
import { answerMessage, decodeTranscript, toRequest, Transcript, TRANSCRIPT_VERSION } from "../src/domain/Transcript.js"
import type { Completion } from "../src/domain/Types.js"
import { answerFigures, applyChunk, endAnswer, startAnswer } from "../src/ui/lib/chatStream.js"
import {
  checkTranscript,
  type Conversation,
  emptyTranscript,
  exportFileName,
  keepConversations,
  parseTranscript,
  readConversations,
  titleOf,
  toWireMessages,
  toWireParameters,
  type TranscriptJson,
  withoutImageBytes,
  writeConversations
} from "../src/ui/lib/transcript.js"

const full: TranscriptJson = {
  version: 1,
  model: "qwen2.5:0.5b@ollama",
  title: "Weather",
  createdAt: "2026-12-01T10:00:00.000Z",
  system: "Be brief.",
  parameters: {
    temperature: 0.2,
    maxTokens: 64,
    seed: 7,
    topP: 0.9,
    topK: 40,
    reasoning: false,
    responseFormat: { schema: { type: "object", properties: { city: { type: "string" } } }, name: "place" },
    tools: [{ name: "get_weather", description: "Weather of a city", parameters: { type: "object", properties: { city: { type: "string" } } } }]
  },
  messages: [
    { role: "user", content: "What is in this picture?", images: [{ mediaType: "image/png", data: "iVBORw0KGgo=", name: "dot.png" }, { path: "/tmp/cat.jpg" }] },
    {
      role: "assistant",
      content: "",
      reasoning: "The user wants the weather.",
      toolCalls: [{ id: "call_1", name: "get_weather", params: { city: "Paris" } }],
      finishReason: "tool-calls",
      figures: { timeToFirstTokenMs: 120.5, tokensPerSecond: 31.2, totalMs: 800, promptTokens: 52, cachedPromptTokens: 40, completionTokens: 18 }
    },
    { role: "tool", content: "21 °C", toolCallId: "call_1", toolName: "get_weather" },
    { role: "assistant", content: "It is 21 °C.", finishReason: "stop", model: "other@gguf" }
  ]
}

const schemaAccepts = (x: unknown) => Either.isRight(decodeTranscript(x))

/** Transcripts, valid and not, on which the page and the Schema must agree. */
const cases: ReadonlyArray<[string, unknown]> = [
  ["the full example", full],
  ["the smallest", { version: 1, model: "m", messages: [] }],
  ["a stopped answer with no figures", { version: 1, model: "m", messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "Hel", finishReason: "abort" }] }],
  ["not an object", [1, 2]],
  ["no version", { model: "m", messages: [] }],
  ["version 0", { version: 0, model: "m", messages: [] }],
  ["a newer version", { version: 2, model: "m", messages: [] }],
  ["no model", { version: 1, messages: [] }],
  ["messages not a list", { version: 1, model: "m", messages: {} }],
  ["a system message among the turns", { version: 1, model: "m", messages: [{ role: "system", content: "x" }] }],
  ["content missing", { version: 1, model: "m", messages: [{ role: "user" }] }],
  ["a tool turn without its call id", { version: 1, model: "m", messages: [{ role: "tool", content: "x" }] }],
  ["figures on a user turn", { version: 1, model: "m", messages: [{ role: "user", content: "x", figures: {} }] }],
  ["images on an answer", { version: 1, model: "m", messages: [{ role: "assistant", content: "x", images: [{ path: "/a.png" }] }] }],
  ["an image with a bad media type", { version: 1, model: "m", messages: [{ role: "user", content: "x", images: [{ mediaType: "text/html", data: "PHNjcmlwdD4=" }] }] }],
  ["an image with neither data nor path", { version: 1, model: "m", messages: [{ role: "user", content: "x", images: [{ mediaType: "image/png" }] }] }],
  ["a negative token count", { version: 1, model: "m", messages: [{ role: "assistant", content: "x", figures: { promptTokens: -1 } }] }],
  ["a fractional token count", { version: 1, model: "m", messages: [{ role: "assistant", content: "x", figures: { completionTokens: 1.5 } }] }],
  ["an unknown finish reason", { version: 1, model: "m", messages: [{ role: "assistant", content: "x", finishReason: "done" }] }],
  ["a tool call without params (no arguments)", { version: 1, model: "m", messages: [{ role: "assistant", content: "", toolCalls: [{ id: "a", name: "f" }] }] }],
  ["a tool call without a name", { version: 1, model: "m", messages: [{ role: "assistant", content: "", toolCalls: [{ id: "a", params: {} }] }] }],
  ["a negative temperature", { version: 1, model: "m", parameters: { temperature: -1 }, messages: [] }],
  ["max tokens 0", { version: 1, model: "m", parameters: { maxTokens: 0 }, messages: [] }],
  ["a fractional seed", { version: 1, model: "m", parameters: { seed: 1.5 }, messages: [] }],
  ["top_p above 1", { version: 1, model: "m", parameters: { topP: 1.5 }, messages: [] }],
  ["an unknown response format", { version: 1, model: "m", parameters: { responseFormat: "yaml" }, messages: [] }],
  ["a tool with a bad name", { version: 1, model: "m", parameters: { tools: [{ name: "no spaces", parameters: {} }] }, messages: [] }],
  ["two tools of one name", { version: 1, model: "m", parameters: { tools: [{ name: "f", parameters: {} }, { name: "f", parameters: {} }] }, messages: [] }],
  ["a title that is not text", { version: 1, model: "m", title: 5, messages: [] }],
  ["unknown extra fields (ignored by both)", { version: 1, model: "m", messages: [{ role: "user", content: "x", extra: true }], extra: 1 }]
]

describe("the transcript contract", () => {
  it.each(cases)("page and Schema agree: %s", (_, value) => {
    const page = checkTranscript(value)
    expect(page === undefined, `page said ${page}`).toBe(schemaAccepts(value))
  })

  it("a newer version is refused by name, by both", () => {
    const newer = { version: TRANSCRIPT_VERSION + 1, model: "m", messages: [] }
    expect(checkTranscript(newer)).toMatch(/version 2; this page reads version 1/)
    const decoded = decodeTranscript(newer)
    expect(Either.isLeft(decoded) && decoded.left).toMatch(/version 2; this llmspell reads version 1/)
  })

  it("the page's export decodes with the Schema and comes back the same through JSON", () => {
    const text = JSON.stringify(full)
    const parsed = parseTranscript(text)
    expect(parsed.ok).toBe(true)
    const decoded = Schema.decodeUnknownSync(Transcript)(JSON.parse(text))
    expect(Schema.encodeSync(Transcript)(decoded)).toEqual(full)
  })

  it("a transcript the CLI builds from a completion loads in the page", () => {
    const completion: Completion = {
      model: "tiny.gguf",
      backend: "gguf",
      instance: "gguf",
      text: "Hello",
      finishReason: "stop",
      usage: { promptTokens: 10, completionTokens: 3, totalTokens: 13 },
      timings: { loadMs: 0, timeToFirstTokenMs: 15, totalMs: 40, tokensPerSecond: 120 }
    }
    const t = Schema.encodeSync(Transcript)({
      version: 1,
      model: "tiny.gguf@gguf",
      messages: [{ role: "user", content: "hi" }, answerMessage(completion, { cachedPromptTokens: 8 })]
    })
    expect(checkTranscript(t)).toBeUndefined()
    expect(t.messages[1]!.figures).toEqual({ timeToFirstTokenMs: 15, tokensPerSecond: 120, totalMs: 40, promptTokens: 10, completionTokens: 3, cachedPromptTokens: 8 })
  })

  it("an answer streamed by the page becomes figures the Schema accepts", () => {
    let a = startAnswer(1000)
    a = applyChunk(a, { choices: [{ delta: { content: "Hi" } }] }, 1100)
    a = applyChunk(a, { choices: [{ delta: { content: " there" }, finish_reason: "stop" }] }, 1300)
    a = applyChunk(a, { choices: [], usage: { prompt_tokens: 30, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 24 } } }, 1310)
    a = endAnswer(a, 1500)
    const figures = answerFigures(a)
    expect(figures).toEqual({ timeToFirstTokenMs: 100, totalMs: 500, tokensPerSecond: 10, promptTokens: 30, cachedPromptTokens: 24, completionTokens: 5 })
    expect(schemaAccepts({ version: 1, model: "m", messages: [{ role: "assistant", content: a.content, figures }] })).toBe(true)
  })

  it("toRequest: the system prompt, the turns and the parameters as a generation request", () => {
    const t = Schema.decodeUnknownSync(Transcript)(full)
    const request = toRequest(t)
    expect(request.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "assistant"])
    expect(request.messages[2]!.toolCalls).toEqual([{ id: "call_1", name: "get_weather", params: { city: "Paris" } }])
    expect(request.messages[3]).toMatchObject({ toolCallId: "call_1", toolName: "get_weather" })
    // the user turn's inline image goes with it (a path reference would not: nothing here reads files)
    expect(request.messages[1]!.images).toEqual([{ mediaType: "image/png", data: "iVBORw0KGgo=" }])
    expect(request).toMatchObject({ temperature: 0.2, maxTokens: 64, seed: 7, reasoning: false })
  })

  it("toWireMessages / toWireParameters: OpenAI's shapes, images as data: URLs, tool calls with JSON arguments", () => {
    const messages = toWireMessages(full)
    expect(messages[0]).toEqual({ role: "system", content: "Be brief." })
    expect(messages[1]).toEqual({
      role: "user",
      content: [{ type: "text", text: "What is in this picture?" }, { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }]
    })
    expect(messages[2]).toEqual({
      role: "assistant",
      content: "",
      tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }]
    })
    expect(messages[3]).toEqual({ role: "tool", content: "21 °C", tool_call_id: "call_1" })
    expect(toWireParameters(full.parameters)).toEqual({
      temperature: 0.2,
      max_tokens: 64,
      seed: 7,
      top_p: 0.9,
      reasoning_effort: "none",
      response_format: { type: "json_schema", json_schema: { name: "place", schema: { type: "object", properties: { city: { type: "string" } } }, strict: true } },
      tools: [{ type: "function", function: { name: "get_weather", description: "Weather of a city", parameters: full.parameters!.tools![0]!.parameters } }]
    })
    expect(toWireParameters({ responseFormat: "json" })).toEqual({ response_format: { type: "json_object" } })
  })

  it("titles, file names and the stored conversations (damaged entries dropped)", () => {
    expect(titleOf(full)).toBe("Weather")
    expect(titleOf(emptyTranscript("m", new Date(0)))).toBe("New conversation")
    expect(titleOf({ ...full, title: undefined })).toBe("What is in this picture?")
    expect(exportFileName({ ...full, title: "Ünïcode / <script>" })).toBe("llmspell-chat-n-code-script.json")
    const stored = writeConversations([{ id: "a", updatedAt: 1, transcript: full }])
    expect(readConversations(stored)).toEqual([{ id: "a", updatedAt: 1, transcript: full }])
    const damaged = JSON.stringify({ version: 1, conversations: [{ id: "a", updatedAt: 1, transcript: full }, { id: "b", updatedAt: 2, transcript: { version: 1 } }, null] })
    expect(readConversations(damaged).map((c) => c.id)).toEqual(["a"])
    expect(readConversations("{not json")).toEqual([])
    expect(readConversations(null)).toEqual([])
  })

  it("parseTranscript names what is wrong", () => {
    expect(parseTranscript("nope")).toMatchObject({ ok: false, error: expect.stringMatching(/^not JSON/) })
    expect(parseTranscript(JSON.stringify({ version: 1, model: "m", messages: [{ role: "tool", content: "x" }] })))
      .toEqual({ ok: false, error: "messages[0]: a tool message needs the toolCallId of the call it answers" })
  })
})

describe("conversations kept in a full storage", () => {
  const withImage = (id: string, updatedAt: number, chars: number): Conversation => ({
    id,
    updatedAt,
    transcript: {
      version: TRANSCRIPT_VERSION,
      model: "seer@ollama",
      messages: [{ role: "user" as const, content: `turn of ${id}`, images: [{ mediaType: "image/png", data: "A".repeat(chars), name: `${id}.png` }] }]
    }
  })

  it("whole when they fit; else the heaviest conversation's images' bytes go first, each image named in its place, the turns kept", () => {
    const all = [withImage("old-small", 1, 40), withImage("new-huge", 2, 4000)]
    expect(keepConversations(all, () => true)).toEqual({ kept: true, lean: false })
    let stored = ""
    const fits = (limit: number) => (text: string) => {
      if (text.length > limit) return false
      stored = text
      return true
    }
    expect(keepConversations(all, fits(1000))).toEqual({ kept: true, lean: true })
    const back = readConversations(stored)
    expect(back.map((c) => c.transcript.messages[0]!.content)).toEqual(["turn of old-small", "turn of new-huge"])
    expect(back[0]!.transcript.messages[0]!.images).toEqual(all[0]!.transcript.messages[0]!.images)
    expect(back[1]!.transcript.messages[0]!.images).toEqual([{ path: "new-huge.png", mediaType: "image/png" }])
    // what is kept is still a transcript llmspell reads
    for (const c of back) expect(Either.isRight(Schema.decodeUnknownEither(Transcript)(c.transcript))).toBe(true)
    // nothing fits: said so, nothing claimed kept
    expect(keepConversations(all, () => false)).toEqual({ kept: false, lean: true })
    // a conversation with no inline image is left as it is
    const plain: Conversation = { id: "p", updatedAt: 3, transcript: { version: TRANSCRIPT_VERSION, model: "m", messages: [{ role: "user" as const, content: "hi" }] } }
    expect(withoutImageBytes(plain)).toBe(plain)
  })
})

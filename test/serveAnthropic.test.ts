/**
 * `llmspell serve`'s Anthropic Messages API with the real `@anthropic-ai/sdk` client, against a
 * server started here over a generated GGUF model (in its worker process) and the fake Ollama:
 * messages.create (text, tools with tool_choice any and by name, a tool_result round trip,
 * thinking on and off, stop sequences, max_tokens), messages.stream (event order checked event by
 * event and against the wire Schema, finalMessage()), messages.countTokens (equal to a
 * generation's input_tokens), usage with the cache fields, errors in Anthropic's shape (401, 404
 * with the alias advice, a prompt over the context, a bad body, an image), `[serve.aliases]` in
 * every API, the probes Claude Code sends, and a client that goes away.
 */
import Anthropic from "@anthropic-ai/sdk"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { request as httpRequest } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Wire from "../src/domain/AnthropicWire.js"
import { type FakeAnthropic, startFakeAnthropic } from "./fixtures/fakeAnthropic.js"
import { type FakeAnswerInput, type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { workerBundle } from "./fixtures/ggufWorkerBundle.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe, weatherAgent } from "./fixtures/serveHarness.js"

let dir: string
let fake: FakeOllama
let cloud: FakeAnthropic
let serve: ServeHarness
let client: Anthropic

const KEY = "sk-llmspell-test-key"
const TINY = "tiny.gguf@gguf"
const AGENT = "agent@ollama"
const LONG = Array.from({ length: 300 }, (_, i) => `word${i}`).join(" ")
/** Far more tokens than the GGUF model's context (2048). */
const HUGE = Array.from({ length: 1500 }, (_, i) => `word${i}`).join(" ")

const weather: Anthropic.Tool = {
  name: "get_weather",
  description: "the weather in a city",
  input_schema: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"] }
}
const time: Anthropic.Tool = {
  name: "get_time",
  description: "the time in a zone",
  input_schema: { type: "object", properties: { zone: { type: "string", enum: ["UTC", "CET"] } }, required: ["zone"] }
}

/** The SDK's params have no sampling fields any more; the API still takes them, so they are added as the wire allows. */
const greedy = <P extends object>(params: P): P => ({ ...params, temperature: 0 }) as P

beforeAll(async () => {
  expect(workerBundle).toContain("gguf-worker")
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-anthropic-"))
  fake = await startFakeOllama({
    models: [fakeModel("agent")],
    answer: (input: FakeAnswerInput) => (input.prompt.includes("long") ? LONG : weatherAgent(input)),
    chunkDelayMs: 2
  })
  cloud = await startFakeAnthropic({ apiKey: "sk-ant-upstream" })
  serve = await startServe(
    {
      dir,
      ollamaUrl: fake.url,
      providers: { anthropic: { provider_type: "anthropic", base_url: cloud.baseUrl, api_key: "sk-ant-upstream" } },
      gguf: { isolation: "process", context_size: 2048 },
      extra: { serve: { aliases: { "claude-sonnet-*": AGENT, "small-fast": TINY, "claude-haiku-*": "gone@ollama" } } }
    },
    { apiKey: Redacted.make(KEY) }
  )
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  client = new Anthropic({ baseURL: serve.url, apiKey: KEY, maxRetries: 0 })
})

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  await cloud?.close()
  rmSync(dir, { recursive: true, force: true })
})

const lastOllamaChat = () => {
  const chats = fake.requests.filter((r) => r.path === "/api/chat")
  return chats[chats.length - 1]!.body as { messages: Array<Record<string, unknown>>; think?: unknown; tools?: unknown }
}

const textOf = (message: Anthropic.Message) =>
  message.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("")

const decodeEvent = Schema.decodeUnknownEither(Wire.StreamEvent)

/**
 * Checks a stream's events against Anthropic's order: message_start first; then blocks numbered
 * from 0, each a content_block_start, its deltas and a content_block_stop before the next begins;
 * pings anywhere after message_start; message_delta, then message_stop last. Returns the blocks.
 */
const checkOrder = (events: ReadonlyArray<Anthropic.RawMessageStreamEvent | { type: "ping" }>) => {
  expect(events[0]!.type).toBe("message_start")
  expect(events.at(-1)!.type).toBe("message_stop")
  expect(events.at(-2)!.type).toBe("message_delta")
  const blocks: Array<{ type: string; deltas: Array<string> }> = []
  let open: number | undefined
  for (const event of events.slice(1, -2)) {
    switch (event.type) {
      case "ping":
        break
      case "content_block_start":
        expect(open).toBeUndefined()
        expect(event.index).toBe(blocks.length)
        blocks.push({ type: event.content_block.type, deltas: [] })
        open = event.index
        break
      case "content_block_delta":
        expect(event.index).toBe(open)
        blocks[event.index]!.deltas.push(event.delta.type)
        break
      case "content_block_stop":
        expect(event.index).toBe(open)
        open = undefined
        break
      default:
        throw new Error(`unexpected ${event.type} inside the message`)
    }
  }
  expect(open).toBeUndefined()
  return blocks
}

/** Every raw event of a stream (the SDK's iterator skips pings; the raw response shows them). */
const rawEvents = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
  const response = await fetch(`${serve.url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": KEY, "anthropic-version": "2023-06-01", ...headers },
    body: JSON.stringify({ ...body, stream: true })
  })
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toContain("text/event-stream")
  const text = await response.text()
  return text.split("\n\n").filter((chunk) => chunk.trim() !== "").map((chunk) => {
    const name = /^event: (.+)$/m.exec(chunk)![1]!
    const data = JSON.parse(/^data: (.+)$/m.exec(chunk)![1]!) as { type: string }
    // the SSE event name is the data's type, and the data is a wire event
    expect(data.type).toBe(name)
    expect(Either.isRight(decodeEvent(data))).toBe(true)
    return data as Anthropic.RawMessageStreamEvent | { type: "ping" }
  })
}

describe("messages.create", () => {
  it("text on the GGUF model: a message in Anthropic's shape, usage with the cache fields (0 before any reuse)", async () => {
    const message = await client.messages.create(greedy({
      model: TINY,
      max_tokens: 8,
      system: "Be brief.",
      messages: [{ role: "user", content: "hello" }]
    }))
    expect(message.type).toBe("message")
    expect(message.role).toBe("assistant")
    expect(message.id).toMatch(/^msg_/)
    expect(message.model).toBe(TINY)
    expect(["end_turn", "max_tokens"]).toContain(message.stop_reason)
    expect(message.usage.input_tokens).toBeGreaterThan(0)
    expect(message.usage.output_tokens).toBeGreaterThan(0)
    expect(message.usage.output_tokens).toBeLessThanOrEqual(8)
    expect(message.usage.cache_read_input_tokens).toBe(0)
    expect(message.usage.cache_creation_input_tokens).toBe(0)
    expect(Either.isRight(Schema.decodeUnknownEither(Wire.Message)(message))).toBe(true)
  })

  it("tool_choice any makes the GGUF model call one of the tools: a tool_use block with JSON input", async () => {
    const message = await client.messages.create(greedy({
      model: TINY,
      max_tokens: 400,
      tools: [weather, time],
      tool_choice: { type: "any" },
      messages: [{ role: "user", content: "weather or time?" }]
    }))
    expect(message.stop_reason).toBe("tool_use")
    const uses = message.content.filter((b) => b.type === "tool_use")
    expect(uses).toHaveLength(1)
    const use = uses[0] as Anthropic.ToolUseBlock
    expect(["get_weather", "get_time"]).toContain(use.name)
    expect(use.id).toMatch(/^toolu_[A-Za-z0-9_-]+$/)
    expect(typeof use.input).toBe("object")
    expect(Object.keys(use.input as object)).toEqual([use.name === "get_weather" ? "city" : "zone"])
    if (use.name === "get_time") expect(["UTC", "CET"]).toContain((use.input as { zone: string }).zone)
  })

  it("tool_choice by name calls that tool", async () => {
    const message = await client.messages.create(greedy({
      model: TINY,
      max_tokens: 400,
      tools: [weather, time],
      tool_choice: { type: "tool", name: "get_time" },
      messages: [{ role: "user", content: "what time is it?" }]
    }))
    expect(message.stop_reason).toBe("tool_use")
    expect(message.content.filter((b) => b.type === "tool_use").map((b) => (b as Anthropic.ToolUseBlock).name)).toEqual(["get_time"])
  })

  it("a tool_result round trip on the Ollama model: the call, then the answer from its result (string and blocks with is_error)", async () => {
    const question: Anthropic.MessageParam = { role: "user", content: "What is the weather in Paris?" }
    const first = await client.messages.create({ model: AGENT, max_tokens: 64, tools: [weather], messages: [question] })
    expect(first.stop_reason).toBe("tool_use")
    const use = first.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock
    expect(use).toMatchObject({ name: "get_weather", input: { city: "Paris" } })

    const second = await client.messages.create({
      model: AGENT,
      max_tokens: 64,
      tools: [weather],
      messages: [question, { role: "assistant", content: first.content }, {
        role: "user",
        content: [{ type: "tool_result", tool_use_id: use.id, content: "sunny" }]
      }]
    })
    expect(second.stop_reason).toBe("end_turn")
    expect(textOf(second)).toBe("It is sunny.")
    const sent = lastOllamaChat().messages
    expect(sent.map((m) => m.role)).toEqual(["user", "assistant", "tool"])
    expect(sent[1]!.tool_calls).toMatchObject([{ function: { name: "get_weather", arguments: { city: "Paris" } } }])

    const failed = await client.messages.create({
      model: AGENT,
      max_tokens: 64,
      tools: [weather],
      messages: [question, { role: "assistant", content: first.content }, {
        role: "user",
        content: [{ type: "tool_result", tool_use_id: use.id, is_error: true, content: [{ type: "text", text: "no network" }] }]
      }]
    })
    expect(textOf(failed)).toBe("It is Error: no network.")
  })

  it("thinking enabled gives a thinking block before the text; disabled, none (and the model is told not to think)", async () => {
    const on = await client.messages.create({
      model: AGENT,
      max_tokens: 2048,
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: [{ role: "user", content: "ponder this" }]
    })
    expect(on.content.map((b) => b.type)).toEqual(["thinking", "text"])
    expect(on.content[0]).toMatchObject({ type: "thinking", thinking: "Let me think.", signature: "" })
    expect(textOf(on)).toBe("Done.")
    expect(lastOllamaChat().think).toBe(true)

    const off = await client.messages.create({
      model: AGENT,
      max_tokens: 2048,
      thinking: { type: "disabled" },
      messages: [{ role: "user", content: "ponder this" }]
    })
    expect(off.content.map((b) => b.type)).toEqual(["text"])
    expect(lastOllamaChat().think).toBe(false)
  })

  it("stop sequences on the GGUF model: the answer ends before the first one met, stop_reason stop_sequence naming it", async () => {
    const params = greedy({ model: TINY, max_tokens: 24, messages: [{ role: "user", content: "count" }] as Array<Anthropic.MessageParam> })
    const full = textOf(await client.messages.create(params))
    // a stop string the model's own (deterministic) answer contains, after its first character
    const at = [...full].findIndex((_, i) => i > 0 && /^[A-Za-z0-9]{2}$/.test(full.slice(i, i + 2)))
    expect(at, `no two letters in a row in ${JSON.stringify(full)}`).toBeGreaterThan(0)
    const stop = full.slice(at, at + 2)
    const cut = await client.messages.create({ ...params, stop_sequences: ["~never~", stop] })
    expect(cut.stop_reason).toBe("stop_sequence")
    expect(cut.stop_sequence).toBe(stop)
    expect(textOf(cut)).toBe(full.slice(0, full.indexOf(stop)))
  })

  it("max_tokens reached: stop_reason max_tokens with that many output tokens", async () => {
    const message = await client.messages.create({ model: AGENT, max_tokens: 3, messages: [{ role: "user", content: "repeat after me" }] })
    expect(message.stop_reason).toBe("max_tokens")
    expect(message.usage.output_tokens).toBe(3)
  })

  it("disable_parallel_tool_use: at most one tool_use block", async () => {
    fake.state.answer = () => ({ content: "", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }, { name: "get_weather", arguments: { city: "Rome" } }] })
    try {
      const both = await client.messages.create({ model: AGENT, max_tokens: 64, tools: [weather], messages: [{ role: "user", content: "two cities" }] })
      expect(both.content.filter((b) => b.type === "tool_use")).toHaveLength(2)
      const one = await client.messages.create({
        model: AGENT,
        max_tokens: 64,
        tools: [weather],
        tool_choice: { type: "auto", disable_parallel_tool_use: true },
        messages: [{ role: "user", content: "two cities" }]
      })
      expect(one.content.filter((b) => b.type === "tool_use").map((b) => (b as Anthropic.ToolUseBlock).input)).toEqual([{ city: "Paris" }])
    } finally {
      fake.state.answer = (input) => (input.prompt.includes("long") ? LONG : weatherAgent(input))
    }
  })
})

describe("a cloud model behind the server", () => {
  it("messages.create and messages.stream reach Anthropic's own API through the cloud backend; count_tokens is refused, not billed", async () => {
    const model = "anthropic/claude-3-5-haiku-latest"
    const message = await client.messages.create({ model, max_tokens: 32, messages: [{ role: "user", content: "hi" }] })
    expect(textOf(message)).toBe("Hello from claude-3-5-haiku-latest.")
    expect(message.model).toBe(model)
    expect(message.usage.input_tokens).toBeGreaterThan(0)
    // the upstream request carried the upstream key, never the client's
    expect(cloud.requests.at(-1)!.apiKey).toBe(`<redacted:${"sk-ant-upstream".length} chars>`)
    const streamed = await client.messages.stream({ model, max_tokens: 32, messages: [{ role: "user", content: "hi" }] }).finalMessage()
    expect(textOf(streamed)).toBe("Hello from claude-3-5-haiku-latest.")
    const before = cloud.requests.length
    const count = await client.messages.countTokens({ model, messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(count).toBeInstanceOf(Anthropic.BadRequestError)
    expect(count.error.error.message).toContain("billed")
    expect(cloud.requests.length).toBe(before)
  })
})

/** Anthropic's usage splits the prompt: `input_tokens` evaluated now, `cache_read_input_tokens` read from the cache. */
const wholePrompt = (usage: Anthropic.Usage) => usage.input_tokens + (usage.cache_read_input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0)

describe("messages.stream", () => {
  it("text on the GGUF model in Anthropic's event order; finalMessage() holds the text and the whole usage", async () => {
    const stream = client.messages.stream(greedy({ model: TINY, max_tokens: 12, messages: [{ role: "user", content: "hello" }] }))
    const events: Array<Anthropic.RawMessageStreamEvent> = []
    let text = ""
    stream.on("streamEvent", (event) => void events.push(event))
    stream.on("text", (delta) => void (text += delta))
    const final = await stream.finalMessage()
    const blocks = checkOrder(events)
    expect(blocks.map((b) => b.type)).toEqual(["text"])
    expect(new Set(blocks[0]!.deltas)).toEqual(new Set(["text_delta"]))
    expect(textOf(final)).toBe(text)
    expect(final.usage.input_tokens).toBeGreaterThan(0)
    expect(final.usage.output_tokens).toBeGreaterThan(0)
    // earlier requests left at most the chat template's opening in the model's cache
    expect(final.usage.cache_read_input_tokens).toBeLessThan(wholePrompt(final.usage))
    expect(final.usage.cache_creation_input_tokens).toBe(0)
    // the same prompt, not streamed: the same whole prompt, now all read from the sequence's cache
    // but its last token (evaluated again for the first answer token), and the same answer
    const once = await client.messages.create(greedy({ model: TINY, max_tokens: 12, messages: [{ role: "user", content: "hello" }] }))
    expect(wholePrompt(once.usage)).toBe(wholePrompt(final.usage))
    expect(once.usage.input_tokens).toBe(1)
    expect(once.usage.cache_read_input_tokens).toBe(wholePrompt(final.usage) - 1)
    expect(textOf(once)).toBe(text)
  })

  it("raw events: a ping after the first block starts, every event named after its type and valid on the wire", async () => {
    const events = await rawEvents(greedy({ model: TINY, max_tokens: 6, messages: [{ role: "user", content: "hi" }] }))
    expect(events.map((e) => e.type).slice(0, 3)).toEqual(["message_start", "content_block_start", "ping"])
    checkOrder(events)
  })

  it("a tool call streams as a tool_use block whose input comes as input_json_delta", async () => {
    const stream = client.messages.stream({ model: AGENT, max_tokens: 64, tools: [weather], messages: [{ role: "user", content: "weather?" }] })
    const events: Array<Anthropic.RawMessageStreamEvent> = []
    stream.on("streamEvent", (event) => void events.push(event))
    const final = await stream.finalMessage()
    const blocks = checkOrder(events)
    expect(blocks).toEqual([{ type: "tool_use", deltas: ["input_json_delta"] }])
    const start = events.find((e) => e.type === "content_block_start") as Anthropic.RawContentBlockStartEvent
    expect(start.content_block).toMatchObject({ type: "tool_use", name: "get_weather", input: {} })
    expect(final.stop_reason).toBe("tool_use")
    expect(final.content[0]).toMatchObject({ type: "tool_use", name: "get_weather", input: { city: "Paris" } })
  })

  it("thinking streams as thinking_delta, then a signature_delta closes its block, then the text", async () => {
    const stream = client.messages.stream({
      model: AGENT,
      max_tokens: 2048,
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: [{ role: "user", content: "ponder" }]
    })
    const events: Array<Anthropic.RawMessageStreamEvent> = []
    stream.on("streamEvent", (event) => void events.push(event))
    const final = await stream.finalMessage()
    const blocks = checkOrder(events)
    expect(blocks.map((b) => b.type)).toEqual(["thinking", "text"])
    expect(blocks[0]!.deltas.at(-1)).toBe("signature_delta")
    expect(blocks[0]!.deltas.slice(0, -1).every((d) => d === "thinking_delta")).toBe(true)
    expect(final.content[0]).toMatchObject({ type: "thinking", thinking: "Let me think." })
    expect(textOf(final)).toBe("Done.")
  })
})

describe("messages.countTokens", () => {
  it("on the GGUF model: the model's own template and tokenizer, equal to a generation's input_tokens; tools and a system prompt count", async () => {
    const messages: Array<Anthropic.MessageParam> = [{ role: "user", content: "How many tokens is this?" }]
    const counted = await client.messages.countTokens({ model: TINY, messages })
    const generated = await client.messages.create(greedy({ model: TINY, max_tokens: 1, messages }))
    // a count is of the whole prompt; a generation's input_tokens leaves out what its cache held
    expect(counted.input_tokens).toBe(wholePrompt(generated.usage))
    const withTools = await client.messages.countTokens({ model: TINY, messages, tools: [weather, time] })
    expect(withTools.input_tokens).toBeGreaterThan(counted.input_tokens)
    const generatedWithTools = await client.messages.create(greedy({ model: TINY, max_tokens: 1, messages, tools: [weather, time] }))
    expect(withTools.input_tokens).toBe(wholePrompt(generatedWithTools.usage))
    const withSystem = await client.messages.countTokens({ model: TINY, messages, system: "You are a careful assistant." })
    expect(withSystem.input_tokens).toBeGreaterThan(counted.input_tokens)
  })

  it("on the Ollama model: the count the server reports for the prompt", async () => {
    const messages: Array<Anthropic.MessageParam> = [{ role: "user", content: "one two three four" }]
    const counted = await client.messages.countTokens({ model: AGENT, messages })
    const generated = await client.messages.create({ model: AGENT, max_tokens: 4, messages })
    expect(counted.input_tokens).toBe(wholePrompt(generated.usage))
    expect(counted.input_tokens).toBeGreaterThan(0)
  })
})

describe("errors in Anthropic's shape", () => {
  it("401 authentication_error for a wrong key; the key works as x-api-key and as Authorization: Bearer", async () => {
    const wrong = new Anthropic({ baseURL: serve.url, apiKey: "nope", maxRetries: 0 })
    const error = await wrong.messages.create({ model: AGENT, max_tokens: 4, messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError)
    expect(error.status).toBe(401)
    expect(error.error).toMatchObject({ type: "error", error: { type: "authentication_error" } })
    const bearer = new Anthropic({ baseURL: serve.url, apiKey: null, authToken: KEY, maxRetries: 0 })
    const ok = await bearer.messages.create({ model: AGENT, max_tokens: 4, messages: [{ role: "user", content: "hi" }] })
    expect(ok.type).toBe("message")
  })

  it("404 not_found_error for a model name that is neither a spec here nor an alias, saying how to alias it", async () => {
    const error = await client.messages.create({ model: "claude-opus-4-1", max_tokens: 4, messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(error).toBeInstanceOf(Anthropic.NotFoundError)
    expect(error.error.error.type).toBe("not_found_error")
    expect(error.error.error.message).toContain("claude-opus-4-1")
    expect(error.error.error.message).toContain("[serve.aliases]")
    expect(error.error.error.message).not.toMatch(/llmspell (model|run|pull)/)
  })

  it("404 not_found_error for an alias whose spec this server cannot serve: the message names the alias and its spec", async () => {
    const error = await client.messages.create({ model: "claude-haiku-4-5", max_tokens: 4, messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
    expect(error).toBeInstanceOf(Anthropic.NotFoundError)
    expect(error.error.error.type).toBe("not_found_error")
    expect(error.error.error.message).toContain("claude-haiku-4-5 is an alias of gone@ollama in [serve.aliases]")
    expect(error.error.error.message).not.toContain("map the name")
    expect(error.error.error.message).not.toMatch(/llmspell (model|run|pull)/)
  })

  it("a prompt over the context: invalid_request_error 'prompt is too long: N tokens > M maximum', nothing cut; count_tokens still counts it", async () => {
    const messages: Array<Anthropic.MessageParam> = [{ role: "user", content: HUGE }]
    const error = await client.messages.create({ model: TINY, max_tokens: 4, messages }).catch((e) => e)
    expect(error).toBeInstanceOf(Anthropic.BadRequestError)
    expect(error.error.error.type).toBe("invalid_request_error")
    const match = /^prompt is too long: (\d+) tokens > (\d+) maximum$/.exec(error.error.error.message)
    expect(match, error.error.error.message).not.toBeNull()
    const [tokens, maximum] = [Number(match![1]), Number(match![2])]
    expect(tokens).toBeGreaterThan(maximum)
    expect(maximum).toBeLessThan(2048)
    const counted = await client.messages.countTokens({ model: TINY, messages })
    expect(counted.input_tokens).toBe(tokens)
    // streamed: the same refusal as a status, before any event
    const streamed = await client.messages.stream({ model: TINY, max_tokens: 4, messages }).finalMessage().catch((e) => e)
    expect(streamed).toBeInstanceOf(Anthropic.BadRequestError)
  })

  it("invalid_request_error for a body that is not a messages request, an image by URL, or a tool_choice naming no tool", async () => {
    const post = (body: unknown) =>
      fetch(`${serve.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY }, body: JSON.stringify(body) })
    for (const body of [
      { model: AGENT, messages: [{ role: "user", content: "hi" }] },
      { model: AGENT, max_tokens: 4, messages: [{ role: "robot", content: "hi" }] },
      { model: AGENT, max_tokens: 4, messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url: "https://example.com/a.png" } }] }] },
      { model: AGENT, max_tokens: 4, tools: [weather], tool_choice: { type: "tool", name: "nope" }, messages: [{ role: "user", content: "hi" }] },
      { model: AGENT, max_tokens: 4, temperature: 3, messages: [{ role: "user", content: "hi" }] },
      { model: AGENT, max_tokens: 4, messages: [] }
    ]) {
      const response = await post(body)
      expect(response.status, JSON.stringify(body)).toBe(400)
      const error = await response.json() as Wire.ErrorResponse
      expect(error.type).toBe("error")
      expect(error.error.type).toBe("invalid_request_error")
      expect(response.headers.get("request-id")).toMatch(/^req_/)
    }
    const notJson = await fetch(`${serve.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY }, body: "{" })
    expect(notJson.status).toBe(400)
    expect((await notJson.json() as Wire.ErrorResponse).error.type).toBe("invalid_request_error")
  })

  it("413 request_too_large for a body over the server's limit, refused before it is read", async () => {
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL(`${serve.url}/v1/messages`)
      const req = httpRequest({
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(1 << 30), "x-api-key": KEY }
      }, (res) => {
        let body = ""
        res.on("data", (c: Buffer) => void (body += c.toString()))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on("error", reject)
      req.write("{")
    })
    expect(status.status).toBe(413)
    expect((JSON.parse(status.body) as Wire.ErrorResponse).error.type).toBe("request_too_large")
  })

  it("529 overloaded_error with Retry-After when every slot is taken and the queue is full", async () => {
    const small = await startServe({ dir: mkdtempSync(join(tmpdir(), "llmspell-serve-anthropic-busy-")), ollamaUrl: fake.url }, { concurrency: 1, maxQueue: 0 })
    try {
      fake.setFault("/api/chat", { kind: "stall", after: 1, times: 1 })
      const holder = new AbortController()
      const held = await fetch(`${small.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: AGENT, max_tokens: 64, stream: true, messages: [{ role: "user", content: "hold" }] }),
        signal: holder.signal
      })
      expect(held.status).toBe(200)
      await small.waitForLoad((l) => l.running === 1)
      const busy = new Anthropic({ baseURL: small.url, apiKey: "unused", maxRetries: 0 })
      const error = await busy.messages.create({ model: AGENT, max_tokens: 4, messages: [{ role: "user", content: "hi" }] }).catch((e) => e)
      expect(error).toBeInstanceOf(Anthropic.APIError)
      expect(error.status).toBe(529)
      expect(error.error.error.type).toBe("overloaded_error")
      expect(Number(error.headers.get("retry-after"))).toBeGreaterThan(0)
      holder.abort()
      await small.waitForLoad((l) => l.running === 0 && l.inFlight === 0)
    } finally {
      fake.clearFaults()
      await small.close()
    }
  })

  it("an unknown path under /v1/messages is a not_found_error", async () => {
    const response = await fetch(`${serve.url}/v1/messages/batches`, { headers: { "x-api-key": KEY } })
    expect(response.status).toBe(404)
    expect((await response.json() as Wire.ErrorResponse).error.type).toBe("not_found_error")
  })
})

describe("model names agents send: [serve.aliases]", () => {
  it("a glob alias answers in every API; the answer names the model as asked", async () => {
    const message = await client.messages.create({ model: "claude-sonnet-4-6", max_tokens: 64, messages: [{ role: "user", content: "hi" }] })
    expect(message.model).toBe("claude-sonnet-4-6")
    expect(textOf(message)).toBe("You said: hi")
    const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" }
    const openai = await fetch(`${serve.url}/v1/chat/completions`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "hey" }] })
    })
    expect(openai.status).toBe(200)
    expect((await openai.json() as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content).toBe("You said: hey")
    const ollama = await fetch(`${serve.url}/api/chat`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ model: "claude-sonnet-x", stream: false, messages: [{ role: "user", content: "yo" }] })
    })
    expect(ollama.status).toBe(200)
    expect((await ollama.json() as { message: { content: string } }).message.content).toBe("You said: yo")
  })

  it("an exact alias to the GGUF model; /v1/models lists the aliases beside the specs, in Anthropic's shape for its clients", async () => {
    const message = await client.messages.create(greedy({ model: "small-fast", max_tokens: 2, messages: [{ role: "user", content: "hi" }] }))
    expect(message.model).toBe("small-fast")
    expect(message.usage.output_tokens).toBeGreaterThan(0)
    const ids: Array<string> = []
    for await (const model of client.models.list()) {
      expect(model.type).toBe("model")
      ids.push(model.id)
    }
    expect(ids).toContain("small-fast")
    expect(ids).toContain(TINY)
    const openai = await fetch(`${serve.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })
    const listed = await openai.json() as { object: string; data: Array<{ id: string; object: string }> }
    expect(listed.object).toBe("list")
    expect(listed.data.find((m) => m.id === "small-fast")).toMatchObject({ object: "model" })
  })
})

describe("what Claude Code sends", () => {
  it("HEAD / answers 200; POST /v1/messages?beta=true with anthropic-beta headers is served", async () => {
    const head = await fetch(`${serve.url}/`, { method: "HEAD", headers: { "x-api-key": KEY } })
    expect(head.status).toBe(200)
    const beta = await client.beta.messages.create({
      model: AGENT,
      max_tokens: 64,
      betas: ["interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14"],
      messages: [{ role: "user", content: [{ type: "text", text: "hi", cache_control: { type: "ephemeral" } }] }],
      metadata: { user_id: "user_abc" }
    })
    expect(beta.content).toMatchObject([{ type: "text", text: "You said: hi" }])
  })

  it("system blocks with cache_control and a system-reminder block in the user turn: all reach the model", async () => {
    await client.messages.create({
      model: AGENT,
      max_tokens: 64,
      system: [{ type: "text", text: "You are an agent." }, { type: "text", text: "Be careful.", cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: [{ type: "text", text: "<system-reminder>ctx</system-reminder>" }, { type: "text", text: "do it" }] }]
    })
    const sent = lastOllamaChat().messages
    expect(sent[0]).toMatchObject({ role: "system", content: "You are an agent.\n\nBe careful." })
    expect(sent[1]).toMatchObject({ role: "user", content: "<system-reminder>ctx</system-reminder>\n\ndo it" })
  })

  it("a client that goes away mid-stream aborts the generation upstream, and the slot is freed", async () => {
    fake.clearLog()
    // the upstream answer holds after two chunks until its request is closed: only an abort that
    // reaches Ollama ends it (an unpaced answer could finish before the abort on a busy machine)
    fake.setFault("/api/chat", { kind: "stall", after: 2, times: 1 })
    const controller = new AbortController()
    const response = await fetch(`${serve.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEY },
      body: JSON.stringify({ model: AGENT, max_tokens: 1000, stream: true, messages: [{ role: "user", content: "say something long" }] }),
      signal: controller.signal
    })
    expect(response.status).toBe(200)
    const reader = response.body!.getReader()
    let seen = ""
    while (!seen.includes("text_delta")) seen += new TextDecoder().decode((await reader.read()).value)
    controller.abort()
    const upstream = fake.responses.find((r) => r.route === "/api/chat")!
    await upstream.closed
    expect(upstream.sent).toBeLessThanOrEqual(2)
    await serve.waitForLoad((l) => l.running === 0 && l.inFlight === 0)
  })
})

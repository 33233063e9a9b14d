/**
 * The fake OpenAI and Anthropic servers speak the wire formats the real clients expect: the `openai`
 * npm client streams text, tool calls by index and the usage chunk from the fake, and reads its
 * error bodies; the Anthropic fake's SSE events arrive in the documented order.
 */
import * as AnthropicClient from "@effect/ai-anthropic/AnthropicClient"
import * as OpenAiClient from "@effect/ai-openai/OpenAiClient"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeAnthropic, startFakeAnthropic } from "./fixtures/fakeAnthropic.js"
import { gate } from "./fixtures/fakeHttp.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"

describe("fake OpenAI server", () => {
  let fake: FakeOpenAI
  beforeAll(async () => {
    fake = await startFakeOpenAI({ apiKey: "sk-fake-test", models: ["gpt-4o-mini"] })
  })
  afterAll(() => fake.close())
  const client = () => new OpenAI({ apiKey: "sk-fake-test", baseURL: fake.baseUrl, maxRetries: 0 })

  it("streams text, tool calls by index and a usage chunk that the openai client assembles", async () => {
    fake.setAnswer(() => ({ content: "one two three", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] }))
    const stream = client().chat.completions.stream({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream_options: { include_usage: true }
    })
    const final = await stream.finalChatCompletion()
    expect(final.choices[0]!.message.content).toBe("one two three")
    expect(final.choices[0]!.message.tool_calls?.[0]).toMatchObject({ type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } })
    expect(final.choices[0]!.finish_reason).toBe("tool_calls")
    expect(final.usage?.completion_tokens).toBeGreaterThan(0)
  })

  it("answers errors with OpenAI's error body and redacts the key in its log", async () => {
    fake.setFault("/v1/chat/completions", { kind: "rateLimit", retryAfterSeconds: 7, times: 1 })
    const error = await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] }).catch((e) => e)
    expect(error.status).toBe(429)
    expect(error.headers.get("retry-after")).toBe("7")
    expect(error.error).toMatchObject({ type: "requests", code: "rate_limit_exceeded" })
    const missing = await client().chat.completions.create({ model: "nope", messages: [] }).catch((e) => e)
    expect(missing.status).toBe(404)
    expect(JSON.stringify(fake.requests)).not.toContain("sk-fake-test")
    const models = await client().models.list()
    expect(models.data.map((m) => m.id)).toEqual(["gpt-4o-mini"])
    const embedded = await client().embeddings.create({ model: "gpt-4o-mini", input: ["a", "b"] })
    expect(embedded.data).toHaveLength(2)
  })

  it("hold: the stream waits after N chunks for the test's gate, and the client then gets the whole answer", async () => {
    fake.setAnswer(() => ({ content: "one two three" }))
    const open = gate()
    fake.setFault("/v1/chat/completions", { kind: "hold", afterChunks: 2, until: open, times: 1 })
    const stream = await client().chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }], stream: true })
    const iterator = stream[Symbol.asyncIterator]()
    const first = [(await iterator.next()).value, (await iterator.next()).value]
    expect(first.map((c) => c.choices[0]?.delta.content)).toEqual(["", "one "])
    const held = await fake.http.reached("held", { route: "/v1/chat/completions" })
    expect(held.records).toBe(2)
    open.open()
    let text = ""
    for (;;) {
      const next = await iterator.next()
      if (next.done) break
      text += next.value.choices[0]?.delta.content ?? ""
    }
    expect(text).toBe("two three")
  })
})

describe("fake Anthropic server", () => {
  let fake: FakeAnthropic
  beforeAll(async () => {
    fake = await startFakeAnthropic({ apiKey: "sk-ant-fake" })
  })
  afterAll(() => fake.close())

  it("streams message_start, content blocks with tool_use input_json_delta, message_delta and message_stop", async () => {
    fake.setAnswer(() => ({ content: "hi there", toolUses: [{ name: "lookup", input: { q: "x" } }] }))
    const response = await fetch(`${fake.baseUrl}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": "sk-ant-fake", "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ model: "claude-3-5-haiku-latest", max_tokens: 64, stream: true, messages: [{ role: "user", content: "hi" }] })
    })
    const text = await response.text()
    const names = [...text.matchAll(/^event: (\S+)$/gm)].map((m) => m[1])
    expect(names[0]).toBe("message_start")
    expect(names.at(-2)).toBe("message_delta")
    expect(names.at(-1)).toBe("message_stop")
    expect(text).toContain("\"input_json_delta\"")
    expect(text).toContain("\"tool_use\"")
    const denied = await fetch(`${fake.baseUrl}/v1/messages`, { method: "POST", headers: { "x-api-key": "wrong" }, body: "{}" })
    expect(denied.status).toBe(401)
    expect(await denied.json()).toMatchObject({ type: "error", error: { type: "authentication_error" } })
  })
})

describe("the fakes against @effect/ai's own provider clients", () => {
  it("@effect/ai-openai's OpenAiClient lists models and embeds; @effect/ai-anthropic's AnthropicClient decodes the fake's message stream", async () => {
    const openai = await startFakeOpenAI({ apiKey: "sk-effect", models: ["gpt-4o-mini"] })
    const anthropic = await startFakeAnthropic({ apiKey: "sk-ant-effect" })
    try {
      anthropic.setAnswer(() => ({ content: "hi there", toolUses: [{ name: "lookup", input: { q: "x" } }] }))
      const program = Effect.gen(function*() {
        const oa = yield* OpenAiClient.make({ apiKey: Redacted.make("sk-effect"), apiUrl: openai.baseUrl })
        const models = yield* oa.client.listModels()
        const embedded = yield* oa.createEmbedding({ model: "gpt-4o-mini", input: ["a", "b"], encoding_format: "float" })
        const an = yield* AnthropicClient.make({ apiKey: Redacted.make("sk-ant-effect"), apiUrl: anthropic.baseUrl })
        const events = yield* Stream.runCollect(
          an.createMessageStream({ payload: { model: "claude-3-5-haiku-latest", max_tokens: 64, messages: [{ role: "user", content: "hi" }] } })
        )
        return { models: models.data.map((m) => m.id), vectors: embedded.data.length, types: Chunk.toReadonlyArray(events).map((e) => e.type) }
      }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer))
      const result = await Effect.runPromise(program)
      expect(result.models).toEqual(["gpt-4o-mini"])
      expect(result.vectors).toBe(2)
      expect(result.types[0]).toBe("message_start")
      expect(result.types).toContain("content_block_delta")
      expect(result.types.at(-1)).toBe("message_stop")
    } finally {
      await Promise.all([openai.close(), anthropic.close()])
    }
  })
})

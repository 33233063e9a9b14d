/**
 * `llmspell serve`'s OpenAI API with the real `openai` npm client and `@effect/ai-openai`'s
 * OpenAiLanguageModel (`apiUrl` at the server's `/v1`): models, chat (plain and streaming, with
 * usage), tools with streamed tool-call deltas and tool_choice, json_schema, embeddings (the
 * client's default base64 and float), the Responses API through generateText/streamText, and
 * OpenAI's error shape.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import * as OpenAiClient from "@effect/ai-openai/OpenAiClient"
import * as OpenAiLanguageModel from "@effect/ai-openai/OpenAiLanguageModel"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeOllama, fakeEmbedding, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe, weatherAgent } from "./fixtures/serveHarness.js"

let dir: string
let fake: FakeOllama
let serve: ServeHarness
let client: OpenAI

const TINY = "tiny.gguf@gguf"
const AGENT = "agent@ollama"

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "the weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-openai-"))
  fake = await startFakeOllama({ models: [fakeModel("agent"), fakeModel("embedder")], answer: weatherAgent })
  serve = await startServe({ dir, ollamaUrl: fake.url })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "unused", maxRetries: 0 })
})

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe("OpenAI API through the openai client", () => {
  it("models lists every backend's models as specs", async () => {
    const ids: Array<string> = []
    for await (const m of client.models.list()) ids.push(m.id)
    expect(ids).toContain(TINY)
    expect(ids).toContain("agent:latest@ollama")
  })

  it("chat completion on the GGUF model, with usage", async () => {
    const reply = await client.chat.completions.create({
      model: TINY,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello" }],
      max_tokens: 8,
      seed: 3,
      temperature: 0
    })
    expect(reply.object).toBe("chat.completion")
    expect(reply.choices[0]!.message.role).toBe("assistant")
    expect(["stop", "length"]).toContain(reply.choices[0]!.finish_reason)
    expect(reply.usage!.completion_tokens).toBeGreaterThan(0)
    expect(reply.usage!.completion_tokens).toBeLessThanOrEqual(8)
  })

  it("streaming: content deltas, a finish_reason, a usage chunk with include_usage, the same text as unstreamed", async () => {
    const request = { model: TINY, messages: [{ role: "user" as const, content: "tell me" }], max_tokens: 10, seed: 5, temperature: 0 }
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } })
    let text = ""
    let finish: string | null = null
    let usage: OpenAI.CompletionUsage | undefined
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage
      const choice = chunk.choices[0]
      if (choice?.delta.content) text += choice.delta.content
      if (choice?.finish_reason) finish = choice.finish_reason
    }
    expect(finish).not.toBeNull()
    expect(usage!.completion_tokens).toBeGreaterThan(0)
    const whole = await client.chat.completions.create(request)
    expect(text).toBe(whole.choices[0]!.message.content)
  })

  it("tools: streamed tool_calls deltas merge by index into a call; its result goes back by tool_call_id", async () => {
    const stream = await client.chat.completions.create({
      model: AGENT,
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools: [weatherTool],
      stream: true
    })
    const calls: Array<{ id?: string; name: string; arguments: string }> = []
    let finish: string | null = null
    for await (const chunk of stream) {
      for (const d of chunk.choices[0]?.delta.tool_calls ?? []) {
        calls[d.index] ??= { name: "", arguments: "" }
        if (d.id) calls[d.index]!.id = d.id
        if (d.function?.name) calls[d.index]!.name += d.function.name
        if (d.function?.arguments) calls[d.index]!.arguments += d.function.arguments
      }
      if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason
    }
    expect(finish).toBe("tool_calls")
    expect(calls).toHaveLength(1)
    expect(calls[0]!.name).toBe("get_weather")
    expect(JSON.parse(calls[0]!.arguments)).toEqual({ city: "Paris" })
    const followUp = await client.chat.completions.create({
      model: AGENT,
      messages: [
        { role: "user", content: "weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [{ id: calls[0]!.id!, type: "function", function: { name: "get_weather", arguments: calls[0]!.arguments } }] },
        { role: "tool", tool_call_id: calls[0]!.id!, content: "sunny" }
      ],
      tools: [weatherTool]
    })
    expect(followUp.choices[0]!.message.content).toBe("It is sunny.")
  })

  it("tool_choice none sends no tools; a named tool_choice that is not among the tools is a 400", async () => {
    const none = await client.chat.completions.create({ model: AGENT, messages: [{ role: "user", content: "hi" }], tools: [weatherTool], tool_choice: "none" })
    expect(none.choices[0]!.message.tool_calls ?? []).toHaveLength(0)
    const sent = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as { tools?: unknown }
    expect(sent.tools ?? []).toEqual([])
    const bad = await client.chat.completions.create({
      model: AGENT,
      messages: [{ role: "user", content: "hi" }],
      tools: [weatherTool],
      tool_choice: { type: "function", function: { name: "nope" } }
    }).then(() => undefined, (e) => e)
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError)
  })

  it("response_format json_schema: the schema reaches the backend; the answer parses", async () => {
    const schema = { type: "object", properties: { city: { type: "string" }, temperature: { type: "number" } }, required: ["city", "temperature"] }
    const reply = await client.chat.completions.create({
      model: AGENT,
      messages: [{ role: "user", content: "json" }],
      response_format: { type: "json_schema", json_schema: { name: "weather", schema, strict: true } }
    })
    expect(JSON.parse(reply.choices[0]!.message.content!)).toEqual({ city: "Paris", temperature: 21 })
    expect((fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as { format: unknown }).format).toEqual(schema)
  })

  it("embeddings: the client's default (base64) and float give the same vectors", async () => {
    const b64 = await client.embeddings.create({ model: "embedder@ollama", input: ["one", "two"] })
    const float = await client.embeddings.create({ model: "embedder@ollama", input: ["one", "two"], encoding_format: "float" })
    expect(b64.data).toHaveLength(2)
    expect(b64.data[0]!.embedding.length).toBe(2048)
    const expected = fakeEmbedding("one", 2048)
    expect(float.data[0]!.embedding).toEqual(expected)
    b64.data[0]!.embedding.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5))
    expect(float.usage.prompt_tokens).toBeGreaterThan(0)
  })

  it("errors in OpenAI's shape: an unknown model is a 404 NotFoundError, a malformed body a 400", async () => {
    const missing = await client.chat.completions.create({ model: "nope@gguf", messages: [{ role: "user", content: "x" }] }).then(() => undefined, (e) => e)
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError)
    expect((missing as InstanceType<typeof OpenAI.NotFoundError>).error).toMatchObject({ type: "invalid_request_error", code: "model_not_found" })
    const res = await fetch(`${serve.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: `{"model":"x","messages":"no"}` })
    expect(res.status).toBe(400)
    const body = await res.json() as { error: { message: string; type: string } }
    expect(body.error.type).toBe("invalid_request_error")
    expect(body.error.message).toContain("messages")
  })
})

describe("@effect/ai-openai's OpenAiLanguageModel against /v1/responses", () => {
  const layerFor = (model: string) =>
    OpenAiLanguageModel.layer({ model }).pipe(
      Layer.provide(OpenAiClient.layer({ apiUrl: `${serve.url}/v1` })),
      Layer.provide(FetchHttpClient.layer)
    )

  it("generateText and streamText on the GGUF model", async () => {
    const program = Effect.gen(function*() {
      const lm = yield* LanguageModel.LanguageModel
      const whole = yield* lm.generateText({ prompt: "hello" })
      const parts = yield* Stream.runCollect(lm.streamText({ prompt: "hello" }))
      return { whole, parts: Chunk.toReadonlyArray(parts) }
    })
    const { whole, parts } = await Effect.runPromise(program.pipe(Effect.provide(layerFor(TINY))))
    expect(typeof whole.text).toBe("string")
    expect(whole.usage.outputTokens).toBeGreaterThan(0)
    expect(parts.some((p) => p.type === "text-delta")).toBe(true)
    expect(parts.at(-1)!.type).toBe("finish")
  })

  it("a Toolkit round trip through the Ollama-backed model: call, handler, result, answer", async () => {
    const GetWeather = Tool.make("get_weather", { description: "the weather", parameters: { city: Schema.String }, success: Schema.String })
    const Weather = Toolkit.make(GetWeather)
    const handlers = Weather.toLayer({ get_weather: ({ city }) => Effect.succeed(`sunny in ${city}`) })
    const program = Effect.gen(function*() {
      const lm = yield* LanguageModel.LanguageModel
      const first = yield* lm.generateText({ prompt: "weather in Paris?", toolkit: Weather })
      return first
    })
    const first = await Effect.runPromise(program.pipe(Effect.provide(handlers), Effect.provide(layerFor(AGENT))))
    expect(first.toolCalls.map((c) => [c.name, c.params])).toEqual([["get_weather", { city: "Paris" }]])
    expect(first.toolResults.map((r) => r.result)).toEqual(["sunny in Paris"])
  })
})

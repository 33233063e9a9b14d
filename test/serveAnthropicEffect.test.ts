/**
 * `@effect/ai-anthropic`'s AnthropicLanguageModel pointed at `llmspell serve` (its client decodes
 * every answer and event with Anthropic's generated Schemas, so a field out of shape fails here):
 * generateText and streamText on a generated GGUF model run in-process, and a Toolkit round trip
 * (call → handler → tool_result → answer) through the fake Ollama.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Prompt from "@effect/ai/Prompt"
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import * as AnthropicClient from "@effect/ai-anthropic/AnthropicClient"
import * as AnthropicLanguageModel from "@effect/ai-anthropic/AnthropicLanguageModel"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe, weatherAgent } from "./fixtures/serveHarness.js"

let dir: string
let fake: FakeOllama
let serve: ServeHarness

const KEY = "effect-ai-key"
const TINY = "tiny.gguf@gguf"

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-anthropic-effect-"))
  fake = await startFakeOllama({ models: [fakeModel("agent")], answer: weatherAgent })
  serve = await startServe({ dir, ollamaUrl: fake.url, extra: { serve: { aliases: { "claude-*": "agent@ollama" } } } }, {
    apiKey: Redacted.make(KEY)
  })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
})

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

const layerFor = (model: string) =>
  AnthropicLanguageModel.layer({ model, config: { max_tokens: 16 } }).pipe(
    Layer.provide(AnthropicClient.layer({ apiUrl: serve.url, apiKey: Redacted.make(KEY) })),
    Layer.provide(FetchHttpClient.layer)
  )

describe("@effect/ai-anthropic's AnthropicLanguageModel against /v1/messages", () => {
  it("generateText and streamText on the GGUF model: text, a finish with the reason and usage", async () => {
    const program = Effect.gen(function*() {
      const lm = yield* LanguageModel.LanguageModel
      const whole = yield* lm.generateText({ prompt: "hello" })
      const parts = yield* Stream.runCollect(lm.streamText({ prompt: "hello" }))
      return { whole, parts: Chunk.toReadonlyArray(parts) }
    })
    const { whole, parts } = await Effect.runPromise(program.pipe(Effect.provide(layerFor(TINY))))
    expect(whole.text.length).toBeGreaterThan(0)
    expect(["stop", "length"]).toContain(whole.finishReason)
    expect(whole.usage.inputTokens).toBeGreaterThan(0)
    expect(whole.usage.outputTokens).toBeGreaterThan(0)
    expect(whole.usage.cachedInputTokens).toBe(0)
    const deltas = parts.flatMap((p) => (p.type === "text-delta" ? [p.delta] : []))
    expect(deltas.length).toBeGreaterThan(0)
    const finish = parts.at(-1)!
    expect(finish.type).toBe("finish")
    expect(finish.type === "finish" && finish.usage.outputTokens).toBeGreaterThan(0)
  })

  it("a Toolkit round trip through an alias of the Ollama model: the call, the handler's result, then the answer built on it", async () => {
    const GetWeather = Tool.make("get_weather", { description: "the weather in a city", parameters: { city: Schema.String }, success: Schema.String })
    const Weather = Toolkit.make(GetWeather)
    const handlers = Weather.toLayer({ get_weather: ({ city }) => Effect.succeed(`sunny in ${city}`) })
    const program = Effect.gen(function*() {
      const lm = yield* LanguageModel.LanguageModel
      const question = Prompt.make("weather in Paris?")
      const first = yield* lm.generateText({ prompt: question, toolkit: Weather })
      const second = yield* lm.generateText({ prompt: Prompt.merge(question, Prompt.fromResponseParts(first.content)), toolkit: Weather })
      return { first, second }
    })
    const { first, second } = await Effect.runPromise(program.pipe(Effect.provide(handlers), Effect.provide(layerFor("claude-sonnet-4-6"))))
    expect(first.toolCalls.map((c) => [c.name, c.params])).toEqual([["get_weather", { city: "Paris" }]])
    expect(first.toolResults.map((r) => r.result)).toEqual(["sunny in Paris"])
    expect(first.finishReason).toBe("tool-calls")
    // the client sends a tool's result as JSON, which reaches the model as it was sent
    expect(second.text).toBe("It is \"sunny in Paris\".")
    const sent = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as { messages: Array<{ role: string; content: string }> }
    expect(sent.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool"])
    expect(sent.messages[2]!.content).toBe("\"sunny in Paris\"")
  })
})

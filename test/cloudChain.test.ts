/**
 * The chain, end to end: an `openai_compatible` instance pointed at `llmspell serve` itself. One
 * llmspell (the client stack) reaches models of another (the server, with a fake Ollama and a
 * generated GGUF behind it) through the OpenAI wire format: text streams, tool calls come back
 * whole, a schema answer is checked, an unknown model is ModelNotFound, and `@effect/ai`'s
 * LanguageModel runs a toolkit round trip over the chain.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { languageModelLayer } from "../src/layers/LanguageModelAdapter.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe, weatherAgent } from "./fixtures/serveHarness.js"

let dir: string
let fake: FakeOllama
let serve: ServeHarness

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-chain-"))
  fake = await startFakeOllama({ models: [fakeModel("agent")], answer: weatherAgent })
  serve = await startServe({ dir, ollamaUrl: fake.url })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
}, 60_000)

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** The client side: nothing local, one openai_compatible instance named `kernel` at the server's /v1. */
const client = () =>
  LlmspellLive.layerFromObject(
    { providers: { kernel: { provider_type: "openai_compatible", base_url: `${serve.url}/v1` } } },
    { env: {}, home: join(dir, "client-home") }
  )

const run = <A, E>(effect: Effect.Effect<A, E, LocalLLM>) => Effect.runPromise(Effect.provide(effect, client()))

describe("an openai_compatible instance pointed at llmspell serve", () => {
  it("streams a completion from a model behind the server (Ollama, and the server's GGUF)", async () => {
    const events = await run(Effect.flatMap(LocalLLM, (llm) =>
      Stream.runCollect(llm.generate("kernel/agent@ollama", { messages: [{ role: "user", content: "hello" }] }))))
    const all = Chunk.toReadonlyArray(events)
    const text = all.filter((e) => e._tag === "TextDelta").map((e) => (e as { text: string }).text).join("")
    expect(text).toBe("You said: hello")
    const finish = all.at(-1) as { _tag: string; completion: { usage: { completionTokens: number } } }
    expect(finish._tag).toBe("Finish")
    expect(finish.completion.usage.completionTokens).toBeGreaterThan(0)
    // the request reached the fake Ollama through the server, as a chat
    expect(fake.requests.some((r) => r.path === "/api/chat")).toBe(true)

    const gguf = await run(Effect.flatMap(LocalLLM, (llm) =>
      llm.run("kernel/tiny.gguf@gguf", { messages: [{ role: "user", content: "hi" }], maxTokens: 4, seed: 1 })))
    expect(gguf.usage.completionTokens).toBeGreaterThan(0)
    expect(gguf.usage.completionTokens).toBeLessThanOrEqual(4)
  }, 120_000)

  it("tool calls and a schema answer cross both hops", async () => {
    const tools = [{
      name: "get_weather",
      description: "the weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
    }]
    const called = await run(Effect.flatMap(LocalLLM, (llm) =>
      llm.run("kernel/agent@ollama", { messages: [{ role: "user", content: "weather?" }], tools, toolChoice: "required" })))
    expect(called.finishReason).toBe("tool-calls")
    expect(called.toolCalls?.map((c) => [c.name, c.params])).toEqual([["get_weather", { city: "Paris" }]])

    const schema = {
      type: "object",
      properties: { city: { type: "string" }, temperature: { type: "number" } },
      required: ["city", "temperature"]
    }
    const structured = await run(Effect.flatMap(LocalLLM, (llm) =>
      llm.run("kernel/agent@ollama", { messages: [{ role: "user", content: "json" }], responseFormat: { schema } })))
    expect(structured.object).toEqual({ city: "Paris", temperature: 21 })
  }, 120_000)

  it("a model the server does not have is ModelNotFound on the client (exit 3)", async () => {
    const error = await run(Effect.flip(Effect.flatMap(LocalLLM, (llm) =>
      llm.run("kernel/nothere@ollama", { messages: [{ role: "user", content: "hi" }] }))))
    expect(error._tag).toBe("ModelNotFound")
  }, 60_000)

  it("@effect/ai: a toolkit round trip over the chain (call → handler → result → final text)", async () => {
    const GetWeather = Tool.make("get_weather", {
      description: "the weather in a city",
      parameters: { city: Schema.String },
      success: Schema.String
    })
    const toolkit = Toolkit.make(GetWeather)
    const handlers = toolkit.toLayer({ get_weather: ({ city }) => Effect.succeed(`sunny in ${city}`) })
    const program = Effect.gen(function*() {
      const first = yield* LanguageModel.generateText({ prompt: "weather in Paris?", toolkit })
      const calls = first.toolCalls
      expect(calls.map((c) => c.name)).toEqual(["get_weather"])
      const results = first.toolResults
      expect(results.map((r) => r.result)).toEqual(["sunny in Paris"])
      return first
    })
    await Effect.runPromise(
      program.pipe(
        Effect.provide(handlers),
        Effect.provide(languageModelLayer("kernel/agent@ollama").pipe(Layer.provide(client())))
      )
    )
  }, 120_000)
})

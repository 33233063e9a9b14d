/**
 * The @effect/ai adapter as an agent uses it: a Toolkit round trip (call → handler → result →
 * final text) on the scriptable backend of llmspell/testing and on the fake Ollama through the
 * real client; generateObject decoded with its Schema; reasoning and tool-call parts in
 * generateText and streamText; the request validation; and the EmbeddingModel.
 */
import * as EmbeddingModel from "@effect/ai/EmbeddingModel"
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Prompt from "@effect/ai/Prompt"
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { GenerateRequest } from "../src/domain/Types.js"
import { embeddingModelFromBackend, fromBackend } from "../src/layers/LanguageModelAdapter.js"
import * as OllamaBackendLive from "../src/layers/ollama/OllamaBackendLive.js"
import type { Backend } from "../src/services/Backend.js"
import { deterministicEmbedding, makeMockBackend, type MockModel } from "../src/testing.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"

const GetWeather = Tool.make("get_weather", {
  description: "the weather in a city",
  parameters: { city: Schema.String },
  success: Schema.String
})
const Weather = Toolkit.make(GetWeather)
const handlers: Array<string> = []
const WeatherHandlers = Weather.toLayer({
  get_weather: ({ city }) => Effect.sync(() => (handlers.push(city), `sunny in ${city}`))
})

/** A backend of llmspell/testing's scriptable mock with one model. */
const mockBackend = (model: MockModel, calls: Array<unknown> = []): Effect.Effect<Backend> => {
  const mock = makeMockBackend("ollama", { models: [model] }, calls as never)
  return mock.factory.make({ type: "ollama", name: "ollama", baseUrl: "mock://", timeoutSeconds: 1, options: {} } as never) as Effect.Effect<
    Backend
  >
}

/** Calls get_weather until the tool result is in the messages, then answers with it. */
const weatherTurns = (request: GenerateRequest) => {
  const result = request.messages.find((m) => m.role === "tool")
  return result === undefined
    ? { reasoning: ["The user wants weather."], toolCalls: [{ name: "get_weather", params: { city: "Paris" } }] }
    : { tokens: ["Answer: ", result.content] }
}

/** One agent step after another: the call, its result through the toolkit, then the final answer. */
const roundTrip = (lm: LanguageModel.Service) =>
  Effect.gen(function*() {
    handlers.length = 0
    const prompt = Prompt.make("What is the weather in Paris?")
    const first = yield* lm.generateText({ prompt, toolkit: Weather })
    expect(first.finishReason).toBe("tool-calls")
    expect(first.toolCalls.map((c) => [c.name, c.params])).toEqual([["get_weather", { city: "Paris" }]])
    expect(first.toolResults.map((r) => r.result)).toEqual(["sunny in Paris"])
    expect(first.toolResults[0]!.id).toBe(first.toolCalls[0]!.id)
    expect(handlers).toEqual(["Paris"])
    const second = yield* lm.generateText({ prompt: Prompt.merge(prompt, Prompt.fromResponseParts(first.content)), toolkit: Weather })
    return second
  }).pipe(Effect.provide(WeatherHandlers))

describe("Toolkit round trip", () => {
  it.effect("on the scriptable backend: call → handler → result → final text, the result sent back by call id", () =>
    Effect.gen(function*() {
      const calls: Array<{ operation: string; request?: GenerateRequest }> = []
      const lm = yield* fromBackend(yield* mockBackend({ name: "m", turns: weatherTurns }, calls), "m")
      const second = yield* roundTrip(lm)
      expect(second.text).toBe("Answer: sunny in Paris")
      expect(second.finishReason).toBe("stop")
      const sent = calls.filter((c) => c.operation === "generate").map((c) => c.request!)
      expect(sent[0]!.tools).toEqual([{
        name: "get_weather",
        description: "the weather in a city",
        parameters: expect.objectContaining({ type: "object", required: ["city"] })
      }])
      expect(sent[0]!.toolChoice).toBe("auto")
      const [assistant, tool] = sent[1]!.messages.slice(1)
      expect(assistant).toMatchObject({ role: "assistant", toolCalls: [{ name: "get_weather", params: { city: "Paris" } }] })
      expect(tool).toEqual({
        role: "tool",
        content: "sunny in Paris",
        toolCallId: assistant!.toolCalls![0]!.id,
        toolName: "get_weather"
      })
    }))

  describe("on the fake Ollama", () => {
    let fake: FakeOllama
    beforeEach(async () => {
      fake = await startFakeOllama({
        models: [fakeModel("agent")],
        answer: (input) => {
          const messages = (input.body.messages ?? []) as Array<{ role: string; content: string }>
          const result = messages.find((m) => m.role === "tool")
          return result === undefined
            ? { toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] }
            : { content: `Answer: ${result.content}` }
        }
      })
    })
    afterEach(async () => {
      await fake.close()
    })

    it.effect("call → handler → result → final text through the real client", () =>
      Effect.gen(function*() {
        const backend = yield* OllamaBackendLive.make({ type: "ollama", name: "ollama", baseUrl: fake.url, timeoutSeconds: 30, options: {} })
        const lm = yield* fromBackend(backend, "agent")
        const second = yield* roundTrip(lm)
        expect(second.text).toBe("Answer: sunny in Paris")
        const chats = fake.requests.filter((r) => r.path === "/api/chat").map((r) => r.body as Record<string, any>)
        expect(chats[0]!.tools[0].function.name).toBe("get_weather")
        const toolMessage = chats[1]!.messages.find((m: { role: string }) => m.role === "tool")
        const assistant = chats[1]!.messages.find((m: { role: string }) => m.role === "assistant")
        expect(toolMessage.tool_call_id).toBe(assistant.tool_calls[0].id)
      }))
  })
})

describe("toolChoice through the adapter", () => {
  const GetTime = Tool.make("get_time", { parameters: {}, success: Schema.String })
  const Both = Toolkit.make(GetWeather, GetTime)
  const BothHandlers = Both.toLayer({ get_weather: () => Effect.succeed("sunny"), get_time: () => Effect.succeed("noon") })

  it.effect("named, oneOf and none map onto the request (oneOf narrows the tools)", () =>
    Effect.gen(function*() {
      const calls: Array<{ operation: string; request?: GenerateRequest }> = []
      const lm = yield* fromBackend(yield* mockBackend({ name: "m", tokens: ["ok"] }, calls), "m")
      yield* lm.generateText({ prompt: "hi", toolkit: Both, toolChoice: { tool: "get_time" } })
      yield* lm.generateText({ prompt: "hi", toolkit: Both, toolChoice: { mode: "required", oneOf: ["get_weather"] } })
      yield* lm.generateText({ prompt: "hi", toolkit: Both, toolChoice: "none" })
      const sent = calls.filter((c) => c.operation === "generate").map((c) => c.request!)
      expect(sent.map((r) => [r.toolChoice, r.tools?.map((t) => t.name)])).toEqual([
        [{ tool: "get_time" }, ["get_weather", "get_time"]],
        ["required", ["get_weather"]],
        ["none", ["get_weather", "get_time"]]
      ])
    }).pipe(Effect.provide(BothHandlers)))
})

describe("generateObject", () => {
  const Person = Schema.Struct({ name: Schema.String, age: Schema.Number.pipe(Schema.int(), Schema.between(0, 150)) })

  it.effect("sends the schema as responseFormat and decodes the answer with it", () =>
    Effect.gen(function*() {
      const calls: Array<{ operation: string; request?: GenerateRequest }> = []
      const lm = yield* fromBackend(yield* mockBackend({ name: "m", tokens: ['{"name":', '"Ada","age":36}'] }, calls), "m")
      const response = yield* lm.generateObject({ prompt: "who?", schema: Person, objectName: "person" })
      expect(response.value).toEqual({ name: "Ada", age: 36 })
      const format = calls[0]!.request!.responseFormat
      expect(format).toMatchObject({ name: "person", schema: { type: "object", required: ["name", "age"] } })
    }))

  it.effect("on the fake Ollama: the schema goes out as `format`, the answer comes back decoded", () =>
    Effect.gen(function*() {
      const fake = yield* Effect.acquireRelease(
        Effect.promise(() => startFakeOllama({ models: [fakeModel("agent")], answer: () => '{"name":"Ada","age":36}' })),
        (f) => Effect.promise(() => f.close())
      )
      const backend = yield* OllamaBackendLive.make({ type: "ollama", name: "ollama", baseUrl: fake.url, timeoutSeconds: 30, options: {} })
      const lm = yield* fromBackend(backend, "agent")
      const response = yield* lm.generateObject({ prompt: "who?", schema: Person })
      expect(response.value).toEqual({ name: "Ada", age: 36 })
      const format = (fake.requests.find((r) => r.path === "/api/chat")!.body as { format: Record<string, unknown> }).format
      expect(format).toMatchObject({ type: "object", required: ["name", "age"] })
    }).pipe(Effect.scoped))

  it.effect("an answer that does not fit the schema is MalformedOutput, not a value", () =>
    Effect.gen(function*() {
      const lm = yield* fromBackend(yield* mockBackend({ name: "m", tokens: ['{"name":"Ada","age":400}'] }), "m")
      const error = yield* Effect.flip(lm.generateObject({ prompt: "who?", schema: Person }))
      expect(error._tag).toBe("MalformedOutput")
    }))
})

describe("parts", () => {
  it.effect("generateText: reasoning, tool-call parts; streamText: reasoning block, text block, tool-call, finish", () =>
    Effect.gen(function*() {
      const lm = yield* fromBackend(
        yield* mockBackend({
          name: "m",
          turns: [{ reasoning: ["Hm", "m."], tokens: ["Ok", "."], toolCalls: [{ id: "c1", name: "get_weather", params: { city: "Rome" } }] }]
        }),
        "m"
      )
      const response = yield* lm.generateText({ prompt: "hi", toolkit: Weather, disableToolCallResolution: true })
      expect(response.reasoningText).toBe("Hmm.")
      expect(response.text).toBe("Ok.")
      expect(response.toolCalls.map((c) => [c.id, c.name, c.params])).toEqual([["c1", "get_weather", { city: "Rome" }]])

      const parts = Chunk.toReadonlyArray(
        yield* Stream.runCollect(lm.streamText({ prompt: "hi", toolkit: Weather, disableToolCallResolution: true }))
      )
      expect(parts.map((p) => p.type)).toEqual([
        "reasoning-start",
        "reasoning-delta",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "tool-call",
        "finish"
      ])
      const finish = parts.at(-1)!
      expect(finish.type === "finish" && finish.reason).toBe("tool-calls")
    }).pipe(Effect.provide(WeatherHandlers)))

  it.effect("a request that fails validation never reaches the backend (InvalidRequest in the AiError's cause)", () =>
    Effect.gen(function*() {
      const calls: Array<{ operation: string }> = []
      const lm = yield* fromBackend(yield* mockBackend({ name: "m" }, calls), "m", { maxTokens: 0 })
      const error = yield* Effect.flip(lm.generateText({ prompt: "hi" }))
      expect((error as { cause?: { _tag?: string } }).cause?._tag).toBe("InvalidRequest")
      expect(calls.filter((c) => c.operation === "generate")).toEqual([])
    }))
})

describe("EmbeddingModel", () => {
  it.effect("embed / embedMany: deterministic vectors, a batch equal to one-by-one", () =>
    Effect.gen(function*() {
      const backend = yield* mockBackend({ name: "e", embeddingDimensions: 12 })
      const model = yield* embeddingModelFromBackend(backend, "e")
      const batch = yield* model.embedMany(["a b", "c", "a b"])
      expect(batch).toHaveLength(3)
      expect(batch[0]).toHaveLength(12)
      expect(batch[0]).toEqual(batch[2])
      expect(yield* model.embed("c")).toEqual(batch[1])
      expect(batch[1]).toEqual(deterministicEmbedding("c", 12))
    }).pipe(Effect.scoped))

  it.effect("as the EmbeddingModel service", () =>
    Effect.gen(function*() {
      const vector = yield* EmbeddingModel.EmbeddingModel.pipe(Effect.flatMap((m) => m.embed("hello")))
      expect(vector).toEqual(deterministicEmbedding("hello", 8))
    }).pipe(
      Effect.provideServiceEffect(
        EmbeddingModel.EmbeddingModel,
        Effect.flatMap(mockBackend({ name: "e" }), (b) => embeddingModelFromBackend(b, "e"))
      ),
      Effect.scoped
    ))
})

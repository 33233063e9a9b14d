/**
 * The Ollama backend's agent features against the fake Ollama with the real `ollama` client: tool
 * calls out and back in (ids kept or generated), toolChoice none/required/named where Ollama
 * ignores tool_choice, `format` for JSON and schemas, `think` → ReasoningDelta, `/api/embed`, and a
 * prompt the server truncated to its context reported as ContextOverflow.
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { OllamaInstanceConfig } from "../src/domain/ConfigSchema.js"
import type { GenerateEvent, GenerateRequest, ToolDefinition } from "../src/domain/Types.js"
import * as OllamaBackendLive from "../src/layers/ollama/OllamaBackendLive.js"
import { type FakeAnswerInput, type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"

let fake: FakeOllama

const weather: ToolDefinition = {
  name: "get_weather",
  description: "the weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}
const time: ToolDefinition = { name: "get_time", parameters: { type: "object", properties: {} } }

/** Calls get_weather until a tool result is in the messages, then answers from it. */
const toolAnswer = (input: FakeAnswerInput) => {
  const messages = (input.body.messages ?? []) as Array<{ role: string; content: string; tool_call_id?: string }>
  const result = messages.find((m) => m.role === "tool")
  if (result !== undefined) return { content: `It is ${result.content} (for ${result.tool_call_id}).` }
  return { content: "", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] }
}

beforeEach(async () => {
  fake = await startFakeOllama({
    models: [fakeModel("agent"), fakeModel("small", { context_length: 256 })],
    answer: toolAnswer
  })
})

afterEach(async () => {
  await fake.close()
})

const config: () => OllamaInstanceConfig = () => ({
  type: "ollama",
  name: "ollama",
  baseUrl: fake.url,
  timeoutSeconds: 30,
  options: {}
})

const generate = (model: string, request: GenerateRequest) =>
  Effect.flatMap(OllamaBackendLive.make(config()), (b) =>
    Effect.map(Stream.runCollect(b.generate(model, request)), Chunk.toReadonlyArray))

const failure = (model: string, request: GenerateRequest) =>
  Effect.flip(generate(model, request))

const lastChat = () => fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as Record<string, unknown>

const user = (content: string) => ({ role: "user" as const, content })

const finish = (events: ReadonlyArray<GenerateEvent>) => {
  const last = events.at(-1)
  if (last?._tag !== "Finish") throw new Error("no Finish")
  return last.completion
}

describe("Ollama tool calls", () => {
  it.effect("a call comes back as a ToolCall (decoded params, generated id), finish `tool-calls`; its result goes back by id", () =>
    Effect.gen(function*() {
      const first = yield* generate("agent", { messages: [user("weather in Paris?")], tools: [weather] })
      const calls = first.flatMap((e) => (e._tag === "ToolCall" ? [e.call] : []))
      expect(calls).toHaveLength(1)
      expect(calls[0]).toMatchObject({ name: "get_weather", params: { city: "Paris" } })
      expect(calls[0]!.id).toMatch(/^call_[0-9a-f]{16}$/)
      expect(finish(first)).toMatchObject({ finishReason: "tool-calls", toolCalls: calls })
      expect(lastChat().tools).toEqual([{ type: "function", function: weather }])

      const second = yield* generate("agent", {
        messages: [
          user("weather in Paris?"),
          { role: "assistant", content: "", toolCalls: calls },
          { role: "tool", content: "sunny", toolCallId: calls[0]!.id, toolName: "get_weather" }
        ],
        tools: [weather]
      })
      expect(finish(second)).toMatchObject({ text: `It is sunny (for ${calls[0]!.id}).`, finishReason: "stop" })
      expect(finish(second).toolCalls).toBeUndefined()
      expect((lastChat().messages as Array<unknown>).slice(1)).toEqual([
        {
          role: "assistant",
          content: "",
          tool_calls: [{ id: calls[0]!.id, function: { index: 0, name: "get_weather", arguments: { city: "Paris" } } }]
        },
        { role: "tool", content: "sunny", tool_name: "get_weather", tool_call_id: calls[0]!.id }
      ])
    }))

  it.effect("an id the server sends is kept", () =>
    Effect.gen(function*() {
      fake.state.answer = () => ({ toolCalls: [{ id: "call_server_1", name: "get_weather", arguments: { city: "Oslo" } }] })
      const events = yield* generate("agent", { messages: [user("hi")], tools: [weather] })
      expect(finish(events).toolCalls).toEqual([{ id: "call_server_1", name: "get_weather", params: { city: "Oslo" } }])
    }))

  it.effect("toolChoice none sends no tools, so no call comes back", () =>
    Effect.gen(function*() {
      const events = yield* generate("agent", { messages: [user("hi")], tools: [weather], toolChoice: "none" })
      expect(lastChat().tools).toBeUndefined()
      expect(events.some((e) => e._tag === "ToolCall")).toBe(false)
      expect(finish(events).finishReason).toBe("stop")
    }))

  it.effect("a named tool: only that tool is sent; the call comes back", () =>
    Effect.gen(function*() {
      const events = yield* generate("agent", {
        messages: [user("hi")],
        tools: [time, weather],
        toolChoice: { tool: "get_weather" }
      })
      expect((lastChat().tools as Array<{ function: { name: string } }>).map((t) => t.function.name)).toEqual(["get_weather"])
      expect(finish(events).toolCalls?.map((c) => c.name)).toEqual(["get_weather"])
    }))

  it.effect("required / named: an answer without a call is ToolChoiceViolated, not a silent text answer", () =>
    Effect.gen(function*() {
      fake.state.answer = () => "I would rather chat."
      const required = yield* failure("agent", { messages: [user("hi")], tools: [weather], toolChoice: "required" })
      expect(required._tag).toBe("ToolChoiceViolated")
      expect(required.message).toContain("without a tool call")
      const named = yield* failure("agent", { messages: [user("hi")], tools: [weather, time], toolChoice: { tool: "get_time" } })
      expect(named._tag).toBe("ToolChoiceViolated")
      expect(named.message).toContain("{ tool: get_time }")
    }))
})

describe("Ollama format and think", () => {
  it.effect("responseFormat json / schema become `format`; text sends none", () =>
    Effect.gen(function*() {
      fake.state.answer = () => '{"a":1}'
      yield* generate("agent", { messages: [user("hi")], responseFormat: "json" })
      expect(lastChat().format).toBe("json")
      const schema = { type: "object", properties: { a: { type: "number" } }, required: ["a"] }
      yield* generate("agent", { messages: [user("hi")], responseFormat: { schema } })
      expect(lastChat().format).toEqual(schema)
      yield* generate("agent", { messages: [user("hi")], responseFormat: "text" })
      expect(lastChat().format).toBeUndefined()
    }))

  it.effect("think: message.thinking streams as ReasoningDelta before the text; reasoning false sends think:false", () =>
    Effect.gen(function*() {
      fake.state.answer = () => ({ thinking: "Let me think about it.", content: "Forty-two." })
      const events = yield* generate("agent", { messages: [user("hi")], reasoning: true })
      expect(lastChat().think).toBe(true)
      const reasoning = events.flatMap((e) => (e._tag === "ReasoningDelta" ? [e.text] : [])).join("")
      expect(reasoning).toBe("Let me think about it.")
      expect(events.findIndex((e) => e._tag === "ReasoningDelta")).toBeLessThan(events.findIndex((e) => e._tag === "TextDelta"))
      expect(finish(events)).toMatchObject({ text: "Forty-two.", reasoning: "Let me think about it." })

      const hidden = yield* generate("agent", { messages: [user("hi")], reasoning: false })
      expect(lastChat().think).toBe(false)
      expect(hidden.some((e) => e._tag === "ReasoningDelta")).toBe(false)
      expect(finish(hidden).reasoning).toBeUndefined()
    }))
})

describe("Ollama embeddings", () => {
  it.effect("one vector per input, deterministic, the batch equal to one-by-one, dimensions = the embedding length", () =>
    Effect.gen(function*() {
      const b = yield* OllamaBackendLive.make(config())
      const batch = yield* b.embed("agent", ["alpha beta", "gamma", "alpha beta"])
      expect(batch).toMatchObject({ model: "agent:latest", backend: "ollama", instance: "ollama", dimensions: 2048 })
      expect(batch.vectors).toHaveLength(3)
      expect(batch.vectors[0]).toHaveLength(2048)
      expect(batch.vectors[0]).toEqual(batch.vectors[2])
      expect(batch.vectors[0]).not.toEqual(batch.vectors[1])
      expect(batch.promptTokens).toBe(5)
      const one = yield* b.embed("agent", ["gamma"])
      const again = yield* b.embed("agent", ["alpha beta"])
      expect([again.vectors[0], one.vectors[0]]).toEqual([batch.vectors[0], batch.vectors[1]])
      const body = fake.requests.find((r) => r.path === "/api/embed")!.body as Record<string, unknown>
      expect(body).toMatchObject({ model: "agent", input: ["alpha beta", "gamma", "alpha beta"], truncate: false })
    }))

  it.effect("a missing model is ModelNotFound; an input over the context is ContextOverflow, never a cut vector", () =>
    Effect.gen(function*() {
      const b = yield* OllamaBackendLive.make(config())
      expect((yield* Effect.flip(b.embed("nope", ["x"])))._tag).toBe("ModelNotFound")
      const long = Array.from({ length: 300 }, (_, i) => `w${i}`).join(" ")
      const error = yield* Effect.flip(b.embed("small", [long]))
      expect(error).toMatchObject({ _tag: "ContextOverflow", operation: "embed", model: "small:latest" })
      expect(error.message).toContain("nothing was truncated")
    }))
})

describe("Ollama context", () => {
  it.effect("a prompt longer than a 256-token context is ContextOverflow, not a truncated answer", () =>
    Effect.gen(function*() {
      fake.state.answer = () => "fine"
      const long = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ")
      const error = yield* failure("small", { messages: [user(long)] })
      expect(error._tag).toBe("ContextOverflow")
      expect(error).toMatchObject({ promptTokens: 256, contextSize: 256, model: "small:latest" })
      expect((error as { hint: string }).hint).toContain("num_ctx")
    }))

  it.effect("a prompt that fits is answered, and /api/ps is asked only for long prompts", () =>
    Effect.gen(function*() {
      fake.state.answer = () => "fine"
      const fits = Array.from({ length: 200 }, (_, i) => `w${i}`).join(" ")
      expect(finish(yield* generate("small", { messages: [user(fits)] })).text).toBe("fine")
      expect(fake.requests.filter((r) => r.path === "/api/ps")).toHaveLength(1)
      yield* generate("small", { messages: [user("short")] })
      expect(fake.requests.filter((r) => r.path === "/api/ps")).toHaveLength(1)
    }))
})

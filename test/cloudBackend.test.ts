/**
 * The cloud backends against the fake OpenAI-compatible and Anthropic servers, through the real
 * stack (config object → registry → CloudBackendLive over @effect/ai-openai / @effect/ai-anthropic
 * clients): routing of cloud specs, streamed text, tool calls and reasoning, structured output,
 * models, embeddings, status, the error table, the bounded Retry-After retry (on the TestClock),
 * and interruption closing the HTTP request.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Prompt from "@effect/ai/Prompt"
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { RateLimited } from "../src/domain/Errors.js"
import { exitCodeFor } from "../src/domain/Failure.js"
import { promptRequest } from "../src/domain/Types.js"
import { languageModelLayer } from "../src/layers/LanguageModelAdapter.js"
import { makeSseParser, rateLimitSchedule, retryRateLimitedStream } from "../src/layers/cloud/cloudHttp.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import { ProviderRegistry } from "../src/services/ProviderRegistry.js"
import { type FakeAnthropic, startFakeAnthropic } from "./fixtures/fakeAnthropic.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"

const KEY = "sk-cloudtest-0123456789abcdef"
const ANT_KEY = "sk-ant-cloudtest-fedcba9876543210"

let openai: FakeOpenAI
let anthropic: FakeAnthropic
let vllm: FakeOpenAI
beforeAll(async () => {
  openai = await startFakeOpenAI({ apiKey: KEY, models: ["gpt-4o-mini", "echo-key-error", "text-embedding-3-small"] })
  anthropic = await startFakeAnthropic({ apiKey: ANT_KEY })
  vllm = await startFakeOpenAI({ models: ["meta-llama/Llama-3.1-8B-Instruct"] })
})
afterAll(async () => {
  await Promise.all([openai.close(), anthropic.close(), vllm.close()])
})

/** The stack configured to point `openai` and `anthropic` at the fakes and a keyless `vllm` instance. */
const stack = (env: Record<string, string> = { OPENAI_API_KEY: KEY, ANTHROPIC_API_KEY: ANT_KEY }) =>
  LlmspellLive.layerFromObject(
    {
      providers: {
        openai: { base_url: openai.baseUrl },
        anthropic: { base_url: anthropic.baseUrl },
        vllm: { provider_type: "openai_compatible", base_url: vllm.baseUrl }
      }
    },
    { env, home: "/nonexistent-home" }
  )

const collect = (spec: string, prompt = "hi", options: Parameters<typeof promptRequest>[1] = {}) =>
  Effect.gen(function*() {
    const registry = yield* ProviderRegistry
    const resolved = yield* registry.resolve(spec)
    return Chunk.toReadonlyArray(yield* Stream.runCollect(resolved.handle.generate(resolved.model, promptRequest(prompt, options))))
  })

const finishOf = (events: ReadonlyArray<{ _tag: string }>) => {
  const last = events[events.length - 1] as any
  expect(last._tag).toBe("Finish")
  return last.completion
}

describe("routing of cloud specs", () => {
  it.effect("openai/…, anthropic/… and a configured openai_compatible instance; a model name with '/' stays whole", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const a = yield* registry.route("openai/gpt-4o-mini")
      expect([a.backend, a.instance.name, a.model]).toEqual(["cloud", "openai", "gpt-4o-mini"])
      const b = yield* registry.route("vllm/meta-llama/Llama-3.1-8B-Instruct")
      expect([b.backend, b.instance.name, b.model]).toEqual(["cloud", "vllm", "meta-llama/Llama-3.1-8B-Instruct"])
      // a built-in provider with no config entry: its preset (base URL, key variable)
      const c = yield* registry.route("groq/llama-3.3-70b-versatile")
      expect([c.backend, c.instance.name, c.model, (c.instance as any).baseUrl]).toEqual([
        "cloud", "groq", "llama-3.3-70b-versatile", "https://api.groq.com/openai/v1"
      ])
      const d = yield* registry.route("openrouter/anthropic/claude-3.5-sonnet")
      expect(d.model).toBe("anthropic/claude-3.5-sonnet")
      const refused = yield* Effect.flip(registry.route("openai/gpt-4o@ollama"))
      expect(refused._tag).toBe("ProviderNotAvailable")
    }).pipe(Effect.provide(stack())))

  it.effect("a built-in provider without its key: MissingCredentials naming the variable (exit 2), nothing sent", () =>
    Effect.gen(function*() {
      const before = openai.requests.length
      const error = yield* Effect.flip(collect("groq/llama-3.3-70b-versatile"))
      expect(error._tag).toBe("MissingCredentials")
      expect(error.message).toContain("GROQ_API_KEY")
      expect((error as any).hint).toContain("GROQ_API_KEY")
      expect(exitCodeFor(error)).toBe(2)
      expect(openai.requests.length).toBe(before)
    }).pipe(Effect.provide(stack())))
})

describe("OpenAI chat completions", () => {
  it.effect("text streams as deltas; usage from the usage chunk; the key goes as a bearer token", () =>
    Effect.gen(function*() {
      openai.setAnswer(() => ({ content: "one two three" }))
      const events = yield* collect("openai/gpt-4o-mini")
      expect(events.filter((e) => e._tag === "TextDelta").map((e: any) => e.text)).toEqual(["one ", "two ", "three"])
      const done = finishOf(events)
      expect(done).toMatchObject({ text: "one two three", backend: "cloud", instance: "openai", finishReason: "stop" })
      expect(done.usage.completionTokens).toBe(3)
      const sent = openai.requests[openai.requests.length - 1]!
      expect(sent.authorized).toBe(true)
      expect(sent.body).toMatchObject({ model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true } })
    }).pipe(Effect.provide(stack())))

  it.effect("tool calls streamed by index come back whole and decoded; reasoning_content streams as ReasoningDelta", () =>
    Effect.gen(function*() {
      openai.setAnswer(() => ({
        reasoning: "thinking hard",
        toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }, { name: "get_time", arguments: { zone: "CET" } }]
      }))
      const events = yield* collect("openai/gpt-4o-mini", "weather?", {
        tools: [
          { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
          { name: "get_time", parameters: { type: "object", properties: { zone: { type: "string" } } } }
        ]
      })
      expect(events.filter((e) => e._tag === "ReasoningDelta").map((e: any) => e.text).join("")).toBe("thinking hard")
      const calls = events.filter((e) => e._tag === "ToolCall").map((e: any) => [e.call.name, e.call.params])
      expect(calls).toEqual([["get_weather", { city: "Paris" }], ["get_time", { zone: "CET" }]])
      expect(finishOf(events).finishReason).toBe("tool-calls")
      const body = openai.requests[openai.requests.length - 1]!.body as any
      expect(body.tools[0]).toEqual({ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } })
      expect(body.tool_choice).toBe("auto")
    }).pipe(Effect.provide(stack())))

  it.effect("a schema becomes response_format json_schema", () =>
    Effect.gen(function*() {
      openai.setAnswer(() => ({ content: "{\"n\":1}" }))
      yield* collect("openai/gpt-4o-mini", "n?", { responseFormat: { schema: { type: "object" }, name: "n" } })
      const body = openai.requests[openai.requests.length - 1]!.body as any
      expect(body.response_format).toEqual({ type: "json_schema", json_schema: { name: "n", schema: { type: "object" }, strict: false } })
    }).pipe(Effect.provide(stack())))

  it.effect("the error table: 401 → MissingCredentials, 404 → ModelNotFound, 500 → BackendUnavailable, drop → BackendError", () =>
    Effect.gen(function*() {
      openai.setAnswer(() => ({ content: "a b c d e" }))
      const wrongKey = yield* Effect.flip(collect("openai/gpt-4o-mini").pipe(Effect.provide(stack({ OPENAI_API_KEY: "sk-wrong" }))))
      expect([wrongKey._tag, exitCodeFor(wrongKey)]).toEqual(["MissingCredentials", 2])
      expect((wrongKey as any).hint).toContain("OPENAI_API_KEY")
      expect(wrongKey.message).not.toContain("sk-wrong")
      const missing = yield* Effect.flip(collect("openai/no-such-model").pipe(Effect.provide(stack())))
      expect([missing._tag, exitCodeFor(missing)]).toEqual(["ModelNotFound", 3])
      openai.setFault("/v1/chat/completions", { kind: "status", status: 500, times: 1 })
      const down = yield* Effect.flip(collect("openai/gpt-4o-mini").pipe(Effect.provide(stack())))
      expect([down._tag, exitCodeFor(down)]).toEqual(["BackendUnavailable", 4])
      openai.setFault("/v1/chat/completions", { kind: "drop", afterChunks: 2, times: 1 })
      const drop = yield* Effect.flip(collect("openai/gpt-4o-mini").pipe(Effect.provide(stack())))
      expect(drop._tag).toBe("BackendError")
      const echoed = yield* Effect.flip(collect("openai/echo-key-error").pipe(Effect.provide(stack())))
      expect(echoed.message).toContain("<redacted>")
      expect(echoed.message).not.toContain(KEY)
    }))

  it.effect("a 429 with a short Retry-After is retried and then answers", () =>
    Effect.gen(function*() {
      openai.setAnswer(() => ({ content: "after the wait" }))
      openai.setFault("/v1/chat/completions", { kind: "rateLimit", retryAfterSeconds: 0, times: 1 })
      const before = openai.requests.length
      const events = yield* collect("openai/gpt-4o-mini")
      expect(finishOf(events).text).toBe("after the wait")
      expect(openai.requests.length - before).toBe(2)
    }).pipe(Effect.provide(stack())))

  it.effect("a 429 asking for longer than llmspell waits is RateLimited at once", () =>
    Effect.gen(function*() {
      openai.setFault("/v1/chat/completions", { kind: "rateLimit", retryAfterSeconds: 3600, times: 1 })
      const before = openai.requests.length
      const error = yield* Effect.flip(collect("openai/gpt-4o-mini"))
      expect(error._tag).toBe("RateLimited")
      expect(error.message).toContain("openai is rate limiting")
      expect(openai.requests.length - before).toBe(1)
    }).pipe(Effect.provide(stack())))

  it.live("interrupting a stalled stream closes the HTTP request (the fake sees the connection go)", () =>
    Effect.gen(function*() {
      openai.setFault("/v1/chat/completions", { kind: "stall", afterChunks: 2, times: 1 })
      const aborted = openai.nextAbort()
      const started = openai.nextStreamStarted()
      const fiber = yield* Effect.fork(collect("openai/gpt-4o-mini"))
      yield* Effect.promise(() => started)
      yield* Fiber.interrupt(fiber)
      yield* Effect.promise(() => aborted)
    }).pipe(Effect.provide(stack())))

  it.effect("models (cached), embeddings, status with the key present but never shown", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const backend = yield* registry.instance("openai")
      const before = openai.requests.length
      expect((yield* backend.list).map((m) => m.name)).toEqual(["gpt-4o-mini", "echo-key-error", "text-embedding-3-small"])
      yield* backend.list
      expect(openai.requests.filter((r, i) => i >= before && r.path === "/v1/models").length).toBe(1)
      const embedded = yield* backend.embed("text-embedding-3-small", ["a", "b"])
      expect([embedded.vectors.length, embedded.dimensions, embedded.backend]).toEqual([2, 8, "cloud"])
      const status = yield* backend.status
      expect(status).toMatchObject({ available: true, backend: "cloud", details: { apiKey: "present (OPENAI_API_KEY)" } })
      expect(JSON.stringify(status)).not.toContain(KEY)
      expect((yield* backend.info("gpt-4o-mini")).backend).toBe("cloud")
      expect((yield* Effect.flip(backend.info("nope")))._tag).toBe("ModelNotFound")
      const pull = yield* Effect.flip(backend.remove("gpt-4o-mini"))
      expect(pull._tag).toBe("UnsupportedOperation")
      expect(pull.message).toContain("not applicable to openai")
      expect((pull as any).hint).toContain("llmspell run -m openai/<model>")
      const configured = registry.instances("cloud").map((i) => i.name)
      expect(configured).toEqual(["openai", "anthropic", "vllm"])
    }).pipe(Effect.provide(stack())))

  it.effect("a keyless openai_compatible instance sends no Authorization", () =>
    Effect.gen(function*() {
      vllm.setAnswer(() => ({ content: "from vllm" }))
      const events = yield* collect("vllm/meta-llama/Llama-3.1-8B-Instruct")
      expect(finishOf(events).text).toBe("from vllm")
      expect(vllm.requests[vllm.requests.length - 1]!.authorization).toBeUndefined()
      expect((vllm.requests[vllm.requests.length - 1]!.body as any).model).toBe("meta-llama/Llama-3.1-8B-Instruct")
    }).pipe(Effect.provide(stack())))
})

describe("Anthropic messages", () => {
  it.effect("text, thinking and tool_use blocks stream as our events; the key goes as x-api-key", () =>
    Effect.gen(function*() {
      anthropic.setAnswer(() => ({ thinking: "let me see", content: "Calling.", toolUses: [{ name: "lookup", input: { q: "x" } }] }))
      const events = yield* collect("anthropic/claude-3-5-haiku-latest", "hi", {
        system: "be brief",
        tools: [{ name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } } }]
      })
      expect(events.filter((e) => e._tag === "ReasoningDelta").map((e: any) => e.text).join("")).toBe("let me see")
      expect(events.filter((e) => e._tag === "ToolCall").map((e: any) => [e.call.name, e.call.params])).toEqual([["lookup", { q: "x" }]])
      const done = finishOf(events)
      expect(done).toMatchObject({ text: "Calling.", finishReason: "tool-calls" })
      expect(done.usage.promptTokens).toBeGreaterThan(0)
      const sent = anthropic.requests[anthropic.requests.length - 1]!
      expect(sent.apiKey).toMatch(/^<redacted/)
      expect(sent.version).toBe("2023-06-01")
      expect(sent.body).toMatchObject({ system: "be brief", tool_choice: { type: "auto" }, tools: [{ name: "lookup" }] })
    }).pipe(Effect.provide(stack())))

  it.effect("structured output is a forced tool whose input is the answer", () =>
    Effect.gen(function*() {
      anthropic.setAnswer((r) => ({ toolUses: [{ name: r.tools![0]!.name, input: { n: 1 } }] }))
      const events = yield* collect("anthropic/claude-3-5-haiku-latest", "n?", { responseFormat: { schema: { type: "object" } } })
      expect(finishOf(events)).toMatchObject({ text: "{\"n\":1}", finishReason: "stop" })
      expect((anthropic.requests[anthropic.requests.length - 1]!.body as any).tool_choice).toEqual({ type: "tool", name: "json_answer" })
    }).pipe(Effect.provide(stack())))

  it.effect("401 → MissingCredentials naming ANTHROPIC_API_KEY; 404 → ModelNotFound; 529 → BackendUnavailable; a drop → BackendError", () =>
    Effect.gen(function*() {
      anthropic.setAnswer(() => ({ content: "a b c" }))
      const wrong = yield* Effect.flip(collect("anthropic/claude-3-5-haiku-latest").pipe(Effect.provide(stack({ ANTHROPIC_API_KEY: "nope" }))))
      expect([wrong._tag, (wrong as any).variable]).toEqual(["MissingCredentials", "ANTHROPIC_API_KEY"])
      const missing = yield* Effect.flip(collect("anthropic/claude-nope").pipe(Effect.provide(stack())))
      expect(missing._tag).toBe("ModelNotFound")
      anthropic.setFault({ kind: "status", status: 529, times: 1 })
      const over = yield* Effect.flip(collect("anthropic/claude-3-5-haiku-latest").pipe(Effect.provide(stack())))
      expect(over._tag).toBe("BackendUnavailable")
      anthropic.setFault({ kind: "drop", afterEvents: 3, times: 1 })
      const drop = yield* Effect.flip(collect("anthropic/claude-3-5-haiku-latest").pipe(Effect.provide(stack())))
      expect(drop._tag).toBe("BackendError")
    }))
})

describe("@effect/ai LanguageModel over a cloud spec", () => {
  const GetWeather = Tool.make("get_weather", { description: "the weather in a city", parameters: { city: Schema.String }, success: Schema.String })
  const Weather = Toolkit.make(GetWeather)
  const handlers = Weather.toLayer({ get_weather: ({ city }) => Effect.succeed(`sunny in ${city}`) })

  it.effect("generateText with a toolkit: the call runs through the handler, the result goes back by id", () =>
    Effect.gen(function*() {
      openai.setAnswer((r) => {
        const result = r.messages.find((m) => m.role === "tool")
        return result === undefined ? { toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] } : { content: `Answer: ${String(result.content)}` }
      })
      const lm = yield* LanguageModel.LanguageModel
      const prompt = Prompt.make("weather in Paris?")
      const first = yield* lm.generateText({ prompt, toolkit: Weather })
      expect(first.toolResults.map((r) => r.result)).toEqual(["sunny in Paris"])
      const second = yield* lm.generateText({ prompt: Prompt.merge(prompt, Prompt.fromResponseParts(first.content)), toolkit: Weather })
      expect(second.text).toBe("Answer: sunny in Paris")
      const last = openai.requests[openai.requests.length - 1]!.body as any
      const toolMessage = last.messages.find((m: any) => m.role === "tool")
      const assistant = last.messages.find((m: any) => m.role === "assistant")
      expect(toolMessage.tool_call_id).toBe(assistant.tool_calls[0].id)
    }).pipe(Effect.provide(handlers), Effect.provide(languageModelLayer("openai/gpt-4o-mini").pipe(Layer.provide(stack())))))
})

describe("the Retry-After schedule on the TestClock", () => {
  const limited = (seconds: number) =>
    new RateLimited({ provider: "p", retryAfterSeconds: seconds, retryAt: new Date(0).toISOString() })

  it.effect("waits what Retry-After says, then runs the request again", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const request = Stream.fromEffect(
        Ref.updateAndGet(attempts, (n) => n + 1).pipe(Effect.flatMap((n) => (n === 1 ? Effect.fail(limited(7)) : Effect.succeed("ok"))))
      )
      const fiber = yield* Effect.fork(Stream.runCollect(retryRateLimitedStream(request)))
      yield* TestClock.adjust("6 seconds")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      expect(yield* Ref.get(attempts)).toBe(1)
      yield* TestClock.adjust("1 second")
      expect(Chunk.toReadonlyArray(yield* Fiber.join(fiber))).toEqual(["ok"])
      expect(yield* Ref.get(attempts)).toBe(2)
    }))

  it.effect("gives up after the bound with the last RateLimited", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const request = Ref.update(attempts, (n) => n + 1).pipe(Effect.zipRight(Effect.fail(limited(1))))
      const fiber = yield* Effect.fork(Effect.either(Effect.retry(request, rateLimitSchedule)))
      yield* TestClock.adjust("10 seconds")
      const result = yield* Fiber.join(fiber)
      expect(Either.isLeft(result) && result.left._tag).toBe("RateLimited")
      expect(yield* Ref.get(attempts)).toBe(4)
    }))
})

describe("the SSE parser", () => {
  it("gives the same events however the bytes are split (CRLF, comments, multi-line data, event names)", () => {
    const text = ": keep-alive\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: one\ndata: two\n\ndata: [DONE]\n\n"
    const expected = [{ event: "message_start", data: "{\"a\":1}" }, { event: "", data: "one\ntwo" }, { event: "", data: "[DONE]" }]
    for (let size = 1; size <= text.length; size++) {
      const parse = makeSseParser()
      const events = []
      for (let i = 0; i < text.length; i += size) events.push(...parse(text.slice(i, i + size)))
      expect(events, `split every ${size} characters`).toEqual(expected)
    }
  })
})

/**
 * Cached prompt tokens, everywhere a client looks (issue 21): a GGUF model's second turn of a
 * conversation reports the prefix its sequence already held, through `llmspell serve` to the real
 * `openai` client (chat completions, the streamed usage chunk, /v1/responses) and the real
 * `ollama` client (`prompt_eval_count` the whole prompt, `prompt_eval_cached_count` the cached
 * part); what Ollama, OpenAI and Anthropic backends report is passed on, and nothing is made up
 * when a backend says nothing.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Ollama } from "ollama"
import OpenAI from "openai"
import { promptRequest } from "../src/domain/Types.js"
import { languageModelLayer } from "../src/layers/LanguageModelAdapter.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import { ProviderRegistry } from "../src/services/ProviderRegistry.js"
import { type FakeAnthropic, startFakeAnthropic } from "./fixtures/fakeAnthropic.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"

let dir: string
let fake: FakeOllama
let serve: ServeHarness
let openai: OpenAI
let ollama: Ollama

const TINY = "tiny.gguf@gguf"
const AGENT = "agent@ollama"

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-cached-"))
  fake = await startFakeOllama({ models: [fakeModel("agent")], answer: (input) => `You said: ${input.prompt}` })
  // one sequence: a conversation's next turn lands on the sequence that served its last one
  serve = await startServe({ dir, ollamaUrl: fake.url, gguf: { parallel: 1, context_size: 1024 } })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  openai = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "unused", maxRetries: 0 })
  ollama = new Ollama({ host: serve.url })
}, 120_000)

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

type Message = { role: "system" | "user" | "assistant"; content: string }
const SYSTEM = "You are a terse assistant. Answer in one line. Never use lists or tables in any answer."

describe("a GGUF model's cached prompt tokens through llmspell serve", () => {
  it("OpenAI chat: turn 2 of a conversation reports turn 1's prompt as cached; turn 1 and an unrelated prompt report little", async () => {
    // an unrelated prompt first: the sequence then holds something that shares only the template's start
    const unrelated = await openai.chat.completions.create({
      model: TINY,
      messages: [{ role: "user", content: "zebra quartz xylophone" }],
      max_tokens: 4,
      seed: 1,
      temperature: 0
    })
    expect(unrelated.usage!.prompt_tokens_details!.cached_tokens).toBeLessThan(unrelated.usage!.prompt_tokens)

    const turn1: Array<Message> = [{ role: "system", content: SYSTEM }, { role: "user", content: "hello there, how are you" }]
    const one = await openai.chat.completions.create({ model: TINY, messages: turn1, max_tokens: 6, seed: 2, temperature: 0 })
    const cached1 = one.usage!.prompt_tokens_details!.cached_tokens!
    // the previous prompt was another user turn: at most the template's opening tokens are shared
    expect(cached1).toBeLessThan(8)

    const turn2: Array<Message> = [
      ...turn1,
      { role: "assistant", content: one.choices[0]!.message.content ?? "" },
      { role: "user", content: "and what about tomorrow" }
    ]
    const two = await openai.chat.completions.create({ model: TINY, messages: turn2, max_tokens: 6, seed: 3, temperature: 0 })
    const usage2 = two.usage!
    const cached2 = usage2.prompt_tokens_details!.cached_tokens!
    // prompt_tokens counts the whole prompt, cached part included (OpenAI's meaning)
    expect(usage2.prompt_tokens).toBeGreaterThan(one.usage!.prompt_tokens)
    expect(usage2.total_tokens).toBe(usage2.prompt_tokens + usage2.completion_tokens)
    // the whole of turn 1's prompt was in the cache (± the tokens where the template joins the answer)
    expect(cached2).toBeGreaterThanOrEqual(one.usage!.prompt_tokens - 3)
    expect(cached2).toBeLessThan(usage2.prompt_tokens)
  })

  it("OpenAI chat streamed: the usage chunk carries cached_tokens; the same prompt again is cached but its last token", async () => {
    const request = {
      model: TINY,
      messages: [{ role: "system" as const, content: SYSTEM }, { role: "user" as const, content: "say something about rivers" }],
      max_tokens: 5,
      seed: 4,
      temperature: 0,
      stream: true as const,
      stream_options: { include_usage: true }
    }
    const usageOf = async () => {
      let usage: OpenAI.CompletionUsage | undefined
      for await (const chunk of await openai.chat.completions.create(request)) if (chunk.usage) usage = chunk.usage
      return usage!
    }
    const first = await usageOf()
    const again = await usageOf()
    expect(again.prompt_tokens).toBe(first.prompt_tokens)
    // the last prompt token is always evaluated again, for the first answer token
    expect(again.prompt_tokens_details!.cached_tokens).toBe(again.prompt_tokens - 1)
  })

  it("/v1/responses: usage.input_tokens_details.cached_tokens", async () => {
    const input = [{ role: "system" as const, content: SYSTEM }, { role: "user" as const, content: "name a colour of the sea" }]
    await openai.responses.create({ model: TINY, input, max_output_tokens: 4, temperature: 0 })
    const again = await openai.responses.create({ model: TINY, input, max_output_tokens: 4, temperature: 0 })
    expect(again.usage!.input_tokens_details.cached_tokens).toBe(again.usage!.input_tokens - 1)
  })

  it("Ollama chat through the ollama client: prompt_eval_count is the whole prompt, prompt_eval_cached_count the cached part (unstreamed and streamed)", async () => {
    const turn1: Array<Message> = [{ role: "system", content: SYSTEM }, { role: "user", content: "tell me about mountains" }]
    const one = await ollama.chat({ model: TINY, messages: turn1, options: { num_predict: 5, seed: 5, temperature: 0 } })
    const turn2: Array<Message> = [...turn1, { role: "assistant", content: one.message.content }, { role: "user", content: "and hills" }]
    const two = await ollama.chat({ model: TINY, messages: turn2, options: { num_predict: 5, seed: 6, temperature: 0 } })
    const cached2 = (two as unknown as { prompt_eval_cached_count: number }).prompt_eval_cached_count
    expect(two.prompt_eval_count).toBeGreaterThan(one.prompt_eval_count)
    expect(cached2).toBeGreaterThanOrEqual(one.prompt_eval_count - 3)
    expect(cached2).toBeLessThan(two.prompt_eval_count)

    let last: Record<string, unknown> | undefined
    for await (const part of await ollama.chat({ model: TINY, messages: turn2, stream: true, options: { num_predict: 5, seed: 6, temperature: 0 } })) {
      if (part.done) last = part as unknown as Record<string, unknown>
    }
    expect(last!["prompt_eval_count"]).toBe(two.prompt_eval_count)
    expect(last!["prompt_eval_cached_count"]).toBe(two.prompt_eval_count - 1)
  })
})

describe("an Ollama backend's cached tokens passed on", () => {
  it("prompt_eval_cached_count reaches the Ollama API's client as is and the OpenAI API's as cached_tokens", async () => {
    const turn1: Array<Message> = [{ role: "system", content: "be brief" }, { role: "user", content: "one two three" }]
    const one = await ollama.chat({ model: AGENT, messages: turn1 })
    const turn2: Array<Message> = [...turn1, { role: "assistant", content: one.message.content }, { role: "user", content: "four" }]
    const two = await ollama.chat({ model: AGENT, messages: turn2 })
    // the fake reports the prefix shared with the model's previous prompt: all of turn 1's
    expect((two as unknown as { prompt_eval_cached_count: number }).prompt_eval_cached_count).toBe(one.prompt_eval_count)
    const three = await openai.chat.completions.create({ model: AGENT, messages: [...turn2, { role: "assistant", content: "ok" }, { role: "user", content: "five" }] })
    expect(three.usage!.prompt_tokens_details!.cached_tokens).toBe(two.prompt_eval_count)
  })
})

describe("cloud backends' cached tokens passed on", () => {
  const KEY = "sk-cachedtest-0123456789abcdef"
  const ANT_KEY = "sk-ant-cachedtest-fedcba9876543210"
  let cloud: FakeOpenAI
  let anthropic: FakeAnthropic
  beforeAll(async () => {
    cloud = await startFakeOpenAI({ apiKey: KEY, models: ["gpt-4o-mini"] })
    anthropic = await startFakeAnthropic({ apiKey: ANT_KEY })
  })
  afterAll(async () => {
    await Promise.all([cloud?.close(), anthropic?.close()])
  })
  const stack = () =>
    LlmspellLive.layerFromObject(
      { providers: { openai: { base_url: cloud.baseUrl }, anthropic: { base_url: anthropic.baseUrl } } },
      { env: { OPENAI_API_KEY: KEY, ANTHROPIC_API_KEY: ANT_KEY }, home: "/nonexistent-home" }
    )
  const usageOf = (spec: string, prompt: string) =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const resolved = yield* registry.resolve(spec)
      const events = Chunk.toReadonlyArray(yield* Stream.runCollect(resolved.handle.generate(resolved.model, promptRequest(prompt))))
      const last = events[events.length - 1]!
      if (last._tag !== "Finish") throw new Error(`ended with ${last._tag}`)
      return last.completion.usage
    })

  it.effect("OpenAI's prompt_tokens_details.cached_tokens; none reported is none, not 0", () =>
    Effect.gen(function*() {
      cloud.setAnswer(() => ({ content: "fine", cachedTokens: 2 }))
      const usage = yield* usageOf("openai/gpt-4o-mini", "a b c d e")
      expect(usage.cachedPromptTokens).toBe(2)
      expect(usage.promptTokens).toBeGreaterThan(2)
      cloud.setAnswer(() => ({ content: "fine" }))
      expect((yield* usageOf("openai/gpt-4o-mini", "a b c d e")).cachedPromptTokens).toBeUndefined()
    }).pipe(Effect.provide(stack())))

  it.effect("@effect/ai's usage: cachedInputTokens through the LanguageModel adapter", () =>
    Effect.gen(function*() {
      cloud.setAnswer(() => ({ content: "fine", cachedTokens: 2 }))
      const response = yield* LanguageModel.generateText({ prompt: "a b c d e" }).pipe(
        Effect.provide(languageModelLayer("openai/gpt-4o-mini"))
      )
      expect(response.usage.cachedInputTokens).toBe(2)
      expect(response.usage.inputTokens).toBeGreaterThan(2)
    }).pipe(Effect.provide(stack())))

  it.effect("Anthropic's cache_read_input_tokens: cached, and counted in the whole prompt (its input_tokens leaves it out)", () =>
    Effect.gen(function*() {
      anthropic.setAnswer(() => ({ content: "fine" }))
      const plain = yield* usageOf("anthropic/claude-3-5-haiku-latest", "a b c d e f")
      expect(plain.cachedPromptTokens).toBeUndefined()
      anthropic.setAnswer(() => ({ content: "fine", cacheReadInputTokens: 3 }))
      const cached = yield* usageOf("anthropic/claude-3-5-haiku-latest", "a b c d e f")
      expect(cached.cachedPromptTokens).toBe(3)
      expect(cached.promptTokens).toBe(plain.promptTokens)
      expect(cached.totalTokens).toBe(cached.promptTokens + cached.completionTokens)
    }).pipe(Effect.provide(stack())))
})

describe("a conversation keeps its sequence: 4 sequences, a GGUF worker process, conversations interleaved", () => {
  let dir2: string
  let served: ServeHarness
  let client: OpenAI
  const MODEL = "conv.gguf@gguf"
  beforeAll(async () => {
    dir2 = mkdtempSync(join(tmpdir(), "llmspell-turns-"))
    served = await startServe({ dir: dir2, gguf: { parallel: 4, isolation: "process", context_size: 1024 } })
    writeFileSync(join(dir2, "models", "conv.gguf"), tinyLlamaGguf({ vocabSize: 400, seed: 3 }))
    client = new OpenAI({ baseURL: `${served.url}/v1`, apiKey: "unused", maxRetries: 0 })
  }, 120_000)
  afterAll(async () => {
    await served?.close()
    rmSync(dir2, { recursive: true, force: true })
  })

  // an agent's shared system prompt, then each conversation's own turns
  const AGENT_SYSTEM = "You are a coding agent. Tools: read(path), write(path, text), grep(pattern). Answer briefly and plainly."
  const ask = (messages: ReadonlyArray<Message>, maxTokens = 6) =>
    client.chat.completions.create({ model: MODEL, messages: [...messages], max_tokens: maxTokens, temperature: 0, seed: 1 })

  it("a new conversation gets the shared system prompt copied; turn 2 of each finds its turn 1 cached, others interleaved; an interrupted answer keeps the prompt it evaluated", async () => {
    const conversations = ["alpha", "bravo", "charlie"].map((name): Array<Message> => [
      { role: "system", content: AGENT_SYSTEM },
      { role: "user", content: `${name}: open the file ${name}.ts and list its exports` }
    ])
    const first = []
    const answers: Array<string> = []
    for (const history of conversations) {
      const reply = await ask(history)
      first.push(reply.usage!)
      answers.push(reply.choices[0]!.message.content ?? "")
      history.push({ role: "assistant", content: reply.choices[0]!.message.content ?? "" })
    }
    // a copied prefix is the same state as an evaluated one: the same greedy answer as the model
    // gives in a fresh in-process server that evaluated the whole prompt
    writeFileSync(join(dir, "models", "conv.gguf"), tinyLlamaGguf({ vocabSize: 400, seed: 3 }))
    const fresh = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "unused", maxRetries: 0 })
    const again = await fresh.chat.completions.create({ model: MODEL, messages: conversations[1]!.slice(0, 2), max_tokens: 6, temperature: 0, seed: 1 })
    expect(again.usage!.prompt_tokens_details!.cached_tokens).toBe(0)
    expect(answers[1]!.length).toBeGreaterThan(0)
    expect(again.choices[0]!.message.content).toBe(answers[1])
    // the first conversation found nothing; the others found the shared system prompt, copied into a
    // sequence of their own from the first one's (not taken from it)
    expect(first[0]!.prompt_tokens_details!.cached_tokens).toBe(0)
    for (const usage of first.slice(1)) {
      expect(usage.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(32)
      expect(usage.prompt_tokens_details!.cached_tokens).toBeLessThan(usage.prompt_tokens - 8)
    }
    // every conversation's second turn, in another order: each lands on the sequence holding its first
    for (const i of [2, 0, 1]) {
      const history = conversations[i]!
      history.push({ role: "user", content: `now rename the first export of turn ${i}` })
      const usage = (await ask(history)).usage!
      expect(usage.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(first[i]!.prompt_tokens - 3)
      expect(usage.prompt_tokens_details!.cached_tokens).toBeLessThan(usage.prompt_tokens)
    }

    // an answer interrupted after its first chunk: the sequence keeps the prompt it evaluated
    const alpha = conversations[0]!
    alpha.push({ role: "assistant", content: "done" }, { role: "user", content: "write a very long explanation of every change" })
    const controller = new AbortController()
    const stream = await client.chat.completions.create(
      { model: MODEL, messages: alpha, max_tokens: 400, temperature: 0.8, seed: 2, stream: true, stream_options: { include_usage: true } },
      { signal: controller.signal }
    )
    let chunks = 0
    try {
      for await (const chunk of stream) {
        chunks++
        if (chunk.choices[0]?.delta.content) controller.abort()
      }
    } catch {
      // the client's abort
    }
    expect(chunks).toBeGreaterThan(0)
    // wait until the worker has given the sequence back (no sleeping: the server's load says)
    await served.waitForLoad((load) => load.running === 0 && load.inFlight === 0)
    // others use the model meanwhile
    await ask([...conversations[1]!, { role: "user", content: "and the tests?" }])
    const interruptedPrompt = (await ask(alpha, 1)).usage!
    // (the same prompt again: everything but its last token, from the sequence the interrupted answer left)
    expect(interruptedPrompt.prompt_tokens_details!.cached_tokens).toBe(interruptedPrompt.prompt_tokens - 1)
  }, 180_000)
})

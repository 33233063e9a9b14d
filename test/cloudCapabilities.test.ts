/**
 * The cloud presets' capabilities (domain/CloudCapabilities.ts): the table decides per model name,
 * unknown where it is not sure; listings and `model info` carry them (info without a key or a
 * connection too, saying the listing was not asked); a request needing a capability the model is
 * known to lack is UnsupportedOperation naming it, with nothing sent to the provider (fake servers
 * count what reached them); an unknown model is sent.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeCapture } from "../src/cli/CliIO.js"
import { main } from "../src/cli/main.js"
import { cloudCapabilities } from "../src/domain/CloudCapabilities.js"
import { promptRequest } from "../src/domain/Types.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { type FakeAnthropic, startFakeAnthropic } from "./fixtures/fakeAnthropic.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"
import { unusedPort } from "./support/ports.js"

const KEY = "sk-capstest-0123456789abcdef"
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 9, 9]).toString("base64")

describe("the presets' capability table", () => {
  it.each([
    ["openai", "gpt-4o-mini", ["completion", "tools", "vision"]],
    ["openai", "gpt-4o-2024-08-06", ["completion", "tools", "vision"]],
    ["openai", "gpt-4.1-nano", ["completion", "tools", "vision"]],
    ["openai", "chatgpt-4o-latest", ["completion", "vision"]],
    ["openai", "gpt-3.5-turbo", ["completion", "tools"]],
    ["openai", "o1-mini", ["completion", "thinking"]],
    ["openai", "o3-mini-2025-01-31", ["completion", "tools", "thinking"]],
    ["openai", "o4-mini", ["completion", "tools", "vision", "thinking"]],
    ["openai", "gpt-5", ["completion", "tools", "vision", "thinking"]],
    ["openai", "gpt-5.1-mini", ["completion", "tools", "vision", "thinking"]],
    ["openai", "text-embedding-3-large", ["embedding"]],
    ["anthropic", "claude-3-5-haiku-latest", ["completion", "tools", "vision"]],
    ["anthropic", "claude-3-haiku-20240307", ["completion", "tools", "vision"]],
    ["anthropic", "claude-3-7-sonnet-20250219", ["completion", "tools", "vision", "thinking"]],
    ["anthropic", "claude-sonnet-4-5-20250929", ["completion", "tools", "vision", "thinking"]],
    ["anthropic", "claude-opus-4-1", ["completion", "tools", "vision", "thinking"]],
    ["cohere", "rerank-v3.5", ["rerank"]],
    ["cohere", "embed-v4.0", ["embedding"]],
    ["cohere", "command-r-plus", ["completion", "tools"]],
    ["jina", "jina-reranker-v2-base-multilingual", ["rerank"]],
    ["jina", "jina-embeddings-v3", ["embedding"]],
    ["mistral", "mistral-embed", ["embedding"]],
    ["gemini", "models/gemini-embedding-001", ["embedding"]]
  ])("%s %s → %j", (provider, model, expected) => {
    expect(cloudCapabilities(provider, model)).toEqual(expected)
  })

  it.each([
    ["openai", "gpt-4o-audio-preview"],
    ["openai", "gpt-4o-mini-realtime-preview"],
    ["openai", "gpt-4o-search-preview"],
    ["openai", "gpt-3.5-turbo-instruct"],
    ["openai", "o1-pro"],
    ["openai", "o3-deep-research"],
    ["openai", "gpt-5-codex"],
    ["openai", "gpt-5-chat-latest"],
    ["openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123"],
    ["openai", "dall-e-3"],
    ["openai", "whisper-1"],
    ["anthropic", "claude-2.1"],
    ["anthropic", "claude-instant-1.2"],
    ["cohere", "command-a-vision-07-2025"],
    ["cohere", "command-a-reasoning-08-2025"],
    ["groq", "llama-3.3-70b-versatile"],
    ["deepseek", "deepseek-chat"],
    ["openrouter", "openai/gpt-4o-mini"],
    ["openai_compatible", "gpt-4o-mini"],
    ["toString", "gpt-4o-mini"]
  ])("%s %s → unknown (left out, never guessed)", (provider, model) => {
    expect(cloudCapabilities(provider, model)).toBeUndefined()
  })
})

let openai: FakeOpenAI
let anthropic: FakeAnthropic
let vllm: FakeOpenAI
let closedPort: number
beforeAll(async () => {
  openai = await startFakeOpenAI({
    apiKey: KEY,
    models: ["gpt-4o-mini", "gpt-3.5-turbo", "o1-mini", "text-embedding-3-small", "command-r", "rerank-v3.5", "mystery-model"]
  })
  anthropic = await startFakeAnthropic({ apiKey: KEY, models: ["claude-3-5-haiku-latest", "claude-3-7-sonnet-latest"] })
  vllm = await startFakeOpenAI({ models: ["meta-llama/Llama-3.1-8B-Instruct"] })
  closedPort = await unusedPort()
})
afterAll(async () => {
  await Promise.all([openai?.close(), anthropic?.close(), vllm?.close()])
})

const stack = (env: Record<string, string> = { OPENAI_API_KEY: KEY, ANTHROPIC_API_KEY: KEY, COHERE_API_KEY: KEY }) =>
  LlmspellLive.layerFromObject(
    {
      providers: {
        openai: { base_url: openai.baseUrl },
        anthropic: { base_url: anthropic.baseUrl },
        cohere: { base_url: `${openai.origin}/compatibility/v1` },
        vllm: { provider_type: "openai_compatible", base_url: vllm.baseUrl },
        // a provider out of reach
        gone: { provider_type: "openai", base_url: `http://127.0.0.1:${closedPort}/v1`, api_key: KEY }
      }
    },
    { env, home: "/nonexistent-home" }
  )

const sentTo = (fake: FakeOpenAI, path: string) => fake.requests.filter((r) => r.path === path).length

const generate = (spec: string, request: Parameters<typeof promptRequest>[1] & { images?: boolean } = {}) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const { images, ...options } = request
    const base = promptRequest("what is this?", options)
    const withImages = images === true
      ? { ...base, messages: base.messages.map((m) => (m.role === "user" ? { ...m, images: [{ mediaType: "image/png", data: PNG }] } : m)) }
      : base
    return Chunk.toReadonlyArray(yield* Stream.runCollect(llm.generate(spec, withImages)))
  })

describe("cloud capabilities in listings and model info", () => {
  it.effect("a listing carries what the table knows, and leaves the rest out", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const list = yield* llm.list("cloud")
      const of = (instance: string, name: string) => list.models.find((m) => m.instance === instance && m.name === name)
      expect(of("openai", "gpt-4o-mini")?.capabilities).toEqual(["completion", "tools", "vision"])
      expect(of("openai", "text-embedding-3-small")?.capabilities).toEqual(["embedding"])
      expect(of("openai", "mystery-model")).toBeDefined()
      expect(of("openai", "mystery-model")?.capabilities).toBeUndefined()
      expect(of("vllm", "meta-llama/Llama-3.1-8B-Instruct")?.capabilities).toBeUndefined()
    }).pipe(Effect.provide(stack())))

  it.effect("model info: the capabilities, and that the provider lists the model", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const info = yield* llm.info("openai/gpt-4o-mini")
      expect(info.capabilities).toEqual(["completion", "tools", "vision"])
      expect(info.details).toMatchObject({ provider: "openai", listed: "yes" })
      const claude = yield* llm.info("anthropic/claude-3-5-haiku-latest")
      expect(claude.capabilities).toEqual(["completion", "tools", "vision"])
      expect((yield* Effect.flip(llm.info("openai/not-offered")))._tag).toBe("ModelNotFound")
    }).pipe(Effect.provide(stack())))

  it.effect("model info without a key: what the table knows, the listing not asked, nothing sent", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const before = openai.requests.length
      const info = yield* llm.info("openai/gpt-4o-mini")
      expect(info.capabilities).toEqual(["completion", "tools", "vision"])
      expect(String(info.details.listed)).toMatch(/^not checked \(no API key: set OPENAI_API_KEY\)$/)
      const unknown = yield* llm.info("openai/mystery-model")
      expect(unknown.capabilities).toBeUndefined()
      expect(openai.requests.length).toBe(before)
    }).pipe(Effect.provide(stack({}))))

  it.effect("model info with the provider out of reach: what the table knows, saying the listing was not asked", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const info = yield* llm.info("gone/o4-mini")
      expect(info.capabilities).toEqual(["completion", "tools", "vision", "thinking"])
      expect(String(info.details.listed)).toMatch(/^not checked \(/)
    }).pipe(Effect.provide(stack())))

  it.effect("`llmspell model info openai/gpt-4o-mini` works offline, without a key", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "llmspell-cloud-caps-"))
      try {
        const run = (args: ReadonlyArray<string>) =>
          Effect.gen(function*() {
            const capture = makeCapture()
            const code = yield* main(
              ["node", "llmspell", ...args],
              { HOME: dir, XDG_CONFIG_HOME: join(dir, "xdg"), OLLAMA_HOST: `127.0.0.1:${closedPort}` },
              { cwd: dir, home: dir }
            ).pipe(Effect.provide(Layer.merge(capture.layer, NodeContext.layer)))
            return { code, stdout: capture.stdout(), stderr: capture.stderr() }
          })
        const json = yield* run(["model", "info", "openai/gpt-4o-mini", "--json"])
        expect(json.code).toBe(0)
        expect(JSON.parse(json.stdout)).toMatchObject({ name: "gpt-4o-mini", backend: "cloud", capabilities: ["completion", "tools", "vision"] })
        const text = yield* run(["model", "info", "anthropic/claude-sonnet-4-5"])
        expect(text.code).toBe(0)
        expect(text.stdout).toMatch(/^capabilities: +completion, tools, vision, thinking$/m)
        // the provider's template is not ours to know
        expect(text.stdout).not.toContain("chat template")
        expect(text.stdout).toMatch(/^listed by provider: not checked \(no API key: set ANTHROPIC_API_KEY\)$/m)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }))
})

describe("a request needing what the cloud model is known to lack: refused at once, nothing sent", () => {
  it.effect("embed on a chat model (openai/gpt-4o-mini) names embedding", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const before = sentTo(openai, "/v1/embeddings")
      const e = yield* Effect.flip(llm.embed("openai/gpt-4o-mini", ["hello"]))
      expect(e._tag).toBe("UnsupportedOperation")
      expect(e.message).toContain("\"embedding\"")
      expect(e.message).toContain("gpt-4o-mini")
      expect(sentTo(openai, "/v1/embeddings")).toBe(before)
      // an embedding model is sent
      const ok = yield* llm.embed("openai/text-embedding-3-small", ["hello"])
      expect(ok.vectors).toHaveLength(1)
      expect(sentTo(openai, "/v1/embeddings")).toBe(before + 1)
    }).pipe(Effect.provide(stack())))

  it.effect("embed on anthropic/… is refused as before (no embeddings endpoint)", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const before = anthropic.requests.length
      const e = yield* Effect.flip(llm.embed("anthropic/claude-3-5-haiku-latest", ["hello"]))
      expect(e._tag).toBe("UnsupportedOperation")
      expect(anthropic.requests.length).toBe(before)
    }).pipe(Effect.provide(stack())))

  it.effect("an image to a model without vision (openai/gpt-3.5-turbo) names vision; to gpt-4o-mini it is sent", () =>
    Effect.gen(function*() {
      const before = sentTo(openai, "/v1/chat/completions")
      const e = yield* Effect.flip(generate("openai/gpt-3.5-turbo", { images: true }))
      expect(e._tag).toBe("UnsupportedOperation")
      expect(e.message).toContain("\"vision\"")
      expect((e as { operation?: string }).operation).toBe("images")
      expect(sentTo(openai, "/v1/chat/completions")).toBe(before)
      const events = yield* generate("openai/gpt-4o-mini", { images: true })
      expect(events.some((ev) => ev._tag === "Finish")).toBe(true)
      expect(sentTo(openai, "/v1/chat/completions")).toBe(before + 1)
    }).pipe(Effect.provide(stack())))

  it.effect("chat with an embedding model names completion; tools to o1-mini name tools", () =>
    Effect.gen(function*() {
      const before = sentTo(openai, "/v1/chat/completions")
      const e = yield* Effect.flip(generate("openai/text-embedding-3-small"))
      expect(e._tag).toBe("UnsupportedOperation")
      expect(e.message).toContain("\"completion\"")
      const tools = [{ name: "get_weather", description: "the weather", parameters: { type: "object", properties: {} } }]
      const t = yield* Effect.flip(generate("openai/o1-mini", { tools }))
      expect(t._tag).toBe("UnsupportedOperation")
      expect(t.message).toContain("\"tools\"")
      expect(sentTo(openai, "/v1/chat/completions")).toBe(before)
    }).pipe(Effect.provide(stack())))

  it.effect("reasoning on an Anthropic model without extended thinking names thinking; a 3.7 Sonnet is sent", () =>
    Effect.gen(function*() {
      const before = anthropic.requests.length
      const e = yield* Effect.flip(generate("anthropic/claude-3-5-haiku-latest", { reasoning: true }))
      expect(e._tag).toBe("UnsupportedOperation")
      expect(e.message).toContain("\"thinking\"")
      expect(anthropic.requests.length).toBe(before)
      const events = yield* generate("anthropic/claude-3-7-sonnet-latest", { reasoning: true })
      expect(events.some((ev) => ev._tag === "Finish")).toBe(true)
      expect(anthropic.requests.length).toBe(before + 1)
    }).pipe(Effect.provide(stack())))

  it.effect("rerank on a chat model at Cohere names rerank; a rerank model is sent", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const before = sentTo(openai, "/v2/rerank")
      const e = yield* Effect.flip(llm.rerank("cohere/command-r", { query: "cat", documents: ["a cat", "a dog"] }))
      expect(e._tag).toBe("UnsupportedOperation")
      expect(e.message).toContain("\"rerank\"")
      expect(sentTo(openai, "/v2/rerank")).toBe(before)
      const ranked = yield* llm.rerank("cohere/rerank-v3.5", { query: "cat", documents: ["a cat", "a dog"] })
      expect(ranked.results).toHaveLength(2)
      expect(sentTo(openai, "/v2/rerank")).toBe(before + 1)
    }).pipe(Effect.provide(stack())))

  it.effect("unknown capabilities are sent: an image to an openai_compatible model, embed on an unknown OpenAI name", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const before = sentTo(vllm, "/v1/chat/completions")
      yield* generate("vllm/meta-llama/Llama-3.1-8B-Instruct", { images: true })
      expect(sentTo(vllm, "/v1/chat/completions")).toBe(before + 1)
      const embedded = yield* llm.embed("openai/mystery-model", ["x"])
      expect(embedded.vectors).toHaveLength(1)
    }).pipe(Effect.provide(stack())))
})

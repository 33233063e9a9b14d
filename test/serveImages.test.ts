/**
 * Images in chat messages through `llmspell serve`, with the real `openai`, `ollama` and
 * `@anthropic-ai/sdk` clients: OpenAI `image_url` parts (data: URLs), Ollama's base64 `images`
 * (/api/chat and /api/generate) and Anthropic base64 image blocks reach an Ollama model as Ollama
 * takes them (bare base64 of the same bytes), an `openai_compatible` model as `image_url` data URLs
 * and an Anthropic model as base64 image blocks; a GGUF model refuses them with a 400 naming why;
 * count and size limits are refused naming the field.
 */
import Anthropic from "@anthropic-ai/sdk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Ollama } from "ollama"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { IMAGE_LIMITS } from "../src/domain/Images.js"
import { type FakeAnthropic, startFakeAnthropic } from "./fixtures/fakeAnthropic.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"

let dir: string
let ollamaFake: FakeOllama
let openAiFake: FakeOpenAI
let anthropicFake: FakeAnthropic
let serve: ServeHarness

const VISION = "llava@ollama"
const CLOUD_OPENAI = "vision/gpt-4o-mini"
const CLOUD_ANTHROPIC = "anthropic/claude-3-5-haiku-latest"
const TINY = "tiny.gguf@gguf"
const NO_VISION = "node-llama-cpp 3.x runs no vision model"

/** A PNG's signature and a few more bytes, distinct per image, so order and content are checked. */
const png = (n: number) => Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, n, n + 1, n + 2, 0, 255])
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")
const dataUrl = (bytes: Uint8Array) => `data:image/png;base64,${b64(bytes)}`

const lastOllamaBody = (path: string) => {
  const request = [...ollamaFake.requests].reverse().find((r) => r.path === path)
  return request?.body as { messages?: Array<{ role: string; content: string; images?: Array<string> }>; images?: Array<string> }
}
const lastBody = (requests: ReadonlyArray<{ path: string; body: unknown }>) => requests[requests.length - 1]?.body as { messages: Array<{ role: string; content: unknown }> }

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-images-"))
  ollamaFake = await startFakeOllama({ models: [fakeModel("llava", { capabilities: ["completion", "vision", "tools"] })] })
  openAiFake = await startFakeOpenAI({ models: ["gpt-4o-mini"] })
  anthropicFake = await startFakeAnthropic({ models: ["claude-3-5-haiku-latest"] })
  serve = await startServe({
    dir,
    ollamaUrl: ollamaFake.url,
    providers: {
      vision: { provider_type: "openai_compatible", base_url: openAiFake.baseUrl },
      anthropic: { provider_type: "anthropic", base_url: anthropicFake.baseUrl, api_key: "sk-ant-upstream" }
    }
  })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
})

afterAll(async () => {
  await serve?.close()
  await Promise.all([ollamaFake?.close(), openAiFake?.close(), anthropicFake?.close()])
  rmSync(dir, { recursive: true, force: true })
})

const failure = async (p: Promise<unknown>) => {
  try {
    await p
  } catch (e) {
    return { status: (e as { status?: number; status_code?: number }).status ?? (e as { status_code?: number }).status_code, message: (e as Error).message }
  }
  throw new Error("expected a failure")
}

describe("OpenAI image_url parts on /v1/chat/completions", () => {
  const client = () => new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 })
  const ask = (model: string, url: string, more: Array<string> = []) =>
    client().chat.completions.create({
      model,
      messages: [{
        role: "user",
        content: [{ type: "text", text: "what is this?" }, ...[url, ...more].map((u) => ({ type: "image_url" as const, image_url: { url: u } }))]
      }]
    })

  it("reach an Ollama model as bare base64 of the same bytes, in order", async () => {
    const reply = await ask(VISION, dataUrl(png(1)), [dataUrl(png(7))])
    expect(reply.choices[0]!.message.role).toBe("assistant")
    const user = lastOllamaBody("/api/chat").messages!.at(-1)!
    expect(user.content).toBe("what is this?")
    expect(user.images).toEqual([b64(png(1)), b64(png(7))])
    expect(Buffer.from(user.images![1]!, "base64")).toEqual(Buffer.from(png(7)))
  })

  it("reach an openai_compatible model as image_url data URLs, unchanged", async () => {
    await ask(CLOUD_OPENAI, dataUrl(png(3)))
    const user = lastBody(openAiFake.requests).messages.at(-1)!
    expect(user.content).toEqual([
      { type: "text", text: "what is this?" },
      { type: "image_url", image_url: { url: dataUrl(png(3)) } }
    ])
  })

  it("reach an Anthropic model as a base64 image block", async () => {
    await ask(CLOUD_ANTHROPIC, dataUrl(png(4)))
    const user = lastBody(anthropicFake.requests).messages.at(-1)!
    expect(user.content).toEqual([
      { type: "image", source: { type: "base64", media_type: "image/png", data: b64(png(4)) } },
      { type: "text", text: "what is this?" }
    ])
  })

  it("an http(s) URL is refused with a 400 naming the field, and nothing is sent upstream", async () => {
    const before = ollamaFake.requests.length
    const e = await failure(ask(VISION, "https://example.com/cat.png"))
    expect(e.status).toBe(400)
    expect(e.message).toContain("messages[0].content[1].image_url.url")
    expect(e.message).toMatch(/data:image/)
    expect(ollamaFake.requests.slice(before).some((r) => r.path === "/api/chat")).toBe(false)
  })

  it("a URL that is not an image data URL, and data that is not base64, are refused", async () => {
    expect((await failure(ask(VISION, "data:text/plain;base64,aGk="))).message).toContain("image_url.url")
    const bad = await failure(ask(VISION, "data:image/png;base64,%%%notbase64"))
    expect(bad.status).toBe(400)
    expect(bad.message).toMatch(/not base64/)
  })

  it("more images than the limit are refused naming the limit", async () => {
    const urls = Array.from({ length: IMAGE_LIMITS.count + 1 }, (_, i) => dataUrl(png(i)))
    const e = await failure(ask(VISION, urls[0]!, urls.slice(1)))
    expect(e.status).toBe(400)
    expect(e.message).toContain(`at most ${IMAGE_LIMITS.count} images`)
  })

  it("a GGUF model answers 400 naming why, with no CLI hint", async () => {
    const e = await failure(ask(TINY, dataUrl(png(1))))
    expect(e.status).toBe(400)
    expect(e.message).toContain(NO_VISION)
    expect(e.message).not.toMatch(/llmspell model/)
  })
})

describe("OpenAI input_image parts on /v1/responses", () => {
  it("reach an Ollama model as base64; an http(s) URL is refused naming the part", async () => {
    const client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 })
    const input = (url: string) => [{
      role: "user" as const,
      content: [{ type: "input_text" as const, text: "what is it?" }, { type: "input_image" as const, image_url: url, detail: "auto" as const }]
    }]
    await client.responses.create({ model: VISION, input: input(dataUrl(png(11))) })
    expect(lastOllamaBody("/api/chat").messages!.at(-1)).toMatchObject({ content: "what is it?", images: [b64(png(11))] })
    const e = await failure(client.responses.create({ model: VISION, input: input("http://example.com/a.png") }))
    expect(e.status).toBe(400)
    expect(e.message).toContain("input[0].content[1].image_url")
  })
})

describe("Ollama images on /api/chat and /api/generate", () => {
  const client = () => new Ollama({ host: serve.url })

  it("/api/chat: the ollama client's Uint8Array images arrive at Ollama as the same base64", async () => {
    const reply = await client().chat({ model: VISION, messages: [{ role: "user", content: "describe", images: [png(9)] }], stream: false })
    expect(reply.done).toBe(true)
    expect(lastOllamaBody("/api/chat").messages!.at(-1)!.images).toEqual([b64(png(9))])
  })

  it("/api/generate: images with the prompt reach the model's user message", async () => {
    const reply = await client().generate({ model: VISION, prompt: "describe", images: [b64(png(5))], stream: false })
    expect(reply.done).toBe(true)
    const body = lastOllamaBody("/api/chat")
    expect(body.messages!.at(-1)).toMatchObject({ role: "user", content: "describe", images: [b64(png(5))] })
  })

  it("/api/chat to an Anthropic model: a base64 image block with the media type read from the bytes", async () => {
    await client().chat({ model: CLOUD_ANTHROPIC, messages: [{ role: "user", content: "describe", images: [png(2)] }], stream: false })
    const user = lastBody(anthropicFake.requests).messages.at(-1)!
    expect(user.content).toEqual([
      { type: "image", source: { type: "base64", media_type: "image/png", data: b64(png(2)) } },
      { type: "text", text: "describe" }
    ])
  })

  it("bytes that are no known image, or not base64, are refused naming the field", async () => {
    const unknown = await failure(client().chat({ model: VISION, messages: [{ role: "user", content: "x", images: [b64(Uint8Array.from([1, 2, 3, 4]))] }], stream: false }))
    expect(unknown.status).toBe(400)
    expect(unknown.message).toContain("messages[0].images[0]")
    const notBase64 = await failure(client().generate({ model: VISION, prompt: "x", images: ["***"], stream: false }))
    expect(notBase64.status).toBe(400)
    expect(notBase64.message).toContain("images[0]")
  })

  it("a GGUF model answers 400 naming why", async () => {
    const e = await failure(client().chat({ model: TINY, messages: [{ role: "user", content: "x", images: [png(1)] }], stream: false }))
    expect(e.status).toBe(400)
    expect(e.message).toContain(NO_VISION)
  })
})

describe("Anthropic image blocks on /v1/messages", () => {
  const client = () => new Anthropic({ baseURL: serve.url, apiKey: "none", maxRetries: 0 })
  const ask = (model: string, source: Anthropic.ImageBlockParam["source"]) =>
    client().messages.create({
      model,
      max_tokens: 16,
      messages: [{ role: "user", content: [{ type: "image", source }, { type: "text", text: "what is it?" }] }]
    })

  it("reach an Ollama model as base64 and an Anthropic model unchanged", async () => {
    await ask(VISION, { type: "base64", media_type: "image/png", data: b64(png(6)) })
    expect(lastOllamaBody("/api/chat").messages!.at(-1)).toMatchObject({ content: "what is it?", images: [b64(png(6))] })
    await ask(CLOUD_ANTHROPIC, { type: "base64", media_type: "image/png", data: b64(png(8)) })
    expect(lastBody(anthropicFake.requests).messages.at(-1)!.content).toEqual([
      { type: "image", source: { type: "base64", media_type: "image/png", data: b64(png(8)) } },
      { type: "text", text: "what is it?" }
    ])
  })

  it("a URL source is refused naming the field; a GGUF model answers 400 naming why", async () => {
    const url = await failure(ask(VISION, { type: "url", url: "https://example.com/cat.png" }))
    expect(url.status).toBe(400)
    expect(url.message).toContain("messages[0].content[0].source.type")
    const gguf = await failure(ask(TINY, { type: "base64", media_type: "image/png", data: b64(png(1)) }))
    expect(gguf.status).toBe(400)
    expect(gguf.message).toContain(NO_VISION)
  })
})

describe("capabilities: GET /v1/models/{model} (the openai client's models.retrieve)", () => {
  it("an Ollama model's come from its /api/show; a GGUF model's from its header; an unknown model is a 404", async () => {
    const client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 })
    const vision = await client.models.retrieve(VISION) as unknown as { id: string; capabilities: Array<string> }
    expect(vision.id).toBe(VISION)
    expect(vision.capabilities).toEqual(["completion", "vision", "tools"])
    const tiny = await client.models.retrieve(TINY) as unknown as { capabilities: Array<string> }
    expect(tiny.capabilities).toContain("completion")
    expect(tiny.capabilities).not.toContain("vision")
    // a spec with a slash is one path segment too many for a plain route: still one model
    const cloud = await fetch(`${serve.url}/v1/models/${CLOUD_OPENAI}`)
    expect(cloud.status).toBe(200)
    // what the provider does not say is left out, not given as an empty list
    expect(await cloud.json()).toEqual({ id: CLOUD_OPENAI, object: "model", created: 0, owned_by: "vision" })
    const missing = await failure(client.models.retrieve("ghost@ollama"))
    expect(missing.status).toBe(404)
  })
})

describe("the library", () => {
  const run = (spec: string, data: string) =>
    Effect.runPromise(Effect.either(Stream.runDrain(serve.llm.generate(spec, { messages: [{ role: "user", content: "x", images: [{ mediaType: "image/png", data }] }] }))))

  it("an image over the size limit is an InvalidRequest naming it, before anything is sent", async () => {
    const before = ollamaFake.requests.length
    const big = Buffer.alloc(IMAGE_LIMITS.bytes + 3, 1).toString("base64")
    const result = await run(VISION, big)
    expect(result._tag).toBe("Left")
    const error = (result as { left: { _tag: string; field: string; value: string } }).left
    expect(error._tag).toBe("InvalidRequest")
    expect(error.field).toBe("messages.0.images.0")
    expect(error.value).toContain(`${IMAGE_LIMITS.bytes + 3} bytes`)
    expect(ollamaFake.requests.length).toBe(before)
  })

  it("a GGUF model fails with UnsupportedOperation naming a backend that can", async () => {
    const result = await run(TINY, b64(png(1)))
    const error = (result as { left: { _tag: string; reason: string; hint: string } }).left
    expect(error._tag).toBe("UnsupportedOperation")
    expect(error.reason).toContain(NO_VISION)
    expect(error.hint).toMatch(/ollama/i)
  })
})

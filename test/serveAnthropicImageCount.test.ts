/**
 * `POST /v1/messages/count_tokens` with image blocks, through the real `@anthropic-ai/sdk`: on an
 * Ollama model that can see, each image adds Anthropic's documented cost (width × height / 750
 * after scaling to a 1568 px long edge and ~1,600 tokens), read from the image's own header, and
 * the probe that counts the text carries no image; an Ollama model whose capabilities lack vision
 * and a GGUF model refuse the count as `messages.create` refuses the request (400
 * invalid_request_error, the same words, no CLI command); an image whose size cannot be read is
 * a 400 naming its field.
 */
import Anthropic from "@anthropic-ai/sdk"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { anthropicImageTokens } from "../src/domain/ImageSize.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { gifImage, jpegImage, pngImage, webpImage } from "./fixtures/images.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"

let dir: string
let fake: FakeOllama
let serve: ServeHarness
let client: Anthropic

const VISION = "llava@ollama"
const BLIND = "blind@ollama"
const TINY = "tiny.gguf@gguf"

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-anthropic-image-count-"))
  fake = await startFakeOllama({
    models: [fakeModel("llava", { capabilities: ["completion", "vision"] }), fakeModel("blind", { capabilities: ["completion", "tools"] })]
  })
  serve = await startServe({ dir, ollamaUrl: fake.url })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 300 }))
  client = new Anthropic({ baseURL: serve.url, apiKey: "none", maxRetries: 0 })
})

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

const image = (bytes: Buffer, mediaType: "image/png" | "image/jpeg" | "image/gif" | "image/webp"): Anthropic.ImageBlockParam => ({
  type: "image",
  source: { type: "base64", media_type: mediaType, data: bytes.toString("base64") }
})
const text = "What is in these pictures?"
const withImages = (...images: Array<Anthropic.ImageBlockParam>): Array<Anthropic.MessageParam> => [
  { role: "user", content: [...images, { type: "text", text }] }
]
const failure = async (p: Promise<unknown>) => {
  const e = await p.then(() => undefined, (e: unknown) => e)
  expect(e).toBeInstanceOf(Anthropic.APIError)
  const error = e as InstanceType<typeof Anthropic.APIError>
  return { status: error.status, type: (error.error as { error?: { type?: string } })?.error?.type, message: (error.error as { error?: { message?: string } })?.error?.message ?? "" }
}
const lastChat = () => [...fake.requests].reverse().find((r) => r.path === "/api/chat")?.body as { messages: Array<{ images?: Array<string> }> }

describe("count_tokens with images", () => {
  it("an Ollama vision model: each image adds its documented cost, read from its header, whatever the format", async () => {
    const plain = await client.messages.countTokens({ model: VISION, messages: withImages() })
    expect(plain.input_tokens).toBeGreaterThan(0)

    const small = await client.messages.countTokens({ model: VISION, messages: withImages(image(pngImage(300, 200), "image/png")) })
    expect(small.input_tokens - plain.input_tokens).toBe(80) // 300 × 200 / 750
    // the probe that counts the text carries no image: the count runs no vision encoder
    expect(lastChat().messages.some((m) => (m.images ?? []).length > 0)).toBe(false)

    const images = [
      image(jpegImage(4000, 3000, { exifBytes: 20_000 }), "image/jpeg"),
      image(gifImage(640, 480), "image/gif"),
      image(webpImage(3136, 100, "VP8L"), "image/webp"),
      image(webpImage(1000, 1000, "VP8X"), "image/webp")
    ]
    const several = await client.messages.countTokens({ model: VISION, messages: withImages(...images) })
    const expected = anthropicImageTokens(4000, 3000) + anthropicImageTokens(640, 480) + anthropicImageTokens(3136, 100) + 1334
    expect(several.input_tokens - plain.input_tokens).toBe(expected)
    // the large photo is scaled first: it costs ~1,600, not 4000 × 3000 / 750 = 16,000
    expect(expected).toBeLessThan(1600 + 410 + 105 + 1334)

    // a JPEG whose frame header comes after 260 KB of ICC-profile segments (past the head read
    // first), and a PNG whose base64 is wrapped in lines: read all the same
    const icc = Buffer.concat(Array.from({ length: 4 }, () => Buffer.concat([Buffer.from([0xff, 0xe2, 0xfd, 0xe8]), Buffer.alloc(0xfde8 - 2, 7)])))
    const late = Buffer.concat([Buffer.from([0xff, 0xd8]), icc, jpegImage(800, 600).subarray(2)])
    const wrapped = pngImage(30, 25).toString("base64").replace(/(.{8})/g, "$1\n")
    const more = await client.messages.countTokens({
      model: VISION,
      messages: [{
        role: "user",
        content: [
          { type: "image", source: { type: "base64", media_type: "image/jpeg", data: late.toString("base64") } },
          { type: "image", source: { type: "base64", media_type: "image/png", data: wrapped } },
          { type: "text", text }
        ]
      }]
    })
    expect(more.input_tokens - plain.input_tokens).toBe(640 + 1) // 800 × 600 / 750, 30 × 25 / 750
  })

  it("an image the messages route would pass but whose size cannot be read: 400 naming its field", async () => {
    const opaque = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])
    const e = await failure(client.messages.countTokens({ model: VISION, messages: withImages(image(pngImage(2, 2), "image/png"), image(opaque, "image/png")) }))
    expect(e.status).toBe(400)
    expect(e.type).toBe("invalid_request_error")
    expect(e.message).toContain("messages[0].content[1].source.data")
    expect(e.message).not.toContain("llmspell ")
  })

  it("an Ollama model whose capabilities lack vision: refused as messages.create refuses it, before any probe", async () => {
    const messages = withImages(image(pngImage(10, 10), "image/png"))
    const created = await failure(client.messages.create({ model: BLIND, max_tokens: 4, messages }))
    const chats = fake.requests.filter((r) => r.path === "/api/chat").length
    const counted = await failure(client.messages.countTokens({ model: BLIND, messages }))
    expect(counted).toEqual(created)
    expect(counted.status).toBe(400)
    expect(counted.type).toBe("invalid_request_error")
    expect(counted.message).toContain("vision")
    expect(counted.message).not.toContain("llmspell ")
    expect(fake.requests.filter((r) => r.path === "/api/chat").length).toBe(chats)
    // the same model counts a prompt without images
    expect((await client.messages.countTokens({ model: BLIND, messages: withImages() })).input_tokens).toBeGreaterThan(0)
  })

  it("a GGUF model: refused as messages.create refuses it (no vision model runs here), not counted as text", async () => {
    const messages = withImages(image(pngImage(10, 10), "image/png"))
    const created = await failure(client.messages.create({ model: TINY, max_tokens: 4, messages }))
    const counted = await failure(client.messages.countTokens({ model: TINY, messages }))
    expect(counted).toEqual(created)
    expect(counted.status).toBe(400)
    expect(counted.type).toBe("invalid_request_error")
    expect(counted.message).toContain("node-llama-cpp 3.x runs no vision model")
    expect(counted.message).not.toContain("llmspell ")
    expect((await client.messages.countTokens({ model: TINY, messages: withImages() })).input_tokens).toBeGreaterThan(0)
  })
})

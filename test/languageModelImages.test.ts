/**
 * @effect/ai prompts with image file parts: the LanguageModel adapter gives them to the request as
 * the user message's images (bytes, base64 text or a data: URL), so a vision model behind an
 * Ollama or cloud spec sees them; an http(s) URL becomes a `{ url }` image (fetched by LocalLLM only
 * when the ImageUrls setting allows it; test/imageUrls.test.ts), a non-image file no image.
 */
import * as Prompt from "@effect/ai/Prompt"
import { describe, expect, it } from "vitest"
import { toChatMessages } from "../src/layers/LanguageModelAdapter.js"

const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 5])
const B64 = Buffer.from(PNG).toString("base64")

describe("toChatMessages with image file parts", () => {
  it("bytes, base64, data: URLs and http(s) URLs become the user message's images, in order, beside its text", () => {
    const prompt = Prompt.make([{
      role: "user",
      content: [
        { type: "text", text: "what is it?" },
        { type: "file", mediaType: "image/png", data: PNG },
        { type: "file", mediaType: "image/png", data: B64 },
        { type: "file", mediaType: "image/jpeg", data: `data:image/jpeg;base64,${B64}` },
        { type: "file", mediaType: "image/png", data: new URL("https://example.com/a.png") },
        { type: "file", mediaType: "application/pdf", data: PNG }
      ]
    }])
    expect(toChatMessages(prompt)).toEqual([{
      role: "user",
      content: "what is it?",
      images: [
        { mediaType: "image/png", data: B64 },
        { mediaType: "image/png", data: B64 },
        { mediaType: "image/jpeg", data: B64 },
        { url: "https://example.com/a.png" }
      ]
    }])
  })

  it("a message without images has no images field", () => {
    expect(toChatMessages(Prompt.make("hello"))).toEqual([{ role: "user", content: "hello" }])
  })
})

/**
 * The Ollama backend refuses a request needing a capability the model lacks, where /api/show says
 * so: images for a model without "vision" before the chat is sent, and `embed` on a model without
 * "embedding" instead of the server's unclear failure. The show answer is asked once per model.
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { OllamaInstanceConfig } from "../src/domain/ConfigSchema.js"
import * as OllamaBackendLive from "../src/layers/ollama/OllamaBackendLive.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"

let fake: FakeOllama

beforeEach(async () => {
  fake = await startFakeOllama({
    models: [
      fakeModel("chatty", { capabilities: ["completion", "tools"] }),
      fakeModel("llava", { capabilities: ["completion", "vision"] }),
      fakeModel("embedder", { capabilities: ["embedding"] }),
      // an older server's show answer, without `capabilities`
      fakeModel("old", { capabilities: undefined as unknown as Array<string> })
    ],
    answer: () => "a cat"
  })
})

afterEach(async () => {
  await fake.close()
})

const config = (): OllamaInstanceConfig => ({
  type: "ollama",
  name: "ollama",
  baseUrl: fake.url,
  timeoutSeconds: 3600,
  options: {}
})

const backend = () => OllamaBackendLive.make(config())

const IMAGE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]).toString("base64")

const withImage = (text = "what is this?") => ({
  messages: [{ role: "user" as const, content: text, images: [{ mediaType: "image/png", data: IMAGE }] }]
})

const collect = <A, E>(stream: Stream.Stream<A, E>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const paths = (path: string) => fake.requests.filter((r) => r.path === path).length

describe("Ollama capabilities: images", () => {
  it.effect("an image for a model without vision is UnsupportedOperation naming vision, and no chat is sent", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      const error = yield* Effect.flip(collect(instance.generate("chatty", withImage())))
      expect(error._tag).toBe("UnsupportedOperation")
      const refused = error as { operation: string; reason: string; message: string; hint: string }
      expect(refused.operation).toBe("images")
      expect(refused.reason).toContain("chatty:latest")
      expect(refused.reason).toContain("\"vision\"")
      expect(refused.reason).toContain("completion, tools")
      expect(refused.hint).toMatch(/vision/)
      expect(refused.hint).toContain("`llmspell model info chatty:latest@ollama`")
      expect(refused.hint).not.toMatch(/GGUF/)
      expect(paths("/api/chat")).toBe(0)
    }))

  it.effect("an image for a vision model reaches the chat, and /api/show is asked once per model", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      for (let i = 0; i < 3; i++) {
        const events = yield* collect(instance.generate("llava", withImage(`image ${i}`)))
        expect(events.some((e) => e._tag === "Finish")).toBe(true)
      }
      expect(paths("/api/chat")).toBe(3)
      const sent = fake.requests.find((r) => r.path === "/api/chat")?.body as { messages: Array<{ images?: Array<string> }> }
      expect(sent.messages[0]?.images).toEqual([IMAGE])
      expect(paths("/api/show")).toBe(1)
      // a refusal is remembered too: the second asks no /api/show
      yield* Effect.flip(collect(instance.generate("chatty", withImage())))
      yield* Effect.flip(collect(instance.generate("chatty:latest", withImage())))
      expect(paths("/api/show")).toBe(2)
    }))

  it.effect("a request without images asks no /api/show", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      yield* collect(instance.generate("chatty", { messages: [{ role: "user", content: "hi" }] }))
      expect(paths("/api/show")).toBe(0)
      expect(paths("/api/chat")).toBe(1)
    }))

  it.effect("capabilities unknown (an older server) or show failing: the image is sent, the server decides", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      yield* collect(instance.generate("old", withImage()))
      expect(paths("/api/chat")).toBe(1)
      fake.setFault("/api/show", { kind: "status", status: 500, message: "busy", times: 1 })
      yield* collect(instance.generate("chatty", withImage()))
      expect(paths("/api/chat")).toBe(2)
      // the failed show was not remembered: the next request asks again and is refused
      const error = yield* Effect.flip(collect(instance.generate("chatty", withImage())))
      expect(error._tag).toBe("UnsupportedOperation")
      expect(paths("/api/chat")).toBe(2)
    }))

  it.effect("`model info` fills the cache: an image request after it asks no /api/show", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      const info = yield* instance.info("chatty")
      expect(info.capabilities).toEqual(["completion", "tools"])
      const shows = paths("/api/show")
      yield* Effect.flip(collect(instance.generate("chatty", withImage())))
      expect(paths("/api/show")).toBe(shows)
    }))

  it.effect("after a remove the capabilities are asked again", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      yield* Effect.flip(collect(instance.generate("chatty", withImage())))
      yield* instance.remove("chatty")
      // the name comes back (a re-created model) with vision
      fake.state.models.push(fakeModel("chatty", { capabilities: ["completion", "vision"] }))
      yield* collect(instance.generate("chatty", withImage()))
      expect(paths("/api/chat")).toBe(1)
    }))
})

describe("Ollama capabilities: embed", () => {
  // what a server answers when the model cannot embed (the llama runner without embeddings)
  const refuseEmbed = () => fake.setFault("/api/embed", { kind: "status", status: 501, message: "This server does not support embeddings." })

  it.effect("the server's failure on a model without embedding is UnsupportedOperation naming it", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      refuseEmbed()
      const error = yield* Effect.flip(instance.embed("chatty", ["hello"]))
      expect(error._tag).toBe("UnsupportedOperation")
      const refused = error as { operation: string; reason: string }
      expect(refused.operation).toBe("embed")
      expect(refused.reason).toContain("\"embedding\"")
      expect(refused.reason).toContain("chatty:latest")
    }))

  it.effect("a failure that is not the server's refusal (a proxy's non-JSON page) stays what it is", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      yield* instance.info("chatty")
      fake.setFault("/api/embed", { kind: "textError", body: "<html>bad gateway</html>" })
      const error = yield* Effect.flip(instance.embed("chatty", ["hello"]))
      expect(error._tag).toBe("BackendError")
      expect(error.message).toContain("non-JSON")
    }))

  it.effect("the same failure on an embedding model stays the server's error", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      refuseEmbed()
      const error = yield* Effect.flip(instance.embed("embedder", ["hello"]))
      expect(error._tag).toBe("BackendError")
      expect(error.message).toContain("does not support embeddings")
    }))

  it.effect("a chat model the server does embed with is not refused, and no /api/show is asked", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      const embeddings = yield* instance.embed("chatty", ["hello", "world"])
      expect(embeddings.vectors).toHaveLength(2)
      expect(paths("/api/show")).toBe(0)
    }))
})

describe("Ollama capabilities: listing", () => {
  it.effect("a listing's shows fill the cache: a request after it asks no /api/show", () =>
    Effect.gen(function*() {
      const instance = yield* backend()
      const listed = yield* instance.list
      const byName = new Map(listed.map((m) => [m.name, m.capabilities]))
      expect(byName.get("chatty:latest")).toEqual(["completion", "tools"])
      // an older server's show, without capabilities: unknown, left out rather than empty
      expect(byName.has("old:latest")).toBe(true)
      expect(byName.get("old:latest")).toBeUndefined()
      const shows = paths("/api/show")
      yield* Effect.flip(collect(instance.generate("chatty", withImage())))
      expect(paths("/api/show")).toBe(shows)
      expect(paths("/api/chat")).toBe(0)
    }))
})

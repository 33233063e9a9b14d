/**
 * An Ollama model as an `@effect/ai` LanguageModel through the backend-neutral adapter
 * (`layers/LanguageModelAdapter.ts`): the real `ollama` client against the fake server, resolved
 * by spec through the ProviderRegistry like any library user would.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { resolveConfig } from "../src/domain/ConfigSchema.js"
import { languageModelLayer } from "../src/layers/LanguageModelAdapter.js"
import * as OllamaBackendLive from "../src/layers/ollama/OllamaBackendLive.js"
import { OllamaBackendFactory } from "../src/services/OllamaBackend.js"
import { ProviderRegistry } from "../src/services/ProviderRegistry.js"
import * as ProviderRegistryLive from "../src/layers/ProviderRegistryLive.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"

let fake: FakeOllama
let second: FakeOllama

beforeEach(async () => {
  fake = await startFakeOllama({ models: [fakeModel("present")], answer: () => "Hello from Ollama" })
  second = await startFakeOllama({ models: [fakeModel("big:7b")], answer: () => "Hello from the workstation" })
})

afterEach(async () => {
  await Promise.all([fake.close(), second.close()])
})

// The registry over a config with the default Ollama instance (OLLAMA_HOST) and a second one.
const registryLayer = () => {
  const config = resolveConfig({
    home: "/nonexistent-home",
    env: { OLLAMA_HOST: `${fake.host}:${fake.port}` },
    object: { value: { providers: { workstation: { provider_type: "ollama", base_url: second.url } } } }
  })
  if (Either.isLeft(config)) throw config.left
  return Layer.scoped(
    ProviderRegistry,
    Effect.flatMap(OllamaBackendFactory, (ollama) => ProviderRegistryLive.make(config.right, [ollama]))
  ).pipe(Layer.provide(OllamaBackendLive.layer))
}

const model = (spec: string) => languageModelLayer(spec, { maxTokens: 32 }).pipe(Layer.provide(registryLayer()))

describe("Ollama models as @effect/ai LanguageModels", () => {
  it.effect("generateText on local/present@ollama", () =>
    Effect.gen(function*() {
      const response = yield* LanguageModel.generateText({
        prompt: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }]
      })
      expect(response.text).toBe("Hello from Ollama")
      expect(response.finishReason).toBe("stop")
      expect(response.usage.outputTokens).toBe(3)
      expect(fake.requests.at(-1)).toMatchObject({
        path: "/api/chat",
        body: {
          model: "present",
          messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }],
          options: { num_predict: 32 }
        }
      })
    }).pipe(Effect.provide(model("local/present@ollama"))))

  it.effect("streamText on workstation/big:7b streams the deltas of the second server", () =>
    Effect.gen(function*() {
      const parts = Chunk.toReadonlyArray(yield* Stream.runCollect(LanguageModel.streamText({ prompt: "hi" })))
      expect(parts.map((p) => p.type)).toEqual([
        "text-start",
        "text-delta",
        "text-delta",
        "text-delta",
        "text-delta",
        "text-end",
        "finish"
      ])
      expect(parts.flatMap((p) => (p.type === "text-delta" ? [p.delta] : [])).join("")).toBe("Hello from the workstation")
      expect(second.requests.at(-1)?.path).toBe("/api/chat")
      expect(fake.requests).toEqual([])
    }).pipe(Effect.provide(model("workstation/big:7b"))))

  it.effect("a missing model is an AiError whose cause is ModelNotFound", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(LanguageModel.generateText({ prompt: "hi" }))
      expect((error as { cause?: { _tag?: string } }).cause?._tag).toBe("ModelNotFound")
    }).pipe(Effect.provide(model("ghost@ollama"))))
})

/**
 * Uses llmspell only through its package entry points, as an outside program would: if an export
 * is missing or the package's `exports` map is wrong, this fails.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import {
  createLocalLLM,
  exitCodeFor,
  languageModel,
  LocalLLM,
  ModelNotFound,
  ModelSpec,
  ProviderRegistry
} from "llmspell"
import { GgufBackendMock, LlmspellMock, ModelDownloaderMock, OllamaBackendMock } from "llmspell/testing"

describe("public entry points", () => {
  it("exports the services, errors, spec parser and testing helpers", () => {
    expect(typeof createLocalLLM).toBe("function")
    expect(exitCodeFor(new ModelNotFound({ model: "x", backend: "gguf" }))).toBe(3)
    expect(ModelSpec.format({ provider: "local", model: "llama3.1:8b", backend: "ollama" })).toBe("local/llama3.1:8b@ollama")
    expect(typeof OllamaBackendMock).toBe("function")
    expect(typeof GgufBackendMock).toBe("function")
    expect(typeof ModelDownloaderMock).toBe("function")
  })

  // A consumer's test: its program uses @effect/ai and LocalLLM; the mocks stand in for the backends.
  it.effect("a consumer program runs on llmspell/testing mocks", () => {
    const mock = LlmspellMock.make({ gguf: { models: [{ name: "qwen2.5:0.5b", tokens: ["Hello", " there"] }] } })
    const program = Effect.gen(function*() {
      const response = yield* LanguageModel.generateText({ prompt: "hi" })
      const models = yield* Effect.flatMap(LocalLLM, (llm) => llm.list())
      return { text: response.text, count: models.models.length }
    })
    return program.pipe(
      Effect.provide(Layer.provideMerge(languageModel("qwen2.5:0.5b"), mock.layer)),
      Effect.map((result) => {
        expect(result).toEqual({ text: "Hello there", count: 1 })
        expect(mock.calls.map((c) => c.operation)).toEqual(["generate", "list", "list"])
      })
    )
  })

  it.effect("ProviderRegistry is usable directly", () =>
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const route = yield* registry.route("local/llama3.2@ollama")
      expect(route.instance.name).toBe("ollama")
    }).pipe(Effect.provide(LlmspellMock.make().layer)))
})

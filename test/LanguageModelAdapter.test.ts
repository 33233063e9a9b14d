/**
 * The @effect/ai adapter over a fake Backend: prompt messages reach `generate` as chat messages,
 * deltas and the finish come back as Response parts with usage and finish reason, and our errors
 * become AiErrors. The real-model case is in GgufBackend.test.ts.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { ModelNotFound } from "../src/domain/Errors.js"
import type { Completion, GenerateEvent, GenerateRequest } from "../src/domain/Types.js"
import { fromBackend } from "../src/layers/LanguageModelAdapter.js"
import type { Backend } from "../src/services/Backend.js"

const completion = (text: string): Completion => ({
  model: "m",
  backend: "gguf",
  instance: "gguf",
  text,
  finishReason: "length",
  usage: { promptTokens: 5, completionTokens: 2, totalTokens: 7 },
  timings: { loadMs: 0, totalMs: 1 }
})

const fakeBackend = (seen: Array<GenerateRequest>): Backend => ({
  name: "gguf",
  type: "gguf",
  status: Effect.die("unused"),
  list: Effect.die("unused"),
  info: () => Effect.die("unused"),
  pull: () => Stream.die("unused"),
  remove: () => Effect.die("unused"),
  verify: () => Effect.die("unused"),
  embed: () => Effect.die("unused"),
  generate: (model, request) => {
    seen.push(request)
    if (model === "missing") return Stream.fail(new ModelNotFound({ model, backend: "gguf", pullSpec: model }))
    return Stream.make<Array<GenerateEvent>>(
      { _tag: "TextDelta", text: "he" },
      { _tag: "TextDelta", text: "llo" },
      { _tag: "Finish", completion: completion("hello") }
    )
  }
})

describe("LanguageModelAdapter", () => {
  it.effect("generateText returns the text, finish reason and usage", () =>
    Effect.gen(function*() {
      const seen: Array<GenerateRequest> = []
      const lm = yield* fromBackend(fakeBackend(seen), "m", { maxTokens: 4, seed: 1 })
      const response = yield* lm.generateText({
        prompt: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }]
      })
      expect(response.text).toBe("hello")
      expect(response.finishReason).toBe("length")
      expect(response.usage.inputTokens).toBe(5)
      expect(response.usage.outputTokens).toBe(2)
      expect(seen[0]).toEqual({
        maxTokens: 4,
        seed: 1,
        messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }]
      })
    }))

  it.effect("streamText streams text-start, deltas, text-end and finish", () =>
    Effect.gen(function*() {
      const lm = yield* fromBackend(fakeBackend([]), "m")
      const parts = Chunk.toReadonlyArray(yield* Stream.runCollect(lm.streamText({ prompt: "hi" })))
      expect(parts.map((p) => p.type)).toEqual(["text-start", "text-delta", "text-delta", "text-end", "finish"])
      const finish = parts.at(-1)!
      expect(finish.type === "finish" && finish.usage.totalTokens).toBe(7)
    }))

  it.effect("errors become AiError with the llmspell error as cause", () =>
    Effect.gen(function*() {
      const lm = yield* fromBackend(fakeBackend([]), "missing")
      const error = yield* Effect.flip(lm.generateText({ prompt: "hi" }))
      expect(error._tag).toBe("UnknownError")
      expect(error.message).toContain("not found")
      expect((error as { cause?: unknown }).cause).toBeInstanceOf(ModelNotFound)
    }))

  it.effect("is usable as the LanguageModel service", () =>
    LanguageModel.generateText({ prompt: "hi" }).pipe(
      Effect.map((r) => expect(r.text).toBe("hello")),
      Effect.provideServiceEffect(LanguageModel.LanguageModel, fromBackend(fakeBackend([]), "m"))
    ))
})

import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { promptRequest, type ResponseFormat } from "../src/domain/Types.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { LlmspellMock } from "../src/testing.js"

// LocalLLM.run is where a structured answer is checked, so an Effect program gets the same
// `object` / SchemaViolation as the CLI's --schema and the Promise facade.
const runWith = (tokens: ReadonlyArray<string>, responseFormat: ResponseFormat | undefined) =>
  Effect.flatMap(LocalLLM, (llm) => llm.run("tiny", promptRequest("answer", { responseFormat }))).pipe(
    Effect.provide(LlmspellMock.make({ gguf: { models: [{ name: "tiny", tokens }] } }).layer)
  )

const schema = { type: "object", properties: { n: { type: "integer" } }, required: ["n"] }

describe("LocalLLM.run with a response format", () => {
  it.effect("a schema-following answer comes back parsed as `object`", () =>
    Effect.map(runWith(['{"n":', " 3}"], { schema }), (result) => {
      expect(result.object).toEqual({ n: 3 })
      expect(result.text).toBe('{"n": 3}')
    }))

  it.effect("an answer that breaks the schema is a SchemaViolation, not a completion", () =>
    Effect.map(Effect.flip(runWith(['{"n":', ' "three"}'], { schema })), (error) => {
      expect(error._tag).toBe("SchemaViolation")
    }))

  it.effect("an answer the token limit cut is an IncompleteAnswer (not a SchemaViolation); generate ends normally, marked", () =>
    Effect.gen(function*() {
      const layer = LlmspellMock.make({ gguf: { models: [{ name: "tiny", tokens: ['{"n":', " 3}"] }] } }).layer
      const request = promptRequest("answer", { responseFormat: { schema }, maxTokens: 1 })
      const error = yield* Effect.flip(Effect.flatMap(LocalLLM, (llm) => llm.run("tiny", request)).pipe(Effect.provide(layer)))
      expect(error).toMatchObject({ _tag: "IncompleteAnswer", part: "answer", maxTokens: 1, answer: '{"n":' })
      expect(error.message).toContain("cut off by the token limit")
      const last = yield* Effect.flatMap(LocalLLM, (llm) => Stream.runLast(llm.generate("tiny", request))).pipe(Effect.provide(layer))
      expect(Option.getOrThrow(last)).toMatchObject({ _tag: "Finish", completion: { finishReason: "length", incomplete: "answer" } })
    }))

  it.effect("a forced tool call the token limit left unmade: run fails with IncompleteAnswer part tool-call", () =>
    Effect.gen(function*() {
      const layer = LlmspellMock.make({ gguf: { models: [{ name: "tiny", tokens: ["I", " will"] }] } }).layer
      const tools = [{ name: "f", parameters: { type: "object" } }]
      const request = promptRequest("answer", { tools, toolChoice: "required", maxTokens: 2 })
      const error = yield* Effect.flip(Effect.flatMap(LocalLLM, (llm) => llm.run("tiny", request)).pipe(Effect.provide(layer)))
      expect(error).toMatchObject({ _tag: "IncompleteAnswer", part: "tool-call" })
    }))

  it.effect("free text has no `object`", () =>
    Effect.map(runWith(["hello"], undefined), (result) => expect(result.object).toBeUndefined()))
})

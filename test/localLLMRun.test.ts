import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
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

  it.effect("free text has no `object`", () =>
    Effect.map(runWith(["hello"], undefined), (result) => expect(result.object).toBeUndefined()))
})

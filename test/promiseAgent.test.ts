/**
 * The Promise facade's agent options over llmspell/testing's scriptable backend: tools and
 * toolChoice reach the request and tool calls come back in the completion, a `{ schema }` format
 * returns the checked `object` (a non-conforming answer rejects with SchemaViolation), reasoning,
 * and `embed`.
 */
import { describe, expect, it } from "vitest"
import { createLocalLLM, LlmspellFailure } from "../src/promise.js"
import { deterministicEmbedding, LlmspellMock } from "../src/testing.js"

const weather = {
  name: "get_weather",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}

describe("Promise facade: agent options", () => {
  it("tools and toolChoice pass through; the call comes back in the completion", async () => {
    const mock = LlmspellMock.make({
      gguf: { models: [{ name: "agent", turns: [{ reasoning: ["Hm."], toolCalls: [{ id: "c1", name: "get_weather", params: { city: "Oslo" } }] }] }] }
    })
    await using llm = createLocalLLM({ layer: mock.layer })
    const completion = await llm.run("agent", "weather?", { tools: [weather], toolChoice: "required", reasoning: true })
    expect(completion).toMatchObject({
      finishReason: "tool-calls",
      reasoning: "Hm.",
      toolCalls: [{ id: "c1", name: "get_weather", params: { city: "Oslo" } }]
    })
    expect(mock.calls.at(-1)!.request).toMatchObject({ tools: [weather], toolChoice: "required", reasoning: true })
  })

  it("a request naming a tool it does not offer is InvalidRequest, before the backend", async () => {
    const mock = LlmspellMock.make({ gguf: { models: ["agent"] } })
    await using llm = createLocalLLM({ layer: mock.layer })
    const error = await llm.run("agent", "x", { tools: [weather], toolChoice: { tool: "nope" } }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LlmspellFailure)
    expect((error as LlmspellFailure)._tag).toBe("InvalidRequest")
    expect((error as LlmspellFailure).message).toContain("not among the tools")
    expect(mock.calls.filter((c) => c.operation === "generate")).toEqual([])
  })

  it("responseFormat { schema } returns the checked object; an answer outside it rejects with SchemaViolation", async () => {
    const schema = { type: "object", properties: { n: { type: "integer", maximum: 10 } }, required: ["n"] }
    const good = LlmspellMock.make({ gguf: { models: [{ name: "m", tokens: ['{"n":', " 7}"] }] } })
    await using llm = createLocalLLM({ layer: good.layer })
    const completion = await llm.run("m", "count", { responseFormat: { schema } })
    expect(completion.object).toEqual({ n: 7 })
    expect(good.calls.at(-1)!.request!.responseFormat).toEqual({ schema })

    const bad = LlmspellMock.make({ gguf: { models: [{ name: "m", tokens: ['{"n": 70}'] }] } })
    await using llm2 = createLocalLLM({ layer: bad.layer })
    const error = await llm2.run("m", "count", { responseFormat: { schema } }).catch((e: unknown) => e)
    expect((error as LlmspellFailure)._tag).toBe("SchemaViolation")
    expect((error as LlmspellFailure).message).toContain("/n: 70 is above the maximum 10")
  })

  it("embed: one string or many; deterministic vectors", async () => {
    const mock = LlmspellMock.make({ ollama: { models: [{ name: "e", embeddingDimensions: 4 }] } })
    await using llm = createLocalLLM({ layer: mock.layer })
    const one = await llm.embed("e@ollama", "hi")
    const many = await llm.embed("e@ollama", ["x", "hi"])
    expect(one).toMatchObject({ dimensions: 4, vectors: [deterministicEmbedding("hi", 4)] })
    expect(many.vectors[1]).toEqual(one.vectors[0])
  })
})

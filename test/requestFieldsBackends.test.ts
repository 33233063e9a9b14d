/**
 * The request's sampling fields on each backend's wire (pure mappings): what reaches Ollama's
 * `options`, an OpenAI-wire body and an Anthropic body, and what each refuses by name because its
 * API has no such setting — so no field of a GenerateRequest is silently dropped by a backend.
 */
import { describe, expect, it } from "vitest"
import type { CloudInstanceConfig } from "../src/domain/ConfigSchema.js"
import type { GenerateRequest } from "../src/domain/Types.js"
import * as Anthropic from "../src/layers/cloud/cloudAnthropic.js"
import * as OpenAi from "../src/layers/cloud/cloudOpenAi.js"
import { toOllamaOptions, unsupportedField } from "../src/layers/ollama/ollamaMapping.js"

const messages = [{ role: "user" as const, content: "hi" }]
const tools = [{ name: "f", parameters: { type: "object" } }]
const penalties: GenerateRequest = { messages, minP: 0.1, frequencyPenalty: 0.5, presencePenalty: 0.25, repeatPenalty: 1.2, repeatLastN: 32 }
const cloud = (type: CloudInstanceConfig["type"]): CloudInstanceConfig => ({ type, name: type, options: {} })

describe("Ollama", () => {
  it("takes every sampler and penalty as an option; refuses logit bias by name (one-call-only is checked on the answer)", () => {
    expect(toOllamaOptions({ ...penalties, topK: 5 })).toEqual({
      min_p: 0.1,
      frequency_penalty: 0.5,
      presence_penalty: 0.25,
      repeat_penalty: 1.2,
      repeat_last_n: 32,
      top_k: 5
    })
    expect(unsupportedField(penalties)).toBeUndefined()
    expect(unsupportedField({ messages, logitBias: { "1": 5 } })).toMatchObject({ field: "logitBias" })
    expect(unsupportedField({ messages, tools, parallelToolCalls: false })).toBeUndefined()
    expect(unsupportedField({ messages, tools, parallelToolCalls: true })).toBeUndefined()
    expect(unsupportedField({ messages, parallelToolCalls: false })).toBeUndefined()
  })
})

describe("OpenAI wire", () => {
  it("sends OpenAI's own penalties, logit_bias and parallel_tool_calls everywhere", () => {
    const body = OpenAi.toChatCompletionRequest(cloud("openai"), "m", {
      messages,
      frequencyPenalty: 0.5,
      presencePenalty: 0.25,
      logitBias: { "7": -100 },
      tools,
      parallelToolCalls: false
    }, false)
    expect(body).toMatchObject({ frequency_penalty: 0.5, presence_penalty: 0.25, logit_bias: { "7": -100 }, parallel_tool_calls: false })
    expect(OpenAi.unsupportedField(cloud("openai"), { messages, frequencyPenalty: 0.5 })).toBeUndefined()
  })

  it("sends llama.cpp's samplers to OpenAI-compatible servers and OpenRouter; OpenAI itself refuses them by name", () => {
    for (const type of ["openai_compatible", "openrouter"] as const) {
      expect(OpenAi.unsupportedField(cloud(type), { ...penalties, topK: 5 })).toBeUndefined()
      expect(OpenAi.toChatCompletionRequest(cloud(type), "m", { ...penalties, topK: 5 }, false)).toMatchObject({
        top_k: 5,
        min_p: 0.1,
        repeat_penalty: 1.2,
        repetition_penalty: 1.2,
        repeat_last_n: 32
      })
    }
    for (const field of ["topK", "minP", "repeatPenalty", "repeatLastN"] as const) {
      expect(OpenAi.unsupportedField(cloud("openai"), { messages, [field]: 1 }), field).toMatchObject({ field })
      expect(OpenAi.toChatCompletionRequest(cloud("openai"), "m", { messages, [field]: 1 }, false)).not.toHaveProperty("top_k")
    }
  })
})

describe("Anthropic", () => {
  it("refuses the penalties, min-p and logit bias by name; one-call-only is disable_parallel_tool_use", () => {
    for (const field of ["frequencyPenalty", "presencePenalty", "repeatPenalty", "repeatLastN", "minP"] as const) {
      expect(Anthropic.unsupportedField({ messages, [field]: 1 }), field).toMatchObject({ field })
    }
    expect(Anthropic.unsupportedField({ messages, logitBias: { "1": 1 } })).toMatchObject({ field: "logitBias" })
    expect(Anthropic.unsupportedField({ messages, topK: 5 })).toBeUndefined()
    expect(Anthropic.toMessagesRequest("m", { messages, tools, parallelToolCalls: false })).toMatchObject({
      tool_choice: { type: "auto", disable_parallel_tool_use: true }
    })
  })
})

/**
 * The Anthropic wire Schemas (src/domain/AnthropicWire.ts) against what `@anthropic-ai/sdk` sends
 * and expects, and the cloud client's mapping over them (src/layers/cloud/cloudAnthropic.ts):
 * requests typed by the SDK decode, unknown block/tool/event types decode as `other` members,
 * a malformed known block is refused, and streamed usage (cache reads and writes) and stop
 * sequences reach our Completion.
 */
import type Anthropic from "@anthropic-ai/sdk"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { describe, expect, it } from "vitest"
import * as Wire from "../src/domain/AnthropicWire.js"
import * as Cloud from "../src/layers/cloud/cloudAnthropic.js"

const decodeRequest = Schema.decodeUnknownEither(Wire.MessagesRequest)

describe("AnthropicWire requests", () => {
  it("decodes a request as the SDK types it: every block kind, system blocks, tools, tool_choice, thinking, metadata, cache_control", () => {
    const body: Anthropic.MessageCreateParamsNonStreaming = {
      model: "claude-sonnet-4-6",
      max_tokens: 1024,
      system: [{ type: "text", text: "You are terse.", cache_control: { type: "ephemeral" } }],
      messages: [
        { role: "user", content: "What is the weather in Paris?" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "The user wants weather.", signature: "sig-1" },
            { type: "redacted_thinking", data: "opaque" },
            { type: "text", text: "Let me look." },
            { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "Paris" } }
          ]
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_01", content: [{ type: "text", text: "21 °C" }], is_error: false },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
            { type: "document", source: { type: "text", media_type: "text/plain", data: "notes" }, title: "Notes" },
            { type: "text", text: "Thanks", cache_control: { type: "ephemeral", ttl: "1h" } }
          ]
        }
      ],
      tools: [{
        name: "get_weather",
        description: "The weather in a city",
        input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        cache_control: { type: "ephemeral" }
      }],
      tool_choice: { type: "tool", name: "get_weather", disable_parallel_tool_use: true },
      thinking: { type: "enabled", budget_tokens: 2048 },
      stop_sequences: ["\n\nHuman:"],
      metadata: { user_id: "u-1" }
    }
    const decoded = decodeRequest(body)
    expect(Either.isRight(decoded)).toBe(true)
    const r = Either.getOrThrow(decoded)
    expect(r.tool_choice).toEqual({ type: "tool", name: "get_weather", disable_parallel_tool_use: true })
    expect(r.thinking).toEqual({ type: "enabled", budget_tokens: 2048 })
    const blocks = r.messages[2]!.content as ReadonlyArray<Wire.ContentBlockParam>
    expect(blocks.map((b) => b.type)).toEqual(["tool_result", "image", "document", "text"])
  })

  it("takes null for optional fields, and the older sampling fields", () => {
    const r = decodeRequest({
      model: "m",
      max_tokens: 5,
      messages: [{ role: "user", content: "hi" }],
      temperature: 0.2,
      top_p: 0.9,
      top_k: 40,
      tools: null,
      tool_choice: null,
      system: null,
      metadata: null,
      stop_sequences: null
    })
    expect(Either.isRight(r)).toBe(true)
  })

  it("decodes block and tool types it does not describe as `other` / `server_tool`, so callers refuse them by name", () => {
    const r = Either.getOrThrow(decodeRequest({
      model: "m",
      max_tokens: 5,
      messages: [{ role: "user", content: [{ type: "web_search_tool_result", tool_use_id: "x", content: [] }] }],
      tools: [{ type: "web_search_20250305", name: "web_search", max_uses: 3 }]
    }))
    expect(r.messages[0]!.content).toEqual([{ type: "other", actualType: "web_search_tool_result" }])
    expect(r.tools).toEqual([{ type: "server_tool", toolType: "web_search_20250305", name: "web_search" }])
  })

  it("refuses a known block without its fields, and max_tokens below 1", () => {
    const noText = decodeRequest({ model: "m", max_tokens: 5, messages: [{ role: "user", content: [{ type: "text" }] }] })
    expect(Either.isLeft(noText)).toBe(true)
    const zero = decodeRequest({ model: "m", max_tokens: 0, messages: [] })
    expect(Either.isLeft(zero)).toBe(true)
  })

  it("the cloud client's request body is a valid messages request", () => {
    const body = Cloud.toMessagesRequest("claude-x", {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hi" },
        { role: "assistant", content: "", toolCalls: [{ id: "toolu_1", name: "f", params: { a: 1 } }] },
        { role: "tool", content: "ok", toolCallId: "toolu_1" }
      ],
      tools: [{ name: "f", parameters: { type: "object" } }],
      toolChoice: "required",
      stop: ["END"]
    })
    const decoded = Either.getOrThrow(decodeRequest(body))
    expect(decoded.system).toBe("Be brief.")
    expect(decoded.tool_choice).toEqual({ type: "any" })
    expect(decoded.messages.map((m) => m.role)).toEqual(["user", "assistant", "user"])
  })
})

describe("AnthropicWire events through the cloud client's fold", () => {
  const fold = (events: ReadonlyArray<unknown>) => {
    const acc = Cloud.emptyMessage()
    const out = events.map((e) => Cloud.foldEvent(acc, e))
    return { acc, out }
  }

  it("usage with cache reads and writes: the whole prompt, its cached part; the stop sequence", () => {
    const { acc } = fold([
      {
        type: "message_start",
        message: {
          id: "msg_1",
          type: "message",
          role: "assistant",
          content: [],
          model: "claude-x",
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 12, output_tokens: 1, cache_read_input_tokens: 3000, cache_creation_input_tokens: 50 }
        }
      },
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hi" } },
      { type: "content_block_stop", index: 0 },
      { type: "message_delta", delta: { stop_reason: "stop_sequence", stop_sequence: "END" }, usage: { output_tokens: 7 } },
      { type: "message_stop" }
    ])
    expect(Cloud.usageOf(acc)).toEqual({ promptTokens: 3062, completionTokens: 7, totalTokens: 3069, cachedPromptTokens: 3000 })
    expect(acc.stopSequence).toBe("END")
    expect(Cloud.stopReasonOf(acc)).toBe("stop")
  })

  it("message_delta's cumulative input counts replace message_start's", () => {
    const { acc } = fold([
      { type: "message_start", message: { id: "m", type: "message", role: "assistant", content: [], model: "x", stop_reason: null, usage: { input_tokens: 0, output_tokens: 0 } } },
      { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 4, input_tokens: 20, cache_read_input_tokens: 100 } }
    ])
    expect(Cloud.usageOf(acc)).toEqual({ promptTokens: 120, completionTokens: 4, totalTokens: 124, cachedPromptTokens: 100 })
  })

  it("skips events and blocks of types added later, and events that do not decode", () => {
    const { acc, out } = fold([
      { type: "content_block_start", index: 0, content_block: { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: {} } },
      { type: "content_block_stop", index: 0 },
      { type: "some_future_event", payload: 1 },
      { type: "content_block_delta", index: 1 },
      { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_9", name: "f", input: {} } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "{\"a\":" } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "1}" } },
      { type: "content_block_stop", index: 1 }
    ])
    expect(out.filter((d) => d.call !== undefined).map((d) => d.call)).toEqual([{ id: "toolu_9", name: "f", params: { a: 1 } }])
    expect(acc.bad).toBeUndefined()
  })

  it("an in-band error event is reported with its type", () => {
    const { out } = fold([{ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }])
    expect(out[0]!.error).toEqual({ type: "overloaded_error", message: "Overloaded" })
  })
})

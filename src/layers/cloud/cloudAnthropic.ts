/**
 * Anthropic's messages API: our `GenerateRequest` → the `/v1/messages` body (system prompt apart,
 * tool results as `tool_result` blocks of a user turn, consecutive turns of one role merged, as
 * the API wants them alternating), and its SSE events → our `GenerateEvent`s (`text_delta`,
 * `thinking_delta`, `tool_use` blocks whose input streams as `input_json_delta` pieces, stop reason,
 * stop sequence and usage from `message_delta`). Structured output is tool forcing: one tool whose
 * input schema is the answer's schema, forced with `tool_choice`; its input is the answer. The
 * format itself is `domain/AnthropicWire.ts`, the one description llmspell serve's Anthropic API
 * uses too: bodies are typed by it and events decoded with it. Pure mapping, no I/O.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Wire from "../../domain/AnthropicWire.js"
import { inlineImages } from "../../domain/Images.js"
import type { ChatMessage, FinishReason, GenerateRequest, ToolCall, Usage } from "../../domain/Types.js"

/** The name of the tool that carries a structured answer. */
export const ANSWER_TOOL = "json_answer"

/** Default `max_tokens` (the API requires one). */
export const DEFAULT_MAX_TOKENS = 4096

/**
 * A request field Anthropic's messages API cannot honour (refused by name rather than dropped):
 * it has no repetition penalties, no min-p and no logit bias.
 */
export const unsupportedField = (request: GenerateRequest): { readonly field: string; readonly reason: string } | undefined => {
  const field = (["frequencyPenalty", "presencePenalty", "repeatPenalty", "repeatLastN", "minP"] as const).find((f) => request[f] !== undefined) ??
    (request.logitBias !== undefined && Object.keys(request.logitBias).length > 0 ? "logitBias" : undefined)
  return field === undefined ? undefined : { field, reason: "Anthropic's messages API has no such setting" }
}

/** The messages-API body for a request. */
export const toMessagesRequest = (model: string, request: GenerateRequest): typeof Wire.MessagesRequest.Encoded => {
  const system = request.messages.filter((m) => m.role === "system").map((m) => m.content).join("\n\n")
  const format = request.responseFormat
  const structured = format === "json" || typeof format === "object"
  const offerTools = !structured && request.tools !== undefined && request.tools.length > 0 && request.toolChoice !== "none"
  const thinking = request.reasoning === true
  const maxTokens = request.maxTokens ?? DEFAULT_MAX_TOKENS
  const toolChoice = (): Wire.ToolChoice => ({
    ...(typeof request.toolChoice === "object"
      ? { type: "tool", name: request.toolChoice.tool }
      : request.toolChoice === "required"
      ? { type: "any" as const }
      : { type: "auto" as const }),
    ...(request.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {})
  })
  return {
    model,
    max_tokens: thinking ? Math.max(maxTokens, 2048) : maxTokens,
    ...(system.length > 0 ? { system } : {}),
    messages: toMessages(request.messages),
    stream: true,
    ...(request.temperature !== undefined && !thinking ? { temperature: Math.min(request.temperature, 1) } : {}),
    ...(request.topP !== undefined && !thinking ? { top_p: request.topP } : {}),
    ...(request.topK !== undefined && request.topK > 0 && !thinking ? { top_k: request.topK } : {}),
    ...(request.stop !== undefined && request.stop.length > 0 ? { stop_sequences: request.stop } : {}),
    ...(thinking ? { thinking: { type: "enabled", budget_tokens: 1024 } } : {}),
    ...(structured
      ? {
        tools: [{
          name: ANSWER_TOOL,
          description: "Give the answer as this tool's input.",
          input_schema: typeof format === "object" ? format.schema : { type: "object" }
        }],
        tool_choice: { type: "tool", name: ANSWER_TOOL }
      }
      : offerTools
      ? {
        tools: request.tools!.map((t) => ({
          name: t.name,
          ...(t.description !== undefined ? { description: t.description } : {}),
          input_schema: t.parameters
        })),
        tool_choice: toolChoice()
      }
      : {})
  }
}

type Turn = { role: "user" | "assistant"; content: Array<Wire.ContentBlockParam> }

const toMessages = (messages: ReadonlyArray<ChatMessage>): Array<Turn> => {
  const out: Array<Turn> = []
  const push = (role: "user" | "assistant", blocks: Array<Wire.ContentBlockParam>) => {
    if (blocks.length === 0) return
    const last = out[out.length - 1]
    if (last !== undefined && last.role === role) last.content.push(...blocks)
    else out.push({ role, content: blocks })
  }
  for (const m of messages) {
    switch (m.role) {
      case "system":
        break
      case "user":
        push("user", [
          ...inlineImages(m.images).map((i) => ({
            type: "image" as const,
            source: { type: "base64" as const, media_type: i.mediaType, data: i.data }
          })),
          ...(m.content.length > 0 ? [{ type: "text" as const, text: m.content }] : [])
        ] as Array<Wire.ContentBlockParam>)
        break
      case "assistant":
        push("assistant", [
          ...(m.content.length > 0 ? [{ type: "text" as const, text: m.content }] : []),
          ...(m.toolCalls ?? []).map((c) => ({ type: "tool_use" as const, id: c.id, name: c.name, input: c.params ?? {} }))
        ])
        break
      case "tool":
        push("user", [{ type: "tool_result", tool_use_id: m.toolCallId!, content: m.content }])
        break
    }
  }
  return out
}

/** What one event adds. */
export interface EventDelta {
  readonly text?: string
  readonly reasoning?: string
  readonly call?: ToolCall
  /** The provider reported an error inside the stream (`event: error`). */
  readonly error?: { readonly type: string; readonly message: string }
  readonly stop?: boolean
}

/** The state of one streamed answer. */
export interface MessageAccumulator {
  text: string
  reasoning: string
  readonly blocks: Map<number, { type: string; id: string; name: string; json: string }>
  readonly calls: Array<ToolCall>
  stopReason: string | undefined
  /** The stop sequence that ended the answer, when one did. */
  stopSequence: string | undefined
  /** Prompt tokens evaluated for this request (Anthropic's `input_tokens`: the cached part excluded). */
  inputTokens: number
  /** Prompt tokens read from the provider's prompt cache. */
  cacheReadTokens: number
  /** Prompt tokens written to the provider's prompt cache. */
  cacheCreationTokens: number
  outputTokens: number
  stopped: boolean
  /** Set when a tool_use block's input is not JSON. */
  bad: string | undefined
}

/** A fresh accumulator. */
export const emptyMessage = (): MessageAccumulator => ({
  text: "",
  reasoning: "",
  blocks: new Map(),
  calls: [],
  stopReason: undefined,
  stopSequence: undefined,
  inputTokens: 0,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  outputTokens: 0,
  stopped: false,
  bad: undefined
})

const decodeEvent = Schema.decodeUnknownEither(Wire.StreamEvent)

/** The cumulative counts of `message_start`'s usage or `message_delta`'s (absent or null: unchanged). */
const foldUsage = (acc: MessageAccumulator, usage: {
  readonly input_tokens?: number | null | undefined
  readonly output_tokens?: number | null | undefined
  readonly cache_read_input_tokens?: number | null | undefined
  readonly cache_creation_input_tokens?: number | null | undefined
}) => {
  if (usage.input_tokens != null) acc.inputTokens = usage.input_tokens
  if (usage.output_tokens != null) acc.outputTokens = usage.output_tokens
  if (usage.cache_read_input_tokens != null) acc.cacheReadTokens = usage.cache_read_input_tokens
  if (usage.cache_creation_input_tokens != null) acc.cacheCreationTokens = usage.cache_creation_input_tokens
}

/**
 * Folds one SSE event's JSON data into the accumulator; returns what to emit. An event that does
 * not decode (a shape this API version does not have) or of a type added later is skipped, as
 * Anthropic asks clients to.
 */
export const foldEvent = (acc: MessageAccumulator, data: unknown): EventDelta => {
  const decoded = decodeEvent(data)
  if (Either.isLeft(decoded)) return {}
  const e = decoded.right
  switch (e.type) {
    case "message_start":
      foldUsage(acc, e.message.usage)
      return {}
    case "content_block_start": {
      const block = e.content_block
      acc.blocks.set(e.index, {
        type: block.type,
        id: block.type === "tool_use" ? block.id : "",
        name: block.type === "tool_use" ? block.name : "",
        json: ""
      })
      if (block.type === "text" && block.text.length > 0) {
        acc.text += block.text
        return { text: block.text }
      }
      return {}
    }
    case "content_block_delta": {
      const delta = e.delta
      const block = acc.blocks.get(e.index)
      switch (delta.type) {
        case "text_delta":
          acc.text += delta.text
          return { text: delta.text }
        case "thinking_delta":
          acc.reasoning += delta.thinking
          return { reasoning: delta.thinking }
        case "input_json_delta":
          if (block !== undefined) block.json += delta.partial_json
          return {}
        default:
          return {}
      }
    }
    case "content_block_stop": {
      const block = acc.blocks.get(e.index)
      if (block === undefined || block.type !== "tool_use") return {}
      let input: unknown
      try {
        input = block.json.trim().length === 0 ? {} : JSON.parse(block.json)
      } catch {
        acc.bad = `the input of its call to ${JSON.stringify(block.name)} is not JSON`
        return {}
      }
      if (block.name === ANSWER_TOOL) {
        // The forced answer tool: its input is the structured answer, i.e. the text.
        const text = JSON.stringify(input)
        acc.text += text
        return { text }
      }
      const call = { id: block.id, name: block.name, params: input }
      acc.calls.push(call)
      return { call }
    }
    case "message_delta":
      if (e.delta.stop_reason !== null) acc.stopReason = e.delta.stop_reason
      if (e.delta.stop_sequence != null) acc.stopSequence = e.delta.stop_sequence
      foldUsage(acc, e.usage)
      return {}
    case "message_stop":
      acc.stopped = true
      return { stop: true }
    case "error":
      return { error: { type: e.error.type, message: e.error.message } }
    default:
      return {}
  }
}

/** The stop reason of the wire → ours (a forced answer tool is a plain stop). */
export const stopReasonOf = (acc: MessageAccumulator): FinishReason => {
  switch (acc.stopReason) {
    case "end_turn":
    case "stop_sequence":
      return "stop"
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "tool_use":
      return acc.calls.length > 0 ? "tool-calls" : "stop"
    default:
      return "unknown"
  }
}

/** Our usage: the whole prompt (evaluated + read from the cache + written to it), its cached part, the answer. */
export const usageOf = (acc: MessageAccumulator): Usage => {
  const promptTokens = acc.inputTokens + acc.cacheReadTokens + acc.cacheCreationTokens
  return {
    promptTokens,
    completionTokens: acc.outputTokens,
    totalTokens: promptTokens + acc.outputTokens,
    ...(acc.cacheReadTokens > 0 ? { cachedPromptTokens: acc.cacheReadTokens } : {})
  }
}

/**
 * Anthropic's messages API: our `GenerateRequest` → the `/v1/messages` body (system prompt apart,
 * tool results as `tool_result` blocks of a user turn, consecutive turns of one role merged, as
 * the API wants them alternating), and its SSE events → our `GenerateEvent`s (`text_delta`,
 * `thinking_delta`, `tool_use` blocks whose input streams as `input_json_delta` pieces, stop reason
 * and usage from `message_delta`). Structured output is tool forcing: one tool whose input schema
 * is the answer's schema, forced with `tool_choice`; its input is the answer. Pure mapping, no I/O.
 */
import { type ChatMessage, type FinishReason, type GenerateRequest, reportedCachedTokens, type ToolCall, type Usage } from "../../domain/Types.js"

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
export const toMessagesRequest = (model: string, request: GenerateRequest): Record<string, unknown> => {
  const system = request.messages.filter((m) => m.role === "system").map((m) => m.content).join("\n\n")
  const format = request.responseFormat
  const structured = format === "json" || typeof format === "object"
  const offerTools = !structured && request.tools !== undefined && request.tools.length > 0 && request.toolChoice !== "none"
  const thinking = request.reasoning === true
  const maxTokens = request.maxTokens ?? DEFAULT_MAX_TOKENS
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
        tool_choice: {
          ...(typeof request.toolChoice === "object"
            ? { type: "tool", name: request.toolChoice.tool }
            : request.toolChoice === "required"
            ? { type: "any" }
            : { type: "auto" }),
          ...(request.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {})
        }
      }
      : {})
  }
}

type Block = Record<string, unknown>

const toMessages = (messages: ReadonlyArray<ChatMessage>): Array<{ role: "user" | "assistant"; content: Array<Block> }> => {
  const out: Array<{ role: "user" | "assistant"; content: Array<Block> }> = []
  const push = (role: "user" | "assistant", blocks: Array<Block>) => {
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
        push("user", m.content.length > 0 ? [{ type: "text", text: m.content }] : [])
        break
      case "assistant":
        push("assistant", [
          ...(m.content.length > 0 ? [{ type: "text", text: m.content }] : []),
          ...(m.toolCalls ?? []).map((c) => ({ type: "tool_use", id: c.id, name: c.name, input: c.params ?? {} }))
        ])
        break
      case "tool":
        push("user", [{ type: "tool_result", tool_use_id: m.toolCallId, content: m.content }])
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
  /** Anthropic's `input_tokens`: the prompt tokens after the last cache breakpoint (neither read from nor written to the cache). */
  inputTokens: number
  /** `cache_read_input_tokens`: read from the prompt cache. */
  cacheReadTokens: number | undefined
  /** `cache_creation_input_tokens`: written to the prompt cache. */
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
  inputTokens: 0,
  cacheReadTokens: undefined,
  cacheCreationTokens: 0,
  outputTokens: 0,
  stopped: false,
  bad: undefined
})

/** The cache counts of a usage object (message_start's, or message_delta's cumulative one), when present. */
const foldCacheUsage = (acc: MessageAccumulator, usage: Record<string, unknown> | undefined | null) => {
  if (typeof usage !== "object" || usage === null) return
  const read = reportedCachedTokens(usage["cache_read_input_tokens"], Number.MAX_SAFE_INTEGER)
  if (read !== undefined) acc.cacheReadTokens = read
  const created = reportedCachedTokens(usage["cache_creation_input_tokens"], Number.MAX_SAFE_INTEGER)
  if (created !== undefined) acc.cacheCreationTokens = created
}

/**
 * Our usage from Anthropic's: its `input_tokens` leaves out what was read from or written to the
 * prompt cache, so the whole prompt is their sum (as OpenAI and Ollama count it), and the cached
 * part is `cache_read_input_tokens`.
 */
export const usageOf = (acc: MessageAccumulator): Usage => {
  const promptTokens = acc.inputTokens + (acc.cacheReadTokens ?? 0) + acc.cacheCreationTokens
  return {
    promptTokens,
    ...(acc.cacheReadTokens !== undefined ? { cachedPromptTokens: acc.cacheReadTokens } : {}),
    completionTokens: acc.outputTokens,
    totalTokens: promptTokens + acc.outputTokens
  }
}

/** Folds one SSE event's decoded data into the accumulator; returns what to emit. */
export const foldEvent = (acc: MessageAccumulator, data: unknown): EventDelta => {
  if (typeof data !== "object" || data === null) return {}
  const e = data as Record<string, any>
  switch (e["type"]) {
    case "message_start":
      acc.inputTokens = Number(e["message"]?.usage?.input_tokens ?? 0)
      acc.outputTokens = Number(e["message"]?.usage?.output_tokens ?? 0)
      foldCacheUsage(acc, e["message"]?.usage)
      return {}
    case "content_block_start": {
      const block = e["content_block"] ?? {}
      acc.blocks.set(Number(e["index"]), { type: String(block.type), id: String(block.id ?? ""), name: String(block.name ?? ""), json: "" })
      if (block.type === "text" && typeof block.text === "string" && block.text.length > 0) {
        acc.text += block.text
        return { text: block.text }
      }
      return {}
    }
    case "content_block_delta": {
      const delta = e["delta"] ?? {}
      const block = acc.blocks.get(Number(e["index"]))
      if (delta.type === "text_delta" && typeof delta.text === "string") {
        acc.text += delta.text
        return { text: delta.text }
      }
      if (delta.type === "thinking_delta" && typeof delta.thinking === "string") {
        acc.reasoning += delta.thinking
        return { reasoning: delta.thinking }
      }
      if (delta.type === "input_json_delta" && block !== undefined && typeof delta.partial_json === "string") {
        block.json += delta.partial_json
      }
      return {}
    }
    case "content_block_stop": {
      const block = acc.blocks.get(Number(e["index"]))
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
      if (typeof e["delta"]?.stop_reason === "string") acc.stopReason = e["delta"].stop_reason
      if (e["usage"]?.output_tokens !== undefined) acc.outputTokens = Number(e["usage"].output_tokens)
      if (e["usage"]?.input_tokens !== undefined && e["usage"].input_tokens !== null) acc.inputTokens = Number(e["usage"].input_tokens)
      foldCacheUsage(acc, e["usage"])
      return {}
    case "message_stop":
      acc.stopped = true
      return { stop: true }
    case "error":
      return { error: { type: String(e["error"]?.type ?? "error"), message: String(e["error"]?.message ?? "") } }
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
      return "length"
    case "tool_use":
      return acc.calls.length > 0 ? "tool-calls" : "stop"
    default:
      return "unknown"
  }
}

/**
 * OpenAI's chat-completions wire format, for OpenAI itself and every OpenAI-compatible server
 * (groq, together, vLLM, llama-server, LM Studio, another llmspell): our `GenerateRequest` → the
 * request body, and the streamed `chat.completion.chunk`s → our `GenerateEvent`s. Text and
 * `reasoning_content` (DeepSeek, vLLM; `reasoning` on OpenRouter) stream as deltas; tool calls
 * arrive in fragments keyed by `index` (the first carries `id` and `name`, later ones pieces of
 * `arguments`) and are emitted whole, decoded, when the answer ends; usage comes from the last
 * chunk when `stream_options.include_usage` was asked for. Pure mapping, no I/O.
 */
import type { CloudInstanceConfig } from "../../domain/ConfigSchema.js"
import { inlineImages } from "../../domain/Images.js"
import { type ChatMessage, type FinishReason, type GenerateRequest, reportedCachedTokens, type ToolCall, type Usage } from "../../domain/Types.js"

/** The chat-completions request body for a request. */
export const toChatCompletionRequest = (
  instance: CloudInstanceConfig,
  model: string,
  request: GenerateRequest,
  stream: boolean
): Record<string, unknown> => {
  const offerTools = request.tools !== undefined && request.tools.length > 0 && request.toolChoice !== "none"
  const format = request.responseFormat
  return {
    model,
    messages: request.messages.map(toMessage),
    ...(stream ? { stream: true } : {}),
    ...(stream && instance.streamUsage !== false ? { stream_options: { include_usage: true } } : {}),
    // OpenAI itself deprecated max_tokens for max_completion_tokens; compatible servers know max_tokens.
    ...(request.maxTokens !== undefined
      ? instance.type === "openai" && instance.options["base_url"] === undefined
        ? { max_completion_tokens: request.maxTokens }
        : { max_tokens: request.maxTokens }
      : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.topP !== undefined ? { top_p: request.topP } : {}),
    ...(request.seed !== undefined ? { seed: request.seed } : {}),
    ...(request.frequencyPenalty !== undefined ? { frequency_penalty: request.frequencyPenalty } : {}),
    ...(request.presencePenalty !== undefined ? { presence_penalty: request.presencePenalty } : {}),
    ...(request.logitBias !== undefined && Object.keys(request.logitBias).length > 0 ? { logit_bias: request.logitBias } : {}),
    // llama.cpp's sampling names, which llama-server takes as they are and vLLM and OpenRouter
    // take as top_k, min_p and repetition_penalty (each ignores the names it does not know)
    ...(takesLlamaCppSampling(instance)
      ? {
        ...(request.topK !== undefined ? { top_k: request.topK } : {}),
        ...(request.minP !== undefined ? { min_p: request.minP } : {}),
        ...(request.repeatPenalty !== undefined ? { repeat_penalty: request.repeatPenalty, repetition_penalty: request.repeatPenalty } : {}),
        ...(request.repeatLastN !== undefined ? { repeat_last_n: request.repeatLastN } : {})
      }
      : {}),
    ...(request.stop !== undefined && request.stop.length > 0 ? { stop: request.stop } : {}),
    ...(offerTools
      ? {
        tools: request.tools!.map((t) => ({
          type: "function",
          function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters }
        })),
        tool_choice: typeof request.toolChoice === "object"
          ? { type: "function", function: { name: request.toolChoice.tool } }
          : (request.toolChoice ?? "auto"),
        ...(request.parallelToolCalls !== undefined ? { parallel_tool_calls: request.parallelToolCalls } : {})
      }
      : {}),
    ...(format === "json"
      ? { response_format: { type: "json_object" } }
      : typeof format === "object"
      ? { response_format: { type: "json_schema", json_schema: { name: format.name ?? "answer", schema: format.schema, strict: false } } }
      : {}),
    ...(request.reasoning === false && instance.type === "openrouter" ? { reasoning: { enabled: false } } : {})
  }
}

/** OpenAI-compatible servers (llama-server, vLLM, LM Studio, another llmspell) and OpenRouter take llama.cpp's samplers; OpenAI and the other hosted APIs do not. */
const takesLlamaCppSampling = (instance: CloudInstanceConfig) => instance.type === "openai_compatible" || instance.type === "openrouter"

/**
 * A request field this provider cannot honour (refused by name rather than dropped): the
 * samplers beyond OpenAI's own (`topK`, `minP`, `repeatPenalty`, `repeatLastN`) where the
 * provider's API has none.
 */
export const unsupportedField = (
  instance: CloudInstanceConfig,
  request: GenerateRequest
): { readonly field: string; readonly reason: string } | undefined => {
  if (takesLlamaCppSampling(instance)) return undefined
  const field = (["topK", "minP", "repeatPenalty", "repeatLastN"] as const).find((f) => request[f] !== undefined)
  return field === undefined ? undefined : { field, reason: `${instance.type}'s chat-completions API has no such sampler` }
}

const toMessage = (m: ChatMessage): Record<string, unknown> => {
  switch (m.role) {
    case "assistant":
      return {
        role: "assistant",
        content: m.content.length === 0 && m.toolCalls !== undefined ? null : m.content,
        ...(m.toolCalls !== undefined && m.toolCalls.length > 0
          ? {
            tool_calls: m.toolCalls.map((c) => ({
              id: c.id,
              type: "function",
              function: { name: c.name, arguments: JSON.stringify(c.params ?? {}) }
            }))
          }
          : {})
      }
    case "tool":
      return { role: "tool", tool_call_id: m.toolCallId, content: m.content }
    default:
      return m.images !== undefined && m.images.length > 0
        ? {
          role: m.role,
          content: [
            ...(m.content.length > 0 ? [{ type: "text", text: m.content }] : []),
            ...inlineImages(m.images).map((i) => ({ type: "image_url", image_url: { url: `data:${i.mediaType};base64,${i.data}` } }))
          ]
        }
        : { role: m.role, content: m.content }
  }
}

/** A finish reason of the wire → ours. */
export const finishReasonOf = (reason: string | null | undefined): FinishReason =>
  reason === "stop" ? "stop" : reason === "length" ? "length" : reason === "tool_calls" || reason === "function_call" ? "tool-calls" : "unknown"

/** What one chunk adds; the accumulator below keeps the rest. */
export interface ChunkDelta {
  readonly text?: string
  readonly reasoning?: string
}

/** The state of one streamed answer. */
export interface ChatAccumulator {
  text: string
  reasoning: string
  readonly calls: Map<number, { id: string; name: string; args: string }>
  finishReason: string | undefined
  usage: {
    prompt_tokens?: number
    completion_tokens?: number
    total_tokens?: number
    prompt_tokens_details?: { cached_tokens?: unknown } | null
  } | undefined
  chunks: number
}

/** A fresh accumulator. */
export const emptyAccumulator = (): ChatAccumulator => ({
  text: "",
  reasoning: "",
  calls: new Map(),
  finishReason: undefined,
  usage: undefined,
  chunks: 0
})

const str = (u: unknown): string | undefined => (typeof u === "string" ? u : undefined)

/** Folds one decoded chunk (`chat.completion.chunk`) into the accumulator; returns the deltas to emit. */
export const foldChunk = (acc: ChatAccumulator, chunk: unknown): ChunkDelta => {
  if (typeof chunk !== "object" || chunk === null) return {}
  const c = chunk as { choices?: Array<{ delta?: Record<string, unknown>; finish_reason?: string | null }>; usage?: ChatAccumulator["usage"] | null }
  if (c.usage !== undefined && c.usage !== null) acc.usage = c.usage
  const choice = c.choices?.[0]
  if (choice === undefined) return {}
  acc.chunks++
  if (choice.finish_reason !== undefined && choice.finish_reason !== null) acc.finishReason = choice.finish_reason
  const delta = choice.delta ?? {}
  const text = str(delta["content"])
  const reasoning = str(delta["reasoning_content"]) ?? str(delta["reasoning"])
  const toolCalls = delta["tool_calls"]
  if (Array.isArray(toolCalls)) {
    for (const fragment of toolCalls as Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }>) {
      const index = typeof fragment.index === "number" ? fragment.index : acc.calls.size
      const call = acc.calls.get(index) ?? { id: "", name: "", args: "" }
      if (fragment.id !== undefined && fragment.id.length > 0) call.id = fragment.id
      if (fragment.function?.name !== undefined && fragment.function.name.length > 0) call.name = fragment.function.name
      if (fragment.function?.arguments !== undefined) call.args += fragment.function.arguments
      acc.calls.set(index, call)
    }
  }
  if (text !== undefined && text.length > 0) acc.text += text
  if (reasoning !== undefined && reasoning.length > 0) acc.reasoning += reasoning
  return {
    ...(text !== undefined && text.length > 0 ? { text } : {}),
    ...(reasoning !== undefined && reasoning.length > 0 ? { reasoning } : {})
  }
}

/** Folds a whole (non-streamed) `chat.completion` into an accumulator. */
export const foldCompletion = (acc: ChatAccumulator, completion: unknown): void => {
  const c = completion as { choices?: Array<{ message?: Record<string, unknown>; finish_reason?: string }>; usage?: ChatAccumulator["usage"] }
  const choice = c.choices?.[0]
  const message = choice?.message ?? {}
  foldChunk(acc, {
    choices: [{
      delta: {
        content: message["content"],
        reasoning_content: message["reasoning_content"] ?? message["reasoning"],
        tool_calls: Array.isArray(message["tool_calls"])
          ? (message["tool_calls"] as Array<Record<string, unknown>>).map((t, index) => ({ index, ...t }))
          : undefined
      },
      finish_reason: choice?.finish_reason ?? null
    }],
    usage: c.usage
  })
}

/** The calls of a finished answer, in index order, with decoded arguments; a call whose arguments are not JSON is named. */
export const finishedCalls = (acc: ChatAccumulator): { readonly calls: Array<ToolCall>; readonly bad?: string } => {
  const calls: Array<ToolCall> = []
  for (const [index, call] of [...acc.calls.entries()].sort((a, b) => a[0] - b[0])) {
    let params: unknown
    try {
      params = call.args.trim().length === 0 ? {} : JSON.parse(call.args)
    } catch {
      return { calls, bad: `the arguments of its call to ${JSON.stringify(call.name)} are not JSON` }
    }
    calls.push({ id: call.id.length > 0 ? call.id : `call_${index}`, name: call.name, params })
  }
  return { calls }
}

/** Token counts: the provider's when it sent them, else what was counted (one chunk ≈ one token). */
export const usageOf = (acc: ChatAccumulator): Usage => {
  const promptTokens = acc.usage?.prompt_tokens ?? 0
  const completionTokens = acc.usage?.completion_tokens ?? acc.chunks
  // OpenAI's prompt_tokens counts the cached part too
  const cachedPromptTokens = reportedCachedTokens(acc.usage?.prompt_tokens_details?.cached_tokens, promptTokens)
  return {
    promptTokens,
    ...(cachedPromptTokens !== undefined ? { cachedPromptTokens } : {}),
    completionTokens,
    totalTokens: acc.usage?.total_tokens ?? promptTokens + completionTokens
  }
}

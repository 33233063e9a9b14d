/**
 * One streamed answer of OpenAI's chat completions, built up chunk by chunk: the text, the
 * reasoning (`reasoning_content`), tool calls assembled by `index` (the first fragment carries the
 * id and name, later ones pieces of the arguments), the finish reason, the usage chunk (with the
 * cached prompt tokens when the server reports `prompt_tokens_details.cached_tokens`) and an
 * in-band error. The clock is the caller's, so the figures are testable. Pure.
 */
import type { AnswerFigures } from "../../domain/Transcript.js"

/** A tool call as its fragments arrived. */
export interface ToolCallDraft {
  readonly index: number
  readonly id: string | undefined
  readonly name: string
  /** The arguments' JSON text so far. */
  readonly arguments: string
}

/** Token counts from the usage chunk. */
export interface AnswerUsage {
  readonly promptTokens?: number
  readonly completionTokens?: number
  readonly cachedPromptTokens?: number
}

/** An answer being streamed, or finished. */
export interface Answer {
  readonly content: string
  readonly reasoning: string
  readonly toolCalls: ReadonlyArray<ToolCallDraft>
  readonly finishReason: string | undefined
  readonly usage: AnswerUsage | undefined
  readonly error: string | undefined
  /** When the request was sent, the first token (text or reasoning) arrived, and the answer ended (ms, the caller's clock). */
  readonly startedAt: number
  readonly firstTokenAt: number | undefined
  readonly endedAt: number | undefined
}

/** An answer whose request was sent at `now`. */
export const startAnswer = (now: number): Answer => ({
  content: "",
  reasoning: "",
  toolCalls: [],
  finishReason: undefined,
  usage: undefined,
  error: undefined,
  startedAt: now,
  firstTokenAt: undefined,
  endedAt: undefined
})

const record = (x: unknown): Record<string, unknown> | undefined =>
  typeof x === "object" && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : undefined

const count = (x: unknown): number | undefined => (typeof x === "number" && Number.isFinite(x) && x >= 0 ? x : undefined)

/** The answer after one parsed chunk (`data:` JSON) received at `now`. */
export const applyChunk = (answer: Answer, chunk: unknown, now: number): Answer => {
  const c = record(chunk)
  if (c === undefined) return answer
  const error = record(c["error"])
  if (error !== undefined || typeof c["error"] === "string") {
    const message = typeof c["error"] === "string" ? c["error"] : typeof error?.["message"] === "string" ? error["message"] : "the server reported an error"
    return { ...answer, error: message as string }
  }
  let next = answer
  const usage = record(c["usage"])
  if (usage !== undefined) {
    const cached = count(record(usage["prompt_tokens_details"])?.["cached_tokens"])
    next = {
      ...next,
      usage: {
        ...(count(usage["prompt_tokens"]) !== undefined ? { promptTokens: count(usage["prompt_tokens"])! } : {}),
        ...(count(usage["completion_tokens"]) !== undefined ? { completionTokens: count(usage["completion_tokens"])! } : {}),
        ...(cached !== undefined ? { cachedPromptTokens: cached } : {})
      }
    }
  }
  const choices = Array.isArray(c["choices"]) ? c["choices"] : []
  for (const choice of choices) {
    const ch = record(choice)
    if (ch === undefined) continue
    const delta = record(ch["delta"]) ?? {}
    const text = typeof delta["content"] === "string" ? delta["content"] : ""
    const reasoning = typeof delta["reasoning_content"] === "string"
      ? delta["reasoning_content"]
      : typeof delta["reasoning"] === "string"
      ? delta["reasoning"]
      : ""
    let toolCalls = next.toolCalls
    if (Array.isArray(delta["tool_calls"])) {
      for (const fragment of delta["tool_calls"]) toolCalls = mergeToolCall(toolCalls, record(fragment))
    }
    const gotToken = text !== "" || reasoning !== "" || toolCalls !== next.toolCalls
    next = {
      ...next,
      content: next.content + text,
      reasoning: next.reasoning + reasoning,
      toolCalls,
      finishReason: typeof ch["finish_reason"] === "string" ? ch["finish_reason"] : next.finishReason,
      firstTokenAt: next.firstTokenAt ?? (gotToken ? now : undefined)
    }
  }
  return next
}

const mergeToolCall = (calls: ReadonlyArray<ToolCallDraft>, fragment: Record<string, unknown> | undefined): ReadonlyArray<ToolCallDraft> => {
  if (fragment === undefined) return calls
  const fn = record(fragment["function"]) ?? {}
  const index = typeof fragment["index"] === "number" ? fragment["index"] : calls.length
  const piece = typeof fn["arguments"] === "string" ? fn["arguments"] : fn["arguments"] !== undefined ? JSON.stringify(fn["arguments"]) : ""
  const existing = calls.find((call) => call.index === index)
  if (existing === undefined) {
    return [...calls, {
      index,
      id: typeof fragment["id"] === "string" ? fragment["id"] : undefined,
      name: typeof fn["name"] === "string" ? fn["name"] : "",
      arguments: piece
    }]
  }
  return calls.map((call) =>
    call !== existing ? call : {
      ...call,
      id: call.id ?? (typeof fragment["id"] === "string" ? fragment["id"] : undefined),
      name: call.name + (typeof fn["name"] === "string" && call.name === "" ? fn["name"] : ""),
      arguments: call.arguments + piece
    }
  )
}

/** The answer ended at `now` (`abort` when the user stopped it). */
export const endAnswer = (answer: Answer, now: number, reason?: string): Answer => ({
  ...answer,
  endedAt: answer.endedAt ?? now,
  finishReason: reason ?? answer.finishReason
})

/** A tool call's arguments as a value: the JSON they spell, or the text itself when it is not JSON. */
export const toolCallParams = (call: ToolCallDraft): unknown => {
  if (call.arguments.trim() === "") return {}
  try {
    return JSON.parse(call.arguments) as unknown
  } catch {
    return call.arguments
  }
}

/**
 * The figures of an answer: time to first token as the page saw it; tokens per second over the
 * tokens after the first (the first one's wait is the TTFT); the usage's counts.
 */
export const answerFigures = (answer: Answer): AnswerFigures => {
  const figures: { -readonly [K in keyof AnswerFigures]: AnswerFigures[K] } = {}
  if (answer.firstTokenAt !== undefined) figures.timeToFirstTokenMs = Math.max(0, answer.firstTokenAt - answer.startedAt)
  if (answer.endedAt !== undefined) figures.totalMs = Math.max(0, answer.endedAt - answer.startedAt)
  const completion = answer.usage?.completionTokens
  if (completion !== undefined && completion > 1 && answer.firstTokenAt !== undefined && answer.endedAt !== undefined) {
    const seconds = (answer.endedAt - answer.firstTokenAt) / 1000
    if (seconds > 0) figures.tokensPerSecond = Math.round(((completion - 1) / seconds) * 10) / 10
  }
  if (answer.usage?.promptTokens !== undefined) figures.promptTokens = answer.usage.promptTokens
  if (answer.usage?.cachedPromptTokens !== undefined) figures.cachedPromptTokens = answer.usage.cachedPromptTokens
  if (completion !== undefined) figures.completionTokens = completion
  return figures
}

/** The transcript's finish reason for an OpenAI one (`tool_calls` → `tool-calls`); unknown ones are `unknown`. */
export const finishReasonOf = (reason: string | undefined): "stop" | "length" | "tool-calls" | "abort" | "error" | "unknown" => {
  switch (reason) {
    case "stop":
    case "length":
    case "abort":
    case "error":
      return reason
    case "tool_calls":
    case "function_call":
      return "tool-calls"
    default:
      return "unknown"
  }
}

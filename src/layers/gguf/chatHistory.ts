/**
 * Our chat messages as node-llama-cpp's chat history (`ChatHistoryItem`s), for the in-process
 * loader's generation (`llamaGenerate.ts`). Pure: types only from node-llama-cpp, no I/O.
 */
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from "node-llama-cpp"
import { JSON_LIMITS, nestedDeeperThan } from "../../domain/JsonLimits.js"
import type { GenerateRequest } from "../../domain/Types.js"

/**
 * A tool result as node-llama-cpp's `result`: its JSON value, so the chat template renders it as
 * data; text that is not JSON, or JSON nesting deeper than a request's values may (the template
 * would walk it recursively), stays text.
 */
const parseResult = (content: string): unknown => {
  try {
    const value: unknown = JSON.parse(content)
    return nestedDeeperThan(value, JSON_LIMITS.maxDepth) ? content : value
  } catch {
    return content
  }
}

/**
 * Our messages as node-llama-cpp's chat history. An assistant turn's tool calls and the `tool`
 * messages answering them (joined by call id) become its single `functionCall` items (name,
 * params and result together: node-llama-cpp has no call ids); a later assistant turn continues
 * that model response. `instructions` (the tools, for a grammar-forced call) go in the system prompt.
 */
export const toHistory = (request: GenerateRequest, instructions?: string): Array<ChatHistoryItem> => {
  const history: Array<ChatHistoryItem> = []
  const calls = new Map<string, ChatModelFunctionCall>()
  let lastModel: ChatModelResponse | undefined
  for (const m of request.messages) {
    if (m.role === "system") {
      history.push({ type: "system", text: m.content })
      lastModel = undefined
    } else if (m.role === "user") {
      history.push({ type: "user", text: m.content })
      lastModel = undefined
    } else if (m.role === "assistant") {
      // after tool results, the model's next words continue the same response
      const continues = lastModel !== undefined && lastModel.response.some((r) => typeof r === "object" && r.type === "functionCall")
      const item: ChatModelResponse = continues ? lastModel! : { type: "model", response: [] }
      if (m.content.length > 0) item.response.push(m.content)
      for (const call of m.toolCalls ?? []) {
        const functionCall: ChatModelFunctionCall = { type: "functionCall", name: call.name, params: call.params, result: undefined }
        calls.set(call.id, functionCall)
        item.response.push(functionCall)
      }
      if (!continues) history.push(item)
      lastModel = item
    } else {
      const call = m.toolCallId !== undefined ? calls.get(m.toolCallId) : undefined
      if (call !== undefined) {
        call.result = parseResult(m.content)
      } else {
        // a result without its call in this history: keep it as a call with unknown params
        const item: ChatModelResponse = lastModel ?? { type: "model", response: [] }
        item.response.push({ type: "functionCall", name: m.toolName ?? "tool", params: undefined, result: parseResult(m.content) })
        if (lastModel === undefined) history.push(item)
        lastModel = item
      }
    }
  }
  if (instructions !== undefined) {
    const system = history.findIndex((h) => h.type === "system")
    if (system >= 0) {
      const item = history[system] as { type: "system"; text: string }
      history[system] = { type: "system", text: `${item.text}\n\n${instructions}` }
    } else history.unshift({ type: "system", text: instructions })
  }
  // an empty model turn asks for a new answer; a trailing assistant turn (or tool results) is continued instead
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] })
  return history
}

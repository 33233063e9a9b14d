/**
 * OpenAI's `/v1/responses` in front of LocalLLM, stateless: enough for `@effect/ai-openai`'s
 * OpenAiLanguageModel — text, function calls and their outputs, the json_schema text format, and
 * the streaming events (`response.created` … `response.completed`/`response.incomplete`).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { JSON_LIMITS, nestedDeeperThan } from "../domain/JsonLimits.js"
import type { ChatMessage, Completion, GenerateRequest, ResponseFormat, ToolChoice } from "../domain/Types.js"
import { toApiFailure } from "./ApiTerms.js"
import { json, sse } from "./Http.js"
import {
  body,
  fail,
  handle,
  id,
  JsonObject,
  lastCompletion,
  openAiTerms,
  optional,
  run,
  safeParse,
  samplingOf,
  SamplingWire,
  seconds,
  textOf,
  toolDefinition
} from "./OpenAiWire.js"
import { OPENAI_RESPONSES_FIELDS } from "./RequestFields.js"
import { checkSpec, noteTokens, type RouteContext } from "./Routes.js"

/** Responses API input items (the subset a stateless server can serve). */
const ResponseInputItem = Schema.Union(
  Schema.Struct({
    type: Schema.optional(Schema.Literal("message")),
    role: Schema.Literal("system", "developer", "user", "assistant"),
    content: Schema.Union(Schema.String, Schema.Array(Schema.Struct({ type: Schema.String, text: Schema.optional(Schema.String) })))
  }),
  Schema.Struct({ type: Schema.Literal("function_call"), call_id: Schema.String, name: Schema.String, arguments: Schema.String }),
  Schema.Struct({ type: Schema.Literal("function_call_output"), call_id: Schema.String, output: Schema.Unknown }),
  Schema.Struct({ type: Schema.Literal("reasoning") })
)

const ResponsesBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  ...SamplingWire,
  input: Schema.Union(Schema.String, Schema.Array(ResponseInputItem)),
  instructions: Schema.optional(Schema.NullOr(Schema.String)),
  max_output_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  tools: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
    type: Schema.String,
    name: Schema.optional(Schema.String),
    description: Schema.optional(Schema.NullOr(Schema.String)),
    parameters: Schema.optional(Schema.NullOr(JsonObject))
  })))),
  tool_choice: Schema.optional(Schema.NullOr(Schema.Union(
    Schema.Literal("none", "auto", "required"),
    Schema.Struct({ type: Schema.Literal("function"), name: Schema.String })
  ))),
  text: Schema.optional(Schema.NullOr(Schema.Struct({
    format: Schema.optional(Schema.NullOr(Schema.Union(
      Schema.Struct({ type: Schema.Literal("text") }),
      Schema.Struct({ type: Schema.Literal("json_object") }),
      Schema.Struct({ type: Schema.Literal("json_schema"), name: Schema.optional(Schema.String), schema: JsonObject })
    ))),
    verbosity: Schema.optional(Schema.NullOr(Schema.Literal("medium")))
  }))),
  reasoning: Schema.optional(Schema.NullOr(Schema.Struct({
    effort: Schema.optional(Schema.NullOr(Schema.String)),
    summary: Schema.optional(Schema.NullOr(Schema.String))
  })))
})

/** The Responses API's words for the request's fields. */
const terms = openAiTerms("max_output_tokens", "text.format.schema", "text.format {\"type\": \"json_object\"}")

/**
 * A function call's output as the tool message's text: a string as it is, content parts as their
 * text, anything else as JSON — undefined when it nests too deep to serialize safely.
 */
const outputText = (output: unknown): string | undefined => {
  if (typeof output === "string") return output
  if (Array.isArray(output) && output.every((p) => typeof p === "object" && p !== null && typeof (p as { text?: unknown }).text === "string")) {
    return output.map((p) => (p as { text: string }).text).join("")
  }
  return nestedDeeperThan(output, JSON_LIMITS.maxDepth) ? undefined : JSON.stringify(output) ?? "null"
}

/** `POST /v1/responses`. */
export const responses = (ctx: RouteContext) =>
handle(terms)(Effect.gen(function*() {
  const b = yield* body(ctx, ResponsesBody, OPENAI_RESPONSES_FIELDS)
  const spec = yield* checkSpec(ctx, b.model)
  const messages: Array<ChatMessage> = []
  if (b.instructions != null && b.instructions !== "") messages.push({ role: "system", content: b.instructions })
  if (typeof b.input === "string") messages.push({ role: "user", content: b.input })
  else {
    const names = new Map<string, string>()
    for (const [index, item] of b.input.entries()) {
      if (item.type === "reasoning") continue
      if (item.type === "function_call") {
        names.set(item.call_id, item.name)
        const call = { id: item.call_id, name: item.name, params: safeParse(item.arguments) }
        const previous = messages.at(-1)
        // consecutive calls are one assistant turn
        if (previous?.role === "assistant" && previous.toolCalls !== undefined && previous.content === "") {
          messages[messages.length - 1] = { ...previous, toolCalls: [...previous.toolCalls, call] }
        } else messages.push({ role: "assistant", content: "", toolCalls: [call] })
        continue
      }
      if (item.type === "function_call_output") {
        const toolName = names.get(item.call_id)
        const output = outputText(item.output)
        if (output === undefined) {
          return yield* fail(`input[${index}].output: a function call's output nests deeper than ${JSON_LIMITS.maxDepth} levels of JSON`)
        }
        messages.push({
          role: "tool",
          content: output,
          toolCallId: item.call_id,
          ...(toolName !== undefined ? { toolName } : {})
        })
        continue
      }
      const text = typeof item.content === "string" ? Either.right(item.content) : textOf(item.content)
      if (Either.isLeft(text)) return yield* fail(text.left)
      messages.push({ role: item.role === "developer" ? "system" : item.role, content: text.right })
    }
  }
  // a built-in tool (web search, code interpreter, …) cannot run here: refused, never dropped
  const builtIn = (b.tools ?? []).find((t) => t.type !== "function" || t.name === undefined)
  if (builtIn !== undefined) {
    return yield* fail(`tools: a ${JSON.stringify(builtIn.type)} tool is not supported by llmspell serve; only function tools (with a name) are`)
  }
  const tools = (b.tools ?? []).map((t) => toolDefinition(t.name!, t.description, t.parameters))
  const choice: ToolChoice | undefined = b.tool_choice == null
    ? undefined
    : typeof b.tool_choice === "string"
    ? b.tool_choice
    : { tool: b.tool_choice.name }
  const f = b.text?.format
  const format: ResponseFormat | undefined = f == null || f.type === "text"
    ? undefined
    : f.type === "json_object"
    ? "json"
    : { schema: f.schema, ...optional("name", f.name) }
  const request: GenerateRequest = {
    messages,
    ...optional("maxTokens", b.max_output_tokens),
    ...samplingOf(b),
    ...(b.reasoning?.effort != null ? { reasoning: b.reasoning.effort !== "none" } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    ...(choice !== undefined && (tools.length > 0 || choice === "none") ? { toolChoice: choice } : {}),
    ...(format !== undefined ? { responseFormat: format } : {})
  }
  const events = yield* run(ctx, spec, request)
  const responseId = id("resp_")
  const messageId = id("msg_")
  const created = seconds()
  const envelope = (status: string, output: Array<unknown>, completion?: Completion) => ({
    id: responseId,
    object: "response",
    created_at: created,
    status,
    error: null,
    incomplete_details: completion?.finishReason === "length" ? { reason: "max_output_tokens" } : null,
    instructions: null,
    model: spec,
    output,
    parallel_tool_calls: true,
    tools: [],
    tool_choice: "auto",
    metadata: null,
    temperature: null,
    top_p: null,
    ...(completion !== undefined
      ? {
        usage: {
          input_tokens: completion.usage.promptTokens,
          // a required field of the Responses usage: 0 when the backend does not say
          input_tokens_details: { cached_tokens: completion.usage.cachedPromptTokens ?? 0 },
          output_tokens: completion.usage.completionTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: completion.usage.totalTokens
        }
      }
      : {})
  })
  const messageItem = (text: string, status: string) => ({
    type: "message",
    id: messageId,
    status,
    role: "assistant",
    content: [{ type: "output_text", text, annotations: [] }]
  })
  const callItem = (call: { id: string; name: string; params: unknown }) => ({
    type: "function_call",
    id: `fc_${call.id}`,
    call_id: call.id,
    name: call.name,
    arguments: JSON.stringify(call.params),
    status: "completed"
  })
  const outputOf = (completion: Completion) => [
    ...(completion.text !== "" || (completion.toolCalls ?? []).length === 0 ? [messageItem(completion.text, "completed")] : []),
    ...(completion.toolCalls ?? []).map(callItem)
  ]
  if (b.stream !== true) {
    const completion = yield* lastCompletion(events)
    const status = completion.finishReason === "length" ? "incomplete" : "completed"
    return json({ ...envelope(status, outputOf(completion), completion), output_text: completion.text })
  }
  let sequence = 0
  let messageOpen = false
  let outputIndex = 0
  let text = ""
  const next = <A extends Record<string, unknown>>(event: A) => ({ ...event, sequence_number: sequence++ })
  const closeMessage = (): Array<unknown> => {
    if (!messageOpen) return []
    messageOpen = false
    const index = outputIndex++
    return [
      next({ type: "response.output_text.done", item_id: messageId, output_index: index, content_index: 0, text, logprobs: [] }),
      next({ type: "response.output_item.done", output_index: index, item: messageItem(text, "completed") })
    ]
  }
  const body$ = Stream.concat(
    Stream.sync(() => next({ type: "response.created", response: envelope("in_progress", []) })),
    events.pipe(
      Stream.mapConcatEffect((event): Effect.Effect<Array<unknown>> => {
        switch (event._tag) {
          case "TextDelta": {
            const opening = messageOpen ? [] : [
              next({ type: "response.output_item.added", output_index: outputIndex, item: messageItem("", "in_progress") }),
              next({
                type: "response.content_part.added",
                item_id: messageId,
                output_index: outputIndex,
                content_index: 0,
                part: { type: "output_text", text: "", annotations: [] }
              })
            ]
            messageOpen = true
            text += event.text
            return Effect.succeed([
              ...opening,
              next({
                type: "response.output_text.delta",
                item_id: messageId,
                output_index: outputIndex,
                content_index: 0,
                delta: event.text,
                logprobs: []
              })
            ])
          }
          case "ReasoningDelta":
            return Effect.succeed([])
          case "ToolCall": {
            const closing = closeMessage()
            const index = outputIndex++
            const item = callItem(event.call)
            return Effect.succeed([
              ...closing,
              next({ type: "response.output_item.added", output_index: index, item: { ...item, arguments: "", status: "in_progress" } }),
              next({ type: "response.function_call_arguments.delta", item_id: item.id, output_index: index, delta: item.arguments }),
              next({ type: "response.function_call_arguments.done", item_id: item.id, output_index: index, arguments: item.arguments }),
              next({ type: "response.output_item.done", output_index: index, item })
            ])
          }
          case "Finish": {
            const closing = closeMessage()
            const status = event.completion.finishReason === "length" ? "incomplete" : "completed"
            return Effect.as(noteTokens(event.completion.usage.totalTokens), [
              ...closing,
              next({
                type: status === "completed" ? "response.completed" : "response.incomplete",
                response: envelope(status, outputOf(event.completion), event.completion)
              })
            ])
          }
        }
      })
    )
  )
  return sse(Stream.mapError(body$, toApiFailure(terms)))
}))

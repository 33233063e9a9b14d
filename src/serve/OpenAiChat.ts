/**
 * OpenAI's `/v1/chat/completions` in front of LocalLLM: SSE streaming ending in `data: [DONE]`,
 * `stream_options.include_usage`, tools with `tool_calls` deltas by index, `tool_choice`,
 * `response_format` json_object / json_schema.
 */
import { fetchImageUrls } from "./ImageFetch.js"
import { imagesProblem } from "../domain/Images.js"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { ChatMessage, Completion, GenerateRequest, ResponseFormat, ToolChoice } from "../domain/Types.js"
import { toApiFailure } from "./ApiTerms.js"
import { HttpFailure, json, sse } from "./Http.js"
import {
  body,
  Content,
  fromEither,
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
  userContentOf,
  toolDefinition,
  usage
} from "./OpenAiWire.js"
import { OPENAI_CHAT_FIELDS } from "./RequestFields.js"
import { checkSpec, noteTokens, type RouteContext } from "./Routes.js"

const ChatMessageWire = Schema.Struct({
  role: Schema.Literal("system", "developer", "user", "assistant", "tool"),
  content: Schema.optional(Content),
  name: Schema.optional(Schema.String),
  tool_calls: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
    id: Schema.String,
    type: Schema.optional(Schema.Literal("function")),
    function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
  })))),
  tool_call_id: Schema.optional(Schema.String)
})

const FunctionTool = Schema.Struct({
  type: Schema.Literal("function"),
  function: Schema.Struct({
    name: Schema.String,
    description: Schema.optional(Schema.String),
    parameters: Schema.optional(JsonObject),
    strict: Schema.optional(Schema.NullOr(Schema.Boolean))
  })
})

const ToolChoiceWire = Schema.Union(
  Schema.Literal("none", "auto", "required"),
  Schema.Struct({ type: Schema.Literal("function"), function: Schema.Struct({ name: Schema.String }) })
)

const ResponseFormatWire = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    json_schema: Schema.Struct({ name: Schema.optional(Schema.String), schema: Schema.optional(JsonObject), strict: Schema.optional(Schema.NullOr(Schema.Boolean)) })
  })
)

const ChatBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  ...SamplingWire,
  messages: Schema.Array(ChatMessageWire),
  stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.NullOr(Schema.Boolean)) }))),
  max_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  max_completion_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  stop: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Array(Schema.String)))),
  logit_bias: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Number }))),
  tools: Schema.optional(Schema.NullOr(Schema.Array(FunctionTool))),
  tool_choice: Schema.optional(Schema.NullOr(ToolChoiceWire)),
  response_format: Schema.optional(Schema.NullOr(ResponseFormatWire)),
  reasoning_effort: Schema.optional(Schema.NullOr(Schema.String))
})

/** Chat completions' words for the request's fields. */
const terms = openAiTerms("max_tokens", "response_format.json_schema.schema", "response_format {\"type\": \"json_object\"}")

const finishReason = (completion: Completion) =>
  completion.finishReason === "tool-calls" ? "tool_calls" : completion.finishReason === "length" ? "length" : "stop"

/** OpenAI's chat messages → ours (system and developer are both system prompts). */
const toMessages = (messages: ReadonlyArray<typeof ChatMessageWire.Type>): Either.Either<Array<ChatMessage>, string> => {
  const out: Array<ChatMessage> = []
  const names = new Map<string, string>()
  for (const [index, m] of messages.entries()) {
    if (m.role === "user") {
      const user = userContentOf(m.content, `messages[${index}]`)
      if (Either.isLeft(user)) return Either.left(user.left)
      out.push({ role: "user", content: user.right.text, ...(user.right.images.length > 0 ? { images: user.right.images } : {}) })
      continue
    }
    const text = textOf(m.content)
    if (Either.isLeft(text)) return Either.left(text.left)
    const content = text.right
    switch (m.role) {
      case "system":
      case "developer":
        out.push({ role: "system", content })
        break
      case "assistant": {
        const calls = (m.tool_calls ?? []).map((c) => {
          names.set(c.id, c.function.name)
          return { id: c.id, name: c.function.name, params: safeParse(c.function.arguments) }
        })
        out.push({ role: "assistant", content, ...(calls.length > 0 ? { toolCalls: calls } : {}) })
        break
      }
      case "tool": {
        if (m.tool_call_id === undefined) return Either.left("a tool message needs tool_call_id")
        const toolName = m.name ?? names.get(m.tool_call_id)
        out.push({ role: "tool", content, toolCallId: m.tool_call_id, ...(toolName !== undefined ? { toolName } : {}) })
        break
      }
    }
  }
  return Either.right(out)
}

/** `POST /v1/chat/completions`. */
export const chatCompletions = (ctx: RouteContext) =>
handle(terms)(Effect.gen(function*() {
  const b = yield* body(ctx, ChatBody, OPENAI_CHAT_FIELDS)
  const spec = yield* checkSpec(ctx, b.model)
  const wire = ctx.allowImageUrls === true
    ? yield* fetchImageUrls(b.messages, ctx.imageFetch).pipe(Effect.mapError((why) => new HttpFailure(400, why)))
    : b.messages
  const messages = yield* fromEither(toMessages(wire))
  const imageProblem = imagesProblem(messages, (m, i) => `messages[${m}].content: image_url #${i + 1}`, "messages[].content image_url parts")
  if (imageProblem !== undefined) return yield* new HttpFailure(400, imageProblem)
  const tools = (b.tools ?? []).map((t) => toolDefinition(t.function.name, t.function.description, t.function.parameters))
  const choice: ToolChoice | undefined = b.tool_choice == null
    ? undefined
    : typeof b.tool_choice === "string"
    ? b.tool_choice
    : { tool: b.tool_choice.function.name }
  const format: ResponseFormat | undefined = b.response_format == null || b.response_format.type === "text"
    ? undefined
    : b.response_format.type === "json_object"
    ? "json"
    : b.response_format.json_schema.schema !== undefined
    ? { schema: b.response_format.json_schema.schema, ...optional("name", b.response_format.json_schema.name) }
    : "json"
  const maxTokens = b.max_completion_tokens ?? b.max_tokens
  const stop = b.stop == null ? undefined : typeof b.stop === "string" ? [b.stop] : b.stop
  const request: GenerateRequest = {
    messages,
    ...optional("maxTokens", maxTokens),
    ...samplingOf(b),
    ...optional("logitBias", b.logit_bias),
    ...(stop !== undefined && stop.length > 0 ? { stop } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    ...(choice !== undefined && (tools.length > 0 || choice === "none") ? { toolChoice: choice } : {}),
    ...(format !== undefined ? { responseFormat: format } : {}),
    ...(b.reasoning_effort != null ? { reasoning: b.reasoning_effort !== "none" } : {})
  }
  const events = yield* run(ctx, spec, request)
  const completionId = id("chatcmpl-")
  const created = seconds()
  if (b.stream !== true) {
    const completion = yield* lastCompletion(events)
    const calls = completion.toolCalls ?? []
    return json({
      id: completionId,
      object: "chat.completion",
      created,
      model: spec,
      system_fingerprint: null,
      choices: [{
        index: 0,
        message: {
          role: "assistant",
          content: calls.length > 0 && completion.text === "" ? null : completion.text,
          refusal: null,
          ...(completion.reasoning !== undefined ? { reasoning_content: completion.reasoning } : {}),
          ...(calls.length > 0
            ? { tool_calls: calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: JSON.stringify(c.params) } })) }
            : {})
        },
        logprobs: null,
        finish_reason: finishReason(completion)
      }],
      usage: usage(completion)
    })
  }
  const includeUsage = b.stream_options?.include_usage === true
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    id: completionId,
    object: "chat.completion.chunk",
    created,
    model: spec,
    system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }]
  })
  let calls = 0
  const body$ = Stream.concat(
    Stream.succeed(chunk({ role: "assistant", content: "" })),
    events.pipe(
      Stream.mapConcatEffect((event): Effect.Effect<Array<unknown>> => {
        switch (event._tag) {
          case "TextDelta":
            return Effect.succeed([chunk({ content: event.text })])
          case "ReasoningDelta":
            return Effect.succeed([chunk({ reasoning_content: event.text })])
          case "ToolCall": {
            const index = calls++
            // the first fragment names the call, the next carries its arguments (what clients merge by index)
            return Effect.succeed([
              chunk({ tool_calls: [{ index, id: event.call.id, type: "function", function: { name: event.call.name, arguments: "" } }] }),
              chunk({ tool_calls: [{ index, function: { arguments: JSON.stringify(event.call.params) } }] })
            ])
          }
          case "Finish":
            return Effect.as(noteTokens(event.completion.usage.totalTokens), [
              chunk({}, finishReason(event.completion)),
              ...(includeUsage
                ? [{ id: completionId, object: "chat.completion.chunk", created, model: spec, system_fingerprint: null, choices: [], usage: usage(event.completion) }]
                : [])
            ])
        }
      })
    )
  )
  return sse(Stream.mapError(body$, toApiFailure(terms)))
}))

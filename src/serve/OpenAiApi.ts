/**
 * OpenAI's API in front of LocalLLM: `/v1/models`, `/v1/chat/completions` (SSE streaming ending
 * in `data: [DONE]`, `stream_options.include_usage`, tools with `tool_calls` deltas by index,
 * `tool_choice`, `response_format` json_object / json_schema), `/v1/embeddings` (float or base64)
 * and a stateless `/v1/responses` (enough for `@effect/ai-openai`'s OpenAiLanguageModel: text,
 * function calls and their outputs, json_schema text format, streaming events). Errors are
 * `{"error":{"message","type","code"}}`. Model names are llmspell specs.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import type { ChatMessage, Completion, GenerateEvent, GenerateRequest, ResponseFormat, ToolChoice, ToolDefinition } from "../domain/Types.js"
import { listedAliases } from "./Aliases.js"
import { modelsList } from "./AnthropicApi.js"
import { decodeBody, HttpFailure, json, readJson, sse, toHttpFailure } from "./Http.js"
import { checkSpec, noteTokens, type RouteContext, type RouteEnv, servedName, started } from "./Routes.js"

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** Message content: a string or an array of parts (only text parts are served). */
const Content = Schema.NullOr(Schema.Union(
  Schema.String,
  Schema.Array(Schema.Struct({ type: Schema.String, text: Schema.optional(Schema.String) }))
))

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

const Sampling = {
  model: Schema.optional(Schema.String),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  temperature: Schema.optional(Schema.NullOr(Schema.Number)),
  top_p: Schema.optional(Schema.NullOr(Schema.Number)),
  seed: Schema.optional(Schema.NullOr(Schema.Number))
}

const ChatBody = Schema.Struct({
  ...Sampling,
  messages: Schema.Array(ChatMessageWire),
  stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) }))),
  max_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  max_completion_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  stop: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Array(Schema.String)))),
  tools: Schema.optional(Schema.NullOr(Schema.Array(FunctionTool))),
  tool_choice: Schema.optional(Schema.NullOr(ToolChoiceWire)),
  response_format: Schema.optional(Schema.NullOr(ResponseFormatWire)),
  n: Schema.optional(Schema.NullOr(Schema.Literal(1))),
  reasoning_effort: Schema.optional(Schema.NullOr(Schema.String))
})

const EmbeddingsBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  input: Schema.Union(Schema.String, Schema.Array(Schema.String)),
  encoding_format: Schema.optional(Schema.Literal("float", "base64")),
  dimensions: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive()))
})

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
  ...Sampling,
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
    format: Schema.optional(Schema.Union(
      Schema.Struct({ type: Schema.Literal("text") }),
      Schema.Struct({ type: Schema.Literal("json_object") }),
      Schema.Struct({ type: Schema.Literal("json_schema"), name: Schema.optional(Schema.String), schema: JsonObject })
    ))
  })))
})

const id = (prefix: string) => `${prefix}${randomBytes(12).toString("hex")}`

const seconds = () => Math.floor(Date.now() / 1000)

const textOf = (content: typeof Content.Type | undefined): Either.Either<string, string> => {
  if (content == null) return Either.right("")
  if (typeof content === "string") return Either.right(content)
  const other = content.find((p) => p.type !== "text" && p.type !== "input_text" && p.type !== "output_text")
  if (other !== undefined) return Either.left(`content parts of type ${JSON.stringify(other.type)} are not supported by llmspell serve`)
  return Either.right(content.map((p) => p.text ?? "").join(""))
}

const safeParse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const finishReason = (completion: Completion) =>
  completion.finishReason === "tool-calls" ? "tool_calls" : completion.finishReason === "length" ? "length" : "stop"

const usage = (completion: Completion) => ({
  prompt_tokens: completion.usage.promptTokens,
  completion_tokens: completion.usage.completionTokens,
  total_tokens: completion.usage.totalTokens
})

const fail = (message: string) => Effect.fail(new HttpFailure(400, message))
const fromEither = <A>(either: Either.Either<A, string>) => Either.match(either, { onLeft: fail, onRight: Effect.succeed })

/** OpenAI's chat messages → ours (system and developer are both system prompts). */
const toMessages = (messages: ReadonlyArray<typeof ChatMessageWire.Type>): Either.Either<Array<ChatMessage>, string> => {
  const out: Array<ChatMessage> = []
  const names = new Map<string, string>()
  for (const m of messages) {
    const text = textOf(m.content)
    if (Either.isLeft(text)) return Either.left(text.left)
    const content = text.right
    switch (m.role) {
      case "system":
      case "developer":
        out.push({ role: "system", content })
        break
      case "user":
        out.push({ role: "user", content })
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

const toolDefinition = (name: string, description: string | null | undefined, parameters: Record<string, unknown> | null | undefined): ToolDefinition => ({
  name,
  ...(description != null ? { description } : {}),
  parameters: parameters ?? { type: "object", properties: {} }
})

const optional = <K extends string, V>(key: K, value: V | null | undefined): { [P in K]?: V } =>
  (value != null ? { [key]: value } : {}) as { [P in K]?: V }

/** The OpenAI routes, over a RouteContext. */
export const routes = (ctx: RouteContext): HttpRouter.HttpRouter<never, never> => {
  const body = <A, I>(schema: Schema.Schema<A, I>) => Effect.flatMap(readJson(ctx), decodeBody(schema))

  /** Errors as OpenAI sends them. */
  const handle = <E>(effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, RouteEnv>) =>
    Effect.catchAll(effect, (e) => {
      const failure = toHttpFailure(e)
      const code = failure.status === 404 ? "model_not_found" : failure.status === 401 ? "invalid_api_key" : null
      return Effect.succeed(json(
        { error: { message: failure.message, type: failure.status === 404 ? "invalid_request_error" : failure.type, param: null, code } },
        failure.status,
        failure.headers
      ))
    })

  /** Runs a generation with a slot: its events from the first one on (failures before that get a status). */
  const run = (spec: string, request: GenerateRequest) =>
    Effect.zipRight(ctx.admission.enter, started(ctx.llm.generate(spec, request)))

  const lastCompletion = (events: Stream.Stream<GenerateEvent, unknown>) =>
    Effect.flatMap(Stream.runCollect(events), (all) => {
      const last = [...all].at(-1)
      return last?._tag === "Finish"
        ? Effect.as(noteTokens(last.completion.usage.totalTokens), last.completion)
        : Effect.fail(new HttpFailure(500, "the generation ended without a completion"))
    })

  // every model as its spec, then the [serve.aliases] names; Anthropic's shape for its clients (they send anthropic-version)
  const models = handle(Effect.gen(function*() {
    const list = yield* ctx.llm.list("all")
    const entries = [
      ...list.models.map((m) => ({
        id: servedName(m),
        created: m.modifiedAt !== undefined ? Math.floor(Date.parse(m.modifiedAt) / 1000) || 0 : 0,
        owned_by: m.instance
      })),
      ...listedAliases(ctx.aliases ?? []).map((a) => ({ id: a.name, created: 0, owned_by: `alias of ${a.spec}` }))
    ]
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.headers["anthropic-version"] !== undefined) return json(modelsList(entries))
    return json({ object: "list", data: entries.map((e) => ({ id: e.id, object: "model", created: e.created, owned_by: e.owned_by })) })
  }))

  const chat = handle(Effect.gen(function*() {
    const b = yield* body(ChatBody)
    const spec = yield* checkSpec(ctx, b.model)
    const messages = yield* fromEither(toMessages(b.messages))
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
      ...optional("temperature", b.temperature),
      ...optional("topP", b.top_p),
      ...optional("seed", b.seed),
      ...(stop !== undefined && stop.length > 0 ? { stop } : {}),
      ...(tools.length > 0 ? { tools } : {}),
      ...(choice !== undefined && (tools.length > 0 || choice === "none") ? { toolChoice: choice } : {}),
      ...(format !== undefined ? { responseFormat: format } : {}),
      ...(b.reasoning_effort != null ? { reasoning: b.reasoning_effort !== "none" } : {})
    }
    const events = yield* run(spec, request)
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
    return sse(body$)
  }))

  const embeddings = handle(Effect.gen(function*() {
    const b = yield* body(EmbeddingsBody)
    const spec = yield* checkSpec(ctx, b.model)
    const inputs = typeof b.input === "string" ? [b.input] : b.input
    if (inputs.length === 0) return yield* fail("input must not be empty")
    yield* ctx.admission.enter
    const result = yield* ctx.llm.embed(spec, inputs)
    yield* noteTokens(result.promptTokens)
    const vectors = b.dimensions !== undefined ? result.vectors.map((v) => v.slice(0, b.dimensions)) : result.vectors
    return json({
      object: "list",
      data: vectors.map((v, index) => ({
        object: "embedding",
        index,
        embedding: b.encoding_format === "base64" ? Buffer.from(new Float32Array(v).buffer).toString("base64") : v
      })),
      model: spec,
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens }
    })
  }))

  const responses = handle(Effect.gen(function*() {
    const b = yield* body(ResponsesBody)
    const spec = yield* checkSpec(ctx, b.model)
    const messages: Array<ChatMessage> = []
    if (b.instructions != null && b.instructions !== "") messages.push({ role: "system", content: b.instructions })
    if (typeof b.input === "string") messages.push({ role: "user", content: b.input })
    else {
      const names = new Map<string, string>()
      for (const item of b.input) {
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
          messages.push({
            role: "tool",
            content: typeof item.output === "string" ? item.output : JSON.stringify(item.output),
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
    const tools = (b.tools ?? []).flatMap((t) =>
      t.type === "function" && t.name !== undefined ? [toolDefinition(t.name, t.description, t.parameters)] : []
    )
    const choice: ToolChoice | undefined = b.tool_choice == null
      ? undefined
      : typeof b.tool_choice === "string"
      ? b.tool_choice
      : { tool: b.tool_choice.name }
    const f = b.text?.format
    const format: ResponseFormat | undefined = f === undefined || f.type === "text"
      ? undefined
      : f.type === "json_object"
      ? "json"
      : { schema: f.schema, ...optional("name", f.name) }
    const request: GenerateRequest = {
      messages,
      ...optional("maxTokens", b.max_output_tokens),
      ...optional("temperature", b.temperature),
      ...optional("topP", b.top_p),
      ...optional("seed", b.seed),
      ...(tools.length > 0 ? { tools } : {}),
      ...(choice !== undefined && (tools.length > 0 || choice === "none") ? { toolChoice: choice } : {}),
      ...(format !== undefined ? { responseFormat: format } : {})
    }
    const events = yield* run(spec, request)
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
            input_tokens_details: { cached_tokens: 0 },
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
    return sse(body$)
  }))

  return HttpRouter.empty.pipe(
    HttpRouter.get("/v1/models", models),
    HttpRouter.post("/v1/chat/completions", chat),
    HttpRouter.post("/v1/embeddings", embeddings),
    HttpRouter.post("/v1/responses", responses)
  ) as unknown as HttpRouter.HttpRouter<never, never>
}

/**
 * OpenAI's `/v1/responses` in front of LocalLLM, stateless, as coding agents use it: Codex through
 * a `wire_api = "responses"` provider (openai/codex `codex-rs/codex-api`: `ResponsesApiRequest`,
 * and the events its `sse/responses.rs` reads), the `openai` client's `responses.create` and
 * `responses.stream`, and `@effect/ai-openai`'s OpenAiLanguageModel.
 *
 * - Input: messages (system, developer, user, assistant; text parts), `function_call` and
 *   `function_call_output` items (joined by `call_id`), and `reasoning` items, which are accepted
 *   and not re-sent to the model (chat templates drop earlier turns' thinking; `ChatMessage` has no
 *   place for it). Anything that needs stored state or a built-in tool is refused naming the item.
 * - Output: a `reasoning` item whose `content` is the model's thinking as `reasoning_text` (no
 *   summary is made up; `encrypted_content` is null, nothing here is encrypted), `message` items
 *   and `function_call` items with a `call_id` unique to the call.
 * - Streaming: `response.created`, `response.in_progress`, then per item `output_item.added`,
 *   its content part / text or argument deltas and `.done` events, `output_item.done`, and one of
 *   `response.completed` / `response.incomplete` / `response.failed`; every event named
 *   (`event:`) and numbered (`sequence_number`), no `[DONE]` (the Responses API has none).
 * - Nothing is stored: the response says `store: false`, and `previous_response_id` is refused.
 */
import { IMAGE_LIMITS, imagesProblem, parseDataUrl } from "../domain/Images.js"
import type { ImageInput } from "../domain/Types.js"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { isLlmspellError } from "../domain/Errors.js"
import { JSON_LIMITS, nestedDeeperThan } from "../domain/JsonLimits.js"
import type { ChatMessage, Completion, GenerateRequest, ResponseFormat, ToolCall, ToolChoice } from "../domain/Types.js"
import { toApiFailure } from "./ApiTerms.js"
import { decodeBody, HttpFailure, json } from "./Http.js"
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
  toolDefinition
} from "./OpenAiWire.js"
import { fetchAll, isHttpUrl } from "./ImageFetch.js"
import { OPENAI_RESPONSES_FIELDS } from "./RequestFields.js"
import { checkSpec, noteTokens, type RouteContext } from "./Routes.js"

/** A content part of a message or of a function call's output. */
const ContentPart = Schema.Struct({
  type: Schema.String,
  text: Schema.optional(Schema.String),
  refusal: Schema.optional(Schema.String),
  /** `input_image`: a `data:` URL (this server fetches no http(s) URL and stores no files). */
  image_url: Schema.optional(Schema.NullOr(Schema.String)),
  file_id: Schema.optional(Schema.NullOr(Schema.String))
})

/** A user message's `input_image` parts as images, or why one cannot be served. */
const partsImages = (parts: ReadonlyArray<typeof ContentPart.Type>, where: string): Either.Either<Array<ImageInput>, string> => {
  const images: Array<ImageInput> = []
  for (const [j, part] of parts.entries()) {
    if (part.type !== "input_image") continue
    if (part.image_url == null) return Either.left(`${where}[${j}].image_url: an input_image needs a data:image/…;base64,… URL (file_id is not supported: this server stores no files)`)
    const image = parseDataUrl(part.image_url)
    if (typeof image === "string") return Either.left(`${where}[${j}].image_url: ${image}`)
    images.push(image)
  }
  return Either.right(images)
}

/**
 * `--allow-image-urls`: the user messages' http(s) `input_image` URLs fetched together and
 * replaced by their `data:` URLs (ImageFetch), or a 400 naming the part
 * (`input.0.content.1.image_url`) and why. Each user message item is decoded first, so a malformed
 * request costs no fetch.
 */
const withFetchedImages = (ctx: RouteContext, input: ReadonlyArray<unknown>) =>
  Effect.gen(function*() {
    const jobs: Array<{ url: string; field: string }> = []
    const decoded = new Map<number, typeof MessageItem.Type>()
    for (const [index, raw] of input.entries()) {
      if (itemType(raw) !== "message") continue
      const item = yield* decodeItem(MessageItem, raw, index)
      if (item.role !== "user" || typeof item.content === "string") continue
      decoded.set(index, item)
      for (const [j, part] of item.content.entries()) {
        if (part.type === "input_image" && part.image_url != null && isHttpUrl(part.image_url)) {
          jobs.push({ url: part.image_url, field: `input.${index}.content.${j}.image_url` })
        }
      }
    }
    if (jobs.length === 0) return input
    const images = yield* fetchAll(jobs, ctx.imageFetch).pipe(Effect.mapError((why) => new HttpFailure(400, why)))
    let next = 0
    return input.map((raw, index) => {
      const item = decoded.get(index)
      if (item === undefined || typeof item.content === "string") return raw
      return {
        ...item,
        content: item.content.map((part) => {
          if (!(part.type === "input_image" && part.image_url != null && isHttpUrl(part.image_url))) return part
          const image = images[next++]!
          return { ...part, image_url: `data:${image.mediaType};base64,${image.data}` }
        })
      }
    })
  })

/** The input_image parts of the raw input items (counted before any URL is fetched). */
const inputImageCount = (input: ReadonlyArray<unknown>) =>
  input.reduce<number>((n, item) => {
    const content = (item as { content?: unknown } | null)?.content
    return n + (Array.isArray(content) ? content.filter((p) => (p as { type?: unknown } | null)?.type === "input_image").length : 0)
  }, 0)

const MessageItem = Schema.Struct({
  type: Schema.optional(Schema.Literal("message")),
  role: Schema.Literal("system", "developer", "user", "assistant"),
  content: Schema.Union(Schema.String, Schema.Array(ContentPart))
})

const FunctionCallItem = Schema.Struct({
  type: Schema.Literal("function_call"),
  call_id: Schema.String,
  name: Schema.String,
  arguments: Schema.String
})

const FunctionCallOutputItem = Schema.Struct({
  type: Schema.Literal("function_call_output"),
  call_id: Schema.String,
  output: Schema.Unknown
})

const ReasoningItem = Schema.Struct({
  type: Schema.Literal("reasoning"),
  summary: Schema.optional(Schema.Array(ContentPart)),
  content: Schema.optional(Schema.NullOr(Schema.Array(ContentPart))),
  encrypted_content: Schema.optional(Schema.NullOr(Schema.String))
})

const Tool = Schema.Struct({
  type: Schema.String,
  name: Schema.optional(Schema.String),
  description: Schema.optional(Schema.NullOr(Schema.String)),
  parameters: Schema.optional(Schema.NullOr(JsonObject)),
  strict: Schema.optional(Schema.NullOr(Schema.Boolean))
})

const ToolChoiceWire = Schema.Union(
  Schema.Literal("none", "auto", "required"),
  Schema.Struct({
    type: Schema.String,
    name: Schema.optional(Schema.String),
    mode: Schema.optional(Schema.Literal("auto", "required")),
    tools: Schema.optional(Schema.Array(Schema.Struct({ type: Schema.String, name: Schema.optional(Schema.String) })))
  })
)

const ResponsesBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  ...SamplingWire,
  // each item is decoded on its own below, so that an error names `input[i]`
  input: Schema.Union(Schema.String, Schema.Array(Schema.Unknown)),
  instructions: Schema.optional(Schema.NullOr(Schema.String)),
  max_output_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  tools: Schema.optional(Schema.NullOr(Schema.Array(Tool))),
  tool_choice: Schema.optional(Schema.NullOr(ToolChoiceWire)),
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
  }))),
  // echoed in the response, as OpenAI does
  metadata: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown }))),
  prompt_cache_key: Schema.optional(Schema.NullOr(Schema.String))
})
type ResponsesBody = typeof ResponsesBody.Type

/** The Responses API's words for the request's fields. */
const terms = openAiTerms("max_output_tokens", "text.format.schema", "text.format {\"type\": \"json_object\"}")

const TEXT_PARTS = new Set(["input_text", "output_text", "text"])

/** The text of content parts, or why one cannot be served (`where` names the item). */
const partsText = (parts: ReadonlyArray<typeof ContentPart.Type>, where: string, imagesTaken = false): Either.Either<string, string> => {
  let text = ""
  for (const [j, part] of parts.entries()) {
    if (TEXT_PARTS.has(part.type)) text += part.text ?? ""
    else if (part.type === "input_image" && imagesTaken) continue
    else if (part.type === "refusal") text += part.refusal ?? ""
    else {
      return Either.left(`${where}[${j}]: content parts of type ${JSON.stringify(part.type)} are not supported by llmspell serve (it serves text)`)
    }
  }
  return Either.right(text)
}

/**
 * A function call's output as the tool message's text: a string as it is, text parts as their
 * text, anything else as JSON; or why it cannot be served (an image part, JSON nested too deep).
 */
const outputText = (output: unknown, where: string): Either.Either<string, string> => {
  if (typeof output === "string") return Either.right(output)
  if (Array.isArray(output) && output.every((p) => typeof p === "object" && p !== null && typeof (p as { type?: unknown }).type === "string")) {
    return partsText(output as ReadonlyArray<typeof ContentPart.Type>, where)
  }
  return nestedDeeperThan(output, JSON_LIMITS.maxDepth)
    ? Either.left(`${where}: a function call's output nests deeper than ${JSON_LIMITS.maxDepth} levels of JSON`)
    : Either.right(JSON.stringify(output) ?? "null")
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** What an input item is: its `type`, or `message` for the `{ role, content }` shorthand. */
const itemType = (item: unknown): string | undefined =>
  !isRecord(item) ? undefined : typeof item["type"] === "string" ? item["type"] : item["role"] !== undefined ? "message" : undefined

/** Decodes one input item with its schema; an error names `input[i]`. */
const decodeItem = <A, I>(schema: Schema.Schema<A, I>, item: unknown, index: number) =>
  Effect.mapError(decodeBody(schema)(item), (e) =>
    new HttpFailure(400, e.message.replace(/^invalid request: /, `invalid request: input[${index}]: `)))

/** The input items as chat messages, the instructions first. */
const inputMessages = (ctx: RouteContext, b: ResponsesBody) =>
  Effect.gen(function*() {
    const messages: Array<ChatMessage> = []
    if (b.instructions != null && b.instructions !== "") messages.push({ role: "system", content: b.instructions })
    if (typeof b.input === "string") {
      messages.push({ role: "user", content: b.input })
      return messages
    }
    const names = new Map<string, string>()
    const fetchUrls = ctx.allowImageUrls === true
    if (fetchUrls && inputImageCount(b.input) > IMAGE_LIMITS.count) {
      return yield* fail(`input: input_image parts: at most ${IMAGE_LIMITS.count} images in one request`)
    }
    const input = fetchUrls ? yield* withFetchedImages(ctx, b.input) : b.input
    for (const [index, raw] of input.entries()) {
      const type = itemType(raw)
      switch (type) {
        case "message": {
          const item = yield* decodeItem(MessageItem, raw, index)
          const where = `input[${index}].content`
          const images = item.role === "user" && typeof item.content !== "string" ? partsImages(item.content, where) : Either.right([])
          if (Either.isLeft(images)) return yield* fail(images.left)
          const text = typeof item.content === "string" ? Either.right(item.content) : partsText(item.content, where, item.role === "user")
          if (Either.isLeft(text)) return yield* fail(text.left)
          messages.push({
            role: item.role === "developer" ? "system" : item.role,
            content: text.right,
            ...(images.right.length > 0 ? { images: images.right } : {})
          })
          break
        }
        case "function_call": {
          const item = yield* decodeItem(FunctionCallItem, raw, index)
          names.set(item.call_id, item.name)
          const call: ToolCall = { id: item.call_id, name: item.name, params: safeParse(item.arguments) }
          // an assistant turn is its text and the calls that follow it
          const previous = messages.at(-1)
          if (previous?.role === "assistant") messages[messages.length - 1] = { ...previous, toolCalls: [...(previous.toolCalls ?? []), call] }
          else messages.push({ role: "assistant", content: "", toolCalls: [call] })
          break
        }
        case "function_call_output": {
          const item = yield* decodeItem(FunctionCallOutputItem, raw, index)
          const text = outputText(item.output, `input[${index}].output`)
          if (Either.isLeft(text)) return yield* fail(text.left)
          const toolName = names.get(item.call_id)
          messages.push({ role: "tool", content: text.right, toolCallId: item.call_id, ...(toolName !== undefined ? { toolName } : {}) })
          break
        }
        case "reasoning":
          // checked, not re-sent: see the module comment
          yield* decodeItem(ReasoningItem, raw, index)
          break
        case "item_reference":
          return yield* fail(`input[${index}]: an item_reference points at a stored item, and llmspell serve stores none; send the item itself`)
        case undefined:
          return yield* fail(`input[${index}]: an input item needs a type (or a role, for a message)`)
        default:
          return yield* fail(
            `input[${index}]: items of type ${JSON.stringify(type)} are not supported by llmspell serve, which runs function tools only ` +
              "(it takes messages, function_call, function_call_output and reasoning items)"
          )
      }
    }
    return messages
  })

/** The tools and tool choice as the request's; a built-in tool or choice is refused, never dropped. */
const toolsOf = (b: ResponsesBody) =>
  Effect.gen(function*() {
    let wire = b.tools ?? []
    const builtIn = wire.find((t) => t.type !== "function" || t.name === undefined)
    if (builtIn !== undefined) {
      return yield* fail(
        `tools: a ${JSON.stringify(builtIn.type)} tool is not supported by llmspell serve; only function tools (with a name) are` +
          (builtIn.type.startsWith("web_search") ? " (Codex sends its hosted web search unless its config says web_search = \"disabled\")" : "")
      )
    }
    let choice: ToolChoice | undefined
    const c = b.tool_choice
    if (c == null) choice = undefined
    else if (typeof c === "string") choice = c
    else if (c.type === "function" && c.name !== undefined) choice = { tool: c.name }
    else if (c.type === "allowed_tools" && c.mode !== undefined && c.tools !== undefined) {
      // a subset of the tools, in mode auto or required: the others are not offered
      const allowed = new Set(c.tools.map((t) => t.name))
      wire = wire.filter((t) => allowed.has(t.name))
      choice = c.mode
    } else {
      return yield* fail(
        `tool_choice: ${JSON.stringify(c).slice(0, 80)} is not supported by llmspell serve; ` +
          "it takes \"none\", \"auto\", \"required\", a function by name or allowed_tools"
      )
    }
    const tools = wire.map((t) => toolDefinition(t.name!, t.description, t.parameters))
    return {
      tools,
      // `auto` without tools asks for nothing; any other choice is checked against the tools
      choice: choice === "auto" && tools.length === 0 ? undefined : choice
    }
  })

/** Optional usage fields a backend may report (cached prompt tokens, thinking tokens). */
type UsageExtras = { readonly cachedPromptTokens?: number; readonly reasoningTokens?: number }

/** The Responses API's usage, with the cached and reasoning token counts (0 when not reported). */
const usageOf = (completion: Completion) => {
  const usage = completion.usage as Completion["usage"] & UsageExtras
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedPromptTokens ?? 0 },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens ?? 0 },
    total_tokens: usage.totalTokens
  }
}

/** The Responses API's error code for a failure (what Codex reads: `context_length_exceeded`). */
const errorCode = (e: unknown, status: number): string =>
  isLlmspellError(e) && e._tag === "ContextOverflow"
    ? "context_length_exceeded"
    : status === 429 || status === 503
    ? "rate_limit_exceeded"
    : status < 500
    ? "invalid_prompt"
    : "server_error"

const encoder = new TextEncoder()

/** Server-sent events as the Responses API sends them: `event: <type>` and its data, no `[DONE]`. */
const responseEvents = (events: Stream.Stream<Record<string, unknown>>) =>
  HttpServerResponse.stream(
    Stream.map(events, (e) => encoder.encode(`event: ${String(e["type"])}\ndata: ${JSON.stringify(e)}\n\n`)),
    { contentType: "text/event-stream", headers: { "cache-control": "no-cache" } }
  )

/** `POST /v1/responses`. */
export const responses = (ctx: RouteContext) =>
handle(terms)(Effect.gen(function*() {
  const b = yield* body(ctx, ResponsesBody, OPENAI_RESPONSES_FIELDS)
  const spec = yield* checkSpec(ctx, b.model)
  const messages = yield* inputMessages(ctx, b)
  const imageProblem = imagesProblem(messages, (m, i) => `input: image #${i + 1} of message ${m}`, "input: input_image parts")
  if (imageProblem !== undefined) return yield* fail(imageProblem)
  const { choice, tools } = yield* toolsOf(b)
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
    ...(choice !== undefined ? { toolChoice: choice } : {}),
    ...(format !== undefined ? { responseFormat: format } : {})
  }
  const events = yield* run(ctx, spec, request)
  const responseId = id("resp_")
  const created = seconds()

  /** The response object, echoing the request's settings as OpenAI does. */
  const envelope = (
    status: "in_progress" | "completed" | "incomplete" | "failed",
    output: ReadonlyArray<unknown>,
    completion?: Completion,
    error?: { readonly code: string; readonly message: string }
  ) => ({
    id: responseId,
    object: "response",
    created_at: created,
    status,
    background: false,
    error: error ?? null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    metadata: b.metadata ?? {},
    model: spec,
    output,
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    previous_response_id: null,
    prompt_cache_key: b.prompt_cache_key ?? null,
    reasoning: { effort: b.reasoning?.effort ?? null, summary: b.reasoning?.summary ?? null },
    service_tier: "default",
    store: false,
    temperature: b.temperature ?? null,
    text: { format: b.text?.format ?? { type: "text" } },
    tool_choice: b.tool_choice ?? "auto",
    tools: b.tools ?? [],
    top_p: b.top_p ?? null,
    truncation: "disabled",
    usage: completion !== undefined ? usageOf(completion) : null
  })

  type ItemStatus = "in_progress" | "completed" | "incomplete"
  const messageItem = (itemId: string, text: string, status: ItemStatus) => ({
    type: "message",
    id: itemId,
    status,
    role: "assistant",
    content: status === "in_progress" ? [] : [{ type: "output_text", text, annotations: [] }]
  })
  const reasoningItem = (itemId: string, text: string, status: ItemStatus) => ({
    type: "reasoning",
    id: itemId,
    status,
    summary: [],
    content: status === "in_progress" ? [] : [{ type: "reasoning_text", text }],
    encrypted_content: null
  })
  const callItem = (call: ToolCall, status: ItemStatus) => ({
    type: "function_call",
    id: `fc_${call.id}`,
    call_id: call.id,
    name: call.name,
    arguments: status === "in_progress" ? "" : JSON.stringify(call.params),
    status
  })
  // A fresh call_id per call: backends number their calls per answer (GGUF's call_1, call_2), and
  // an agent keys each result by its call's id across the whole conversation.
  const withFreshId = (call: ToolCall): ToolCall => ({ ...call, id: id("call_") })
  const statusOf = (completion: Completion) => (completion.finishReason === "length" ? "incomplete" as const : "completed" as const)

  if (b.stream !== true) {
    const completion = yield* lastCompletion(events)
    const status = statusOf(completion)
    const calls = (completion.toolCalls ?? []).map(withFreshId)
    const output = [
      ...(completion.reasoning !== undefined && completion.reasoning !== "" ? [reasoningItem(id("rs_"), completion.reasoning, status)] : []),
      ...(completion.text !== "" || calls.length === 0 ? [messageItem(id("msg_"), completion.text, status)] : []),
      ...calls.map((call) => callItem(call, "completed"))
    ]
    return json({ ...envelope(status, output, completion), output_text: completion.text })
  }

  // The stream: one item open at a time (reasoning or a message); a tool call or the end closes it.
  let sequence = 0
  const next = (event: Record<string, unknown>) => ({ type: event["type"], sequence_number: sequence++, ...event })
  const done: Array<unknown> = []
  let open: { readonly kind: "message" | "reasoning"; readonly id: string; readonly index: number; text: string } | undefined

  const openItem = (kind: "message" | "reasoning"): Array<Record<string, unknown>> => {
    const item = { kind, id: id(kind === "message" ? "msg_" : "rs_"), index: done.length, text: "" }
    open = item
    return [
      next({
        type: "response.output_item.added",
        output_index: item.index,
        item: kind === "message" ? messageItem(item.id, "", "in_progress") : reasoningItem(item.id, "", "in_progress")
      }),
      next({
        type: "response.content_part.added",
        item_id: item.id,
        output_index: item.index,
        content_index: 0,
        part: kind === "message" ? { type: "output_text", text: "", annotations: [] } : { type: "reasoning_text", text: "" }
      })
    ]
  }
  const closeItem = (status: ItemStatus = "completed"): Array<Record<string, unknown>> => {
    const item = open
    if (item === undefined) return []
    open = undefined
    const where = { item_id: item.id, output_index: item.index, content_index: 0 }
    const whole = item.kind === "message" ? messageItem(item.id, item.text, status) : reasoningItem(item.id, item.text, status)
    done.push(whole)
    return [
      item.kind === "message"
        ? next({ type: "response.output_text.done", ...where, text: item.text, logprobs: [] })
        : next({ type: "response.reasoning_text.done", ...where, text: item.text }),
      next({
        type: "response.content_part.done",
        ...where,
        part: item.kind === "message" ? { type: "output_text", text: item.text, annotations: [] } : { type: "reasoning_text", text: item.text }
      }),
      next({ type: "response.output_item.done", output_index: item.index, item: whole })
    ]
  }
  const delta = (kind: "message" | "reasoning", text: string): Array<Record<string, unknown>> => {
    const opening = open?.kind === kind ? [] : [...closeItem(), ...openItem(kind)]
    open!.text += text
    return [
      ...opening,
      kind === "message"
        ? next({ type: "response.output_text.delta", item_id: open!.id, output_index: open!.index, content_index: 0, delta: text, logprobs: [] })
        : next({ type: "response.reasoning_text.delta", item_id: open!.id, output_index: open!.index, content_index: 0, delta: text })
    ]
  }

  const body$ = events.pipe(
    Stream.mapConcatEffect((event): Effect.Effect<Array<Record<string, unknown>>> => {
      switch (event._tag) {
        case "TextDelta":
          return Effect.succeed(event.text === "" ? [] : delta("message", event.text))
        case "ReasoningDelta":
          return Effect.succeed(event.text === "" ? [] : delta("reasoning", event.text))
        case "ToolCall": {
          const closing = closeItem()
          const index = done.length
          const call = withFreshId(event.call)
          const item = callItem(call, "completed")
          done.push(item)
          return Effect.succeed([
            ...closing,
            next({ type: "response.output_item.added", output_index: index, item: callItem(call, "in_progress") }),
            next({ type: "response.function_call_arguments.delta", item_id: item.id, output_index: index, delta: item.arguments }),
            next({ type: "response.function_call_arguments.done", item_id: item.id, output_index: index, arguments: item.arguments }),
            next({ type: "response.output_item.done", output_index: index, item })
          ])
        }
        case "Finish": {
          const status = statusOf(event.completion)
          // an answer with nothing in it is still one (empty) message, as unstreamed
          const empty = done.length === 0 && open === undefined ? openItem("message") : []
          const closing = closeItem(status === "incomplete" ? "incomplete" : "completed")
          return Effect.as(noteTokens(event.completion.usage.totalTokens), [
            ...empty,
            ...closing,
            next({ type: `response.${status}`, response: envelope(status, [...done], event.completion) })
          ])
        }
      }
    }),
    // a failure after the first event: the open item ends incomplete, then the Responses API's
    // own end, response.failed (Codex reads its error code)
    Stream.catchAll((e) => {
      const failure = toApiFailure(terms)(e)
      return Stream.sync(() => [
        ...closeItem("incomplete"),
        next({
          type: "response.failed",
          response: envelope("failed", [...done], undefined, { code: errorCode(e, failure.status), message: failure.message })
        })
      ]).pipe(Stream.flattenIterables)
    })
  )
  return responseEvents(Stream.concat(
    Stream.sync(() => [
      next({ type: "response.created", response: envelope("in_progress", []) }),
      next({ type: "response.in_progress", response: envelope("in_progress", []) })
    ]).pipe(Stream.flattenIterables),
    body$
  ))
}))

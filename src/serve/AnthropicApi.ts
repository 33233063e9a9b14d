/**
 * Anthropic's Messages API in front of LocalLLM, for every model the server runs (GGUF, Ollama,
 * cloud): `POST /v1/messages` (a message, or server-sent events in Anthropic's order:
 * `message_start`, then per block `content_block_start` / `content_block_delta` (`text_delta`,
 * `thinking_delta` + `signature_delta`, `input_json_delta`) / `content_block_stop`, a `ping` after
 * the first block starts, `message_delta` with the stop reason and the whole usage, `message_stop`)
 * and `POST /v1/messages/count_tokens`, plus `GET /v1/models` in Anthropic's shape for clients that
 * send `anthropic-version`. The wire format is `domain/AnthropicWire.ts`; the request mapping
 * `AnthropicRequest.ts`. Errors are `{"type":"error","error":{type,message}}` with Anthropic's status
 * codes (`request_too_large` 413, `overloaded_error` 529, …); a prompt longer than the context is
 * `invalid_request_error` "prompt is too long: N tokens > M maximum", never cut.
 *
 * Usage: `input_tokens` is the prompt evaluated for this request, `cache_read_input_tokens` the
 * part of it read from the model's cache (0 until a backend reports reuse), and
 * `cache_creation_input_tokens` 0: writing the cache costs nothing more here. `message_start`
 * carries zeros (the counts are known at the end); `message_delta` carries every count, which
 * clients take as the totals. Model names are llmspell specs or `[serve.aliases]`; the answer
 * names the model as the client asked for it.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import * as Wire from "../domain/AnthropicWire.js"
import { type ContextOverflow, isLlmspellError, type LlmspellError, UnsupportedOperation } from "../domain/Errors.js"
import { aliasAdvice, findAlias, type ModelAlias } from "../domain/ModelAliases.js"
import * as Protocol from "../domain/Protocol.js"
import type { CountTokensError } from "../services/LocalLLM.js"
import type { Completion, GenerateEvent, GenerateRequest, Usage } from "../domain/Types.js"
import { lackedCapability } from "../layers/ollama/ollamaMapping.js"
import { imageTokens, type MappedRequest, toGenerateRequest } from "./AnthropicRequest.js"
import { type ApiTerms, toApiFailure } from "./ApiTerms.js"
import { HttpFailure, json, readJson } from "./Http.js"
import { fetchAll, isHttpUrl } from "./ImageFetch.js"
import { hasImages, IMAGE_LIMITS } from "../domain/Images.js"
import { ANTHROPIC_COUNT_TOKENS_FIELDS, ANTHROPIC_MESSAGES_FIELDS, checkedBody, type FieldTable, refusedField } from "./RequestFields.js"
import { checkSpec, noteTokens, type RouteContext, type RouteEnv, started } from "./Routes.js"

/** True for the paths of this API (their refusals are worded in its shape). */
export const isAnthropicPath = (path: string): boolean => path === "/v1/messages" || path.startsWith("/v1/messages/")

const id = (prefix: string) => `${prefix}${randomBytes(12).toString("hex")}`

/** An error answer in Anthropic's shape, with its status and a `request-id`. */
export const errorResponse = (type: Wire.ErrorType, message: string, headers: Record<string, string> = {}) => {
  const requestId = id("req_")
  const body: Wire.ErrorResponse = { type: "error", error: { type, message }, request_id: requestId }
  return json(body, Wire.STATUS_OF_ERROR[type], { "request-id": requestId, ...headers })
}

/** A failure the server words before any route (no such route, shutting down, a refusal) in Anthropic's shape. */
export const failureResponse = (failure: HttpFailure) => errorResponse(typeOfStatus(failure.status), failure.message, failure.headers)

/** The answer to a request without the server's key. */
export const unauthorized = () =>
  errorResponse("authentication_error", "invalid x-api-key: send the server's API key as x-api-key or as Authorization: Bearer", {
    "www-authenticate": "Bearer"
  })

/** Anthropic's words for a prompt over the context; exact where the backend counted it. */
const tooLong = (e: ContextOverflow): string => {
  if (e.contextSize === undefined) return `prompt is too long: it does not fit ${e.model}'s context`
  // GGUF refuses a prompt that leaves no room for one token of answer and one free
  // (src/layers/gguf: room = context - prompt - 1 must be ≥ 1), so its largest prompt is context - 2
  if (e.backend === "gguf" && e.promptTokens !== undefined) {
    return `prompt is too long: ${e.promptTokens} tokens > ${e.contextSize - 2} maximum`
  }
  // Ollama cuts a long prompt to its context and only says that it did (so no exact count)
  return `prompt is too long: more than ${e.contextSize - 1} tokens, ${e.model}'s context is ${e.contextSize}`
}

const typeOfStatus = (status: number): Wire.ErrorType =>
  status === 401
    ? "authentication_error"
    : status === 403
    ? "permission_error"
    : status === 404
    ? "not_found_error"
    : status === 413
    ? "request_too_large"
    : status === 429
    ? "rate_limit_error"
    : status === 503 || status === 409 || status === 529
    ? "overloaded_error"
    : status >= 500
    ? "api_error"
    : "invalid_request_error"

/** The request fields by the Messages API's names, for errors in its terms (never a CLI option). */
const ANTHROPIC_TERMS: ApiTerms = {
  fields: {
    maxTokens: "max_tokens",
    temperature: "temperature",
    topP: "top_p",
    topK: "top_k",
    stop: "stop_sequences",
    tools: "tools",
    toolChoice: "tool_choice",
    parallelToolCalls: "tool_choice.disable_parallel_tool_use",
    responseFormat: "output_config.format",
    reasoning: "thinking",
    reasoningBudget: "thinking.budget_tokens",
    messages: "messages"
  },
  schema: "output_config.format.schema",
  freeJson: "output_config.format with the schema {\"type\":\"object\"}"
}

/** Why a requested model is not found: for an alias, the spec it names; else how to alias the name. */
const notFound = (error: LlmspellError, requested: string | undefined, aliases: ReadonlyArray<ModelAlias>): string => {
  if (requested === undefined) return error.message
  const alias = findAlias(aliases, requested)
  return alias !== undefined
    ? `model: ${requested} is an alias of ${alias.spec} in [serve.aliases], which this server cannot serve: ${error.message}`
    : `model: ${requested}: ${error.message}; ${aliasAdvice(requested)}`
}

/** Any failure of a route as Anthropic's error type, message and headers (no CLI hint: the message only). */
const describeFailure = (
  e: unknown,
  requested: string | undefined,
  aliases: ReadonlyArray<ModelAlias> = []
): { type: Wire.ErrorType; message: string; headers: Record<string, string> } => {
  if (e instanceof HttpFailure) return { type: typeOfStatus(e.status), message: e.message, headers: e.headers }
  if (!isLlmspellError(e)) return { type: "api_error", message: "internal error", headers: {} }
  const error = e as LlmspellError
  switch (error._tag) {
    case "ContextOverflow":
      return { type: "invalid_request_error", message: tooLong(error), headers: {} }
    case "ModelNotFound":
    case "InvalidModelSpec":
      return { type: "not_found_error", message: notFound(error, requested, aliases), headers: {} }
    case "RateLimited":
      return { type: "rate_limit_error", message: error.message, headers: { "retry-after": String(Math.ceil(error.retryAfterSeconds)) } }
    default: {
      // the rest in the Messages API's own field names (max_tokens, output_config.format.schema, …)
      const failure = toApiFailure(ANTHROPIC_TERMS)(error)
      return { type: typeOfStatus(failure.status), message: failure.message, headers: failure.headers }
    }
  }
}

const encoder = new TextEncoder()

const eventBytes = (event: Wire.StreamEvent | typeof Wire.StreamEvent.Encoded) =>
  encoder.encode(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)

/** Server-sent events named after their type; a failure after the first event is an `error` event, then the end. */
const sse = <E>(
  events: Stream.Stream<typeof Wire.StreamEvent.Encoded, E>,
  requested: string,
  headers: Record<string, string>,
  aliases: ReadonlyArray<ModelAlias>
) =>
  HttpServerResponse.stream(
    events.pipe(
      Stream.map(eventBytes),
      Stream.catchAll((e) => {
        const { type, message } = describeFailure(e, requested, aliases)
        return Stream.succeed(eventBytes({ type: "error", error: { type, message } }))
      })
    ),
    { contentType: "text/event-stream", headers: { "cache-control": "no-cache", ...headers } }
  )

/** `GET /v1/models` in Anthropic's shape (one page holding every model). */
export const modelsList = (entries: ReadonlyArray<{ readonly id: string; readonly created: number }>): Wire.ModelsList => ({
  data: entries.map((e) => ({ type: "model", id: e.id, display_name: e.id, created_at: new Date(e.created * 1000).toISOString() })),
  has_more: false,
  first_id: entries[0]?.id ?? null,
  last_id: entries.at(-1)?.id ?? null
})

/** Our usage in Anthropic's fields: the prompt split into evaluated and read from the cache. */
export const usageOf = (usage: Usage): Wire.Usage => {
  const cached = Math.min(usage.cachedPromptTokens ?? 0, usage.promptTokens)
  return {
    input_tokens: usage.promptTokens - cached,
    output_tokens: usage.completionTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached
  }
}

/**
 * Why the answer stopped. A `length` finish because the context ran out (not `max_tokens`) is
 * `model_context_window_exceeded` for a client that opted in with the
 * `model-context-window-exceeded-…` beta, `max_tokens` otherwise (as Anthropic does).
 */
const stopOf = (completion: Completion, contextWindowBeta: boolean): { stop_reason: Wire.StopReason; stop_sequence: string | null } => {
  if ((completion.toolCalls ?? []).length > 0 || completion.finishReason === "tool-calls") return { stop_reason: "tool_use", stop_sequence: null }
  if (completion.finishReason === "length") {
    return { stop_reason: contextWindowBeta && completion.maxTokensCapped !== undefined ? "model_context_window_exceeded" : "max_tokens", stop_sequence: null }
  }
  if (completion.stopSequence !== undefined) return { stop_reason: "stop_sequence", stop_sequence: completion.stopSequence }
  return { stop_reason: "end_turn", stop_sequence: null }
}

/** The blocks of a finished answer: thinking, text, tool calls (at most one with `singleToolUse`), each call with a fresh id. */
const contentOf = (completion: Completion, singleToolUse: boolean): Array<Wire.ContentBlock> => {
  const calls = completion.toolCalls ?? []
  return [
    ...(completion.reasoning !== undefined && completion.reasoning !== ""
      ? [{ type: "thinking" as const, thinking: completion.reasoning, signature: "" }]
      : []),
    ...(completion.text !== "" ? [{ type: "text" as const, text: completion.text, citations: null }] : []),
    ...(singleToolUse ? calls.slice(0, 1) : calls).map((c) => ({ type: "tool_use" as const, id: id("toolu_"), name: c.name, input: c.params ?? {} }))
  ]
}

/**
 * Turns the generation's events into Anthropic's: one open block at a time (text or thinking),
 * closed when another kind of output begins; a tool call is a whole block (its input in one
 * `input_json_delta`); the `Finish` closes the last block and ends the message.
 */
const makeEventWriter = (options: { readonly singleToolUse: boolean; readonly contextWindowBeta: boolean }) => {
  let index = -1
  let open: "text" | "thinking" | undefined
  let pinged = false
  let calls = 0
  const close = (): Array<Wire.StreamEvent> => {
    if (open === undefined) return []
    const kind = open
    open = undefined
    return [
      ...(kind === "thinking" ? [{ type: "content_block_delta" as const, index, delta: { type: "signature_delta" as const, signature: "" } }] : []),
      { type: "content_block_stop", index }
    ]
  }
  const start = (block: Wire.ContentBlock): Array<Wire.StreamEvent> => {
    const events = close()
    index++
    events.push({ type: "content_block_start", index, content_block: block })
    if (!pinged) {
      pinged = true
      events.push({ type: "ping" })
    }
    return events
  }
  return (event: GenerateEvent): Array<Wire.StreamEvent> => {
    switch (event._tag) {
      case "TextDelta": {
        if (event.text === "") return []
        const opening = open === "text" ? [] : start({ type: "text", text: "", citations: null })
        open = "text"
        return [...opening, { type: "content_block_delta", index, delta: { type: "text_delta", text: event.text } }]
      }
      case "ReasoningDelta": {
        if (event.text === "") return []
        const opening = open === "thinking" ? [] : start({ type: "thinking", thinking: "", signature: "" })
        open = "thinking"
        return [...opening, { type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: event.text } }]
      }
      case "ToolCall": {
        if (options.singleToolUse && calls > 0) return []
        calls++
        const events = start({ type: "tool_use", id: id("toolu_"), name: event.call.name, input: {} })
        events.push(
          { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: JSON.stringify(event.call.params ?? {}) } },
          { type: "content_block_stop", index }
        )
        return events
      }
      case "Finish":
        return [
          ...close(),
          {
            type: "message_delta",
            delta: stopOf(event.completion, options.contextWindowBeta),
            usage: usageOf(event.completion.usage)
          },
          { type: "message_stop" }
        ]
    }
  }
}

/** The Anthropic routes, over a RouteContext. */
export const routes = (ctx: RouteContext): HttpRouter.HttpRouter<never, never> => {
  /** Runs a handler; any failure becomes Anthropic's error answer. The requested model is named in a not-found message. */
  const handle = (effect: (requested: { model: string | undefined }) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, RouteEnv>) =>
    Effect.suspend(() => {
      const requested = { model: undefined as string | undefined }
      return Effect.catchAll(effect(requested), (e) => {
        const { type, message, headers } = describeFailure(e, requested.model, ctx.aliases)
        return Effect.succeed(errorResponse(type, message, headers))
      })
    })

  /** The body checked against the route's field table (RequestFields: nothing silently dropped), then decoded. */
  const body = <A, I>(schema: Schema.Schema<A, I>, fields: FieldTable) =>
    Effect.flatMap(readJson(ctx), (raw) => checkedBody(schema, refusedField(fields, raw))(raw))
  const fromEither = <A>(either: Either.Either<A, string>) =>
    Either.match(either, { onLeft: (message) => Effect.fail(new HttpFailure(400, message)), onRight: Effect.succeed })

  /**
   * `--allow-image-urls`: the messages' http(s) `url` image sources fetched and given as base64
   * (ImageFetch, all of a request's together), or a 400 naming the block (`messages.0.content.1.source.url`) and why. Off, or for
   * any other URL, the blocks are left for toGenerateRequest (which refuses them).
   */
  const withFetchedImages = <B extends { readonly messages: ReadonlyArray<Wire.MessageParam> }>(b: B): Effect.Effect<B, HttpFailure> =>
    Effect.gen(function*() {
      if (ctx.allowImageUrls !== true) return b
      const isUrlImage = (block: unknown): block is Wire.ImageBlockParam & { source: { type: "url"; url: string } } =>
        (block as { type?: unknown }).type === "image" &&
        (block as Wire.ImageBlockParam).source.type === "url" &&
        isHttpUrl((block as { source: { url: string } }).source.url)
      const count = b.messages.reduce((n, m) => n + (typeof m.content === "string" ? 0 : m.content.filter((c) => (c as { type?: unknown }).type === "image").length), 0)
      if (count > IMAGE_LIMITS.count) return yield* new HttpFailure(400, `messages: at most ${IMAGE_LIMITS.count} images in one request`)
      const jobs: Array<{ url: string; field: string }> = []
      for (const [i, m] of b.messages.entries()) {
        if (typeof m.content === "string") continue
        for (const [j, block] of m.content.entries()) {
          if (isUrlImage(block)) jobs.push({ url: block.source.url, field: `messages.${i}.content.${j}.source.url` })
        }
      }
      if (jobs.length === 0) return b
      const images = yield* fetchAll(jobs, ctx.imageFetch).pipe(Effect.mapError((why) => new HttpFailure(400, why)))
      let next = 0
      const messages = b.messages.map((m) =>
        typeof m.content === "string" || !m.content.some(isUrlImage)
          ? m
          : ({
            ...m,
            content: m.content.map((block) => {
              if (!isUrlImage(block)) return block
              const image = images[next++]!
              return { ...block, source: { type: "base64" as const, media_type: image.mediaType, data: image.data } }
            })
          } as Wire.MessageParam)
      )
      return { ...b, messages }
    })

  /** The request checked as LocalLLM checks it, so a count refuses what a generation would. */
  const validated = (request: GenerateRequest) =>
    Either.match(Protocol.validateGenerateRequest(request), {
      onLeft: (e) => Effect.fail(new HttpFailure(400, e.message)),
      onRight: Effect.succeed
    })

  const lastCompletion = (events: Stream.Stream<GenerateEvent, unknown>) =>
    Effect.flatMap(Stream.runCollect(events), (all) => {
      const last = [...all].at(-1)
      return last?._tag === "Finish"
        ? Effect.as(noteTokens(last.completion.usage.totalTokens), last.completion)
        : Effect.fail(new HttpFailure(500, "the generation ended without a completion"))
    })

  const betas = Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
    String(request.headers["anthropic-beta"] ?? "").split(",").map((b) => b.trim()).filter((b) => b !== ""))

  const messages = handle((requested) =>
    Effect.gen(function*() {
      const b = yield* body(Wire.MessagesRequest, ANTHROPIC_MESSAGES_FIELDS)
      requested.model = b.model
      const spec = yield* checkSpec(ctx, b.model)
      const mapped: MappedRequest = yield* fromEither(toGenerateRequest(yield* withFetchedImages(b)))
      const contextWindowBeta = (yield* betas).some((beta) => beta.startsWith("model-context-window-exceeded"))
      const headers: Record<string, string> = {
        "request-id": id("req_"),
        ...(mapped.droppedTools.length > 0 ? { "llmspell-dropped-tools": mapped.droppedTools.join(", ") } : {})
      }
      // Ollama cannot hold a model to one call (it refuses parallelToolCalls: false): there the
      // answer keeps its first tool_use block only (singleToolUse), which is what the client asked
      const { parallelToolCalls: _one, ...anyCalls } = mapped.request
      const request = mapped.request.parallelToolCalls === false && (yield* ctx.llm.resolve(spec)).backend === "ollama"
        ? anyCalls
        : mapped.request
      yield* ctx.admission.enter
      const events = yield* started(ctx.llm.generate(spec, request))
      const messageId = id("msg_")
      if (b.stream !== true) {
        const completion = yield* lastCompletion(events)
        const message: Wire.Message = {
          id: messageId,
          type: "message",
          role: "assistant",
          model: b.model,
          content: contentOf(completion, mapped.singleToolUse),
          ...stopOf(completion, contextWindowBeta),
          usage: usageOf(completion.usage)
        }
        return json(message, 200, headers)
      }
      const start: Wire.StreamEvent = {
        type: "message_start",
        message: {
          id: messageId,
          type: "message",
          role: "assistant",
          model: b.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }
        }
      }
      const write = makeEventWriter({ singleToolUse: mapped.singleToolUse, contextWindowBeta })
      const stream = Stream.concat(
        Stream.succeed(start),
        events.pipe(
          Stream.tap((event) => (event._tag === "Finish" ? noteTokens(event.completion.usage.totalTokens) : Effect.void)),
          Stream.mapConcat(write)
        )
      )
      return sse(stream as Stream.Stream<typeof Wire.StreamEvent.Encoded, unknown>, b.model, headers, ctx.aliases ?? [])
    })
  )

  /**
   * The prompt's tokens with the model's own tokenizer and chat template, tools included. GGUF
   * models count without generating. An Ollama server has no count route: it evaluates the prompt
   * for one token of answer and reports the count it saw (its cache then holds the prompt for the
   * request that follows). A cloud model is not counted: that would be a billed generation.
   * Images: each costs what Anthropic documents (`domain/ImageSize.ts`: scaled to a 1568 px long
   * edge and ~1,600 tokens, then width × height / 750, the size read from the image's header); the
   * Ollama probe is sent without them, so a count runs no vision encoder. A model that refuses
   * images refuses the count in the same words (GGUF's countTokens; an Ollama model whose known
   * capabilities lack vision).
   */
  const countTokens = handle((requested) =>
    Effect.gen(function*() {
      const b = yield* body(Wire.CountTokensRequest, ANTHROPIC_COUNT_TOKENS_FIELDS)
      requested.model = b.model
      const spec = yield* checkSpec(ctx, b.model)
      const fetched = yield* withFetchedImages(b)
      const mapped = yield* fromEither(toGenerateRequest(fetched))
      const request = yield* validated(mapped.request)
      const resolved = yield* ctx.llm.resolve(spec)
      if (resolved.handle.countTokens !== undefined) {
        const count: number = yield* (resolved.handle.countTokens(resolved.model, request) as Effect.Effect<number, CountTokensError>)
        yield* noteTokens(count)
        return json({ input_tokens: count } satisfies Wire.CountTokensResponse)
      }
      if (resolved.backend === "cloud") {
        return yield* new HttpFailure(
          400,
          `counting tokens is not offered for ${b.model}: it is a hosted model, and counting would be a billed generation; count with its provider's own API`
        )
      }
      const { toolChoice: _choice, responseFormat: _format, ...plain } = request
      // Images: refused as the messages route refuses them (a model whose known capabilities lack
      // vision), else counted by Anthropic's documented rule and left out of the probe, so counting
      // runs no vision encoder and the figure is the one Anthropic's clients plan with
      let imageCost = 0
      if (hasImages(plain.messages)) {
        const capabilities = yield* Effect.orElseSucceed(Effect.map(ctx.llm.info(spec), (info) => info.capabilities), () => undefined)
        const lacked = lackedCapability(resolved.model, capabilities, "vision", "images", b.model)
        if (lacked !== undefined) return yield* new UnsupportedOperation({ backend: resolved.backend, ...lacked })
        imageCost = yield* fromEither(imageTokens(fetched))
      }
      const probe = imageCost > 0
        ? { ...plain, messages: plain.messages.map(({ images: _images, ...message }) => message) }
        : plain
      yield* ctx.admission.enter
      const completion = yield* lastCompletion(yield* started(ctx.llm.generate(spec, { ...probe, maxTokens: 1 })))
      return json({ input_tokens: completion.usage.promptTokens + imageCost } satisfies Wire.CountTokensResponse)
    })
  )

  /** A path under /v1/messages this server does not serve (batches, …). */
  const notServed = handle(() =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.fail(new HttpFailure(404, `${request.method} ${new URL(request.url, "http://x").pathname} is not served by llmspell`)))
  )

  return HttpRouter.empty.pipe(
    HttpRouter.post("/v1/messages", messages),
    HttpRouter.post("/v1/messages/count_tokens", countTokens),
    HttpRouter.all("/v1/messages/*", notServed)
  ) as unknown as HttpRouter.HttpRouter<never, never>
}

/**
 * What OpenAI's two generation APIs in front of LocalLLM share (`OpenAiChat.ts` for
 * `/v1/chat/completions`, `OpenAiResponses.ts` for `/v1/responses`): message content as text,
 * tool definitions, ids, usage, OpenAI's error shape, and running a generation under an
 * admission slot. Errors are `{"error":{"message","type","param","code"}}`.
 */
import { parseDataUrl } from "../domain/Images.js"
import type { ImageInput } from "../domain/Types.js"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import { isLlmspellError } from "../domain/Errors.js"
import type { Completion, GenerateEvent, GenerateRequest, ToolDefinition } from "../domain/Types.js"
import { type ApiTerms, toApiFailure } from "./ApiTerms.js"
import { HttpFailure, json, readJson } from "./Http.js"
import { checkedBody, type FieldTable, refusedField } from "./RequestFields.js"
import { noteTokens, type RouteContext, type RouteEnv, started } from "./Routes.js"

/** A JSON object of any content (a JSON Schema, tool parameters). */
export const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** Message content: a string or an array of parts (only text parts are served). */
export const Content = Schema.NullOr(Schema.Union(
  Schema.String,
  Schema.Array(Schema.Struct({
    type: Schema.String,
    text: Schema.optional(Schema.String),
    image_url: Schema.optional(Schema.Union(Schema.String, Schema.Struct({ url: Schema.String, detail: Schema.optional(Schema.NullOr(Schema.String)) })))
  }))
))

/** An id with OpenAI's prefix (`chatcmpl-`, `resp_`, `msg_`). */
export const id = (prefix: string) => `${prefix}${randomBytes(12).toString("hex")}`

/** Now, in Unix seconds. */
export const seconds = () => Math.floor(Date.now() / 1000)

/** The text of message content, or why it cannot be served. */
export const textOf = (content: typeof Content.Type | undefined): Either.Either<string, string> => {
  if (content == null) return Either.right("")
  if (typeof content === "string") return Either.right(content)
  const other = content.find((p) => p.type !== "text" && p.type !== "input_text" && p.type !== "output_text")
  if (other !== undefined) return Either.left(`content parts of type ${JSON.stringify(other.type)} are not supported by llmspell serve`)
  return Either.right(content.map((p) => p.text ?? "").join(""))
}

/**
 * A user message's text and images: `image_url` parts whose URL is `data:image/…;base64,…` (an
 * http(s) URL is refused: unless `--allow-image-urls` has fetched it already (ImageFetch), llmspell
 * serve fetches nothing on a client's behalf), or why they cannot be served. `at` names the message (`messages[2]`).
 */
export const userContentOf = (
  content: typeof Content.Type | undefined,
  at: string
): Either.Either<{ text: string; images: Array<ImageInput> }, string> => {
  if (content == null || typeof content === "string") return Either.map(textOf(content), (text) => ({ text, images: [] }))
  const images: Array<ImageInput> = []
  let text = ""
  for (const [i, part] of content.entries()) {
    if (part.type === "image_url") {
      const url = typeof part.image_url === "string" ? part.image_url : part.image_url?.url
      if (url === undefined) return Either.left(`${at}.content[${i}].image_url.url is missing`)
      const image = parseDataUrl(url)
      if (typeof image === "string") return Either.left(`${at}.content[${i}].image_url.url: ${image}`)
      images.push(image)
    } else if (part.type === "text" || part.type === "input_text") {
      text += part.text ?? ""
    } else {
      return Either.left(`${at}.content[${i}]: content parts of type ${JSON.stringify(part.type)} are not supported by llmspell serve`)
    }
  }
  return Either.right({ text, images })
}

/** Tool-call arguments: JSON when they parse, else the text itself. */
export const safeParse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** A 400 with OpenAI's `invalid_request_error`. */
export const fail = (message: string) => Effect.fail(new HttpFailure(400, message))

/** A 400 for the left side. */
export const fromEither = <A>(either: Either.Either<A, string>) => Either.match(either, { onLeft: fail, onRight: Effect.succeed })

/** A tool as ours; a function without parameters takes an empty object. */
export const toolDefinition = (
  name: string,
  description: string | null | undefined,
  parameters: Record<string, unknown> | null | undefined
): ToolDefinition => ({
  name,
  ...(description != null ? { description } : {}),
  parameters: parameters ?? { type: "object", properties: {} }
})

/** `{ key: value }` when the value is there (not null or undefined), else `{}`. */
export const optional = <K extends string, V>(key: K, value: V | null | undefined): { [P in K]?: V } =>
  (value != null ? { [key]: value } : {}) as { [P in K]?: V }

/**
 * A body checked against its route's field table (a field that cannot be honoured is a 400
 * naming it), then decoded with its Schema (a 400 naming what is wrong).
 */
export const body = <A, I>(ctx: RouteContext, schema: Schema.Schema<A, I>, fields: FieldTable) =>
  Effect.flatMap(readJson(ctx), (raw) => checkedBody(schema, refusedField(fields, raw))(raw))

const NullableNumber = Schema.optional(Schema.NullOr(Schema.Number))

/** The sampling fields both routes take (OpenAI's, and the llama-server extensions). */
export const SamplingWire = {
  temperature: NullableNumber,
  top_p: NullableNumber,
  seed: NullableNumber,
  frequency_penalty: NullableNumber,
  presence_penalty: NullableNumber,
  top_k: NullableNumber,
  min_p: NullableNumber,
  repeat_penalty: NullableNumber,
  repeat_last_n: NullableNumber,
  parallel_tool_calls: Schema.optional(Schema.NullOr(Schema.Boolean))
}

/** The sampling fields as the request's (their ranges are checked with the request, by name). */
export const samplingOf = (b: Schema.Struct.Type<typeof SamplingWire>): Partial<GenerateRequest> => ({
  ...optional("temperature", b.temperature),
  ...optional("topP", b.top_p),
  ...optional("seed", b.seed),
  ...optional("frequencyPenalty", b.frequency_penalty),
  ...optional("presencePenalty", b.presence_penalty),
  ...optional("topK", b.top_k),
  ...optional("minP", b.min_p),
  ...optional("repeatPenalty", b.repeat_penalty),
  ...optional("repeatLastN", b.repeat_last_n),
  ...optional("parallelToolCalls", b.parallel_tool_calls)
})

/** The request fields by OpenAI's names (for errors); `maxTokens` differs per route. */
export const openAiTerms = (maxTokens: string, schema: string, freeJson: string): ApiTerms => ({
  fields: {
    maxTokens,
    temperature: "temperature",
    topP: "top_p",
    topK: "top_k",
    seed: "seed",
    minP: "min_p",
    frequencyPenalty: "frequency_penalty",
    presencePenalty: "presence_penalty",
    repeatPenalty: "repeat_penalty",
    repeatLastN: "repeat_last_n",
    logitBias: "logit_bias",
    parallelToolCalls: "parallel_tool_calls",
    toolChoice: "tool_choice",
    responseFormat: schema,
    reasoning: "reasoning_effort"
  },
  schema,
  freeJson
})

/** Errors as OpenAI sends them, in the route's terms (`max_tokens` on chat, `max_output_tokens` on responses). */
export const handle = (terms: ApiTerms) => <E>(effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, RouteEnv>) =>
  Effect.catchAll(effect, (e) => {
    const failure = toApiFailure(terms)(e)
    // the codes clients act on: Codex, for one, compacts its history on context_length_exceeded
    const code = failure.status === 404
      ? "model_not_found"
      : failure.status === 401
      ? "invalid_api_key"
      : isLlmspellError(e) && e._tag === "ContextOverflow"
      ? "context_length_exceeded"
      : null
    return Effect.succeed(json(
      { error: { message: failure.message, type: failure.status === 404 ? "invalid_request_error" : failure.type, param: null, code } },
      failure.status,
      failure.headers
    ))
  })

/** Runs a generation with a slot: its events from the first one on (failures before that get a status). */
export const run = (ctx: RouteContext, spec: string, request: GenerateRequest) =>
  Effect.zipRight(ctx.admission.enter, started(ctx.llm.generate(spec, request)))

/** The completion that ends a generation's events, its tokens noted for the access log. */
export const lastCompletion = (events: Stream.Stream<GenerateEvent, unknown>) =>
  Effect.flatMap(Stream.runCollect(events), (all) => {
    const last = [...all].at(-1)
    return last?._tag === "Finish"
      ? Effect.as(noteTokens(last.completion.usage.totalTokens), last.completion)
      : Effect.fail(new HttpFailure(500, "the generation ended without a completion"))
  })

/** Chat completions' usage; `prompt_tokens` counts the cached part too, as OpenAI's does. */
export const usage = (completion: Completion) => ({
  prompt_tokens: completion.usage.promptTokens,
  completion_tokens: completion.usage.completionTokens,
  total_tokens: completion.usage.totalTokens,
  // only when the backend said: a made-up 0 would read as "nothing was cached"
  ...(completion.usage.cachedPromptTokens !== undefined
    ? { prompt_tokens_details: { cached_tokens: completion.usage.cachedPromptTokens } }
    : {})
})

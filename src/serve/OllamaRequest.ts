/**
 * Ollama's generation requests (`/api/chat`, `/api/generate`; ollama/ollama `api/types.go`) as
 * llmspell's: the wire Schemas, every top-level field and option checked against
 * `RequestFields` (honoured, no effect, default only, refused by name), the options as sampling
 * fields, messages with Ollama's id-less tool calls joined to their results, and the request's
 * fields by Ollama's names for errors (`options.num_predict`).
 */
import { base64Bytes, IMAGE_LIMITS, imageProblem, parseDataUrl, sniffBase64 } from "../domain/Images.js"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { ChatMessage, GenerateRequest, ImageInput, ResponseFormat, ToolCall, ToolDefinition } from "../domain/Types.js"
import type { ApiTerms } from "./ApiTerms.js"
import { OLLAMA_FIELDS, OLLAMA_OPTIONS, refusedField } from "./RequestFields.js"

const OptionalNumber = Schema.optional(Schema.NullOr(Schema.Number))

/** The options llmspell honours (`RequestFields.OLLAMA_OPTIONS`); the others were checked before decoding. */
export const Options = Schema.Struct({
  temperature: OptionalNumber,
  top_p: OptionalNumber,
  top_k: OptionalNumber,
  min_p: OptionalNumber,
  seed: OptionalNumber,
  num_predict: OptionalNumber,
  num_ctx: OptionalNumber,
  repeat_penalty: OptionalNumber,
  repeat_last_n: OptionalNumber,
  presence_penalty: OptionalNumber,
  frequency_penalty: OptionalNumber,
  stop: Schema.optional(Schema.NullOr(Schema.Array(Schema.String)))
})

const WireToolCall = Schema.Struct({
  id: Schema.optional(Schema.String),
  function: Schema.Struct({
    index: Schema.optional(Schema.Number),
    name: Schema.String,
    arguments: Schema.optional(Schema.Unknown)
  })
})

export const WireMessage = Schema.Struct({
  role: Schema.Literal("system", "user", "assistant", "tool"),
  content: Schema.optional(Schema.String),
  thinking: Schema.optional(Schema.String),
  images: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  tool_calls: Schema.optional(Schema.NullOr(Schema.Array(WireToolCall))),
  tool_name: Schema.optional(Schema.String),
  tool_call_id: Schema.optional(Schema.String)
})

export const WireTool = Schema.Struct({
  type: Schema.optional(Schema.Literal("function")),
  function: Schema.Struct({
    name: Schema.String,
    description: Schema.optional(Schema.String),
    parameters: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
  })
})

export const Common = {
  model: Schema.optional(Schema.String),
  stream: Schema.optional(Schema.Boolean),
  options: Schema.optional(Options),
  format: Schema.optional(Schema.Union(Schema.String, Schema.Record({ key: Schema.String, value: Schema.Unknown }))),
  think: Schema.optional(Schema.Union(Schema.Boolean, Schema.Literal("high", "medium", "low"))),
  keep_alive: Schema.optional(Schema.Union(Schema.Number, Schema.String))
}

export const ChatBody = Schema.Struct({
  ...Common,
  messages: Schema.optional(Schema.Array(WireMessage)),
  tools: Schema.optional(Schema.NullOr(Schema.Array(WireTool)))
})

export const GenerateBody = Schema.Struct({
  ...Common,
  prompt: Schema.optional(Schema.String),
  system: Schema.optional(Schema.String),
  suffix: Schema.optional(Schema.String),
  images: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  raw: Schema.optional(Schema.Boolean),
  template: Schema.optional(Schema.String)
})

export const ModelBody = Schema.Struct({ model: Schema.optional(Schema.String), name: Schema.optional(Schema.String) })

export const PullBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  stream: Schema.optional(Schema.Boolean)
})

export const EmbedBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  input: Schema.Union(Schema.String, Schema.Array(Schema.String)),
  dimensions: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  keep_alive: Common.keep_alive
})

export const EmbeddingsBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  prompt: Schema.String,
  keep_alive: Common.keep_alive
})

/** The first top-level field or option of a chat or generate body that cannot be honoured, as a 400 message. */
export const refusedOllamaField = (body: unknown): string | undefined =>
  refusedField(OLLAMA_FIELDS, body) ??
    (typeof body === "object" && body !== null ? refusedField(OLLAMA_OPTIONS, (body as { options?: unknown }).options, "options.") : undefined)

/** The request fields by Ollama's names (for errors). */
export const OLLAMA_TERMS: ApiTerms = {
  fields: {
    maxTokens: "options.num_predict",
    temperature: "options.temperature",
    topP: "options.top_p",
    topK: "options.top_k",
    minP: "options.min_p",
    seed: "options.seed",
    stop: "options.stop",
    contextSize: "options.num_ctx",
    repeatPenalty: "options.repeat_penalty",
    repeatLastN: "options.repeat_last_n",
    presencePenalty: "options.presence_penalty",
    frequencyPenalty: "options.frequency_penalty",
    responseFormat: "format",
    reasoning: "think"
  },
  schema: "format",
  freeJson: "format \"json\""
}

/** Ollama's `format`: "json", a JSON Schema, or "" / absent for text. */
export const responseFormat = (format: string | { readonly [k: string]: unknown } | undefined): Either.Either<ResponseFormat | undefined, string> =>
  format === undefined || format === ""
    ? Either.right(undefined)
    : typeof format === "string"
    ? format === "json" ? Either.right("json") : Either.left(`format must be "json" or a JSON schema; got ${JSON.stringify(format)}`)
    : Either.right({ schema: format })

/**
 * Sampling options → the request's fields (their ranges are checked with the request, named by
 * OLLAMA_TERMS); `num_predict` ≤ 0 means "no limit" to Ollama (-1, -2). `num_ctx` reaches a
 * proxied Ollama model as `num_ctx`; a GGUF model keeps its instance's context.
 */
export const sampling = (options: typeof Options.Type | undefined): Partial<GenerateRequest> => {
  if (options === undefined) return {}
  const set = <K extends keyof GenerateRequest>(key: K, value: GenerateRequest[K] | null | undefined) =>
    value != null ? { [key]: value } : {}
  return {
    ...set("temperature", options.temperature),
    ...set("topP", options.top_p),
    ...set("topK", options.top_k),
    ...set("minP", options.min_p),
    ...set("seed", options.seed),
    ...set("repeatPenalty", options.repeat_penalty),
    ...set("repeatLastN", options.repeat_last_n),
    ...set("presencePenalty", options.presence_penalty),
    ...set("frequencyPenalty", options.frequency_penalty),
    ...(options.num_predict != null && options.num_predict > 0 ? { maxTokens: options.num_predict } : {}),
    ...(options.stop != null && options.stop.length > 0 ? { stop: options.stop } : {}),
    ...(options.num_ctx != null && options.num_ctx > 0 ? { contextSize: options.num_ctx } : {})
  }
}

/**
 * Ollama's messages → ours. Ollama's tool calls may have no id (before v0.12.10) and a tool result
 * may name only the tool: ids are given in order, and a result is joined to the oldest open call
 * of its tool (or the oldest open call).
 */
export const toMessages = (messages: ReadonlyArray<typeof WireMessage.Type>): Either.Either<Array<ChatMessage>, string> => {
  let counter = 0
  const open: Array<{ id: string; name: string }> = []
  const out: Array<ChatMessage> = []
  let total = 0
  for (const [index, m] of messages.entries()) {
    if (m.images != null && m.images.length > 0) {
      if (m.role !== "user") return Either.left(`messages[${index}].images: only a user message carries images`)
      const images = toImages(m.images, `messages[${index}].images`)
      if (Either.isLeft(images)) return Either.left(images.left)
      total += images.right.length
      if (total > IMAGE_LIMITS.count) return Either.left(`messages[${index}].images: at most ${IMAGE_LIMITS.count} images in one request`)
      out.push({ role: "user", content: m.content ?? "", images: images.right })
      continue
    }
    if (m.role === "assistant" && m.tool_calls != null && m.tool_calls.length > 0) {
      const toolCalls: Array<ToolCall> = m.tool_calls.map((c) => {
        const id = c.id ?? `call_${counter++}`
        open.push({ id, name: c.function.name })
        const args = c.function.arguments
        return { id, name: c.function.name, params: typeof args === "string" ? safeParse(args) : args ?? {} }
      })
      out.push({ role: "assistant", content: m.content ?? "", toolCalls })
    } else if (m.role === "tool") {
      const index = m.tool_call_id !== undefined
        ? open.findIndex((c) => c.id === m.tool_call_id)
        : Math.max(open.findIndex((c) => c.name === m.tool_name), open.length > 0 ? 0 : -1)
      const call = index >= 0 ? open.splice(index, 1)[0] : undefined
      const toolCallId = m.tool_call_id ?? call?.id ?? `call_${counter++}`
      const toolName = m.tool_name ?? call?.name
      out.push({ role: "tool", content: m.content ?? "", toolCallId, ...(toolName !== undefined ? { toolName } : {}) })
    } else {
      out.push({ role: m.role, content: m.content ?? "" })
    }
  }
  return Either.right(out)
}

/**
 * Ollama's `images` (bare base64, as its clients send them; a `data:` URL is taken too) → ours,
 * the media type read from the bytes, or why they cannot be served (`at` names the field).
 */
export const toImages = (images: ReadonlyArray<string>, at: string): Either.Either<Array<ImageInput>, string> => {
  if (images.length > IMAGE_LIMITS.count) return Either.left(`${at}: at most ${IMAGE_LIMITS.count} images in one request`)
  const out: Array<ImageInput> = []
  for (const [i, raw] of images.entries()) {
    const url = raw.startsWith("data:") ? parseDataUrl(raw) : undefined
    if (typeof url === "string") return Either.left(`${at}[${i}]: ${url}`)
    const data = url?.data ?? raw
    const bytes = base64Bytes(data)
    if (bytes === undefined) return Either.left(`${at}[${i}]: the image data is not base64`)
    const mediaType = url?.mediaType ?? sniffBase64(data)
    if (mediaType === undefined) return Either.left(`${at}[${i}]: not a PNG, JPEG, GIF or WebP image`)
    const image = { mediaType, data }
    const problem = imageProblem(image, `${at}[${i}]`)
    if (problem !== undefined) return Either.left(problem)
    out.push(image)
  }
  return Either.right(out)
}

const safeParse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export const toTools = (tools: ReadonlyArray<typeof WireTool.Type> | null | undefined): Array<ToolDefinition> | undefined =>
  tools == null || tools.length === 0 ? undefined : tools.map((t) => ({
    name: t.function.name,
    ...(t.function.description !== undefined ? { description: t.function.description } : {}),
    parameters: t.function.parameters ?? { type: "object", properties: {} }
  }))

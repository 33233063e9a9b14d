/**
 * The chat transcript: one conversation with one model as a JSON document. The web page of
 * `llmspell serve` exports and imports it, and `llmspell chat` saves (`/save FILE`) and loads
 * (`--load FILE`) it, so a conversation moves between the two. Pure: no I/O.
 *
 * The system prompt and the sampling parameters are the conversation's own (the page and the chat
 * session send them with every turn); `messages` are the turns after the system prompt, each answer
 * with the figures measured when it was given. Images are kept as references: the bytes inline
 * (`data`, base64, what the page exports) or a file (`path`, what `/image FILE` records).
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { type ChatMessage, type Completion, FinishReason, GenerateRequest, ToolCall } from "./Types.js"

/** The version this module writes and reads; a newer file is refused with a message naming it. */
export const TRANSCRIPT_VERSION = 1

const NonNegative = Schema.Number.pipe(Schema.nonNegative())
const Count = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

/** An image a user message carried: its bytes inline (base64), or a file on the machine that saved it. */
export const ImageRef = Schema.Union(
  Schema.Struct({
    mediaType: Schema.String.pipe(Schema.pattern(/^image\/[a-z0-9.+-]+$/)),
    /** The image's bytes, base64 (no `data:` prefix). */
    data: Schema.String,
    name: Schema.optional(Schema.String)
  }),
  Schema.Struct({
    path: Schema.String,
    mediaType: Schema.optional(Schema.String)
  })
)
/** An image a user message carried. */
export type ImageRef = typeof ImageRef.Type

/** What was measured for one answer; each figure is absent when it was not known. */
export const AnswerFigures = Schema.Struct({
  timeToFirstTokenMs: Schema.optional(NonNegative.annotations({ description: "ms from sending the request to the first token (reasoning included), as the client saw it" })),
  tokensPerSecond: Schema.optional(NonNegative.annotations({ description: "completion tokens per second after the first token" })),
  totalMs: Schema.optional(NonNegative.annotations({ description: "ms from sending the request to the end of the answer" })),
  promptTokens: Schema.optional(Count.annotations({ description: "the whole prompt, cached part included" })),
  cachedPromptTokens: Schema.optional(Count.annotations({ description: "the part of the prompt read from the model's cache, not evaluated again" })),
  completionTokens: Schema.optional(Count.annotations({ description: "tokens of the answer" }))
})
/** What was measured for one answer. */
export type AnswerFigures = typeof AnswerFigures.Type

/**
 * One turn after the system prompt. A user turn may carry images; an assistant turn its reasoning,
 * the tool calls it made, why it ended and its figures; a `tool` turn is the result of one call,
 * joined to it by `toolCallId`.
 */
export const TranscriptMessage = Schema.Struct({
  role: Schema.Literal("user", "assistant", "tool"),
  content: Schema.String,
  reasoning: Schema.optional(Schema.String),
  toolCalls: Schema.optional(Schema.Array(ToolCall)),
  toolCallId: Schema.optional(Schema.String),
  toolName: Schema.optional(Schema.String),
  images: Schema.optional(Schema.Array(ImageRef)),
  finishReason: Schema.optional(FinishReason),
  figures: Schema.optional(AnswerFigures),
  /** The spec that gave this answer, when it is not the transcript's `model`. */
  model: Schema.optional(Schema.String)
}).pipe(
  Schema.filter((m) =>
    m.role === "tool" && m.toolCallId === undefined
      ? "a tool message needs the toolCallId of the call it answers"
      : m.role !== "assistant" && (m.toolCalls !== undefined || m.reasoning !== undefined || m.figures !== undefined || m.finishReason !== undefined)
      ? "only an assistant message carries toolCalls, reasoning, finishReason or figures"
      : m.role !== "user" && m.images !== undefined
      ? "only a user message carries images"
      : undefined
  )
)
/** One turn after the system prompt. */
export type TranscriptMessage = typeof TranscriptMessage.Type

const request = GenerateRequest.from.fields

/** The sampling and output settings sent with every turn (the same ranges as a generation request). */
export const TranscriptParameters = Schema.Struct({
  temperature: request.temperature,
  maxTokens: request.maxTokens,
  seed: request.seed,
  topP: request.topP,
  topK: request.topK,
  reasoning: request.reasoning,
  responseFormat: request.responseFormat,
  tools: request.tools
}).pipe(
  Schema.filter((p) => {
    const names = (p.tools ?? []).map((t) => t.name)
    const duplicate = names.find((name, i) => names.indexOf(name) !== i)
    return duplicate === undefined ? undefined : { path: ["tools"], message: `two tools are named ${JSON.stringify(duplicate)}` }
  })
)
/** The sampling and output settings sent with every turn. */
export type TranscriptParameters = typeof TranscriptParameters.Type

/** A conversation with one model. */
export const Transcript = Schema.Struct({
  version: Schema.Literal(TRANSCRIPT_VERSION),
  /** The model spec the conversation is held with. */
  model: Schema.String,
  title: Schema.optional(Schema.String),
  /** ISO 8601. */
  createdAt: Schema.optional(Schema.String),
  system: Schema.optional(Schema.String),
  parameters: Schema.optional(TranscriptParameters),
  messages: Schema.Array(TranscriptMessage)
})
/** A conversation with one model. */
export type Transcript = typeof Transcript.Type

/**
 * The transcript's next request: the system prompt, the turns (a user turn's inline images with it;
 * an image saved as a `path` is not this pure function's to read, so it is left out) and the parameters.
 */
const inlineImages = (images: ReadonlyArray<ImageRef> | undefined) => {
  const inline = (images ?? []).flatMap((i) => ("data" in i ? [{ mediaType: i.mediaType, data: i.data }] : []))
  return inline.length > 0 ? { images: inline } : {}
}

export const toRequest = (t: Transcript): GenerateRequest => {
  const messages: Array<ChatMessage> = t.system !== undefined && t.system !== "" ? [{ role: "system", content: t.system }] : []
  for (const m of t.messages) {
    messages.push({
      role: m.role,
      content: m.content,
      ...(m.toolCalls !== undefined ? { toolCalls: m.toolCalls } : {}),
      ...(m.toolCallId !== undefined ? { toolCallId: m.toolCallId } : {}),
      ...(m.toolName !== undefined ? { toolName: m.toolName } : {}),
      ...inlineImages(m.images)
    })
  }
  const p = t.parameters ?? {}
  return {
    messages,
    ...Object.fromEntries(Object.entries(p).filter(([, value]) => value !== undefined))
  }
}

/** A completion as the assistant turn of a transcript, with its figures. */
export const answerMessage = (completion: Completion, figures: Partial<AnswerFigures> = {}): TranscriptMessage => ({
  role: "assistant",
  content: completion.text,
  ...(completion.reasoning !== undefined ? { reasoning: completion.reasoning } : {}),
  ...(completion.toolCalls !== undefined && completion.toolCalls.length > 0 ? { toolCalls: completion.toolCalls } : {}),
  finishReason: completion.finishReason,
  figures: {
    ...(completion.timings.timeToFirstTokenMs !== undefined ? { timeToFirstTokenMs: completion.timings.timeToFirstTokenMs } : {}),
    ...(completion.timings.tokensPerSecond !== undefined ? { tokensPerSecond: completion.timings.tokensPerSecond } : {}),
    totalMs: completion.timings.totalMs,
    promptTokens: completion.usage.promptTokens,
    completionTokens: completion.usage.completionTokens,
    ...figures
  }
})

/**
 * A transcript from parsed JSON, or a message saying what is wrong: a version this llmspell does
 * not know is named as such rather than reported as a shape mismatch.
 */
export const decodeTranscript = (json: unknown): Either.Either<Transcript, string> => {
  const version = typeof json === "object" && json !== null ? (json as { version?: unknown }).version : undefined
  if (typeof version === "number" && version > TRANSCRIPT_VERSION) {
    return Either.left(`this transcript is version ${version}; this llmspell reads version ${TRANSCRIPT_VERSION} (a newer llmspell wrote it)`)
  }
  return Schema.decodeUnknownEither(Transcript, { errors: "all", onExcessProperty: "ignore" })(json).pipe(
    Either.mapLeft((e) => `not a llmspell transcript: ${e.message.split("\n").slice(0, 6).join(" ")}`)
  )
}

/**
 * Anthropic's Messages API on the wire, as Schemas: the request of `POST /v1/messages` and of
 * `POST /v1/messages/count_tokens`, the message it answers, the server-sent events of a streamed
 * answer, the error body and the models listing. One description of the format for the two parts
 * of llmspell that speak it: `llmspell serve`'s Anthropic API (src/serve/AnthropicApi.ts) decodes
 * requests and writes answers with it, and the cloud backend's Anthropic client
 * (src/layers/cloud/cloudAnthropic.ts) writes requests and decodes answers with it.
 *
 * Field names and shapes follow Anthropic's API reference and the `@anthropic-ai/sdk` types. The
 * API grows: decoding ignores unknown fields, and block, tool and event types this module does not
 * describe decode as an `Other…` member (`{ type: "other", actualType }`), so a caller refuses or
 * skips them by name instead of failing on a shape error. Optional request fields also take `null`,
 * which some clients send for "not set". Pure: Schemas and types only.
 */
import * as Schema from "effect/Schema"

/** An optional field that also takes `null` (clients send either for "not set"). */
const optionalOrNull = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))

/** A string that is none of `known`: the `type` of a member this module does not describe. */
const otherThan = (known: ReadonlyArray<string>, what: string) =>
  Schema.String.pipe(
    Schema.filter((type) => !known.includes(type), {
      message: () => `a ${what} of a known type that does not have that type's fields`
    })
  )

/**
 * A member of a union of a type this module does not describe: `{ type: "…" }` on the wire,
 * `{ type: "other", actualType: "…" }` decoded, so that a `switch` on `type` narrows the known
 * members (a plain `type: string` member would keep every case wide).
 */
const otherMember = (known: ReadonlyArray<string>, what: string) =>
  Schema.transform(
    Schema.Struct({ type: otherThan(known, what) }),
    Schema.Struct({ type: Schema.Literal("other"), actualType: Schema.String }),
    {
      strict: true,
      decode: (wire) => ({ type: "other" as const, actualType: wire.type }),
      encode: (other) => ({ type: other.actualType })
    }
  )

const Count = Schema.Int.pipe(Schema.nonNegative())

/** A JSON object (a JSON Schema, a tool's input). */
export const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

// ---------------------------------------------------------------------------------------------
// Request content

/** `cache_control` on a block, a tool or the request: a prompt-cache breakpoint. */
export const CacheControl = Schema.Struct({
  type: Schema.Literal("ephemeral"),
  ttl: Schema.optional(Schema.Literal("5m", "1h"))
})

/** A text block of a request. */
export const TextBlockParam = Schema.Struct({
  type: Schema.Literal("text"),
  text: Schema.String,
  cache_control: optionalOrNull(CacheControl),
  citations: Schema.optional(Schema.Unknown)
})
/** A text block of a request. */
export type TextBlockParam = typeof TextBlockParam.Type

/** An image given inline (`media_type` image/jpeg, png, gif or webp). */
export const Base64ImageSource = Schema.Struct({ type: Schema.Literal("base64"), media_type: Schema.String, data: Schema.String })
/** An image given by URL. */
export const UrlImageSource = Schema.Struct({ type: Schema.Literal("url"), url: Schema.String })
/** An image uploaded through Anthropic's Files API. */
export const FileImageSource = Schema.Struct({ type: Schema.Literal("file"), file_id: Schema.String })

/** An image block. */
export const ImageBlockParam = Schema.Struct({
  type: Schema.Literal("image"),
  source: Schema.Union(Base64ImageSource, UrlImageSource, FileImageSource),
  cache_control: optionalOrNull(CacheControl)
})
/** An image block. */
export type ImageBlockParam = typeof ImageBlockParam.Type

/** A plain-text document. */
export const PlainTextSource = Schema.Struct({ type: Schema.Literal("text"), media_type: Schema.optional(Schema.String), data: Schema.String })
/** A document made of content blocks. */
export const ContentBlockSource = Schema.Struct({
  type: Schema.Literal("content"),
  content: Schema.Union(Schema.String, Schema.Array(Schema.Union(TextBlockParam, ImageBlockParam)))
})
/** A PDF (base64 or URL) or an uploaded file: described only by its `type`. */
export const OtherDocumentSource = otherMember(["text", "content"], "document source")

/** A document block. */
export const DocumentBlockParam = Schema.Struct({
  type: Schema.Literal("document"),
  source: Schema.Union(PlainTextSource, ContentBlockSource, OtherDocumentSource),
  title: optionalOrNull(Schema.String),
  context: optionalOrNull(Schema.String),
  citations: Schema.optional(Schema.Unknown),
  cache_control: optionalOrNull(CacheControl)
})
/** A document block. */
export type DocumentBlockParam = typeof DocumentBlockParam.Type

/** A tool call the assistant made, sent back in the history. */
export const ToolUseBlockParam = Schema.Struct({
  type: Schema.Literal("tool_use"),
  id: Schema.String,
  name: Schema.String,
  input: Schema.Unknown,
  cache_control: optionalOrNull(CacheControl)
})
/** A tool call the assistant made. */
export type ToolUseBlockParam = typeof ToolUseBlockParam.Type

/** A block inside a tool result. */
export const ToolResultContentBlock = Schema.Union(
  TextBlockParam,
  ImageBlockParam,
  DocumentBlockParam,
  otherMember(["text", "image", "document"], "tool result block")
)

/** The result of a tool call: a string or blocks; `is_error` when the tool failed. */
export const ToolResultBlockParam = Schema.Struct({
  type: Schema.Literal("tool_result"),
  tool_use_id: Schema.String,
  content: Schema.optional(Schema.Union(Schema.String, Schema.Array(ToolResultContentBlock))),
  is_error: optionalOrNull(Schema.Boolean),
  cache_control: optionalOrNull(CacheControl)
})
/** The result of a tool call. */
export type ToolResultBlockParam = typeof ToolResultBlockParam.Type

/** The assistant's earlier thinking, sent back in the history (with the signature it came with). */
export const ThinkingBlockParam = Schema.Struct({
  type: Schema.Literal("thinking"),
  thinking: Schema.String,
  signature: Schema.optional(Schema.String)
})

/** Thinking the API withheld, sent back unchanged. */
export const RedactedThinkingBlockParam = Schema.Struct({ type: Schema.Literal("redacted_thinking"), data: Schema.String })

/** The block types a request's messages may carry that this module describes. */
export const CONTENT_BLOCK_PARAM_TYPES = ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"] as const

/** A block of another type (`server_tool_use`, `web_search_tool_result`, `search_result`, …): only its `type`. */
export const OtherBlockParam = otherMember(CONTENT_BLOCK_PARAM_TYPES, "content block")

/** A block of a message in a request. */
export const ContentBlockParam = Schema.Union(
  TextBlockParam,
  ImageBlockParam,
  DocumentBlockParam,
  ToolUseBlockParam,
  ToolResultBlockParam,
  ThinkingBlockParam,
  RedactedThinkingBlockParam,
  OtherBlockParam
)
/** A block of a message in a request. */
export type ContentBlockParam = typeof ContentBlockParam.Type

/** A message of the conversation: a string or blocks (`system` messages are the newer form of `system`). */
export const MessageParam = Schema.Struct({
  role: Schema.Literal("user", "assistant", "system"),
  content: Schema.Union(Schema.String, Schema.Array(ContentBlockParam))
})
/** A message of the conversation. */
export type MessageParam = typeof MessageParam.Type

// ---------------------------------------------------------------------------------------------
// Tools, tool choice, thinking

/** A tool the client runs: its name, description and input as a JSON Schema. */
export const CustomTool = Schema.Struct({
  type: optionalOrNull(Schema.Literal("custom")),
  name: Schema.String,
  description: Schema.optional(Schema.String),
  input_schema: JsonObject,
  cache_control: optionalOrNull(CacheControl),
  strict: optionalOrNull(Schema.Boolean)
})
/** A tool the client runs. */
export type CustomTool = typeof CustomTool.Type

/**
 * One of Anthropic's server or versioned tools (`web_search_20250305`, `bash_20250124`, …), which
 * Anthropic runs or defines itself: decoded as `{ type: "server_tool", toolType, name }`.
 */
export const ServerTool = Schema.transform(
  Schema.Struct({ type: otherThan(["custom"], "tool"), name: Schema.String }),
  Schema.Struct({ type: Schema.Literal("server_tool"), toolType: Schema.String, name: Schema.String }),
  {
    strict: true,
    decode: (wire) => ({ type: "server_tool" as const, toolType: wire.type, name: wire.name }),
    encode: (tool) => ({ type: tool.toolType, name: tool.name })
  }
)

/** A tool of a request. */
export const ToolParam = Schema.Union(CustomTool, ServerTool)
/** A tool of a request. */
export type ToolParam = typeof ToolParam.Type

const disableParallel = { disable_parallel_tool_use: optionalOrNull(Schema.Boolean) }

/** Whether the model may (`auto`), must (`any`), must call one named tool (`tool`), or must not (`none`) call a tool. */
export const ToolChoice = Schema.Union(
  Schema.Struct({ type: Schema.Literal("auto"), ...disableParallel }),
  Schema.Struct({ type: Schema.Literal("any"), ...disableParallel }),
  Schema.Struct({ type: Schema.Literal("tool"), name: Schema.String, ...disableParallel }),
  Schema.Struct({ type: Schema.Literal("none") })
)
/** Whether the model must call a tool. */
export type ToolChoice = typeof ToolChoice.Type

const display = { display: optionalOrNull(Schema.Literal("summarized", "omitted")) }

/** Extended thinking: on with a budget of tokens, off, left to the model (`adaptive`), or between tool calls. */
export const ThinkingConfig = Schema.Union(
  Schema.Struct({ type: Schema.Literal("enabled"), budget_tokens: Count, ...display }),
  Schema.Struct({ type: Schema.Literal("disabled") }),
  Schema.Struct({ type: Schema.Literal("adaptive"), ...display }),
  Schema.Struct({ type: Schema.Literal("between_tools") })
)
/** Extended thinking. */
export type ThinkingConfig = typeof ThinkingConfig.Type

/** How much effort to spend, and a JSON Schema the answer must follow. */
export const OutputConfig = Schema.Struct({
  effort: optionalOrNull(Schema.Literal("low", "medium", "high", "xhigh", "max")),
  format: optionalOrNull(Schema.Struct({ type: Schema.Literal("json_schema"), schema: JsonObject }))
})

/** The beta's structured output (`output_format`): the answer follows a JSON Schema, as `output_config.format`. */
export const OutputFormat = Schema.Struct({ type: Schema.Literal("json_schema"), schema: JsonObject })

/** Who the request is for (an opaque id). */
export const Metadata = Schema.Struct({ user_id: optionalOrNull(Schema.String) })

const promptFields = {
  model: Schema.String,
  messages: Schema.Array(MessageParam),
  system: optionalOrNull(Schema.Union(Schema.String, Schema.Array(TextBlockParam))),
  tools: optionalOrNull(Schema.Array(ToolParam)),
  tool_choice: optionalOrNull(ToolChoice),
  thinking: optionalOrNull(ThinkingConfig),
  output_config: optionalOrNull(OutputConfig),
  output_format: optionalOrNull(OutputFormat),
  cache_control: optionalOrNull(CacheControl)
}

/** The body of `POST /v1/messages/count_tokens`: what the prompt of a messages request is made of. */
export const CountTokensRequest = Schema.Struct(promptFields)
/** The body of `POST /v1/messages/count_tokens`. */
export type CountTokensRequest = typeof CountTokensRequest.Type

/** The body of `POST /v1/messages`. */
export const MessagesRequest = Schema.Struct({
  ...promptFields,
  max_tokens: Schema.Int.pipe(Schema.positive({ message: () => "max_tokens must be an integer ≥ 1" })),
  stop_sequences: optionalOrNull(Schema.Array(Schema.String)),
  stream: optionalOrNull(Schema.Boolean),
  temperature: optionalOrNull(Schema.Number),
  top_p: optionalOrNull(Schema.Number),
  top_k: optionalOrNull(Schema.Int),
  metadata: optionalOrNull(Metadata),
  service_tier: optionalOrNull(Schema.String)
})
/** The body of `POST /v1/messages`. */
export type MessagesRequest = typeof MessagesRequest.Type

/** The answer of `POST /v1/messages/count_tokens`. */
export const CountTokensResponse = Schema.Struct({ input_tokens: Count })
/** The answer of `POST /v1/messages/count_tokens`. */
export type CountTokensResponse = typeof CountTokensResponse.Type

// ---------------------------------------------------------------------------------------------
// The answer

/** Answer text. */
export const TextBlock = Schema.Struct({
  type: Schema.Literal("text"),
  text: Schema.String,
  citations: optionalOrNull(Schema.Array(Schema.Unknown))
})
/**
 * The model's thinking, with a signature the client sends back with it (absent in the empty block
 * of a `content_block_start`: the signature comes as a `signature_delta`).
 */
export const ThinkingBlock = Schema.Struct({ type: Schema.Literal("thinking"), thinking: Schema.String, signature: Schema.optional(Schema.String) })
/** Thinking the API withheld. */
export const RedactedThinkingBlock = Schema.Struct({ type: Schema.Literal("redacted_thinking"), data: Schema.String })
/** A call of one of the request's tools; `input` is the decoded JSON arguments. */
export const ToolUseBlock = Schema.Struct({ type: Schema.Literal("tool_use"), id: Schema.String, name: Schema.String, input: Schema.Unknown })

/** The answer block types this module describes. */
export const CONTENT_BLOCK_TYPES = ["text", "thinking", "redacted_thinking", "tool_use"] as const

/** A block of another type (`server_tool_use`, `web_search_tool_result`, …): only its `type`. */
export const OtherContentBlock = otherMember(CONTENT_BLOCK_TYPES, "content block")

/** A block of the answer. */
export const ContentBlock = Schema.Union(TextBlock, ThinkingBlock, RedactedThinkingBlock, ToolUseBlock, OtherContentBlock)
/** A block of the answer. */
export type ContentBlock = typeof ContentBlock.Type

/** Why the answer stopped. */
export const StopReason = Schema.Literal(
  "end_turn",
  "max_tokens",
  "stop_sequence",
  "tool_use",
  "pause_turn",
  "refusal",
  "model_context_window_exceeded"
)
/** Why the answer stopped. */
export type StopReason = typeof StopReason.Type

/**
 * Token counts. The prompt is `input_tokens` (evaluated now) + `cache_read_input_tokens` (read from
 * the prompt cache) + `cache_creation_input_tokens` (written to it at a `cache_control` breakpoint).
 */
export const Usage = Schema.Struct({
  input_tokens: Count,
  output_tokens: Count,
  cache_creation_input_tokens: optionalOrNull(Count),
  cache_read_input_tokens: optionalOrNull(Count),
  cache_creation: optionalOrNull(Schema.Struct({ ephemeral_5m_input_tokens: Count, ephemeral_1h_input_tokens: Count })),
  server_tool_use: optionalOrNull(Schema.Unknown),
  service_tier: optionalOrNull(Schema.String)
})
/** Token counts. */
export type Usage = typeof Usage.Type

/** The answer of `POST /v1/messages` (and, empty, the message of `message_start`). */
export const Message = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("message"),
  role: Schema.Literal("assistant"),
  content: Schema.Array(ContentBlock),
  model: Schema.String,
  /** Null only in `message_start`. */
  stop_reason: Schema.NullOr(StopReason),
  /** The stop sequence that ended the answer (`stop_reason` `stop_sequence`), else null. */
  stop_sequence: optionalOrNull(Schema.String),
  usage: Usage,
  container: optionalOrNull(Schema.Unknown)
})
/** The answer of `POST /v1/messages`. */
export type Message = typeof Message.Type

// ---------------------------------------------------------------------------------------------
// Streamed answers: the server-sent events, each named after its `type`

/** First event: the message with no content yet. */
export const MessageStartEvent = Schema.Struct({ type: Schema.Literal("message_start"), message: Message })
/** A block begins at `index` (a text block with empty text, a tool_use block with empty input). */
export const ContentBlockStartEvent = Schema.Struct({ type: Schema.Literal("content_block_start"), index: Count, content_block: ContentBlock })

/** More text of a text block. */
export const TextDelta = Schema.Struct({ type: Schema.Literal("text_delta"), text: Schema.String })
/** A piece of a tool_use block's input JSON (the pieces concatenated are the JSON). */
export const InputJsonDelta = Schema.Struct({ type: Schema.Literal("input_json_delta"), partial_json: Schema.String })
/** More thinking of a thinking block. */
export const ThinkingDelta = Schema.Struct({ type: Schema.Literal("thinking_delta"), thinking: Schema.String })
/** A thinking block's signature, just before the block stops. */
export const SignatureDelta = Schema.Struct({ type: Schema.Literal("signature_delta"), signature: Schema.String })
/** A citation of a text block. */
export const CitationsDelta = Schema.Struct({ type: Schema.Literal("citations_delta"), citation: Schema.Unknown })

/** What a `content_block_delta` adds. */
export const ContentBlockDelta = Schema.Union(TextDelta, InputJsonDelta, ThinkingDelta, SignatureDelta, CitationsDelta)
/** What a `content_block_delta` adds. */
export type ContentBlockDelta = typeof ContentBlockDelta.Type

/** A block grows. */
export const ContentBlockDeltaEvent = Schema.Struct({ type: Schema.Literal("content_block_delta"), index: Count, delta: ContentBlockDelta })
/** A block is complete. */
export const ContentBlockStopEvent = Schema.Struct({ type: Schema.Literal("content_block_stop"), index: Count })

/** The usage of `message_delta`: cumulative totals; `output_tokens` always, the others when they apply. */
export const MessageDeltaUsage = Schema.Struct({
  output_tokens: Count,
  input_tokens: optionalOrNull(Count),
  cache_creation_input_tokens: optionalOrNull(Count),
  cache_read_input_tokens: optionalOrNull(Count),
  server_tool_use: optionalOrNull(Schema.Unknown)
})

/** The stop reason and final usage, after the last block stopped. */
export const MessageDeltaEvent = Schema.Struct({
  type: Schema.Literal("message_delta"),
  delta: Schema.Struct({ stop_reason: Schema.NullOr(StopReason), stop_sequence: optionalOrNull(Schema.String) }),
  usage: MessageDeltaUsage
})
/** Last event. */
export const MessageStopEvent = Schema.Struct({ type: Schema.Literal("message_stop") })
/** Keeps the connection alive; carries nothing. */
export const PingEvent = Schema.Struct({ type: Schema.Literal("ping") })

/** Anthropic's error types, each with its HTTP status (`request_too_large` 413, `overloaded_error` 529, …). */
export const ErrorType = Schema.Literal(
  "invalid_request_error",
  "authentication_error",
  "billing_error",
  "permission_error",
  "not_found_error",
  "request_too_large",
  "rate_limit_error",
  "timeout_error",
  "api_error",
  "overloaded_error"
)
/** Anthropic's error types. */
export type ErrorType = typeof ErrorType.Type

/** What went wrong. */
export const ErrorDetail = Schema.Struct({ type: ErrorType, message: Schema.String })

/** An error after the answer began (the HTTP status was already sent). */
export const ErrorEvent = Schema.Struct({ type: Schema.Literal("error"), error: ErrorDetail })

/** The event types this module describes. */
export const STREAM_EVENT_TYPES = [
  "message_start",
  "content_block_start",
  "content_block_delta",
  "content_block_stop",
  "message_delta",
  "message_stop",
  "ping",
  "error"
] as const

/** An event of a type added later: only its `type` (clients are to skip these). */
export const OtherEvent = otherMember(STREAM_EVENT_TYPES, "stream event")

/** One event of a streamed answer. */
export const StreamEvent = Schema.Union(
  MessageStartEvent,
  ContentBlockStartEvent,
  ContentBlockDeltaEvent,
  ContentBlockStopEvent,
  MessageDeltaEvent,
  MessageStopEvent,
  PingEvent,
  ErrorEvent,
  OtherEvent
)
/** One event of a streamed answer. */
export type StreamEvent = typeof StreamEvent.Type

// ---------------------------------------------------------------------------------------------
// Errors and models

/** The body of an error answer. */
export const ErrorResponse = Schema.Struct({
  type: Schema.Literal("error"),
  error: ErrorDetail,
  request_id: optionalOrNull(Schema.String)
})
/** The body of an error answer. */
export type ErrorResponse = typeof ErrorResponse.Type

/** The HTTP status of each error type, as Anthropic's API answers them. */
export const STATUS_OF_ERROR: Readonly<Record<ErrorType, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  timeout_error: 504,
  api_error: 500,
  overloaded_error: 529
}

/** One model of `GET /v1/models`. */
export const ModelInfo = Schema.Struct({
  type: Schema.Literal("model"),
  id: Schema.String,
  display_name: Schema.String,
  /** RFC 3339. */
  created_at: Schema.String
})
/** One model of `GET /v1/models`. */
export type ModelInfo = typeof ModelInfo.Type

/** The answer of `GET /v1/models` (one page). */
export const ModelsList = Schema.Struct({
  data: Schema.Array(ModelInfo),
  has_more: Schema.Boolean,
  first_id: Schema.NullOr(Schema.String),
  last_id: Schema.NullOr(Schema.String)
})
/** The answer of `GET /v1/models`. */
export type ModelsList = typeof ModelsList.Type

/** The `anthropic-version` llmspell speaks (the only one Anthropic has published). */
export const API_VERSION = "2023-06-01"

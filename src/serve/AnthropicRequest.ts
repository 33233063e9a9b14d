/**
 * A Messages API request (src/domain/AnthropicWire.ts) as llmspell's `GenerateRequest`, for
 * `llmspell serve`'s Anthropic API. What maps where:
 * - `system` (a string or text blocks, joined by blank lines) and `system` messages → system messages;
 * - user blocks: `text` and text `document`s → the user's text (blocks joined by blank lines);
 *   `tool_result` blocks (a string or blocks; `is_error` prefixes "Error: ") → tool messages before
 *   it, joined to their call by `tool_use_id`; base64 `image` blocks → the user message's images (URL and
 *   file sources refused); PDF documents are refused (the models served read text), and images inside a tool result are not passed on: where a placeholder says an image was
 *   left out so an agent's loop goes on;
 * - assistant blocks: `text` → its text, `tool_use` → its tool calls; `thinking` and
 *   `redacted_thinking` are dropped (a local model re-reads no earlier thinking, as Anthropic's
 *   own models do not outside a tool loop);
 * - `tools` (custom ones; Anthropic's server tools such as `web_search_…` cannot run here and are
 *   left out, named in `droppedTools`), `tool_choice` (`auto`, `any` → required, `tool` → that
 *   tool, `none`; `disable_parallel_tool_use` → `parallelToolCalls: false` and `singleToolUse`);
 * - `thinking`: `enabled` → reasoning with `budget_tokens` as the reasoning budget, `disabled` →
 *   no reasoning, `adaptive`/`between_tools` → reasoning; absent → the model's default;
 * - `max_tokens`, `stop_sequences`, `temperature` (0–1), `top_p`, `top_k`, and
 *   `output_config.format` or the beta's `output_format` (a JSON Schema the answer follows). `metadata`, `cache_control`,
 *   `service_tier` and `output_config.effort` are accepted and change nothing (prefix reuse of the
 *   model's cache does the caching). Refusals are messages in the API's own field names. Pure.
 */
import * as Either from "effect/Either"
import type * as Wire from "../domain/AnthropicWire.js"
import { anthropicImageTokens, imageSize } from "../domain/ImageSize.js"
import { IMAGE_LIMITS, imageProblem } from "../domain/Images.js"
import type { ChatMessage, GenerateRequest, ImageInput, ToolCall, ToolChoice, ToolDefinition } from "../domain/Types.js"

/** The fields a prompt is made of (count_tokens), with the sampling fields a messages request adds. */
export type PromptBody = Wire.CountTokensRequest & Partial<
  Pick<Wire.MessagesRequest, "max_tokens" | "stop_sequences" | "temperature" | "top_p" | "top_k">
>

/** A request mapped: what to generate, and what the answer must respect beyond it. */
export interface MappedRequest {
  readonly request: GenerateRequest
  /** `disable_parallel_tool_use`: the answer carries at most one tool_use block. */
  readonly singleToolUse: boolean
  /** Anthropic server tools the request offered, left out (they cannot run on this server). */
  readonly droppedTools: ReadonlyArray<string>
}

/** What a tool result says of an image it returned, which the models here cannot see. */
export const IMAGE_PLACEHOLDER = "[an image was returned here; it is left out: this model reads text only]"

const blankLine = "\n\n"

type Blocks = ReadonlyArray<Wire.ContentBlockParam>

const documentText = (block: Wire.DocumentBlockParam, where: string): Either.Either<string, string> => {
  const source = block.source
  const title = block.title != null && block.title !== "" ? `${block.title}${blankLine}` : ""
  switch (source.type) {
    case "text":
      return Either.right(`${title}${source.data}`)
    case "content": {
      if (typeof source.content === "string") return Either.right(`${title}${source.content}`)
      const image = source.content.find((b) => b.type === "image")
      if (image !== undefined) return Either.left(`${where}: a document with images is not supported: the models of this server read text only`)
      return Either.right(`${title}${source.content.map((b) => (b.type === "text" ? b.text : "")).join(blankLine)}`)
    }
    case "other":
      return Either.left(
        `${where}: document source type ${JSON.stringify(source.actualType)} is not supported: send the document as text (source type "text")`
      )
  }
}

const toolResultText = (block: Wire.ToolResultBlockParam, where: string): Either.Either<string, string> => {
  const content = block.content
  let text: string
  if (content === undefined) text = ""
  else if (typeof content === "string") text = content
  else {
    const parts: Array<string> = []
    for (const [i, part] of content.entries()) {
      switch (part.type) {
        case "text":
          parts.push(part.text)
          break
        case "image":
          parts.push(IMAGE_PLACEHOLDER)
          break
        case "document": {
          const doc = documentText(part, `${where}.content[${i}]`)
          if (Either.isLeft(doc)) return doc
          parts.push(doc.right)
          break
        }
        case "other":
          return Either.left(`${where}.content[${i}]: block type ${JSON.stringify(part.actualType)} is not supported in a tool result`)
      }
    }
    text = parts.join("\n")
  }
  return Either.right(block.is_error === true ? `Error: ${text}` : text)
}

/** The messages of a request (system prompt first), or the refusal. */
const toMessages = (body: PromptBody): Either.Either<Array<ChatMessage>, string> => {
  const out: Array<ChatMessage> = []
  const system = body.system == null
    ? ""
    : typeof body.system === "string"
    ? body.system
    : body.system.map((b) => b.text).join(blankLine)
  if (system !== "") out.push({ role: "system", content: system })
  const toolNames = new Map<string, string>()
  let imageCount = 0
  for (const [i, message] of body.messages.entries()) {
    const where = `messages[${i}]`
    if (typeof message.content === "string") {
      out.push({ role: message.role, content: message.content })
      continue
    }
    const blocks: Blocks = message.content
    if (message.role === "system") {
      const other = blocks.findIndex((b) => b.type !== "text")
      if (other >= 0) return Either.left(`${where}.content[${other}]: a system message holds text blocks only`)
      out.push({ role: "system", content: blocks.map((b) => (b.type === "text" ? b.text : "")).join(blankLine) })
      continue
    }
    if (message.role === "assistant") {
      const texts: Array<string> = []
      const calls: Array<ToolCall> = []
      for (const [j, block] of blocks.entries()) {
        switch (block.type) {
          case "text":
            texts.push(block.text)
            break
          case "tool_use":
            toolNames.set(block.id, block.name)
            calls.push({ id: block.id, name: block.name, params: block.input ?? {} })
            break
          case "thinking":
          case "redacted_thinking":
            break
          default:
            return Either.left(
              `${where}.content[${j}]: block type ${JSON.stringify(block.type === "other" ? block.actualType : block.type)} is not supported in an assistant message`
            )
        }
      }
      out.push({ role: "assistant", content: texts.join(""), ...(calls.length > 0 ? { toolCalls: calls } : {}) })
      continue
    }
    // a user turn: its tool results first (the answers to the previous turn's calls), then its text
    const texts: Array<string> = []
    const images: Array<ImageInput> = []
    for (const [j, block] of blocks.entries()) {
      const at = `${where}.content[${j}]`
      switch (block.type) {
        case "text":
          texts.push(block.text)
          break
        case "document": {
          const doc = documentText(block, at)
          if (Either.isLeft(doc)) return Either.left(doc.left)
          texts.push(doc.right)
          break
        }
        case "tool_result": {
          const text = toolResultText(block, at)
          if (Either.isLeft(text)) return Either.left(text.left)
          const toolName = toolNames.get(block.tool_use_id)
          out.push({ role: "tool", content: text.right, toolCallId: block.tool_use_id, ...(toolName !== undefined ? { toolName } : {}) })
          break
        }
        case "image": {
          // a base64 image goes through unchanged; a URL only when --allow-image-urls fetched it already
          // (AnthropicApi); this server has no Files API
          if (block.source.type === "url") {
            return Either.left(`${at}.source.type: "url" images: image URLs are not fetched by this server; send the image as base64`)
          }
          if (block.source.type !== "base64") {
            return Either.left(`${at}.source.type: ${JSON.stringify(block.source.type)} images are not supported by this server; send the image as base64`)
          }
          if (!/^image\/[a-z0-9.+-]+$/i.test(block.source.media_type)) {
            return Either.left(`${at}.source.media_type: must be an image media type (image/jpeg, image/png, image/gif, image/webp)`)
          }
          const image = { mediaType: block.source.media_type.toLowerCase(), data: block.source.data }
          const problem = imageProblem(image, `${at}.source.data`)
          if (problem !== undefined) return Either.left(problem)
          images.push(image)
          imageCount++
          if (imageCount > IMAGE_LIMITS.count) return Either.left(`${at}: at most ${IMAGE_LIMITS.count} images in one request`)
          break
        }
        case "thinking":
        case "redacted_thinking":
          return Either.left(`${at}: a ${block.type} block belongs in an assistant message`)
        case "tool_use":
          return Either.left(`${at}: a tool_use block belongs in an assistant message`)
        case "other":
          return Either.left(`${at}: block type ${JSON.stringify(block.actualType)} is not supported by this server`)
      }
    }
    if (texts.length > 0 || images.length > 0) out.push({ role: "user", content: texts.join(blankLine), ...(images.length > 0 ? { images } : {}) })
  }
  return Either.right(out)
}

const inRange = (name: string, value: number | null | undefined, ok: (n: number) => boolean, allowed: string): string | undefined =>
  value != null && !ok(value) ? `${name}: must be ${allowed}; got ${value}` : undefined

/** The request as llmspell's, or a refusal worded in the Messages API's terms. */
export const toGenerateRequest = (body: PromptBody): Either.Either<MappedRequest, string> =>
  Either.gen(function*() {
    const problem = inRange("temperature", body.temperature, (n) => n >= 0 && n <= 1, "between 0 and 1") ??
      inRange("top_p", body.top_p, (n) => n > 0 && n <= 1, "greater than 0 and at most 1") ??
      inRange("top_k", body.top_k, (n) => Number.isSafeInteger(n) && n >= 0, "an integer ≥ 0") ??
      ((body.stop_sequences ?? []).some((s) => s === "") ? "stop_sequences: a stop sequence cannot be empty" : undefined)
    if (problem !== undefined) return yield* Either.left(problem)
    if (body.messages.length === 0) return yield* Either.left("messages: at least one message is required")

    const messages = yield* toMessages(body)
    const tools: Array<ToolDefinition> = []
    const droppedTools: Array<string> = []
    for (const tool of body.tools ?? []) {
      if (tool.type === "server_tool") droppedTools.push(tool.name)
      else tools.push({ name: tool.name, ...(tool.description !== undefined ? { description: tool.description } : {}), parameters: tool.input_schema })
    }
    const choice = body.tool_choice
    let toolChoice: ToolChoice | undefined
    if (choice != null) {
      if (choice.type === "tool" && !tools.some((t) => t.name === choice.name)) {
        return yield* Either.left(`tool_choice.name: ${JSON.stringify(choice.name)} is not among the request's tools`)
      }
      if (choice.type === "any" && tools.length === 0) return yield* Either.left("tool_choice: type \"any\" needs at least one tool in tools")
      toolChoice = choice.type === "any" ? "required" : choice.type === "tool" ? { tool: choice.name } : choice.type
    }
    const thinking = body.thinking
    const format = body.output_config?.format ?? body.output_format
    const request: GenerateRequest = {
      messages,
      ...(body.max_tokens !== undefined ? { maxTokens: body.max_tokens } : {}),
      ...(body.temperature != null ? { temperature: body.temperature } : {}),
      ...(body.top_p != null ? { topP: body.top_p } : {}),
      ...(body.top_k != null && body.top_k > 0 ? { topK: body.top_k } : {}),
      ...(body.stop_sequences != null && body.stop_sequences.length > 0 ? { stop: body.stop_sequences } : {}),
      ...(tools.length > 0 ? { tools } : {}),
      ...(toolChoice !== undefined && tools.length > 0 ? { toolChoice } : {}),
      ...(choice != null && choice.type !== "none" && choice.disable_parallel_tool_use === true && tools.length > 0
        ? { parallelToolCalls: false }
        : {}),
      ...(thinking == null
        ? {}
        : thinking.type === "disabled"
        ? { reasoning: false }
        : thinking.type === "enabled"
        ? { reasoning: true, reasoningBudget: thinking.budget_tokens }
        : { reasoning: true }),
      ...(format != null ? { responseFormat: { schema: format.schema } } : {})
    }
    const singleToolUse = choice != null && choice.type !== "none" && choice.disable_parallel_tool_use === true
    return { request, singleToolUse, droppedTools }
  })

/** Base64 characters decoded first: 192 KiB of image, past any real JPEG's EXIF and ICC segments. */
const HEAD_CHARS = 256 * 1024

/**
 * An image's size from its base64 data: its head decoded first (a cut header reads as no size,
 * never a wrong one: test/ImageSize.test.ts), the whole only when the head holds none (a JPEG
 * whose frame header comes late, whitespace in the head). The whole is bounded by IMAGE_LIMITS.
 */
const sizeOfBase64 = (data: string) => {
  const head = data.slice(0, HEAD_CHARS)
  if (!/\s/.test(head)) {
    const size = imageSize(Buffer.from(head, "base64"))
    if (size !== undefined || data.length <= HEAD_CHARS) return size
  }
  return imageSize(Buffer.from(data.replace(/\s+/g, ""), "base64"))
}

/**
 * The tokens the request's images cost by Anthropic's documented rule (`anthropicImageTokens`),
 * for a count_tokens answer whose backend counts text only; or a refusal naming the image whose
 * size cannot be read. Images inside tool results are not passed on (a placeholder text is) and
 * cost nothing here. Call it on a request `toGenerateRequest` accepted (base64 sources, bounded).
 */
export const imageTokens = (body: PromptBody): Either.Either<number, string> => {
  let total = 0
  for (const [i, message] of body.messages.entries()) {
    if (typeof message.content === "string" || message.role !== "user") continue
    for (const [j, block] of message.content.entries()) {
      if (block.type !== "image" || block.source.type !== "base64") continue
      const size = sizeOfBase64(block.source.data)
      if (size === undefined) {
        return Either.left(
          `messages[${i}].content[${j}].source.data: the image's width and height cannot be read: send a PNG, JPEG, GIF or WebP image`
        )
      }
      total += anthropicImageTokens(size.width, size.height)
    }
  }
  return Either.right(total)
}

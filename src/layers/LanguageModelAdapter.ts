/**
 * Any llmspell model as an `@effect/ai` `LanguageModel` and `EmbeddingModel`: `fromBackend` wraps
 * one model of one backend instance (Ollama or GGUF alike), `languageModelLayer` and
 * `embeddingModelLayer` resolve a spec through the ProviderRegistry.
 *
 * Requests: prompt messages become our `GenerateRequest` (text; assistant tool calls; tool results
 * joined to their call by id), the toolkit's tools become `tools` (JSON Schema of their
 * parameters), `toolChoice` maps one to one (`oneOf` narrows the tools), and `generateObject`'s
 * schema becomes `responseFormat: { schema }`. Every request passes `validateGenerateRequest`
 * before it reaches the backend. Responses: our `GenerateEvent`s become Response parts — reasoning,
 * text, tool calls, then finish with usage and reason — which the framework then resolves: it
 * runs tool calls through the toolkit's handlers and decodes `generateObject` output with the
 * schema (as with Effect's OpenAI and OpenRouter providers). Our errors become `AiError`s with the
 * typed error in `cause`.
 */
import { parseDataUrl } from "../domain/Images.js"
import { inlineImageUrls, isHttpUrl } from "./ImageFetch.js"
import * as AiError from "@effect/ai/AiError"
import * as EmbeddingModel from "@effect/ai/EmbeddingModel"
import * as LanguageModel from "@effect/ai/LanguageModel"
import type * as Prompt from "@effect/ai/Prompt"
import type * as Response from "@effect/ai/Response"
import * as Tool from "@effect/ai/Tool"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import type { LlmspellError } from "../domain/Errors.js"
import { markIncomplete } from "../domain/JsonSchemaCheck.js"
import { validateGenerateRequest } from "../domain/Protocol.js"
import type {
  ChatMessage,
  ImageSource,
  Completion,
  Embeddings,
  FinishReason,
  GenerateEvent,
  GenerateRequest,
  ResponseFormat,
  ToolChoice,
  ToolDefinition
} from "../domain/Types.js"
import { ProviderRegistry, type ResolveError } from "../services/ProviderRegistry.js"

/**
 * What the LanguageModel adapter needs of a backend instance: its `generate` (a `Backend` has it;
 * so does a LocalLLM bound to one spec, whose errors also include routing's).
 */
export interface GenerateSource {
  readonly generate: (model: string, request: GenerateRequest) => Stream.Stream<GenerateEvent, LlmspellError>
  /**
   * True when `generate` takes `{ url }` images itself (a LocalLLM: it fetches them as its
   * ImageUrls setting allows, or carries them to its server). Otherwise (a backend instance) the
   * adapter fetches them first, as the ImageUrls setting in context allows, or refuses them.
   */
  readonly handlesImageUrls?: boolean
}

/** What the EmbeddingModel adapter needs of a backend instance: its `embed`. */
export interface EmbedSource {
  readonly embed: (model: string, inputs: ReadonlyArray<string>) => Effect.Effect<Embeddings, LlmspellError>
}

/** Sampling settings applied to every request of the adapted model. */
export type GenerateDefaults = Omit<GenerateRequest, "messages">

const resultText = (result: unknown): string => (typeof result === "string" ? result : JSON.stringify(result) ?? "null")

/**
 * @effect/ai prompt messages → our chat messages: text parts joined, an assistant's tool calls kept
 * (with their ids), each tool result a `tool` message joined to its call by id. Reasoning parts of
 * earlier turns are not sent back (local chat templates drop them too).
 */
export const toChatMessages = (prompt: Prompt.Prompt): Array<ChatMessage> => {
  const out: Array<ChatMessage> = []
  for (const message of prompt.content) {
    switch (message.role) {
      case "system":
        out.push({ role: "system", content: message.content })
        break
      case "user": {
        // image file parts (bytes, base64 or a data: URL) go with the message as images; an http(s)
        // URL goes as a `{ url }` image, which LocalLLM fetches only when the ImageUrls setting in
        // context allows it (an InvalidRequest naming it otherwise); a non-image file is not
        // something a chat model reads
        const images = message.content.flatMap((part): Array<ImageSource> => {
          if (part.type !== "file" || !/^image\//i.test(part.mediaType)) return []
          if (part.data instanceof Uint8Array) return [{ mediaType: part.mediaType.toLowerCase(), data: Buffer.from(part.data).toString("base64") }]
          const text = part.data instanceof URL ? part.data.href : part.data
          if (typeof text !== "string") return []
          if (isHttpUrl(text)) return [{ url: text }]
          if (part.data instanceof URL) return []
          const url = text.startsWith("data:") ? parseDataUrl(text) : { mediaType: part.mediaType.toLowerCase(), data: text }
          return typeof url === "string" ? [] : [url]
        })
        out.push({
          role: "user",
          content: message.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join(""),
          ...(images.length > 0 ? { images } : {})
        })
        break
      }
      case "assistant": {
        const text = message.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join("")
        const toolCalls = message.content.flatMap((part) =>
          part.type === "tool-call" && !part.providerExecuted ? [{ id: part.id, name: part.name, params: part.params }] : []
        )
        out.push({ role: "assistant", content: text, ...(toolCalls.length > 0 ? { toolCalls } : {}) })
        break
      }
      case "tool":
        for (const part of message.content) {
          out.push({ role: "tool", content: resultText(part.result), toolCallId: part.id, toolName: part.name })
        }
        break
    }
  }
  return out
}

/** A toolkit's tools as our tool definitions (provider-defined tools have no meaning locally and are left out). */
export const toToolDefinitions = (tools: ReadonlyArray<Tool.Any>): Array<ToolDefinition> =>
  tools.flatMap((tool) => {
    if (Tool.isProviderDefined(tool)) return []
    const description = tool.description
    return [{
      name: tool.name,
      ...(description !== undefined ? { description } : {}),
      parameters: Tool.getJsonSchemaFromSchemaAst(tool.parametersSchema.ast) as unknown as ToolDefinition["parameters"]
    }]
  })

/** The framework's toolChoice → ours, and the tools it leaves on offer (`oneOf` narrows them). */
const toToolChoice = (
  choice: LanguageModel.ToolChoice<string>,
  tools: ReadonlyArray<ToolDefinition>
): { readonly toolChoice: ToolChoice; readonly tools: ReadonlyArray<ToolDefinition> } => {
  if (typeof choice === "string") return { toolChoice: choice, tools }
  if ("tool" in choice) return { toolChoice: { tool: choice.tool }, tools }
  const allowed = tools.filter((t) => choice.oneOf.includes(t.name))
  return { toolChoice: choice.mode === "required" ? "required" : "auto", tools: allowed }
}

const toResponseFormat = (format: LanguageModel.ProviderOptions["responseFormat"]): ResponseFormat | undefined =>
  format.type === "json"
    ? {
      schema: Tool.getJsonSchemaFromSchemaAst(format.schema.ast) as unknown as Record<string, unknown>,
      name: format.objectName
    }
    : undefined

/** The request for one call: defaults, the prompt's messages, the tools, the choice and the format. */
export const toGenerateRequest = (options: LanguageModel.ProviderOptions, defaults: GenerateDefaults): GenerateRequest => {
  const definitions = toToolDefinitions(options.tools)
  const { toolChoice, tools } = toToolChoice(options.toolChoice, definitions)
  const responseFormat = toResponseFormat(options.responseFormat)
  return {
    ...defaults,
    messages: toChatMessages(options.prompt),
    ...(tools.length > 0 ? { tools, toolChoice } : {}),
    ...(responseFormat !== undefined ? { responseFormat } : {})
  }
}

const finishReason = (reason: FinishReason): Response.FinishReason => (reason === "abort" ? "other" : reason)

const finishPart = (completion: Completion): Response.FinishPartEncoded => ({
  type: "finish",
  reason: finishReason(completion.finishReason),
  usage: {
    inputTokens: completion.usage.promptTokens,
    outputTokens: completion.usage.completionTokens,
    totalTokens: completion.usage.totalTokens,
    ...(completion.usage.cachedPromptTokens !== undefined ? { cachedInputTokens: completion.usage.cachedPromptTokens } : {})
  },
  metadata: {
    llmspell: {
      model: completion.model,
      backend: completion.backend,
      instance: completion.instance,
      timings: completion.timings,
      ...(completion.incomplete !== undefined ? { incomplete: completion.incomplete } : {})
    }
  }
})

/** Our typed error as an @effect/ai error; the original stays in `cause` for `catchTag` on it. */
export const toAiError = (method: string) => (error: LlmspellError): AiError.AiError =>
  new AiError.UnknownError({ module: "llmspell", method, description: error.message, cause: error })

/** Validates the request (the same check as LocalLLM and the CLI), then streams the backend's events. */
const events = (
  backend: GenerateSource,
  model: string,
  options: LanguageModel.ProviderOptions,
  defaults: GenerateDefaults,
  method: string
): Stream.Stream<GenerateEvent, AiError.AiError> =>
  Either.match(validateGenerateRequest(toGenerateRequest(options, defaults)), {
    onLeft: (error) => Stream.fail(toAiError(method)(error)),
    onRight: (checked) =>
      Stream.fromEffect(
        backend.handlesImageUrls === true
          ? Effect.succeed(checked)
          : Effect.mapError(inlineImageUrls(checked), toAiError(method))
      ).pipe(Stream.flatMap((request) => backend.generate(model, request).pipe(
        // a `length` finish stays a finish (the framework reports it; generateObject then fails decoding), marked as LocalLLM marks it
        Stream.map((event) => (event._tag === "Finish" ? { ...event, completion: markIncomplete(request, event.completion) } : event)),
        Stream.mapError(toAiError(method))
      )))
  })

/** One model of one backend instance as a `LanguageModel` service. */
export const fromBackend = (
  backend: GenerateSource,
  model: string,
  defaults: GenerateDefaults = {}
): Effect.Effect<LanguageModel.Service> =>
  LanguageModel.make({
    generateText: (options) =>
      events(backend, model, options, defaults, "generateText").pipe(
        Stream.runFold(
          { text: "", reasoning: "", calls: [] as Array<Response.PartEncoded>, completion: undefined as Completion | undefined },
          (acc, event) => {
            switch (event._tag) {
              case "TextDelta":
                return { ...acc, text: acc.text + event.text }
              case "ReasoningDelta":
                return { ...acc, reasoning: acc.reasoning + event.text }
              case "ToolCall":
                return {
                  ...acc,
                  calls: [...acc.calls, { type: "tool-call" as const, id: event.call.id, name: event.call.name, params: event.call.params }]
                }
              case "Finish":
                return { ...acc, completion: event.completion }
            }
          }
        ),
        Effect.map(({ calls, completion, reasoning, text }) => {
          const parts: Array<Response.PartEncoded> = []
          if (reasoning.length > 0) parts.push({ type: "reasoning", text: reasoning })
          if (text.length > 0 || calls.length === 0) parts.push({ type: "text", text })
          parts.push(...calls)
          if (completion !== undefined) parts.push(finishPart(completion))
          return parts
        })
      ),
    streamText: (options) =>
      Stream.suspend(() => {
        // text and reasoning each open a block at their first delta and close it when the other
        // kind, a tool call or the finish comes
        let open: "text" | "reasoning" | undefined
        let blocks = 0
        const close = (): Array<Response.StreamPartEncoded> => {
          if (open === undefined) return []
          const end: Response.StreamPartEncoded = open === "text"
            ? { type: "text-end", id: `text-${blocks}` }
            : { type: "reasoning-end", id: `reasoning-${blocks}` }
          open = undefined
          return [end]
        }
        const delta = (kind: "text" | "reasoning", text: string): Array<Response.StreamPartEncoded> => {
          const parts = open === kind ? [] : close()
          if (open !== kind) {
            blocks++
            open = kind
            parts.push(kind === "text" ? { type: "text-start", id: `text-${blocks}` } : { type: "reasoning-start", id: `reasoning-${blocks}` })
          }
          parts.push(
            kind === "text"
              ? { type: "text-delta", id: `text-${blocks}`, delta: text }
              : { type: "reasoning-delta", id: `reasoning-${blocks}`, delta: text }
          )
          return parts
        }
        return events(backend, model, options, defaults, "streamText").pipe(
          Stream.mapConcat((event): Array<Response.StreamPartEncoded> => {
            switch (event._tag) {
              case "TextDelta":
                return delta("text", event.text)
              case "ReasoningDelta":
                return delta("reasoning", event.text)
              case "ToolCall":
                return [...close(), { type: "tool-call", id: event.call.id, name: event.call.name, params: event.call.params }]
              case "Finish":
                return [...close(), finishPart(event.completion)]
            }
          })
        )
      })
  })

/** One model of one backend instance as an `EmbeddingModel` service (inputs batched per call). */
export const embeddingModelFromBackend = (
  backend: EmbedSource,
  model: string,
  options: { readonly maxBatchSize?: number } = {}
): Effect.Effect<EmbeddingModel.Service> =>
  EmbeddingModel.make({
    maxBatchSize: options.maxBatchSize ?? 64,
    embedMany: (inputs) =>
      backend.embed(model, inputs).pipe(
        Effect.map((result) => result.vectors.map((embeddings, index) => ({ index, embeddings: [...embeddings] }))),
        Effect.mapError(toAiError("embedMany"))
      )
  })

/** A `LanguageModel` for a model spec, resolved (and its backend instance created) through the registry. */
export const languageModelLayer = (
  spec: string,
  defaults: GenerateDefaults = {}
): Layer.Layer<LanguageModel.LanguageModel, ResolveError, ProviderRegistry> =>
  Layer.effect(
    LanguageModel.LanguageModel,
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const resolved = yield* registry.resolve(spec)
      return yield* fromBackend(resolved.handle, resolved.model, defaults)
    })
  )

/** An `EmbeddingModel` for a model spec, resolved through the registry. */
export const embeddingModelLayer = (
  spec: string,
  options: { readonly maxBatchSize?: number } = {}
): Layer.Layer<EmbeddingModel.EmbeddingModel, ResolveError, ProviderRegistry> =>
  Layer.effect(
    EmbeddingModel.EmbeddingModel,
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const resolved = yield* registry.resolve(spec)
      return yield* embeddingModelFromBackend(resolved.handle, resolved.model, options)
    })
  )

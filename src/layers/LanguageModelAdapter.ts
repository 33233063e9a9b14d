/**
 * Any llmspell model as an `@effect/ai` `LanguageModel`: `fromBackend` wraps one model of one
 * backend instance (Ollama or GGUF alike), `languageModelLayer` resolves a spec through the
 * ProviderRegistry. Prompt messages become our `GenerateRequest`, our `GenerateEvent`s become
 * Response parts (text, then finish with usage and reason), our errors become `AiError`s.
 * Tools are not supported: local models here answer in text only.
 */
import * as AiError from "@effect/ai/AiError"
import * as LanguageModel from "@effect/ai/LanguageModel"
import type * as Prompt from "@effect/ai/Prompt"
import type * as Response from "@effect/ai/Response"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import type { LlmspellError } from "../domain/Errors.js"
import type { ChatMessage, Completion, FinishReason, GenerateRequest } from "../domain/Types.js"
import type { Backend } from "../services/Backend.js"
import { ProviderRegistry } from "../services/ProviderRegistry.js"

/** Sampling settings applied to every request of the adapted model. */
export type GenerateDefaults = Omit<GenerateRequest, "messages">

/** Flattens @effect/ai prompt messages into our chat messages (text parts only; tool traffic is dropped). */
export const toChatMessages = (prompt: Prompt.Prompt): Array<ChatMessage> => {
  const out: Array<ChatMessage> = []
  for (const message of prompt.content) {
    switch (message.role) {
      case "system":
        out.push({ role: "system", content: message.content })
        break
      case "user":
      case "assistant": {
        const text = message.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join("")
        out.push({ role: message.role, content: text })
        break
      }
      case "tool":
        break
    }
  }
  return out
}

const finishReason = (reason: FinishReason): Response.FinishReason =>
  reason === "abort" ? "other" : reason

const finishPart = (completion: Completion): Response.FinishPartEncoded => ({
  type: "finish",
  reason: finishReason(completion.finishReason),
  usage: {
    inputTokens: completion.usage.promptTokens,
    outputTokens: completion.usage.completionTokens,
    totalTokens: completion.usage.totalTokens
  },
  metadata: {
    llmspell: { model: completion.model, backend: completion.backend, instance: completion.instance, timings: completion.timings }
  }
})

/** Our typed error as an @effect/ai error; the original stays in `cause` for `catchTag` on it. */
export const toAiError = (method: string) => (error: LlmspellError): AiError.AiError =>
  new AiError.UnknownError({ module: "llmspell", method, description: error.message, cause: error })

const request = (options: LanguageModel.ProviderOptions, defaults: GenerateDefaults): GenerateRequest => ({
  ...defaults,
  messages: toChatMessages(options.prompt)
})

/** One model of one backend instance as a `LanguageModel` service. */
export const fromBackend = (
  backend: Backend,
  model: string,
  defaults: GenerateDefaults = {}
): Effect.Effect<LanguageModel.Service> =>
  LanguageModel.make({
    generateText: (options) =>
      backend.generate(model, request(options, defaults)).pipe(
        Stream.runFold({ text: "", completion: undefined as Completion | undefined }, (acc, event) =>
          event._tag === "TextDelta"
            ? { ...acc, text: acc.text + event.text }
            : event._tag === "Finish"
            ? { ...acc, completion: event.completion }
            : acc),
        Effect.map(({ completion, text }) => {
          const parts: Array<Response.PartEncoded> = [{ type: "text", text }]
          if (completion !== undefined) parts.push(finishPart(completion))
          return parts
        }),
        Effect.mapError(toAiError("generateText"))
      ),
    streamText: (options) => {
      const id = "text-0"
      return Stream.suspend(() => {
        let started = false
        return backend.generate(model, request(options, defaults)).pipe(
          Stream.mapConcat((event): Array<Response.StreamPartEncoded> => {
            if (event._tag === "TextDelta") {
              const delta: Response.StreamPartEncoded = { type: "text-delta", id, delta: event.text }
              if (started) return [delta]
              started = true
              return [{ type: "text-start", id }, delta]
            }
            if (event._tag !== "Finish") return []
            const end: Array<Response.StreamPartEncoded> = started ? [{ type: "text-end", id }] : []
            return [...end, finishPart(event.completion)]
          }),
          Stream.mapError(toAiError("streamText"))
        )
      })
    }
  })

/** A `LanguageModel` for a model spec, resolved (and its backend instance created) through the registry. */
export const languageModelLayer = (
  spec: string,
  defaults: GenerateDefaults = {}
): Layer.Layer<LanguageModel.LanguageModel, LlmspellError, ProviderRegistry> =>
  Layer.effect(
    LanguageModel.LanguageModel,
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const resolved = yield* registry.resolve(spec)
      return yield* fromBackend(resolved.handle, resolved.model, defaults)
    })
  )

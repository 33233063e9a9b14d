/**
 * A model's tokenizer as an `@effect/ai` `Tokenizer`, for backends that can tokenize (GGUF:
 * node-llama-cpp's tokenizer in the model's worker; Ollama has no tokenize route and fails with
 * UnsupportedOperation). A prompt counts as the sum of its messages, each tokenized on its own
 * (its text, and an assistant's tool calls as JSON), so `truncate`, which drops whole messages
 * from the start, counts what `tokenize` counts. The chat template's own tokens are not included:
 * the model's context check at generation (ContextOverflow) counts those.
 */
import type * as Prompt from "@effect/ai/Prompt"
import * as Tokenizer from "@effect/ai/Tokenizer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { UnsupportedOperation } from "../domain/Errors.js"
import type { ChatMessage } from "../domain/Types.js"
import type { Backend } from "../services/Backend.js"
import { ProviderRegistry, type ResolveError } from "../services/ProviderRegistry.js"
import { toAiError, toChatMessages } from "./LanguageModelAdapter.js"

const messageText = (message: ChatMessage): string =>
  message.role === "assistant" && message.toolCalls !== undefined && message.toolCalls.length > 0
    ? `${message.content}${JSON.stringify(message.toolCalls.map((c) => ({ name: c.name, params: c.params })))}`
    : message.content

/** One model of one backend instance as a `Tokenizer` service. */
export const tokenizerFromBackend = (backend: Backend, model: string): Tokenizer.Service =>
  Tokenizer.make({
    tokenize: (prompt: Prompt.Prompt) =>
      Effect.gen(function*() {
        const tokenize = backend.tokenize
        if (tokenize === undefined) {
          return yield* new UnsupportedOperation({
            backend: backend.type,
            operation: "tokenize",
            reason: `${backend.type} has no tokenizer llmspell can call`
          })
        }
        const counts = yield* Effect.forEach(toChatMessages(prompt), (m) => tokenize(model, messageText(m)))
        return counts.flat()
      }).pipe(Effect.mapError(toAiError("tokenize")))
  })

/** A `Tokenizer` for a model spec, resolved through the registry. */
export const tokenizerLayer = (spec: string): Layer.Layer<Tokenizer.Tokenizer, ResolveError, ProviderRegistry> =>
  Layer.effect(
    Tokenizer.Tokenizer,
    Effect.gen(function*() {
      const registry = yield* ProviderRegistry
      const resolved = yield* registry.resolve(spec)
      return tokenizerFromBackend(resolved.handle, resolved.model)
    })
  )

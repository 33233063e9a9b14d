/**
 * Embeddings and tokenizing on a model loaded in this process (`llama.ts`): node-llama-cpp's
 * embedding context, one input after the other, each measured against the context first.
 */
import * as Effect from "effect/Effect"
import type { LlamaEmbeddingContext, LlamaModel } from "node-llama-cpp"
import { type BackendError, ContextOverflow } from "../../domain/Errors.js"
import type { EmbeddedInput } from "../../services/LlamaLoader.js"
import { type LogBuffer, toBackendError } from "./llamaRuntime.js"

/** The model's tokens for a text, without the BOS a prompt gets. */
export const tokenizeWith = (model: LlamaModel, instance: string | undefined) => (text: string) =>
  Effect.try({ try: (): ReadonlyArray<number> => Array.from(model.tokenize(text)), catch: toBackendError("tokenize", instance) })

/**
 * Fails with the first input (or query + document) whose token count does not fit the context, as
 * ContextOverflow naming it: for a rerank, the document's index too.
 */
export const firstOverflow = (
  lengths: ReadonlyArray<number>,
  contextSize: number,
  names: { readonly model: string; readonly instance: string | undefined },
  operation: "embed" | "rerank"
): Effect.Effect<void, ContextOverflow> => {
  const over = lengths.findIndex((n) => n >= contextSize)
  return over < 0 ? Effect.void : Effect.fail(
    new ContextOverflow({
      model: names.model,
      backend: "gguf",
      ...(names.instance !== undefined ? { instance: names.instance } : {}),
      promptTokens: lengths[over]!,
      contextSize,
      operation,
      ...(operation === "rerank" ? { document: over } : {})
    })
  )
}

/**
 * Embeds inputs one after the other on the embedding context's single sequence (node-llama-cpp
 * erases it before each input, so a vector never depends on the previous input: a batch gives
 * the vectors of one-by-one requests). Every input is measured first: one that does not fit is
 * `ContextOverflow` before any vector is computed (node-llama-cpp would throw a plain Error, and
 * Ollama's default is to truncate). A model without a pooling type (a chat model) embeds with
 * its last token's hidden state, as llama.cpp does.
 */
export const embedOn = (
  model: LlamaModel,
  embedding: LlamaEmbeddingContext,
  contextSize: number,
  inputs: ReadonlyArray<string>,
  names: { readonly model: string; readonly instance: string | undefined },
  logs: LogBuffer
): Effect.Effect<ReadonlyArray<EmbeddedInput>, BackendError | ContextOverflow> =>
  Effect.gen(function*() {
    // an empty text has no tokens, for which node-llama-cpp returns an empty vector: embed the BOS alone
    const bos = model.tokens.bos
    const prepared = inputs.map((text) => (text.length === 0 && bos !== null ? [bos] : text))
    const lengths = yield* Effect.try({
      try: () => prepared.map((input) => embedding.calculateInputLength(input)),
      catch: toBackendError("embed", names.instance)
    })
    yield* firstOverflow(lengths, contextSize, names, "embed")
    const mark = logs.mark
    return yield* Effect.tryPromise({
      try: async (signal) => {
        const out: Array<EmbeddedInput> = []
        for (let i = 0; i < prepared.length; i++) {
          if (signal.aborted) throw signal.reason
          const { vector } = await embedding.getEmbeddingFor(prepared[i]!)
          if (vector.length === 0) throw new Error(`the model returned no embedding for input ${i}`)
          out.push({ vector: Array.from(vector), tokens: lengths[i]! })
        }
        return out
      },
      catch: (e) => toBackendError("embed", names.instance, logs.since(mark))(e)
    })
  }).pipe(Effect.withSpan("LlamaLoader.embed", { attributes: { inputs: inputs.length } }))

/**
 * Reranking on a model loaded in this process (`llama.ts`): node-llama-cpp's ranking context
 * (`LlamaRankingContext`: the model's own rerank template, or query + SEP/EOS + document, scored
 * by its classifier head), one query + document pair after the other, each measured first.
 */
import * as Effect from "effect/Effect"
import type { LlamaRankingContext } from "node-llama-cpp"
import type { BackendError, ContextOverflow } from "../../domain/Errors.js"
import type { RankedDocument } from "../../services/LlamaLoader.js"
import { firstOverflow } from "./llamaEmbed.js"
import { type LogBuffer, toBackendError } from "./llamaRuntime.js"

/**
 * Scores each document against the query on the ranking context's single sequence (node-llama-cpp
 * erases it before each pair, so a score never depends on the other documents; its `rankAll` does
 * the same pairs one at a time behind a lock). Every pair is measured first: one that does not fit
 * the context is `ContextOverflow` naming the document, before any score is computed (node-llama-cpp
 * would throw a plain Error, or cut the document into chunks). Interruption stops between pairs.
 */
export const rankOn = (
  ranking: LlamaRankingContext,
  contextSize: number,
  query: string,
  documents: ReadonlyArray<string>,
  names: { readonly model: string; readonly instance: string | undefined },
  logs: LogBuffer
): Effect.Effect<ReadonlyArray<RankedDocument>, BackendError | ContextOverflow> =>
  Effect.gen(function*() {
    const lengths = yield* Effect.try({
      try: () => documents.map((document) => ranking.calculateInputLength(query, document)),
      catch: toBackendError("rerank", names.instance)
    })
    yield* firstOverflow(lengths, contextSize, names, "rerank")
    const mark = logs.mark
    return yield* Effect.tryPromise({
      try: async (signal) => {
        const out: Array<RankedDocument> = []
        for (let i = 0; i < documents.length; i++) {
          if (signal.aborted) throw signal.reason
          const score = await ranking.rank(query, documents[i]!)
          out.push({ score, tokens: lengths[i]! })
        }
        return out
      },
      catch: (e) => toBackendError("rerank", names.instance, logs.since(mark))(e)
    })
  }).pipe(Effect.withSpan("LlamaLoader.rank", { attributes: { documents: documents.length } }))

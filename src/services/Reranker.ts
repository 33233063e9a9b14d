/**
 * Reranker: one reranker model as a service, in the style of `@effect/ai`'s `EmbeddingModel`
 * (which has no reranking interface of its own): a tag, the `Service` interface, `make`, and
 * accessors that read the service from the context. A program that reranks asks for `Reranker`
 * and is given a model with a Layer (`RerankerLive.layer(spec)` over LocalLLM, embedded or
 * connected to `llmspell serve`), so the model is chosen where the program is run, not in it.
 *
 * Errors are llmspell's typed ones (`RerankError`), not `AiError`: a caller can `catchTags`
 * exactly what a rerank can fail with (a model that cannot rank is UnsupportedOperation naming why).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { Reranking, RerankRequest } from "../domain/Types.js"
import type { RerankError } from "./LocalLLM.js"

/** Options of one rerank. */
export interface RerankOptions {
  /** Keep only the best N (all when absent). */
  readonly topN?: number | undefined
}

/** One item with its relevance, as `rerankBy` returns it. */
export interface Ranked<A> {
  readonly item: A
  /** The item's index in the list given. */
  readonly index: number
  readonly relevanceScore: number
}

/** What a reranker model offers. */
export interface Service {
  /** Each document's index and relevance score, best first, cut to `topN`; the tokens read. */
  readonly rerank: (
    query: string,
    documents: ReadonlyArray<string>,
    options?: RerankOptions
  ) => Effect.Effect<Reranking, RerankError>
  /** Any items ordered by the relevance of their text to the query, best first, cut to `topN`. */
  readonly rerankBy: <A>(
    query: string,
    items: ReadonlyArray<A>,
    text: (item: A) => string,
    options?: RerankOptions
  ) => Effect.Effect<Array<Ranked<A>>, RerankError>
}

/** The tag of a reranker model. */
export class Reranker extends Context.Tag("llmspell/Reranker")<Reranker, Service>() {}

/** A Reranker from a function that reranks one request (e.g. `LocalLLM.rerank` bound to a spec). */
export const make = (options: {
  readonly rerank: (request: RerankRequest) => Effect.Effect<Reranking, RerankError>
}): Service => {
  const rerank = (query: string, documents: ReadonlyArray<string>, rerankOptions: RerankOptions = {}) =>
    options.rerank({ query, documents, ...(rerankOptions.topN !== undefined ? { topN: rerankOptions.topN } : {}) }).pipe(
      Effect.withSpan("Reranker.rerank", { attributes: { documents: documents.length } })
    )
  return {
    rerank,
    rerankBy: (query, items, text, rerankOptions) =>
      Effect.map(
        rerank(query, items.map(text), rerankOptions),
        (reranking) => reranking.results.map((r) => ({ item: items[r.index]!, index: r.index, relevanceScore: r.relevanceScore }))
      )
  }
}

/** Reranks with the Reranker in context. */
export const rerank = (
  query: string,
  documents: ReadonlyArray<string>,
  options?: RerankOptions
): Effect.Effect<Reranking, RerankError, Reranker> => Effect.flatMap(Reranker, (r) => r.rerank(query, documents, options))

/** Orders items by the relevance of their text with the Reranker in context. */
export const rerankBy = <A>(
  query: string,
  items: ReadonlyArray<A>,
  text: (item: A) => string,
  options?: RerankOptions
): Effect.Effect<Array<Ranked<A>>, RerankError, Reranker> =>
  Effect.flatMap(Reranker, (r) => r.rerankBy(query, items, text, options))

/**
 * The live Reranker: a model spec over the LocalLLM in context (embedded, or connected to
 * `llmspell serve`), so the request check, the order and the cut to `topN` are LocalLLM's.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { LocalLLM } from "../services/LocalLLM.js"
import { make, Reranker } from "../services/Reranker.js"

/** A model spec as a Reranker over the LocalLLM in context. */
export const layer = (spec: string): Layer.Layer<Reranker, never, LocalLLM> =>
  Layer.effect(Reranker, Effect.map(LocalLLM, (llm) => make({ rerank: (request) => llm.rerank(spec, request) })))

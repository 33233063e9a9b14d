/**
 * Rerank in front of LocalLLM: `POST /v1/rerank` and `POST /rerank` in llama-server's and Jina's
 * shape (Cohere's too, but for its `meta`): `{ model, query, documents: (string | { text })[],
 * top_n?, return_documents? }` → `{ model, object: "list", results: [{ index, relevance_score,
 * document?: { text } }], usage: { prompt_tokens, total_tokens } }`, best first. Same auth, body
 * limit and admission queue as the other routes; errors in OpenAI's shape (which llama-server's
 * rerank uses), never a CLI hint. May touch: LocalLLM through the RouteContext, nothing else.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { isLlmspellError } from "../domain/Errors.js"
import type { ApiTerms } from "./ApiTerms.js"
import { MAX_RERANK_DOCUMENTS } from "../domain/Types.js"
import { HttpFailure, json, statusFor } from "./Http.js"
import { body, handle, openAiTerms } from "./OpenAiWire.js"
import type { FieldTable } from "./RequestFields.js"
import { checkSpec, noteTokens, type RouteContext } from "./Routes.js"

const Document = Schema.Union(Schema.String, Schema.Struct({ text: Schema.String }))

const RerankBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  query: Schema.String,
  documents: Schema.Array(Document),
  top_n: Schema.optional(Schema.NullOr(Schema.Number)),
  return_documents: Schema.optional(Schema.NullOr(Schema.Boolean))
})

const NEVER_TRUNCATED = "llmspell never cuts a document: one that does not fit the model's context with the query is refused, naming its index"

/** The fields of llama-server's, Jina's and Cohere's rerank requests, and what serve does with each. */
export const RERANK_FIELDS: FieldTable = {
  model: { kind: "honoured", as: "the model spec" },
  query: { kind: "honoured", as: "the query" },
  documents: { kind: "honoured", as: "the documents (strings, or objects with `text`)" },
  top_n: { kind: "honoured", as: "topN: only the best N results" },
  return_documents: { kind: "honoured", as: "each result's `document.text`" },
  user: { kind: "no effect", why: "an end-user id for the provider's abuse monitoring" },
  max_tokens_per_doc: { kind: "refused", why: NEVER_TRUNCATED },
  truncate_prompt_tokens: { kind: "refused", why: NEVER_TRUNCATED },
  truncation: { kind: "refused", why: NEVER_TRUNCATED }
}

const OPENAI_TERMS = openAiTerms("max_tokens", "", "")
const TERMS: ApiTerms = { ...OPENAI_TERMS, fields: { ...OPENAI_TERMS.fields, topN: "top_n" } }

/** A rerank failure in this API's terms: a document over the context is named by its index in `documents`. */
const inTerms = (error: unknown): unknown =>
  isLlmspellError(error) && error._tag === "ContextOverflow" && error.operation === "rerank"
    ? new HttpFailure(
      statusFor(error),
      `${error.message}; shorten or split ${error.document !== undefined ? `documents[${error.document}]` : "the longest documents"} ` +
        "(the server sets this model's context size)"
    )
    : error

/** The rerank routes, over a RouteContext. */
export const routes = (ctx: RouteContext): HttpRouter.HttpRouter<never, never> => {
  const rerank = handle(TERMS)(Effect.gen(function*() {
    const b = yield* body(ctx, RerankBody, RERANK_FIELDS)
    const spec = yield* checkSpec(ctx, b.model)
    if (b.documents.length > MAX_RERANK_DOCUMENTS) {
      return yield* new HttpFailure(400, `invalid request: documents must hold at most ${MAX_RERANK_DOCUMENTS} documents; got ${b.documents.length}`)
    }
    const topN = b.top_n ?? undefined
    if (topN !== undefined && !(Number.isSafeInteger(topN) && topN >= 1)) {
      return yield* new HttpFailure(400, `invalid request: top_n must be an integer ≥ 1; got ${topN}`)
    }
    const documents = b.documents.map((d) => (typeof d === "string" ? d : d.text))
    yield* ctx.admission.enter
    const result = yield* ctx.llm.rerank(spec, { query: b.query, documents, ...(topN !== undefined ? { topN } : {}) }).pipe(
      Effect.mapError(inTerms)
    )
    yield* noteTokens(result.promptTokens)
    return json({
      model: spec,
      object: "list",
      results: result.results.map((r) => ({
        index: r.index,
        relevance_score: r.relevanceScore,
        ...(b.return_documents === true ? { document: { text: documents[r.index] } } : {})
      })),
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens }
    })
  }))

  return HttpRouter.empty.pipe(
    HttpRouter.post("/v1/rerank", rerank),
    HttpRouter.post("/rerank", rerank)
  ) as unknown as HttpRouter.HttpRouter<never, never>
}

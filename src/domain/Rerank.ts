/**
 * Rerank requests and answers, the same for every backend: the request checked before anything is
 * routed or loaded (one check behind the library, the protocol, the CLI and the servers), and a
 * backend's scores checked and put in order (best first, ties in the request's order, cut to
 * `topN`), so a backend only has to score. Pure: no I/O.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { BackendError, InvalidRequest } from "./Errors.js"
import { type GgufFile, metadataNumber, metadataString } from "./GgufReader.js"
import { MAX_RERANK_DOCUMENTS, RerankRequest, type RerankResult, type Reranking } from "./Types.js"

/** What else can rank, besides a GGUF reranker: for a refusal's hint. */
export const RERANK_SERVICES =
  "an openai_compatible instance whose server offers /v1/rerank (llama-server --reranking, vLLM, another llmspell serve), " +
  "or a hosted reranker (cohere/rerank-v3.5 with COHERE_API_KEY, jina/jina-reranker-v2-base-multilingual with JINA_API_KEY)"

/** The backends that can rerank, for a refusal's hint. */
export const RERANK_ALTERNATIVES =
  `rerank with a GGUF reranker model (\`llmspell rerank -m <file or hub reference of a reranker GGUF> --query …\`), ${RERANK_SERVICES}`

const shown = (value: unknown): string => {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value)
  return text.length > 80 ? `${text.slice(0, 80)}…` : text
}

const decode = Schema.decodeUnknownEither(RerankRequest, { errors: "first", onExcessProperty: "ignore" })

/**
 * Checks a rerank request: a string query, an array of string documents (at most
 * MAX_RERANK_DOCUMENTS), `topN` an integer ≥ 1 when present. The error names the field.
 */
export const validateRerankRequest = (request: unknown): Either.Either<RerankRequest, InvalidRequest> =>
  Either.mapLeft(decode(request), (error) => {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
    const path = issue?.path ?? []
    const field = path.length > 0 ? path.map(String).join(".") : "request"
    let value: unknown = request
    for (const step of path) value = (value as Record<PropertyKey, unknown> | undefined)?.[step]
    const allowed = path[0] === "topN"
      ? "an integer ≥ 1"
      : path[0] === "documents" && path.length === 1 && Array.isArray(value)
      ? `an array of at most ${MAX_RERANK_DOCUMENTS} strings`
      : path[0] === "documents"
      ? "an array of strings"
      : path[0] === "query"
      ? "a string"
      : `valid (${issue?.message ?? "malformed request"})`
    return new InvalidRequest({
      field,
      ...(path[0] === "topN" ? { option: "--top" } : {}),
      allowed,
      value: Array.isArray(value) ? `${value.length} items` : shown(value)
    })
  })

/** Results in order: score descending, the request's order between equal scores. */
export const sortResults = (results: ReadonlyArray<RerankResult>): Array<RerankResult> =>
  [...results].sort((a, b) => b.relevanceScore - a.relevanceScore || a.index - b.index)

/**
 * A backend's reranking checked against its request and put in order: every index an integer in
 * range and given once, every score a finite number, at least `min(topN, documents)` results
 * (a backend may have applied `topN` itself). A violation is a BackendError: the backend broke
 * its answer, not the caller its request.
 */
export const finishReranking = (request: RerankRequest, reranking: Reranking): Either.Either<Reranking, BackendError> => {
  const n = request.documents.length
  const bad = (reason: string) =>
    Either.left(new BackendError({ backend: reranking.backend, instance: reranking.instance, operation: "rerank", reason }))
  const seen = new Set<number>()
  for (const r of reranking.results) {
    if (!Number.isSafeInteger(r.index) || r.index < 0 || r.index >= n) {
      return bad(`the answer names document ${shown(r.index)}, but there are ${n} documents`)
    }
    if (seen.has(r.index)) return bad(`the answer scores document ${r.index} twice`)
    if (typeof r.relevanceScore !== "number" || !Number.isFinite(r.relevanceScore)) {
      return bad(`the answer's score of document ${r.index} is not a finite number (${shown(r.relevanceScore)})`)
    }
    seen.add(r.index)
  }
  const wanted = Math.min(request.topN ?? n, n)
  if (reranking.results.length < wanted) {
    return bad(`the answer scores ${reranking.results.length} of the ${wanted} documents asked for`)
  }
  return Either.right({ ...reranking, results: sortResults(reranking.results).slice(0, wanted) })
}

/** Whether a GGUF model can rank, from its header, as node-llama-cpp decides (`GgufInsights.supportsRanking`). */
export type RankingSupport =
  | { readonly ok: true; readonly template: "model" | "separator" }
  | { readonly ok: false; readonly reason: string }

const tokenId = (file: GgufFile, key: string): number | undefined => {
  const id = metadataNumber(file, key)
  return id !== undefined && (file.vocabularySize === undefined || id < file.vocabularySize) ? id : undefined
}

/**
 * A reranker GGUF has a classifier head (`cls.weight` or `cls.output.weight`) and a way to join a
 * query and a document: a SEP or EOS token between them, or its own `tokenizer.chat_template.rerank`
 * with `{query}` and `{document}`; encoder-decoder models (T5) are refused. The same rule as
 * node-llama-cpp 3.22's `GgufInsights.supportsRanking`, read from the header before anything is
 * loaded, so a chat model asked to rerank is refused with the reason instead of a load.
 */
export const rankingSupport = (file: GgufFile): RankingSupport => {
  const architecture = file.architecture
  if (architecture === "t5" || architecture === "t5encoder") {
    return { ok: false, reason: `it is an encoder-decoder model (${architecture}), which node-llama-cpp cannot rank with` }
  }
  if (!file.tensors.some((t) => t.name === "cls.weight" || t.name === "cls.output.weight")) {
    return {
      ok: false,
      reason: "it has no classifier head (no cls.weight or cls.output.weight tensor): it is not a reranker model"
    }
  }
  const template = metadataString(file, "tokenizer.chat_template.rerank")
  if (template !== undefined && template.includes("{query}") && template.includes("{document}")) return { ok: true, template: "model" }
  const tokenizer = metadataString(file, "tokenizer.ggml.model")
  const sep = tokenId(file, "tokenizer.ggml.seperator_token_id") ?? (tokenizer === "bert" ? 102 : undefined)
  // without an explicit id, llama.cpp's vocabularies default their EOS (none for bert, rwkv, no vocab)
  const eos = tokenId(file, "tokenizer.ggml.eos_token_id") ??
    (tokenizer === "bert" || tokenizer === "rwkv" || tokenizer === "none" || tokenizer === "no_vocab" ? undefined : 2)
  if (sep !== undefined || eos !== undefined) return { ok: true, template: "separator" }
  return {
    ok: false,
    reason: template !== undefined
      ? "its tokenizer.chat_template.rerank lacks {query} or {document}, and it has no SEP or EOS token to join a query and a document"
      : "it has no rerank template (tokenizer.chat_template.rerank) and no SEP or EOS token to join a query and a document"
  }
}

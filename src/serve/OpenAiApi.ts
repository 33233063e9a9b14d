/**
 * OpenAI's API in front of LocalLLM: `/v1/models`, `/v1/chat/completions` (`OpenAiChat.ts`),
 * `/v1/embeddings` (float or base64) and a stateless `/v1/responses` (`OpenAiResponses.ts`).
 * Errors are `{"error":{"message","type","param","code"}}`. Model names are llmspell specs.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { listedAliases } from "./Aliases.js"
import { modelsList } from "./AnthropicApi.js"
import { HttpFailure, json } from "./Http.js"
import { chatCompletions } from "./OpenAiChat.js"
import { responses } from "./OpenAiResponses.js"
import { body, fail, handle, openAiTerms } from "./OpenAiWire.js"
import type { FieldTable } from "./RequestFields.js"
import { checkSpec, noteTokens, type RouteContext, servedName } from "./Routes.js"

const EmbeddingsBody = Schema.Struct({
  model: Schema.optional(Schema.String),
  input: Schema.Union(Schema.String, Schema.Array(Schema.String)),
  encoding_format: Schema.optional(Schema.Literal("float", "base64")),
  dimensions: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive()))
})

/** `/v1/embeddings` (openai 7.59's `EmbeddingCreateParams`). */
const EMBEDDINGS_FIELDS: FieldTable = {
  model: { kind: "honoured", as: "the model spec" },
  input: { kind: "honoured", as: "the inputs" },
  encoding_format: { kind: "honoured", as: "float or base64" },
  dimensions: { kind: "honoured", as: "the vectors cut to this length" },
  user: { kind: "no effect", why: "an end-user id for the provider's abuse monitoring" }
}

const EMBEDDING_TERMS = openAiTerms("max_tokens", "", "")

/** The OpenAI routes, over a RouteContext. */
export const routes = (ctx: RouteContext): HttpRouter.HttpRouter<never, never> => {
  // every model as its spec, then the [serve.aliases] names; Anthropic's shape for its clients (they send anthropic-version)
  const models = handle(EMBEDDING_TERMS)(Effect.gen(function*() {
    const list = yield* ctx.llm.list("all")
    const entries = [
      ...list.models.map((m) => ({
        id: servedName(m),
        created: m.modifiedAt !== undefined ? Math.floor(Date.parse(m.modifiedAt) / 1000) || 0 : 0,
        owned_by: m.instance,
        // where the backend already knows them (no request per listed model)
        ...(m.capabilities !== undefined ? { capabilities: m.capabilities } : {})
      })),
      ...listedAliases(ctx.aliases ?? []).map((a) => ({ id: a.name, created: 0, owned_by: `alias of ${a.spec}` }))
    ]
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.headers["anthropic-version"] !== undefined) return json(modelsList(entries))
    return json({
      object: "list",
      data: entries.map((e) => ({
        id: e.id,
        object: "model",
        created: e.created,
        owned_by: e.owned_by,
        ...("capabilities" in e ? { capabilities: e.capabilities } : {})
      }))
    })
  }))

  // one model (OpenAI's and Anthropic's "retrieve model"), with what it can do (`capabilities`:
  // completion, tools, vision, embedding, thinking, rerank) as its backend knows it; a spec holds
  // slashes (openai/gpt-4o-mini), so the rest of the path is the name
  const model = handle(EMBEDDING_TERMS)(Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const raw = new URL(request.url, "http://x").pathname.slice("/v1/models/".length)
    const name = yield* Effect.try({ try: () => decodeURIComponent(raw), catch: () => new HttpFailure(400, "the model name in the path is not valid percent-encoding") })
    const spec = yield* checkSpec(ctx, name)
    const info = yield* ctx.llm.info(spec)
    // left out when the backend does not say (a cloud provider's model): unknown is not "none"
    const capabilities = info.capabilities !== undefined ? { capabilities: info.capabilities } : {}
    if (request.headers["anthropic-version"] !== undefined) {
      return json({ type: "model", id: name, display_name: name, created_at: new Date(0).toISOString(), ...capabilities })
    }
    return json({ id: name, object: "model", created: 0, owned_by: info.instance, ...capabilities })
  }))

  const embeddings = handle(EMBEDDING_TERMS)(Effect.gen(function*() {
    const b = yield* body(ctx, EmbeddingsBody, EMBEDDINGS_FIELDS)
    const spec = yield* checkSpec(ctx, b.model)
    const inputs = typeof b.input === "string" ? [b.input] : b.input
    if (inputs.length === 0) return yield* fail("input must not be empty")
    yield* ctx.admission.enter
    const result = yield* ctx.llm.embed(spec, inputs)
    yield* noteTokens(result.promptTokens)
    const vectors = b.dimensions !== undefined ? result.vectors.map((v) => v.slice(0, b.dimensions)) : result.vectors
    return json({
      object: "list",
      data: vectors.map((v, index) => ({
        object: "embedding",
        index,
        embedding: b.encoding_format === "base64" ? Buffer.from(new Float32Array(v).buffer).toString("base64") : v
      })),
      model: spec,
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens }
    })
  }))

  return HttpRouter.empty.pipe(
    HttpRouter.get("/v1/models", models),
    HttpRouter.get("/v1/models/*", model),
    HttpRouter.post("/v1/chat/completions", chatCompletions(ctx)),
    HttpRouter.post("/v1/embeddings", embeddings),
    HttpRouter.post("/v1/responses", responses(ctx))
  ) as unknown as HttpRouter.HttpRouter<never, never>
}

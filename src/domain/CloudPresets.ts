/**
 * The hosted providers llmspell knows by name: the wire protocol each speaks (OpenAI's chat
 * completions or Anthropic's messages API), its base URL and the environment variable its key is
 * conventionally in, so `groq/llama-3.3-70b-versatile` works with only `GROQ_API_KEY` set. A
 * `[providers.<name>]` entry of the config overrides any of these. Pure data, no I/O.
 *
 * Base URLs and variables as each provider documents its OpenAI-compatible endpoint (December
 * 2026). Cohere's compatibility API refuses `stream_options`, so usage is not asked for there.
 * Rerank: Cohere's `/v2/rerank` and Jina's `/v1/rerank` (docs.cohere.com/reference/rerank,
 * jina.ai/reranker).
 */

/** The wire protocol of a cloud provider. */
export type CloudProtocol = "openai" | "anthropic"

/** A built-in cloud provider. */
export interface CloudPreset {
  readonly name: string
  readonly protocol: CloudProtocol
  /** Where its API lives: the part before `/chat/completions` (OpenAI) or before `/v1/messages` (Anthropic). */
  readonly baseUrl: string
  /** The variable its key is read from when the config gives no `api_key`. */
  readonly keyVariable: string
  /** False where the endpoint refuses `stream_options: { include_usage: true }`. */
  readonly streamUsage: boolean
  /** True where `/embeddings` is offered. */
  readonly embeddings: boolean
  /** Where its rerank API is; false where it has none. */
  readonly rerank: RerankEndpoint | false
}

/**
 * Where a provider's rerank API is (`{ model, query, documents, top_n }` → `results: [{ index,
 * relevance_score }]`, the shape llama-server, vLLM, Jina and Cohere share): `path` after the base
 * URL, or with `fromOrigin` an absolute path on the base URL's host (Cohere's `/v2/rerank` lives
 * beside its OpenAI-compatible `/compatibility/v1`, not under it).
 */
export interface RerankEndpoint {
  readonly path: string
  readonly fromOrigin?: boolean
}

/** Where an `openai_compatible` server's rerank is tried: llama-server's and vLLM's `{base_url}/rerank` (base_url ending in `/v1`). */
export const OPENAI_COMPATIBLE_RERANK: RerankEndpoint = { path: "/rerank" }

const openaiCompatible = (name: string, baseUrl: string, keyVariable: string, extra: Partial<CloudPreset> = {}): CloudPreset => ({
  name,
  protocol: "openai",
  baseUrl,
  keyVariable,
  streamUsage: true,
  embeddings: false,
  rerank: false,
  ...extra
})

/** The built-in providers by name. */
export const CLOUD_PRESETS: Readonly<Record<string, CloudPreset>> = {
  openai: openaiCompatible("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", { embeddings: true }),
  anthropic: {
    name: "anthropic",
    protocol: "anthropic",
    baseUrl: "https://api.anthropic.com",
    keyVariable: "ANTHROPIC_API_KEY",
    streamUsage: true,
    embeddings: false,
    rerank: false
  },
  groq: openaiCompatible("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
  together: openaiCompatible("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", { embeddings: true }),
  fireworks: openaiCompatible("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", { embeddings: true }),
  mistral: openaiCompatible("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", { embeddings: true }),
  perplexity: openaiCompatible("perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
  deepseek: openaiCompatible("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
  openrouter: openaiCompatible("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
  gemini: openaiCompatible("gemini", "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY", { embeddings: true }),
  cohere: openaiCompatible("cohere", "https://api.cohere.ai/compatibility/v1", "COHERE_API_KEY", {
    streamUsage: false,
    embeddings: true,
    rerank: { path: "/v2/rerank", fromOrigin: true }
  }),
  // Jina AI's search foundation API: embeddings and rerank (no chat completions at this host)
  jina: openaiCompatible("jina", "https://api.jina.ai/v1", "JINA_API_KEY", { embeddings: true, rerank: { path: "/rerank" } })
}

/** Cloud provider types a `[providers.<name>]` entry may have: the presets and a generic OpenAI-compatible server. */
export const CLOUD_PROVIDER_TYPES: ReadonlyArray<string> = [...Object.keys(CLOUD_PRESETS), "openai_compatible"]

/** The preset of a name, if there is one. */
export const presetOf = (name: string): CloudPreset | undefined =>
  Object.prototype.hasOwnProperty.call(CLOUD_PRESETS, name) ? CLOUD_PRESETS[name] : undefined

/** Every conventional key variable, for reading them from the environment once. */
export const KEY_VARIABLES: ReadonlyArray<string> = Object.values(CLOUD_PRESETS).map((p) => p.keyVariable)

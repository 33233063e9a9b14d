/**
 * What the built-in cloud providers' models can do, in Ollama's words (`completion`, `tools`,
 * `vision`, `embedding`, `thinking`) and `rerank`: per provider, patterns over the model name,
 * the first that matches deciding; no match is the provider's default, which is "unknown" for
 * every provider here. Pure data, no I/O.
 *
 * A list given for a model is the whole of what it can do: a request needing something missing
 * from it is refused before it is sent, so a name is listed only where the provider's documentation
 * (December 2026) is sure of all of it, and a pattern that would also catch a model that differs is
 * preceded by an "unknown" entry for that one (OpenAI's audio, realtime, search and Responses-only
 * models; Cohere's vision and reasoning Command models). Fine-tuned names (`ft:…`), retired
 * models and aliases whose model changes under them stay unknown. Sources: OpenAI's model pages
 * (platform.openai.com/docs/models: modalities, function calling, reasoning), Anthropic's models
 * overview ("all current models support text and image input … vision and tool use"; extended
 * thinking from Claude 3.7 Sonnet on), Cohere's models page (rerank-*, embed-*, Command R/R+/A),
 * Jina's API (jina-reranker-*, jina-embeddings-*, jina-clip-*), Mistral's and Gemini's embedding
 * model names. groq, together, fireworks, perplexity, deepseek and openrouter serve many
 * changing models: unknown. `openai_compatible` servers say nothing of their models: unknown.
 */

/** What a model can be asked to do. */
export type CloudCapability = "completion" | "tools" | "vision" | "embedding" | "thinking" | "rerank"

/** One rule: a model name pattern and what such models can do, or `unknown`. */
export interface CapabilityRule {
  readonly pattern: RegExp
  readonly capabilities: ReadonlyArray<CloudCapability> | "unknown"
}

/** A provider's rules, and what a name no rule matches can do. */
export interface ProviderCapabilities {
  readonly rules: ReadonlyArray<CapabilityRule>
  readonly default: ReadonlyArray<CloudCapability> | "unknown"
}

const CHAT_TOOLS_VISION: ReadonlyArray<CloudCapability> = ["completion", "tools", "vision"]
const REASONING: ReadonlyArray<CloudCapability> = ["completion", "tools", "vision", "thinking"]
const EMBEDDING: ReadonlyArray<CloudCapability> = ["embedding"]
const RERANK: ReadonlyArray<CloudCapability> = ["rerank"]
const UNKNOWN = "unknown" as const

/** An optional dated snapshot suffix (`-2024-08-06`). */
const DATED = String.raw`(-\d{4}-\d{2}-\d{2})?`

const rule = (pattern: RegExp, capabilities: ReadonlyArray<CloudCapability> | "unknown"): CapabilityRule => ({ pattern, capabilities })

/** The rules of each built-in provider, by preset name. */
export const CLOUD_CAPABILITIES: Readonly<Record<string, ProviderCapabilities>> = {
  openai: {
    rules: [
      // not chat models, or not over chat completions (audio, realtime, search, transcription, speech)
      rule(/^gpt-4o(-mini)?-(audio|realtime|search|transcribe|tts)/, UNKNOWN),
      rule(/^gpt-4o(-mini)?(-\d{4}-\d{2}-\d{2})?$/, CHAT_TOOLS_VISION),
      // ChatGPT's model: images, but no function calling
      rule(/^chatgpt-4o-latest$/, ["completion", "vision"]),
      rule(new RegExp(`^gpt-4\\.1(-mini|-nano)?${DATED}$`), CHAT_TOOLS_VISION),
      rule(new RegExp(`^gpt-4-turbo${DATED}$`), CHAT_TOOLS_VISION),
      rule(/^gpt-4(-0613|-1106-preview|-0125-preview|-turbo-preview)?$/, ["completion", "tools"]),
      rule(/^gpt-3\.5-turbo-instruct/, UNKNOWN),
      rule(/^gpt-3\.5-turbo(-0125|-1106|-16k)?$/, ["completion", "tools"]),
      // the first reasoning models: no tools, no images
      rule(new RegExp(`^o1-(mini|preview)${DATED}$`), ["completion", "thinking"]),
      rule(new RegExp(`^o1${DATED}$`), REASONING),
      rule(new RegExp(`^o3-mini${DATED}$`), ["completion", "tools", "thinking"]),
      rule(new RegExp(`^(o3|o4-mini)${DATED}$`), REASONING),
      rule(new RegExp(`^gpt-5(\\.\\d+)?(-mini|-nano)?${DATED}$`), REASONING),
      rule(/^text-embedding-/, EMBEDDING)
    ],
    default: UNKNOWN
  },
  anthropic: {
    rules: [
      rule(/^claude-3-(haiku|sonnet|opus)-/, CHAT_TOOLS_VISION),
      rule(/^claude-3-5-(haiku|sonnet)-/, CHAT_TOOLS_VISION),
      rule(/^claude-3-7-sonnet-/, REASONING),
      // the naming from Claude 4 on (claude-sonnet-4-5, claude-opus-4-1-20250805, claude-haiku-4-5, …)
      rule(/^claude-[a-z]+-([4-9]|[1-9]\d)(-|$)/, REASONING)
    ],
    default: UNKNOWN
  },
  cohere: {
    rules: [
      rule(/^rerank-/, RERANK),
      rule(/^embed-/, EMBEDDING),
      rule(/^command-a-(vision|reasoning|translate)/, UNKNOWN),
      rule(/^command-(r7b-12-2024|r|r-plus|r-08-2024|r-plus-08-2024|a-03-2025)$/, ["completion", "tools"])
    ],
    default: UNKNOWN
  },
  jina: {
    rules: [
      rule(/^jina-reranker-/, RERANK),
      rule(/^jina-(embeddings|clip)-/, EMBEDDING)
    ],
    default: UNKNOWN
  },
  mistral: { rules: [rule(/^(mistral|codestral)-embed/, EMBEDDING)], default: UNKNOWN },
  gemini: { rules: [rule(/^(models\/)?(gemini-embedding|text-embedding|embedding)-/, EMBEDDING)], default: UNKNOWN }
}

/**
 * What `model` at a provider of type `providerType` can do, or undefined when that is not known
 * (an `openai_compatible` server, a provider without rules, a name no rule is sure of).
 */
export const cloudCapabilities = (providerType: string, model: string): ReadonlyArray<CloudCapability> | undefined => {
  const provider = Object.prototype.hasOwnProperty.call(CLOUD_CAPABILITIES, providerType) ? CLOUD_CAPABILITIES[providerType] : undefined
  if (provider === undefined) return undefined
  const found = provider.rules.find((r) => r.pattern.test(model))?.capabilities ?? provider.default
  return found === UNKNOWN ? undefined : found
}

/** The capability a request needs that the model is known to lack (undefined: it has it, or nothing is known). */
export const lacking = (
  capabilities: ReadonlyArray<string> | undefined,
  needed: ReadonlyArray<CloudCapability>
): CloudCapability | undefined =>
  capabilities === undefined ? undefined : needed.find((c) => !capabilities.includes(c))

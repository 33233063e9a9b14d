/**
 * `llmspell serve`'s defaults, apart from the server so the CLI can show them in its options
 * without evaluating the HTTP stack at start-up.
 */
import type { LlmspellConfig } from "../domain/ConfigSchema.js"

/** The defaults of `llmspell serve`'s options. */
export const DEFAULTS = {
  host: "127.0.0.1",
  port: 11435,
  maxQueue: 64,
  concurrency: 4,
  maxBodyBytes: 16 * 1024 * 1024,
  drainTimeoutMs: 10_000
} as const

/** Generations an Ollama instance is given at once (Ollama's own OLLAMA_NUM_PARALLEL default is 4 or 1). */
const OLLAMA_CONCURRENCY = 4

/**
 * Generations that run at once when the caller does not say: each GGUF instance's sequences
 * (`parallel`) plus a few per Ollama server; cloud providers queue on their side. A config with
 * none of those gets `DEFAULTS.concurrency`.
 */
export const concurrencyFor = (config: Pick<LlmspellConfig, "instances">): number =>
  config.instances.reduce((n, i) => n + (i.type === "gguf" ? i.parallel : i.type === "ollama" ? OLLAMA_CONCURRENCY : 0), 0) ||
  DEFAULTS.concurrency

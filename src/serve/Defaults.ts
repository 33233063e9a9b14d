/**
 * `llmspell serve`'s defaults, apart from the server so the CLI can show them in its options
 * without evaluating the HTTP stack at start-up.
 */
/** The defaults of `llmspell serve`'s options. */
export const DEFAULTS = {
  host: "127.0.0.1",
  port: 11435,
  maxQueue: 64,
  concurrency: 4,
  maxBodyBytes: 16 * 1024 * 1024,
  drainTimeoutMs: 10_000
} as const

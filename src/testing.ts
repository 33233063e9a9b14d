/**
 * llmspell/testing's entry point (`dist/lib/testing.js`, the package's `exports["./testing"]`):
 * the fakes live in `src/testing/`, one per module; see `testing/index.ts`.
 */
export * from "./testing/index.js"

/**
 * llmspell/testing: scriptable fakes of the backends and the downloader, so a program that uses
 * llmspell can be tested without a server, a model file or a network. Each fake is given models,
 * scripted token streams (or turns with reasoning and tool calls) and pull progress, injected
 * failures, and records the calls it gets. One fake per module:
 *
 * - `MockBackend.ts`: `OllamaBackendMock`, `GgufBackendMock`, `makeMockBackend`
 * - `ModelDownloaderMock.ts`: `ModelDownloaderMock`, `installedModel`
 * - `LlamaLoaderMock.ts`: `LlamaLoaderMock` (under the real GGUF model pool)
 * - `LlmspellMock.ts`: `LlmspellMock` (the whole stack over the scripted backends), `defaultTestConfig`
 *
 * ```ts
 * const mock = LlmspellMock.make({ gguf: { models: [{ name: "qwen2.5:0.5b", tokens: ["Hi", "!"] }] } })
 * const text = await Effect.runPromise(myProgram.pipe(Effect.provide(mock.layer)))
 * expect(mock.calls.map((c) => c.operation)).toEqual(["generate"])
 * ```
 */
export * from "./LlamaLoaderMock.js"
export * from "./LlmspellMock.js"
export * from "./MockBackend.js"
export * from "./ModelDownloaderMock.js"

/**
 * llmspell/testing: scriptable fakes of the backends and the downloader, so a program that uses
 * llmspell can be tested without a server, a model file or a network. Each fake is given models,
 * scripted token streams (or turns with reasoning and tool calls), embeddings and token ids, pull
 * progress and injected failures, and records the calls it gets in one shape (`Call`) into a
 * `CallLog` that several fakes can share. One fake per module:
 *
 * - `CallLog.ts`: `Call`, `CallLog`, `makeCallLog`, `describeCalls`
 * - `MockBackend.ts`: `OllamaBackendMock`, `GgufBackendMock`, `makeMockBackend`
 * - `ModelDownloaderMock.ts`: `ModelDownloaderMock`, `installedModel`
 * - `LlamaLoaderMock.ts`: `LlamaLoaderMock` (under the real GGUF model pool)
 * - `LlmspellMock.ts`: `LlmspellMock` (the whole stack over the scripted backends, or the real GGUF
 *   backend over `LlamaLoaderMock`), `defaultTestConfig`
 *
 * ```ts
 * const mock = LlmspellMock.make({ gguf: { models: [{ name: "qwen2.5:0.5b", tokens: ["Hi", "!"] }] } })
 * const text = await Effect.runPromise(myProgram.pipe(Effect.provide(mock.layer)))
 * expect(describeCalls(mock.calls)).toEqual(["gguf:generate:qwen2.5:0.5b"])
 * ```
 */
export * from "./CallLog.js"
export * from "./LlamaLoaderMock.js"
export * from "./LlmspellMock.js"
export * from "./MockBackend.js"
export * from "./ModelDownloaderMock.js"

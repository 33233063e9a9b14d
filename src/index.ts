/**
 * llmspell: manage and run local LLMs (Ollama servers, in-process GGUF models, Hugging Face pulls)
 * from Effect programs. This entry point exports the services, their live layers, the errors and
 * the shared types.
 */
export * from "./domain/Errors.js"
export * as ModelSpec from "./domain/ModelSpec.js"
export * from "./domain/Types.js"
export type { Backend, BackendFactory } from "./services/Backend.js"
export * as Config from "./services/Config.js"
export * as ConfigLive from "./layers/ConfigLive.js"
export { GgufBackend } from "./services/GgufBackend.js"
export * as GgufBackendLive from "./layers/GgufBackendLive.js"
export { LocalLLM, type LocalLLMService, type BackendFilter } from "./services/LocalLLM.js"
export * as LocalLLMLive from "./layers/LocalLLMLive.js"
export { ModelDownloader, type ModelDownloaderService, type InstalledModel, type ModelStore } from "./services/ModelDownloader.js"
export { OllamaBackend } from "./services/OllamaBackend.js"
export * as OllamaBackendLive from "./layers/OllamaBackendLive.js"
export * as ProviderRegistry from "./services/ProviderRegistry.js"

/**
 * OllamaBackend: one `ollama` client per configured Ollama instance. The registry asks it for a
 * `Backend` per instance. Live implementation: `layers/OllamaBackendLive.ts`.
 */
import * as Context from "effect/Context"
import type { OllamaInstanceConfig } from "../domain/ConfigSchema.js"
import type { BackendFactory } from "./Backend.js"

/** Creates Ollama backend instances. */
export class OllamaBackend extends Context.Tag("llmspell/OllamaBackend")<
  OllamaBackend,
  BackendFactory<OllamaInstanceConfig>
>() {}

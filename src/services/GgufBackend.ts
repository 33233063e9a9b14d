/**
 * GgufBackend: runs GGUF models with node-llama-cpp. The registry asks it for a `Backend` per
 * configured gguf instance. Live implementation: `layers/GgufBackendLive.ts`, over the
 * `LlamaLoader` seam (`services/LlamaLoader.ts`).
 */
import * as Context from "effect/Context"
import type { GgufInstanceConfig } from "../domain/ConfigSchema.js"
import type { BackendFactory } from "./Backend.js"

/** Creates GGUF backend instances. */
export class GgufBackendFactory extends Context.Tag("llmspell/GgufBackendFactory")<GgufBackendFactory, BackendFactory<GgufInstanceConfig>>() {}

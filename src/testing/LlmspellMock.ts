/**
 * `LlmspellMock`: Config, ProviderRegistry and LocalLLM over the scripted backends and store, built by the
 * live stack's own composition (`LlmspellLive.layerWithBackends`, the one `layerWith` uses), so a
 * consumer's program runs unchanged on it. With `ggufLoader`, the GGUF instance is the real
 * GgufBackend (model pool, context checks, embedding contexts) over `LlamaLoaderMock`.
 * Every fake records into one `CallLog` (`calls`).
 */
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { type LlmspellConfig, resolveConfig } from "../domain/ConfigSchema.js"
import * as GgufBackendLive from "../layers/gguf/GgufBackendLive.js"
import * as LlmspellLive from "../layers/LlmspellLive.js"
import { EffectiveConfig } from "../services/EffectiveConfig.js"
import type { LocalLLM } from "../services/LocalLLM.js"
import type * as ProviderRegistry from "../services/ProviderRegistry.js"
import type { Call, CallLog } from "./CallLog.js"
import type { LlamaLoaderMock } from "./LlamaLoaderMock.js"
import { CloudBackendMock, GgufBackendMock, type MockBackendOptions, OllamaBackendMock } from "./MockBackend.js"
import { ModelDownloaderMock, type MockDownloaderOptions } from "./ModelDownloaderMock.js"

/** The built-in default configuration (no file, no environment), for tests. */
export const defaultTestConfig = (overrides: unknown = {}): LlmspellConfig => {
  const resolved = resolveConfig({ object: { value: overrides, source: "test" }, env: {}, home: "/nonexistent-home" })
  if (Either.isLeft(resolved)) throw resolved.left
  return resolved.right
}

/** Everything a consumer's test needs: Config, ProviderRegistry and LocalLLM over scripted backends. */
export const LlmspellMock = {
  make: (
    options: {
      readonly ollama?: MockBackendOptions
      /** The scripted GGUF backend (ignored when `ggufLoader` is given). */
      readonly gguf?: MockBackendOptions
      /** The scripted cloud backend: cloud specs (`openai/gpt-4o-mini`) answer from it. */
      readonly cloud?: MockBackendOptions
      /** Run the real GGUF backend over this fake loader instead of the scripted backend. */
      readonly ggufLoader?: ReturnType<typeof LlamaLoaderMock>
      /** The downloader under the real GGUF backend (with `ggufLoader`), and the model store LocalLLM reads and imports into. */
      readonly downloader?: MockDownloaderOptions
      /** TOML-shaped config overrides, e.g. a second Ollama instance. */
      readonly config?: unknown
      /** The log every fake records into (default: a new one, returned as `calls`). */
      readonly calls?: CallLog
    } = {}
  ) => {
    const calls: CallLog = options.calls ?? []
    const ollama = OllamaBackendMock(options.ollama, calls)
    const cloud = CloudBackendMock(options.cloud, calls)
    // one set of installed models: the GGUF backend's downloader and LocalLLM's store (`available`, `importFile`)
    const downloader = ModelDownloaderMock({ calls, ...options.downloader })
    const gguf = options.ggufLoader !== undefined
      ? GgufBackendLive.layerWithoutLoader.pipe(Layer.provide(Layer.merge(options.ggufLoader.layer, downloader.layer)))
      : GgufBackendMock(options.gguf, calls).layer
    const config = Layer.succeed(EffectiveConfig, defaultTestConfig(options.config))
    const layer: Layer.Layer<LocalLLM | ProviderRegistry.ProviderRegistry | EffectiveConfig> = LlmspellLive.layerWithBackends(
      config,
      Layer.mergeAll(ollama.layer, gguf, cloud.layer, downloader.storeLayer)
    )
    return { layer, calls: calls as ReadonlyArray<Call> }
  }
}

/**
 * `LlmspellMock`: Config, ProviderRegistry and LocalLLM over the scripted backends, built from the
 * same layers as the live stack (`LocalLLMLive`, `ProviderRegistry.layer`), so a consumer's
 * program runs unchanged on it.
 */
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { type LlmspellConfig, resolveConfig } from "../domain/ConfigSchema.js"
import * as LocalLLMLive from "../layers/LocalLLMLive.js"
import { Config } from "../services/Config.js"
import type { LocalLLM } from "../services/LocalLLM.js"
import * as ProviderRegistry from "../services/ProviderRegistry.js"
import { GgufBackendMock, type MockBackendOptions, type MockCall, OllamaBackendMock } from "./MockBackend.js"

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
      readonly gguf?: MockBackendOptions
      /** TOML-shaped config overrides, e.g. a second Ollama instance. */
      readonly config?: unknown
    } = {}
  ) => {
    const calls: Array<MockCall> = []
    const ollama = OllamaBackendMock(options.ollama, calls)
    const gguf = GgufBackendMock(options.gguf, calls)
    const config = Layer.succeed(Config, defaultTestConfig(options.config))
    const layer: Layer.Layer<LocalLLM | ProviderRegistry.ProviderRegistry | Config> = LocalLLMLive.layer.pipe(
      Layer.provideMerge(ProviderRegistry.layer),
      Layer.provide(Layer.merge(ollama.layer, gguf.layer)),
      Layer.provideMerge(config)
    )
    return { layer, calls: calls as ReadonlyArray<MockCall> }
  }
}

/**
 * LlmspellLive: the whole of llmspell as one layer — Config (from the usual places, or an object),
 * the local and cloud backends, the downloader, the registry and the LocalLLM facade. The CLI builds the same
 * stack with its own Config layer through `layerWith`.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Layer from "effect/Layer"
import type { ConfigError } from "../domain/Errors.js"
import type { CloudBackendFactory } from "../services/CloudBackend.js"
import type { EffectiveConfig } from "../services/EffectiveConfig.js"
import type { GgufBackendFactory } from "../services/GgufBackend.js"
import type { OllamaBackendFactory } from "../services/OllamaBackend.js"
import type { LocalLLM } from "../services/LocalLLM.js"
import type { ModelStore } from "../services/ModelStore.js"
import type { ProviderRegistry } from "../services/ProviderRegistry.js"
import * as ProviderRegistryLive from "./ProviderRegistryLive.js"
import * as CloudBackendLive from "./cloud/CloudBackendLive.js"
import * as ConfigLive from "./ConfigLive.js"
import * as GgufBackendLive from "./gguf/GgufBackendLive.js"
import * as LocalLLMLive from "./LocalLLMLive.js"
import * as ModelDownloaderLive from "./hub/ModelDownloaderLive.js"
import * as ModelStoreLive from "./store/ModelStoreLive.js"
import * as ScanFs from "./store/scanFs.js"
import * as OllamaBackendLive from "./ollama/OllamaBackendLive.js"

/** Everything llmspell provides. */
export type Services = LocalLLM | ProviderRegistry | EffectiveConfig

/**
 * The registry and facade over given backend factories, model store and Config layer: the live
 * ones in `layerWith`, llmspell/testing's scripted ones in `LlmspellMock` (the same composition).
 */
export const layerWithBackends = <E, R, E2, R2>(
  config: Layer.Layer<EffectiveConfig, E, R>,
  backends: Layer.Layer<OllamaBackendFactory | GgufBackendFactory | CloudBackendFactory | ModelStore, E2, R2>
): Layer.Layer<Services, E | E2, Exclude<R2, EffectiveConfig> | R> =>
  LocalLLMLive.layer.pipe(
    Layer.provideMerge(ProviderRegistryLive.layer),
    Layer.provide(backends),
    Layer.provideMerge(config)
  )

/** The backends, registry and facade over a given Config layer. */
export const layerWith = <E, R>(config: Layer.Layer<EffectiveConfig, E, R>): Layer.Layer<Services, E, R> =>
  layerWithBackends(
    config,
    // The GGUF backend and LocalLLM (`available`, `importFile`) share one store and one downloader.
    Layer.mergeAll(OllamaBackendLive.layer, CloudBackendLive.layer, GgufBackendLive.layer).pipe(
      Layer.provideMerge(ModelDownloaderLive.layer.pipe(Layer.provideMerge(ModelStoreLive.layer))),
      // The store's file I/O: typed errors naming the path (permissions, a full disk), never a defect;
      // ScanFs reads the trees it does not control (no FIFO blocks, no link is followed out of a store).
      Layer.provide(Layer.merge(NodeFileSystem.layer, ScanFs.layer))
    )
  )

/** llmspell with the configuration read from the usual places (file, environment). */
export const layer = (options: ConfigLive.ConfigLoadOptions = {}): Layer.Layer<Services, ConfigError> =>
  layerWith(ConfigLive.layer(options))

/** llmspell configured by a TOML-shaped object instead of files, for embedding. */
export const layerFromObject = (
  config: unknown,
  options: { readonly env?: Readonly<Record<string, string | undefined>>; readonly home?: string } = {}
): Layer.Layer<Services, ConfigError> => layerWith(ConfigLive.layerFromObject(config, options))

/** llmspell with the usual configuration sources. */
export const LlmspellLive: Layer.Layer<Services, ConfigError> = layer()

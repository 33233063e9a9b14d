/**
 * llmspell: manage and run local LLMs (Ollama servers, in-process GGUF models, Hugging Face pulls)
 * from Effect programs. This entry point exports each service's tag and live layer, the whole
 * stack as `LlmspellLive`, models as `@effect/ai` LanguageModels, the errors, the shared types,
 * the request protocol, and a Promise facade for programs without Effect.
 */
import type * as EmbeddingModel from "@effect/ai/EmbeddingModel"
import type * as LanguageModel from "@effect/ai/LanguageModel"
import type * as Tokenizer from "@effect/ai/Tokenizer"
import * as Layer from "effect/Layer"
import type { ConfigError } from "./domain/Errors.js"
import { embeddingModelLayer, type GenerateDefaults, languageModelLayer } from "./layers/LanguageModelAdapter.js"
import * as LlmspellLiveModule from "./layers/LlmspellLive.js"
import { tokenizerLayer } from "./layers/TokenizerAdapter.js"
import type { ProviderRegistry, ResolveError } from "./services/ProviderRegistry.js"
import * as RerankerLiveModule from "./layers/RerankerLive.js"
import type { LocalLLM as LocalLLMTag } from "./services/LocalLLM.js"
import type { Reranker as RerankerTag } from "./services/Reranker.js"

export * from "./domain/Errors.js"
export * from "./domain/Failure.js"
export { formatBytes } from "./domain/Format.js"
export * from "./domain/Types.js"
export * as Catalog from "./domain/Catalog.js"
export * as ModelSpec from "./domain/ModelSpec.js"
export * as Routing from "./domain/Routing.js"
export * as Protocol from "./domain/Protocol.js"
export type {
  CloudInstanceConfig,
  GgufInstanceConfig,
  HubConfig,
  LlmspellConfig,
  OllamaInstanceConfig,
  ProviderInstanceConfig
} from "./domain/ConfigSchema.js"

export {
  type Backend,
  BackendCountTokensError,
  BackendEmbedError,
  type BackendFactory,
  BackendGenerateError,
  BackendInfoError,
  BackendKeepAliveError,
  BackendListError,
  BackendLoadError,
  BackendMakeError,
  BackendPsError,
  BackendPullError,
  BackendRemoveError,
  BackendRerankError,
  BackendTokenizeError,
  BackendVerifyError
} from "./services/Backend.js"
export { EffectiveConfig } from "./services/EffectiveConfig.js"
export * as ConfigLive from "./layers/ConfigLive.js"
export { GgufBackendFactory } from "./services/GgufBackend.js"
export * as GgufBackendLive from "./layers/gguf/GgufBackendLive.js"
export { isOllamaInstance, OllamaBackendFactory, type OllamaInstance } from "./services/OllamaBackend.js"
export * as OllamaBackendLive from "./layers/ollama/OllamaBackendLive.js"
export { CloudBackendFactory } from "./services/CloudBackend.js"
export { ModelDownloader, type ModelDownloaderService, type PullError as DownloaderPullError } from "./services/ModelDownloader.js"
export {
  type ImportOptions,
  type InstalledModel,
  type Inventory,
  ModelStore,
  type ModelStoreService,
  type StoredBlob,
  type StoredModel,
  type StoreRoot
} from "./services/ModelStore.js"
export * as ModelStoreLive from "./layers/store/ModelStoreLive.js"
/** The read-only file calls the model store makes to read trees it does not control (a FIFO never blocks). */
export * as ScanFs from "./layers/store/scanFs.js"
export {
  InstanceError,
  ProviderRegistry,
  type ResolvedModel,
  ResolveError,
  type Route,
  RouteError
} from "./services/ProviderRegistry.js"
export * as ProviderRegistryLive from "./layers/ProviderRegistryLive.js"
export {
  AvailableError,
  type BackendFilter,
  CountTokensError,
  EmbedError,
  GenerateError,
  ImportError,
  InfoError,
  InstallOllamaError,
  KeepAliveError,
  LoadError,
  LocalLLM,
  type LocalLLMService,
  PlanOllamaInstallError,
  PlanRemovalError,
  PullError,
  pullResult,
  RemoveError,
  RerankError,
  RunError,
  VerifyError
} from "./services/LocalLLM.js"
/** A reranker model as a service (`Reranker.rerank(query, documents)`), in `@effect/ai`'s style. */
export * as Reranker from "./services/Reranker.js"
export { finishReranking, validateRerankRequest } from "./domain/Rerank.js"
export * as LocalLLMLive from "./layers/LocalLLMLive.js"
/**
 * Image URLs (`ChatMessage.images` entries `{ url }`) are fetched only where the `ImageUrls`
 * setting in context allows: `Effect.provideService(program, ImageUrls, { access: "public" })`.
 */
export {
  fetchImage,
  type ImageFetchOptions,
  type ImageUrlAccess,
  type ImageUrlPolicy,
  ImageUrls
} from "./layers/ImageFetch.js"
export { type AddressClass, classifyAddress } from "./domain/Addresses.js"
/** LocalLLM (and `@effect/ai` models) served by a running `llmspell serve`: `LlmspellRemote.layer({ url, apiKey })`. */
export * as LlmspellRemote from "./layers/LlmspellRemote.js"
export {
  embeddingModelFromBackend,
  fromBackend as languageModelFromBackend,
  type GenerateDefaults
} from "./layers/LanguageModelAdapter.js"
export { tokenizerFromBackend } from "./layers/TokenizerAdapter.js"
export {
  createLocalLLM,
  type CreateLocalLLMOptions,
  LlmspellFailure,
  type LocalLLMClient,
  type PullOperation,
  type RunOptions,
  type TokenStream
} from "./promise.js"

/** The whole stack: the EffectiveConfig from the usual places, both backends, the downloader, registry and LocalLLM. */
export const LlmspellLive = LlmspellLiveModule.LlmspellLive
/** The whole stack with config-loading options (config file, env, cwd, home, flags). */
export const layer = LlmspellLiveModule.layer
/** The whole stack configured by a TOML-shaped object instead of files, for embedding. */
export const layerFromObject = LlmspellLiveModule.layerFromObject
/** The stack over an EffectiveConfig layer of your own. */
export const layerWith = LlmspellLiveModule.layerWith

/** A model spec as an `@effect/ai` LanguageModel, over a ProviderRegistry you provide. */
export const languageModel = (
  spec: string,
  defaults: GenerateDefaults = {}
): Layer.Layer<LanguageModel.LanguageModel, ResolveError, ProviderRegistry> =>
  languageModelLayer(spec, defaults)

/** A model spec as an `@effect/ai` LanguageModel with the whole live stack included: one `Effect.provide`. */
export const LanguageModelLive = (
  spec: string,
  defaults: GenerateDefaults = {}
): Layer.Layer<LanguageModel.LanguageModel, ResolveError | ConfigError> =>
  languageModelLayer(spec, defaults).pipe(Layer.provide(LlmspellLiveModule.LlmspellLive))

/** A model spec as an `@effect/ai` EmbeddingModel, over a ProviderRegistry you provide. */
export const embeddingModel = (
  spec: string,
  options: { readonly maxBatchSize?: number } = {}
): Layer.Layer<EmbeddingModel.EmbeddingModel, ResolveError, ProviderRegistry> =>
  embeddingModelLayer(spec, options)

/** A model spec as an `@effect/ai` EmbeddingModel with the whole live stack included: one `Effect.provide`. */
export const EmbeddingModelLive = (
  spec: string,
  options: { readonly maxBatchSize?: number } = {}
): Layer.Layer<EmbeddingModel.EmbeddingModel, ResolveError | ConfigError> =>
  embeddingModelLayer(spec, options).pipe(Layer.provide(LlmspellLiveModule.LlmspellLive))

/** A model spec's tokenizer as an `@effect/ai` Tokenizer (GGUF models), over a ProviderRegistry you provide. */
export const tokenizer = (
  spec: string
): Layer.Layer<Tokenizer.Tokenizer, ResolveError, ProviderRegistry> =>
  tokenizerLayer(spec)

/** A model spec's tokenizer as an `@effect/ai` Tokenizer with the whole live stack included: one `Effect.provide`. */
export const TokenizerLive = (spec: string): Layer.Layer<Tokenizer.Tokenizer, ResolveError | ConfigError> =>
  tokenizerLayer(spec).pipe(Layer.provide(LlmspellLiveModule.LlmspellLive))

/** A model spec as a Reranker, over a LocalLLM you provide (embedded, or `LlmspellRemote.layer`). */
export const reranker = (spec: string): Layer.Layer<RerankerTag, never, LocalLLMTag> => RerankerLiveModule.layer(spec)

/** A model spec as a Reranker with the whole live stack included: one `Effect.provide`. */
export const RerankerLive = (spec: string): Layer.Layer<RerankerTag, ConfigError> =>
  RerankerLiveModule.layer(spec).pipe(Layer.provide(LlmspellLiveModule.LlmspellLive))

/**
 * Backend: the contract every backend instance fulfils (an Ollama server, the in-process GGUF
 * runtime, a cloud provider). The ProviderRegistry hands these out; LocalLLM and the CLI call
 * nothing else, so the backends look alike to them. `OllamaBackendFactory`, `GgufBackendFactory`
 * and `CloudBackendFactory` make these, one per configured instance.
 *
 * Each method's type names what it can fail with (`BackendGenerateError`, …): the union over every
 * implementation, each a Schema so a boundary can check it. An implementation may fail with less.
 */
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { ProviderInstanceConfig } from "../domain/ConfigSchema.js"
import {
  BackendCrashed,
  BackendError,
  BackendUnavailable,
  ChecksumMismatch,
  ContextOverflow,
  DeviceUnavailable,
  DiskFull,
  DownloadFailed,
  HubAuthRequired,
  InsufficientDiskSpace,
  InvalidModelFile,
  InvalidModelSpec,
  MissingCredentials,
  ModelBusy,
  ModelNotFound,
  ModelStoreUnusable,
  ProviderNotAvailable,
  RateLimited,
  SchemaViolation,
  ToolChoiceViolated,
  UnsupportedOperation,
  UnsupportedSchema,
  UsageError
} from "../domain/Errors.js"
import type {
  BackendStatus,
  BackendType,
  Embeddings,
  GenerateEvent,
  GenerateRequest,
  LoadedModel,
  LocalModel,
  ModelInfo,
  PullOptions,
  PullProgress,
  RemoveResult,
  RerankRequest,
  Reranking,
  VerifyReport
} from "../domain/Types.js"

// The building blocks: what reaching a backend, reading the model stores and loading a GGUF model
// can fail with, and what a hosted provider adds. Each method's union below is made of these.
const reach = [BackendUnavailable, BackendError] as const
const provider = [MissingCredentials, RateLimited] as const
// reading llmspell's store (a manifest that cannot be read) on the way to a GGUF file
const storeRead = [DownloadFailed, ModelStoreUnusable] as const
const loadModel = [InvalidModelFile, BackendCrashed, DeviceUnavailable] as const

/** `list`: the backend is down or failing, the provider refused the key or rate limits, a store cannot be read. */
export const BackendListError = Schema.Union(...reach, ...provider, ...storeRead)
/** What `Backend.list` can fail with. */
export type BackendListError = typeof BackendListError.Type

/** `info`: besides `list`'s, the model is missing or its file is not a valid GGUF. */
export const BackendInfoError = Schema.Union(ModelNotFound, InvalidModelFile, ...reach, ...provider, ...storeRead)
/** What `Backend.info` can fail with. */
export type BackendInfoError = typeof BackendInfoError.Type

/**
 * `pull`: the name is not a hub reference (InvalidModelSpec: an unknown alias or quantization), or
 * not on the registry or hub; the hub refuses, rate limits or breaks off; the
 * bytes are wrong or not GGUF; the disk or store cannot take them; another pull holds the file;
 * a flag that does not apply (`--quantization` on Ollama); a backend with nothing to pull (cloud).
 */
export const BackendPullError = Schema.Union(
  InvalidModelSpec,
  ModelNotFound,
  UsageError,
  UnsupportedOperation,
  HubAuthRequired,
  RateLimited,
  ChecksumMismatch,
  InvalidModelFile,
  DiskFull,
  InsufficientDiskSpace,
  ModelStoreUnusable,
  ModelBusy,
  ...reach,
  ...storeRead
)
/** What `Backend.pull` can fail with. */
export type BackendPullError = typeof BackendPullError.Type

/** `remove`: the model is missing, a pull writes it now, the store cannot be written, or the backend keeps no models (cloud). */
export const BackendRemoveError = Schema.Union(ModelNotFound, ModelBusy, ModelStoreUnusable, UnsupportedOperation, ...reach, ...storeRead)
/** What `Backend.remove` can fail with. */
export type BackendRemoveError = typeof BackendRemoveError.Type

/** `verify`: the model is missing, a file cannot be read, or the backend keeps no files to check (cloud). */
export const BackendVerifyError = Schema.Union(ModelNotFound, ModelStoreUnusable, UnsupportedOperation, ...reach, ...storeRead)
/** What `Backend.verify` can fail with. */
export type BackendVerifyError = typeof BackendVerifyError.Type

/**
 * `generate`: the model is missing or will not load; the prompt does not fit; the schema cannot be
 * enforced, or the answer breaks it or the tool choice; a request field this backend cannot
 * honour (UnsupportedOperation naming it); the worker died; the provider refused.
 */
export const BackendGenerateError = Schema.Union(
  ModelNotFound,
  ContextOverflow,
  UnsupportedSchema,
  UnsupportedOperation,
  SchemaViolation,
  ToolChoiceViolated,
  ...loadModel,
  ...reach,
  ...provider,
  ...storeRead
)
/** What `Backend.generate` can fail with. */
export type BackendGenerateError = typeof BackendGenerateError.Type

/** `embed`: the model is missing, will not load or cannot embed; an input longer than the context. */
export const BackendEmbedError = Schema.Union(
  ModelNotFound,
  ContextOverflow,
  UnsupportedOperation,
  ...loadModel,
  ...reach,
  ...provider,
  ...storeRead
)
/** What `Backend.embed` can fail with. */
export type BackendEmbedError = typeof BackendEmbedError.Type

/**
 * `rerank`: the model is missing, will not load or cannot rank (UnsupportedOperation naming why: no
 * classifier head, a backend without a rerank API); a query + document longer than the context.
 */
export const BackendRerankError = Schema.Union(...BackendEmbedError.members)
/** What `Backend.rerank` can fail with. */
export type BackendRerankError = typeof BackendRerankError.Type

/** `tokenize`: the model is missing, will not load or has no tokenizer llmspell can call. */
export const BackendTokenizeError = Schema.Union(ModelNotFound, UnsupportedOperation, ...loadModel, ...reach, ...storeRead)
/** What `Backend.tokenize` can fail with. */
export type BackendTokenizeError = typeof BackendTokenizeError.Type

/**
 * `countTokens`: the model is missing or will not load; the request's schema cannot be enforced
 * (its prompt would be another); this loader or copy of the model cannot count.
 */
export const BackendCountTokensError = Schema.Union(ModelNotFound, UnsupportedSchema, UnsupportedOperation, ...loadModel, ...reach, ...storeRead)
/** What `Backend.countTokens` can fail with. */
export type BackendCountTokensError = typeof BackendCountTokensError.Type

/** `ps`: the backend is down or its answer is malformed. */
export const BackendPsError = Schema.Union(...reach)
/** What `Backend.ps` can fail with. */
export type BackendPsError = typeof BackendPsError.Type

/** `keepAlive`: the model is missing, or the backend is down or failing. */
export const BackendKeepAliveError = Schema.Union(ModelNotFound, ...reach, ...storeRead)
/** What `Backend.keepAlive` can fail with. */
export type BackendKeepAliveError = typeof BackendKeepAliveError.Type

/** `load`: besides `keepAlive`'s, the model will not load. */
export const BackendLoadError = Schema.Union(ModelNotFound, ...loadModel, ...reach, ...storeRead)
/** What `Backend.load` can fail with. */
export type BackendLoadError = typeof BackendLoadError.Type

/** `BackendFactory.make`: the client cannot be set up (Ollama), or llmspell has no client for the provider (cloud). */
export const BackendMakeError = Schema.Union(BackendUnavailable, ProviderNotAvailable)
/** What `BackendFactory.make` can fail with. */
export type BackendMakeError = typeof BackendMakeError.Type

/** One backend instance, e.g. the `ollama` or `workstation` server, or the `gguf` runtime. */
export interface Backend {
  /** The instance name from the config. */
  readonly name: string
  readonly type: BackendType
  /** Health and configuration; never fails: an unreachable backend is `available: false`. */
  readonly status: Effect.Effect<BackendStatus>
  /** Models present, with what the backend can learn of each (Ollama: a show per model not yet asked). */
  readonly list: Effect.Effect<ReadonlyArray<LocalModel>, BackendListError>
  /**
   * Models present, without what takes a request per model (Ollama's capabilities): for callers
   * that only need names and sizes. Absent where `list` costs no more.
   */
  readonly listNames?: Effect.Effect<ReadonlyArray<LocalModel>, BackendListError> | undefined
  /** What is known about a model (metadata, memory needs). */
  readonly info: (model: string) => Effect.Effect<ModelInfo, BackendInfoError>
  /** Downloads a model; progress events end with phase `done` and its result. */
  readonly pull: (model: string, options?: PullOptions) => Stream.Stream<PullProgress, BackendPullError>
  /** Deletes a model (and for the GGUF store its partial downloads). */
  readonly remove: (model: string) => Effect.Effect<RemoveResult, BackendRemoveError>
  /** Re-checks installed files against what was downloaded, where the backend can. */
  readonly verify: (model: string | undefined) => Effect.Effect<VerifyReport, BackendVerifyError>
  /** Streams a chat completion: text deltas, then one `Finish`. Interrupting stops generation. */
  readonly generate: (model: string, request: GenerateRequest) => Stream.Stream<GenerateEvent, BackendGenerateError>
  /** Embeds each input (one vector per input, in order); a backend that cannot fails with UnsupportedOperation. */
  readonly embed: (model: string, inputs: ReadonlyArray<string>) => Effect.Effect<Embeddings, BackendEmbedError>
  /**
   * Scores each document's relevance to the query (`results` in any order: LocalLLM sorts and cuts
   * to `topN`, which a backend may also apply). Absent: the backend cannot rank (LocalLLM answers
   * UnsupportedOperation).
   */
  readonly rerank?: (model: string, request: RerankRequest) => Effect.Effect<Reranking, BackendRerankError>
  /** The model's tokens for a text, where the backend can count them (Ollama has no tokenize route). */
  readonly tokenize?: (model: string, text: string) => Effect.Effect<ReadonlyArray<number>, BackendTokenizeError>
  /**
   * The tokens of a request's prompt as the model will see it (its chat template, the tools), without
   * generating; where the backend can count them without running the model (GGUF).
   */
  readonly countTokens?: (model: string, request: GenerateRequest) => Effect.Effect<number, BackendCountTokensError>
  /** Models loaded in memory now (absent: the backend cannot say; LocalLLM.ps falls back to `status`). */
  readonly ps?: Effect.Effect<ReadonlyArray<LoadedModel>, BackendPsError>
  /**
   * How long a loaded model stays loaded once idle, in seconds: 0 unloads it now (once its
   * requests are done), a negative value keeps it loaded. No-op for a model that is not loaded.
   */
  readonly keepAlive?: (model: string, seconds: number) => Effect.Effect<void, BackendKeepAliveError>
  /**
   * Loads a model into memory now, without generating (Ollama's empty chat request); it then stays
   * loaded for `keepAliveSeconds` once idle, or the instance's idle time. Absent: nothing to load (cloud).
   */
  readonly load?: (model: string, keepAliveSeconds?: number) => Effect.Effect<void, BackendLoadError>
}

/** Creates backend instances of one type from their config entries; the registry caches them. */
export interface BackendFactory<C extends ProviderInstanceConfig = ProviderInstanceConfig> {
  readonly type: BackendType
  /** Builds an instance; the scope is the registry's, closed when the program ends. */
  readonly make: (instance: C) => Effect.Effect<Backend, BackendMakeError, Scope.Scope>
}

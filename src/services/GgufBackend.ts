/**
 * GgufBackend: runs GGUF models with node-llama-cpp. The registry asks its factory for a `Backend`
 * per configured gguf instance; what it gets is a `GgufBackend`, the same contract with the errors
 * of each method named. Live implementation: `layers/gguf/GgufBackendLive.ts`, over the
 * `LlamaLoader` seam (`services/LlamaLoader.ts`).
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { GgufInstanceConfig } from "../domain/ConfigSchema.js"
import type {
  BackendCrashed,
  BackendError,
  ContextOverflow,
  DeviceUnavailable,
  InvalidModelFile,
  ModelNotFound,
  SchemaViolation,
  UnsupportedOperation,
  UnsupportedSchema
} from "../domain/Errors.js"
import type {
  BackendStatus,
  Embeddings,
  GenerateEvent,
  GenerateRequest,
  LoadedModel,
  LocalModel,
  ModelInfo,
  PullOptions,
  PullProgress,
  RemoveResult,
  Reranking,
  RerankRequest,
  VerifyReport
} from "../domain/Types.js"
import type { Backend, BackendFactory } from "./Backend.js"
import type { ModelDownloaderService } from "./ModelDownloader.js"
import type { ModelStoreService } from "./ModelStore.js"

type ErrorOf<F extends (...args: ReadonlyArray<any>) => Effect.Effect<any, any, any>> = Effect.Effect.Error<ReturnType<F>>

/** A model name that names no file: not in any store, or a path with nothing there. */
export type GgufResolveError = ModelNotFound | ErrorOf<ModelStoreService["find"]>

/** Loading a file: refused by our GGUF reader, gone, or failed in llama.cpp (or its worker died). */
export type GgufLoadError = InvalidModelFile | ModelNotFound | BackendError | BackendCrashed | DeviceUnavailable

/** A generation: the name, the load, the schema, the prompt's fit, the answer's checks, the worker. */
export type GgufGenerateError = GgufResolveError | GgufLoadError | UnsupportedSchema | ContextOverflow | SchemaViolation | UnsupportedOperation

/** One GGUF backend instance: `Backend` with the errors each method can fail with. */
export interface GgufBackend extends Backend {
  readonly type: "gguf"
  readonly list: Effect.Effect<ReadonlyArray<LocalModel>, ErrorOf<ModelStoreService["list"]>>
  readonly info: (model: string) => Effect.Effect<ModelInfo, GgufResolveError | InvalidModelFile>
  readonly pull: (model: string, options?: PullOptions) => Stream.Stream<PullProgress, BackendError | Stream.Stream.Error<ReturnType<ModelDownloaderService["pull"]>>>
  readonly remove: (model: string) => Effect.Effect<RemoveResult, BackendError | ErrorOf<ModelStoreService["find"]> | ErrorOf<ModelStoreService["remove"]>>
  readonly verify: (model: string | undefined) => Effect.Effect<VerifyReport, ErrorOf<ModelStoreService["verify"]>>
  readonly generate: (model: string, request: GenerateRequest) => Stream.Stream<GenerateEvent, GgufGenerateError>
  readonly embed: (
    model: string,
    inputs: ReadonlyArray<string>
  ) => Effect.Effect<Embeddings, GgufResolveError | GgufLoadError | UnsupportedOperation | ContextOverflow>
  readonly rerank: (
    model: string,
    request: RerankRequest
  ) => Effect.Effect<Reranking, GgufResolveError | GgufLoadError | UnsupportedOperation | ContextOverflow>
  readonly tokenize: (model: string, text: string) => Effect.Effect<ReadonlyArray<number>, GgufResolveError | GgufLoadError | UnsupportedOperation>
  /** One row per model, its chat, embedding and ranking contexts as `contexts`. */
  readonly ps: Effect.Effect<ReadonlyArray<LoadedModel>>
  /** Applies to the whole model (all its contexts); 0 unloads it once its requests are done. */
  readonly keepAlive: (model: string, seconds: number) => Effect.Effect<void, GgufResolveError>
  readonly load: (model: string, keepAliveSeconds?: number) => Effect.Effect<void, GgufResolveError | GgufLoadError>
  readonly status: Effect.Effect<BackendStatus>
}

/**
 * Creates GGUF backend instances. The tag holds the registry's factory contract (so scripted
 * factories in llmspell/testing fit it); the live factory's instances are `GgufBackend`s.
 */
export class GgufBackendFactory extends Context.Tag("llmspell/GgufBackendFactory")<GgufBackendFactory, BackendFactory<GgufInstanceConfig>>() {}

/**
 * Backend: the contract every backend instance fulfils (an Ollama server, the in-process GGUF
 * runtime). The ProviderRegistry hands these out; LocalLLM and the CLI call nothing else, so both
 * backends look alike to them. `OllamaBackendFactory`, `GgufBackendFactory` and `CloudBackendFactory` make these, one per configured instance.
 */
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { ProviderInstanceConfig } from "../domain/ConfigSchema.js"
import type { LlmspellError } from "../domain/Errors.js"
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
  VerifyReport
} from "../domain/Types.js"

/** One backend instance, e.g. the `ollama` or `workstation` server, or the `gguf` runtime. */
export interface Backend {
  /** The instance name from the config. */
  readonly name: string
  readonly type: BackendType
  /** Health and configuration; never fails: an unreachable backend is `available: false`. */
  readonly status: Effect.Effect<BackendStatus>
  /** Models present. */
  readonly list: Effect.Effect<ReadonlyArray<LocalModel>, LlmspellError>
  /** What is known about a model (metadata, memory needs). */
  readonly info: (model: string) => Effect.Effect<ModelInfo, LlmspellError>
  /** Downloads a model; progress events end with phase `done` and its result. */
  readonly pull: (model: string, options?: PullOptions) => Stream.Stream<PullProgress, LlmspellError>
  /** Deletes a model (and for the GGUF store its partial downloads). */
  readonly remove: (model: string) => Effect.Effect<RemoveResult, LlmspellError>
  /** Re-checks installed files against what was downloaded, where the backend can. */
  readonly verify: (model: string | undefined) => Effect.Effect<VerifyReport, LlmspellError>
  /** Streams a chat completion: text deltas, then one `Finish`. Interrupting stops generation. */
  readonly generate: (model: string, request: GenerateRequest) => Stream.Stream<GenerateEvent, LlmspellError>
  /** Embeds each input (one vector per input, in order); a backend that cannot fails with UnsupportedOperation. */
  readonly embed: (model: string, inputs: ReadonlyArray<string>) => Effect.Effect<Embeddings, LlmspellError>
  /** The model's tokens for a text, where the backend can count them (Ollama has no tokenize route). */
  readonly tokenize?: (model: string, text: string) => Effect.Effect<ReadonlyArray<number>, LlmspellError>
  /**
   * The tokens of a request's prompt as the model will see it (its chat template, the tools), without
   * generating; where the backend can count them without running the model (GGUF).
   */
  readonly countTokens?: (model: string, request: GenerateRequest) => Effect.Effect<number, LlmspellError>
  /** Models loaded in memory now (absent: the backend cannot say; LocalLLM.ps falls back to `status`). */
  readonly ps?: Effect.Effect<ReadonlyArray<LoadedModel>, LlmspellError>
  /**
   * How long a loaded model stays loaded once idle, in seconds: 0 unloads it now (once its
   * requests are done), a negative value keeps it loaded. No-op for a model that is not loaded.
   */
  readonly keepAlive?: (model: string, seconds: number) => Effect.Effect<void, LlmspellError>
  /**
   * Loads a model into memory now, without generating (Ollama's empty chat request); it then stays
   * loaded for `keepAliveSeconds` once idle, or the instance's idle time. Absent: nothing to load (cloud).
   */
  readonly load?: (model: string, keepAliveSeconds?: number) => Effect.Effect<void, LlmspellError>
}

/** Creates backend instances of one type from their config entries; the registry caches them. */
export interface BackendFactory<C extends ProviderInstanceConfig = ProviderInstanceConfig> {
  readonly type: BackendType
  /** Builds an instance; the scope is the registry's, closed when the program ends. */
  readonly make: (instance: C) => Effect.Effect<Backend, LlmspellError, Scope.Scope>
}

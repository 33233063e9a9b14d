/**
 * LocalLLM: the facade the CLI and other programs call. It routes through the ProviderRegistry to
 * the backend instances and returns the shared types of `domain/Types.ts`. A failing backend never
 * hides another's results: multi-backend calls report it per instance instead of failing.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { LlmspellError } from "../domain/Errors.js"
import type {
  BackendStatus,
  RunResult,
  BackendType,
  Embeddings,
  GenerateEvent,
  GenerateRequest,
  LoadedModel,
  ModelList,
  ModelInfo,
  PullOptions,
  PullProgress,
  RemoveResult,
  VerifyReport
} from "../domain/Types.js"
import type { ResolvedModel } from "./ProviderRegistry.js"

/** Which backends a multi-backend call covers. */
export type BackendFilter = BackendType | "all"


/** The facade. */
export interface LocalLLMService {
  readonly status: (filter?: BackendFilter) => Effect.Effect<ReadonlyArray<BackendStatus>>
  readonly list: (filter?: BackendFilter) => Effect.Effect<ModelList>
  readonly resolve: (spec: string) => Effect.Effect<ResolvedModel, LlmspellError>
  readonly info: (spec: string) => Effect.Effect<ModelInfo, LlmspellError>
  readonly pull: (spec: string, options?: PullOptions) => Stream.Stream<PullProgress, LlmspellError>
  readonly remove: (spec: string) => Effect.Effect<RemoveResult, LlmspellError>
  /** Verifies one model, or every model of the default GGUF store when no spec is given. */
  readonly verify: (spec?: string) => Effect.Effect<VerifyReport, LlmspellError>
  /** Streams a chat completion: text deltas, then one `Finish` with usage and timings. */
  readonly generate: (spec: string, request: GenerateRequest) => Stream.Stream<GenerateEvent, LlmspellError>
  /**
   * Runs a chat completion to its end. With a `json` or `{ schema }` response format the answer is
   * parsed and checked (`SchemaViolation` when it does not follow), and returned as `object`.
   */
  readonly run: (spec: string, request: GenerateRequest) => Effect.Effect<RunResult, LlmspellError>
  /** Embeds texts with a model: one vector per input, in order. */
  readonly embed: (spec: string, inputs: ReadonlyArray<string>) => Effect.Effect<Embeddings, LlmspellError>
  /** Models loaded in memory now, each with its backend and instance; an instance that cannot answer is left out. */
  readonly ps: (filter?: BackendFilter) => Effect.Effect<ReadonlyArray<LoadedModel>>
  /** Unloads a model now (after the requests using it finish); no-op when it is not loaded. */
  readonly unload: (spec: string) => Effect.Effect<void, LlmspellError>
  /**
   * How long a loaded model stays loaded once idle, in seconds (Ollama's `keep_alive`): 0 unloads
   * it as soon as it is idle, a negative value keeps it loaded. No-op when it is not loaded.
   */
  readonly keepAlive: (spec: string, seconds: number) => Effect.Effect<void, LlmspellError>
}

/** The facade's tag. */
export class LocalLLM extends Context.Tag("llmspell/LocalLLM")<LocalLLM, LocalLLMService>() {}

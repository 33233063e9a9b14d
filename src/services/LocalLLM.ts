/**
 * LocalLLM: the facade the CLI and other programs call. It routes through the ProviderRegistry to
 * the backend instances and returns the shared types of `domain/Types.ts`. A failing backend never
 * hides another's results: multi-backend calls report it per instance instead of failing.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { BackendError, type LlmspellError } from "../domain/Errors.js"
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
import type { AvailableReport } from "../domain/Catalog.js"
import type { InstallOllamaReport } from "../domain/InstallOllama.js"
import type { InstallOllamaFlags, InstanceSummary, RemovalPlan } from "../domain/Protocol.js"
import type { ImportResult, PullResult } from "../domain/Types.js"
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
  /**
   * Loads a model into memory now, without generating, so the first request does not wait for it;
   * it then stays loaded for `keepAliveSeconds` once idle (negative: until unloaded), else the
   * instance's idle time. A model that does not exist fails with ModelNotFound. No-op for cloud models.
   */
  readonly load: (spec: string, keepAliveSeconds?: number) => Effect.Effect<void, LlmspellError>
  /** The configured backend instances a multi-backend call covers. */
  readonly instances: (filter?: BackendFilter) => Effect.Effect<ReadonlyArray<InstanceSummary>>
  /** The files a `remove` of this spec would delete and the bytes it frees, before anything is deleted. */
  readonly planRemoval: (spec: string) => Effect.Effect<RemovalPlan, LlmspellError>
  /** The curated catalog, marked with what fits free memory now and what is already on this machine. */
  readonly available: (options?: { readonly recommendedOnly?: boolean }) => Effect.Effect<AvailableReport, LlmspellError>
  /** Makes a GGUF file on disk a model of the default GGUF store (hard link, or copy). */
  readonly importFile: (
    file: string,
    options?: { readonly name?: string; readonly copy?: boolean }
  ) => Effect.Effect<ImportResult, LlmspellError>
  /** Whether Ollama is installed and running, and what installing it would run; runs nothing. */
  readonly planOllamaInstall: (flags: InstallOllamaFlags) => Effect.Effect<InstallOllamaReport, LlmspellError>
  /** The plan carried out: with `yes` and without `dryRun`, the official installer runs (its output on stderr). */
  readonly installOllama: (flags: InstallOllamaFlags) => Effect.Effect<InstallOllamaReport, LlmspellError>
}

/** Runs a pull to its result (the `done` event's); `onProgress` sees every event on the way. */
export const pullResult = <E, R>(
  events: Stream.Stream<PullProgress, E, R>,
  onProgress: (event: PullProgress) => void = () => {}
): Effect.Effect<PullResult, E | BackendError, R> =>
  events.pipe(
    Stream.tap((event) => Effect.sync(() => onProgress(event))),
    Stream.runLast,
    Effect.flatMap((last) =>
      last._tag === "Some" && last.value.result !== undefined
        ? Effect.succeed(last.value.result)
        : Effect.fail(new BackendError({ backend: "llmspell", operation: "pull", reason: "the pull ended without a result" }))
    )
  )

/** The facade's tag. */
export class LocalLLM extends Context.Tag("llmspell/LocalLLM")<LocalLLM, LocalLLMService>() {}

/**
 * LocalLLM: the facade the CLI and other programs call. It routes through the ProviderRegistry to
 * the backend instances and returns the shared types of `domain/Types.ts`. A failing backend never
 * hides another's results: multi-backend calls report it per instance instead of failing.
 *
 * Each operation's type names what it can fail with (`GenerateError`, `PullError`, …), one Schema
 * union per operation, which the protocol (`domain/Protocol.ts`) sends as is: a LocalLLM is either
 * embedded or a connection to `llmspell serve` (`LlmspellRemote`), so every operation on a spec can
 * also fail with BackendUnavailable (the server went away) and ServerRefused (its policy:
 * `--read-only`, no `--allow-paths`). `catchTags` on an operation's error covers exactly these.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import {
  BackendError,
  BackendUnavailable,
  DiskFull,
  DownloadFailed,
  InvalidModelFile,
  IncompleteAnswer,
  InvalidRequest,
  ModelNotFound,
  ModelStoreUnusable,
  ServerRefused,
  type UnsupportedOperation
} from "../domain/Errors.js"
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
  RerankRequest,
  Reranking,
  VerifyReport
} from "../domain/Types.js"
import type { AvailableReport } from "../domain/Catalog.js"
import type { InstallOllamaReport } from "../domain/InstallOllama.js"
import type { InstallOllamaFlags, InstanceSummary, RemovalPlan } from "../domain/Protocol.js"
import type { ImportResult, PullResult } from "../domain/Types.js"
import {
  BackendCountTokensError,
  BackendEmbedError,
  BackendGenerateError,
  BackendInfoError,
  BackendKeepAliveError,
  BackendLoadError,
  BackendPullError,
  BackendRemoveError,
  BackendRerankError,
  BackendVerifyError
} from "./Backend.js"
import { type ResolvedModel, ResolveError, RouteError } from "./ProviderRegistry.js"

/** Which backends a multi-backend call covers. */
export type BackendFilter = BackendType | "all"

// What every operation on a spec can fail with before its backend does: the spec does not parse or
// route (InvalidModelSpec, ProviderNotAvailable), the instance or the server cannot be reached
// (BackendUnavailable), a server refuses it by policy (ServerRefused).
const onSpec = [...ResolveError.members, ServerRefused] as const

/** `info`: the spec's errors, and the backend's (`BackendInfoError`). */
export const InfoError = Schema.Union(...onSpec, ...BackendInfoError.members)
/** What `info` can fail with. */
export type InfoError = typeof InfoError.Type

/** `pull`: the spec's errors, and the backend's (`BackendPullError`: the hub, the bytes, the disk, the store). */
export const PullError = Schema.Union(...onSpec, ...BackendPullError.members)
/** What `pull` can fail with. */
export type PullError = typeof PullError.Type

/** `remove`: the spec's errors, and the backend's (`BackendRemoveError`). */
export const RemoveError = Schema.Union(...onSpec, ...BackendRemoveError.members)
/** What `remove` can fail with. */
export type RemoveError = typeof RemoveError.Type

/** `planRemoval`: a spec that does not route; a server that is gone or refuses. */
export const PlanRemovalError = Schema.Union(...RouteError.members, BackendUnavailable, ServerRefused)
/** What `planRemoval` can fail with. */
export type PlanRemovalError = typeof PlanRemovalError.Type

/** `verify`: the spec's errors (without a spec: no GGUF instance, BackendUnavailable), and the backend's. */
export const VerifyError = Schema.Union(...onSpec, ...BackendVerifyError.members)
/** What `verify` can fail with. */
export type VerifyError = typeof VerifyError.Type

/** `generate`: a request out of range (InvalidRequest), the spec's errors, and the backend's (`BackendGenerateError`). */
export const GenerateError = Schema.Union(InvalidRequest, ...onSpec, ...BackendGenerateError.members)
/** What `generate` can fail with. */
export type GenerateError = typeof GenerateError.Type

/**
 * `run`: as `generate` (an answer that breaks its schema is SchemaViolation; a stream without its
 * end, BackendError), and IncompleteAnswer: `run` promises the structured answer asked for, so one
 * cut by the token limit is a typed failure (`generate` ends with the "length" finish instead).
 */
export const RunError = Schema.Union(...GenerateError.members, IncompleteAnswer)
/** What `run` can fail with. */
export type RunError = typeof RunError.Type

/**
 * Counting a request's prompt on the backend a spec resolves to (`resolve`, then
 * `Backend.countTokens`, as `llmspell serve`'s count_tokens does): the spec's errors, and the backend's.
 */
export const CountTokensError = Schema.Union(...onSpec, ...BackendCountTokensError.members)
/** What counting a prompt through `resolve` can fail with. */
export type CountTokensError = typeof CountTokensError.Type

/** `embed`: the spec's errors, and the backend's (`BackendEmbedError`). */
export const EmbedError = Schema.Union(...onSpec, ...BackendEmbedError.members)
/** What `embed` can fail with. */
export type EmbedError = typeof EmbedError.Type

/**
 * `rerank`: a request out of range (InvalidRequest: topN, too many documents), the spec's errors,
 * and the backend's (`BackendRerankError`: also a model or backend that cannot rank).
 */
export const RerankError = Schema.Union(InvalidRequest, ...onSpec, ...BackendRerankError.members)
/** What `rerank` can fail with. */
export type RerankError = typeof RerankError.Type

/**
 * `keepAlive` and `unload`: the spec's errors, a number of seconds out of range (InvalidRequest),
 * and the backend's (`BackendKeepAliveError`).
 */
export const KeepAliveError = Schema.Union(...onSpec, InvalidRequest, ...BackendKeepAliveError.members)
/** What `keepAlive` and `unload` can fail with. */
export type KeepAliveError = typeof KeepAliveError.Type

/** `load`: the spec's errors, and the backend's (`BackendLoadError`: also a model that will not load). */
export const LoadError = Schema.Union(...onSpec, InvalidRequest, ...BackendLoadError.members)
/** What `load` can fail with. */
export type LoadError = typeof LoadError.Type

/** `available`: only a server that is gone (the embedded catalog never fails). */
export const AvailableError = Schema.Union(BackendUnavailable)
/** What `available` can fail with. */
export type AvailableError = typeof AvailableError.Type

/**
 * `importFile`: no GGUF instance (or a server gone), a server that refuses, no such file, a file
 * that is not a GGUF model, a store that cannot take it.
 */
export const ImportError = Schema.Union(
  BackendUnavailable,
  ServerRefused,
  ModelNotFound,
  InvalidModelFile,
  ModelStoreUnusable,
  DiskFull,
  DownloadFailed
)
/** What `importFile` can fail with. */
export type ImportError = typeof ImportError.Type

/** `planOllamaInstall`: only a server that is gone (the plan itself never fails). */
export const PlanOllamaInstallError = Schema.Union(BackendUnavailable)
/** What `planOllamaInstall` can fail with. */
export type PlanOllamaInstallError = typeof PlanOllamaInstallError.Type

/** `installOllama`: the installer cannot be downloaded (DownloadFailed) or fails (BackendError); a server gone or refusing. */
export const InstallOllamaError = Schema.Union(BackendUnavailable, ServerRefused, DownloadFailed, BackendError)
/** What `installOllama` can fail with. */
export type InstallOllamaError = typeof InstallOllamaError.Type


/** Options of `list`. */
export interface ListOptions {
  /**
   * Each model's capabilities where the backend must ask per model for them (Ollama's /api/show);
   * default true. False where they are not shown (`model list`'s table, Ollama's `/api/tags`).
   */
  readonly capabilities?: boolean | undefined
}

/** The facade. */
export interface LocalLLMService {
  readonly status: (filter?: BackendFilter) => Effect.Effect<ReadonlyArray<BackendStatus>>
  readonly list: (filter?: BackendFilter, options?: ListOptions) => Effect.Effect<ModelList>
  /** The live backend a spec routes to (embedded only: a connection to a server fails with UnsupportedOperation). */
  readonly resolve: (spec: string) => Effect.Effect<ResolvedModel, ResolveError | UnsupportedOperation | ServerRefused>
  readonly info: (spec: string) => Effect.Effect<ModelInfo, InfoError>
  readonly pull: (spec: string, options?: PullOptions) => Stream.Stream<PullProgress, PullError>
  readonly remove: (spec: string) => Effect.Effect<RemoveResult, RemoveError>
  /** Verifies one model, or every model of the default GGUF store when no spec is given. */
  readonly verify: (spec?: string) => Effect.Effect<VerifyReport, VerifyError>
  /** Streams a chat completion: text deltas, then one `Finish` with usage and timings. */
  readonly generate: (spec: string, request: GenerateRequest) => Stream.Stream<GenerateEvent, GenerateError>
  /**
   * Runs a chat completion to its end. With a `json` or `{ schema }` response format the answer is
   * parsed and checked (`SchemaViolation` when it does not follow), and returned as `object`.
   */
  readonly run: (spec: string, request: GenerateRequest) => Effect.Effect<RunResult, RunError>
  /** Embeds texts with a model: one vector per input, in order. */
  readonly embed: (spec: string, inputs: ReadonlyArray<string>) => Effect.Effect<Embeddings, EmbedError>
  /**
   * Orders documents by their relevance to a query with a reranker model: each document's index
   * and score, best first, cut to `topN`, with the tokens read.
   */
  readonly rerank: (spec: string, request: RerankRequest) => Effect.Effect<Reranking, RerankError>
  /** Models loaded in memory now, each with its backend and instance; an instance that cannot answer is left out. */
  readonly ps: (filter?: BackendFilter) => Effect.Effect<ReadonlyArray<LoadedModel>>
  /** Unloads a model now (after the requests using it finish); no-op when it is not loaded. */
  readonly unload: (spec: string) => Effect.Effect<void, KeepAliveError>
  /**
   * How long a loaded model stays loaded once idle, in seconds (Ollama's `keep_alive`): 0 unloads
   * it as soon as it is idle, a negative value keeps it loaded. No-op when it is not loaded.
   */
  readonly keepAlive: (spec: string, seconds: number) => Effect.Effect<void, KeepAliveError>
  /**
   * Loads a model into memory now, without generating, so the first request does not wait for it;
   * it then stays loaded for `keepAliveSeconds` once idle (negative: until unloaded), else the
   * instance's idle time. A model that does not exist fails with ModelNotFound. No-op for cloud models.
   */
  readonly load: (spec: string, keepAliveSeconds?: number) => Effect.Effect<void, LoadError>
  /** The configured backend instances a multi-backend call covers. */
  readonly instances: (filter?: BackendFilter) => Effect.Effect<ReadonlyArray<InstanceSummary>>
  /** The files a `remove` of this spec would delete and the bytes it frees, before anything is deleted. */
  readonly planRemoval: (spec: string) => Effect.Effect<RemovalPlan, PlanRemovalError>
  /** The curated catalog, marked with what fits free memory now and what is already on this machine. */
  readonly available: (options?: { readonly recommendedOnly?: boolean }) => Effect.Effect<AvailableReport, AvailableError>
  /** Makes a GGUF file on disk a model of the default GGUF store (hard link, or copy). */
  readonly importFile: (
    file: string,
    options?: { readonly name?: string; readonly copy?: boolean }
  ) => Effect.Effect<ImportResult, ImportError>
  /** Whether Ollama is installed and running, and what installing it would run; runs nothing. */
  readonly planOllamaInstall: (flags: InstallOllamaFlags) => Effect.Effect<InstallOllamaReport, PlanOllamaInstallError>
  /** The plan carried out: with `yes` and without `dryRun`, the official installer runs (its output on stderr). */
  readonly installOllama: (flags: InstallOllamaFlags) => Effect.Effect<InstallOllamaReport, InstallOllamaError>
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

/**
 * LlamaLoader: the one seam between the GGUF backend (model pool, request queueing, timings,
 * store) and llama.cpp itself (load a file, generate on a context sequence, describe the runtime).
 * Live: `layers/LlamaLoaderLive.ts` — llama.cpp in a supervised worker process per loaded model
 * (`isolation = "process"`) or in this process (`"none"`). Tests swap in `LlamaLoaderMock` to
 * drive the pool with TestClock.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { GgufInstanceConfig } from "../domain/ConfigSchema.js"
import type { BackendCrashed, BackendError, ContextOverflow, DeviceUnavailable } from "../domain/Errors.js"
import type { FinishReason, GenerateRequest, ToolCall } from "../domain/Types.js"

/** A compute device llama.cpp can run on. */
export type Device = "cuda" | "metal" | "vulkan" | "cpu"

/** The llama.cpp runtime of this process, as `model status` reports it. */
export interface RuntimeInfo {
  readonly device: Device
  /** Why this device: asked for explicitly, or the best one `auto` found. */
  readonly reason: string
  readonly binary: "prebuilt" | "local build"
  /** node-llama-cpp's version and the llama.cpp release its binary was built from. */
  readonly libraryVersion?: string | undefined
  readonly llamaCppRelease?: string | undefined
  readonly gpuNames: ReadonlyArray<string>
  readonly vramTotalBytes?: number | undefined
  readonly vramFreeBytes?: number | undefined
  readonly warnings: ReadonlyArray<string>
}

/** Where llama.cpp runs: a worker process per loaded model (a crash is an error), or this process. */
export type Isolation = "process" | "none"

/** How to load a model: everything already resolved from the instance config (no "auto" threads). */
export interface LoadOptions {
  /** Default "process". */
  readonly isolation?: Isolation | undefined
  /** The instance loading it, named in errors. */
  readonly instance?: string | undefined
  /** The model's name as the user gave it, named in errors (defaults to the path). */
  readonly model?: string | undefined
  readonly device: GgufInstanceConfig["device"]
  readonly threads: number
  /** Per sequence; "auto" lets the loader fit it to memory, up to `contextSizeCap`. */
  readonly contextSize: "auto" | number
  readonly contextSizeCap: number
  readonly gpuLayers: "auto" | number
  /** Context sequences: requests the loaded model serves at once. */
  readonly sequences: number
  /** Worker only: the budget for a chat template + tokenizing (the loader's default when absent). */
  readonly prepareTimeoutMs?: number | undefined
  /** Worker only: the worker's heap cap in MiB (the loader's default when absent). */
  readonly maxHeapMb?: number | undefined
  /**
   * What the context is for (default "chat"): an "embedding" load creates an embedding context
   * (`createEmbeddingContext`, one sequence) instead of chat sequences; its handle embeds and
   * tokenizes but does not generate; a "ranking" load creates a ranking context
   * (`createRankingContext`, for reranker models) whose handle ranks. The pool keeps them apart
   * (each costs its own memory).
   */
  readonly purpose?: "chat" | "embedding" | "ranking" | undefined
}

/** One ranked document: its relevance score (0 to 1) and the tokens its pair with the query took. */
export interface RankedDocument {
  readonly score: number
  readonly tokens: number
}

/** One embedded input: its vector and the tokens it took (with the BOS/EOS the model adds). */
export interface EmbeddedInput {
  readonly vector: ReadonlyArray<number>
  readonly tokens: number
}

/** What the loader reports while generating on one sequence. */
export type LoaderEvent =
  | { readonly _tag: "Text"; readonly text: string }
  /** Thinking text (node-llama-cpp's thought segments), when the request did not turn reasoning off. */
  | { readonly _tag: "Reasoning"; readonly text: string }
  /** A whole tool call with its decoded parameters (before `Done`, whose reason is then `tool-calls`). */
  | { readonly _tag: "ToolCall"; readonly call: ToolCall }
  | {
    readonly _tag: "Done"
    readonly text: string
    /** The whole prompt, cached part included. */
    readonly promptTokens: number
    /** The part of the prompt already in the sequence's KV cache, not evaluated again (absent: unknown). */
    readonly cachedPromptTokens?: number | undefined
    readonly completionTokens: number
    readonly finishReason: FinishReason
    /** `maxTokens` was more than the context had left after the prompt: what was asked and what was used. */
    readonly maxTokensCapped?: { readonly requested: number; readonly used: number } | undefined
    /** The request's stop string that ended the answer. */
    readonly stopSequence?: string | undefined
  }

/** A chat model's context sequences: how many, and how many a generation holds now. */
export interface SequenceCounts {
  readonly total: number
  readonly busy: number
}

/** A model in memory with its context; lives as long as the scope it was loaded in. */
export interface LoadedModelHandle {
  readonly path: string
  readonly sizeBytes: number
  readonly vramBytes: number
  /** Per sequence. */
  readonly contextSize: number
  /**
   * Generates on a free context sequence, waiting for one when all `sequences` are busy.
   * Interrupting the stream stops generation and gives the sequence back.
   */
  readonly generate: (request: GenerateRequest) => Stream.Stream<LoaderEvent, BackendError | BackendCrashed | ContextOverflow>
  /**
   * Embeds each input in order (loads with `purpose: "embedding"` only); an input longer than the
   * context is `ContextOverflow` before anything is computed, never truncated.
   */
  readonly embed?: (
    inputs: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<EmbeddedInput>, BackendError | BackendCrashed | ContextOverflow>
  /**
   * Scores each document's relevance to the query, in order (loads with `purpose: "ranking"`
   * only); a query + document longer than the context is `ContextOverflow` naming the document,
   * before anything is computed, never truncated.
   */
  readonly rank?: (
    query: string,
    documents: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<RankedDocument>, BackendError | BackendCrashed | ContextOverflow>
  /** The model's token ids for a text (no BOS added). */
  readonly tokenize?: (text: string) => Effect.Effect<ReadonlyArray<number>, BackendError | BackendCrashed>
  /**
   * The tokens of a request's prompt as a generation would count them (chat template and tools
   * included), without generating or taking a sequence (a chat model only).
   */
  readonly countPromptTokens?: (request: GenerateRequest) => Effect.Effect<number, BackendError | BackendCrashed>
  /**
   * Its context sequences: `total` (`sequences` of the load) and `busy` (held by a generation now).
   * Absent for a model loaded for embeddings.
   */
  readonly sequences?: Effect.Effect<SequenceCounts, BackendError | BackendCrashed> | undefined
  /** False once the worker process running it has died (always true in-process). */
  readonly alive: Effect.Effect<boolean>
}

/** Memory a model needs at a context size, from node-llama-cpp's GgufInsights. */
export interface MemoryNeeds {
  readonly contextSize: number
  readonly ramBytes: number
  readonly vramBytes: number
}

/** Loads model files into llama.cpp and describes the runtime. Only ever given validated files. */
export interface LlamaLoaderService {
  /** The runtime for a device setting (in a short-lived worker, or this process's Llama with isolation "none"). */
  readonly runtime: (
    device: GgufInstanceConfig["device"],
    isolation?: Isolation
  ) => Effect.Effect<RuntimeInfo, DeviceUnavailable | BackendError>
  /** Loads a model (mmap) and creates its context; closing the scope unloads both. */
  readonly load: (
    path: string,
    options: LoadOptions
  ) => Effect.Effect<LoadedModelHandle, DeviceUnavailable | BackendError | BackendCrashed, Scope.Scope>
  /** RAM/VRAM the model needs at a context size, without loading it. */
  readonly memoryNeeds: (
    path: string,
    options: {
      readonly device: GgufInstanceConfig["device"]
      readonly gpuLayers: "auto" | number
      readonly contextSize: number
      readonly isolation?: Isolation | undefined
    }
  ) => Effect.Effect<MemoryNeeds, DeviceUnavailable | BackendError>
}

/** The loader's tag. */
export class LlamaLoader extends Context.Tag("llmspell/LlamaLoader")<LlamaLoader, LlamaLoaderService>() {}

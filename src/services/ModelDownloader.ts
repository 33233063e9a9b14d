/**
 * ModelDownloader: pulls GGUF models from the Hugging Face hub into a model store, with progress
 * as a Stream, resume, retries and sha256 verification. Its store methods (installed models, verify,
 * remove, import) are the ModelStore's write side (`services/ModelStore.ts`), the same code, kept here for
 * the callers that hold a downloader. Only `pull` reaches the hub.
 * Live implementation: `layers/ModelDownloaderLive.ts`.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { LlmspellError } from "../domain/Errors.js"
import type { PullOptions, PullProgress, RemoveResult, VerifyReport } from "../domain/Types.js"

/** llmspell's own store on disk: a `model_directory` owned by one gguf instance. */
export interface StoreRoot {
  readonly directory: string
  /** The gguf instance that owns it (reported in results). */
  readonly instance: string
}

/** One installed model, as recorded by its manifest. */
export interface InstalledModel {
  /** Canonical name, e.g. `bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M`. */
  readonly name: string
  /** Catalog alias it was pulled as, if any. */
  readonly alias?: string | undefined
  readonly repo: string
  readonly revision: string
  /** Absolute paths of the files, first part first for split models. */
  readonly files: ReadonlyArray<{ readonly path: string; readonly sizeBytes: number; readonly sha256: string }>
  /** The file to hand to the loader (the first part of a split model). */
  readonly primaryPath: string
  readonly sizeBytes: number
  readonly quantization?: string | undefined
  readonly pulledAt: string
}

/** Options of `importFile`. */
export interface ImportOptions {
  /** The model's name in the store (default: the file name without `.gguf`). */
  readonly name?: string | undefined
  /** Copy even when a hard link is possible. */
  readonly copy?: boolean | undefined
}

/** The downloader and store. */
export interface ModelDownloaderService {
  /**
   * Makes a GGUF file a model of the store (validated, hard-linked or copied, recorded by a manifest).
   * Fails with ModelNotFound (no such file), InvalidModelFile, DownloadFailed (the store is not writable).
   */
  readonly importFile: (file: string, store: StoreRoot, options?: ImportOptions) => Effect.Effect<InstalledModel, LlmspellError>
  /**
   * Downloads a model into the store; the last event has phase `done` and the result. A file already in
   * place is trusted only by its recorded size and mtime, or a re-hash; one pull writes a store file at a
   * time (others wait, interruptibly). Fails with ModelStoreUnusable, DiskFull, RateLimited,
   * InvalidModelFile (not a GGUF), ChecksumMismatch, DownloadFailed, ModelNotFound, HubAuthRequired.
   */
  readonly pull: (ref: string, store: StoreRoot, options?: PullOptions) => Stream.Stream<PullProgress, LlmspellError>
  /** An installed model matching the ref (alias, repo:QUANT, repo/file), without network. */
  readonly findInstalled: (ref: string, store: StoreRoot) => Effect.Effect<Option.Option<InstalledModel>, LlmspellError>
  /** Every installed model of the store. */
  readonly listInstalled: (store: StoreRoot) => Effect.Effect<ReadonlyArray<InstalledModel>, LlmspellError>
  /** Re-hashes installed files against their manifests (one model, or all); bad files carry a problem and a repair command. */
  readonly verify: (store: StoreRoot, ref?: string) => Effect.Effect<VerifyReport, LlmspellError>
  /**
   * Deletes one model's files (those no other model lists), manifest and partial downloads; a catalog alias
   * names its default quantization only. Fails with ModelBusy while a pull writes one of its files.
   */
  readonly remove: (ref: string, store: StoreRoot) => Effect.Effect<RemoveResult, LlmspellError>
}

/** The downloader's tag. */
export class ModelDownloader extends Context.Tag("llmspell/ModelDownloader")<ModelDownloader, ModelDownloaderService>() {}

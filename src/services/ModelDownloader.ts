/**
 * ModelDownloader: pulls GGUF models from the Hugging Face hub into llmspell's model store, with progress
 * as a Stream, resume, retries and sha256 verification. It writes into the store and asks the ModelStore
 * (`services/ModelStore.ts`) whether the bytes are already on the machine; the store knows nothing of it.
 * Everything else about installed models (list, find, verify, remove, import) is the ModelStore's.
 * Live implementation: `layers/hub/ModelDownloaderLive.ts`.
 */
import * as Context from "effect/Context"
import type * as Stream from "effect/Stream"
import type {
  ChecksumMismatch,
  DiskFull,
  DownloadFailed,
  HubAuthRequired,
  InsufficientDiskSpace,
  InvalidModelFile,
  InvalidModelSpec,
  ModelNotFound,
  ModelStoreUnusable,
  RateLimited
} from "../domain/Errors.js"
import type { PullOptions, PullProgress } from "../domain/Types.js"
import type { StoreRoot } from "./ModelStore.js"

/** What a pull can fail with. */
export type PullError =
  | InvalidModelSpec
  | ModelStoreUnusable
  | InsufficientDiskSpace
  | DiskFull
  | RateLimited
  | InvalidModelFile
  | ChecksumMismatch
  | DownloadFailed
  | ModelNotFound
  | HubAuthRequired

/** The downloader. */
export interface ModelDownloaderService {
  /**
   * Downloads a model into the store; the last event has phase `done` and the result. A file already in
   * place is trusted only by its recorded size and mtime, or a re-hash; one pull writes a store file at a
   * time (others wait, interruptibly). A bad reference is InvalidModelSpec; an unusable store
   * ModelStoreUnusable; too little room before it starts InsufficientDiskSpace, a disk filling during it
   * DiskFull (the partial download is kept: the same pull resumes it); the hub's refusals RateLimited,
   * HubAuthRequired, ModelNotFound; bad bytes ChecksumMismatch or InvalidModelFile (not a GGUF), and
   * DownloadFailed once retries are spent.
   */
  readonly pull: (ref: string, store: StoreRoot, options?: PullOptions) => Stream.Stream<PullProgress, PullError>
}

/** The downloader's tag. */
export class ModelDownloader extends Context.Tag("llmspell/ModelDownloader")<ModelDownloader, ModelDownloaderService>() {}

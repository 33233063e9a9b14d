/**
 * ModelStore: one inventory of every GGUF model on this machine, local disk only (no network).
 * llmspell's own store (`model_directory`: manifests of pulled and imported models, loose `.gguf` files)
 * plus the stores of other tools read in place — Ollama's, the Hugging Face cache, LM Studio's,
 * node-llama-cpp's — which are never written. The same bytes (same sha256) in two stores are one model
 * with both locations. The store also owns its write side that needs no network: verify, remove, import
 * (the downloader, `services/ModelDownloader.ts`, writes a pull through the same code and depends on this
 * service; nothing here knows the downloader).
 * Live implementation: `layers/store/ModelStoreLive.ts`.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type {
  BackendError,
  DiskFull,
  InvalidModelFile,
  ModelBusy,
  ModelNotFound,
  ModelStoreUnusable
} from "../domain/Errors.js"
import type { ForeignStoreWarning } from "../domain/ForeignStores.js"
import type { ModelLocation, RemoveResult, StoreKind, VerifyReport } from "../domain/Types.js"

/** llmspell's own store on disk: a `model_directory` owned by one gguf instance. */
export interface StoreRoot {
  readonly directory: string
  /** The gguf instance that owns it (reported in results). */
  readonly instance: string
}

/** One model of llmspell's store as its manifest records it (pulled or imported). */
export interface InstalledModel {
  /** Canonical name, e.g. `bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M`, or an imported model's name. */
  readonly name: string
  /** Catalog alias it was pulled as, if any. */
  readonly alias?: string | undefined
  /** `org/repo`, or `local` for an import. */
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

/** One model of the inventory: its bytes, and every store that holds them (the first is the one used). */
export interface StoredModel {
  /** The name in the first location's store. */
  readonly name: string
  readonly store: StoreKind
  /** The GGUF file to load (the first part of a split model). */
  readonly path: string
  /** Every file, first part first. */
  readonly files: ReadonlyArray<string>
  readonly sizeBytes: number
  readonly sha256?: string | undefined
  /**
   * An identity for APIs that want one (Ollama's `digest`): the sha256 when a store states it, else a
   * sha256 of the file's path, size and modification time (it changes when the file does).
   */
  readonly digest: string
  /** From the GGUF header (`general.file_type`), else the store's metadata or the file name. */
  readonly quantization?: string | undefined
  /** The GGUF's architecture (`llama`, `qwen2`, …), what Ollama calls the family. */
  readonly family?: string | undefined
  /** What the model can do, from its whole header (`ModelFacts.capabilitiesOf`); absent when unknown. */
  readonly capabilities?: ReadonlyArray<string> | undefined
  /** The hub repo the file came from, when a store says (`org/repo`). */
  readonly repo?: string | undefined
  readonly modifiedAt?: string | undefined
  /** Recorded by a manifest of llmspell's store (pulled or imported), vs. a loose file or a foreign store. */
  readonly installed: boolean
  readonly locations: ReadonlyArray<ModelLocation>
}

/** The whole inventory, and what the foreign scans skipped. */
export interface Inventory {
  readonly models: ReadonlyArray<StoredModel>
  readonly warnings: ReadonlyArray<ForeignStoreWarning>
}

/** A file with known bytes somewhere on the machine (found by sha256). */
export interface StoredBlob {
  readonly store: StoreKind
  readonly path: string
  readonly sizeBytes: number
}

/** The inventory service. */
export interface ModelStoreService {
  /**
   * Every model once: the own store's first, then each foreign store's, merged by sha256. Fails only when
   * llmspell's own manifests cannot be read; a foreign store's trouble is a warning.
   */
  readonly list: (own: StoreRoot) => Effect.Effect<Inventory, ModelStoreUnusable>
  /**
   * The model a reference designates, without network: an own-store name (alias, `org/repo:QUANT`,
   * `org/repo/file.gguf`, an imported name), a loose file name, an Ollama name (`llama3.2`, `llama3.2:3b`,
   * `hf.co/org/repo:Q`), an HF-cache repo and quantization, an LM Studio `publisher/repo/file`, a
   * node-llama-cpp file name.
   */
  readonly find: (ref: string, own: StoreRoot) => Effect.Effect<Option.Option<StoredModel>, ModelStoreUnusable>
  /** A file already on the machine whose sha256 a store records (own manifests, Ollama blobs, HF LFS blobs). */
  readonly findBlob: (sha256: string, own: StoreRoot) => Effect.Effect<Option.Option<StoredBlob>, ModelStoreUnusable>
  /**
   * Re-hashes the files of llmspell's store against the sha256 their manifests record (one model, or all):
   * the hub's, or for a file the hub gave none for (and an import) the one computed when it was stored.
   */
  readonly verify: (own: StoreRoot, ref?: string) => Effect.Effect<VerifyReport, ModelNotFound | ModelStoreUnusable>
  /**
   * Deletes one model of llmspell's store: a manifest's files no other model lists, the manifest and partial
   * downloads, or a loose `.gguf` in the directory. Fails with ModelBusy while a pull writes one of its
   * files, with BackendError for a model of another tool's store (never written: the error names the
   * tool's own command, and the name the store keeps it under), ModelNotFound when nothing matches.
   */
  readonly remove: (
    ref: string,
    own: StoreRoot
  ) => Effect.Effect<RemoveResult, ModelNotFound | ModelBusy | ModelStoreUnusable | BackendError>
  /**
   * Makes a GGUF file a model of llmspell's store (validated, hard-linked or copied, recorded by a
   * manifest with its sha256 and quantization). Another name for a file already imported adds a name.
   */
  readonly importFile: (
    file: string,
    own: StoreRoot,
    options?: ImportOptions
  ) => Effect.Effect<InstalledModel, ModelNotFound | InvalidModelFile | ModelStoreUnusable | DiskFull>
}

/** The inventory's tag. */
export class ModelStore extends Context.Tag("llmspell/ModelStore")<ModelStore, ModelStoreService>() {}

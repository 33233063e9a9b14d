/**
 * ModelStore: one inventory of every GGUF model on this machine, local disk only (no network).
 * llmspell's own store (`model_directory`: manifests of pulled models, loose `.gguf` files) plus the
 * stores of other tools read in place — Ollama's, the Hugging Face cache, LM Studio's, node-llama-cpp's —
 * which are never written. Also the write side of llmspell's store that needs no network: verify, remove,
 * import (a pull's write path is the same code, `layers/store/ownStoreWrite.ts`). The same bytes (same sha256) in two stores are one model with both locations.
 * Live implementation: `layers/ModelStoreLive.ts`.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { LlmspellError } from "../domain/Errors.js"
import type { ForeignStoreWarning } from "../domain/ForeignStores.js"
import type { ModelLocation, RemoveResult, StoreKind, VerifyReport } from "../domain/Types.js"
import type { ImportOptions, InstalledModel, StoreRoot } from "./ModelDownloader.js"

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
  readonly quantization?: string | undefined
  /** The hub repo the file came from, when a store says (`org/repo`). */
  readonly repo?: string | undefined
  readonly modifiedAt?: string | undefined
  /** Pulled through llmspell and recorded by a manifest (vs. a loose file or a foreign store). */
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
  /** Every model once: the own store's first, then each foreign store's, merged by sha256. */
  readonly list: (own: StoreRoot) => Effect.Effect<Inventory, LlmspellError>
  /**
   * The model a reference designates, without network: an own-store name (alias, `org/repo:QUANT`,
   * `org/repo/file.gguf`), a loose file name, an Ollama name (`llama3.2`, `llama3.2:3b`, `hf.co/org/repo:Q`),
   * an HF-cache repo and quantization, an LM Studio `publisher/repo/file`, a node-llama-cpp file name.
   */
  readonly find: (ref: string, own: StoreRoot) => Effect.Effect<Option.Option<StoredModel>, LlmspellError>
  /** A file already on the machine whose sha256 a store records (own manifests, Ollama blobs, HF LFS blobs). */
  readonly findBlob: (sha256: string, own: StoreRoot) => Effect.Effect<Option.Option<StoredBlob>, LlmspellError>
  /** Re-hashes llmspell's installed files against their manifests (one model, or all); bad files carry a repair command. */
  readonly verify: (own: StoreRoot, ref?: string) => Effect.Effect<VerifyReport, LlmspellError>
  /**
   * Deletes one of llmspell's models (files no other model lists, manifest, partial downloads). Fails with
   * ModelBusy while a pull writes one of its files; foreign stores are never written.
   */
  readonly remove: (ref: string, own: StoreRoot) => Effect.Effect<RemoveResult, LlmspellError>
  /** Makes a GGUF file a model of llmspell's store (validated, hard-linked or copied, recorded by a manifest). */
  readonly importFile: (file: string, own: StoreRoot, options?: ImportOptions) => Effect.Effect<InstalledModel, LlmspellError>
}

/** The inventory's tag. */
export class ModelStore extends Context.Tag("llmspell/ModelStore")<ModelStore, ModelStoreService>() {}

/**
 * The record every foreign-store scan produces (`ForeignModel`, `ForeignStoreWarning`) and the file-name
 * rules the layouts share (split parts, projectors, shell quoting). Pure: no I/O. The layouts are
 * `OllamaLayout.ts`, `HfCacheLayout.ts` and `ForeignStores.ts` (roots, LM Studio, node-llama-cpp), which
 * re-exports all of them.
 */
import * as Schema from "effect/Schema"

// ---------------------------------------------------------------------------------------------
// The record every store produces
// ---------------------------------------------------------------------------------------------

/** Which foreign store a model was found in (the STORE column of `model list`). */
export const ForeignStoreKind = Schema.Literal("ollama-store", "hf-cache", "lmstudio", "node-llama-cpp")
/** Which foreign store a model was found in. */
export type ForeignStoreKind = typeof ForeignStoreKind.Type

/** One GGUF model found in another tool's store. */
export const ForeignModel = Schema.Struct({
  store: ForeignStoreKind,
  /** How the owning tool names it: `llama3.2:3b`, `hf.co/org/repo:Q4_K_M`, `org/repo/file.gguf`, a file name. */
  name: Schema.String,
  /** Absolute path of the GGUF bytes (symlinks resolved), i.e. what llama.cpp opens. */
  path: Schema.String,
  /**
   * The name the store keeps it under when that is a link to `path` (`lms import -l`): what a remove
   * command names, never the link's target.
   */
  storePath: Schema.optional(Schema.String),
  /** Total size in bytes (all parts of a split model). */
  sizeBytes: Schema.Number,
  /** Lower-case hex sha256 of the file, only when the layout itself states it (Ollama digest, HF LFS blob name). */
  sha256: Schema.optional(Schema.String),
  /** Quantization (`Q4_K_M`, `F16`, …): the GGUF header's file type, else the tool's metadata or the file name. */
  quantization: Schema.optional(Schema.String),
  /** The GGUF's `general.architecture` (Ollama's "family"), from the first bytes of the file. */
  family: Schema.optional(Schema.String),
  /** The file's modification time (ISO). */
  modifiedAt: Schema.optional(Schema.String),
  /** What the model can do, from its whole header (`ModelFacts.capabilitiesOf`); absent when unknown. */
  capabilities: Schema.optional(Schema.Array(Schema.String)),
  /** The owning tool's command that removes it; llmspell refuses to delete foreign files. */
  removeCommand: Schema.String,
  /** The store root it was found under. */
  root: Schema.String,
  /** Hub repo (`org/repo`, HF cache) or `publisher/repo` (LM Studio). */
  repo: Schema.optional(Schema.String),
  /** The file inside `repo` (HF cache, LM Studio). */
  file: Schema.optional(Schema.String),
  /** The commit of the HF cache snapshot it came from. */
  revision: Schema.optional(Schema.String),
  /** Every part of a split GGUF (`-00001-of-00003.gguf` …), in order; `path` is the first. */
  parts: Schema.optional(Schema.Array(Schema.String))
})
/** One GGUF model found in another tool's store. */
export type ForeignModel = typeof ForeignModel.Type

/** Something a scan skipped (unreadable, vanished, malformed), reported instead of failing the listing. */
export const ForeignStoreWarning = Schema.Struct({
  store: ForeignStoreKind,
  path: Schema.String,
  reason: Schema.String
})
/** Something a scan skipped. */
export type ForeignStoreWarning = typeof ForeignStoreWarning.Type

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/** Quotes a word for a POSIX shell when it needs it, so a printed command can be pasted. */
export const shellQuote = (word: string): string =>
  /^[A-Za-z0-9_/.:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`

const SPLIT_PART = /-(\d{5})-of-(\d{5})\.gguf$/i

/** For a split GGUF part (`x-00002-of-00003.gguf`): its index and the part count. */
export const splitPart = (fileName: string): { readonly index: number; readonly count: number } | undefined => {
  const m = SPLIT_PART.exec(fileName)
  if (m === null) return undefined
  const index = Number(m[1])
  const count = Number(m[2])
  return index >= 1 && count >= 1 && index <= count ? { index, count } : undefined
}

/** The name of part `index` of the split model whose first part is `firstPart`. */
export const splitPartName = (firstPart: string, index: number, count: number): string =>
  firstPart.replace(SPLIT_PART, `-${String(index).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`)

/**
 * True for a file name a store lists as a model: a `.gguf`, not a multimodal projector (`mmproj-…`),
 * and, for split models, only the first part (the others belong to it).
 */
export const isModelFileName = (fileName: string): boolean => {
  if (!/\.gguf$/i.test(fileName) || fileName.startsWith(".")) return false
  if (/^mmproj/i.test(fileName)) return false
  const part = splitPart(fileName)
  return part === undefined || part.index === 1
}

/**
 * The Hugging Face hub cache layout (see docs/stores.md for the sources): repo folders, snapshot links
 * into `blobs/`, and the records of a repo's GGUF files. Pure: no I/O; the scanner is
 * `layers/store/foreign/hfCache.ts`.
 */
import * as Either from "effect/Either"
import * as posix from "node:path/posix"
import { type ForeignModel, shellQuote } from "./ForeignStoreRecord.js"
import { quantizationOf } from "./HubRef.js"
import type { ModelFacts } from "./ModelFacts.js"

const SHA256_HEX = /^[0-9a-f]{64}$/

// ---------------------------------------------------------------------------------------------
// Hugging Face hub cache
// ---------------------------------------------------------------------------------------------

/**
 * The repo id of a cache folder: `models--org--repo` → `org/repo`, `models--gpt2` → `gpt2`.
 * Undefined for datasets, spaces and anything else (hub repo ids never contain `--`).
 */
export const hfRepoFromFolder = (folder: string): string | undefined => {
  if (!folder.startsWith("models--")) return undefined
  const parts = folder.slice("models--".length).split("--")
  if (parts.length > 2 || parts.some((p) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(p))) return undefined
  return parts.join("/")
}

/** The cache folder of a repo id: `org/repo` → `models--org--repo`. */
export const hfFolderFromRepo = (repo: string): string => `models--${repo.split("/").join("--")}`

/**
 * Where a snapshot file's symlink points, checked: `file` is its path inside the snapshot, `target`
 * what readlink returned (huggingface_hub writes `../../blobs/<etag>`, one more `../` per sub-folder).
 * Returns the blob's name (its etag: the sha256 for an LFS file, a git sha1 otherwise), or a reason
 * when the link leaves the repo's `blobs/` directory.
 */
export const hfBlobOfLink = (file: string, target: string): Either.Either<{ readonly etag: string; readonly sha256: string | undefined }, string> => {
  if (posix.isAbsolute(target)) return Either.left(`absolute symlink ${JSON.stringify(target)} (the cache links relatively)`)
  // The link sits in <repo>/snapshots/<commit>/<file>; resolve it against that folder.
  const resolved = posix.normalize(posix.join("snapshots", "commit", posix.dirname(file), target))
  const m = /^blobs\/([^/]+)$/.exec(resolved)
  if (m === null) return Either.left(`symlink ${JSON.stringify(target)} does not point into the repo's blobs/`)
  const etag = m[1]!
  return Either.right({ etag, sha256: SHA256_HEX.test(etag) ? etag : undefined })
}

/** One GGUF file of a cached repo snapshot, found by the scanner. */
export interface HfSnapshotFile {
  /** Path inside the snapshot (`model-Q4_K_M.gguf`, `Q8_0/x-00001-of-00002.gguf`). */
  readonly file: string
  readonly revision: string
  /** Absolute path of the bytes (symlinks resolved). */
  readonly path: string
  readonly sizeBytes: number
  readonly sha256: string | undefined
  /** The other parts of a split model, absolute and resolved, in order after `path`. */
  readonly otherParts?: ReadonlyArray<{ readonly path: string; readonly sizeBytes: number }>
  /** What the first bytes of the file say. */
  readonly facts?: ModelFacts | undefined
  /** The file's modification time (ISO). */
  readonly modifiedAt?: string | undefined
}

/** `hf cache rm` for one file (`hf://models/<repo>/<file>`), with `--cache-dir` off the default root. */
export const hfRemoveCommand = (repo: string, file: string, root: string, defaultRoot: string): string =>
  `hf cache rm ${shellQuote(`hf://models/${repo}/${file}`)}` +
  (posix.normalize(root) === posix.normalize(defaultRoot) ? "" : ` --cache-dir ${shellQuote(root)}`)

/**
 * The records of one cached repo's GGUF files. Named `hf.co/<repo>:<QUANT>` (as Ollama and llama.cpp
 * name hub GGUFs) when that quantization is unique in the repo, else `<repo>/<file>`.
 */
export const hfForeignModels = (args: {
  readonly root: string
  readonly defaultRoot: string
  readonly repo: string
  readonly files: ReadonlyArray<HfSnapshotFile>
}): ReadonlyArray<ForeignModel> => {
  const quants = args.files.map((f) => quantizationOf(f.file))
  return args.files.map((f, i) => {
    const quantization = quants[i]
    const unique = quantization !== undefined && quants.filter((q) => q === quantization).length === 1
    const parts = f.otherParts ?? []
    const shown = f.facts?.quantization ?? quantization
    return {
      store: "hf-cache",
      name: unique ? `hf.co/${args.repo}:${quantization}` : `${args.repo}/${f.file}`,
      path: f.path,
      sizeBytes: f.sizeBytes + parts.reduce((n, p) => n + p.sizeBytes, 0),
      ...(f.sha256 !== undefined && parts.length === 0 ? { sha256: f.sha256 } : {}),
      ...(shown !== undefined ? { quantization: shown } : {}),
      ...(f.facts?.family !== undefined ? { family: f.facts.family } : {}),
      ...(f.facts?.capabilities !== undefined ? { capabilities: f.facts.capabilities } : {}),
      ...(f.modifiedAt !== undefined ? { modifiedAt: f.modifiedAt } : {}),
      removeCommand: hfRemoveCommand(args.repo, f.file, args.root, args.defaultRoot),
      root: args.root,
      repo: args.repo,
      file: f.file,
      revision: f.revision,
      ...(parts.length > 0 ? { parts: [f.path, ...parts.map((p) => p.path)] } : {})
    }
  })
}

/**
 * The on-disk layouts of the GGUF stores other tools keep (Ollama, the Hugging Face hub cache,
 * LM Studio, node-llama-cpp's CLI), so llmspell can list and run their models in place, read-only.
 * Each layout was checked against the owning tool's own source or docs (see docs/stores.md): where
 * its root lives given the environment, the Schemas of the JSON it stores, how it names a model,
 * and the command that removes a model with that tool (llmspell never deletes a foreign file).
 * Pure: no I/O. The scanners that walk the directories are in `layers/store/foreign/`.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as posix from "node:path/posix"
import { isQuantization, normalizeQuantization, quantizationOf } from "./HubRef.js"
import type { ModelFacts } from "./ModelFacts.js"

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
// Roots: where each tool keeps its store, resolved the way the tool resolves it
// ---------------------------------------------------------------------------------------------

/** The inputs root resolution depends on. */
export interface StoreEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>
  /** The user's home directory (`os.homedir()`). */
  readonly home: string
}

// Ollama's envconfig.Var: the value with surrounding spaces and quotes removed; empty means unset.
const ollamaVar = (env: StoreEnvironment["env"], key: string): string | undefined => {
  const value = env[key]?.trim().replace(/^["']+|["']+$/g, "")
  return value === undefined || value === "" ? undefined : value
}

/**
 * Ollama's model directories: `OLLAMA_MODELS` when set (envconfig.Models), else `~/.ollama/models`,
 * plus `/usr/share/ollama/.ollama/models`, the home of the `ollama` user that the Linux install
 * script's systemd service runs as.
 */
export const ollamaRoots = ({ env, home }: StoreEnvironment): ReadonlyArray<string> => {
  const explicit = ollamaVar(env, "OLLAMA_MODELS")
  if (explicit !== undefined) return [explicit]
  return [posix.join(home, ".ollama", "models"), "/usr/share/ollama/.ollama/models"]
}

// Python's os.path.expanduser + os.path.expandvars, as huggingface_hub applies them to its paths.
const expandUserAndVars = (value: string, { env, home }: StoreEnvironment): string => {
  const user = value === "~" ? home : value.startsWith("~/") ? posix.join(home, value.slice(2)) : value
  return user.replace(/\$(\w+)|\$\{([^}]*)\}/g, (whole, bare: string | undefined, braced: string | undefined) => {
    const resolved = env[(bare ?? braced)!]
    return resolved === undefined ? whole : resolved
  })
}

const nonEmpty = (value: string | undefined): string | undefined => value === undefined || value === "" ? undefined : value

/**
 * The Hugging Face hub cache (huggingface_hub `constants.py`): `HF_HUB_CACHE`, else the legacy
 * `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, where `HF_HOME` defaults to
 * `$XDG_CACHE_HOME/huggingface` and `XDG_CACHE_HOME` to `~/.cache`. `~` and `$VAR` are expanded.
 * (Python keeps a variable set to the empty string; we treat it as unset, which is what a user means.)
 */
export const hfCacheRoot = (environment: StoreEnvironment): string => {
  const { env, home } = environment
  const hubCache = nonEmpty(env["HF_HUB_CACHE"]) ?? nonEmpty(env["HUGGINGFACE_HUB_CACHE"])
  if (hubCache !== undefined) return expandUserAndVars(hubCache, environment)
  const hfHome = nonEmpty(env["HF_HOME"]) ??
    posix.join(nonEmpty(env["XDG_CACHE_HOME"]) ?? posix.join(home, ".cache"), "huggingface")
  return posix.join(expandUserAndVars(hfHome, environment), "hub")
}

/** The file LM Studio writes to say where its home is (lmstudio-js `findLMStudioHome`). */
export const lmstudioHomePointer = (home: string): string => posix.join(home, ".lmstudio-home-pointer")

/**
 * LM Studio's models directories: `<home>/models` where home is the path in
 * `~/.lmstudio-home-pointer` when that file exists, else `~/.lmstudio/models` (0.3+) and the older
 * `~/.cache/lm-studio/models`. `pointer` is the pointer file's content, read by the caller.
 * (A models folder changed in LM Studio's settings is not followed; `[stores] lmstudio = <path>` is.)
 */
export const lmstudioRoots = (home: string, pointer: string | undefined): ReadonlyArray<string> => {
  const pointed = pointer?.trim()
  if (pointed !== undefined && pointed !== "") return [posix.join(pointed, "models")]
  return [posix.join(home, ".lmstudio", "models"), posix.join(home, ".cache", "lm-studio", "models")]
}

/** node-llama-cpp CLI's models directory (`cliModelsDirectory` in node-llama-cpp's `config.js`). */
export const nodeLlamaCppRoots = (home: string): ReadonlyArray<string> => [posix.join(home, ".node-llama-cpp", "models")]

/** The roots to scan, per store. */
export interface ForeignStoreRoots {
  readonly ollama: ReadonlyArray<string>
  readonly hfCache: ReadonlyArray<string>
  readonly lmstudio: ReadonlyArray<string>
  readonly nodeLlamaCpp: ReadonlyArray<string>
}

/** Every store's default roots; `lmstudioPointer` is the content of `~/.lmstudio-home-pointer`, if any. */
export const defaultRoots = (environment: StoreEnvironment, lmstudioPointer?: string): ForeignStoreRoots => ({
  ollama: ollamaRoots(environment),
  hfCache: [hfCacheRoot(environment)],
  lmstudio: lmstudioRoots(environment.home, lmstudioPointer),
  nodeLlamaCpp: nodeLlamaCppRoots(environment.home)
})

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

const SHA256_HEX = /^[0-9a-f]{64}$/

// ---------------------------------------------------------------------------------------------
// Ollama
// ---------------------------------------------------------------------------------------------

/** Ollama's defaults for a name's missing parts (server/modelpath.go, types/model/name.go). */
export const OLLAMA_DEFAULT_HOST = "registry.ollama.ai"
/** Ollama's default namespace. */
export const OLLAMA_DEFAULT_NAMESPACE = "library"
/** Ollama's default tag. */
export const OLLAMA_DEFAULT_TAG = "latest"

/** The media type of the manifest layer that is the GGUF file. */
export const OLLAMA_MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"

/** A fully qualified Ollama model name. */
export interface OllamaName {
  readonly host: string
  readonly namespace: string
  readonly model: string
  readonly tag: string
}

// types/model/name.go isValidPart: letters, digits, '_', '-', '.'; the first a letter, digit or '_';
// a namespace has no '.'; hosts may carry a port. Lengths as in name.go's isValidLen.
const MODEL_PART = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/
const NAMESPACE_PART = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$/
const HOST_PART = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$/

const validOllamaName = (name: OllamaName): OllamaName | undefined =>
  HOST_PART.test(name.host) && NAMESPACE_PART.test(name.namespace) && MODEL_PART.test(name.model) &&
    MODEL_PART.test(name.tag) && !name.model.includes("..") && !name.host.includes("..")
    ? name
    : undefined

/**
 * Parses `[host/][namespace/]model[:tag]` the way Ollama does (a leading `scheme://` is dropped; missing
 * parts are `registry.ollama.ai`, `library`, `latest`), so `llama3.2` and `llama3.2:latest` are one name.
 * Undefined when it is not a valid Ollama name (a digest `@…` or a build `+…` is not accepted here).
 */
export const parseOllamaName = (text: string): OllamaName | undefined => {
  const stripped = text.trim().replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, "")
  if (stripped === "" || stripped.length > 350 || /[@+\s]/.test(stripped)) return undefined
  const slash = stripped.split("/")
  if (slash.length > 3) return undefined
  const last = slash.at(-1)!
  const colon = last.lastIndexOf(":")
  const model = colon >= 0 ? last.slice(0, colon) : last
  const tag = colon >= 0 ? last.slice(colon + 1) : OLLAMA_DEFAULT_TAG
  const host = slash.length === 3 ? slash[0]! : OLLAMA_DEFAULT_HOST
  const namespace = slash.length >= 2 ? slash[slash.length - 2]! : OLLAMA_DEFAULT_NAMESPACE
  return validOllamaName({ host, namespace, model, tag })
}

/** The comparison key of a name: Ollama compares names case-insensitively (Name.EqualFold). */
export const ollamaNameKey = (name: OllamaName): string =>
  `${name.host}/${name.namespace}/${name.model}:${name.tag}`.toLowerCase()

/** True when two texts name the same Ollama model (`llama3.2` = `library/llama3.2:latest`). */
export const sameOllamaName = (a: string, b: string): boolean => {
  const pa = parseOllamaName(a)
  const pb = parseOllamaName(b)
  return pa !== undefined && pb !== undefined && ollamaNameKey(pa) === ollamaNameKey(pb)
}

/**
 * How `ollama list` shows a name (Name.DisplayShortest): the default host and namespace are left out,
 * the tag always stays: `llama3.2:3b`, `someone/model:latest`, `hf.co/org/repo:Q4_K_M`.
 */
export const displayOllamaName = (name: OllamaName): string => {
  const defaultHost = name.host.toLowerCase() === OLLAMA_DEFAULT_HOST
  const prefix = !defaultHost
    ? `${name.host}/${name.namespace}/`
    : name.namespace.toLowerCase() !== OLLAMA_DEFAULT_NAMESPACE
    ? `${name.namespace}/`
    : ""
  return `${prefix}${name.model}:${name.tag}`
}

/**
 * The name of the manifest at `relPath` under `<root>/manifests` (`<host>/<namespace>/<model>/<tag>`,
 * exactly four levels, as Ollama's `Manifests()` globs them). Undefined for anything else.
 */
export const ollamaNameFromManifestPath = (relPath: string): OllamaName | undefined => {
  const parts = relPath.split("/")
  if (parts.length !== 4) return undefined
  const [host, namespace, model, tag] = parts as [string, string, string, string]
  return validOllamaName({ host, namespace, model, tag })
}

/** Where the manifest of `name` lives, relative to the models root (Name.Filepath). */
export const ollamaManifestPath = (name: OllamaName): string =>
  posix.join("manifests", name.host, name.namespace, name.model, name.tag)

/** One layer (or the config) of an Ollama manifest. */
export const OllamaLayer = Schema.Struct({
  mediaType: Schema.String,
  digest: Schema.String,
  size: Schema.NonNegativeInt
})
/** One layer of an Ollama manifest. */
export type OllamaLayer = typeof OllamaLayer.Type

/** An Ollama manifest (server/manifest.go ManifestV2: a Docker v2 image manifest). */
export const OllamaManifest = Schema.Struct({
  schemaVersion: Schema.Number,
  mediaType: Schema.optional(Schema.String),
  config: OllamaLayer,
  layers: Schema.Array(OllamaLayer)
})
/** An Ollama manifest. */
export type OllamaManifest = typeof OllamaManifest.Type

/** The model config blob a manifest's `config` points at (server/images.go ConfigV2); only what we use. */
export const OllamaConfig = Schema.Struct({
  model_format: Schema.optional(Schema.String),
  model_family: Schema.optional(Schema.String),
  model_type: Schema.optional(Schema.String),
  file_type: Schema.optional(Schema.String)
})
/** The model config blob. */
export type OllamaConfig = typeof OllamaConfig.Type

const describeParseError = (error: unknown): string => String(error).split("\n").slice(0, 4).join("; ")

// Built once: compiling a decoder costs more than decoding one manifest.
const decodeManifestJson = Schema.decodeUnknownEither(Schema.parseJson(OllamaManifest))
const decodeConfigJson = Schema.decodeUnknownEither(Schema.parseJson(OllamaConfig))

/** Decodes a manifest file's text; the reason on failure is short enough for a warning. */
export const decodeOllamaManifest = (text: string): Either.Either<OllamaManifest, string> =>
  decodeManifestJson(text).pipe(Either.mapLeft((e) => `malformed manifest: ${describeParseError(e)}`))

/** Decodes a config blob's text; undefined when it is not one. */
export const decodeOllamaConfig = (text: string): OllamaConfig | undefined => Either.getOrUndefined(decodeConfigJson(text))

/** The blob file of a digest: `sha256:<hex>` → `blobs/sha256-<hex>` (relative to the root). */
export const ollamaBlobPath = (digest: string): Either.Either<{ readonly path: string; readonly sha256: string }, string> => {
  const m = /^sha256[:-]([0-9a-fA-F]{64})$/.exec(digest)
  if (m === null) return Either.left(`unsupported digest ${JSON.stringify(digest.slice(0, 80))}`)
  const hex = m[1]!.toLowerCase()
  return Either.right({ path: posix.join("blobs", `sha256-${hex}`), sha256: hex })
}

/** What a manifest says about its GGUF layer, before the blob is looked at. */
export interface OllamaManifestModel {
  readonly name: OllamaName
  readonly displayName: string
  /** Blob path relative to the root. */
  readonly blob: string
  readonly sha256: string
  readonly sizeBytes: number
  /** The config blob, relative to the root (for `file_type`). */
  readonly configBlob: string | undefined
}

/**
 * The GGUF layer of a decoded manifest. `Left` with a reason when the manifest has no GGUF layer
 * (a safetensors or cloud model) or its digest is not a sha256.
 */
export const ollamaManifestModel = (
  name: OllamaName,
  manifest: OllamaManifest
): Either.Either<OllamaManifestModel, string> => {
  const layer = manifest.layers.find((l) => l.mediaType === OLLAMA_MODEL_MEDIA_TYPE)
  if (layer === undefined) return Either.left(`no ${OLLAMA_MODEL_MEDIA_TYPE} layer (not a GGUF model)`)
  return Either.map(ollamaBlobPath(layer.digest), (blob) => ({
    name,
    displayName: displayOllamaName(name),
    blob: blob.path,
    sha256: blob.sha256,
    sizeBytes: layer.size,
    configBlob: Either.getOrUndefined(Either.map(ollamaBlobPath(manifest.config.digest), (c) => c.path))
  }))
}

/** The quantization of an Ollama model: the config's `file_type`, else the tag (`3b-instruct-q4_K_M`). */
export const ollamaQuantization = (name: OllamaName, config: OllamaConfig | undefined): string | undefined => {
  const fileType = config?.file_type
  if (fileType !== undefined && isQuantization(fileType)) return normalizeQuantization(fileType)
  return quantizationOf(name.tag)
}

/** The finished record of an Ollama model whose blob was found at `path` with `sizeBytes`. */
export const ollamaForeignModel = (args: {
  readonly root: string
  readonly model: OllamaManifestModel
  readonly path: string
  readonly sizeBytes: number
  readonly quantization: string | undefined
  readonly family?: string | undefined
  readonly modifiedAt?: string | undefined
}): ForeignModel => ({
  store: "ollama-store",
  name: args.model.displayName,
  path: args.path,
  sizeBytes: args.sizeBytes,
  sha256: args.model.sha256,
  ...(args.quantization !== undefined ? { quantization: args.quantization } : {}),
  ...(args.family !== undefined ? { family: args.family } : {}),
  ...(args.modifiedAt !== undefined ? { modifiedAt: args.modifiedAt } : {}),
  removeCommand: `ollama rm ${shellQuote(args.model.displayName)}`,
  root: args.root
})

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

// ---------------------------------------------------------------------------------------------
// LM Studio and node-llama-cpp: plain folders of GGUF files
// ---------------------------------------------------------------------------------------------

/** A GGUF file found in a plain-folder store. */
export interface PlainStoreFile {
  /** Path relative to the root, `/`-separated. */
  readonly relPath: string
  /** Absolute path of the bytes (symlinks resolved). */
  readonly path: string
  /** Where the store keeps it (differs from `path` for a link or a linked folder). */
  readonly storePath: string
  readonly sizeBytes: number
  readonly otherParts?: ReadonlyArray<{ readonly path: string; readonly storePath: string; readonly sizeBytes: number }>
  /** What the first bytes of the file say. */
  readonly facts?: ModelFacts | undefined
  /** The file's modification time (ISO). */
  readonly modifiedAt?: string | undefined
}

/** The deepest LM Studio looks: `<publisher>/<repo>/<file>` plus sub-folders of split models. */
export const LMSTUDIO_MAX_DEPTH = 5

/**
 * An LM Studio model at `<publisher>/<repo>/…/<file>.gguf`, named `publisher/repo/file.gguf` as
 * `lms ls` shows it. Undefined for a file outside that structure (LM Studio ignores files directly
 * under the models folder or one level down). LM Studio's CLI has no remove command (checked against
 * the `lms` command list), so the command given removes the file itself.
 */
export const lmstudioForeignModel = (root: string, file: PlainStoreFile): ForeignModel | undefined => {
  const segments = file.relPath.split("/")
  if (segments.length < 3 || segments.length > LMSTUDIO_MAX_DEPTH) return undefined
  return {
    ...plainFileModel("lmstudio", root, file),
    repo: segments.slice(0, 2).join("/"),
    file: segments.slice(2).join("/")
  }
}

/**
 * A model in node-llama-cpp's models directory: a flat folder of files it names
 * `hf_<user>_<file>.gguf` when pulled from the hub. Named by its file name; node-llama-cpp has no
 * remove command either.
 */
export const nodeLlamaCppForeignModel = (root: string, file: PlainStoreFile): ForeignModel | undefined => {
  if (file.relPath.includes("/")) return undefined
  return plainFileModel("node-llama-cpp", root, file)
}

/**
 * A model that is just its file(s) in a folder, named by its path there; neither LM Studio nor
 * node-llama-cpp has a remove command, so the command given removes the files themselves: the names in
 * the store, so a link (`lms import -l`) is removed, never the file it points at.
 */
const plainFileModel = (store: "lmstudio" | "node-llama-cpp", root: string, file: PlainStoreFile): ForeignModel => {
  const parts = file.otherParts ?? []
  const paths = [file.path, ...parts.map((p) => p.path)]
  const storePaths = [file.storePath, ...parts.map((p) => p.storePath)]
  const quantization = file.facts?.quantization ?? quantizationOf(file.relPath)
  return {
    store,
    name: file.relPath,
    path: file.path,
    ...(file.storePath !== file.path ? { storePath: file.storePath } : {}),
    sizeBytes: file.sizeBytes + parts.reduce((n, p) => n + p.sizeBytes, 0),
    ...(quantization !== undefined ? { quantization } : {}),
    ...(file.facts?.family !== undefined ? { family: file.facts.family } : {}),
    ...(file.modifiedAt !== undefined ? { modifiedAt: file.modifiedAt } : {}),
    removeCommand: `rm ${storePaths.map(shellQuote).join(" ")}`,
    root,
    ...(parts.length > 0 ? { parts: paths } : {})
  }
}

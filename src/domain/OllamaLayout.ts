/**
 * Ollama's store layout (see docs/stores.md for the sources): its names, manifests, config blobs and
 * blobs, and the record of one of its models. Pure: no I/O; the scanner is `layers/store/foreign/ollama.ts`.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as posix from "node:path/posix"
import { type ForeignModel, shellQuote } from "./ForeignStoreRecord.js"
import { isQuantization, normalizeQuantization, quantizationOf } from "./HubRef.js"

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
  readonly capabilities?: ReadonlyArray<string> | undefined
  readonly modifiedAt?: string | undefined
}): ForeignModel => ({
  store: "ollama-store",
  name: args.model.displayName,
  path: args.path,
  sizeBytes: args.sizeBytes,
  sha256: args.model.sha256,
  ...(args.quantization !== undefined ? { quantization: args.quantization } : {}),
  ...(args.family !== undefined ? { family: args.family } : {}),
  ...(args.capabilities !== undefined ? { capabilities: args.capabilities } : {}),
  ...(args.modifiedAt !== undefined ? { modifiedAt: args.modifiedAt } : {}),
  removeCommand: `ollama rm ${shellQuote(args.model.displayName)}`,
  root: args.root
})

/**
 * A listed GGUF file's facts, capabilities included, for every store (own manifests and loose files,
 * Ollama's blobs, the HF cache, LM Studio, node-llama-cpp): the first bytes a listing reads anyway
 * (`readPrefix`, 64 KiB) give the family and quantization; the capabilities need the chat template,
 * which converters write after the vocabulary (5–15 MB of tokens and merges in a real model), and the
 * tensor infos (a classifier head makes a reranker). So the header is walked on to the end of its
 * tensor infos (`scanGgufHeader`: windows read one after another, token strings skipped, never the
 * whole vocabulary in memory), at most `MAX_HEADER_BYTES`: past that the capabilities are left unknown.
 * A tiny model's whole header is in the first bytes: nothing more is read.
 *
 * The facts of a file whose header went past its first bytes are cached in
 * `<model_directory>/.cache/facts.json`, keyed by the file's path and `ino:size:mtimeMs:ctimeMs` (the
 * fstat of the open file), so a second listing reads only the first bytes again. A file that changed is
 * read again; a cache that is corrupt, of another version or unwritable is ignored (the listing reads
 * headers instead). A truncated or malformed header gives the first bytes' facts, as before, and never
 * fails a listing.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import * as posix from "node:path/posix"
import { type GgufPeekResult, peekGgufMetadata, scanGgufHeader } from "../../domain/GgufReader.js"
import { factsOfFile, factsOfMetadata, type ModelFacts } from "../../domain/ModelFacts.js"
import { makeDirectories } from "./ensureDirectory.js"
import { type FileInfo, type FilePrefix, ScanFs, type ScanFsService } from "./scanFs.js"

/** A header that goes on past this is a listing's unknown (real ones are 5–15 MB). */
export const MAX_HEADER_BYTES = 64 * 1024 * 1024

const CACHE_VERSION = 1
const MAX_CACHE_BYTES = 32 * 1024 * 1024
/** Entries kept (the most recent), far above any machine's model count. */
const MAX_ENTRIES = 20_000

const Entry = Schema.Struct({
  path: Schema.String,
  signature: Schema.String,
  family: Schema.optional(Schema.String),
  quantization: Schema.optional(Schema.String),
  capabilities: Schema.optional(Schema.Array(Schema.Literal("completion", "embedding", "tools", "thinking", "rerank")))
})
type Entry = typeof Entry.Type

const CacheFile = Schema.Struct({ version: Schema.Literal(CACHE_VERSION), entries: Schema.Array(Entry) })
const decodeCacheFile = Schema.decodeUnknownEither(Schema.parseJson(CacheFile))

/** Where the facts cache of a model directory lives. */
export const factsCacheFileOf = (modelDirectory: string): string => posix.join(modelDirectory, ".cache", "facts.json")

const signatureOf = (info: FileInfo) => `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`

/** The facts of long headers, in memory for one listing; `save` writes what changed. */
export class FactsCache {
  private dirty = false
  constructor(private readonly entries: Map<string, Entry>) {}
  /** The facts recorded for this file as it is now, if any. */
  lookup(path: string, info: FileInfo): ModelFacts | undefined {
    const entry = this.entries.get(path)
    if (entry === undefined || entry.signature !== signatureOf(info)) return undefined
    const { path: _, signature: __, ...facts } = entry
    return facts
  }
  record(path: string, info: FileInfo, facts: ModelFacts): void {
    this.entries.delete(path)
    this.entries.set(path, {
      path,
      signature: signatureOf(info),
      ...(facts.family !== undefined ? { family: facts.family } : {}),
      ...(facts.quantization !== undefined ? { quantization: facts.quantization } : {}),
      ...(facts.capabilities !== undefined ? { capabilities: facts.capabilities } : {})
    })
    this.dirty = true
  }
  get changed(): boolean {
    return this.dirty
  }
  toJson(): string {
    return JSON.stringify({ version: CACHE_VERSION, entries: [...this.entries.values()].slice(-MAX_ENTRIES) })
  }
}

/** The cache of a model directory (empty when missing, corrupt or of another version). */
export const loadFactsCache = (modelDirectory: string): Effect.Effect<FactsCache, never, ScanFs> =>
  Effect.flatMap(ScanFs, (fs) =>
    fs.readText(factsCacheFileOf(modelDirectory), MAX_CACHE_BYTES).pipe(
      Effect.map((r) => {
        const decoded = decodeCacheFile(r.text)
        return new FactsCache(new Map(Either.isRight(decoded) ? decoded.right.entries.map((e) => [e.path, e] as const) : []))
      }),
      Effect.orElseSucceed(() => new FactsCache(new Map()))
    ))

/** Writes the cache if it changed: a temporary file renamed over the old one; a read-only directory is no error. */
export const saveFactsCache = (modelDirectory: string, cache: FactsCache): Effect.Effect<void, never, FileSystem.FileSystem> =>
  !cache.changed ? Effect.void : Effect.flatMap(FileSystem.FileSystem, (fs) => {
    const file = factsCacheFileOf(modelDirectory)
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`
    return makeDirectories(posix.dirname(file)).pipe(
      Effect.zipRight(fs.writeFileString(tmp, cache.toJson())),
      Effect.zipRight(fs.rename(tmp, file)),
      Effect.catchAll(() => Effect.ignore(fs.remove(tmp, { force: true })))
    )
  })

/** How `factsOfPrefix` takes the facts. */
export interface HeaderFactsOptions {
  /** The file name a quantization may come from when the header does not say. */
  readonly fileName?: string | undefined
  /**
   * `peek` (foreign stores): the family and quantization of the first bytes, the capabilities of the
   * whole header; `whole` (loose files): everything from the whole header (the dominant tensor type
   * stands in for a missing file type).
   */
  readonly quantizationFrom?: "peek" | "whole" | undefined
  readonly cache?: FactsCache | undefined
  /** False: the file was opened without following a last link (O_NOFOLLOW), and so is the rest of it. */
  readonly follow?: boolean | undefined
  /** What `peekGgufMetadata` already gave for these first bytes (a scan's magic check), so they are not parsed twice. */
  readonly peeked?: GgufPeekResult | undefined
}

/**
 * The facts of a GGUF file whose first bytes were read (`prefix`, through `fs.readPrefix` of `path`):
 * the rest of its header is read when it is longer (through `fs.readRange`, the same file checks), the
 * result cached when a cache is given. Undefined when the first bytes are not a GGUF; never fails.
 */
export const factsOfPrefix = (
  fs: ScanFsService,
  path: string,
  prefix: FilePrefix,
  options: HeaderFactsOptions = {}
): Effect.Effect<ModelFacts | undefined> =>
  Effect.suspend(() => {
    const peeked = options.peeked ?? peekGgufMetadata(prefix.bytes, prefix.info.size)
    if (peeked._tag === "Invalid") return Effect.succeed(undefined)
    const early = factsOfMetadata(peeked.metadata, options.fileName)
    const cached = options.cache?.lookup(path, prefix.info)
    if (cached !== undefined) return Effect.succeed<ModelFacts>(options.quantizationFrom === "whole" ? cached : { ...early, ...capabilitiesPart(cached) })
    const readRange = fs.readRange
    const wholePrefix = prefix.bytes.length >= prefix.info.size
    if (readRange === undefined && !wholePrefix) return Effect.succeed<ModelFacts>(early)
    const first = prefix.info
    return Effect.tryPromise({
      try: (signal) =>
        scanGgufHeader(
          async (position, length) => {
            if (readRange === undefined) return new Uint8Array(0)
            const range = await Effect.runPromise(readRange(path, position, length, { follow: options.follow ?? true }), { signal })
            // another file now, or this one rewritten: what was read so far is not its header
            if (range.info.ino !== first.ino || range.info.size !== first.size || range.info.mtimeMs !== first.mtimeMs) {
              return new Uint8Array(0)
            }
            return range.bytes
          },
          prefix.info.size,
          { initial: prefix.bytes, maxHeaderBytes: MAX_HEADER_BYTES }
        ),
      catch: (e) => e
    }).pipe(
      Effect.map((scanned): ModelFacts => {
        if (scanned._tag !== "Ok") {
          // past the bound or malformed after the first bytes: the first bytes' facts, and no capabilities
          if (options.cache !== undefined && !wholePrefix) options.cache.record(path, prefix.info, early)
          return early
        }
        const whole = factsOfFile(scanned.file, options.fileName)
        const facts = options.quantizationFrom === "whole" ? whole : { ...early, ...capabilitiesPart(whole) }
        if (options.cache !== undefined && scanned.bytesRead > 0) options.cache.record(path, prefix.info, whole)
        return facts
      }),
      // a read that failed (permissions changed, I/O error): the first bytes' facts, nothing cached
      Effect.orElseSucceed(() => early)
    )
  })

const capabilitiesPart = (facts: ModelFacts): ModelFacts => facts.capabilities !== undefined ? { capabilities: facts.capabilities } : {}

/** Bytes of a file read first for its facts (converters write `general.*` first). */
export const FACTS_PEEK_BYTES = 64 * 1024

/** The facts of the GGUF file at `path`: its first bytes, then the rest of its header when longer. */
export const headerFacts = (path: string, options: HeaderFactsOptions = {}): Effect.Effect<ModelFacts, never, ScanFs> =>
  Effect.flatMap(ScanFs, (fs) =>
    fs.readPrefix(path, FACTS_PEEK_BYTES).pipe(
      Effect.flatMap((prefix) => factsOfPrefix(fs, path, prefix, options)),
      Effect.map((facts) => facts ?? {}),
      Effect.orElseSucceed((): ModelFacts => ({}))
    ))

/**
 * The cached inventory of the foreign stores: `<model_directory>/.cache/inventory.json` holds, per
 * store (Ollama, HF cache, LM Studio, node-llama-cpp, with its roots), what the last scan found and a
 * *witness* of every file-system fact that scan depended on. A later `model list` re-checks the
 * witnesses (one stat, lstat or realpath each, concurrently) instead of re-reading every Ollama
 * manifest and config blob, readlink-ing every HF snapshot link and walking every folder; a store whose
 * witnesses all still hold is taken from the cache, any other store is scanned again. Reads the foreign
 * stores only (the cache file is llmspell's own); used by ModelStoreLive's `list`.
 *
 * Why the witnesses are sound: every scan goes through `ScanFs`, and the recording wrapper below turns
 * each call into the fact it read. A readdir becomes the directory's stat taken *before* listing it
 * (adding, removing, renaming or replacing an entry — `ln -sfn` retargeting an HF snapshot link included —
 * changes the directory's mtime and ctime); a read of a file (a manifest, a header's first bytes) becomes
 * the fstat of the opened file, taken before its bytes are read (a file rewritten in place changes its
 * mtime, ctime and usually its size); readlink becomes the link's lstat (a link cannot be changed in
 * place, only replaced: a new inode); stat/lstat/realpath are their own results; a failed call is what a
 * stat of the path says then (a store that appears later, a FIFO replaced by a file, is noticed). A
 * signature is `kind:ino:size:mtimeMs:ctimeMs`, so a copy restored with its old mtime (`cp -p`) still
 * differs by ctime.
 *
 * Racy entries (as in git's index): file-system timestamps are coarse (a kernel tick, seconds on some
 * file systems), so a change made in the same tick as the state we recorded would leave the same mtime.
 * A store whose newest recorded mtime is within `RACY_MARGIN_MS` of the scan's start is not cached (it is
 * scanned again next time, until it has been quiet that long).
 *
 * Whether it is worth it (bench:store, 200 models in four stores, December 2026, BENCHMARKS.md): the
 * in-process inventory takes 32 ms with a valid cache against 196 ms without (1.2× against 7.2× a bare
 * recursive readdir of the same roots, same run); what remains is ~600 stats and decoding this file.
 * It saves less than Node's start-up costs the command, but the scan grows with every model while
 * start-up does not. A cache that is corrupt, of another version,
 * unreadable or unwritable (a read-only model directory) is ignored: the listing is then a plain scan.
 * The cache file is read through ScanFs (capped, never a FIFO) and written through FileSystem.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import * as posix from "node:path/posix"
import { ForeignModel, type ForeignStoreRoots, ForeignStoreWarning } from "../../../domain/ForeignStores.js"
import { makeDirectories } from "../ensureDirectory.js"
import { type FileInfo, type ObserveQuery, ScanFs, ScanFsError, type ScanFsService } from "../scanFs.js"
import { scanHfCache, scanLmStudio, scanNodeLlamaCpp, scanOllama, type ScanOptions, type ScanResult } from "./scan.js"

/** Bumped whenever the file's shape or the meaning of a witness changes: another version is ignored. */
const CACHE_VERSION = 3

/** A store's timestamps this close to the scan (or newer) may hide a change: such a store is not cached. */
export const RACY_MARGIN_MS = 2000

// A cache of thousands of models is a few MB; anything far larger is not ours.
const MAX_CACHE_BYTES = 64 * 1024 * 1024

const CacheEntry = Schema.Struct({
  /** The store and its roots (and the HF default root, which the remove commands depend on). */
  key: Schema.String,
  /** `[op:path, signature]`, op `s` (stat), `l` (lstat) or `r` (realpath). */
  witnesses: Schema.Array(Schema.Tuple(Schema.String, Schema.String)),
  models: Schema.Array(ForeignModel),
  warnings: Schema.Array(ForeignStoreWarning)
})
type CacheEntry = typeof CacheEntry.Type

const CacheFile = Schema.Struct({
  version: Schema.Literal(CACHE_VERSION),
  entries: Schema.Array(CacheEntry)
})

const decodeCacheFile = Schema.decodeUnknownEither(Schema.parseJson(CacheFile))

/** Where the cache of a model directory lives. */
export const cacheFileOf = (modelDirectory: string): string => posix.join(modelDirectory, ".cache", "inventory.json")

const signatureOf = (s: FileInfo): string => {
  const kind = s.kind === "file" ? "f" : s.kind === "directory" ? "d" : s.kind === "symlink" ? "l" : "o"
  return `${kind}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`
}

const errorSignature = (e: ScanFsError) => `E:${e.code}`

/** What a witness key asks: `s:` stat, `l:` lstat, `r:` realpath of the path after the colon. */
const queryOf = (key: string): ObserveQuery => ({
  op: key[0] === "s" ? "stat" : key[0] === "l" ? "lstat" : "realpath",
  path: key.slice(2)
})

/** The signature of an answer to a witness's query. */
const signatureOfAnswer = (answer: FileInfo | string | ScanFsError): string =>
  answer instanceof ScanFsError ? errorSignature(answer) : typeof answer === "string" ? `R:${answer}` : signatureOf(answer)

/** A ScanFs that records a witness for every call it passes on. */
const recordingFs = (fs: ScanFsService) => {
  const witnesses = new Map<string, string>()
  let conflicting = false
  let newestMtime = -Infinity
  const record = (key: string, signature: string) => {
    const before = witnesses.get(key)
    // The same fact read twice with two answers: it changed during the scan; don't trust this scan.
    if (before !== undefined && before !== signature) conflicting = true
    witnesses.set(key, signature)
  }
  const recordInfo = (key: string, info: FileInfo) => {
    newestMtime = Math.max(newestMtime, info.mtimeMs)
    record(key, signatureOf(info))
  }
  const stats = (key: string, effect: Effect.Effect<FileInfo, ScanFsError>) =>
    effect.pipe(
      Effect.tap((info) => Effect.sync(() => recordInfo(key, info))),
      Effect.tapError((e) => Effect.sync(() => record(key, errorSignature(e))))
    )
  // stat before reading: a change after the stat moves the mtime past the recorded one
  const before = (key: string, effect: Effect.Effect<FileInfo, ScanFsError>) => Effect.ignore(stats(key, effect))
  // a read that failed: what the path is now (a FIFO, a vanished file) is the fact it depended on
  const afterFailure = (key: string, path: string) => before(key, key[0] === "l" ? fs.lstat(path) : fs.stat(path))
  const recording: ScanFsService = {
    observe: fs.observe,
    stat: (path) => stats(`s:${path}`, fs.stat(path)),
    lstat: (path) => stats(`l:${path}`, fs.lstat(path)),
    readDirectory: (path, limit) => Effect.zipRight(before(`s:${path}`, fs.stat(path)), fs.readDirectory(path, limit)),
    readText: (path, maxBytes) =>
      fs.readText(path, maxBytes).pipe(
        Effect.tap((r) => Effect.sync(() => recordInfo(`s:${path}`, r.info))),
        Effect.tapError(() => afterFailure(`s:${path}`, path))
      ),
    readPrefix: (path, bytes, options) => {
      // opened without following a link, a regular file's fstat is its lstat
      const key = `${options?.follow === false ? "l" : "s"}:${path}`
      return fs.readPrefix(path, bytes, options).pipe(
        Effect.tap((r) => Effect.sync(() => recordInfo(key, r.info))),
        Effect.tapError(() => afterFailure(key, path))
      )
    },
    // the rest of a header whose first bytes readPrefix read (and recorded) just before
    ...(fs.readRange !== undefined ? { readRange: fs.readRange } : {}),
    readLink: (path) => Effect.zipRight(before(`l:${path}`, fs.lstat(path)), fs.readLink(path)),
    realPath: (path) =>
      fs.realPath(path).pipe(
        Effect.tap((r) => Effect.sync(() => record(`r:${path}`, `R:${r}`))),
        Effect.tapError((e) => Effect.sync(() => record(`r:${path}`, errorSignature(e))))
      )
  }
  return {
    fs: recording,
    /** The witnesses, or undefined when the scan may have missed a change (racy or conflicting). */
    witnessesIf: (startedAt: number, margin: number): ReadonlyArray<readonly [string, string]> | undefined =>
      conflicting || newestMtime >= startedAt - margin ? undefined : [...witnesses]
  }
}

/** True when every witness still holds (all looked up at once). */
const stillHolds = (fs: ScanFsService, entry: CacheEntry): Effect.Effect<boolean> =>
  Effect.map(
    fs.observe(entry.witnesses.map(([key]) => queryOf(key))),
    (answers) => answers.every((answer, i) => signatureOfAnswer(answer) === entry.witnesses[i]![1])
  )

const readCache = (fs: ScanFsService, file: string): Effect.Effect<Map<string, CacheEntry>> =>
  fs.readText(file, MAX_CACHE_BYTES).pipe(
    Effect.map((r) => {
      const decoded = decodeCacheFile(r.text)
      // corrupt, foreign or of another version: rebuilt from a scan, never an error
      return Either.isRight(decoded) ? new Map(decoded.right.entries.map((e) => [e.key, e] as const)) : new Map<string, CacheEntry>()
    }),
    Effect.orElseSucceed(() => new Map<string, CacheEntry>())
  )

/** Written to a temporary file and renamed over the old one, so a reader never sees half a cache. */
const writeCache = (file: string, entries: ReadonlyArray<CacheEntry>): Effect.Effect<void, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => {
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`
    return makeDirectories(posix.dirname(file)).pipe(
      Effect.zipRight(fs.writeFileString(tmp, JSON.stringify({ version: CACHE_VERSION, entries }))),
      Effect.zipRight(fs.rename(tmp, file)),
      // a read-only or missing model directory: the listing works without a cache
      Effect.catchAll(() => Effect.ignore(fs.remove(tmp, { force: true })))
    )
  })

/** Options of a cached scan. */
export interface CachedScanOptions extends Omit<ScanOptions, "keep"> {
  /** The cache file; undefined scans without one. */
  readonly cacheFile: string | undefined
  /** The wall clock in ms (tests move it); default Effect's Clock. */
  readonly now?: Effect.Effect<number> | undefined
}

/** `scanAll` through the cache: each store from the cache when its witnesses hold, else scanned (and cached). */
export const scanAllCached = (
  roots: ForeignStoreRoots,
  options: CachedScanOptions
): Effect.Effect<ScanResult, never, ScanFs | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* ScanFs
    // no foreign store to look at (all off in `[stores]`): nothing to scan, nothing worth a cache file
    if (Object.values(roots).every((r: ReadonlyArray<string>) => r.length === 0)) return { models: [], warnings: [] }
    const now = options.now ?? Clock.currentTimeMillis
    const hfDefaultRoot = options.hfDefaultRoot ?? roots.hfCache[0]
    const cached = options.cacheFile === undefined ? new Map<string, CacheEntry>() : yield* readCache(fs, options.cacheFile)
    const scanOptions: ScanOptions = {
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
      ...(options.facts !== undefined ? { facts: options.facts } : {})
    }
    const stores = [
      { key: JSON.stringify(["ollama-store", roots.ollama]), scan: scanOllama(roots.ollama, scanOptions) },
      {
        key: JSON.stringify(["hf-cache", roots.hfCache, hfDefaultRoot ?? null]),
        scan: scanHfCache(roots.hfCache, { ...scanOptions, ...(hfDefaultRoot !== undefined ? { hfDefaultRoot } : {}) })
      },
      { key: JSON.stringify(["lmstudio", roots.lmstudio]), scan: scanLmStudio(roots.lmstudio, scanOptions) },
      { key: JSON.stringify(["node-llama-cpp", roots.nodeLlamaCpp]), scan: scanNodeLlamaCpp(roots.nodeLlamaCpp, scanOptions) }
    ]
    const results = yield* Effect.forEach(stores, ({ key, scan }) =>
      Effect.gen(function*() {
        const entry = cached.get(key)
        if (entry !== undefined && (yield* stillHolds(fs, entry))) return { entry, result: entry as ScanResult, changed: false }
        const recording = recordingFs(fs)
        const startedAt = yield* now
        const result = yield* Effect.provideService(scan, ScanFs, recording.fs)
        const witnesses = recording.witnessesIf(startedAt, RACY_MARGIN_MS)
        return {
          entry: witnesses === undefined ? undefined : { key, witnesses, models: result.models, warnings: result.warnings },
          result,
          changed: true
        }
      }), { concurrency: 4 })
    if (results.some((r) => r.changed) && options.cacheFile !== undefined) {
      yield* writeCache(options.cacheFile, results.flatMap((r) => r.entry !== undefined ? [r.entry] : []))
    }
    return {
      models: results.flatMap((r) => r.result.models),
      warnings: results.flatMap((r) => r.result.warnings)
    }
  }).pipe(Effect.withSpan("ModelStore.scanAllCached"))

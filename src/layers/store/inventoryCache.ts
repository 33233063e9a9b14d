/**
 * The cached inventory of the foreign stores: `<model_directory>/.cache/inventory.json` holds, per
 * store (Ollama, HF cache, LM Studio, node-llama-cpp, with its roots), what the last scan found and a
 * *witness* of every file-system fact that scan depended on. A later `model list` re-checks the
 * witnesses (one stat, lstat or realpath each, concurrently) instead of re-reading every Ollama
 * manifest and config blob, readlink-ing every HF snapshot link and walking every folder; a store whose
 * witnesses all still hold is taken from the cache, any other store is scanned again. Reads the foreign
 * stores only (the cache file is llmspell's own); shared by ModelStoreLive's `list` and `find`.
 *
 * Why the witnesses are sound: every scan goes through `ScanFs`, and the recording wrapper below turns
 * each call into the fact it read. A readdir becomes the directory's stat taken *before* listing it
 * (adding, removing, renaming or replacing an entry — `ln -sfn` retargeting an HF snapshot link included —
 * changes the directory's mtime and ctime); a readFile becomes the file's stat taken before reading
 * (a manifest rewritten in place changes its mtime, ctime and usually its size); readlink becomes the
 * link's lstat (a link cannot be changed in place, only replaced: a new inode); stat/lstat/realpath are
 * their own results; a failed call is its error code (a store that appears later is noticed). A
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
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import type { Stats } from "node:fs"
import * as fsp from "node:fs/promises"
import * as posix from "node:path/posix"
import { ForeignModel, type ForeignStoreRoots, ForeignStoreWarning } from "../../domain/ForeignStores.js"
import {
  mapConcurrent,
  nodeScanFs,
  scanHfCache,
  scanLmStudio,
  scanNodeLlamaCpp,
  scanOllama,
  type ScanFs,
  type ScanOptions,
  type ScanResult
} from "./foreignStoreScan.js"

/** Bumped whenever the file's shape or the meaning of a witness changes: another version is ignored. */
const CACHE_VERSION = 1

/** A store's timestamps this close to the scan (or newer) may hide a change: such a store is not cached. */
export const RACY_MARGIN_MS = 2000

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

const codeOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : "error"

const signatureOf = (s: Stats): string => {
  const kind = s.isFile() ? "f" : s.isDirectory() ? "d" : s.isSymbolicLink() ? "l" : "o"
  return `${kind}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`
}

/** The current signature of one witness. */
const observe = (fs: ScanFs, key: string): Promise<string> => {
  const path = key.slice(2)
  switch (key[0]) {
    case "s":
      return fs.stat(path).then(signatureOf, (e) => `E:${codeOf(e)}`)
    case "l":
      return fs.lstat(path).then(signatureOf, (e) => `E:${codeOf(e)}`)
    default:
      return fs.realpath(path).then((r) => `R:${r}`, (e) => `E:${codeOf(e)}`)
  }
}

/** A `ScanFs` that records a witness for every call it passes on. */
const recordingFs = (fs: ScanFs) => {
  const witnesses = new Map<string, string>()
  let conflicting = false
  let newestMtime = -Infinity
  const record = (key: string, signature: string) => {
    const before = witnesses.get(key)
    // The same fact read twice with two answers: it changed during the scan; don't trust this scan.
    if (before !== undefined && before !== signature) conflicting = true
    witnesses.set(key, signature)
  }
  const stats = (key: string, op: () => Promise<Stats>) =>
    op().then(
      (s) => {
        newestMtime = Math.max(newestMtime, s.mtimeMs)
        record(key, signatureOf(s))
        return s
      },
      (e: unknown) => {
        record(key, `E:${codeOf(e)}`)
        throw e
      }
    )
  // stat before reading: a change after the stat moves the mtime past the recorded one
  const before = (key: string, op: () => Promise<Stats>) => stats(key, op).then(() => undefined, () => undefined)
  const recording: ScanFs = {
    stat: (path) => stats(`s:${path}`, () => fs.stat(path)),
    lstat: (path) => stats(`l:${path}`, () => fs.lstat(path)),
    readdir: async (path, options) => {
      await before(`s:${path}`, () => fs.stat(path))
      return fs.readdir(path, options)
    },
    readFile: async (path, encoding) => {
      await before(`s:${path}`, () => fs.stat(path))
      return fs.readFile(path, encoding)
    },
    readlink: async (path) => {
      await before(`l:${path}`, () => fs.lstat(path))
      return fs.readlink(path)
    },
    realpath: (path) =>
      fs.realpath(path).then(
        (r) => {
          record(`r:${path}`, `R:${r}`)
          return r
        },
        (e: unknown) => {
          record(`r:${path}`, `E:${codeOf(e)}`)
          throw e
        }
      )
  }
  return {
    fs: recording,
    /** The witnesses, or undefined when the scan may have missed a change (racy or conflicting). */
    witnessesIf: (startedAt: number, margin: number): ReadonlyArray<readonly [string, string]> | undefined =>
      conflicting || newestMtime >= startedAt - margin ? undefined : [...witnesses]
  }
}

/** True when every witness still holds; stops at the first that does not. */
const stillHolds = async (fs: ScanFs, entry: CacheEntry, signal: AbortSignal | undefined): Promise<boolean> => {
  let holds = true
  await mapConcurrent(entry.witnesses, async ([key, signature]) => {
    if (!holds) return
    signal?.throwIfAborted()
    if ((await observe(fs, key)) !== signature) holds = false
  })
  return holds
}

const readCache = async (file: string): Promise<Map<string, CacheEntry>> => {
  const text = await fsp.readFile(file, "utf8").catch(() => undefined)
  if (text === undefined) return new Map()
  const decoded = decodeCacheFile(text)
  // corrupt, foreign or of another version: rebuilt from a scan, never an error
  return Either.isRight(decoded) ? new Map(decoded.right.entries.map((e) => [e.key, e])) : new Map()
}

/** Written to a temporary file and renamed over the old one, so a reader never sees half a cache. */
const writeCache = async (file: string, entries: ReadonlyArray<CacheEntry>): Promise<void> => {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`
  try {
    await fsp.mkdir(posix.dirname(file), { recursive: true })
    await fsp.writeFile(tmp, JSON.stringify({ version: CACHE_VERSION, entries }))
    await fsp.rename(tmp, file)
  } catch {
    // a read-only or missing model directory: the listing works without a cache
    await fsp.rm(tmp, { force: true }).catch(() => undefined)
  }
}

/** Options of a cached scan. */
export interface CachedScanOptions extends Omit<ScanOptions, "keep"> {
  /** The cache file; undefined scans without one. */
  readonly cacheFile: string | undefined
  /** The wall clock in ms (tests move it); default `Date.now`. */
  readonly now?: () => number
}

/** `scanAll` through the cache: each store from the cache when its witnesses hold, else scanned (and cached). */
export const scanAllCached = async (roots: ForeignStoreRoots, options: CachedScanOptions): Promise<ScanResult> => {
  const fs = options.fs ?? nodeScanFs
  const now = options.now ?? Date.now
  const hfDefaultRoot = options.hfDefaultRoot ?? roots.hfCache[0]
  const cached = options.cacheFile === undefined ? new Map<string, CacheEntry>() : await readCache(options.cacheFile)
  const stores = [
    { key: JSON.stringify(["ollama-store", roots.ollama]), scan: (o: ScanOptions) => scanOllama(roots.ollama, o) },
    {
      key: JSON.stringify(["hf-cache", roots.hfCache, hfDefaultRoot ?? null]),
      scan: (o: ScanOptions) => scanHfCache(roots.hfCache, { ...o, ...(hfDefaultRoot !== undefined ? { hfDefaultRoot } : {}) })
    },
    { key: JSON.stringify(["lmstudio", roots.lmstudio]), scan: (o: ScanOptions) => scanLmStudio(roots.lmstudio, o) },
    { key: JSON.stringify(["node-llama-cpp", roots.nodeLlamaCpp]), scan: (o: ScanOptions) => scanNodeLlamaCpp(roots.nodeLlamaCpp, o) }
  ]
  let changed = false
  const results = await Promise.all(stores.map(async ({ key, scan }) => {
    const entry = cached.get(key)
    if (entry !== undefined && await stillHolds(fs, entry, options.signal)) return { entry, result: entry }
    changed = true
    const recording = recordingFs(fs)
    const startedAt = now()
    const result = await scan({ ...(options.signal !== undefined ? { signal: options.signal } : {}), fs: recording.fs })
    const witnesses = recording.witnessesIf(startedAt, RACY_MARGIN_MS)
    return { entry: witnesses === undefined ? undefined : { key, witnesses, models: result.models, warnings: result.warnings }, result }
  }))
  if (changed && options.cacheFile !== undefined) {
    await writeCache(options.cacheFile, results.flatMap((r) => r.entry !== undefined ? [r.entry] : []))
  }
  return {
    models: results.flatMap((r) => r.result.models),
    warnings: results.flatMap((r) => r.result.warnings)
  }
}

/**
 * What every foreign-store scan shares (the layouts themselves are `domain/ForeignStores.ts`, one scanner
 * per store beside this file): a scan context that collects warnings, the directory walk, and the rules
 * that keep a scan of a tree llmspell does not control safe and bounded.
 *
 * - Read-only: only ScanFs calls (readdir, stat, lstat, readlink, realpath, reads of regular files).
 * - Contained: a store is its root's real path. A symlinked folder is entered only when its real path
 *   stays inside the store (`ln -s / manifests/rootlink` is a warning, not a walk of the disk); each real
 *   folder is entered once, which ends loops (`a -> .`, `a -> b -> a` fails with ELOOP: a warning). A file
 *   link leaving the store is refused, except where the owning tool makes such links (LM Studio's
 *   `lms import -l`), and then only to a regular file that starts like a GGUF.
 * - Never blocked: every read is of a regular file opened with O_NONBLOCK and checked with fstat; a FIFO,
 *   socket or device where a file should be is a warning.
 * - Bounded: depth by layout; entries per folder, entries and bytes per scan by `ScanLimits`; reads of
 *   JSON by size caps. Past a limit the scan ends with a warning and keeps what it found.
 * - Tolerant: a permission error, a vanished file, a malformed manifest is a warning; the scan goes on. A
 *   missing root is an absent store.
 */
import * as Effect from "effect/Effect"
import * as posix from "node:path/posix"
import * as ForeignStores from "../../../domain/ForeignStores.js"
import type { ForeignModel, ForeignStoreKind, ForeignStoreWarning } from "../../../domain/ForeignStores.js"
import { peekGgufMetadata } from "../../../domain/GgufReader.js"
import { factsOfMetadata, type ModelFacts } from "../../../domain/ModelFacts.js"
import { type FactsCache, factsOfPrefix } from "../headerFacts.js"
import { type DirEntry, describeKind, type FileInfo, ScanFs, type ScanFsError, type ScanFsService } from "../scanFs.js"

/** How much one scan of one store may look at. */
export interface ScanLimits {
  /** Entries read from one folder; the rest of a larger folder is skipped with a warning. */
  readonly maxDirectoryEntries: number
  /** Entries read from all folders of the store together. */
  readonly maxEntries: number
  /** Bytes read from files (manifests, headers, refs) of the store together. */
  readonly maxBytes: number
}

/** Far above any real store (thousands of models), far below what exhausts memory or time. */
export const DEFAULT_LIMITS: ScanLimits = { maxDirectoryEntries: 20_000, maxEntries: 200_000, maxBytes: 256 * 1024 * 1024 }

/** Options of a scan. */
export interface ScanOptions {
  /** The HF cache root `hf` uses without `--cache-dir` (to print `hf cache rm` right); default: the root scanned. */
  readonly hfDefaultRoot?: string | undefined
  /**
   * Only this part of the store (a `find` that knows where a name can live): called with a path
   * relative to the part of the layout that names models (Ollama: under `manifests/`, `host`,
   * `host/namespace`, … lower-cased; HF cache: the repo id, lower-cased; LM Studio and node-llama-cpp:
   * the folder or file path under the root, lower-cased); false skips that folder or file. Split
   * parts are still looked up beside a kept first part.
   */
  readonly keep?: ((relPath: string) => boolean) | undefined
  readonly limits?: ScanLimits | undefined
  /**
   * The facts of long headers read before (`headerFacts.ts`). Given (a listing), each model's whole header
   * is read for its capabilities unless cached here; not given (a find), only the first bytes.
   */
  readonly facts?: FactsCache | undefined
}

/** What a scan found, and what it skipped and why. */
export interface ScanResult {
  readonly models: ReadonlyArray<ForeignModel>
  readonly warnings: ReadonlyArray<ForeignStoreWarning>
}

/** Sibling entries looked at concurrently (the libuv pool has 4 threads; more keeps them busy). */
export const CONCURRENCY = 16
/** Bytes read from the start of each model file for its facts (converters write `general.*` first). */
export const GGUF_PEEK_BYTES = 64 * 1024

/**
 * `Effect.forEach` over sibling entries, concurrently; one entry (most model folders hold one) runs
 * in place, without a fiber: a scan visits hundreds of one-entry folders.
 */
export const forEachEntry = <A, B>(items: ReadonlyArray<A>, f: (item: A) => Effect.Effect<B>): Effect.Effect<Array<B>> =>
  items.length <= 1 ? Effect.forEach(items, f) : Effect.forEach(items, f, { concurrency: CONCURRENCY })

/** A folder being walked: the path it was reached by, its real path, and the real path of its store. */
export interface Dir {
  readonly path: string
  readonly real: string
  readonly store: string
}

/** The state of one scan of one store: its warnings, the folders entered, what it has spent. */
export class ScanContext {
  readonly warnings: Array<ForeignStoreWarning> = []
  readonly visited = new Set<string>()
  entries = 0
  bytes = 0
  stopped = false
  constructor(
    readonly store: ForeignStoreKind,
    readonly fs: ScanFsService,
    readonly limits: ScanLimits,
    readonly facts?: FactsCache | undefined
  ) {}
}

/** A scan context over the ScanFs in context. */
export const makeContext = (store: ForeignStoreKind, options: ScanOptions) =>
  Effect.map(ScanFs, (fs) => new ScanContext(store, fs, options.limits ?? DEFAULT_LIMITS, options.facts))

/** Records a warning; returns undefined so a caller can `return yield* warn(…)`. */
export const warn = (ctx: ScanContext, path: string, reason: string): Effect.Effect<undefined> =>
  Effect.sync(() => {
    ctx.warnings.push({ store: ctx.store, path, reason })
    return undefined
  })

/** One call; a failure becomes a warning (or nothing, when `quiet` says so for its code). */
export const attempt = <A>(
  ctx: ScanContext,
  path: string,
  effect: Effect.Effect<A, ScanFsError>,
  quiet?: (code: string) => boolean
): Effect.Effect<A | undefined> =>
  Effect.catchAll(effect, (e) => (quiet?.(e.code) === true ? Effect.succeed(undefined) : warn(ctx, path, e.reason)))

/** Counts entries or bytes against the limits; false (and one warning) once the scan is over budget. */
export const spend = (ctx: ScanContext, what: "entries" | "bytes", amount: number, path: string): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    if (ctx.stopped) return Effect.succeed(false)
    if (what === "entries") ctx.entries += amount
    else ctx.bytes += amount
    const over = what === "entries" ? ctx.entries > ctx.limits.maxEntries : ctx.bytes > ctx.limits.maxBytes
    if (!over) return Effect.succeed(true)
    ctx.stopped = true
    const limit = what === "entries" ? `${ctx.limits.maxEntries} entries` : `${ctx.limits.maxBytes} bytes of files`
    return Effect.as(warn(ctx, path, `the scan stopped here: the store holds more than ${limit}; what was found so far is listed`), false)
  })

const iso = (ms: number) => new Date(ms).toISOString()

/** True when `real` is the store's folder or inside it. */
export const inside = (real: string, store: string): boolean =>
  real === store || real.startsWith(store.endsWith("/") ? store : `${store}/`)

/** A store root as a `Dir`; undefined for a missing root, which is an absent store, not a warning. */
export const openRoot = (ctx: ScanContext, root: string): Effect.Effect<Dir | undefined> =>
  Effect.gen(function*() {
    const stats = yield* attempt(ctx, root, ctx.fs.stat(root), (code) => code === "ENOENT" || code === "ENOTDIR")
    if (stats === undefined) return undefined
    if (stats.kind !== "directory") return yield* warn(ctx, root, "store root is not a directory")
    const real = yield* attempt(ctx, root, ctx.fs.realPath(root))
    // the default roots may be one folder reached twice (a symlinked ~/.ollama): read it once
    if (real === undefined || ctx.visited.has(real)) return undefined
    ctx.visited.add(real)
    return { path: root, real, store: real }
  })

/** A folder's entries in name order, `.`-files left out (locks, partial downloads, OS litter); bounded. */
export const listDir = (ctx: ScanContext, dir: Dir | string): Effect.Effect<ReadonlyArray<DirEntry>> =>
  Effect.gen(function*() {
    const path = typeof dir === "string" ? dir : dir.path
    if (ctx.stopped) return []
    const listing = yield* attempt(ctx, path, ctx.fs.readDirectory(path, ctx.limits.maxDirectoryEntries))
    if (listing === undefined) return []
    if (listing.truncated) {
      yield* warn(ctx, path, `more than ${ctx.limits.maxDirectoryEntries} entries: only the first ${ctx.limits.maxDirectoryEntries} were looked at`)
    }
    if (!(yield* spend(ctx, "entries", listing.entries.length, path))) return []
    return listing.entries.filter((e) => !e.name.startsWith(".")).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  })

/** The kind of an entry whose listing did not say (some file systems answer DT_UNKNOWN). */
const entryKind = (ctx: ScanContext, path: string, entry: DirEntry) =>
  entry.kind !== "other" ? Effect.succeed(entry.kind) : Effect.map(attempt(ctx, path, ctx.fs.lstat(path)), (s) => s?.kind)

/**
 * The entry as a folder to descend into, or undefined. A real sub-folder costs no call (its real path
 * is its parent's plus its name); a symlink is followed only to a folder inside the store. Each real
 * folder is entered once per scan.
 */
export const childDir = (ctx: ScanContext, dir: Dir, entry: DirEntry): Effect.Effect<Dir | undefined> =>
  entry.kind === "directory" ? Effect.sync(() => enter(ctx, posix.join(dir.path, entry.name), posix.join(dir.real, entry.name), dir.store)) : Effect.gen(function*() {
    const path = posix.join(dir.path, entry.name)
    const kind = yield* entryKind(ctx, path, entry)
    let real: string | undefined
    if (kind === "directory") real = posix.join(dir.real, entry.name)
    else if (kind === "symlink") {
      const stats = yield* attempt(ctx, path, ctx.fs.stat(path), (code) => code === "ENOENT")
      if (stats?.kind !== "directory") return undefined
      real = yield* attempt(ctx, path, ctx.fs.realPath(path))
      if (real !== undefined && !inside(real, dir.store)) {
        return yield* warn(ctx, path, "a link to a folder outside the store: not followed")
      }
    }
    return real === undefined ? undefined : enter(ctx, path, real, dir.store)
  })

/** A folder to enter, unless it was entered before in this scan (which ends a link loop). */
const enter = (ctx: ScanContext, path: string, real: string, store: string): Dir | undefined => {
  if (ctx.visited.has(real)) return undefined
  ctx.visited.add(real)
  return { path, real, store }
}

/** A model file found by a scan: where its bytes are, where the store keeps it, its size and facts. */
export interface FoundFile {
  /** The real path (what llama.cpp opens). */
  readonly path: string
  /** The path in the store (a link's own path, not its target). */
  readonly storePath: string
  readonly sizeBytes: number
  /** Its modification time (ISO). */
  readonly modifiedAt: string
  readonly facts?: ModelFacts | undefined
  readonly sha256?: string | undefined
}

/** How a file reached through a link that leaves its store is treated. */
export type OutsideLinks =
  /** Refused: the store's own files never leave it (Ollama's and the HF cache's blobs). */
  | "refuse"
  /** Accepted when the target is a regular file that starts like a GGUF (`lms import -l`). */
  | "gguf-only"

/** How to resolve a file. */
export interface ResolveOptions {
  readonly outside: OutsideLinks
  /** Read the first bytes: check the GGUF magic and take the facts (first parts of models only). */
  readonly peek: boolean
  /** The file name the quantization may come from when the header does not say. */
  readonly fileName?: string | undefined
  /** The size the store's metadata states (an Ollama manifest): another size is a warning before anything else. */
  readonly expectedSize?: number | undefined
}

/**
 * The GGUF magic and facts from the first bytes of `path` (a regular file, opened without following a
 * link when `follow` is false), the capabilities from the rest of its header when it is longer
 * (`headerFacts.ts`: read in windows, cached). Undefined, with a warning, when it is not a GGUF. Only the
 * first bytes count against the scan's byte budget: the rest of a header has its own bound.
 */
export const peekFile = (
  ctx: ScanContext,
  path: string,
  warnAs: string,
  options: { readonly follow: boolean; readonly fileName?: string | undefined; readonly expectedSize?: number | undefined }
): Effect.Effect<{ readonly info: FileInfo; readonly facts: ModelFacts } | undefined, ScanFsError> =>
  Effect.gen(function*() {
    const prefix = yield* ctx.fs.readPrefix(path, GGUF_PEEK_BYTES, { follow: options.follow })
    if (!(yield* spend(ctx, "bytes", prefix.bytes.length, path))) return undefined
    if (options.expectedSize !== undefined && prefix.info.size !== options.expectedSize) {
      return yield* warn(ctx, warnAs, `size ${prefix.info.size} differs from the manifest's ${options.expectedSize}`)
    }
    const peeked = peekGgufMetadata(prefix.bytes, prefix.info.size)
    if (peeked._tag === "Invalid") return yield* warn(ctx, warnAs, `not a usable GGUF file: ${peeked.problem.reason}`)
    // a listing (which gives a facts cache) reads the whole header for the capabilities; a find only the first bytes
    const facts = ctx.facts !== undefined
      ? yield* factsOfPrefix(ctx.fs, path, prefix, { fileName: options.fileName, cache: ctx.facts, peeked, follow: options.follow })
      : factsOfMetadata(peeked.metadata, options.fileName)
    return { info: prefix.info, facts: facts ?? {} }
  })

/** A file to resolve: where the store keeps it, the path to open (a link's computed target), its real path. */
export interface FileRef {
  /** The path in the store: what warnings name and, when it is a link, what is resolved. */
  readonly storePath: string
  /** The path opened without following a last link (default `storePath`). */
  readonly open?: string | undefined
  /** The real path of `open` when that is not a link. */
  readonly real: string
  /** What the folder listing said it is, if it was listed. */
  readonly kind?: DirEntry["kind"] | undefined
}

/**
 * The regular file behind a store path: its size, and with `peek` its GGUF facts. A link is followed by
 * the kernel and its target checked against the store.
 */
export const resolveFile = (
  ctx: ScanContext,
  file: FileRef,
  store: string,
  options: ResolveOptions
): Effect.Effect<FoundFile | undefined> =>
  Effect.gen(function*() {
    const { kind, real, storePath } = file
    const open = file.open ?? storePath
    if (kind === "symlink" && open === storePath) return yield* resolveLink(ctx, storePath, store, options)
    if (kind !== undefined && kind !== "file" && kind !== "other" && kind !== "symlink") {
      return yield* warn(ctx, storePath, `${describeKind(kind)}, not a regular file`)
    }
    const onError = (e: ScanFsError): Effect.Effect<undefined> =>
      e.code === "ENOENT" && open !== storePath
        ? warn(ctx, storePath, "broken symlink (its target is missing)")
        : warn(ctx, storePath, e.reason)
    if (!options.peek) {
      const stats = yield* ctx.fs.lstat(open).pipe(Effect.catchAll(onError))
      if (stats === undefined) return undefined
      if (stats.kind === "symlink") return yield* resolveLink(ctx, storePath, store, options)
      if (stats.kind !== "file") return yield* warn(ctx, storePath, `${describeKind(stats.kind)}, not a regular file`)
      return { path: real, storePath, sizeBytes: stats.size, modifiedAt: iso(stats.mtimeMs) }
    }
    // O_NOFOLLOW: a link where a plain file was (or was expected) fails with ELOOP and is resolved as one
    const peeked = yield* peekFile(ctx, open, storePath, { follow: false, fileName: options.fileName, expectedSize: options.expectedSize }).pipe(
      Effect.map((p) => ({ _tag: "Peeked" as const, p })),
      Effect.catchAll((e) => Effect.succeed({ _tag: "Failed" as const, e }))
    )
    if (peeked._tag === "Failed") {
      if (peeked.e.code === "ELOOP") return yield* resolveLink(ctx, storePath, store, options)
      return yield* onError(peeked.e)
    }
    if (peeked.p === undefined) return undefined
    return { path: real, storePath, sizeBytes: peeked.p.info.size, modifiedAt: iso(peeked.p.info.mtimeMs), facts: peeked.p.facts }
  })

const resolveLink = (
  ctx: ScanContext,
  storePath: string,
  store: string,
  options: ResolveOptions
): Effect.Effect<FoundFile | undefined> =>
  Effect.gen(function*() {
    const target = yield* ctx.fs.stat(storePath).pipe(Effect.either)
    if (target._tag === "Left") {
      if (target.left.code !== "ENOENT") return yield* warn(ctx, storePath, target.left.reason)
      // tell a dangling link from a file that is gone
      const link = yield* ctx.fs.lstat(storePath).pipe(Effect.map((s) => s.kind === "symlink"), Effect.orElseSucceed(() => false))
      return yield* warn(ctx, storePath, link ? "broken symlink (its target is missing)" : "vanished or missing")
    }
    if (target.right.kind !== "file") return yield* warn(ctx, storePath, `a link to ${describeKind(target.right.kind)}, not a regular file`)
    const real = yield* attempt(ctx, storePath, ctx.fs.realPath(storePath))
    if (real === undefined) return undefined
    const leaves = !inside(real, store)
    if (leaves && options.outside === "refuse") {
      return yield* warn(ctx, storePath, "a link to a file outside the store: not listed")
    }
    if (!options.peek && !leaves) return { path: real, storePath, sizeBytes: target.right.size, modifiedAt: iso(target.right.mtimeMs) }
    // a link out of the store must at least lead to a GGUF (`lms import -l`), never to any file on the disk
    const peeked = yield* attempt(
      ctx,
      storePath,
      peekFile(ctx, real, storePath, { follow: true, fileName: options.fileName, expectedSize: options.expectedSize })
    )
    if (peeked === undefined) return undefined
    return {
      path: real,
      storePath,
      sizeBytes: peeked.info.size,
      modifiedAt: iso(peeked.info.mtimeMs),
      ...(options.peek ? { facts: peeked.facts } : {})
    }
  })

/** A model found by `walkGguf`: its path relative to where the walk started, its first part and the others. */
export interface Found {
  readonly relPath: string
  readonly first: FoundFile
  readonly others: ReadonlyArray<FoundFile>
}

/** Resolves one `.gguf` entry of a folder (a store-specific rule: HF checks its link; plain stores just look). */
export type Resolve = (relPath: string, dir: Dir, entry: DirEntry, first: boolean) => Effect.Effect<FoundFile | undefined>

/**
 * Walks `dir` to `maxDepth` levels of path segments and returns one `Found` per model, in path order:
 * a `.gguf` that is not a projector, with every part of a split model resolved (a missing part is a
 * warning). Sibling entries are looked at concurrently.
 */
export const walkGguf = (
  ctx: ScanContext,
  dir: Dir,
  relDir: string,
  maxDepth: number,
  resolve: Resolve,
  keep: (relPath: string) => boolean = () => true
): Effect.Effect<ReadonlyArray<Found>> =>
  Effect.gen(function*() {
    const entries = yield* listDir(ctx, dir)
    const files = new Map<string, DirEntry>()
    const others: Array<DirEntry> = []
    const depth = relDir === "" ? 0 : relDir.split("/").length
    const rel = (name: string) => relDir === "" ? name : `${relDir}/${name}`
    for (const entry of entries) {
      if (/\.gguf$/i.test(entry.name) && entry.kind !== "directory") files.set(entry.name, entry)
      else if (depth + 1 < maxDepth && keep(rel(entry.name).toLowerCase())) others.push(entry)
    }
    const firsts = [...files.keys()].filter((name) => ForeignStores.isModelFileName(name) && keep(rel(name).toLowerCase()))
    const models = yield* forEachEntry(firsts, (name) =>
      Effect.gen(function*() {
        const split = ForeignStores.splitPart(name)
        const otherNames: Array<string> = []
        if (split !== undefined) {
          for (let i = 2; i <= split.count; i++) otherNames.push(ForeignStores.splitPartName(name, i, split.count))
          const missing = otherNames.filter((n) => !files.has(n))
          if (missing.length > 0) {
            return yield* warn(
              ctx,
              posix.join(dir.path, name),
              `incomplete split model: ${missing.length} of ${split.count} parts missing (${missing[0]}…)`
            )
          }
        }
        const first = yield* resolve(rel(name), dir, files.get(name)!, true)
        if (first === undefined) return undefined
        const rest: Array<FoundFile> = []
        for (const other of otherNames) {
          const resolved = yield* resolve(rel(other), dir, files.get(other)!, false)
          if (resolved === undefined) return undefined
          rest.push(resolved)
        }
        const found: Found = { relPath: rel(name), first, others: rest }
        return found
      }))
    const nested = yield* forEachEntry(others, (entry) =>
      Effect.flatMap(childDir(ctx, dir, entry), (child) =>
        child === undefined ? Effect.succeed<ReadonlyArray<Found>>([]) : walkGguf(ctx, child, rel(entry.name), maxDepth, resolve, keep)))
    return [...models.filter((m): m is Found => m !== undefined), ...nested.flat()]
  })

/** The rule of plain-folder stores: the entry as it is; a link may leave the store only for a GGUF. */
export const plainResolve = (ctx: ScanContext): Resolve => (relPath, dir, entry, first) =>
  resolveFile(
    ctx,
    { storePath: posix.join(dir.path, entry.name), real: posix.join(dir.real, entry.name), kind: entry.kind },
    dir.store,
    { outside: "gguf-only", peek: first, fileName: relPath }
  )

/** The result of a scan context. */
export const resultOf = (ctx: ScanContext, models: ReadonlyArray<ForeignModel>): ScanResult => ({
  models,
  warnings: ctx.warnings
})

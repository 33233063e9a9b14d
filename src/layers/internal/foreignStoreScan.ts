/**
 * Walks the GGUF stores of other tools (Ollama, the HF hub cache, LM Studio, node-llama-cpp) and lists
 * their models as `ForeignModel` records; the layouts themselves are `domain/ForeignStores.ts`.
 *
 * Read-only: only readdir, stat, lstat, readlink, realpath and readFile, never a write, so a scan can
 * never damage another tool's store. Bounded: fixed depths per layout, symlinked directories followed
 * once (by device and inode, so a link loop ends), small reads capped. Tolerant: a permission error,
 * a file that vanishes mid-scan, a dangling link or a malformed manifest becomes a warning in the
 * result and the scan goes on; a missing root is simply an absent store. Interruptible: the signal is
 * checked before every file-system call (`scanAllEffect` wires it to fiber interruption).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as fsp from "node:fs/promises"
import * as posix from "node:path/posix"
import * as ForeignStores from "../../domain/ForeignStores.js"
import type { ForeignModel, ForeignStoreKind, ForeignStoreRoots, ForeignStoreWarning } from "../../domain/ForeignStores.js"

/** The file-system calls a scan makes (all read-only); tests wrap the real ones to inject faults. */
export interface ScanFs {
  readonly readdir: (path: string, options: { withFileTypes: true }) => Promise<Array<import("node:fs").Dirent>>
  readonly stat: (path: string) => Promise<import("node:fs").Stats>
  readonly lstat: (path: string) => Promise<import("node:fs").Stats>
  readonly readlink: (path: string) => Promise<string>
  readonly realpath: (path: string) => Promise<string>
  readonly readFile: (path: string, encoding: "utf8") => Promise<string>
}

/** node:fs/promises, the real file system. */
export const nodeScanFs: ScanFs = {
  readdir: (path, options) => fsp.readdir(path, options),
  stat: (path) => fsp.stat(path),
  lstat: (path) => fsp.lstat(path),
  readlink: (path) => fsp.readlink(path),
  realpath: (path) => fsp.realpath(path),
  readFile: (path, encoding) => fsp.readFile(path, encoding)
}

/** Options of a scan. */
export interface ScanOptions {
  /** Aborts the scan between file-system calls; the promise then rejects with the signal's reason. */
  readonly signal?: AbortSignal
  readonly fs?: ScanFs
  /** The HF cache root `hf` uses without `--cache-dir` (to print `hf cache rm` right); default: the root scanned. */
  readonly hfDefaultRoot?: string
}

/** What a scan found, and what it skipped and why. */
export interface ScanResult {
  readonly models: ReadonlyArray<ForeignModel>
  readonly warnings: ReadonlyArray<ForeignStoreWarning>
}

// An Ollama manifest is a few hundred bytes, its config blob under 1 KB; anything far larger is not one.
const MAX_MANIFEST_BYTES = 1024 * 1024
const MAX_CONFIG_BYTES = 64 * 1024
const MAX_REF_BYTES = 4096
// Snapshot files may sit in sub-folders (`Q4_K_M/x-00001-of-00002.gguf`); a few levels is plenty.
const HF_MAX_DEPTH = 4

interface Ctx {
  readonly store: ForeignStoreKind
  readonly fs: ScanFs
  readonly signal: AbortSignal | undefined
  readonly warnings: Array<ForeignStoreWarning>
  readonly visited: Set<string>
}

const makeCtx = (store: ForeignStoreKind, options: ScanOptions): Ctx => ({
  store,
  fs: options.fs ?? nodeScanFs,
  signal: options.signal,
  warnings: [],
  visited: new Set()
})

const codeOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : undefined

const reasonOf = (error: unknown): string => {
  switch (codeOf(error)) {
    case "ENOENT":
      return "vanished or missing"
    case "EACCES":
    case "EPERM":
      return "permission denied"
    case "ELOOP":
      return "symlink loop"
    case "ENOTDIR":
      return "not a directory"
    default:
      return error instanceof Error ? error.message : String(error)
  }
}

const warn = (ctx: Ctx, path: string, reason: string): undefined => {
  ctx.warnings.push({ store: ctx.store, path, reason })
  return undefined
}

/** Runs one file-system call; a failure becomes a warning (or nothing, when `quiet` says so). */
const attempt = async <A>(
  ctx: Ctx,
  path: string,
  op: () => Promise<A>,
  quiet?: (code: string | undefined) => boolean
): Promise<A | undefined> => {
  ctx.signal?.throwIfAborted()
  try {
    return await op()
  } catch (error) {
    ctx.signal?.throwIfAborted()
    if (quiet?.(codeOf(error)) === true) return undefined
    return warn(ctx, path, reasonOf(error))
  }
}

/** A readable regular file behind `path` (symlinks followed): its real path and size. */
const resolveRegularFile = async (
  ctx: Ctx,
  path: string
): Promise<{ readonly path: string; readonly sizeBytes: number } | undefined> => {
  ctx.signal?.throwIfAborted()
  let stats: import("node:fs").Stats
  try {
    stats = await ctx.fs.stat(path)
  } catch (error) {
    ctx.signal?.throwIfAborted()
    if (codeOf(error) === "ENOENT") {
      // Tell a dangling link from a file that is gone.
      const link = await ctx.fs.lstat(path).then((s) => s.isSymbolicLink(), () => false)
      return warn(ctx, path, link ? "broken symlink (its target is missing)" : "vanished or missing")
    }
    return warn(ctx, path, reasonOf(error))
  }
  if (!stats.isFile()) return warn(ctx, path, "not a regular file")
  const real = await attempt(ctx, path, () => ctx.fs.realpath(path))
  return real === undefined ? undefined : { path: real, sizeBytes: stats.size }
}

/** Reads a small text file, refusing one larger than `max` bytes. */
const readSmallFile = async (ctx: Ctx, path: string, max: number, quiet = false): Promise<string | undefined> => {
  const silent = quiet ? () => true : undefined
  const stats = await attempt(ctx, path, () => ctx.fs.stat(path), silent)
  if (stats === undefined) return undefined
  if (!stats.isFile()) return quiet ? undefined : warn(ctx, path, "not a regular file")
  if (stats.size > max) return quiet ? undefined : warn(ctx, path, `too large (${stats.size} bytes) to be what the layout stores here`)
  return attempt(ctx, path, () => ctx.fs.readFile(path, "utf8"), silent)
}

/** Marks a directory as entered; false when it was already (a symlink loop or a second link to it). */
const enter = async (ctx: Ctx, dir: string): Promise<boolean> => {
  const stats = await attempt(ctx, dir, () => ctx.fs.stat(dir))
  if (stats === undefined || !stats.isDirectory()) return false
  const key = `${stats.dev}:${stats.ino}`
  if (ctx.visited.has(key)) return false
  ctx.visited.add(key)
  return true
}

/** Whether a root exists as a directory; a missing root is an absent store, not a warning. */
const rootExists = async (ctx: Ctx, root: string): Promise<boolean> => {
  const stats = await attempt(ctx, root, () => ctx.fs.stat(root), (code) => code === "ENOENT" || code === "ENOTDIR")
  if (stats === undefined) return false
  if (!stats.isDirectory()) return warn(ctx, root, "store root is not a directory") ?? false
  return true
}

type Entry = import("node:fs").Dirent

/** A directory's entries, `.`-files left out (locks, partial downloads, OS litter). */
const listDir = async (ctx: Ctx, dir: string): Promise<ReadonlyArray<Entry>> => {
  const entries = await attempt(ctx, dir, () => ctx.fs.readdir(dir, { withFileTypes: true }))
  return (entries ?? []).filter((e) => !e.name.startsWith(".")).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
}

/** True when the entry is a directory, following a symlink (a dangling or looping link is a warning). */
const isDirEntry = async (ctx: Ctx, dir: string, entry: Entry): Promise<boolean> => {
  if (entry.isDirectory()) return true
  if (!entry.isSymbolicLink()) return false
  const path = posix.join(dir, entry.name)
  const stats = await attempt(ctx, path, () => ctx.fs.stat(path), (code) => code === "ENOENT")
  return stats?.isDirectory() === true
}

/** A GGUF file resolved by a store-specific rule (HF checks its link; plain stores just stat). */
interface Resolved {
  readonly path: string
  readonly sizeBytes: number
  readonly sha256?: string | undefined
}

type Resolve = (relPath: string, absPath: string, entry: Entry) => Promise<Resolved | undefined>

/**
 * Walks `dir` to `maxDepth` levels of path segments and calls `emit` once per model: a `.gguf` that is
 * not a projector, with every part of a split model resolved (a missing part is a warning).
 */
const walkGguf = async (
  ctx: Ctx,
  dir: string,
  relDir: string,
  maxDepth: number,
  resolve: Resolve,
  emit: (relPath: string, first: Resolved, others: ReadonlyArray<Resolved>) => void
): Promise<void> => {
  if (!(await enter(ctx, dir))) return
  const entries = await listDir(ctx, dir)
  const files = new Map<string, Entry>()
  const subdirs: Array<string> = []
  const depth = relDir === "" ? 0 : relDir.split("/").length
  for (const entry of entries) {
    if (/\.gguf$/i.test(entry.name) && !entry.isDirectory()) files.set(entry.name, entry)
    else if (depth + 1 < maxDepth && (await isDirEntry(ctx, dir, entry))) subdirs.push(entry.name)
  }
  for (const [name, entry] of files) {
    if (!ForeignStores.isModelFileName(name)) continue
    const relPath = relDir === "" ? name : `${relDir}/${name}`
    const split = ForeignStores.splitPart(name)
    const otherNames: Array<string> = []
    if (split !== undefined) {
      for (let i = 2; i <= split.count; i++) otherNames.push(ForeignStores.splitPartName(name, i, split.count))
      const missing = otherNames.filter((n) => !files.has(n))
      if (missing.length > 0) {
        warn(ctx, posix.join(dir, name), `incomplete split model: ${missing.length} of ${split.count} parts missing (${missing[0]}…)`)
        continue
      }
    }
    const first = await resolve(relPath, posix.join(dir, name), entry)
    if (first === undefined) continue
    const others: Array<Resolved> = []
    for (const other of otherNames) {
      const resolved = await resolve(relDir === "" ? other : `${relDir}/${other}`, posix.join(dir, other), files.get(other)!)
      if (resolved === undefined) break
      others.push(resolved)
    }
    if (others.length !== otherNames.length) continue
    emit(relPath, first, others)
  }
  for (const sub of subdirs) {
    await walkGguf(ctx, posix.join(dir, sub), relDir === "" ? sub : `${relDir}/${sub}`, maxDepth, resolve, emit)
  }
}

const plainResolve = (ctx: Ctx): Resolve => (_rel, abs) => resolveRegularFile(ctx, abs)

const resultOf = (ctx: Ctx, models: Array<ForeignModel>): ScanResult => ({ models, warnings: ctx.warnings })

// ---------------------------------------------------------------------------------------------
// Ollama
// ---------------------------------------------------------------------------------------------

/** Lists the GGUF models of Ollama stores: every `manifests/<host>/<ns>/<model>/<tag>` with a model layer. */
export const scanOllama = async (roots: ReadonlyArray<string>, options: ScanOptions = {}): Promise<ScanResult> => {
  const ctx = makeCtx("ollama-store", options)
  const models: Array<ForeignModel> = []
  const seenRoots = new Set<string>()
  for (const root of roots) {
    if (!(await rootExists(ctx, root))) continue
    // The default roots may be one directory reached twice (a symlinked ~/.ollama).
    const real = (await attempt(ctx, root, () => ctx.fs.realpath(root))) ?? root
    if (seenRoots.has(real)) continue
    seenRoots.add(real)
    const manifests = posix.join(root, "manifests")
    if (!(await rootExists(ctx, manifests))) continue
    await walkManifests(ctx, root, manifests, "", models)
  }
  return resultOf(ctx, models)
}

const walkManifests = async (
  ctx: Ctx,
  root: string,
  dir: string,
  relDir: string,
  models: Array<ForeignModel>
): Promise<void> => {
  if (!(await enter(ctx, dir))) return
  const depth = relDir === "" ? 0 : relDir.split("/").length
  for (const entry of await listDir(ctx, dir)) {
    const relPath = relDir === "" ? entry.name : `${relDir}/${entry.name}`
    const path = posix.join(dir, entry.name)
    if (depth < 3) {
      if (await isDirEntry(ctx, dir, entry)) await walkManifests(ctx, root, path, relPath, models)
      continue
    }
    if (entry.isDirectory()) continue
    const model = await ollamaModelAt(ctx, root, path, relPath)
    if (model !== undefined) models.push(model)
  }
}

const ollamaModelAt = async (ctx: Ctx, root: string, path: string, relPath: string): Promise<ForeignModel | undefined> => {
  const name = ForeignStores.ollamaNameFromManifestPath(relPath)
  if (name === undefined) return warn(ctx, path, "not an Ollama model name (host/namespace/model/tag)")
  const text = await readSmallFile(ctx, path, MAX_MANIFEST_BYTES)
  if (text === undefined) return undefined
  const manifest = ForeignStores.decodeOllamaManifest(text)
  if (Either.isLeft(manifest)) return warn(ctx, path, manifest.left)
  // A safetensors or cloud model has no GGUF layer: not ours to list, and nothing wrong with it.
  if (!manifest.right.layers.some((l) => l.mediaType === ForeignStores.OLLAMA_MODEL_MEDIA_TYPE)) return undefined
  const described = ForeignStores.ollamaManifestModel(name, manifest.right)
  if (Either.isLeft(described)) return warn(ctx, path, described.left)
  const blobPath = posix.join(root, described.right.blob)
  const blob = await resolveRegularFile(ctx, blobPath)
  if (blob === undefined) return undefined
  if (blob.sizeBytes !== described.right.sizeBytes) {
    return warn(ctx, blobPath, `size ${blob.sizeBytes} differs from the manifest's ${described.right.sizeBytes}`)
  }
  const configText = described.right.configBlob === undefined
    ? undefined
    : await readSmallFile(ctx, posix.join(root, described.right.configBlob), MAX_CONFIG_BYTES, true)
  const config = configText === undefined ? undefined : ForeignStores.decodeOllamaConfig(configText)
  return ForeignStores.ollamaForeignModel({
    root,
    model: described.right,
    path: blob.path,
    sizeBytes: blob.sizeBytes,
    quantization: ForeignStores.ollamaQuantization(name, config)
  })
}

// ---------------------------------------------------------------------------------------------
// Hugging Face hub cache
// ---------------------------------------------------------------------------------------------

/**
 * Lists the GGUF files of HF hub caches: `models--<org>--<repo>/snapshots/<commit>/…/*.gguf`, each a
 * relative symlink into the repo's `blobs/`. A file present in several snapshots is listed once,
 * from the snapshot `refs/main` names when it has it.
 */
export const scanHfCache = async (roots: ReadonlyArray<string>, options: ScanOptions = {}): Promise<ScanResult> => {
  const ctx = makeCtx("hf-cache", options)
  const models: Array<ForeignModel> = []
  for (const root of roots) {
    if (!(await rootExists(ctx, root))) continue
    if (!(await enter(ctx, root))) continue
    for (const entry of await listDir(ctx, root)) {
      const repo = ForeignStores.hfRepoFromFolder(entry.name)
      if (repo === undefined || !(await isDirEntry(ctx, root, entry))) continue
      const files = await scanHfRepo(ctx, posix.join(root, entry.name))
      models.push(...ForeignStores.hfForeignModels({ root, defaultRoot: options.hfDefaultRoot ?? root, repo, files }))
    }
  }
  return resultOf(ctx, models)
}

const scanHfRepo = async (ctx: Ctx, repoDir: string): Promise<Array<ForeignStores.HfSnapshotFile>> => {
  const snapshotsDir = posix.join(repoDir, "snapshots")
  const mainText = await readSmallFile(ctx, posix.join(repoDir, "refs", "main"), MAX_REF_BYTES, true)
  const main = mainText?.trim()
  const commits = (await listDir(ctx, snapshotsDir)).map((e) => e.name)
  // The snapshot refs/main points at first, so its files win over older revisions of the same path.
  const ordered = main !== undefined && commits.includes(main) ? [main, ...commits.filter((c) => c !== main)] : commits
  const byFile = new Map<string, ForeignStores.HfSnapshotFile>()
  for (const commit of ordered) {
    const snapshot = posix.join(snapshotsDir, commit)
    const resolve: Resolve = async (relPath, absPath, entry) => {
      if (!entry.isSymbolicLink()) {
        // HF_HUB_DISABLE_SYMLINKS (or Windows without symlinks) stores the file in the snapshot itself.
        return resolveRegularFile(ctx, absPath)
      }
      const target = await attempt(ctx, absPath, () => ctx.fs.readlink(absPath))
      if (target === undefined) return undefined
      const blob = ForeignStores.hfBlobOfLink(relPath, target)
      if (Either.isLeft(blob)) return warn(ctx, absPath, blob.left)
      const file = await resolveRegularFile(ctx, absPath)
      return file === undefined ? undefined : { ...file, sha256: blob.right.sha256 }
    }
    await walkGguf(ctx, snapshot, "", HF_MAX_DEPTH, resolve, (file, first, others) => {
      if (byFile.has(file)) return
      byFile.set(file, {
        file,
        revision: commit,
        path: first.path,
        sizeBytes: first.sizeBytes,
        sha256: first.sha256,
        ...(others.length > 0 ? { otherParts: others.map((o) => ({ path: o.path, sizeBytes: o.sizeBytes })) } : {})
      })
    })
  }
  return [...byFile.values()]
}

// ---------------------------------------------------------------------------------------------
// LM Studio and node-llama-cpp
// ---------------------------------------------------------------------------------------------

/** Lists LM Studio models: `<publisher>/<repo>/…/*.gguf` under each root (symlinked files and folders followed). */
export const scanLmStudio = async (roots: ReadonlyArray<string>, options: ScanOptions = {}): Promise<ScanResult> => {
  const ctx = makeCtx("lmstudio", options)
  const models: Array<ForeignModel> = []
  for (const root of roots) {
    if (!(await rootExists(ctx, root))) continue
    await walkGguf(ctx, root, "", ForeignStores.LMSTUDIO_MAX_DEPTH, plainResolve(ctx), (relPath, first, others) => {
      const model = ForeignStores.lmstudioForeignModel(root, { relPath, ...first, otherParts: others })
      if (model !== undefined) models.push(model)
    })
  }
  return resultOf(ctx, models)
}

/** Lists node-llama-cpp's models: the `*.gguf` files directly in each root. */
export const scanNodeLlamaCpp = async (roots: ReadonlyArray<string>, options: ScanOptions = {}): Promise<ScanResult> => {
  const ctx = makeCtx("node-llama-cpp", options)
  const models: Array<ForeignModel> = []
  for (const root of roots) {
    if (!(await rootExists(ctx, root))) continue
    await walkGguf(ctx, root, "", 1, plainResolve(ctx), (relPath, first, others) => {
      const model = ForeignStores.nodeLlamaCppForeignModel(root, { relPath, ...first, otherParts: others })
      if (model !== undefined) models.push(model)
    })
  }
  return resultOf(ctx, models)
}

// ---------------------------------------------------------------------------------------------
// Everything at once
// ---------------------------------------------------------------------------------------------

/** The default roots of every store for this user, reading `~/.lmstudio-home-pointer` if it exists. */
export const resolveDefaultRoots = async (
  environment: ForeignStores.StoreEnvironment,
  fs: ScanFs = nodeScanFs
): Promise<ForeignStoreRoots> => {
  const pointerPath = ForeignStores.lmstudioHomePointer(environment.home)
  const pointer = await fs.stat(pointerPath).then(
    (s) => s.isFile() && s.size <= MAX_REF_BYTES ? fs.readFile(pointerPath, "utf8") : undefined,
    () => undefined
  ).catch(() => undefined)
  return ForeignStores.defaultRoots(environment, pointer)
}

/** Scans every store; each one's warnings are kept, none fails the others. */
export const scanAll = async (roots: ForeignStoreRoots, options: ScanOptions = {}): Promise<ScanResult> => {
  const results = await Promise.all([
    scanOllama(roots.ollama, options),
    scanHfCache(roots.hfCache, { ...options, hfDefaultRoot: options.hfDefaultRoot ?? roots.hfCache[0] }),
    scanLmStudio(roots.lmstudio, options),
    scanNodeLlamaCpp(roots.nodeLlamaCpp, options)
  ])
  return {
    models: results.flatMap((r) => r.models),
    warnings: results.flatMap((r) => r.warnings)
  }
}

/** `scanAll` as an Effect: interrupting the fiber aborts the scan between two file-system calls. */
export const scanAllEffect = (
  roots: ForeignStoreRoots,
  options: Omit<ScanOptions, "signal"> = {}
): Effect.Effect<ScanResult> => Effect.promise((signal) => scanAll(roots, { ...options, signal }))

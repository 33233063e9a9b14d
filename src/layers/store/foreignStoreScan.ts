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
import * as HubRef from "../../domain/HubRef.js"

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
  /**
   * Only this part of the store (a `find` that knows where a name can live): called with a path
   * relative to the part of the layout that names models (Ollama: under `manifests/`, `host`,
   * `host/namespace`, … lower-cased; HF cache: the repo id, lower-cased; LM Studio and node-llama-cpp:
   * the folder or file path under the root, lower-cased); false skips that folder or file. Split
   * parts are still looked up beside a kept first part.
   */
  readonly keep?: (relPath: string) => boolean
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

/** Runs `f` over `items`, at most `limit` at a time (the libuv pool has 4 threads), results in order. */
export const mapConcurrent = async <A, B>(
  items: ReadonlyArray<A>,
  f: (item: A) => Promise<B>,
  limit = 16
): Promise<Array<B>> => {
  const out = new Array<B>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await f(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** A readable regular file behind `path` (every symlink followed): its real path and size. */
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

/**
 * The file at `path`, whose real path is `real` unless its last component is a symlink: one lstat for
 * the common case (a plain file in a directory whose real path we know), the full resolution otherwise.
 */
const resolveKnownFile = async (
  ctx: Ctx,
  path: string,
  real: string
): Promise<{ readonly path: string; readonly sizeBytes: number } | undefined> => {
  const stats = await attempt(ctx, path, () => ctx.fs.lstat(path))
  if (stats === undefined) return undefined
  if (stats.isSymbolicLink()) return resolveRegularFile(ctx, path)
  if (!stats.isFile()) return warn(ctx, path, "not a regular file")
  return { path: real, sizeBytes: stats.size }
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

/** A directory being walked: the path we reached it by and its real path (every symlink resolved). */
interface Dir {
  readonly path: string
  readonly real: string
}

/** A store root as a `Dir`; undefined for a missing root, which is an absent store, not a warning. */
const openRoot = async (ctx: Ctx, root: string): Promise<Dir | undefined> => {
  const stats = await attempt(ctx, root, () => ctx.fs.stat(root), (code) => code === "ENOENT" || code === "ENOTDIR")
  if (stats === undefined) return undefined
  if (!stats.isDirectory()) return warn(ctx, root, "store root is not a directory")
  const real = await attempt(ctx, root, () => ctx.fs.realpath(root))
  if (real === undefined || ctx.visited.has(real)) return undefined
  ctx.visited.add(real)
  return { path: root, real }
}

type Entry = import("node:fs").Dirent

/** A directory's entries in name order, `.`-files left out (locks, partial downloads, OS litter). */
const listDir = async (ctx: Ctx, dir: string): Promise<ReadonlyArray<Entry>> => {
  const entries = await attempt(ctx, dir, () => ctx.fs.readdir(dir, { withFileTypes: true }))
  return (entries ?? []).filter((e) => !e.name.startsWith(".")).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
}

/**
 * The entry as a directory to descend into, or undefined. A real sub-directory costs no call (its
 * real path is its parent's plus its name); a symlink is stat'ed and resolved. Each real directory is
 * entered once per scan, which is what ends a symlink loop (`up -> ..`).
 */
const childDir = async (ctx: Ctx, dir: Dir, entry: Entry): Promise<Dir | undefined> => {
  const path = posix.join(dir.path, entry.name)
  let real: string | undefined
  if (entry.isDirectory()) real = posix.join(dir.real, entry.name)
  else if (entry.isSymbolicLink()) {
    const stats = await attempt(ctx, path, () => ctx.fs.stat(path), (code) => code === "ENOENT")
    if (stats?.isDirectory() !== true) return undefined
    real = await attempt(ctx, path, () => ctx.fs.realpath(path))
  }
  if (real === undefined || ctx.visited.has(real)) return undefined
  ctx.visited.add(real)
  return { path, real }
}

/** A GGUF file resolved by a store-specific rule (HF checks its link; plain stores just look). */
interface Resolved {
  readonly path: string
  readonly sizeBytes: number
  readonly sha256?: string | undefined
}

type Resolve = (relPath: string, dir: Dir, entry: Entry) => Promise<Resolved | undefined>

/** A model found by `walkGguf`: its path relative to where the walk started, its first part and the others. */
interface Found {
  readonly relPath: string
  readonly first: Resolved
  readonly others: ReadonlyArray<Resolved>
}

/**
 * Walks `dir` to `maxDepth` levels of path segments and returns one `Found` per model, in path order:
 * a `.gguf` that is not a projector, with every part of a split model resolved (a missing part is a
 * warning). Sibling entries are looked at concurrently.
 */
const walkGguf = async (
  ctx: Ctx,
  dir: Dir,
  relDir: string,
  maxDepth: number,
  resolve: Resolve,
  keep: (relPath: string) => boolean = () => true
): Promise<Array<Found>> => {
  const entries = await listDir(ctx, dir.path)
  const files = new Map<string, Entry>()
  const others: Array<Entry> = []
  const depth = relDir === "" ? 0 : relDir.split("/").length
  const rel = (name: string) => relDir === "" ? name : `${relDir}/${name}`
  for (const entry of entries) {
    if (/\.gguf$/i.test(entry.name) && !entry.isDirectory()) files.set(entry.name, entry)
    else if (depth + 1 < maxDepth && keep(rel(entry.name).toLowerCase())) others.push(entry)
  }
  const firsts = [...files.keys()].filter((name) => keep(rel(name).toLowerCase()))
  const models = await mapConcurrent(firsts, async (name): Promise<Found | undefined> => {
    if (!ForeignStores.isModelFileName(name)) return undefined
    const split = ForeignStores.splitPart(name)
    const otherNames: Array<string> = []
    if (split !== undefined) {
      for (let i = 2; i <= split.count; i++) otherNames.push(ForeignStores.splitPartName(name, i, split.count))
      const missing = otherNames.filter((n) => !files.has(n))
      if (missing.length > 0) {
        return warn(ctx, posix.join(dir.path, name), `incomplete split model: ${missing.length} of ${split.count} parts missing (${missing[0]}…)`)
      }
    }
    const first = await resolve(rel(name), dir, files.get(name)!)
    if (first === undefined) return undefined
    const rest: Array<Resolved> = []
    for (const other of otherNames) {
      const resolved = await resolve(rel(other), dir, files.get(other)!)
      if (resolved === undefined) return undefined
      rest.push(resolved)
    }
    return { relPath: rel(name), first, others: rest }
  })
  const nested = await mapConcurrent(others, async (entry) => {
    const child = await childDir(ctx, dir, entry)
    return child === undefined ? [] : walkGguf(ctx, child, rel(entry.name), maxDepth, resolve, keep)
  })
  return [...models.filter((m): m is Found => m !== undefined), ...nested.flat()]
}

const plainResolve = (ctx: Ctx): Resolve => (_rel, dir, entry) =>
  resolveKnownFile(ctx, posix.join(dir.path, entry.name), posix.join(dir.real, entry.name))

const resultOf = (ctx: Ctx, models: Array<ForeignModel>): ScanResult => ({ models, warnings: ctx.warnings })

// ---------------------------------------------------------------------------------------------
// Ollama
// ---------------------------------------------------------------------------------------------

/** Lists the GGUF models of Ollama stores: every `manifests/<host>/<ns>/<model>/<tag>` with a model layer. */
export const scanOllama = async (roots: ReadonlyArray<string>, options: ScanOptions = {}): Promise<ScanResult> => {
  const ctx = makeCtx("ollama-store", options)
  const models: Array<ForeignModel> = []
  // The default roots may be one directory reached twice (a symlinked ~/.ollama): openRoot reads it once.
  for (const path of roots) {
    const root = await openRoot(ctx, path)
    if (root === undefined) continue
    const manifests = posix.join(root.path, "manifests")
    const stats = await attempt(ctx, manifests, () => ctx.fs.stat(manifests), (code) => code === "ENOENT")
    if (stats?.isDirectory() !== true) continue
    const keep = options.keep ?? (() => true)
    models.push(...(await walkManifests(ctx, root, { path: manifests, real: posix.join(root.real, "manifests") }, "", keep)))
  }
  return resultOf(ctx, models)
}

const walkManifests = async (
  ctx: Ctx,
  root: Dir,
  dir: Dir,
  relDir: string,
  keep: (relPath: string) => boolean
): Promise<Array<ForeignModel>> => {
  const depth = relDir === "" ? 0 : relDir.split("/").length
  const found = await mapConcurrent(await listDir(ctx, dir.path), async (entry): Promise<Array<ForeignModel>> => {
    const relPath = relDir === "" ? entry.name : `${relDir}/${entry.name}`
    if (!keep(relPath.toLowerCase())) return []
    if (depth < 3) {
      const child = await childDir(ctx, dir, entry)
      return child === undefined ? [] : walkManifests(ctx, root, child, relPath, keep)
    }
    if (entry.isDirectory()) return []
    const model = await ollamaModelAt(ctx, root, posix.join(dir.path, entry.name), relPath)
    return model === undefined ? [] : [model]
  })
  return found.flat()
}

const ollamaModelAt = async (ctx: Ctx, root: Dir, path: string, relPath: string): Promise<ForeignModel | undefined> => {
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
  const blobPath = posix.join(root.path, described.right.blob)
  const blob = await resolveKnownFile(ctx, blobPath, posix.join(root.real, described.right.blob))
  if (blob === undefined) return undefined
  if (blob.sizeBytes !== described.right.sizeBytes) {
    return warn(ctx, blobPath, `size ${blob.sizeBytes} differs from the manifest's ${described.right.sizeBytes}`)
  }
  // The manifest states the config blob's size, so it is read without a stat; it only adds file_type.
  const configBlob = described.right.configBlob
  const configText = configBlob === undefined || manifest.right.config.size > MAX_CONFIG_BYTES
    ? undefined
    : await attempt(ctx, posix.join(root.path, configBlob), () => ctx.fs.readFile(posix.join(root.path, configBlob), "utf8"), () => true)
  const config = configText === undefined ? undefined : ForeignStores.decodeOllamaConfig(configText)
  return ForeignStores.ollamaForeignModel({
    root: root.path,
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
  for (const path of roots) {
    const root = await openRoot(ctx, path)
    if (root === undefined) continue
    const repos = (await listDir(ctx, root.path)).filter((e) => {
      const repo = ForeignStores.hfRepoFromFolder(e.name)
      return repo !== undefined && (options.keep?.(repo.toLowerCase()) ?? true)
    })
    const perRepo = await mapConcurrent(repos, async (entry) => {
      const repoDir = await childDir(ctx, root, entry)
      if (repoDir === undefined) return []
      const files = await scanHfRepo(ctx, repoDir)
      const repo = ForeignStores.hfRepoFromFolder(entry.name)!
      return ForeignStores.hfForeignModels({ root: path, defaultRoot: options.hfDefaultRoot ?? path, repo, files })
    })
    models.push(...perRepo.flat())
  }
  return resultOf(ctx, models)
}

const scanHfRepo = async (ctx: Ctx, repoDir: Dir): Promise<Array<ForeignStores.HfSnapshotFile>> => {
  const snapshotsPath = posix.join(repoDir.path, "snapshots")
  const snapshots: Dir = { path: snapshotsPath, real: posix.join(repoDir.real, "snapshots") }
  const mainText = await readSmallFile(ctx, posix.join(repoDir.path, "refs", "main"), MAX_REF_BYTES, true)
  const main = mainText?.trim()
  const commits = await listDir(ctx, snapshotsPath)
  // The snapshot refs/main points at first, so its files win over older revisions of the same path.
  const ordered = [...commits.filter((c) => c.name === main), ...commits.filter((c) => c.name !== main)]
  const resolve: Resolve = async (relPath, dir, entry) => {
    const absPath = posix.join(dir.path, entry.name)
    // HF_HUB_DISABLE_SYMLINKS (or Windows without symlinks) stores the file in the snapshot itself.
    if (!entry.isSymbolicLink()) return resolveKnownFile(ctx, absPath, posix.join(dir.real, entry.name))
    const target = await attempt(ctx, absPath, () => ctx.fs.readlink(absPath))
    if (target === undefined) return undefined
    const blob = ForeignStores.hfBlobOfLink(relPath, target)
    if (Either.isLeft(blob)) return warn(ctx, absPath, blob.left)
    // Relative to a directory with no symlinks in its real path, the link's target is plain path arithmetic.
    const blobPath = posix.join(dir.real, target)
    let missing = false
    const stats = await attempt(ctx, absPath, () => ctx.fs.lstat(blobPath), (code) => (missing = code === "ENOENT"))
    if (stats === undefined && !missing) return undefined
    // Not where the arithmetic says (a missing blob, or a folder on the way that is itself a link):
    // let the kernel follow the link, and name what is wrong with it.
    // huggingface_hub's shared Xet store makes the repo blob itself a link to `<cache>/blobs/…`.
    const file = stats === undefined || stats.isSymbolicLink()
      ? await resolveRegularFile(ctx, absPath)
      : stats.isFile()
      ? { path: blobPath, sizeBytes: stats.size }
      : warn(ctx, absPath, "not a regular file")
    return file === undefined ? undefined : { ...file, sha256: blob.right.sha256 }
  }
  const byFile = new Map<string, ForeignStores.HfSnapshotFile>()
  for (const commit of ordered) {
    const snapshot = await childDir(ctx, snapshots, commit)
    if (snapshot === undefined) continue
    for (const found of await walkGguf(ctx, snapshot, "", HF_MAX_DEPTH, resolve)) {
      if (byFile.has(found.relPath)) continue
      byFile.set(found.relPath, {
        file: found.relPath,
        revision: commit.name,
        path: found.first.path,
        sizeBytes: found.first.sizeBytes,
        sha256: found.first.sha256,
        ...(found.others.length > 0 ? { otherParts: found.others.map((o) => ({ path: o.path, sizeBytes: o.sizeBytes })) } : {})
      })
    }
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
  for (const path of roots) {
    const root = await openRoot(ctx, path)
    if (root === undefined) continue
    for (const found of await walkGguf(ctx, root, "", ForeignStores.LMSTUDIO_MAX_DEPTH, plainResolve(ctx), options.keep)) {
      const model = ForeignStores.lmstudioForeignModel(path, { relPath: found.relPath, ...found.first, otherParts: found.others })
      if (model !== undefined) models.push(model)
    }
  }
  return resultOf(ctx, models)
}

/** Lists node-llama-cpp's models: the `*.gguf` files directly in each root. */
export const scanNodeLlamaCpp = async (roots: ReadonlyArray<string>, options: ScanOptions = {}): Promise<ScanResult> => {
  const ctx = makeCtx("node-llama-cpp", options)
  const models: Array<ForeignModel> = []
  for (const path of roots) {
    const root = await openRoot(ctx, path)
    if (root === undefined) continue
    for (const found of await walkGguf(ctx, root, "", 1, plainResolve(ctx), options.keep)) {
      const model = ForeignStores.nodeLlamaCppForeignModel(path, { relPath: found.relPath, ...found.first, otherParts: found.others })
      if (model !== undefined) models.push(model)
    }
  }
  return resultOf(ctx, models)
}

// ---------------------------------------------------------------------------------------------
// Where else the same bytes are (for a targeted find)
// ---------------------------------------------------------------------------------------------

const SHA256_HEX = /^[0-9a-f]{64}$/

/** Whether an Ollama store holds the blob `sha256-<hex>`: one lstat per root, no manifest read. */
export const ollamaHasBlob = async (roots: ReadonlyArray<string>, sha256: string, fs: ScanFs = nodeScanFs): Promise<boolean> => {
  if (!SHA256_HEX.test(sha256)) return false
  for (const root of roots) {
    if (await fs.lstat(posix.join(root, "blobs", `sha256-${sha256}`)).then(() => true, () => false)) return true
  }
  return false
}

/**
 * The repo ids (lower-cased) of HF cache repos holding a blob named `sha256`: one readdir per root and
 * one lstat per repo folder, no snapshot walked.
 */
export const hfReposWithBlob = async (roots: ReadonlyArray<string>, sha256: string, fs: ScanFs = nodeScanFs): Promise<Set<string>> => {
  const out = new Set<string>()
  if (!SHA256_HEX.test(sha256)) return out
  for (const root of roots) {
    const entries = await fs.readdir(root, { withFileTypes: true }).catch(() => [])
    await mapConcurrent(entries, async (entry) => {
      const repo = ForeignStores.hfRepoFromFolder(entry.name)
      if (repo === undefined) return
      const held = await fs.lstat(posix.join(root, entry.name, "blobs", sha256)).then(() => true, () => false)
      if (held) out.add(repo.toLowerCase())
    })
  }
  return out
}

/**
 * The only places a reference can name a foreign model, per store, as the scanners' `keep` keys
 * (lower-cased): a superset of what `locationMatches` accepts, so a `find` scans these and nothing else.
 * Ollama: the manifest path of the name (`host/namespace/model/tag`); HF cache: the repo a hub reference
 * or a listed name (`hf.co/<repo>:<Q>`, `<repo>/<file>`) designates; LM Studio: `publisher/repo`;
 * node-llama-cpp: the file name.
 */
export interface FindTargets {
  readonly ollama: ReadonlySet<string>
  readonly hfRepos: ReadonlySet<string>
  readonly lmstudio: ReadonlySet<string>
  readonly nodeLlamaCpp: ReadonlySet<string>
}

export const targetsOf = (ref: string): FindTargets => {
  const ollama = new Set<string>()
  const name = ForeignStores.parseOllamaName(ref)
  if (name !== undefined) {
    const parts = [name.host, name.namespace, name.model, name.tag].map((p) => p.toLowerCase())
    for (let i = 1; i <= parts.length; i++) ollama.add(parts.slice(0, i).join("/"))
  }
  const texts = new Set([ref.toLowerCase(), ref.trim().toLowerCase()])
  const repos = new Set<string>()
  const parsed = HubRef.parse(ref)
  if (Either.isRight(parsed)) repos.add(parsed.right.repo.toLowerCase())
  for (const text of texts) {
    // `hf.co/<repo>:<Q>` and `<repo>/<file>`: the repo is the first one or two segments
    const bare = text.replace(/^(?:hf\.co|huggingface\.co)\//, "").replace(/:[^/:]*$/, "")
    const segments = bare.split("/")
    repos.add(segments[0]!)
    if (segments.length > 1) repos.add(segments.slice(0, 2).join("/"))
  }
  const lmstudio = new Set<string>()
  for (const repo of repos) {
    const segments = repo.split("/")
    if (segments.length !== 2) continue
    lmstudio.add(segments[0]!)
    lmstudio.add(repo)
  }
  return { ollama, hfRepos: repos, lmstudio, nodeLlamaCpp: new Set([...texts].filter((t) => !t.includes("/"))) }
}

/** LM Studio's `keep`: the publisher folder, then the `publisher/repo` folder, then everything in it. */
const keepLmStudio = (targets: ReadonlySet<string>) => (relPath: string) => {
  const segments = relPath.split("/")
  return targets.has(segments.length === 1 ? segments[0]! : `${segments[0]}/${segments[1]}`)
}

/**
 * The foreign models `ref` can name, and every model holding the same bytes, without walking whole
 * stores: only the places `targetsOf` names are scanned; a model found there that states a sha256 is
 * then looked up by it (an Ollama `blobs/sha256-<hex>`, an HF cache repo's `blobs/<hex>`), and only a
 * store holding it is scanned further, so the caller can merge locations as a full listing would. (A
 * copy that states no sha256 and would be merged by path, e.g. an LM Studio link into the HF cache,
 * is not added.) The models come in the order `scanAll` lists them.
 */
export const scanForReference = async (
  roots: ForeignStoreRoots,
  ref: string,
  options: Omit<ScanOptions, "keep"> = {}
): Promise<ScanResult> => {
  const targets = targetsOf(ref)
  const none: ScanResult = { models: [], warnings: [] }
  const base = { ...options, hfDefaultRoot: options.hfDefaultRoot ?? roots.hfCache[0] }
  const scanHf = (repos: ReadonlySet<string>) =>
    repos.size === 0 ? Promise.resolve(none) : scanHfCache(roots.hfCache, { ...base, keep: (r) => repos.has(r) })
  let [ollama, hfCache, lmstudio, nodeLlamaCpp] = await Promise.all([
    targets.ollama.size === 0 ? none : scanOllama(roots.ollama, { ...base, keep: (r) => targets.ollama.has(r) }),
    scanHf(targets.hfRepos),
    targets.lmstudio.size === 0 ? none : scanLmStudio(roots.lmstudio, { ...base, keep: keepLmStudio(targets.lmstudio) }),
    targets.nodeLlamaCpp.size === 0
      ? none
      : scanNodeLlamaCpp(roots.nodeLlamaCpp, { ...base, keep: (r) => targets.nodeLlamaCpp.has(r) })
  ])
  const shasOf = (results: ReadonlyArray<ScanResult>) => [...new Set(results.flatMap((r) => r.models.flatMap((m) => m.sha256 ?? [])))]
  const shas = shasOf([ollama, hfCache, lmstudio, nodeLlamaCpp])
  // An Ollama model's own blob is of course in Ollama's store: only bytes found elsewhere are looked
  // for there. (So a second Ollama name of the same blob, `ollama cp`, is not among find's locations.)
  const shasElsewhere = shasOf([hfCache, lmstudio, nodeLlamaCpp])
  if (shas.length > 0) {
    const fs = options.fs ?? nodeScanFs
    const [inOllama, hfRepos] = await Promise.all([
      Promise.all(shasElsewhere.map((sha) => ollamaHasBlob(roots.ollama, sha, fs))).then((found) => found.some((b) => b)),
      Promise.all(shas.map((sha) => hfReposWithBlob(roots.hfCache, sha, fs)))
    ])
    options.signal?.throwIfAborted()
    // the same bytes under another Ollama name: its manifest can be anywhere, so the whole store
    if (inOllama) ollama = await scanOllama(roots.ollama, base)
    const repos = new Set([...targets.hfRepos, ...hfRepos.flatMap((r) => [...r])])
    if (repos.size > targets.hfRepos.size) hfCache = await scanHf(repos)
  }
  const results = [ollama, hfCache, lmstudio, nodeLlamaCpp]
  return { models: results.flatMap((r) => r.models), warnings: results.flatMap((r) => r.warnings) }
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

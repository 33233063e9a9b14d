/**
 * The write side of llmspell's own store, local disk only (no hub): whether the store is usable, what is
 * installed and may be trusted, the checks a file passes before it gets its name, bytes placed from
 * another store (link or copy), `verify`, `remove` (under the per-file locks a pull holds) and `import`.
 * The ModelStore service exposes verify, remove and import from here; the downloader's pull writes through
 * the same helpers.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import {
  DiskFull,
  InvalidModelFile,
  ModelBusy,
  ModelNotFound,
  ModelStoreUnusable
} from "../../domain/Errors.js"
import * as HubRef from "../../domain/HubRef.js"
import type { RemoveResult, VerifyFile, VerifyReport } from "../../domain/Types.js"
import type { ImportOptions, InstalledModel, StoreRoot } from "../../services/ModelDownloader.js"
import type { LlmspellError } from "../../domain/Errors.js"
import type { StoredBlob } from "../../services/ModelStore.js"
import { ensureDirectory } from "./ensureDirectory.js"
import { isFile, statOption, storeIoError, unusable, unusableReason } from "./storeFs.js"
import { describeHolder, tryFileLock } from "./fileLock.js"
import {
  absolute,
  fileLocation,
  filesPresent,
  hashFile,
  lockPath,
  manifestPath,
  type Manifest,
  type ManifestFile,
  matchManifests,
  readManifests,
  storeError,
  storeRelative,
  toInstalled,
  trustedFile,
  writeManifest
} from "./ownStore.js"
import { readGgufFile } from "./readGgufFile.js"

/** Free bytes for an unprivileged writer on the disk holding `dir` (Infinity when unknown). */
export const freeBytes = (dir: string) =>
  Effect.promise(() => fs.statfs(dir).then((s) => s.bavail * s.bsize, () => Number.POSITIVE_INFINITY))

/** The typed failure of a write that hit ENOSPC: how much of the file is still missing, and what is free. */
export const diskFull = (partial: string, size: number) =>
  Effect.flatMap(
    Effect.all([
      Effect.promise(() => fs.stat(partial).then((s) => s.size, () => 0)),
      freeBytes(path.dirname(partial))
    ]),
    ([written, free]) =>
      Effect.fail(new DiskFull({ path: partial, neededBytes: Math.max(0, size - written), availableBytes: free }))
  )

/**
 * What is wrong with a downloaded `.gguf`, or undefined: the first file of a model must pass the full header
 * check; further parts of a split model must at least start like a GGUF.
 */
export const ggufProblem = (file: string, primary: boolean): Effect.Effect<string | undefined> =>
  primary
    ? readGgufFile(file, { model: file, instance: "gguf" }).pipe(
      Effect.as(undefined),
      Effect.catchAll((e) =>
        Effect.succeed(e._tag === "InvalidModelFile" ? `is not a valid GGUF model: ${e.reason}` : "vanished before its check")
      )
    )
    : Effect.promise(async () => {
      const handle = await fs.open(file, "r")
      try {
        const head = Buffer.alloc(4)
        const { bytesRead } = await handle.read(head, 0, 4, 0)
        return bytesRead === 4 && head.toString("latin1") === "GGUF" ? undefined : "does not start with the GGUF magic"
      } finally {
        await handle.close()
      }
    }).pipe(Effect.catchAllDefect(() => Effect.succeed("cannot be read back")))

/**
 * Puts bytes that are already on the machine at a store path without downloading them: a hard link
 * (same inode, no extra disk, and the other tool deleting its name leaves ours intact) made under a temp
 * name and renamed into place, so the path only ever holds verified bytes. Across filesystems (EXDEV) or
 * where links are refused, returns `external`: the manifest then references the other store's file in
 * place (never written by us); `copy` forces a real copy, hashed against the sha256 before its rename.
 */
export const placeExisting = async (
  blob: StoredBlob,
  target: string,
  sha256: string,
  copy: boolean
): Promise<{ readonly external?: string }> => {
  await ensureDirectory(path.dirname(target))
  const tmp = `${target}.link-${process.pid}-${randomBytes(4).toString("hex")}`
  try {
    if (copy) {
      await fs.copyFile(blob.path, tmp)
      const actual = await hashFile(tmp)
      if (actual !== sha256) throw new Error(`the copy of ${blob.path} does not hash to ${sha256}`)
    } else {
      try {
        await fs.link(blob.path, tmp)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code === "EXDEV" || code === "EPERM" || code === "EMLINK" || code === "ENOTSUP") return { external: blob.path }
        throw e
      }
    }
    await fs.rename(tmp, target)
    return {}
  } finally {
    await fs.rm(tmp, { force: true }).catch(() => undefined)
  }
}

export const findManifest = (ref: string, store: StoreRoot) =>
  Effect.map(readManifests(store), (all) => matchManifests(ref, all))

export const findInstalled = (ref: string, store: StoreRoot): Effect.Effect<Option.Option<InstalledModel>, LlmspellError> =>
  Effect.gen(function*() {
    for (const m of yield* findManifest(ref, store)) {
      if (yield* filesPresent(store, m)) return Option.some(toInstalled(store, m))
    }
    return Option.none()
  })

/**
 * The manifest of an installed model whose files a pull may trust (see `trustedFile`); a touched but intact
 * file gets its new mtime recorded, so it is hashed once.
 */
export const trustedInstalled = (ref: string, store: StoreRoot) =>
  Effect.gen(function*() {
    for (const m of yield* findManifest(ref, store)) {
      const files = yield* Effect.promise(() => Promise.all(m.files.map((f) => trustedFile(store, f))))
      if (files.some((f) => f === undefined)) continue
      const current: Manifest = { ...m, files: files as Array<ManifestFile> }
      if (current.files.some((f, i) => f.mtimeMs !== m.files[i]!.mtimeMs)) {
        yield* writeManifest(store, current).pipe(Effect.ignore)
      }
      return Option.some(current)
    }
    return Option.none<Manifest>()
  })

/**
 * Fails at once, naming the directory and the OS reason, when the store cannot be used: it cannot be
 * created (`/proc/nope`), is a file, or (with `write`) refuses a new file (read-only).
 */
export const usableStore = (store: StoreRoot, write: boolean) =>
  Effect.gen(function*() {
    // Created with ensureDirectory, not FileSystem.makeDirectory: Node's recursive mkdir never ends on `/proc/nope`.
    yield* Effect.tryPromise({
      try: () => ensureDirectory(store.directory),
      catch: (e) => {
        const err = e as NodeJS.ErrnoException
        return new ModelStoreUnusable({ directory: store.directory, reason: unusableReason(err.code, err.message) })
      }
    })
    if (!write) return
    const fs = yield* FileSystem.FileSystem
    const probe = path.join(store.directory, `.llmspell-write-test-${process.pid}-${randomBytes(4).toString("hex")}`)
    yield* fs.writeFileString(probe, "").pipe(Effect.mapError(unusable(store)))
    yield* fs.remove(probe).pipe(Effect.mapError(unusable(store)))
  })

export const listInstalled = (store: StoreRoot): Effect.Effect<ReadonlyArray<InstalledModel>, LlmspellError> =>
  Effect.map(readManifests(store), (all) => all.map((m) => toInstalled(store, m)))

export const verify = (store: StoreRoot, ref?: string): Effect.Effect<VerifyReport, LlmspellError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const all = yield* readManifests(store)
    const chosen = ref === undefined || ref === "*" ? all : matchManifests(ref, all)
    if (ref !== undefined && ref !== "*" && chosen.length === 0) {
      // a pull hint only for a name `model pull` accepts
      const pullable = Either.isRight(HubRef.parse(ref))
      return yield* new ModelNotFound({ model: ref, backend: "gguf", instance: store.instance, ...(pullable ? { pullSpec: ref } : {}) })
    }
    const files: Array<VerifyFile> = []
    for (const m of chosen) {
      for (const f of m.files) {
        const file = fileLocation(store, f)
        const info = yield* statOption(file)
        const repair = `llmspell model pull ${m.name} --force`
        if (!isFile(info)) {
          files.push({
            model: m.name,
            file,
            status: "missing",
            expectedSha256: f.sha256,
            sizeBytes: f.sizeBytes,
            problem: "the file is missing",
            repair
          })
          continue
        }
        const actual = yield* Effect.tryPromise({
          try: (signal) => hashFile(file, signal),
          catch: (e) => storeError(store, `reading ${file}`, e)
        })
        const size = Number(info.value.size)
        const problem = size !== f.sizeBytes
          ? `it has ${size} bytes, ${f.sizeBytes} were downloaded`
          : actual !== f.sha256
          ? `its sha256 is ${actual}, ${f.hubSha256 === false ? "the download computed" : "the hub published"} ${f.sha256}`
          : undefined
        files.push({
          model: m.name,
          file,
          status: problem === undefined ? "ok" : "corrupt",
          expectedSha256: f.sha256,
          actualSha256: actual,
          sizeBytes: size,
          ...(problem !== undefined ? { problem, repair } : {}),
          ...(f.hubSha256 === false ? { unverified: true } : {})
        })
      }
    }
    return { ok: files.every((f) => f.status === "ok"), files }
  })

export const remove = (ref: string, store: StoreRoot): Effect.Effect<RemoveResult, LlmspellError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const all = yield* readManifests(store)
    const chosen = matchManifests(ref, all)
    const keep = new Set(all.filter((m) => !chosen.includes(m)).flatMap((m) => m.files.map((f) => f.path)))
    const targets = new Set<string>()
    for (const m of chosen) {
      for (const f of m.files) {
        if (!keep.has(f.path)) targets.add(absolute(store, f.path))
        targets.add(`${absolute(store, f.path)}.partial`)
      }
    }
    // Partial downloads of a model that never finished have no manifest: find them by repo and quantization.
    const parsed = HubRef.parse(ref)
    if (Either.isRight(parsed)) {
      const r = parsed.right
      const repoDir = absolute(store, storeRelative(r.repo, "x")).slice(0, -2)
      const partials = yield* Effect.promise(() => listPartials(repoDir))
      const wanted = r.kind === "repo" ? r.quantization ?? HubRef.DEFAULT_QUANTIZATION : undefined
      for (const p of partials) {
        const repoPath = path.relative(repoDir, p).split(path.sep).join("/").replace(/\.partial$/, "")
        if (r.kind === "file" ? repoPath === r.path : HubRef.quantizationOf(repoPath) === wanted) targets.add(p)
      }
    }
    // The same per-file locks as pull: a pull writing any of these files makes the remove refuse.
    const lockKeys = new Set<string>()
    for (const m of chosen) lockKeys.add(m.files[0]!.path)
    for (const t of targets) {
      const relative = path.relative(store.directory, t.replace(/\.partial$/, "")).split(path.sep).join("/")
      lockKeys.add(relative)
      lockKeys.add(relative.replace(/-\d{5}-of-(\d{5})\.gguf$/i, "-00001-of-$1.gguf")) // a split's lock is its part 1
    }
    for (const key of [...lockKeys].sort()) {
      const held = yield* tryFileLock(lockPath(store, key)).pipe(Effect.mapError((e) => storeError(store, "locking", e)))
      if (held !== undefined) {
        return yield* new ModelBusy({ model: chosen[0]?.name ?? ref, holder: describeHolder(held.holder) })
      }
    }
    const fileSystem = yield* FileSystem.FileSystem
    const removedFiles: Array<string> = []
    let freedBytes = 0
    for (const target of targets) {
      const info = yield* statOption(target)
      if (Option.isNone(info)) continue
      yield* fileSystem.remove(target).pipe(Effect.mapError(storeIoError(store, "removing")))
      removedFiles.push(target)
      freedBytes += Number(info.value.size)
    }
    for (const m of chosen) {
      yield* fileSystem.remove(manifestPath(store, m.name), { force: true }).pipe(
        Effect.mapError(storeIoError(store, "removing the manifest"))
      )
    }
    if (chosen.length === 0 && removedFiles.length === 0) {
      return yield* new ModelNotFound({ model: ref, backend: "gguf", instance: store.instance })
    }
    yield* Effect.promise(() => pruneEmptyDirs(path.join(store.directory, "hub"), [...targets]))
    return {
      model: chosen[0]?.name ?? ref,
      backend: "gguf" as const,
      instance: store.instance,
      removedFiles,
      freedBytes
    }
  }).pipe(Effect.scoped)

// Every path the store prints or records is absolute, whatever `--models-dir` was given as.
export const absoluteStore = (store: StoreRoot): StoreRoot =>
  path.isAbsolute(store.directory) ? store : { ...store, directory: path.resolve(store.directory) }
/**
 * Makes a GGUF file on disk a model of the store: validated with the GGUF reader, hashed once, hard-linked
 * (copied across filesystems, or with `copy`) to `imported/<file>` under a temp name and renamed, then
 * recorded by a manifest like a pull's. The original is never moved or written.
 */
export const importFile = (file: string, store: StoreRoot, options: ImportOptions = {}) =>
  Effect.gen(function*() {
    const source = path.resolve(file)
    const stat = yield* Effect.promise(() => fs.stat(source).catch(() => undefined))
    if (stat === undefined) {
      return yield* new ModelNotFound({ model: file, backend: "gguf", instance: store.instance, detail: "no such file" })
    }
    if (!stat.isFile()) {
      return yield* new InvalidModelFile({ path: source, reason: "not a regular file" })
    }
    // the full header check, the one that gates llama.cpp
    yield* readGgufFile(source, { model: file, instance: store.instance })
    const baseName = path.basename(source)
    const name = options.name ?? baseName.replace(/\.gguf$/i, "")
    const relative = ["imported", baseName].join("/")
    const bad = HubRef.validatePath(relative) ?? (name.trim() === "" ? "empty name" : undefined)
    if (bad !== undefined) return yield* new InvalidModelFile({ path: source, reason: `cannot be imported: ${bad}` })
    yield* usableStore(store, true)
    const sha256 = yield* Effect.tryPromise({
      try: (signal) => hashFile(source, signal),
      catch: (e) => storeError(store, `reading ${source}`, e)
    })
    const target = absolute(store, relative)
    yield* Effect.tryPromise({
      try: async () => {
        const linked = await placeExisting({ store: "llmspell", path: source, sizeBytes: stat.size }, target, sha256, options.copy === true)
        // an import owns its bytes: across filesystems it is a copy, never a reference to a file the user may delete
        return linked.external !== undefined ? placeExisting({ store: "llmspell", path: source, sizeBytes: stat.size }, target, sha256, true) : linked
      },
      catch: (e) => storeError(store, `importing ${source}`, e)
    })
    const mtimeMs = yield* Effect.promise(() => fs.stat(target).then((s) => s.mtimeMs, () => undefined))
    const quantization = HubRef.quantizationOf(baseName)
    const manifest: Manifest = {
      version: 1,
      name,
      repo: "local",
      revision: "import",
      ...(quantization !== undefined ? { quantization } : {}),
      files: [{ path: relative, repoPath: baseName, sizeBytes: stat.size, sha256, mtimeMs, hubSha256: false }],
      pulledAt: new Date().toISOString()
    }
    yield* writeManifest(store, manifest)
    return toInstalled(store, manifest)
  }).pipe(Effect.withSpan("ModelDownloader.importFile"))

const listPartials = async (dir: string): Promise<Array<string>> => {
  const out: Array<string> = []
  const walk = async (d: string) => {
    const entries = await fs.readdir(d, { withFileTypes: true }).catch(() => [])
    for (const e of entries) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) await walk(p)
      else if (e.name.endsWith(".partial")) out.push(p)
    }
  }
  await walk(dir)
  return out
}

/** Removes directories left empty under `root` by a remove. */
export const pruneEmptyDirs = async (root: string, removed: ReadonlyArray<string>) => {
  const dirs = new Set(removed.map((f) => path.dirname(f)))
  for (const start of dirs) {
    let dir = start
    while (dir.startsWith(root + path.sep)) {
      const rest = await fs.readdir(dir).catch(() => ["?"])
      if (rest.length > 0) break
      await fs.rmdir(dir).catch(() => undefined)
      dir = path.dirname(dir)
    }
  }
}


/**
 * The write side of llmspell's own store, local disk only (no hub): whether the store is usable, what is
 * installed and may be trusted, the checks a file passes before it gets its name, bytes placed from
 * another store (link or copy), `verify`, `remove` of a manifest's model (under the per-file locks a pull
 * holds) and `import`. ModelStoreLive exposes verify, remove and import from here; the downloader's pull
 * writes through the same helpers. File I/O through FileSystem (hashing and the lock excepted, see there).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { randomBytes } from "node:crypto"
import * as path from "node:path"
import {
  DiskFull,
  type DownloadFailed,
  InvalidModelFile,
  ModelBusy,
  ModelNotFound,
  ModelStoreUnusable
} from "../../domain/Errors.js"
import { shellQuote } from "../../domain/ForeignStores.js"
import * as HubRef from "../../domain/HubRef.js"
import { factsOfFile } from "../../domain/ModelFacts.js"
import type { RemoveResult, VerifyFile, VerifyReport } from "../../domain/Types.js"
import type { ImportOptions, InstalledModel, StoreRoot, StoredBlob } from "../../services/ModelStore.js"
import { makeDirectories } from "./ensureDirectory.js"
import { describeHolder, tryFileLock } from "./fileLock.js"
import {
  absolute,
  fileLocation,
  filesPresent,
  hashFile,
  isImport,
  lockPath,
  type Manifest,
  type ManifestFile,
  manifestPath,
  matchManifests,
  mtimeOf,
  readManifests,
  storeRelative,
  toInstalled,
  trustedFile,
  writeManifest
} from "./ownStore.js"
import { readGgufFile } from "./readGgufFile.js"
import type { ScanFs } from "./scanFs.js"
import { diskFull, isFile, osCode, removeEmptyDirectory, statOption, storeIoError, unusable, unusableReason } from "./storeFs.js"

/**
 * What is wrong with a downloaded `.gguf`, or undefined: the first file of a model must pass the full header
 * check; further parts of a split model must at least start like a GGUF.
 */
export const ggufProblem = (file: string, primary: boolean): Effect.Effect<string | undefined, never, FileSystem.FileSystem> =>
  primary
    ? readGgufFile(file, { model: file, instance: "gguf" }).pipe(
      Effect.as(undefined),
      Effect.catchAll((e) =>
        Effect.succeed(e._tag === "InvalidModelFile" ? `is not a valid GGUF model: ${e.reason}` : "vanished before its check")
      )
    )
    : Effect.flatMap(FileSystem.FileSystem, (fs) =>
      Effect.scoped(Effect.gen(function*() {
        const handle = yield* fs.open(file, { flag: "r" })
        const head = yield* handle.readAlloc(4)
        return Option.isSome(head) && head.value.length === 4 && Buffer.from(head.value).toString("latin1") === "GGUF"
          ? undefined
          : "does not start with the GGUF magic"
      })).pipe(Effect.orElseSucceed(() => "cannot be read back")))

/**
 * Puts bytes that are already on the machine at a store path without downloading them: a hard link
 * (same inode, no extra disk, and the other tool deleting its name leaves ours intact) made under a temp
 * name and renamed into place, so the path only ever holds verified bytes. Across filesystems (EXDEV) or
 * where links are refused, returns `external`: the manifest then references the other store's file in
 * place (never written by us); `copy` forces a real copy, hashed against the sha256 before its rename.
 * A full disk is DiskFull; anything else fails with the PlatformError or a mismatch.
 */
export const placeExisting = (
  blob: StoredBlob,
  target: string,
  sha256: string,
  copy: boolean
): Effect.Effect<{ readonly external?: string }, DiskFull | Error, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* makeDirectories(path.dirname(target))
    const tmp = `${target}.link-${process.pid}-${randomBytes(4).toString("hex")}`
    const placed = Effect.gen(function*() {
      if (copy) {
        yield* fs.copyFile(blob.path, tmp)
        const actual = yield* hashFile(tmp)
        if (actual !== sha256) return yield* Effect.fail(new Error(`the copy of ${blob.path} does not hash to ${sha256}`))
      } else {
        const linked = yield* fs.link(blob.path, tmp).pipe(Effect.either)
        if (Either.isLeft(linked)) {
          const code = osCode(linked.left)
          if (code === "EXDEV" || code === "EPERM" || code === "EMLINK" || code === "ENOTSUP") return { external: blob.path }
          return yield* linked.left
        }
      }
      yield* fs.rename(tmp, target)
      return {}
    })
    return yield* placed.pipe(Effect.ensuring(Effect.ignore(fs.remove(tmp, { force: true }))))
  }).pipe(
    Effect.catchAll((e): Effect.Effect<never, DiskFull | Error, FileSystem.FileSystem> =>
      e instanceof DiskFull ? Effect.fail(e) : osCode(e) === "ENOSPC" ? diskFull(target, blob.sizeBytes) : Effect.fail(e as Error)
    )
  )

/** The manifest a reference designates. */
export const findManifest = (ref: string, store: StoreRoot) => Effect.map(readManifests(store), (all) => matchManifests(ref, all))

/** An installed model matching the ref whose files are in place with their recorded sizes. */
export const findInstalled = (
  ref: string,
  store: StoreRoot
): Effect.Effect<Option.Option<InstalledModel>, ModelStoreUnusable, ScanFs | FileSystem.FileSystem> =>
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
      const files = yield* Effect.forEach(m.files, (f) => trustedFile(store, f))
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
export const usableStore = (store: StoreRoot, write: boolean): Effect.Effect<void, ModelStoreUnusable, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    // makeDirectories, not FileSystem.makeDirectory: Node's recursive mkdir never ends on `/proc/nope`.
    yield* makeDirectories(store.directory).pipe(
      Effect.mapError((e) => new ModelStoreUnusable({ directory: store.directory, reason: unusableReason(osCode(e), e.message) }))
    )
    if (!write) return
    const fs = yield* FileSystem.FileSystem
    const probe = path.join(store.directory, `.llmspell-write-test-${process.pid}-${randomBytes(4).toString("hex")}`)
    yield* fs.writeFileString(probe, "").pipe(Effect.mapError(unusable(store)))
    yield* fs.remove(probe).pipe(Effect.mapError(unusable(store)))
  })

/** Every installed model of the store. */
export const listInstalled = (store: StoreRoot) => Effect.map(readManifests(store), (all) => all.map((m) => toInstalled(store, m)))

/** Where a file's recorded sha256 came from: the hub, the download (the hub gave none), the user's file (import). */
const expectedFrom = (m: Manifest, f: ManifestFile): NonNullable<VerifyFile["expectedFrom"]> =>
  isImport(m) ? "import" : f.hubSha256 === false ? "download" : "hub"

/** Re-hashes the files of the chosen manifests against their recorded sha256. */
export const verify = (
  store: StoreRoot,
  ref?: string
): Effect.Effect<VerifyReport, ModelNotFound | ModelStoreUnusable, ScanFs | FileSystem.FileSystem> =>
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
        const from = expectedFrom(m, f)
        // an import is repaired by importing its file again; a pull by pulling again
        const repair = from === "import"
          ? `llmspell model import ${shellQuote(m.importedFrom ?? m.files[0]!.repoPath)} --name ${shellQuote(m.name)}`
          : `llmspell model pull ${m.name} --force`
        if (!isFile(info)) {
          files.push({
            model: m.name,
            file,
            status: "missing",
            expectedSha256: f.sha256,
            expectedFrom: from,
            sizeBytes: f.sizeBytes,
            problem: "the file is missing",
            repair
          })
          continue
        }
        const actual = yield* hashFile(file).pipe(
          Effect.mapError((e) => new ModelStoreUnusable({ directory: store.directory, reason: `reading ${file}: ${unusableReason(e.code, e.message)}` }))
        )
        const size = Number(info.value.size)
        const recorded = from === "hub" ? "the hub published" : from === "download" ? "the download computed" : "the import recorded"
        const problem = size !== f.sizeBytes
          ? `it has ${size} bytes, ${f.sizeBytes} were ${from === "import" ? "imported" : "downloaded"}`
          : actual !== f.sha256
          ? `its sha256 is ${actual}, ${recorded} ${f.sha256}`
          : undefined
        files.push({
          model: m.name,
          file,
          status: problem === undefined ? "ok" : "corrupt",
          expectedSha256: f.sha256,
          expectedFrom: from,
          actualSha256: actual,
          sizeBytes: size,
          ...(problem !== undefined ? { problem, repair } : {}),
          // only a pull the hub gave no sha256 for is unverified: the bytes may have been wrong as they arrived
          ...(from === "download" ? { unverified: true } : {})
        })
      }
    }
    return { ok: files.every((f) => f.status === "ok"), files }
  })

/** Deletes the model a manifest (or a partial download's name) designates; see ModelStoreService.remove. */
export const removeInstalled = (
  ref: string,
  store: StoreRoot
): Effect.Effect<RemoveResult, ModelNotFound | ModelBusy | ModelStoreUnusable, ScanFs | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const all = yield* readManifests(store)
    const chosen = matchManifests(ref, all)
    const keep = new Set(all.filter((m) => !chosen.includes(m)).flatMap((m) => m.files.map((f) => f.path)))
    const targets = new Set<string>()
    for (const m of chosen) {
      for (const f of m.files) {
        // a file in another store, referenced in place, is never ours to delete
        if (f.external === undefined && !keep.has(f.path)) targets.add(absolute(store, f.path))
        targets.add(`${absolute(store, f.path)}.partial`)
      }
    }
    // Partial downloads of a model that never finished have no manifest: find them by repo and quantization.
    const parsed = HubRef.parse(ref)
    if (Either.isRight(parsed)) {
      const r = parsed.right
      const repoDir = absolute(store, storeRelative(r.repo, "x")).slice(0, -2)
      const partials = yield* listPartials(repoDir)
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
      const held = yield* tryFileLock(lockPath(store, key)).pipe(
        Effect.mapError((e) => new ModelStoreUnusable({ directory: store.directory, reason: `cannot take the lock ${e.path}: ${e.reason}` }))
      )
      if (held !== undefined) {
        return yield* new ModelBusy({ model: chosen[0]?.name ?? ref, holder: describeHolder(held.holder) })
      }
    }
    const fileSystem = yield* FileSystem.FileSystem
    const failed = (what: string) => (e: Parameters<ReturnType<typeof storeIoError>>[0]) =>
      new ModelStoreUnusable({ directory: store.directory, reason: storeIoError(store, what)(e).reason })
    const removedFiles: Array<string> = []
    let freedBytes = 0
    for (const target of targets) {
      const info = yield* statOption(target)
      if (Option.isNone(info)) continue
      yield* fileSystem.remove(target).pipe(Effect.mapError(failed("removing")))
      removedFiles.push(target)
      freedBytes += Number(info.value.size)
    }
    for (const m of chosen) {
      yield* fileSystem.remove(manifestPath(store, m.name), { force: true }).pipe(Effect.mapError(failed("removing the manifest")))
    }
    if (chosen.length === 0 && removedFiles.length === 0) {
      return yield* new ModelNotFound({ model: ref, backend: "gguf", instance: store.instance })
    }
    yield* pruneEmptyDirs(store.directory, [...targets])
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

/** Where an import of `name` lives: one file per name, so two names never share (or overwrite) a path. */
export const importedRelative = (name: string) => `imported/${HubRef.slugOf(name)}.gguf`

/**
 * Makes a GGUF file on disk a model of the store: validated with the GGUF reader, hashed once, hard-linked
 * (copied across filesystems, or with `copy`) to `imported/<slug of the name>.gguf` under a temp name and
 * renamed, then recorded by a manifest like a pull's, with the header's quantization and family. The
 * original is never moved or written. Importing under a second name gives the file a second name (a
 * second link to the same bytes), listed and removable on its own.
 */
export const importFile = (
  file: string,
  store: StoreRoot,
  options: ImportOptions = {}
): Effect.Effect<
  InstalledModel,
  ModelNotFound | InvalidModelFile | ModelStoreUnusable | DiskFull,
  FileSystem.FileSystem | ScanFs
> =>
  Effect.gen(function*() {
    const source = path.resolve(file)
    const info = yield* statOption(source)
    if (Option.isNone(info)) {
      return yield* new ModelNotFound({ model: file, backend: "gguf", instance: store.instance, detail: "no such file" })
    }
    if (info.value.type !== "File") return yield* new InvalidModelFile({ path: source, reason: "not a regular file" })
    // the full header check, the one that gates llama.cpp
    const gguf = yield* readGgufFile(source, { model: file, instance: store.instance })
    const baseName = path.basename(source)
    const name = (options.name ?? baseName.replace(/\.gguf$/i, "")).trim()
    const relative = importedRelative(name)
    const bad = name === "" ? "empty name" : /[\u0000-\u001f]/.test(name) ? "control characters in the name" : HubRef.validatePath(relative)
    if (bad !== undefined) return yield* new InvalidModelFile({ path: source, reason: `cannot be imported: ${bad}` })
    yield* usableStore(store, true)
    const unreadable = (e: NodeJS.ErrnoException) => new InvalidModelFile({ path: source, reason: `cannot be read (${e.code ?? e.message})` })
    const sha256 = yield* hashFile(source).pipe(Effect.mapError(unreadable))
    const target = absolute(store, relative)
    const size = Number(info.value.size)
    const place = (copy: boolean) => placeExisting({ store: "llmspell", path: source, sizeBytes: size }, target, sha256, copy)
    yield* place(options.copy === true).pipe(
      // an import owns its bytes: across filesystems it is a copy, never a reference to a file the user may delete
      Effect.flatMap((linked) => (linked.external !== undefined ? place(true) : Effect.succeed(linked))),
      Effect.catchAll((e): Effect.Effect<never, DiskFull | ModelStoreUnusable> =>
        Effect.fail(e instanceof DiskFull ? e : new ModelStoreUnusable({ directory: store.directory, reason: `importing ${source}: ${e.message}` }))
      )
    )
    const mtimeMs = yield* mtimeOf(target)
    const facts = factsOfFile(gguf, baseName)
    const manifest: Manifest = {
      version: 1,
      name,
      repo: "local",
      revision: "import",
      ...(facts.quantization !== undefined ? { quantization: facts.quantization } : {}),
      ...(facts.family !== undefined ? { family: facts.family } : {}),
      ...(facts.capabilities !== undefined ? { capabilities: facts.capabilities } : {}),
      importedFrom: source,
      files: [{ path: relative, repoPath: baseName, sizeBytes: size, sha256, mtimeMs, hubSha256: false }],
      pulledAt: new Date().toISOString()
    }
    yield* writeManifest(store, manifest).pipe(
      Effect.catchTag("DownloadFailed", (e: DownloadFailed) => Effect.fail(new ModelStoreUnusable({ directory: store.directory, reason: e.reason })))
    )
    return toInstalled(store, manifest)
  }).pipe(Effect.withSpan("ModelStore.importFile"))

const listPartials = (dir: string): Effect.Effect<ReadonlyArray<string>, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.readDirectory(dir, { recursive: true }).pipe(
      Effect.map((entries) => entries.filter((e) => e.endsWith(".partial")).map((e) => path.join(dir, e))),
      Effect.orElseSucceed(() => [])
    ))

/** Removes the folders under `<store>/hub` and `<store>/imported` left empty by a remove or a failed pull. */
export const pruneEmptyDirs = (storeDirectory: string, removed: ReadonlyArray<string>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const roots = [path.join(storeDirectory, "hub"), path.join(storeDirectory, "imported")]
    for (const start of new Set(removed.map((f) => path.dirname(f)))) {
      const root = roots.find((r) => start.startsWith(r + path.sep))
      let dir = start
      while (root !== undefined && dir.startsWith(root + path.sep)) {
        if (!(yield* removeEmptyDirectory(dir))) break
        dir = path.dirname(dir)
      }
    }
  })

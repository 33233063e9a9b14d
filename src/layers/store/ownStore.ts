/**
 * llmspell's own model store on disk: the manifests under `model_directory` (decoded with Schema),
 * where a repo file lives in the store, and the one streaming sha256 helper every reader uses.
 * Shared by ModelStoreLive (list, find, verify, remove, import) and the downloader's write path; no network.
 *
 * Layout (all under `model_directory`):
 *
 *     hub/<org>/<repo>/<path in repo>            a verified file; only ever created by rename() or link()
 *     hub/<org>/<repo>/<path in repo>.partial    bytes of an unfinished download (resume point = its size)
 *     imported/<slug of the name>.gguf           an imported file (`model import`), one per name
 *     manifests/<slug>.json                      one per model: name, alias, repo, revision, files, pulledAt
 *     locks/<slug>.lock                          held while a pull writes that file
 *
 * Why not the Hugging Face cache layout (`models--org--repo/blobs|snapshots|refs`) for our own store?
 * docs/stores.md recommends it in the long run, but we decided against switching now: the HF cache
 * is already *read* in place (hf-cache store), so pointing `[stores] hf_cache` at a directory gives
 * the sharing without making llmspell write into another tool's tree; our manifests carry what that
 * layout cannot (the hub's sha256 per file with the mtime it was established at, the catalog alias,
 * split parts as one model); and a move would have to migrate every existing store. A file whose
 * bytes already sit in the HF cache is hard-linked (same inode, no extra disk) rather than duplicated.
 *
 * Manifests are read through ScanFs (capped, never a FIFO: a user can put anything in the folder) and
 * written through FileSystem.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { createHash, randomBytes } from "node:crypto"
// node:fs for the hashing loop only: a stream of 1 MiB reads into the hash, no Effect per chunk
import { createReadStream } from "node:fs"
import * as path from "node:path"
import { type DiskFull, DownloadFailed, ModelStoreUnusable } from "../../domain/Errors.js"
import * as HubRef from "../../domain/HubRef.js"
import type { ModelFacts } from "../../domain/ModelFacts.js"
import type { InstalledModel, StoreRoot } from "../../services/ModelStore.js"
import { makeDirectories } from "./ensureDirectory.js"
import { headerFacts } from "./headerFacts.js"
import { ScanFs } from "./scanFs.js"
import { diskFull, osCode, unusableReason } from "./storeFs.js"

/** One file of a manifest. `path` is relative to the store, with `/`. */
export const ManifestFile = Schema.Struct({
  path: Schema.String.pipe(Schema.filter((p) => HubRef.validatePath(p) === undefined)),
  repoPath: Schema.String,
  sizeBytes: Schema.Number,
  sha256: Schema.String,
  /** The file's mtime when the sha256 was last established; another mtime means hash it again before trusting it. */
  mtimeMs: Schema.optional(Schema.Number),
  /** False when the hub gave no sha256: `sha256` is what the download (or the import) computed. */
  hubSha256: Schema.optional(Schema.Boolean),
  /**
   * An absolute path in another store holding these bytes, used in place because a hard link was
   * impossible (another filesystem). llmspell never writes or deletes it.
   */
  external: Schema.optional(Schema.String)
})
/** One file of a manifest. */
export type ManifestFile = typeof ManifestFile.Type

/** What `manifests/<slug>.json` holds. */
export const Manifest = Schema.Struct({
  version: Schema.Literal(1),
  name: Schema.String,
  alias: Schema.optional(Schema.String),
  repo: Schema.String,
  revision: Schema.String,
  quantization: Schema.optional(Schema.String),
  /** The GGUF's architecture, read from its header when the model was stored. */
  family: Schema.optional(Schema.String),
  /** What the model can do (`ModelFacts.capabilitiesOf`), read from its whole header when it was stored. */
  capabilities: Schema.optional(Schema.Array(Schema.String)),
  /** For an import: the file it was made from (what `verify` tells to import again when the copy is damaged). */
  importedFrom: Schema.optional(Schema.String),
  files: Schema.Array(ManifestFile).pipe(Schema.filter((files) => files.length > 0)),
  pulledAt: Schema.String
})
/** What `manifests/<slug>.json` holds. */
export type Manifest = typeof Manifest.Type

const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(Manifest))

/** An import's manifest: repo `local`, revision `import` (its sha256 was computed from the user's file). */
export const isImport = (m: Pick<Manifest, "repo" | "revision">) => m.repo === "local" && m.revision === "import"

/** The manifests directory of a store. */
export const manifestsDir = (store: StoreRoot) => path.join(store.directory, "manifests")
/** Where a model's manifest lives. */
export const manifestPath = (store: StoreRoot, name: string) =>
  path.join(manifestsDir(store), `${HubRef.slugOf(name)}.json`)
/** The lock of a store file (the first file of a model): one per file, whatever name the model was asked by. */
export const lockPath = (store: StoreRoot, relative: string) =>
  path.join(store.directory, "locks", `${HubRef.slugOf(relative)}.lock`)
/** Store path of a repo file: `hub/<org>/<repo>/<path>` (both already validated). */
export const storeRelative = (repo: string, repoPath: string) =>
  ["hub", ...repo.split("/"), ...repoPath.split("/")].join("/")
/** Absolute path of a store-relative path. */
export const absolute = (store: StoreRoot, relative: string) => path.join(store.directory, ...relative.split("/"))
/** Where a manifest file's bytes are: in the store, or the other store's path it references. */
export const fileLocation = (store: StoreRoot, f: ManifestFile) => f.external ?? absolute(store, f.path)

/** A manifest as the store's installed-model record. */
export const toInstalled = (store: StoreRoot, m: Manifest): InstalledModel => {
  const files = m.files.map((f) => ({ path: fileLocation(store, f), sizeBytes: f.sizeBytes, sha256: f.sha256 }))
  return {
    name: m.name,
    alias: m.alias,
    repo: m.repo,
    revision: m.revision,
    files,
    primaryPath: files[0]!.path,
    sizeBytes: files.reduce((n, f) => n + f.sizeBytes, 0),
    quantization: m.quantization,
    pulledAt: m.pulledAt
  }
}

/** A failed write of a pull in the store, naming the directory (the downloader's error). */
export const storeError = (store: StoreRoot, operation: string, e: unknown) =>
  new DownloadFailed({
    reason: `${operation} in ${store.directory} failed: ${(e as Error)?.message ?? String(e)}`,
    suggestion: "check that model_directory (LLMSPELL_MODELS_DIR) is writable"
  })

// A manifest is a few KB; a split model of hundreds of parts stays far below this.
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
const MAX_MANIFESTS = 100_000

/** Every readable manifest of the store (a damaged, foreign or half-replaced one is skipped). */
export const readManifests = (store: StoreRoot): Effect.Effect<ReadonlyArray<Manifest>, ModelStoreUnusable, ScanFs> =>
  Effect.gen(function*() {
    const fs = yield* ScanFs
    const dir = manifestsDir(store)
    const listing = yield* fs.readDirectory(dir, MAX_MANIFESTS).pipe(
      Effect.catchIf((e) => e.code === "ENOENT", () => Effect.succeed({ entries: [], truncated: false })),
      Effect.mapError((e) => new ModelStoreUnusable({ directory: store.directory, reason: `${dir}: ${unusableReason(e.code, e.reason)}` }))
    )
    const names = listing.entries.map((e) => e.name).filter((n) => n.endsWith(".json")).sort()
    const read = yield* Effect.forEach(names, (name) =>
      // a manifest being replaced, damaged by hand, or not a file at all: skipped, never waited on
      fs.readText(path.join(dir, name), MAX_MANIFEST_BYTES).pipe(
        Effect.map((r) => Either.getOrUndefined(decodeManifest(r.text))),
        Effect.orElseSucceed(() => undefined)
      ), { concurrency: 16 })
    return read.filter((m): m is Manifest => m !== undefined)
  })

/** Writes a manifest atomically (temp file + rename). */
export const writeManifest = (
  store: StoreRoot,
  manifest: Manifest
): Effect.Effect<void, DownloadFailed | DiskFull, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const target = manifestPath(store, manifest.name)
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`
    yield* makeDirectories(path.dirname(target))
    yield* fs.writeFileString(tmp, `${JSON.stringify(manifest, null, 2)}\n`).pipe(
      Effect.tapError(() => Effect.ignore(fs.remove(tmp, { force: true })))
    )
    yield* fs.rename(tmp, target)
  }).pipe(Effect.catchAll((e): Effect.Effect<never, DownloadFailed | DiskFull, FileSystem.FileSystem> =>
    osCode(e) === "ENOSPC"
      ? diskFull(manifestPath(store, manifest.name), 4096)
      : Effect.fail(storeError(store, "writing the manifest", e))
  ))

const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()

/**
 * The manifest a reference designates (no network): at most one. A catalog alias names its default
 * quantization only (`qwen2.5:0.5b` is not also `qwen2.5:0.5b:Q8_0`), so `remove` of an alias never takes
 * the other quantizations pulled under it.
 */
export const matchManifests = (ref: string, manifests: ReadonlyArray<Manifest>): ReadonlyArray<Manifest> => {
  const direct = manifests.filter((m) => sameName(m.name, ref))
  if (direct.length > 0) return direct.slice(0, 1)
  const parsed = HubRef.parse(ref)
  if (Either.isLeft(parsed)) return []
  const r = parsed.right
  const ofRepo = manifests.filter((m) => sameName(m.repo, r.repo))
  if (r.kind === "file") return ofRepo.filter((m) => m.files.some((f) => f.repoPath === r.path)).slice(0, 1)
  const wanted = r.quantization ?? HubRef.DEFAULT_QUANTIZATION
  const exact = ofRepo.filter((m) => m.quantization === wanted)
  if (exact.length > 0 || r.quantization !== undefined) return exact.slice(0, 1)
  return ofRepo.length === 1 ? ofRepo : []
}

/** True when every file of the manifest is in place with its recorded size (no hashing). */
export const filesPresent = (store: StoreRoot, m: Manifest): Effect.Effect<boolean, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    Effect.map(
      Effect.forEach(m.files, (f) =>
        fs.stat(fileLocation(store, f)).pipe(
          Effect.map((s) => s.type === "File" && Number(s.size) === f.sizeBytes),
          Effect.orElseSucceed(() => false)
        )),
      (present) => present.every((p) => p)
    ))

/**
 * A file's modification time in ms as the OS gives it (through ScanFs: FileSystem's is a Date, cut to
 * whole ms), to record with a sha256 and compare later; undefined when it cannot be read.
 */
export const mtimeOf = (file: string): Effect.Effect<number | undefined, never, ScanFs> =>
  Effect.flatMap(ScanFs, (fs) => fs.stat(file).pipe(Effect.map((s) => s.mtimeMs), Effect.orElseSucceed(() => undefined)))

/** Two recorded mtimes are the same. */
export const sameMtime = (a: number | undefined, b: number | undefined) => a !== undefined && b !== undefined && a === b

/**
 * Whether a pull may trust a recorded file in place: its size must match, and its bytes must hash to the
 * recorded sha256 unless its mtime is still the one recorded with that hash. Returns the record with the
 * current mtime (so a touched but intact file is hashed once, not on every pull), or undefined.
 */
export const trustedFile = (store: StoreRoot, f: ManifestFile): Effect.Effect<ManifestFile | undefined, never, ScanFs> =>
  Effect.gen(function*() {
    const fs = yield* ScanFs
    const location = fileLocation(store, f)
    const info = yield* fs.stat(location).pipe(Effect.option)
    if (info._tag === "None" || info.value.kind !== "file" || info.value.size !== f.sizeBytes) return undefined
    const mtimeMs = info.value.mtimeMs
    if (sameMtime(f.mtimeMs, mtimeMs)) return f
    const actual = yield* hashFile(location).pipe(Effect.option)
    return actual._tag === "Some" && actual.value === f.sha256 ? { ...f, mtimeMs } : undefined
  })

/**
 * The one streaming-hash loop: feeds a file (or its first `length` bytes) into `hash` in 1 MiB reads;
 * returns how many bytes were read. Aborts with the signal.
 */
export const hashInto = (
  file: string,
  hash: ReturnType<typeof createHash>,
  options: { readonly length?: number; readonly signal?: AbortSignal } = {}
) =>
  new Promise<number>((resolve, reject) => {
    if (options.length === 0) return resolve(0)
    let read = 0
    const stream = createReadStream(file, {
      highWaterMark: 1024 * 1024,
      ...(options.length !== undefined ? { start: 0, end: options.length - 1 } : {}),
      ...(options.signal ? { signal: options.signal } : {})
    })
    stream.on("data", (chunk) => {
      hash.update(chunk as Buffer)
      read += (chunk as Buffer).length
    })
    stream.on("error", reject)
    stream.on("end", () => resolve(read))
  })

/** Lower-case hex sha256 of a whole file; interrupting stops the reads. Fails with the OS error. */
export const hashFile = (file: string): Effect.Effect<string, NodeJS.ErrnoException> =>
  Effect.tryPromise({
    try: async (signal) => {
      const hash = createHash("sha256")
      await hashInto(file, hash, { signal })
      return hash.digest("hex")
    },
    catch: (e) => e as NodeJS.ErrnoException
  })

/**
 * The facts of a GGUF file (none when it cannot be read or is not a GGUF): its first bytes, then the
 * rest of its header when it is longer (`headerFacts.ts`), for the capabilities a pull records.
 */
export const peekFacts = (path: string, fileName: string): Effect.Effect<ModelFacts, never, ScanFs> => headerFacts(path, { fileName })

/**
 * The live ModelDownloader: GGUF pulls from the Hugging Face hub with @huggingface/hub (loaded with
 * `import()` on the first pull, so the CLI starts without it), into a model store on the local disk.
 * Touches only `model_directory` and the hub configured in `[hub]` / HF_ENDPOINT.
 *
 * Store layout (all under `model_directory`):
 *
 *     hub/<org>/<repo>/<path in repo>            a verified file; only ever created by rename()
 *     hub/<org>/<repo>/<path in repo>.partial    bytes of an unfinished download (resume point = its size)
 *     manifests/<slug>.json                      one per pulled model: name, alias, repo, revision commit,
 *                                                files (store path, repo path, size, sha256, mtime, whether
 *                                                the hub gave the sha256), pulledAt
 *     locks/<slug>.lock/                         held while a pull writes that file (owner.json: pid, host, startedAt)
 *
 * A manifest's `<slug>` is the canonical name (`org/repo:Q4_K_M`, `org/repo/file.gguf`) with `/` → `--` and
 * `:` → `__`, valid on every OS. A lock's slug is the store path of the model's first file: locks are per
 * file, not per name, so `org/repo:Q8_0` and `org/repo/x-Q8_0.gguf` (one file, two names) share one lock. Two models may share a file (`org/repo:Q4_K_M` and `org/repo/x-Q4_K_M.gguf`);
 * `remove` keeps files another manifest still lists.
 *
 * Integrity: sha256 is computed while the bytes stream. On resume the existing `.partial` prefix is
 * re-hashed once from disk (reading is several times faster than the network, and it keeps the store free
 * of persisted hash states that could go stale). A complete file whose hash differs from the hub's
 * `lfs.oid` is deleted and the pull fails with ChecksumMismatch; only a verified file is renamed into
 * place, so a file that a running model has mmap'd is never truncated (that would SIGBUS it). A file the hub
 * gave no sha256 for is "unverified": its hash computed while downloading is recorded for `verify`. Every
 * `.gguf` must pass the GGUF header check before it gets its name. A pull trusts a file in place only when its
 * size and mtime are those recorded (or its bytes re-hash to the recorded sha256).
 *
 * Locks: `internal/fileLock.ts` (proper-lockfile: a directory made by mkdir, refreshed while held). A lock
 * not refreshed for 30 s (its holder died, on this host or another) or whose pid is gone on this host is
 * taken over; a live one is waited for, interruptibly, polling on Effect's Clock.
 *
 * The token: sent only to the hub's origin. Our own `fetch` strips Authorization from any other origin
 * (@huggingface/hub sends it to a CloudFront CDN by itself), and no message, log or error carries it.
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type { HubConfig } from "../domain/ConfigSchema.js"
import {
  ChecksumMismatch,
  DiskFull,
  DownloadFailed,
  HubAuthRequired,
  InsufficientDiskSpace,
  InvalidModelFile,
  isLlmspellError,
  type LlmspellError,
  ModelBusy,
  ModelNotFound,
  ModelStoreUnusable
} from "../domain/Errors.js"
import * as HubRef from "../domain/HubRef.js"
import type { PullFileProgress, PullOptions, PullProgress, PullResult, VerifyFile } from "../domain/Types.js"
import { transferRate } from "../domain/TransferRate.js"
import { Config } from "../services/Config.js"
import { ensureDirectory } from "./internal/ensureDirectory.js"
import { acquireFileLock, describeHolder, tryFileLock } from "./internal/fileLock.js"
import {
  absolute,
  fileLocation,
  filesPresent,
  hashFile,
  hashInto,
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
} from "./internal/ownStore.js"
import { readGgufFile } from "./internal/readGgufFile.js"
import { MEANINGFUL_PROGRESS_BYTES, Retryable, withRetries } from "./internal/retryPolicy.js"
import {
  type ImportOptions,
  type InstalledModel,
  ModelDownloader,
  type ModelDownloaderService,
  type StoreRoot
} from "../services/ModelDownloader.js"
import { ModelStore as ModelStoreTag, type StoredBlob } from "../services/ModelStore.js"

type HubModule = typeof import("@huggingface/hub")

// ---------------------------------------------------------------------------------------------
// The hub: one place where promises, aborts and library errors become typed errors
// ---------------------------------------------------------------------------------------------

const UNREACHABLE = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH"])

/** Observes every response of one download attempt, strips the token off foreign origins, aborts on demand. */
class FetchProbe {
  readonly controller = new AbortController()
  readonly responses: Array<{ status: number; url: string; headers: Headers }> = []
  retryAfterMs: number | undefined
  constructor(private readonly hubOrigin: string) {}

  readonly fetch: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
    // @huggingface/hub forwards Authorization to a CDN that answers `X-Cache: … cloudfront`: never let it leave the hub.
    if (url.origin !== this.hubOrigin) headers.delete("authorization")
    const signal = init?.signal ? AbortSignal.any([init.signal, this.controller.signal]) : this.controller.signal
    const response = await fetch(input instanceof Request ? url.href : input, { ...init, headers, signal })
    this.responses.push({ status: response.status, url: response.url || url.href, headers: response.headers })
    if (response.status === 429 || response.status === 503) this.retryAfterMs = parseRetryAfter(response.headers.get("retry-after"))
    return response
  }

  get last() {
    return this.responses.at(-1)
  }
}

const parseRetryAfter = (value: string | null): number | undefined => {
  if (value === null) return undefined
  const seconds = Number(value)
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now()
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined
}

interface CallContext {
  readonly repo: string
  readonly file?: string | undefined
  readonly tokenProvided: boolean
  /** Removes the token from any text that reaches an error. */
  readonly scrub: (text: string) => string
  readonly stallTimeout: Duration.Duration
}

const describeRaw = (e: unknown): string => {
  if (typeof e === "string") return e
  if (e instanceof Error) {
    const code = (e.cause as { code?: string } | undefined)?.code
    return code !== undefined ? `${e.message} (${code})` : e.message
  }
  return String(e)
}

/** Maps whatever the hub library or fetch threw to a typed error or a Retryable. */
const classify = (e: unknown, ctx: CallContext, probe: FetchProbe): LlmspellError | Retryable => {
  if (e instanceof Retryable || isLlmspellError(e)) return e
  // blob.stream() rejects with a bare string when its request fails: the status is in what our fetch saw.
  const lastStatus = probe.last?.status ?? 0
  const status = (e as { statusCode?: unknown })?.statusCode ?? (typeof e === "string" && lastStatus >= 400 ? lastStatus : undefined)
  const url = typeof (e as { url?: unknown })?.url === "string" ? ctx.scrub((e as { url: string }).url) : undefined
  const errorCode = probe.last?.headers.get("x-error-code") ?? undefined
  if (typeof status === "number") {
    // The hub answers an unknown repo with 401 + RepoNotFound to anonymous callers: that is a typo far more
    // often than a private repo, so it is ModelNotFound; 401 without that code stays the gated case.
    if (errorCode === "RepoNotFound" || errorCode === "RepositoryNotFound") {
      return new ModelNotFound({
        model: ctx.repo,
        backend: "gguf",
        detail: `the hub has no repo ${ctx.repo} (or it is private)`,
        suggestion: "check the name; `llmspell model available` lists the catalog's models" +
          (ctx.tokenProvided ? "" : ", and a private repo needs HF_TOKEN")
      })
    }
    if (status === 404 || errorCode === "EntryNotFound" || errorCode === "RevisionNotFound") {
      return new ModelNotFound({
        model: ctx.file !== undefined ? `${ctx.repo}/${ctx.file}` : ctx.repo,
        backend: "gguf",
        detail: errorCode === "EntryNotFound" ? "the file is not in the repo" : "no such repo on the hub (or it is private)",
        suggestion: "check the name; `llmspell model available` lists the catalog's models"
      })
    }
    if (status === 401 || status === 403) {
      return new HubAuthRequired({ repo: ctx.repo, status, tokenProvided: ctx.tokenProvided })
    }
    if (status === 429 || status === 408 || status >= 500) {
      return new Retryable({ reason: `HTTP ${status}`, retryAfterMs: probe.retryAfterMs, url })
    }
    return new DownloadFailed({
      ...(url !== undefined ? { url } : {}),
      ...(ctx.file !== undefined ? { file: ctx.file } : {}),
      reason: `the hub answered HTTP ${status}: ${ctx.scrub(describeRaw(e))}`
    })
  }
  // Network failures (refused, reset, "terminated"), the library's string rejections, aborts: all transient.
  const code = (e as { cause?: { code?: unknown } })?.cause?.code
  const unreachable = typeof code === "string" && UNREACHABLE.has(code)
  return new Retryable({ reason: ctx.scrub(describeRaw(e)), url, unreachable })
}

/** Runs one hub promise: interruption and stalls abort it through the probe; every failure is typed. */
const hubCall = <A>(
  ctx: CallContext,
  probe: FetchProbe,
  what: string,
  f: () => Promise<A>
): Effect.Effect<A, LlmspellError | Retryable> =>
  Effect.tryPromise({ try: f, catch: (e) => classify(e, ctx, probe) }).pipe(
    Effect.timeoutFail({
      duration: ctx.stallTimeout,
      onTimeout: () => new Retryable({ reason: `${what}: no answer for ${Duration.format(ctx.stallTimeout)}` })
    }),
    Effect.onInterrupt(() => Effect.sync(() => probe.controller.abort())),
    Effect.withSpan(`ModelDownloader.${what}`)
  )

// ---------------------------------------------------------------------------------------------
// The downloader
// ---------------------------------------------------------------------------------------------

const WRITE_BATCH = 1024 * 1024
const PROGRESS_EVERY_BYTES = 1024 * 1024


/** Free bytes for an unprivileged writer on the disk holding `dir` (Infinity when unknown). */
const freeBytes = (dir: string) =>
  Effect.promise(() => fs.statfs(dir).then((s) => s.bavail * s.bsize, () => Number.POSITIVE_INFINITY))

/** The typed failure of a write that hit ENOSPC: how much of the file is still missing, and what is free. */
const diskFull = (partial: string, size: number) =>
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
const ggufProblem = (file: string, primary: boolean): Effect.Effect<string | undefined> =>
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

/** Seams for tests that need failures a real disk will not give on demand. */
export interface DownloaderInternals {
  /** Writes chunks of a partial file at a position (default: `handle.writev`); a test may fail it with ENOSPC. */
  readonly writeChunks?: (handle: fs.FileHandle, chunks: Array<Uint8Array>, position: number) => Promise<unknown>
  /**
   * A file already on this machine with the given sha256 (any store: ours, Ollama's, the HF cache):
   * a pull links or copies it instead of downloading it. Default: none (always download).
   */
  readonly existingBlob?: (sha256: string, store: StoreRoot) => Effect.Effect<Option.Option<StoredBlob>, LlmspellError>
}

/**
 * Puts bytes that are already on the machine at a store path without downloading them: a hard link
 * (same inode, no extra disk, and the other tool deleting its name leaves ours intact) made under a temp
 * name and renamed into place, so the path only ever holds verified bytes. Across filesystems (EXDEV) or
 * where links are refused, returns `external`: the manifest then references the other store's file in
 * place (never written by us); `copy` forces a real copy, hashed against the sha256 before its rename.
 */
const placeExisting = async (
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

/** Builds the downloader over the hub settings. */
export const make = (hub: HubConfig, internals: DownloaderInternals = {}): ModelDownloaderService => {
  const writeChunks = internals.writeChunks ?? ((handle, chunks, position) => handle.writev(chunks, position))
  const token = Option.getOrUndefined(Option.map(hub.token, Redacted.value))
  const hubUrl = hub.endpoint.replace(/\/+$/, "")
  const hubOrigin = new URL(hubUrl).origin
  const scrub = (text: string) => (token !== undefined && token.length > 0 ? text.split(token).join("<redacted>") : text)
  const stallTimeout = Duration.seconds(hub.stallTimeoutSeconds)
  let loaded: Promise<HubModule> | undefined
  const hubModule = Effect.tryPromise({
    try: () => (loaded ??= import("@huggingface/hub")),
    catch: (e) => new DownloadFailed({ reason: `cannot load @huggingface/hub: ${describeRaw(e)}` })
  })

  const findManifest = (ref: string, store: StoreRoot) =>
    Effect.map(readManifests(store), (all) => matchManifests(ref, all))

  const findInstalled: ModelDownloaderService["findInstalled"] = (ref, store) =>
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
  const trustedInstalled = (ref: string, store: StoreRoot) =>
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
  const usableStore = (store: StoreRoot, write: boolean) =>
    Effect.tryPromise({
      try: async () => {
        await ensureDirectory(store.directory)
        if (!write) return
        const probe = path.join(store.directory, `.llmspell-write-test-${process.pid}-${randomBytes(4).toString("hex")}`)
        await fs.writeFile(probe, "")
        await fs.rm(probe, { force: true })
      },
      catch: (e) => {
        const err = e as NodeJS.ErrnoException
        const reason = err.code === "ENOTDIR"
          ? "it (or a folder above it) is a file, not a directory"
          : err.code === "EROFS"
          ? "it is on a read-only file system"
          : err.code === "EACCES" || err.code === "EPERM"
          ? "permission denied"
          : err.code === "ENOENT"
          ? "it cannot be created there"
          : "it is not usable"
        return new ModelStoreUnusable({ directory: store.directory, reason: `${reason} (${err.code ?? err.message})` })
      }
    })

  const listInstalled: ModelDownloaderService["listInstalled"] = (store) =>
    Effect.map(readManifests(store), (all) => all.map((m) => toInstalled(store, m)))

  const verify: ModelDownloaderService["verify"] = (store, ref) =>
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
          const stat = yield* Effect.promise(() => fs.stat(file).catch(() => undefined))
          const repair = `llmspell model pull ${m.name} --force`
          if (stat === undefined || !stat.isFile()) {
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
          const problem = stat.size !== f.sizeBytes
            ? `it has ${stat.size} bytes, ${f.sizeBytes} were downloaded`
            : actual !== f.sha256
            ? `its sha256 is ${actual}, ${f.hubSha256 === false ? "the download computed" : "the hub published"} ${f.sha256}`
            : undefined
          files.push({
            model: m.name,
            file,
            status: problem === undefined ? "ok" : "corrupt",
            expectedSha256: f.sha256,
            actualSha256: actual,
            sizeBytes: stat.size,
            ...(problem !== undefined ? { problem, repair } : {}),
            ...(f.hubSha256 === false ? { unverified: true } : {})
          })
        }
      }
      return { ok: files.every((f) => f.status === "ok"), files }
    })

  const remove: ModelDownloaderService["remove"] = (ref, store) =>
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
      const removedFiles: Array<string> = []
      let freedBytes = 0
      for (const target of targets) {
        const stat = yield* Effect.promise(() => fs.stat(target).catch(() => undefined))
        if (stat === undefined) continue
        yield* Effect.tryPromise({ try: () => fs.rm(target, { force: true }), catch: (e) => storeError(store, "removing", e) })
        removedFiles.push(target)
        freedBytes += stat.size
      }
      for (const m of chosen) {
        yield* Effect.tryPromise({
          try: () => fs.rm(manifestPath(store, m.name), { force: true }),
          catch: (e) => storeError(store, "removing the manifest", e)
        })
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

  const pull: ModelDownloaderService["pull"] = (ref, store, options = {}) =>
    Stream.asyncPush<PullProgress, LlmspellError>(
      (emit) =>
        Effect.forkScoped(
          runPull(ref, store, options, (p) => void emit.single(p)).pipe(
            Effect.exit,
            Effect.flatMap((exit) => Effect.sync(() => (Exit.isSuccess(exit) ? emit.end() : emit.halt(exit.cause))))
          )
        ),
      { bufferSize: 4096, strategy: "sliding" }
    )

  const runPull = (
    input: string,
    store: StoreRoot,
    options: PullOptions,
    emit: (p: PullProgress) => void
  ): Effect.Effect<void, LlmspellError> =>
    Effect.suspend(() => {
    // Store files this pull may write: their folders are pruned when it fails, so no empty repo folder stays.
    const targets: Array<string> = []
    return Effect.gen(function*() {
      let model = input
      const base = () => ({ model, backend: "gguf" as const, instance: store.instance })
      emit({ ...base(), phase: "resolving", files: [], completedBytes: 0 })
      const ref = yield* Either.match(HubRef.parse(input, options.quantization), {
        onLeft: Effect.fail,
        onRight: Effect.succeed
      })
      const doneWith = (
        installed: InstalledModel,
        downloadedBytes: number,
        alreadyPresent: boolean,
        note?: string,
        satisfiedFrom?: StoredBlob["store"]
      ) => {
        const result: PullResult = {
          model: installed.name,
          backend: "gguf",
          instance: store.instance,
          alreadyPresent,
          sizeBytes: installed.sizeBytes,
          path: installed.primaryPath,
          files: installed.files.map((f) => f.path),
          downloadedBytes,
          verified: note === undefined,
          ...(satisfiedFrom !== undefined ? { satisfiedFrom } : {})
        }
        model = installed.name
        emit({
          ...base(),
          phase: "done",
          files: installed.files.map((f) => ({
            name: path.basename(f.path),
            completedBytes: f.sizeBytes,
            totalBytes: f.sizeBytes,
            status: "done" as const
          })),
          completedBytes: installed.sizeBytes,
          totalBytes: installed.sizeBytes,
          ...(note !== undefined
            ? { message: note }
            : satisfiedFrom !== undefined
            ? { message: `already on this machine (${satisfiedFrom}): 0 B downloaded` }
            : {}),
          result
        })
      }
      const presentAlready = (m: Manifest) => {
        const unverified = m.files.filter((f) => f.hubSha256 === false).map((f) => f.repoPath)
        doneWith(
          toInstalled(store, m),
          0,
          true,
          unverified.length === 0 ? undefined : `unverified: the hub gave no sha256 for ${unverified.join(", ")}`
        )
      }
      const lookupName = ref.kind === "repo" && ref.alias === undefined && options.quantization === undefined
        ? input
        : HubRef.canonicalName(ref)
      yield* usableStore(store, false)
      if (!options.force) {
        const present = yield* trustedInstalled(ref.alias !== undefined ? HubRef.canonicalName(ref) : lookupName, store)
        if (Option.isSome(present)) return presentAlready(present.value)
      }
      yield* usableStore(store, true)
      if (hub.offline) {
        return yield* new ModelNotFound({
          model: input,
          backend: "gguf",
          instance: store.instance,
          detail: "it is not in the store and the hub is offline (HF_HUB_OFFLINE / hub.offline)"
        })
      }

      const ctx: CallContext = { repo: ref.repo, tokenProvided: token !== undefined, scrub, stallTimeout }
      const lib = yield* hubModule

      // Resolve: the listing (names, sizes, sha256) and the commit it describes, so every file comes from it.
      const listing = yield* withRetries(
        () => {
          const probe = new FetchProbe(hubOrigin)
          return hubCall(ctx, probe, "listFiles", async () => {
            const files: Array<HubRef.RepoFile> = []
            for await (
              const entry of lib.listFiles({
                repo: ref.repo,
                recursive: true,
                hubUrl,
                fetch: probe.fetch,
                ...(token !== undefined ? { accessToken: token } : {})
              })
            ) {
              if (entry.type === "file") files.push({ path: entry.path, size: entry.size, sha256: entry.lfs?.oid })
            }
            const commit = probe.responses.map((r) => r.headers.get("x-repo-commit")).find((c) => c !== null) ?? "main"
            return { files, commit }
          })
        },
        (message) => Effect.sync(() => emit({ ...base(), phase: "resolving", files: [], completedBytes: 0, message })),
        { maxRetries: hub.maxRetries, hubUrl, failFastWhenUnreachable: true }
      )
      const selected = yield* Either.match(HubRef.select(ref, listing.files), {
        onLeft: Effect.fail,
        onRight: Effect.succeed
      })
      for (const file of selected.group.files) {
        const bad = HubRef.validatePath(file.path)
        if (bad !== undefined) {
          return yield* new DownloadFailed({ file: file.path, reason: `refusing an unsafe file name from the hub: ${bad}` })
        }
      }
      model = selected.name
      const alias = ref.kind === "repo" ? ref.alias : undefined

      // One writer per store file at a time, across processes and whatever name the model was asked by.
      // The wait is interruptible: Ctrl-C while another pull holds the lock ends at once and leaves nothing.
      yield* acquireFileLock(lockPath(store, storeRelative(ref.repo, selected.group.files[0]!.path)), {
        onWait: (holder) =>
          Effect.sync(() =>
            emit({
              ...base(),
              phase: "waiting",
              files: [],
              completedBytes: 0,
              message: `on another pull of ${model} (${describeHolder(holder)})`
            })
          )
      }).pipe(Effect.mapError((e) => storeError(store, "locking", e)))

      if (!options.force) {
        const existing = yield* trustedInstalled(selected.name, store)
        if (Option.isSome(existing)) return presentAlready(existing.value) // another pull finished it while we waited
      }

      // What is left to fetch: files in place with the hub's sha256 (recorded by a manifest, and still intact) are kept.
      const known = new Map((yield* readManifests(store)).flatMap((m) => m.files.map((f) => [f.path, f] as const)))
      const plan = yield* Effect.promise(() =>
        Promise.all(selected.group.files.map(async (file) => {
          const relative = storeRelative(ref.repo, file.path)
          const target = absolute(store, relative)
          const record = known.get(relative)
          const trusted = !options.force && file.sha256 !== undefined && record !== undefined &&
              record.sha256 === file.sha256 && record.sizeBytes === file.size
            ? await trustedFile(store, record)
            : undefined
          const keep = trusted !== undefined
          const partialSize = options.force || keep
            ? 0
            : (await fs.stat(`${target}.partial`).catch(() => undefined))?.size ?? 0
          return { file, relative, target, keep, trusted, partialSize: partialSize <= file.size ? partialSize : 0 }
        }))
      )
      targets.push(...plan.map((p) => p.target))

      // Bytes the hub names by sha256 that some store on this machine already holds: link (or copy) them.
      const reused = new Map<number, { readonly store: StoredBlob["store"]; readonly external?: string }>()
      if (!options.force && internals.existingBlob !== undefined) {
        for (const [i, p] of plan.entries()) {
          if (p.keep || p.file.sha256 === undefined) continue
          const found = yield* internals.existingBlob(p.file.sha256, store).pipe(
            Effect.orElseSucceed(() => Option.none<StoredBlob>())
          )
          // never the target itself (a file in place that failed its check is downloaded again, not re-linked)
          if (Option.isNone(found) || found.value.sizeBytes !== p.file.size || path.resolve(found.value.path) === p.target) continue
          if ((yield* ggufProblem(found.value.path, i === 0)) !== undefined) continue
          const placed = yield* Effect.tryPromise({
            try: () => placeExisting(found.value, p.target, p.file.sha256!, options.copy === true),
            catch: (e) => storeError(store, `linking ${found.value.path}`, e)
          })
          reused.set(i, { store: found.value.store, ...placed })
        }
      }
      if (options.force) {
        yield* Effect.promise(() => Promise.all(plan.map((p) => fs.rm(`${p.target}.partial`, { force: true }))))
      }

      const needed = plan.reduce((n, p, i) => n + (p.keep || reused.has(i) ? 0 : p.file.size - p.partialSize), 0)
      const free = yield* freeBytes(store.directory)
      if (needed > free) {
        return yield* new InsufficientDiskSpace({ directory: store.directory, neededBytes: needed, availableBytes: free })
      }

      // Progress: one state, snapshotted into events.
      const states: Array<PullFileProgress & { completedBytes: number; status: PullFileProgress["status"] }> = plan.map((
        p,
        i
      ) => ({
        name: p.file.path,
        completedBytes: p.keep || reused.has(i) ? p.file.size : p.partialSize,
        totalBytes: p.file.size,
        status: p.keep || reused.has(i) ? "done" : "pending"
      }))
      const totalBytes = plan.reduce((n, p) => n + p.file.size, 0)
      // An event per 1% or per MiB, whichever is smaller: a few hundred events for any size.
      const progressStep = Math.max(1, Math.min(PROGRESS_EVERY_BYTES, Math.floor(totalBytes / 100)))
      const startedAt = performance.now()
      let downloadedBytes = 0
      let lastEmitted = 0
      const progress = (phase: PullProgress["phase"], message?: string) => {
        const completedBytes = states.reduce((n, s) => n + s.completedBytes, 0)
        const elapsedSeconds = (performance.now() - startedAt) / 1000
        lastEmitted = downloadedBytes
        emit({
          ...base(),
          phase,
          files: states.map((s) => ({ ...s })),
          completedBytes,
          totalBytes,
          ...transferRate({ phase, downloadedBytes, elapsedSeconds, completedBytes, totalBytes }),
          ...(message !== undefined ? { message } : {})
        })
      }
      progress("downloading")

      const computed = new Map<number, string>()
      const downloadOne = (index: number) => {
        const p = plan[index]!
        const state = states[index]!
        const fileCtx: CallContext = { ...ctx, file: p.file.path }
        let bestOffset = p.partialSize
        return withRetries(
          () =>
            attempt(lib, fileCtx, listing.commit, p.file, p.target, index === 0, {
              onBytes: (n, offset) => {
                downloadedBytes += n
                state.completedBytes = offset
                state.status = "downloading"
                if (downloadedBytes - lastEmitted >= progressStep) progress("downloading")
              },
              onRestart: () => {
                state.completedBytes = 0
              },
              madeProgress: (offset) => {
                // A server dropping every connection after a byte must not reset the failure count forever.
                const better = offset >= Math.min(p.file.size, bestOffset + MEANINGFUL_PROGRESS_BYTES)
                bestOffset = Math.max(bestOffset, offset)
                return better
              },
              onVerifying: () => {
                state.status = "verifying"
                progress("downloading", `verifying ${p.file.path}`)
              }
            }),
          (message) => Effect.sync(() => progress("downloading", message)),
          { maxRetries: hub.maxRetries, hubUrl, file: p.file.path }
        ).pipe(Effect.tap((sha256) => Effect.sync(() => {
          computed.set(index, sha256)
          state.status = "done"
        })))
      }
      yield* Effect.forEach(
        plan.flatMap((p, i) => (p.keep || reused.has(i) ? [] : [i])),
        downloadOne,
        { concurrency: hub.parallelDownloads, discard: true }
      )
      // "Verified" only against a hash the hub gave; otherwise say so and keep the computed one for `verify`.
      const unverified = plan.filter((p) => p.file.sha256 === undefined).map((p) => p.file.path)
      const verdict = unverified.length === 0
        ? "all files verified against the hub's sha256"
        : `unverified: the hub gave no sha256 for ${unverified.join(", ")}; ` +
          "the sha256 computed while downloading is recorded for `llmspell model verify`"
      progress("verifying", `${verdict}; writing the manifest`)

      const manifest: Manifest = {
        version: 1,
        name: selected.name,
        ...(alias !== undefined ? { alias } : {}),
        repo: ref.repo,
        revision: listing.commit,
        quantization: selected.group.quantization,
        files: yield* Effect.forEach(plan, (p, i) =>
          Effect.map(
            Effect.promise(() =>
              fs.stat(reused.get(i)?.external ?? p.target).then((st) => st.mtimeMs, () => undefined)
            ),
            (mtimeMs): ManifestFile => ({
              ...(reused.get(i)?.external !== undefined ? { external: reused.get(i)!.external! } : {}),
              path: p.relative,
              repoPath: p.file.path,
              sizeBytes: p.file.size,
              sha256: p.file.sha256 ?? computed.get(i) ?? p.trusted?.sha256 ?? "",
              mtimeMs,
              hubSha256: p.file.sha256 !== undefined
            })
          )),
        pulledAt: new Date().toISOString()
      }
      yield* writeManifest(store, manifest)
      const satisfiedFrom = reused.size > 0 && downloadedBytes === 0 ? [...reused.values()][0]!.store : undefined
      doneWith(
        toInstalled(store, manifest),
        downloadedBytes,
        false,
        unverified.length === 0 ? undefined : verdict,
        satisfiedFrom
      )
    }).pipe(
      Effect.scoped,
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) || targets.length === 0
          ? Effect.void
          : Effect.promise(() => pruneEmptyDirs(path.join(store.directory, "hub"), targets))
      )
    )
    })

  interface AttemptHooks {
    readonly onBytes: (n: number, offset: number) => void
    readonly onRestart: () => void
    /** Records the offset reached; true when it is further than any attempt before. */
    readonly madeProgress: (offset: number) => boolean
    readonly onVerifying: () => void
  }

  /** One attempt at one file: resume from the partial, stream, hash, verify, rename into place. */
  const attempt = (
    lib: HubModule,
    ctx: CallContext,
    commit: string,
    file: HubRef.RepoFile,
    target: string,
    primary: boolean,
    hooks: AttemptHooks
  ): Effect.Effect<string, LlmspellError | Retryable> =>
    Effect.gen(function*() {
      const partial = `${target}.partial`
      const probe = new FetchProbe(hubOrigin)
      yield* Effect.addFinalizer(() => Effect.sync(() => probe.controller.abort()))
      const fsError = (what: string) => (e: unknown) =>
        new DownloadFailed({ file: file.path, reason: `${what} ${partial}: ${(e as Error)?.message ?? String(e)}` })

      yield* Effect.tryPromise({ try: () => ensureDirectory(path.dirname(target)), catch: fsError("creating the folder of") })
      const partialStat = yield* Effect.promise(() => fs.lstat(partial).catch(() => undefined))
      // Opening a FIFO (or a device) in its place would block forever, out of reach of Ctrl-C.
      if (partialStat !== undefined && !partialStat.isFile()) {
        return yield* new DownloadFailed({
          file: file.path,
          reason: `${partial} is not a regular file`,
          suggestion: `remove it, then run the same pull again`
        })
      }
      let offset = partialStat?.size ?? 0
      if (offset > file.size) {
        yield* Effect.promise(() => fs.rm(partial, { force: true }))
        offset = 0
      }
      let hash = createHash("sha256")
      if (offset > 0) {
        // Resume: the prefix on disk is hashed once more (see the header).
        const prefix = yield* Effect.tryPromise({ try: () => hashInto(partial, hash, { length: offset }), catch: fsError("reading") })
        offset = prefix
      }
      hooks.onBytes(0, offset)
      let handle: fs.FileHandle | undefined

      if (offset < file.size) {
        const blob = yield* hubCall(ctx, probe, "downloadFile", () =>
          lib.downloadFile({
            repo: ctx.repo,
            path: file.path,
            revision: commit,
            hubUrl,
            fetch: probe.fetch,
            xet: false,
            ...(token !== undefined ? { accessToken: token } : {})
          }))
        if (blob === null) {
          return yield* new ModelNotFound({ model: `${ctx.repo}/${file.path}`, backend: "gguf", detail: "the file is not in the repo" })
        }
        // The partial is opened only once the hub said yes, so refusals leave nothing behind.
        const output = yield* Effect.acquireRelease(
          Effect.tryPromise({ try: () => fs.open(partial, offset > 0 ? "r+" : "w"), catch: fsError("opening") }),
          (h) => Effect.promise(() => h.close().catch(() => undefined))
        )
        handle = output
        const body = offset > 0 ? blob.slice(offset).stream() : blob.stream()
        const startOffset = offset
        const clock = yield* Effect.clock
        let lastByteAt = clock.unsafeCurrentTimeMillis()
        let position = offset

        // The byte loop is plain async code: one Effect per 64 KiB chunk costs more than the network
        // (measured: ~0.5 ms each). It is the only writer of the partial, keeps one write in flight while
        // it reads the next chunk, and flushes what it has on any exit, so an abort keeps every byte received.
        const loop = async () => {
          const reader = body.getReader()
          let pending: Array<Uint8Array> = []
          let pendingBytes = 0
          let writing: Promise<unknown> = Promise.resolve()
          const flush = async () => {
            await writing
            if (pendingBytes === 0) return
            const chunks = pending
            const at = position - pendingBytes
            pending = []
            pendingBytes = 0
            writing = writeChunks(output, chunks, at)
            await writing
          }
          let first = true
          try {
            for (;;) {
              const next = await reader.read()
              lastByteAt = clock.unsafeCurrentTimeMillis()
              if (first && !next.done) {
                first = false
                const response = probe.last
                if (startOffset > 0 && response?.status === 200) {
                  // The server ignored Range and sends the whole file: start this file over from byte 0.
                  await output.truncate(0)
                  hash = createHash("sha256")
                  position = 0
                  hooks.onRestart()
                } else if (startOffset > 0) {
                  const range = /^bytes (\d+)-/.exec(response?.headers.get("content-range") ?? "")
                  if (range === null || Number(range[1]) !== startOffset) {
                    throw new Retryable({ reason: `the server answered a resume at ${startOffset} with another range` })
                  }
                }
              }
              if (next.done) break
              const chunk = next.value
              if (position + chunk.length > file.size) {
                await fs.rm(partial, { force: true })
                pending = []
                pendingBytes = 0
                throw new Retryable({ reason: `the server sent more than the ${file.size} bytes listed` })
              }
              hash.update(chunk)
              pending.push(chunk)
              pendingBytes += chunk.length
              position += chunk.length
              hooks.onBytes(chunk.length, position)
              if (pendingBytes >= WRITE_BATCH) {
                await writing
                const chunks = pending
                const at = position - pendingBytes
                pending = []
                pendingBytes = 0
                writing = writeChunks(output, chunks, at)
              }
            }
          } finally {
            await flush()
            void reader.cancel().catch(() => undefined)
          }
          if (position < file.size) {
            throw new Retryable({ reason: `the connection ended at byte ${position} of ${file.size}` })
          }
        }
        const streamed = Effect.async<void, LlmspellError | Retryable>((resume) => {
          const running = loop()
          running.then(() => resume(Effect.void), (e) =>
            resume(
              (e as NodeJS.ErrnoException)?.code === "ENOSPC"
                ? diskFull(partial, file.size) // retrying cannot help: keep the partial for a resume
                : Effect.fail(classify(e, ctx, probe))
            ))
          // Interrupted (stall, Ctrl-C, a sibling failed): abort the request and wait for the final flush.
          return Effect.promise(() => {
            probe.controller.abort()
            return running.catch(() => undefined)
          })
        })
        // Stalls are measured on Effect's clock (the TestClock in tests), checked every second; a stall
        // aborts the request, which ends the loop like any dropped connection.
        const stallMs = Duration.toMillis(stallTimeout)
        let stalled = false
        const watchdog: Effect.Effect<void> = Effect.sleep(Duration.millis(Math.min(1000, stallMs))).pipe(
          Effect.zipRight(Effect.suspend(() => {
            if (clock.unsafeCurrentTimeMillis() - lastByteAt < stallMs) return watchdog
            stalled = true
            probe.controller.abort()
            return Effect.void
          }))
        )
        yield* Effect.forkScoped(watchdog)
        yield* streamed.pipe(
          Effect.mapError((e) =>
            e._tag !== "Retryable" && !stalled
              ? e
              : new Retryable({
                reason: stalled ? `no data for ${Duration.format(stallTimeout)}` : (e as Retryable).reason,
                retryAfterMs: stalled ? undefined : (e as Retryable).retryAfterMs,
                url: stalled ? undefined : (e as Retryable).url,
                progressed: hooks.madeProgress(position)
              })
          )
        )
      }

      hooks.onVerifying()
      const actual = hash.digest("hex")
      if (file.sha256 !== undefined && actual !== file.sha256) {
        yield* Effect.promise(() => fs.rm(partial, { force: true }))
        return yield* new ChecksumMismatch({ file: file.path, expected: file.sha256, actual })
      }
      const open = handle
      if (open !== undefined) yield* Effect.tryPromise({ try: () => open.close(), catch: fsError("closing") })
      // A `.gguf` that is not one never gets its name (llama.cpp must never see it; the hub may serve anything).
      if (/\.gguf$/i.test(file.path)) {
        const problem = yield* ggufProblem(partial, primary)
        if (problem !== undefined) {
          yield* Effect.promise(() => fs.rm(partial, { force: true }))
          return yield* new InvalidModelFile({ path: `${ctx.repo}/${file.path}`, reason: `the hub's file ${problem}; it was discarded` })
        }
      }
      // Only now does the file get its real name; rename() replaces an older copy without truncating it.
      yield* Effect.tryPromise({ try: () => fs.rename(partial, target), catch: fsError("renaming") })
      return actual
    }).pipe(Effect.scoped)

  // Every path the store prints or records is absolute, whatever `--models-dir` was given as.
  const absoluteStore = (store: StoreRoot): StoreRoot =>
    path.isAbsolute(store.directory) ? store : { ...store, directory: path.resolve(store.directory) }
  /**
   * Makes a GGUF file on disk a model of the store: validated with the GGUF reader, hashed once, hard-linked
   * (copied across filesystems, or with `copy`) to `imported/<file>` under a temp name and renamed, then
   * recorded by a manifest like a pull's. The original is never moved or written.
   */
  const importFile = (file: string, store: StoreRoot, options: ImportOptions = {}) =>
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

  return {
    importFile: (file, store, options) => importFile(file, absoluteStore(store), options),
    pull: (ref, store, options) => pull(ref, absoluteStore(store), options),
    findInstalled: (ref, store) => findInstalled(ref, absoluteStore(store)),
    listInstalled: (store) => listInstalled(absoluteStore(store)),
    verify: (store, ref) => verify(absoluteStore(store), ref),
    remove: (ref, store) => remove(ref, absoluteStore(store))
  }
}

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
const pruneEmptyDirs = async (root: string, removed: ReadonlyArray<string>) => {
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

/** The live downloader over the configured hub; a pull reuses bytes the ModelStore finds on this machine. */
export const layer: Layer.Layer<ModelDownloader, never, Config | ModelStoreTag> = Layer.effect(
  ModelDownloader,
  Effect.gen(function*() {
    const config = yield* Config
    const modelStore = yield* ModelStoreTag
    return make(config.hub, { existingBlob: modelStore.findBlob })
  })
)

/**
 * The live ModelDownloader: the orchestration of a pull. Resolve the reference on the hub (one listing, one
 * commit), ask the store whether the bytes are already there (in place, or in any store on the machine by
 * sha256), take the file's lock, transfer what is missing, record the manifest. Touches only
 * `model_directory` and the hub configured in `[hub]` / HF_ENDPOINT. The parts, each one job:
 *
 *   hubClient.ts               @huggingface/hub (loaded with `import()` on the first pull), typed errors
 *   retryPolicy.ts             when a hub call is tried again (an Effect Schedule)
 *   transfer.ts                the bytes of one file into `.partial`, verified, renamed into place
 *   ../store/fileLock.ts       one writer per store file (proper-lockfile)
 *   ../store/ownStoreWrite.ts  the store's write side: verify, remove, import, placing existing bytes
 *   ../store/ownStore.ts       manifests (Schema), paths, the one streaming-hash helper
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
 * Locks: `store/fileLock.ts` (proper-lockfile: a directory made by mkdir, refreshed while held). A lock
 * not refreshed for 30 s (its holder died, on this host or another) or whose pid is gone on this host is
 * taken over; a live one is waited for, interruptibly, polling on Effect's Clock.
 *
 * The token: sent only to the hub's origin. Our own `fetch` strips Authorization from any other origin
 * (@huggingface/hub sends it to a CloudFront CDN by itself), and no message, log or error carries it.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type { HubConfig } from "../../domain/ConfigSchema.js"
import {
  DownloadFailed,
  InsufficientDiskSpace,
  type LlmspellError,
  ModelNotFound
} from "../../domain/Errors.js"
import * as HubRef from "../../domain/HubRef.js"
import type { PullFileProgress, PullOptions, PullProgress, PullResult } from "../../domain/Types.js"
import { transferRate } from "../../domain/TransferRate.js"
import { EffectiveConfig } from "../../services/EffectiveConfig.js"
import { acquireFileLock, describeHolder } from "../store/fileLock.js"
import {
  absolute,
  lockPath,
  type Manifest,
  type ManifestFile,
  readManifests,
  storeError,
  storeRelative,
  toInstalled,
  trustedFile,
  writeManifest
} from "../store/ownStore.js"
import * as StoreWrite from "../store/ownStoreWrite.js"
import { nodeFileSystem, storeIoError } from "../store/storeFs.js"
import {
  absoluteStore,
  freeBytes,
  ggufProblem,
  placeExisting,
  pruneEmptyDirs,
  trustedInstalled,
  usableStore
} from "../store/ownStoreWrite.js"
import { MEANINGFUL_PROGRESS_BYTES, withRetries } from "./retryPolicy.js"
import { type AttemptHooks, transferFile, type TransferSettings } from "./transfer.js"
import { type CallContext, describeRaw, FetchProbe, type HubModule, hubCall } from "./hubClient.js"
import {
  type InstalledModel,
  ModelDownloader,
  type ModelDownloaderService,
  type StoreRoot
} from "../../services/ModelDownloader.js"
import { ModelStore as ModelStoreTag, type StoredBlob } from "../../services/ModelStore.js"
import { redactUrlsIn } from "../../domain/ServerUrl.js"

// ---------------------------------------------------------------------------------------------
// The downloader
// ---------------------------------------------------------------------------------------------

const PROGRESS_EVERY_BYTES = 1024 * 1024


/** Seams for tests that need failures a real disk will not give on demand. */
export interface DownloaderInternals {
  /** Writes chunks of a partial file at a position (default: `handle.writev`); a test may fail it with ENOSPC. */
  readonly writeChunks?: (handle: fs.FileHandle, chunks: Array<Uint8Array>, position: number) => Promise<unknown>
  /** The store's file I/O (default: Node's). */
  readonly fileSystem?: FileSystem.FileSystem | undefined
  /**
   * A file already on this machine with the given sha256 (any store: ours, Ollama's, the HF cache):
   * a pull links or copies it instead of downloading it. Default: none (always download).
   */
  readonly existingBlob?: (sha256: string, store: StoreRoot) => Effect.Effect<Option.Option<StoredBlob>, LlmspellError>
}

/** Builds the downloader over the hub settings. */
export const make = (hub: HubConfig, internals: DownloaderInternals = {}): ModelDownloaderService => {
  const withFs = Effect.provideService(FileSystem.FileSystem, internals.fileSystem ?? nodeFileSystem)
  const writeChunks = internals.writeChunks ?? ((handle, chunks, position) => handle.writev(chunks, position))
  const token = Option.getOrUndefined(Option.map(hub.token, Redacted.value))
  const hubUrl = hub.endpoint.replace(/\/+$/, "")
  const hubOrigin = new URL(hubUrl).origin
  // The token, and URLs as `redactUrl` shows them (a CDN redirect carries its signature in the query).
  const scrub = (text: string) => redactUrlsIn(token !== undefined && token.length > 0 ? text.split(token).join("<redacted>") : text)
  const stallTimeout = Duration.seconds(hub.stallTimeoutSeconds)
  let loaded: Promise<HubModule> | undefined
  const hubModule = Effect.tryPromise({
    try: () => (loaded ??= import("@huggingface/hub")),
    catch: (e) => new DownloadFailed({ reason: `cannot load @huggingface/hub: ${describeRaw(e)}` })
  })

  const pull: ModelDownloaderService["pull"] = (ref, store, options = {}) =>
    Stream.asyncPush<PullProgress, LlmspellError>(
      (emit) =>
        Effect.forkScoped(
          runPull(ref, store, options, (p) => void emit.single(p)).pipe(
            withFs,
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
  ): Effect.Effect<void, LlmspellError, FileSystem.FileSystem> =>
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
        const fileSystem = yield* FileSystem.FileSystem
        yield* Effect.forEach(plan, (p) =>
          fileSystem.remove(`${p.target}.partial`, { force: true }).pipe(
            Effect.mapError(storeIoError(store, "removing the partial download"))
          ), { discard: true })
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

  const transfer: TransferSettings = { hubUrl, hubOrigin, token, stallTimeout, writeChunks }
  const attempt = (
    lib: HubModule,
    ctx: CallContext,
    commit: string,
    file: HubRef.RepoFile,
    target: string,
    primary: boolean,
    hooks: AttemptHooks
  ) => transferFile(transfer, lib, ctx, commit, file, target, primary, hooks)

  return {
    importFile: (file, store, options) => withFs(StoreWrite.importFile(file, absoluteStore(store), options)),
    pull: (ref, store, options) => pull(ref, absoluteStore(store), options),
    findInstalled: (ref, store) => StoreWrite.findInstalled(ref, absoluteStore(store)),
    listInstalled: (store) => StoreWrite.listInstalled(absoluteStore(store)),
    verify: (store, ref) => withFs(StoreWrite.verify(absoluteStore(store), ref)),
    remove: (ref, store) => withFs(StoreWrite.remove(ref, absoluteStore(store)))
  }
}

/** The live downloader over the configured hub; a pull reuses bytes the ModelStore finds on this machine. */
export const layer: Layer.Layer<ModelDownloader, never, EffectiveConfig | ModelStoreTag> = Layer.effect(
  ModelDownloader,
  Effect.gen(function*() {
    const config = yield* EffectiveConfig
    const modelStore = yield* ModelStoreTag
    return make(config.hub, { existingBlob: modelStore.findBlob })
  })
)

/**
 * The live ModelDownloader: the orchestration of a pull. Resolve the reference on the hub (one listing, one
 * commit), ask the store whether the bytes are already there (in place, or in any store on the machine by
 * sha256, through the ModelStore), take the file's lock, transfer what is missing, record the manifest.
 * Touches only `model_directory` and the hub configured in `[hub]` / HF_ENDPOINT. The parts, each one job:
 *
 *   hubClient.ts               @huggingface/hub (loaded with `import()` on the first pull), typed errors
 *   retryPolicy.ts             when a hub call is tried again (an Effect Schedule)
 *   pullPlan.ts                the listing, what is in place, bytes reused from other stores, the manifest
 *   transfer.ts                the bytes of one file into `.partial`, verified, renamed into place
 *   pullProgress.ts            the progress events
 *   ../store/fileLock.ts       one writer per store file (proper-lockfile)
 *   ../store/ownStore*.ts      the store's manifests, paths, hashing and write side (the store's code; the
 *                              downloader depends on it, never the reverse)
 *
 * Store layout: see `../store/ownStore.ts`. A manifest's `<slug>` is the canonical name (`org/repo:Q4_K_M`,
 * `org/repo/file.gguf`) with `/` → `--` and `:` → `__`, valid on every OS. A lock's slug is the store path of
 * the model's first file: locks are per file, not per name, so `org/repo:Q8_0` and `org/repo/x-Q8_0.gguf`
 * (one file, two names) share one lock; `remove` keeps files another manifest still lists.
 *
 * Integrity: sha256 is computed while the bytes stream. On resume the existing `.partial` prefix is
 * re-hashed once from disk (reading is several times faster than the network, and it keeps the store free
 * of persisted hash states that could go stale). A complete file whose hash differs from the hub's
 * `lfs.oid` is deleted and the pull fails with ChecksumMismatch; only a verified file is renamed into
 * place, so a file that a running model has mmap'd is never truncated (that would SIGBUS it). A file the hub
 * gave no sha256 for is "unverified": its hash computed while downloading is recorded for `verify`. Every
 * `.gguf` must pass the GGUF header check before it gets its name. A pull trusts a file in place only when its
 * size and mtime are those recorded (or its bytes re-hash to the recorded sha256). A full disk is DiskFull
 * and keeps the `.partial` for a resume (transfer.ts).
 *
 * Locks: `store/fileLock.ts` (proper-lockfile: a directory made by mkdir, refreshed while held). A lock
 * not refreshed for 30 s (its holder died, on this host or another) or whose pid is gone on this host is
 * taken over; a live one is waited for, interruptibly, polling on Effect's Clock.
 *
 * The token: sent only to the hub's origin. Our own `fetch` strips Authorization from any other origin
 * (@huggingface/hub sends it to a CloudFront CDN by itself), and no message, log or error carries it.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as os from "node:os"
import type { HubConfig } from "../../domain/ConfigSchema.js"
import { DownloadFailed, InsufficientDiskSpace, ModelNotFound } from "../../domain/Errors.js"
import * as Gguf from "../../domain/GgufReader.js"
import * as HubRef from "../../domain/HubRef.js"
import { factsOfFile } from "../../domain/ModelFacts.js"
import type { PullOptions, PullPlan, PullProgress } from "../../domain/Types.js"
import { estimateRamBytes } from "../../domain/Catalog.js"
import { formatBytes } from "../../domain/Format.js"
import { EffectiveConfig } from "../../services/EffectiveConfig.js"
import { ModelDownloader, type ModelDownloaderService, type PullError } from "../../services/ModelDownloader.js"
import { ModelStore, type ModelStoreService, type StoreRoot } from "../../services/ModelStore.js"
import { acquireFileLock, describeHolder } from "../store/fileLock.js"
import { lockPath, type Manifest, peekFacts, storeError, storeRelative, toInstalled, writeManifest } from "../store/ownStore.js"
import { absoluteStore, pruneEmptyDirs, trustedInstalled, usableStore } from "../store/ownStoreWrite.js"
import { ScanFs } from "../store/scanFs.js"
import { freeBytes, storeIoError } from "../store/storeFs.js"
import { type CallContext, describeRaw, FetchProbe, hubCall, type HubModule } from "./hubClient.js"
import { DownloadProgress, doneEvent, type PullBase } from "./pullProgress.js"
import { manifestOf, planFiles, resolveListing, reuseExisting } from "./pullPlan.js"
import { MEANINGFUL_PROGRESS_BYTES, withRetries } from "./retryPolicy.js"
import { redactUrlsIn } from "../../domain/ServerUrl.js"
import { hubBlob, transferFile, type TransferSettings, type WriteChunks } from "./transfer.js"

/** Seams for tests that need failures a real disk will not give on demand. */
export interface DownloaderInternals {
  /** One write of chunks of a partial file at a position (default: `handle.writev`); a test may fail it with ENOSPC. */
  readonly writeChunks?: WriteChunks | undefined
}

/** How much of a file a dry run reads for its GGUF header, in turn, until the header is whole. */
const HEADER_READS = [1024 * 1024, 8 * 1024 * 1024, 32 * 1024 * 1024]

/** Builds the downloader over the hub settings, writing into the store its context provides. */
export const make = (
  hub: HubConfig,
  internals: DownloaderInternals = {}
): Effect.Effect<ModelDownloaderService, never, ModelStore | FileSystem.FileSystem | ScanFs> =>
  Effect.gen(function*() {
    const modelStore = yield* ModelStore
    const fileSystem = yield* FileSystem.FileSystem
    const scanFs = yield* ScanFs
    const provide = <A, E>(effect: Effect.Effect<A, E, FileSystem.FileSystem | ScanFs>): Effect.Effect<A, E> =>
      effect.pipe(Effect.provideService(FileSystem.FileSystem, fileSystem), Effect.provideService(ScanFs, scanFs))
    const token = Option.getOrUndefined(Option.map(hub.token, Redacted.value))
    const hubUrl = hub.endpoint.replace(/\/+$/, "")
    const hubOrigin = new URL(hubUrl).origin
    // The token, and URLs as `redactUrl` shows them (a CDN redirect carries its signature in the query).
    const scrub = (text: string) => redactUrlsIn(token !== undefined && token.length > 0 ? text.split(token).join("<redacted>") : text)
    const stallTimeout = Duration.seconds(hub.stallTimeoutSeconds)
    const transfer: TransferSettings = {
      hubUrl,
      hubOrigin,
      token,
      stallTimeout,
      writeChunks: internals.writeChunks ?? ((handle, chunks, position) => handle.writev(chunks, position))
    }
    let loaded: Promise<HubModule> | undefined
    const hubModule = Effect.tryPromise({
      try: () => (loaded ??= import("@huggingface/hub")),
      catch: (e) => new DownloadFailed({ reason: `cannot load @huggingface/hub: ${describeRaw(e)}` })
    })

    const pull: ModelDownloaderService["pull"] = (ref, given, options = {}) =>
      Stream.asyncPush<PullProgress, PullError>(
        (emit) =>
          Effect.forkScoped(
            provide(runPull(modelStore, ref, absoluteStore(given), options, (p) => void emit.single(p))).pipe(
              Effect.exit,
              Effect.flatMap((exit) => Effect.sync(() => (Exit.isSuccess(exit) ? emit.end() : emit.halt(exit.cause))))
            )
          ),
        { bufferSize: 4096, strategy: "sliding" }
      )

    const runPull = (
      store: ModelStoreService,
      input: string,
      root: StoreRoot,
      options: PullOptions,
      emit: (p: PullProgress) => void
    ): Effect.Effect<void, PullError, FileSystem.FileSystem | ScanFs> =>
      Effect.suspend(() => {
        // Store files this pull may write: their folders are pruned when it fails, so no empty repo folder stays.
        const targets: Array<string> = []
        let model = input
        const base = (): PullBase => ({ model, backend: "gguf", instance: root.instance })
        const presentAlready = (m: Manifest) => {
          const unverified = m.files.filter((f) => f.hubSha256 === false).map((f) => f.repoPath)
          emit(doneEvent(base(), root, toInstalled(root, m), {
            downloadedBytes: 0,
            alreadyPresent: true,
            note: unverified.length === 0 ? undefined : `unverified: the hub gave no sha256 for ${unverified.join(", ")}`
          }))
        }
        return Effect.gen(function*() {
          emit({ ...base(), phase: "resolving", files: [], completedBytes: 0 })
          const ref = yield* Either.match(HubRef.parse(input, options.quantization), { onLeft: Effect.fail, onRight: Effect.succeed })
          const lookupName = ref.kind === "repo" && ref.alias === undefined && options.quantization === undefined
            ? input
            : HubRef.canonicalName(ref)
          yield* usableStore(root, false)
          if (!options.force) {
            const present = yield* trustedInstalled(ref.alias !== undefined ? HubRef.canonicalName(ref) : lookupName, root)
            if (Option.isSome(present)) return presentAlready(present.value)
          }
          // a dry run writes nothing, not even the probe of a writable store
          if (options.dryRun !== true) yield* usableStore(root, true)
          if (hub.offline) {
            return yield* new ModelNotFound({
              model: input,
              backend: "gguf",
              instance: root.instance,
              detail: "it is not in the store and the hub is offline (HF_HUB_OFFLINE / hub.offline)"
            })
          }

          const ctx: CallContext = { repo: ref.repo, tokenProvided: token !== undefined, scrub, stallTimeout }
          const lib = yield* hubModule
          const listing = yield* resolveListing(
            lib,
            ctx,
            { hubUrl, hubOrigin, token },
            (message) => Effect.sync(() => emit({ ...base(), phase: "resolving", files: [], completedBytes: 0, message })),
            { maxRetries: hub.maxRetries, hubUrl, failFastWhenUnreachable: true }
          )
          const selected = yield* Either.match(HubRef.select(ref, listing.files), { onLeft: Effect.fail, onRight: Effect.succeed })
          for (const file of selected.group.files) {
            const bad = HubRef.validatePath(file.path)
            if (bad !== undefined) {
              return yield* new DownloadFailed({ file: file.path, reason: `refusing an unsafe file name from the hub: ${bad}` })
            }
          }
          model = selected.name

          // What the pull needs, before a byte is written: a dry run stops here with it; a real pull
          // says when the model will not fit in memory (the disk is checked below, against the
          // bytes still to download) and goes on.
          const needs = yield* pullPlanOf(root, selected.group.files, selected.group.quantization)
          if (options.dryRun === true) {
            const header = yield* remoteHeader(lib, ctx, listing.commit, selected.group.files[0]!)
            const planned: PullPlan = { ...needs, ...(header !== undefined ? { header } : {}) }
            emit({
              ...base(),
              phase: "done",
              files: [],
              completedBytes: 0,
              totalBytes: needs.totalBytes,
              result: {
                model: selected.name,
                backend: "gguf",
                instance: root.instance,
                alreadyPresent: false,
                sizeBytes: needs.totalBytes,
                files: needs.files.map((f) => f.path),
                downloadedBytes: 0,
                plan: planned
              }
            })
            return
          }
          if (!needs.memory.fits) {
            emit({
              ...base(),
              phase: "resolving",
              files: [],
              completedBytes: 0,
              message: `warning: ${selected.name} needs about ${formatBytes(needs.memory.neededBytes)} of memory to run; ` +
                `this machine has ${formatBytes(needs.memory.availableBytes)} available of ${formatBytes(needs.memory.totalBytes)}`
            })
          }

          // One writer per store file at a time, across processes and whatever name the model was asked by.
          // The wait is interruptible: Ctrl-C while another pull holds the lock ends at once and leaves nothing.
          yield* acquireFileLock(lockPath(root, storeRelative(ref.repo, selected.group.files[0]!.path)), {
            onWait: (holder) =>
              Effect.sync(() =>
                emit({ ...base(), phase: "waiting", files: [], completedBytes: 0, message: `on another pull of ${model} (${describeHolder(holder)})` })
              )
          }).pipe(Effect.mapError((e) => storeError(root, "locking", e)))

          if (!options.force) {
            const existing = yield* trustedInstalled(selected.name, root)
            if (Option.isSome(existing)) return presentAlready(existing.value) // another pull finished it while we waited
          }

          const plan = yield* planFiles(root, ref.repo, selected.group.files, options.force === true)
          targets.push(...plan.map((p) => p.target))
          const reused = yield* reuseExisting(store, root, plan, options)
          if (options.force) {
            yield* Effect.forEach(plan, (p) =>
              fileSystem.remove(`${p.target}.partial`, { force: true }).pipe(
                Effect.mapError(storeIoError(root, "removing the partial download"))
              ), { discard: true })
          }

          const needed = plan.reduce((n, p, i) => n + (p.keep || reused.has(i) ? 0 : p.file.size - p.partialSize), 0)
          const free = yield* freeBytes(root.directory)
          if (needed > free) {
            return yield* new InsufficientDiskSpace({ directory: root.directory, neededBytes: needed, availableBytes: free })
          }

          const progress = new DownloadProgress(base, plan, reused, emit)
          progress.report("downloading")
          const computed = new Map<number, string>()
          const downloadOne = (index: number) => {
            const p = plan[index]!
            let bestOffset = p.partialSize
            return withRetries(
              () =>
                transferFile(transfer, lib, { ...ctx, file: p.file.path }, listing.commit, p.file, p.target, index === 0, {
                  onBytes: (n, offset) => progress.bytes(index, n, offset),
                  onRestart: () => progress.restart(index),
                  madeProgress: (offset) => {
                    // A server dropping every connection after a byte must not reset the failure count forever.
                    const better = offset >= Math.min(p.file.size, bestOffset + MEANINGFUL_PROGRESS_BYTES)
                    bestOffset = Math.max(bestOffset, offset)
                    return better
                  },
                  onVerifying: () => progress.verifying(index, p.file.path)
                }).pipe(provide),
              (message) => Effect.sync(() => progress.report("downloading", message)),
              { maxRetries: hub.maxRetries, hubUrl, file: p.file.path }
            ).pipe(Effect.tap((sha256) =>
              Effect.sync(() => {
                computed.set(index, sha256)
                progress.done(index)
              })
            ))
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
          progress.report("verifying", `${verdict}; writing the manifest`)

          const manifest = yield* manifestOf({
            name: selected.name,
            alias: ref.kind === "repo" ? ref.alias : undefined,
            repo: ref.repo,
            commit: listing.commit,
            quantization: selected.group.quantization,
            facts: yield* peekFacts(reused.get(0)?.external ?? plan[0]!.target, plan[0]!.file.path),
            plan,
            reused,
            computed
          })
          yield* writeManifest(root, manifest)
          emit(doneEvent(base(), root, toInstalled(root, manifest), {
            downloadedBytes: progress.downloadedBytes,
            alreadyPresent: false,
            note: unverified.length === 0 ? undefined : verdict,
            satisfiedFrom: reused.size > 0 && progress.downloadedBytes === 0 ? [...reused.values()][0]!.store : undefined
          }))
        }).pipe(
          Effect.scoped,
          Effect.onExit((exit) => Exit.isSuccess(exit) || targets.length === 0 ? Effect.void : pruneEmptyDirs(root.directory, targets))
        )
      })

    /**
     * The GGUF header of a file on the hub, read with ranged requests of growing size (1, 8, 32 MiB:
     * a header is mostly its tokenizer, a few MiB for a 150k vocabulary); undefined when it cannot be
     * read: a dry run still answers from the listing.
     */
    const remoteHeader = (lib: HubModule, ctx: CallContext, commit: string, file: HubRef.RepoFile) =>
      Effect.gen(function*() {
        const probe = new FetchProbe(hubOrigin)
        const blob = yield* hubBlob({ hubUrl, token }, lib, { ...ctx, file: file.path }, probe, commit, file.path)
        if (blob === null) return undefined
        let bytesRead = 0
        for (const limit of HEADER_READS) {
          const length = Math.min(limit, file.size)
          const bytes = new Uint8Array(yield* hubCall({ ...ctx, file: file.path }, probe, "read the header", () => blob.slice(0, length).arrayBuffer()))
          bytesRead += bytes.length
          const parsed = Gguf.parseGguf(bytes, file.size, { materializeArraysUpTo: 0 })
          if (parsed._tag === "Ok") {
            const facts = factsOfFile(parsed.file, file.path.split("/").at(-1))
            const contextLength = Gguf.metadataNumber(parsed.file, `${parsed.file.architecture}.context_length`)
            return {
              architecture: parsed.file.architecture,
              ...(facts.quantization !== undefined ? { quantization: facts.quantization } : {}),
              ...(contextLength !== undefined ? { contextLength } : {}),
              ...(parsed.file.tensors.length > 0 ? { parameters: Gguf.parameterCount(parsed.file) } : {}),
              bytesRead
            }
          }
          if (parsed._tag !== "NeedMore" || length >= file.size) return undefined
        }
        return undefined
      }).pipe(Effect.orElseSucceed(() => undefined))

    /** The files' sizes (from the listing), the store disk's free space, the memory the model needs against this machine's. */
    const pullPlanOf = (root: StoreRoot, files: ReadonlyArray<HubRef.RepoFile>, quantization: string | undefined) =>
      Effect.map(freeBytes(root.directory), (free): PullPlan => {
        const totalBytes = files.reduce((n, f) => n + f.size, 0)
        const neededMemory = estimateRamBytes(totalBytes)
        // os.freemem() is MemAvailable on Linux (the page cache counts as free), as `model available` reads it
        const availableMemory = os.freemem()
        return {
          files: files.map((f) => ({ path: f.path, sizeBytes: f.size })),
          totalBytes,
          ...(quantization !== undefined ? { quantization } : {}),
          disk: { directory: root.directory, freeBytes: free, fits: totalBytes <= free },
          memory: { neededBytes: neededMemory, totalBytes: os.totalmem(), availableBytes: availableMemory, fits: neededMemory <= availableMemory }
        }
      })

    return { pull }
  })

/** The live downloader over the configured hub; it writes into the ModelStore's directory and reuses bytes the store finds. */
export const layer: Layer.Layer<ModelDownloader, never, EffectiveConfig | ModelStore | FileSystem.FileSystem | ScanFs> = Layer.effect(
  ModelDownloader,
  Effect.flatMap(EffectiveConfig, (config) => make(config.hub))
)

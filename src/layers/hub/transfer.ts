/**
 * The byte transfer of one file from the hub into the store's write path: resume from `<file>.partial`
 * (its prefix re-hashed once), stream the body with sha256 computed on the way, a stall watchdog on
 * Effect's Clock, then the checks before the file gets its name (the hub's sha256, the GGUF header) and the
 * rename() into place, so a store path only ever holds verified bytes. One attempt; retries are the
 * caller's (retryPolicy.ts).
 *
 * A full disk (ENOSPC, at any write) is DiskFull, never retried: the `.partial` keeps every byte written
 * before it (writes are sequential and a short write is completed or fails), so after space is freed the
 * same pull resumes from it instead of downloading those bytes again. Nothing else lands: the file gets
 * its name only after its sha256 and header checks.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { createHash } from "node:crypto"
// node:fs for the byte loop's file handle (one write per MiB, no Effect per chunk) and its open flags
import { constants as fsConstants } from "node:fs"
import * as nodeFs from "node:fs/promises"
import * as path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import {
  ChecksumMismatch,
  type DiskFull,
  DownloadFailed,
  type HubAuthRequired,
  InvalidModelFile,
  ModelNotFound
} from "../../domain/Errors.js"
import type * as HubRef from "../../domain/HubRef.js"
import { makeDirectories } from "../store/ensureDirectory.js"
import { hashInto } from "../store/ownStore.js"
import { ggufProblem } from "../store/ownStoreWrite.js"
import { ScanFs } from "../store/scanFs.js"
import { diskFull, osCode } from "../store/storeFs.js"
import { type CallContext, classify, FetchProbe, type HubModule, hubCall } from "./hubClient.js"

/** What one transfer can end with besides a Retryable. */
export type TransferError = ChecksumMismatch | DownloadFailed | InvalidModelFile | ModelNotFound | DiskFull | HubAuthRequired
import { Retryable } from "./retryPolicy.js"

/** Bytes gathered before one write to the partial. */
const WRITE_BATCH = 1024 * 1024

/** What every transfer of one downloader shares. */
export interface TransferSettings {
  readonly hubUrl: string
  readonly hubOrigin: string
  readonly token: string | undefined
  readonly stallTimeout: Duration.Duration
  /** One write of chunks of a partial file at a position, as `writev` (a test may fail it with ENOSPC, or write short). */
  readonly writeChunks: WriteChunks
}

/** One positional write of chunks; may write fewer bytes than given (the caller writes the rest). */
export type WriteChunks = (
  handle: nodeFs.FileHandle,
  chunks: Array<Uint8Array>,
  position: number
) => Promise<{ readonly bytesWritten: number }>

/** Writes every byte of `chunks` at `position`, completing short writes. */
const writeAll = async (write: WriteChunks, handle: nodeFs.FileHandle, chunks: Array<Uint8Array>, position: number) => {
  let pending = chunks
  let at = position
  while (pending.length > 0) {
    const { bytesWritten } = await write(handle, pending, at)
    if (bytesWritten <= 0) throw Object.assign(new Error(`wrote nothing at byte ${at}`), { code: "EIO" })
    at += bytesWritten
    let skip = bytesWritten
    const rest: Array<Uint8Array> = []
    for (const chunk of pending) {
      if (skip >= chunk.length) {
        skip -= chunk.length
        continue
      }
      rest.push(skip > 0 ? chunk.subarray(skip) : chunk)
      skip = 0
    }
    pending = rest
  }
}

// The partial is never written through a link (O_NOFOLLOW): a `.partial` swapped for a link to a file
// elsewhere must not make a pull write outside the store.
const OPEN_NEW = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW
const OPEN_RESUME = fsConstants.O_RDWR | fsConstants.O_NOFOLLOW

export interface AttemptHooks {
  readonly onBytes: (n: number, offset: number) => void
  readonly onRestart: () => void
  /** Records the offset reached; true when it is further than any attempt before. */
  readonly madeProgress: (offset: number) => boolean
  readonly onVerifying: () => void
}

/** A file's blob on the hub at a commit, through the call's probe (null: not in the repo); nothing is read yet. */
export const hubBlob = (
  settings: Pick<TransferSettings, "hubUrl" | "token">,
  lib: HubModule,
  ctx: CallContext,
  probe: FetchProbe,
  commit: string,
  filePath: string
) =>
  hubCall(ctx, probe, "downloadFile", () =>
    lib.downloadFile({
      repo: ctx.repo,
      path: filePath,
      revision: commit,
      hubUrl: settings.hubUrl,
      fetch: probe.fetch,
      xet: false,
      ...(settings.token !== undefined ? { accessToken: settings.token } : {})
    }))

/** One attempt at one file: resume from the partial, stream, hash, verify, rename into place. */
export const transferFile = (
  settings: TransferSettings,
  lib: HubModule,
  ctx: CallContext,
  commit: string,
  file: HubRef.RepoFile,
  target: string,
  primary: boolean,
  hooks: AttemptHooks
): Effect.Effect<string, TransferError | Retryable, FileSystem.FileSystem | ScanFs> =>
  Effect.gen(function*() {
    const { hubOrigin, stallTimeout, writeChunks } = settings
    const fileSystem = yield* FileSystem.FileSystem
    const scanFs = yield* ScanFs
    const partial = `${target}.partial`
    const probe = new FetchProbe(hubOrigin)
    yield* Effect.addFinalizer(() => Effect.sync(() => probe.controller.abort()))
    const fsError = (what: string) => (e: unknown) =>
      new DownloadFailed({ file: file.path, reason: `${what} ${partial}: ${(e as Error)?.message ?? String(e)}` })
    const orDiskFull = (what: string) => (e: unknown): Effect.Effect<never, DiskFull | DownloadFailed, FileSystem.FileSystem> =>
      osCode(e) === "ENOSPC" ? diskFull(partial, file.size) : Effect.fail(fsError(what)(e))

    yield* makeDirectories(path.dirname(target)).pipe(Effect.catchAll(orDiskFull("creating the folder of")))
    const partialStat = yield* scanFs.lstat(partial).pipe(Effect.option)
    // Opening a FIFO (or a device) in its place would block forever, out of reach of Ctrl-C; a link is never written through.
    if (partialStat._tag === "Some" && partialStat.value.kind !== "file") {
      return yield* new DownloadFailed({
        file: file.path,
        reason: `${partial} is not a regular file`,
        suggestion: `remove it, then run the same pull again`
      })
    }
    let offset = partialStat._tag === "Some" ? partialStat.value.size : 0
    if (offset > file.size) {
      yield* fileSystem.remove(partial, { force: true }).pipe(Effect.mapError(fsError("removing")))
      offset = 0
    }
    let hash = createHash("sha256")
    if (offset > 0) {
      // Resume: the prefix on disk is hashed once more (see the header).
      const prefix = yield* Effect.tryPromise({ try: () => hashInto(partial, hash, { length: offset }), catch: fsError("reading") })
      offset = prefix
    }
    hooks.onBytes(0, offset)
    let handle: nodeFs.FileHandle | undefined

    if (offset < file.size) {
      const blob = yield* hubBlob(settings, lib, ctx, probe, commit, file.path)
      if (blob === null) {
        return yield* new ModelNotFound({ model: `${ctx.repo}/${file.path}`, backend: "gguf", detail: "the file is not in the repo" })
      }
      // The partial is opened only once the hub said yes, so refusals leave nothing behind.
      const output = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => nodeFs.open(partial, offset > 0 ? OPEN_RESUME : OPEN_NEW, 0o644), catch: (e) => e }).pipe(
          Effect.catchAll(orDiskFull("opening"))
        ),
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
        // The write in flight while the next chunk is read. Its failure is caught as it happens (a
        // rejection nobody awaits yet would be an unhandled rejection: the process dies with ENOSPC's
        // stack) and rethrown by the next `settle`.
        let writing: Promise<void> = Promise.resolve()
        let writeFailure: { readonly error: unknown } | undefined
        const startWrite = (chunks: Array<Uint8Array>, at: number) => {
          writing = writeAll(writeChunks, output, chunks, at).catch((error: unknown) => {
            writeFailure ??= { error }
          })
        }
        const settle = async () => {
          await writing
          if (writeFailure !== undefined) throw writeFailure.error
        }
        const flush = async () => {
          await settle()
          if (pendingBytes === 0) return
          const chunks = pending
          const at = position - pendingBytes
          pending = []
          pendingBytes = 0
          startWrite(chunks, at)
          await settle()
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
              await settle().catch(() => undefined)
              await nodeFs.rm(partial, { force: true })
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
              await settle()
              const chunks = pending
              const at = position - pendingBytes
              pending = []
              pendingBytes = 0
              startWrite(chunks, at)
            }
          }
        } finally {
          // keep every byte received (an abort, a dropped connection); a write that failed stays the error
          try {
            await flush()
          } finally {
            void reader.cancel().catch(() => undefined)
          }
        }
        if (position < file.size) {
          throw new Retryable({ reason: `the connection ended at byte ${position} of ${file.size}` })
        }
      }
      const streamed = Effect.async<void, TransferError | Retryable>((resume) => {
        const running = loop()
        running.then(() => resume(Effect.void), (e) =>
          resume(
            osCode(e) === "ENOSPC"
              ? Effect.provideService(diskFull(partial, file.size), FileSystem.FileSystem, fileSystem) // retrying cannot help: keep the partial for a resume
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
      yield* Effect.ignore(fileSystem.remove(partial, { force: true }))
      return yield* new ChecksumMismatch({ file: file.path, expected: file.sha256, actual })
    }
    const open = handle
    if (open !== undefined) yield* Effect.tryPromise({ try: () => open.close(), catch: (e) => e }).pipe(Effect.catchAll(orDiskFull("closing")))
    // A `.gguf` that is not one never gets its name (llama.cpp must never see it; the hub may serve anything).
    if (/\.gguf$/i.test(file.path)) {
      const problem = yield* ggufProblem(partial, primary)
      if (problem !== undefined) {
        yield* Effect.ignore(fileSystem.remove(partial, { force: true }))
        return yield* new InvalidModelFile({ path: `${ctx.repo}/${file.path}`, reason: `the hub's file ${problem}; it was discarded` })
      }
    }
    // Only now does the file get its real name; rename() replaces an older copy without truncating it.
    yield* fileSystem.rename(partial, target).pipe(Effect.mapError(fsError("renaming")))
    return actual
  }).pipe(Effect.scoped)

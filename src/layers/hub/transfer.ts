/**
 * The byte transfer of one file from the hub into the store's write path: resume from `<file>.partial`
 * (its prefix re-hashed once), stream the body with sha256 computed on the way, a stall watchdog on
 * Effect's Clock, then the checks before the file gets its name (the hub's sha256, the GGUF header) and the
 * rename() into place, so a store path only ever holds verified bytes. One attempt; retries are the
 * caller's (retryPolicy.ts).
 */
import { createHash } from "node:crypto"
import type * as fs from "node:fs/promises"
import * as nodeFs from "node:fs/promises"
import * as path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { ChecksumMismatch, DownloadFailed, InvalidModelFile, type LlmspellError, ModelNotFound } from "../../domain/Errors.js"
import type * as HubRef from "../../domain/HubRef.js"
import { ensureDirectory } from "../store/ensureDirectory.js"
import { type CallContext, classify, FetchProbe, type HubModule, hubCall } from "./hubClient.js"
import { hashInto } from "../store/ownStore.js"
import { diskFull, ggufProblem } from "../store/ownStoreWrite.js"
import { Retryable } from "./retryPolicy.js"

/** Bytes gathered before one write to the partial. */
const WRITE_BATCH = 1024 * 1024

/** What every transfer of one downloader shares. */
export interface TransferSettings {
  readonly hubUrl: string
  readonly hubOrigin: string
  readonly token: string | undefined
  readonly stallTimeout: Duration.Duration
  /** Writes chunks of a partial file at a position (a test may fail it with ENOSPC). */
  readonly writeChunks: (handle: fs.FileHandle, chunks: Array<Uint8Array>, position: number) => Promise<unknown>
}

export interface AttemptHooks {
  readonly onBytes: (n: number, offset: number) => void
  readonly onRestart: () => void
  /** Records the offset reached; true when it is further than any attempt before. */
  readonly madeProgress: (offset: number) => boolean
  readonly onVerifying: () => void
}

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
): Effect.Effect<string, LlmspellError | Retryable> =>
  Effect.gen(function*() {
    const { hubOrigin, hubUrl, stallTimeout, token, writeChunks } = settings
    const partial = `${target}.partial`
    const probe = new FetchProbe(hubOrigin)
    yield* Effect.addFinalizer(() => Effect.sync(() => probe.controller.abort()))
    const fsError = (what: string) => (e: unknown) =>
      new DownloadFailed({ file: file.path, reason: `${what} ${partial}: ${(e as Error)?.message ?? String(e)}` })

    yield* Effect.tryPromise({ try: () => ensureDirectory(path.dirname(target)), catch: fsError("creating the folder of") })
    const partialStat = yield* Effect.promise(() => nodeFs.lstat(partial).catch(() => undefined))
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
      yield* Effect.tryPromise({ try: () => nodeFs.rm(partial, { force: true }), catch: fsError("removing") })
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
        Effect.tryPromise({ try: () => nodeFs.open(partial, offset > 0 ? "r+" : "w"), catch: fsError("opening") }),
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
      yield* Effect.promise(() => nodeFs.rm(partial, { force: true }).catch(() => undefined))
      return yield* new ChecksumMismatch({ file: file.path, expected: file.sha256, actual })
    }
    const open = handle
    if (open !== undefined) yield* Effect.tryPromise({ try: () => open.close(), catch: fsError("closing") })
    // A `.gguf` that is not one never gets its name (llama.cpp must never see it; the hub may serve anything).
    if (/\.gguf$/i.test(file.path)) {
      const problem = yield* ggufProblem(partial, primary)
      if (problem !== undefined) {
        yield* Effect.promise(() => nodeFs.rm(partial, { force: true }).catch(() => undefined))
        return yield* new InvalidModelFile({ path: `${ctx.repo}/${file.path}`, reason: `the hub's file ${problem}; it was discarded` })
      }
    }
    // Only now does the file get its real name; rename() replaces an older copy without truncating it.
    yield* Effect.tryPromise({ try: () => nodeFs.rename(partial, target), catch: fsError("renaming") })
    return actual
  }).pipe(Effect.scoped)

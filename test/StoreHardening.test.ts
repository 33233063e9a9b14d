/**
 * The model store under the faults of issue 9: `remove` of an alias, per-file locks (interruptible waits,
 * remove refusing during a pull), unusable model directories, what a pull trusts, integrity without a hub
 * sha256 and of non-GGUF files, a full disk, long Retry-After, endless one-byte drops, unknown repos.
 * Real @huggingface/hub against the fake hub, a temp store, waits on the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { mkdir, readFile, stat, utimes, writeFile } from "node:fs/promises"
import { hostname } from "node:os"
import { isAbsolute, join, relative } from "node:path"
import { afterAll, beforeAll, beforeEach } from "vitest"
import { exitCodeFor } from "../src/domain/Failure.js"
import { slugOf } from "../src/domain/HubRef.js"
import { deterministicContent, type FakeHub, ggufContent, startFakeHub } from "./fixtures/fakeHub.js"
import {
  concurrentPulls,
  downloader,
  dropStore,
  pullAll,
  startPull,
  storeFiles,
  tempStore,
  writeLock
} from "./support/downloaderHarness.js"

const SIZE = 200_000
const q4 = ggufContent("store-q4", SIZE)
const q8 = ggufContent("store-q8", 80_000, 7)
const plain = ggufContent("store-plain", 30_000)
const random = deterministicContent("not-a-gguf")(0, 30_000).slice()
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
const QWEN = "bartowski/Qwen2.5-0.5B-Instruct-GGUF"

let hub: FakeHub

beforeAll(async () => {
  hub = await startFakeHub({ pageSize: 5 })
  await hub.addRepo({
    name: "org/model",
    files: [{ path: "model-Q4_K_M.gguf", content: q4 }, { path: "model-Q8_0.gguf", content: q8 }]
  })
  // The catalog alias qwen2.5:0.5b points at this repo name.
  await hub.addRepo({
    name: QWEN,
    files: [
      { path: "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf", content: ggufContent("qwen-q4", 40_000) },
      { path: "Qwen2.5-0.5B-Instruct-Q8_0.gguf", content: ggufContent("qwen-q8", 50_000, 7) }
    ]
  })
  // A plain git file (no LFS): the listing carries no sha256.
  await hub.addRepo({ name: "org/plain", files: [{ path: "plain-Q4_K_M.gguf", content: plain, lfs: false }] })
  await hub.addRepo({ name: "org/random", files: [{ path: "random-Q4_K_M.gguf", content: random }] })
})
afterAll(() => hub.close())
beforeEach(() => {
  hub.clearFaults()
  hub.resetStats()
})

const withStore = <A, E>(body: (store: Awaited<ReturnType<typeof tempStore>>) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(Effect.promise(tempStore), body, (s) => Effect.promise(() => dropStore(s)))

const contentRequests = () => hub.requests.filter((r) => r.server === "cdn" && r.range !== "bytes=0-0")
const spareProbe = { match: (r: { range: string | undefined }) => r.range !== "bytes=0-0" }
const withoutLocks = (files: ReadonlyArray<string>) => files.filter((f) => !f.startsWith("locks/"))

/** Holds the lock of a store file as another live pull (this process's pid) would. */
const holdLock = (directory: string, storeFile: string) =>
  Effect.promise(() =>
    writeLock(join(directory, "locks", `${slugOf(storeFile)}.lock`), { pid: process.pid, host: hostname(), startedAt: "x" })
  )

describe("remove names one model (item 1)", () => {
  it.effect("a catalog alias removes its default quantization only; the other one pulled under the alias stays", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        expect((yield* pullAll(dl, "qwen2.5:0.5b", store)).error).toBeUndefined()
        expect((yield* pullAll(dl, "qwen2.5:0.5b:Q8_0", store)).error).toBeUndefined()
        const removed = yield* dl.store.remove("qwen2.5:0.5b", store)
        expect(removed.model).toBe(`${QWEN}:Q4_K_M`)
        expect(removed.removedFiles).toEqual([join(store.directory, "hub", QWEN, "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf")])
        expect(removed.freedBytes).toBe(40_000)
        expect((yield* dl.store.list(store)).models.map((m) => m.name)).toEqual([`${QWEN}:Q8_0`])
      })
    ))
})

describe("locks are per store file and waiting on one is interruptible (items 2, 5, 6)", () => {
  it.effect("a pull of the file name waits on the lock of `org/model:Q8_0`'s file; interrupting it leaves only the holder's lock", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const { owner, text } = yield* holdLock(store.directory, "hub/org/model/model-Q8_0.gguf")
        const pull = yield* startPull(downloader(hub), "org/model/model-Q8_0.gguf", store)
        yield* pull.until((e) => e.phase === "waiting")
        const waiting = pull.events.find((e) => e.phase === "waiting")!
        expect(waiting.message).toMatch(/^on another pull of org\/model\/model-Q8_0\.gguf \(pid \d+ on /) // not "waiting waiting"
        // The clock is never advanced: the interruption must not wait for the lock poll, let alone for the holder.
        yield* Fiber.interrupt(pull.fiber)
        expect(yield* Effect.promise(() => readFile(owner, "utf8"))).toBe(text)
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual([relative(store.directory, owner)])
        expect(contentRequests()).toEqual([])
      })
    ))

  it.effect("two names of one file pulled at once, one with --force: one lock, one writer, a verified file", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ slow: { bytesPerSecond: 1_000_000 }, ...spareProbe })
        const both = yield* concurrentPulls([
          { dl: downloader(hub), ref: "org/model:Q4_K_M" },
          { dl: downloader(hub), ref: "org/model/model-Q4_K_M.gguf", options: { force: true } }
        ], store)
        expect(both.map((r) => r.error)).toEqual([undefined, undefined])
        // Whichever ran second waited for the first (the forced one downloads again, the other finds it present).
        const phases = both.map((r) => r.events.map((e) => e.phase))
        expect(phases.some((p) => p.includes("waiting"))).toBe(true)
        const file = join(store.directory, "hub/org/model/model-Q4_K_M.gguf")
        expect(sha(yield* Effect.promise(() => readFile(file)))).toBe(sha(q4))
        expect((yield* downloader(hub).store.verify(store)).ok).toBe(true)
        expect((yield* Effect.promise(() => storeFiles(store))).filter((f) => f.endsWith(".partial"))).toEqual([])
      })
    ))

  it.effect("remove refuses (ModelBusy) while a pull holds the file's lock, and removes once it is released", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        expect((yield* pullAll(dl, "org/model:Q8_0", store)).error).toBeUndefined()
        const { lock } = yield* holdLock(store.directory, "hub/org/model/model-Q8_0.gguf")
        const refused = yield* Effect.flip(dl.store.remove("org/model/model-Q8_0.gguf", store))
        expect(refused._tag).toBe("ModelBusy")
        expect(refused.message).toContain(`pid ${process.pid}`)
        expect((refused as { hint?: string }).hint).toContain("llmspell model remove org/model:Q8_0")
        expect(existsSync(join(store.directory, "hub/org/model/model-Q8_0.gguf"))).toBe(true)
        yield* Effect.promise(() => import("node:fs/promises").then((fs) => fs.rm(lock, { recursive: true })))
        const removed = yield* dl.store.remove("org/model:Q8_0", store)
        expect(removed.freedBytes).toBe(80_000)
        expect(withoutLocks(yield* Effect.promise(() => storeFiles(store)))).toEqual([])
      })
    ))
})

describe("an unusable model directory fails at once, naming it and the OS reason (item 3)", () => {
  it.effect("/proc/nope (where Node's mkdir -p spins forever), a file, and a path under a file", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const file = join(store.directory, "a-file")
        yield* Effect.promise(() => writeFile(file, "x"))
        for (
          const [directory, code] of [["/proc/nope", "ENOENT"], [file, "ENOTDIR"], [join(file, "sub"), "ENOTDIR"]] as const
        ) {
          const { error } = yield* pullAll(downloader(hub), "org/model:Q8_0", { directory, instance: "gguf" })
          expect(error?._tag).toBe("ModelStoreUnusable")
          expect(error?.message).toContain(directory)
          expect(error?.message).toContain(code)
          expect(exitCodeFor(error!)).toBe(1)
        }
        expect(hub.requests).toEqual([])
      })
    ))

  it.effect("a relative directory is reported absolute", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const rel = relative(process.cwd(), store.directory)
        const { error, events } = yield* pullAll(downloader(hub), "org/model:Q8_0", { directory: rel, instance: "gguf" })
        expect(error).toBeUndefined()
        const path = events.at(-1)!.result!.path!
        expect(isAbsolute(path)).toBe(true)
        expect(path).toBe(join(store.directory, "hub/org/model/model-Q8_0.gguf"))
      })
    ))
})

describe("a FIFO where the partial download goes (item 5)", () => {
  it.effect("is refused with a typed error instead of an open() that blocks forever", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const partial = join(store.directory, "hub/org/model/model-Q8_0.gguf.partial")
        yield* Effect.promise(() => mkdir(join(store.directory, "hub/org/model"), { recursive: true }))
        yield* Effect.promise(() => new Promise<void>((resolve, reject) =>
          execFile("mkfifo", [partial], (e) => (e ? reject(e) : resolve()))
        ))
        const { error } = yield* pullAll(downloader(hub), "org/model:Q8_0", store)
        expect(error?._tag).toBe("DownloadFailed")
        expect(error?.message).toContain(`${partial} is not a regular file`)
      })
    ))
})

describe("what a pull trusts (item 4)", () => {
  it.effect("a file whose bytes changed under the same size is fetched again; one merely touched is hashed once and kept", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        yield* pullAll(dl, "org/model:Q8_0", store)
        const file = join(store.directory, "hub/org/model/model-Q8_0.gguf")

        const later = new Date(Date.now() + 60_000)
        yield* Effect.promise(() => utimes(file, later, later))
        hub.resetStats()
        const touched = yield* pullAll(dl, "org/model:Q8_0", store)
        expect(touched.events.at(-1)!.result).toMatchObject({ alreadyPresent: true, downloadedBytes: 0 })
        expect(hub.requests).toEqual([])
        const manifest = JSON.parse(
          yield* Effect.promise(() => readFile(join(store.directory, "manifests", `${slugOf("org/model:Q8_0")}.json`), "utf8"))
        )
        expect(manifest.files[0].mtimeMs).toBe((yield* Effect.promise(() => stat(file))).mtimeMs)

        const bytes = yield* Effect.promise(() => readFile(file))
        bytes[bytes.length - 10] ^= 0xff
        yield* Effect.promise(() => writeFile(file, bytes))
        const even = new Date(Date.now() + 120_000)
        yield* Effect.promise(() => utimes(file, even, even))
        const repaired = yield* pullAll(dl, "org/model:Q8_0", store)
        expect(repaired.events.at(-1)!.result).toMatchObject({ alreadyPresent: false, downloadedBytes: 80_000 })
        expect(sha(yield* Effect.promise(() => readFile(file)))).toBe(sha(q8))
        expect((yield* dl.store.verify(store)).ok).toBe(true)
      })
    ))
})

describe("integrity (items 7, 22)", () => {
  it.effect("no sha256 from the hub: reported unverified, never 'verified'; the computed hash is recorded for verify", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        const { error, events } = yield* pullAll(dl, "org/plain", store)
        expect(error).toBeUndefined()
        expect(events.some((e) => e.message?.includes("verified against") || e.message?.includes("all files verified"))).toBe(false)
        const done = events.at(-1)!
        expect(done.message).toContain("unverified: the hub gave no sha256 for plain-Q4_K_M.gguf")
        expect(done.result?.verified).toBe(false)
        const [model] = (yield* dl.store.list(store)).models
        expect(model!.sha256).toBe(sha(plain))
        const verified = yield* dl.store.verify(store)
        expect(verified.ok).toBe(true)
        expect(verified.files.map((f) => [f.status, f.unverified, f.expectedFrom])).toEqual([["ok", true, "download"]])
        // Pulled again it is present, and still says it is unverified.
        const again = yield* pullAll(dl, "org/plain", store)
        expect(again.events.at(-1)!.result).toMatchObject({ alreadyPresent: true, verified: false })

        const withSha = yield* pullAll(dl, "org/model:Q8_0", store)
        expect(withSha.events.some((e) => e.message?.startsWith("all files verified against the hub's sha256"))).toBe(true)
        expect(withSha.events.at(-1)!.result?.verified).toBe(true)
      })
    ))

  it.effect("random bytes named .gguf: InvalidModelFile, nothing lands, no empty repo folder is left", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const { error } = yield* pullAll(downloader(hub), "org/random", store)
        expect(error?._tag).toBe("InvalidModelFile")
        expect(error?.message).toContain("org/random/random-Q4_K_M.gguf")
        expect(withoutLocks(yield* Effect.promise(() => storeFiles(store)))).toEqual([])
        expect(existsSync(join(store.directory, "hub/org/random"))).toBe(false)
        expect(existsSync(join(store.directory, "hub/org"))).toBe(false)
      })
    ))

  it.effect("a corrupt download (ChecksumMismatch) leaves no empty repo folder either", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ flipByte: { offset: 5_000 }, times: 1 })
        const { error } = yield* pullAll(downloader(hub), "org/model:Q8_0", store)
        expect(error?._tag).toBe("ChecksumMismatch")
        expect(existsSync(join(store.directory, "hub/org"))).toBe(false)
      })
    ))
})

describe("failures that retrying cannot fix, and retries that must end (item 8)", () => {
  it.effect("ENOSPC mid-download: DiskFull with the path, bytes needed and free; no retry; the partial is kept", () =>
    withStore((store) =>
      Effect.gen(function*() {
        let written = 0
        const dl = downloader(hub, {}, {
          writeChunks: async (handle, chunks, position) => {
            const bytes = chunks.reduce((n, c) => n + c.length, 0)
            if (written + bytes > 100_000) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" })
            written += bytes
            return handle.writev(chunks, position)
          }
        })
        const { error } = yield* pullAll(dl, "org/model:Q4_K_M", store)
        expect(error?._tag).toBe("DiskFull")
        const partial = join(store.directory, "hub/org/model/model-Q4_K_M.gguf.partial")
        expect(error).toMatchObject({ path: partial, neededBytes: SIZE - written })
        expect(typeof (error as { availableBytes?: unknown }).availableBytes).toBe("number")
        expect(contentRequests()).toHaveLength(1)
        expect((yield* Effect.promise(() => stat(partial))).size).toBe(written)
      })
    ))

  it.effect("Retry-After beyond 60 s: RateLimited saying when to retry, without waiting or retrying", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ rateLimit: { retryAfterSeconds: 86_400 }, ...spareProbe })
        const { error } = yield* pullAll(downloader(hub), "org/model:Q8_0", store)
        expect(error?._tag).toBe("RateLimited")
        expect(error).toMatchObject({ retryAfterSeconds: 86_400, retryAt: new Date(86_400_000).toISOString() })
        expect((error as { hint?: string }).hint).toContain(new Date(86_400_000).toISOString())
        expect(contentRequests()).toHaveLength(1)
        expect(yield* TestClock.currentTimeMillis).toBe(0)
      })
    ))

  it.effect("a server dropping every connection after one byte does not reset the retry count forever", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ dropAfterBytes: 1, ...spareProbe })
        const { error } = yield* pullAll(downloader(hub, { maxRetries: 3 }), "org/model:Q8_0", store)
        expect(error?._tag).toBe("DownloadFailed")
        expect(error?.message).toContain("gave up after 3 retries")
        expect(contentRequests()).toHaveLength(4)
      })
    ))

  it.effect("however many retries are allowed, a pull without progress ends at the no-progress deadline", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ rateLimit: { retryAfterSeconds: 59 }, ...spareProbe })
        const { error } = yield* pullAll(downloader(hub, { maxRetries: 1000 }), "org/model:Q8_0", store)
        expect(error?._tag).toBe("DownloadFailed")
        expect(error?.message).toContain("no progress for 10m")
        expect(yield* TestClock.currentTimeMillis).toBeLessThanOrEqual(10 * 60_000)
        expect(contentRequests().length).toBeLessThanOrEqual(11)
      })
    ))
})

describe("a repo that does not exist (item 11)", () => {
  it.effect("401 or 404 with RepoNotFound/RepositoryNotFound: ModelNotFound (exit 3) saying to check the name", () =>
    Effect.gen(function*() {
      for (const missingRepo of [{ status: 401, code: "RepoNotFound" }, { status: 404, code: "RepositoryNotFound" }]) {
        const other = yield* Effect.promise(() => startFakeHub({ missingRepo }))
        yield* withStore((store) =>
          Effect.gen(function*() {
            const { error } = yield* pullAll(downloader(other), "org/no-such-repo:Q4_K_M", store)
            expect(error?._tag).toBe("ModelNotFound")
            expect(exitCodeFor(error!)).toBe(3)
            expect(error?.message).toContain("org/no-such-repo")
            expect((error as { hint?: string }).hint).toContain("check the name")
            expect((error as { hint?: string }).hint).toContain("llmspell model available")
          })
        )
        yield* Effect.promise(() => other.close())
      }
    }))
})

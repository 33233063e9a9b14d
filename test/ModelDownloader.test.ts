/**
 * The live ModelDownloader against the fake hub (real @huggingface/hub, real sockets, a temp store):
 * pulls, the store layout, resume, every fault knob ending in a verified model or a typed error,
 * interruption, locks, offline use, verify and remove. Clocked waits run on the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as Redacted from "effect/Redacted"
import { createHash } from "node:crypto"
import { readFile, stat, writeFile } from "node:fs/promises"
import { hostname } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, beforeEach } from "vitest"
import { type LlmspellError } from "../src/domain/Errors.js"
import { errorToJson } from "../src/domain/Failure.js"
import { slugOf } from "../src/domain/HubRef.js"
import type { PullProgress } from "../src/domain/Types.js"
import { deterministicContent, type FakeHub, ggufContent, startFakeHub } from "./fixtures/fakeHub.js"
import {
  advanceUntil,
  downloader,
  dropStore,
  concurrentPulls,
  joinPull,
  pullAll,
  startPull,
  storeFiles,
  tempStore,
  writeLock
} from "./support/downloaderHarness.js"
import { unusedPort } from "./support/ports.js"

const SIZE = 300_000
const q4 = ggufContent("dl-q4", SIZE)
const q8 = ggufContent("dl-q8", 90_000, 7)
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
const PART = 40_000
const parts = [1, 2, 3].map((i) => ggufContent(`part${i}`, PART + i))
const gated = ggufContent("gated", 20_000)

let hub: FakeHub

beforeAll(async () => {
  hub = await startFakeHub({ pageSize: 3 })
  await hub.addRepo({
    name: "org/model",
    files: [
      { path: "README.md", content: "# model\n" },
      { path: "model-Q4_K_M.gguf", content: q4 },
      { path: "model-Q8_0.gguf", content: q8 },
      { path: "mmproj-model-f16.gguf", content: "projector" }
    ]
  })
  await hub.addRepo({
    name: "org/split",
    files: parts.map((content, i) => ({ path: `Q4_K_M/big-Q4_K_M-0000${i + 1}-of-00003.gguf`, content }))
  })
  await hub.addRepo({ name: "org/gated", gated: true, files: [{ path: "w-Q4_K_M.gguf", content: gated }] })
  await hub.addRepo({
    name: "org/huge",
    files: [{ path: "huge-Q4_K_M.gguf", size: 2 ** 50, generate: deterministicContent(1), sha256: "0".repeat(64) }]
  })
})
afterAll(() => hub.close())
beforeEach(() => {
  hub.clearFaults()
  hub.resetStats()
})

/** Runs a test body with a fresh store, removed afterwards. */
const withStore = <A, E>(body: (store: Awaited<ReturnType<typeof tempStore>>) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(Effect.promise(tempStore), body, (s) => Effect.promise(() => dropStore(s)))

const Q4_FILES = ["hub/org/model/model-Q4_K_M.gguf", `manifests/${slugOf("org/model:Q4_K_M")}.json`]
const contentRequests = () => hub.requests.filter((r) => r.server === "cdn" && r.range !== "bytes=0-0")
/** Spares the library's one-byte size probe from a fault. */
const spareProbe = { match: (r: { range: string | undefined }) => r.range !== "bytes=0-0" }
const last = (events: ReadonlyArray<PullProgress>) => events[events.length - 1]!

describe("pull", () => {
  it.effect("downloads, verifies and records a model; the store holds exactly the file and its manifest", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        const { error, events } = yield* pullAll(dl, "org/model:Q4_K_M", store)
        expect(error).toBeUndefined()
        const phases = [...new Set(events.map((e) => e.phase))]
        expect(phases).toEqual(["resolving", "downloading", "verifying", "done"])
        const done = last(events)
        expect(done.result).toMatchObject({
          model: "org/model:Q4_K_M",
          backend: "gguf",
          instance: "gguf",
          alreadyPresent: false,
          sizeBytes: SIZE,
          downloadedBytes: SIZE,
          path: join(store.directory, "hub/org/model/model-Q4_K_M.gguf")
        })
        expect(done.completedBytes).toBe(SIZE)
        // Byte counts never go backwards and never pass the total.
        const downloading = events.filter((e) => e.phase === "downloading")
        for (let i = 1; i < downloading.length; i++) {
          expect(downloading[i]!.completedBytes).toBeGreaterThanOrEqual(downloading[i - 1]!.completedBytes)
        }
        expect(downloading.every((e) => e.totalBytes === SIZE && e.completedBytes <= SIZE)).toBe(true)

        expect(yield* Effect.promise(() => storeFiles(store))).toEqual(Q4_FILES)
        expect(sha(yield* Effect.promise(() => readFile(done.result!.path!)))).toBe(sha(q4))
        const manifest = JSON.parse(yield* Effect.promise(() => readFile(join(store.directory, Q4_FILES[1]!), "utf8")))
        expect(manifest).toMatchObject({
          name: "org/model:Q4_K_M",
          repo: "org/model",
          quantization: "Q4_K_M",
          files: [{ path: "hub/org/model/model-Q4_K_M.gguf", repoPath: "model-Q4_K_M.gguf", sizeBytes: SIZE, sha256: sha(q4) }]
        })
        expect(manifest.revision).toMatch(/^[0-9a-f]{40}$/)

        const found = yield* dl.store.find("org/model:q4_k_m", store)
        expect(Option.getOrThrow(found).path).toBe(done.result!.path)
        expect(Option.isSome(yield* dl.store.find("org/model", store))).toBe(true)
        expect(Option.isSome(yield* dl.store.find("gguf/org/model/model-Q4_K_M.gguf", store))).toBe(true)
        expect(Option.isNone(yield* dl.store.find("org/model:Q8_0", store))).toBe(true)
        expect((yield* dl.store.list(store)).models.map((m) => m.name)).toEqual(["org/model:Q4_K_M"])
      })
    ))

  it.effect("already present: nothing goes over the network; --force downloads again", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        yield* pullAll(dl, "org/model:Q4_K_M", store)
        hub.resetStats()
        const again = yield* pullAll(dl, "hf.co/org/model:Q4_K_M@gguf", store)
        expect(last(again.events).result).toMatchObject({ alreadyPresent: true, downloadedBytes: 0 })
        expect(hub.requests).toEqual([])

        const forced = yield* pullAll(dl, "org/model:Q4_K_M", store, { force: true })
        expect(last(forced.events).result).toMatchObject({ alreadyPresent: false, downloadedBytes: SIZE })
        expect(hub.bytesServed).toBe(SIZE + 1) // plus the one-byte probe
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual(Q4_FILES)
      })
    ))

  it.effect("--quantization picks another file; a missing one lists what the repo has", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        const q8pull = yield* pullAll(dl, "org/model", store, { quantization: "q8_0" })
        expect(last(q8pull.events).result?.model).toBe("org/model:Q8_0")
        const missing = yield* pullAll(dl, "org/model:IQ4_XS", store)
        expect(missing.error?._tag).toBe("ModelNotFound")
        expect(missing.error?.message).toContain("has no IQ4_XS file; it has Q4_K_M, Q8_0")
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual([
          "hub/org/model/model-Q8_0.gguf",
          `manifests/${slugOf("org/model:Q8_0")}.json`
        ])
      })
    ))

  it.effect("split GGUF: every part downloaded and verified, listed as one model whose primary path is part 1", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub, { parallelDownloads: 2 })
        const { error, events } = yield* pullAll(dl, "org/split:Q4_K_M", store)
        expect(error).toBeUndefined()
        expect(last(events).result?.files).toHaveLength(3)
        expect(last(events).files.map((f) => f.status)).toEqual(["done", "done", "done"])
        const [model] = (yield* dl.store.list(store)).models
        expect(model!.path).toBe(join(store.directory, "hub/org/split/Q4_K_M/big-Q4_K_M-00001-of-00003.gguf"))
        expect(model!.files).toHaveLength(3)
        expect(model!.sizeBytes).toBe(3 * PART + 6)
        const verified = yield* dl.store.verify(store)
        expect(verified.ok).toBe(true)
        expect(verified.files.map((f) => f.expectedSha256)).toEqual(parts.map(sha))
        expect(verified.files.every((f) => f.expectedFrom === "hub")).toBe(true)
      })
    ))

  it.effect("a repo that does not exist is ModelNotFound; a pull needing more than the free disk is refused up front", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        expect((yield* pullAll(dl, "org/nothing:Q4_K_M", store)).error?._tag).toBe("ModelNotFound")
        hub.resetStats()
        const huge = yield* pullAll(dl, "org/huge", store)
        expect(huge.error?._tag).toBe("InsufficientDiskSpace")
        expect(huge.error?.message).toContain(store.directory)
        expect(contentRequests()).toEqual([])
        expect((yield* Effect.promise(() => storeFiles(store))).filter((f) => !f.startsWith("locks/"))).toEqual([])
      })
    ))
})

describe("faults end in a verified model or a typed error, never a corrupt store", () => {

  it.effect("dropped connection: resumes with a Range request and re-transfers nothing", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ dropAfterBytes: 100_000, times: 1 })
        const { error, events } = yield* pullAll(downloader(hub), "org/model:Q4_K_M", store)
        expect(error).toBeUndefined()
        expect(events.some((e) => e.message?.includes("retry 1/4"))).toBe(true)
        const ranges = contentRequests().map((r) => r.range)
        expect(ranges[0]).toBeUndefined()
        expect(ranges[1]).toMatch(/^bytes=\d+-299999$/)
        expect(hub.bytesServed - 2).toBeLessThanOrEqual(SIZE) // 2 one-byte probes
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual(Q4_FILES)
      })
    ))

  it.effect("stall: no bytes for stallTimeoutSeconds aborts the read and resumes", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ stall: { afterBytes: 70_000 }, times: 1 })
        const pull = yield* startPull(downloader(hub), "org/model:Q4_K_M", store)
        // the hub says it stalled: the watchdog's clock moves until the client gives that request up
        const stall = yield* Effect.promise(() => hub.stalled())
        yield* advanceUntil(stall.closed)
        const { error, events } = yield* joinPull(pull.fiber)
        expect(error).toBeUndefined()
        expect(events.some((e) => e.message?.includes("no data for 30s"))).toBe(true)
        expect(contentRequests().at(-1)?.range).toMatch(/^bytes=\d+-/)
        expect(yield* TestClock.currentTimeMillis).toBeGreaterThanOrEqual(30_000)
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual(Q4_FILES)
      })
    ))

  it.effect("server ignoring Range on resume (200): the file restarts cleanly from byte 0", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ dropAfterBytes: 100_000, times: 1 })
        hub.setFault({ ignoreRange: true, times: 1, ...spareProbe })
        const { error, events } = yield* pullAll(downloader(hub), "org/model:Q4_K_M", store)
        expect(error).toBeUndefined()
        const statuses = contentRequests().map((r) => [r.range !== undefined, r.status])
        expect(statuses).toEqual([[false, 200], [true, 200]])
        expect(last(events).result?.downloadedBytes).toBeGreaterThan(SIZE)
        expect(sha(yield* Effect.promise(() => readFile(last(events).result!.path!)))).toBe(sha(q4))
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual(Q4_FILES)
      })
    ))

  it.effect("a flipped byte: ChecksumMismatch, the partial is deleted and nothing is installed", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ flipByte: { offset: 12_345 }, times: 1 })
        const { error } = yield* pullAll(downloader(hub), "org/model:Q4_K_M", store)
        expect(error?._tag).toBe("ChecksumMismatch")
        expect(error?.message).toContain(sha(q4))
        expect((yield* Effect.promise(() => storeFiles(store))).filter((f) => !f.startsWith("locks/"))).toEqual([])
      })
    ))

  it.effect("429 waits the Retry-After the server gave, on the clock, then succeeds", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ rateLimit: { retryAfterSeconds: 7 }, times: 1, route: "tree" })
        const { error, events } = yield* pullAll(downloader(hub), "org/model:Q4_K_M", store)
        expect(error).toBeUndefined()
        expect(yield* TestClock.currentTimeMillis).toBeGreaterThanOrEqual(7_000)
        expect(events.some((e) => e.message?.startsWith("rate limited; retry 1/4 in 7s"))).toBe(true)
        hub.resetStats()
        hub.setFault({ rateLimit: { retryAfterSeconds: 3 }, times: 2, ...spareProbe })
        const q8pull = yield* pullAll(downloader(hub), "org/model:Q8_0", store)
        expect(q8pull.error).toBeUndefined()
        expect(q8pull.events.filter((e) => e.message?.startsWith("rate limited")).length).toBe(2)
      })
    ))

  it.effect("slow server: still a verified model", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ slow: { bytesPerSecond: 2_000_000 } })
        const { error } = yield* pullAll(downloader(hub), "org/model:Q8_0", store)
        expect(error).toBeUndefined()
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual([
          "hub/org/model/model-Q8_0.gguf",
          `manifests/${slugOf("org/model:Q8_0")}.json`
        ])
      })
    ))

  it.effect("503 twice then success; a persistent drop gives up with DownloadFailed and keeps a resumable partial", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ status: 503, times: 2, ...spareProbe })
        expect((yield* pullAll(downloader(hub), "org/model:Q8_0", store)).error).toBeUndefined()

        hub.clearFaults()
        hub.setFault({ dropAfterBytes: 50_000 })
        hub.setFault({ status: 500, route: "cdn", match: (r) => r.range !== undefined && r.range !== "bytes=0-0" })
        const failed = yield* pullAll(downloader(hub, { maxRetries: 2 }), "org/model:Q4_K_M", store)
        expect(failed.error?._tag).toBe("DownloadFailed")
        expect(failed.error?.message).toContain("gave up after 2 retries")
        const files = yield* Effect.promise(() => storeFiles(store))
        expect(files.filter((f) => !f.startsWith("locks/")).sort()).toEqual([
          "hub/org/model/model-Q4_K_M.gguf.partial",
          "hub/org/model/model-Q8_0.gguf",
          `manifests/${slugOf("org/model:Q8_0")}.json`
        ])
        hub.clearFaults()
        hub.resetStats()
        const resumed = yield* pullAll(downloader(hub), "org/model:Q4_K_M", store)
        expect(resumed.error).toBeUndefined()
        expect(resumed.events.at(-1)?.result?.downloadedBytes).toBeLessThan(SIZE)
      })
    ))

  it.effect("404 and 401 on the file: typed errors; the token never appears in an error", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ status: 404, times: 1, route: "resolve" })
        expect((yield* pullAll(downloader(hub), "org/model:Q4_K_M", store)).error?._tag).toBe("ModelNotFound")
        hub.setFault({ status: 401, times: 1, route: "resolve" })
        expect((yield* pullAll(downloader(hub), "org/model:Q4_K_M", store)).error?._tag).toBe("HubAuthRequired")

        const secret = "hf_wrong_secret_token_123"
        const dl = downloader(hub, { token: Option.some(Redacted.make(secret)) })
        const { error } = yield* pullAll(dl, "org/gated", store)
        expect(error).toMatchObject({ _tag: "HubAuthRequired", status: 401, tokenProvided: true })
        const everything = JSON.stringify({ json: errorToJson(error!), error, message: error!.message, cause: String(error) })
        expect(everything).not.toContain(secret)
        expect((yield* Effect.promise(() => storeFiles(store))).filter((f) => !f.startsWith("locks/"))).toEqual([])
      })
    ))
})

describe("tokens", () => {
  it.effect("the token reaches the hub only, even when the CDN says cloudfront", () =>
    Effect.gen(function*() {
      const cloudfront = yield* Effect.promise(() => startFakeHub({ cloudfront: true }))
      yield* Effect.promise(() =>
        cloudfront.addRepo({ name: "org/gated", gated: true, files: [{ path: "w-Q4_K_M.gguf", content: gated }] })
      )
      yield* withStore((store) =>
        Effect.gen(function*() {
          // A drop forces a resume: the library then goes to the CDN URL directly, which is where it leaks the token.
          cloudfront.setFault({ dropAfterBytes: 5_000, times: 1 })
          const dl = downloader(cloudfront, { token: Option.some(Redacted.make(cloudfront.accessToken)) })
          const { error } = yield* pullAll(dl, "org/gated:Q4_K_M", store)
          expect(error).toBeUndefined()
          const cdn = cloudfront.requests.filter((r) => r.server === "cdn")
          expect(cdn.length).toBeGreaterThanOrEqual(3)
          expect(cdn.some((r) => r.range?.startsWith("bytes=") && r.range !== "bytes=0-0")).toBe(true)
          expect(cdn.every((r) => !r.hasAuthorization)).toBe(true)
          expect(cloudfront.requests.filter((r) => r.server === "hub").every((r) => r.hasAuthorization)).toBe(true)
        })
      ).pipe(Effect.ensuring(Effect.promise(() => cloudfront.close())))
    }))
})

describe("interruption and locks", () => {
  it.effect("an interrupted pull leaves a resumable .partial; the next pull resumes with a Range request", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ slow: { bytesPerSecond: 400_000 }, ...spareProbe })
        const pull = yield* startPull(downloader(hub), "org/model:Q4_K_M", store)
        // Wait (on the pull's own progress, not on time) until some bytes are in.
        yield* pull.until((e) => e.completedBytes >= 80_000)
        yield* Fiber.interrupt(pull.fiber)
        const partial = join(store.directory, "hub/org/model/model-Q4_K_M.gguf.partial")
        const kept = (yield* Effect.promise(() => stat(partial))).size
        expect(kept).toBeGreaterThanOrEqual(80_000)
        expect(kept).toBeLessThan(SIZE)
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual(["hub/org/model/model-Q4_K_M.gguf.partial"])

        hub.clearFaults()
        hub.resetStats()
        const { error, events } = yield* pullAll(downloader(hub), "org/model:Q4_K_M", store)
        expect(error).toBeUndefined()
        expect(contentRequests().map((r) => r.range)).toEqual([`bytes=${kept}-${SIZE - 1}`])
        expect(hub.bytesServed).toBe(SIZE - kept + 1) // plus the one-byte probe
        expect(last(events).result?.downloadedBytes).toBe(SIZE - kept)
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual(Q4_FILES)
      })
    ))

  it.effect("a pull waits for a live lock (showing it waits), and takes over a stale one", () =>
    withStore((store) =>
      Effect.gen(function*() {
        // Locks are per store file: the lock of model-Q8_0.gguf holds back `org/model:Q8_0` as well.
        const lock = join(store.directory, "locks", `${slugOf("hub/org/model/model-Q8_0.gguf")}.lock`)
        const holder = { pid: process.pid, host: hostname(), startedAt: "x" }
        yield* Effect.promise(() => writeLock(lock, holder))
        const pull = yield* startPull(downloader(hub), "org/model:Q8_0", store)
        yield* pull.until((e) => e.phase === "waiting")
        const events = pull.events
        expect(events.find((e) => e.phase === "waiting")?.message).toContain(`pid ${process.pid}`)
        expect(contentRequests()).toEqual([])
        yield* Effect.promise(() => import("node:fs/promises").then((fs) => fs.rm(lock, { recursive: true })))
        // the pull polls the lock every 500 ms of the clock: one poll finds it free
        yield* TestClock.adjust("500 millis")
        const result = yield* joinPull(pull.fiber)
        expect(result.error).toBeUndefined()
        expect(events.at(-1)?.result?.alreadyPresent).toBe(false)

        // A lock left by a dead process is taken over without waiting.
        yield* Effect.promise(() => writeLock(lock, { ...holder, pid: 2 ** 22 + 12345 }))
        const again = yield* pullAll(downloader(hub), "org/model:Q8_0", store, { force: true })
        expect(again.error).toBeUndefined()
        expect(again.events.some((e) => e.phase === "waiting")).toBe(false)
        expect((yield* Effect.promise(() => storeFiles(store))).filter((f) => f.startsWith("locks/"))).toEqual([])
      })
    ))

  it.effect("two concurrent pulls of one model download it once", () =>
    withStore((store) =>
      Effect.gen(function*() {
        hub.setFault({ slow: { bytesPerSecond: 1_500_000 } })
        const both = yield* concurrentPulls([
          { dl: downloader(hub), ref: "org/model:Q4_K_M" },
          { dl: downloader(hub), ref: "org/model:Q4_K_M" }
        ], store)
        const results = both.map((r) => r.events.at(-1)!.result!)
        expect(results.map((r) => r.alreadyPresent).sort()).toEqual([false, true])
        expect(hub.bytesServed - contentRequests().length * 0).toBeLessThanOrEqual(SIZE + 2)
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual(Q4_FILES)
      })
    ))
})

describe("offline, verify, remove", () => {
  it.effect("offline: an installed model resolves with no network; a missing one is a clear error", () =>
    withStore((store) =>
      Effect.gen(function*() {
        yield* pullAll(downloader(hub), "org/model:Q4_K_M", store)
        hub.resetStats()
        const offline = downloader(hub, { offline: true })
        expect(last((yield* pullAll(offline, "org/model:Q4_K_M", store)).events).result?.alreadyPresent).toBe(true)
        const missing = yield* pullAll(offline, "org/model:Q8_0", store)
        expect(missing.error?._tag).toBe("ModelNotFound")
        expect(missing.error?.message).toContain("offline")
        expect(hub.requests).toEqual([])

        const closedPort = yield* Effect.promise(() => unusedPort())
        const unreachable = downloader({ url: `http://127.0.0.1:${closedPort}` }, { maxRetries: 1 })
        expect(last((yield* pullAll(unreachable, "org/model:Q4_K_M", store, undefined)).events).result?.alreadyPresent)
          .toBe(true)
        const down = yield* pullAll(unreachable, "org/model:Q8_0", store, undefined)
        expect(down.error?._tag).toBe("DownloadFailed")
        expect(down.error?.message).toContain(`cannot reach the hub at http://127.0.0.1:${closedPort}`)
        expect((down.error as LlmspellError & { hint?: string }).hint).toContain("HF_HUB_OFFLINE")
        expect(down.events.some((e) => e.message?.includes("retry"))).toBe(false)
      })
    ))

  it.effect("verify reports ok, corrupt and missing; remove frees the bytes and keeps shared files", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        yield* pullAll(dl, "org/model:Q4_K_M", store)
        // Already there under another name: nothing is downloaded (force records it under its own name).
        const byFile = yield* pullAll(dl, "org/model/model-Q4_K_M.gguf", store)
        expect(last(byFile.events).result).toMatchObject({ alreadyPresent: true, model: "org/model:Q4_K_M" })
        yield* pullAll(dl, "org/model/model-Q4_K_M.gguf", store, { force: true })
        yield* pullAll(dl, "org/model:Q8_0", store)
        expect((yield* dl.store.list(store)).models.map((m) => m.name).sort()).toEqual([
          "org/model/model-Q4_K_M.gguf",
          "org/model:Q4_K_M",
          "org/model:Q8_0"
        ])
        expect(yield* dl.store.verify(store)).toMatchObject({ ok: true })

        const q8path = join(store.directory, "hub/org/model/model-Q8_0.gguf")
        const bytes = yield* Effect.promise(() => readFile(q8path))
        bytes[100] ^= 1
        yield* Effect.promise(() => writeFile(q8path, bytes))
        const report = yield* dl.store.verify(store, "org/model:Q8_0")
        expect(report).toMatchObject({ ok: false, files: [{ status: "corrupt", expectedSha256: sha(q8) }] })

        const removed = yield* dl.store.remove("org/model:Q4_K_M", store)
        expect(removed.removedFiles).toEqual([]) // the file is shared with org/model/model-Q4_K_M.gguf
        const removedFile = yield* dl.store.remove("org/model/model-Q4_K_M.gguf", store)
        expect(removedFile.freedBytes).toBe(SIZE)
        const gone = yield* dl.store.verify(store)
        expect(gone.files.map((f) => f.status)).toEqual(["corrupt"])
        const q8removed = yield* dl.store.remove("org/model:Q8_0", store)
        expect(q8removed.freedBytes).toBe(q8.length)
        expect(yield* Effect.promise(() => storeFiles(store))).toEqual([])
        expect((yield* Effect.either(dl.store.remove("org/model:Q8_0", store)))._tag).toBe("Left")
      })
    ))

  it.effect("a missing file is reported as missing", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const dl = downloader(hub)
        yield* pullAll(dl, "org/model:Q8_0", store)
        yield* Effect.promise(() => import("node:fs/promises").then((fs) => fs.rm(join(store.directory, "hub/org/model/model-Q8_0.gguf"))))
        expect((yield* dl.store.verify(store)).files.map((f) => f.status)).toEqual(["missing"])
        expect(Option.isNone(yield* dl.store.find("org/model:Q8_0", store))).toBe(true)
      })
    ))
})

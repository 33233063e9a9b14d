/**
 * Shared set-up for the ModelDownloader tests: a temp store, a downloader over a fake hub, and a runner
 * that drives the TestClock only while nothing happens on the wire (so stalls, backoff, 429 waits and
 * lock polling elapse instantly, while real transfers are never timed out by a clock that races ahead).
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import type { HubConfig } from "../../src/domain/ConfigSchema.js"
import type { LlmspellError } from "../../src/domain/Errors.js"
import type { PullOptions, PullProgress } from "../../src/domain/Types.js"
import * as ModelDownloaderLive from "../../src/layers/hub/ModelDownloaderLive.js"
import type { ModelDownloaderService, StoreRoot } from "../../src/services/ModelDownloader.js"
import type { FakeHub } from "../fixtures/fakeHub.js"

/** Hub settings pointing at the fake. */
export const hubConfig = (hub: { readonly url: string }, extra: Partial<HubConfig> = {}): HubConfig => ({
  endpoint: hub.url,
  token: Option.none(),
  offline: false,
  stallTimeoutSeconds: 30,
  maxRetries: 4,
  parallelDownloads: 2,
  ...extra
})

/** A fresh, empty store in a temp directory. */
export const tempStore = async (): Promise<StoreRoot> => ({
  directory: await mkdtemp(join(tmpdir(), "llmspell-store-")),
  instance: "gguf"
})

/** Removes a temp store. */
export const dropStore = (store: StoreRoot) => rm(store.directory, { recursive: true, force: true })

/** Every file under the store, relative, sorted. */
export const storeFiles = async (store: StoreRoot): Promise<Array<string>> => {
  const out: Array<string> = []
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name)
      if (e.isDirectory()) await walk(p)
      else out.push(relative(store.directory, p).split("\\").join("/"))
    }
  }
  await walk(store.directory)
  return out.sort()
}

/** A downloader over the fake hub. */
export const downloader = (hub: { readonly url: string }, extra: Partial<HubConfig> = {}): ModelDownloaderService =>
  ModelDownloaderLive.make(hubConfig(hub, extra))

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Runs an effect under the TestClock; when neither the fake hub nor the events show activity for 100
 * event-loop turns and 250 ms, moves the clock to the next pending sleep.
 */
export const drive = <A, E>(
  effect: Effect.Effect<A, E>,
  hub: FakeHub | undefined,
  activity: () => number = () => 0
): Effect.Effect<Either.Either<A, E>> =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(Effect.either(effect))
    let signature = -1
    let idle = 0
    let lastActivity = performance.now()
    for (;;) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return yield* Fiber.join(fiber)
      yield* Effect.promise(turn)
      const now = (hub ? hub.requests.length + hub.bytesServed : 0) + activity()
      if (now !== signature) lastActivity = performance.now()
      idle = now === signature ? idle + 1 : 0
      signature = now
      // Quiet for 100 turns and 250 ms (module loading, hashing and disk I/O finish within that even on a loaded machine): jump.
      if (idle >= 100 && performance.now() - lastActivity >= 250) {
        const sleeps = Chunk.toReadonlyArray(yield* TestClock.sleeps())
        if (sleeps.length > 0) yield* TestClock.setTime(Math.min(...sleeps))
        idle = 0
      }
    }
  })

/** Pulls to the end, collecting the events; the clock is driven as in `drive`. */
export const pullAll = (
  dl: ModelDownloaderService,
  ref: string,
  store: StoreRoot,
  hub: FakeHub | undefined,
  options?: PullOptions
): Effect.Effect<{ readonly events: ReadonlyArray<PullProgress>; readonly error: LlmspellError | undefined }> => {
  const events: Array<PullProgress> = []
  return drive(
    Stream.runForEach(dl.pull(ref, store, options), (e) => Effect.sync(() => events.push(e))),
    hub,
    () => events.length
  ).pipe(Effect.map((r) => ({ events, error: Either.isLeft(r) ? r.left : undefined })))
}

/**
 * Writes a store lock as another live pull would hold it (store/fileLock.ts's format: a directory made
 * by mkdir, with the holder in `owner.json`, its mtime fresh); returns the lock and the owner file's text.
 */
export const writeLock = async (
  lock: string,
  holder: { readonly pid: number; readonly host: string; readonly startedAt: string }
): Promise<{ readonly lock: string; readonly owner: string; readonly text: string }> => {
  const text = JSON.stringify(holder)
  await mkdir(lock, { recursive: true })
  await writeFile(join(lock, "owner.json"), text)
  return { lock, owner: join(lock, "owner.json"), text }
}

/**
 * Shared set-up for the ModelDownloader tests: a temp store, the real downloader and ModelStore over a fake
 * hub, and a runner that moves the TestClock only when the code under test says it waits on it: a pull
 * announces each retry wait ("…; retry 2/4 in 7s") and the runner advances the clock by exactly that much.
 * A stall or a lock is different: nothing announces the watchdog or the lock's polls, so a test that
 * needs them advances the clock itself once the fake signals the point it waits for (`hub.stalled()`, a
 * "waiting" event, a lock released). TestClock.adjust first waits until every fiber of the test is
 * suspended, so the wait announced is registered before the clock moves. Nothing here waits on time.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import type { HubConfig } from "../../src/domain/ConfigSchema.js"
import type { PullOptions, PullProgress } from "../../src/domain/Types.js"
import * as ModelDownloaderLive from "../../src/layers/hub/ModelDownloaderLive.js"
import * as ModelStoreLive from "../../src/layers/store/ModelStoreLive.js"
import * as ScanFs from "../../src/layers/store/scanFs.js"
import type { ModelDownloaderService, PullError } from "../../src/services/ModelDownloader.js"
import { ModelStore, type ModelStoreService, type StoreRoot } from "../../src/services/ModelStore.js"

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

/** The file-system services of the store and the downloader (Node's). */
export const fileSystems = Layer.merge(NodeFileSystem.layer, ScanFs.layer)

/** llmspell's store with every foreign store off (a developer's own ~/.ollama never leaks into a test). */
export const ownStore: Layer.Layer<ModelStore> = Layer.effect(ModelStore, ModelStoreLive.make(ModelStoreLive.ownStoreOnly(tmpdir()))).pipe(
  Layer.provide(fileSystems)
)

/** A downloader over the fake hub, and the store it writes into (`remove`, `verify`, … are the store's). */
export interface Downloader extends ModelDownloaderService {
  readonly store: ModelStoreService
}

/** The real downloader over the fake hub, writing into `store` (default: llmspell's own store only). */
export const downloader = (
  hub: { readonly url: string },
  extra: Partial<HubConfig> = {},
  internals: ModelDownloaderLive.DownloaderInternals = {},
  store: Layer.Layer<ModelStore> = ownStore
): Downloader =>
  // test wiring, built synchronously once per test: both layers are plain constructors
  Effect.runSync(
    Effect.gen(function*() {
      const modelStore = yield* ModelStore
      const dl = yield* ModelDownloaderLive.make(hubConfig(hub, extra), internals)
      return { ...dl, store: modelStore }
    }).pipe(Effect.provide(Layer.merge(store, fileSystems)))
  )

const RETRY_WAIT = /retry \d+\/\d+ in ((?:\d+m ?)?(?:\d+s ?)?(?:\d+ms)?)$/

/** The wait a pull announced before retrying (`…; retry 2/4 in 7s`), if this event is one. */
export const announcedWait = (event: PullProgress): Duration.Duration | undefined => {
  const m = RETRY_WAIT.exec(event.message ?? "")
  if (m === null) return undefined
  const part = (unit: string) => Number(new RegExp(`(\\d+)${unit}(?![a-z])`).exec(m[1]!)?.[1] ?? 0)
  return Duration.millis(part("m") * 60_000 + part("s") * 1000 + part("ms"))
}

/** Options of `runPull`. */
export interface RunPullOptions {
  /** Called with each event as it arrives (after it is recorded). */
  readonly onEvent?: (event: PullProgress) => Effect.Effect<void>
}

/**
 * Runs a pull to its end, collecting the events; each retry wait the pull announces is elapsed on the
 * TestClock. Never fails: the error, if any, is returned.
 */
export const pullAll = (
  dl: ModelDownloaderService,
  ref: string,
  store: StoreRoot,
  options?: PullOptions,
  run: RunPullOptions = {}
): Effect.Effect<{ readonly events: ReadonlyArray<PullProgress>; readonly error: PullError | undefined }> => {
  const events: Array<PullProgress> = []
  return Stream.runForEach(dl.pull(ref, store, options), (e) =>
    Effect.gen(function*() {
      events.push(e)
      if (run.onEvent !== undefined) yield* run.onEvent(e)
      const wait = announcedWait(e)
      if (wait !== undefined) yield* TestClock.adjust(wait)
    })).pipe(
      Effect.either,
      Effect.map((r) => ({ events, error: Either.isLeft(r) ? r.left : undefined }))
    )
}

/** A pull running in the background, with a way to wait (on its events, never on time) for a point it reaches. */
export const startPull = (dl: ModelDownloaderService, ref: string, store: StoreRoot, options?: PullOptions) =>
  Effect.gen(function*() {
    const events: Array<PullProgress> = []
    const watchers: Array<{ readonly predicate: (e: PullProgress) => boolean; readonly reached: Deferred.Deferred<void> }> = []
    const fiber = yield* Effect.fork(pullAll(dl, ref, store, options, {
      onEvent: (e) =>
        Effect.sync(() => {
          events.push(e)
          for (const w of watchers) if (w.predicate(e)) Deferred.unsafeDone(w.reached, Effect.void)
        })
    }))
    return {
      fiber,
      events,
      /** Waits until an event satisfies `predicate` (at once if one already did). */
      until: (predicate: (e: PullProgress) => boolean) =>
        Effect.gen(function*() {
          if (events.some(predicate)) return
          const reached = yield* Deferred.make<void>()
          watchers.push({ predicate, reached })
          yield* Deferred.await(reached)
        })
    }
  })

/** Advances the TestClock `step` at a time until `done` completes (a stall until the stalled request is given up). */
export const advanceUntil = (done: Promise<unknown>, step: Duration.DurationInput = "1 second") =>
  Effect.gen(function*() {
    const finished = yield* Deferred.make<void>()
    done.then(() => Deferred.unsafeDone(finished, Effect.void), () => Deferred.unsafeDone(finished, Effect.void))
    while (!(yield* Deferred.isDone(finished))) yield* TestClock.adjust(step)
  })

/**
 * Pulls running at once into one store, to their ends. A pull that finds another's lock says so ("waiting")
 * and then polls it every 500 ms of the clock: once every pull that does not wait has ended (its lock
 * released), the clock moves to the next poll.
 */
export const concurrentPulls = (
  pulls: ReadonlyArray<{ readonly dl: ModelDownloaderService; readonly ref: string; readonly options?: PullOptions }>,
  store: StoreRoot
) =>
  Effect.gen(function*() {
    const running = yield* Effect.forEach(pulls, (p) => startPull(p.dl, p.ref, store, p.options))
    const waits = (e: PullProgress) => e.phase === "waiting"
    // each pull either ends or says it waits
    yield* Effect.forEach(running, (r) => Effect.raceFirst(Effect.asVoid(Fiber.await(r.fiber)), r.until(waits)), {
      concurrency: "unbounded"
    })
    const waiting = running.filter((r) => r.events.some(waits))
    if (waiting.length > 0) {
      yield* Effect.forEach(running.filter((r) => !waiting.includes(r)), (r) => Fiber.await(r.fiber), { discard: true })
      yield* TestClock.adjust("500 millis")
    }
    return yield* Effect.forEach(running, (r) => Fiber.join(r.fiber))
  })

/** Joins a background pull. */
export const joinPull = <A>(fiber: Fiber.Fiber<A>) => Fiber.join(fiber)

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

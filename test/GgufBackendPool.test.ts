/**
 * The GGUF backend's model pool and request queueing, with a fake loader and TestClock: one load
 * for N callers, idle unload after the last use, LRU eviction of idle models at max_loaded_models,
 * in-use models never unloaded (new requests wait instead of failing), at most `parallel`
 * generations per model, name resolution through the store, remove unloading first.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { mkdtempSync, renameSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { GgufInstanceConfig } from "../src/domain/ConfigSchema.js"
import type { Completion } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import { installedModel, LlamaLoaderMock, type MockLoaderOptions, ModelDownloaderMock } from "../src/testing.js"
import { ggufInstance } from "./fixtures/ggufBackendFakes.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"

// Real (tiny, valid) files: the backend validates each one before the fake loader sees it.
const dir = mkdtempSync(join(tmpdir(), "llmspell-pool-"))
const bytes = tinyLlamaGguf()
const file = (name: string) => {
  const p = join(dir, `${name}.gguf`)
  writeFileSync(p, bytes)
  return p
}
const A = file("a")
const B = file("b")
const C = file("c")

const run = (backend: { generate: (m: string, r: any) => Stream.Stream<any, any> }, model: string) =>
  backend.generate(model, { messages: [{ role: "user", content: "hi" }] }).pipe(
    Stream.runCollect,
    Effect.map((events) => Chunk.toReadonlyArray(events).at(-1)!.completion as Completion)
  )

const setup = (overrides: Partial<GgufInstanceConfig> = {}, fakes: MockLoaderOptions = {}) =>
  Effect.gen(function*() {
    const loader = LlamaLoaderMock({ defaultTokens: ["he", "llo"], ...fakes })
    const downloader = ModelDownloaderMock({ installed: [installedModel("org/repo:Q8_0", C)] })
    const backend = yield* makeBackend(ggufInstance({ modelDirectory: dir, ...overrides }), loader.service, downloader.service, downloader.store)
    const removed = () => downloader.calls.flatMap((c) => (c.operation === "remove" ? [c.ref] : []))
    return { backend, log: loader.log, removed }
  })

describe("GgufBackend pool", () => {
  it.scoped("N concurrent callers share one load; a warm request reports loadMs 0", () =>
    Effect.gen(function*() {
      const loadGate = yield* Deferred.make<void>()
      const { backend, log } = yield* setup({ parallel: 4 }, { loadGate })
      const fibers = yield* Effect.forEach([1, 2, 3, 4], () => Effect.fork(run(backend, A)))
      yield* Deferred.succeed(loadGate, undefined)
      const completions = yield* Fiber.joinAll(fibers)
      expect(completions.map((c) => c.text)).toEqual(["hello", "hello", "hello", "hello"])
      expect(log.events).toEqual(["load a.gguf"])
      const warm = yield* run(backend, A)
      expect(warm.timings.loadMs).toBe(0)
      expect(warm.usage).toEqual({ promptTokens: 1, completionTokens: 2, totalTokens: 3 })
      expect(log.events).toEqual(["load a.gguf"])
    }))

  it.scoped("unloads idle_unload_seconds after the last use, and each use restarts the wait", () =>
    Effect.gen(function*() {
      const { backend, log } = yield* setup({ idleUnloadSeconds: 60 })
      yield* run(backend, A)
      yield* TestClock.adjust("59 seconds")
      expect(log.loaded.has(A)).toBe(true)
      yield* run(backend, A) // used again at t=59: unload moves to t=119
      yield* TestClock.adjust("59 seconds")
      expect(log.loaded.has(A)).toBe(true)
      const status = yield* backend.status
      expect(status.loaded).toMatchObject([{ name: A, activeRequests: 0, expiresAt: new Date(119_000).toISOString() }])
      yield* TestClock.adjust("1 second")
      expect(log.loaded.has(A)).toBe(false)
      expect(log.events).toEqual(["load a.gguf", "unload a.gguf"])
      expect((yield* backend.status).loaded).toEqual([])
      // and it loads again on demand
      const again = yield* run(backend, A)
      expect(again.text).toBe("hello")
      expect(log.events).toEqual(["load a.gguf", "unload a.gguf", "load a.gguf"])
    }))

  it.scoped("a model in use is never unloaded by the idle timer", () =>
    Effect.gen(function*() {
      const generationGate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const { backend, log } = yield* setup({ idleUnloadSeconds: 10 }, {
        generationGate,
        onGenerate: () => Deferred.succeed(started, undefined)
      })
      const fiber = yield* Effect.fork(run(backend, A))
      yield* Deferred.await(started)
      yield* TestClock.adjust("1 hour")
      expect(log.loaded.has(A)).toBe(true)
      expect((yield* backend.status).loaded).toMatchObject([{ name: A, activeRequests: 1 }])
      yield* Deferred.succeed(generationGate, undefined)
      yield* Fiber.join(fiber)
      yield* TestClock.adjust("10 seconds")
      expect(log.loaded.has(A)).toBe(false)
    }))

  it.scoped("evicts the least recently used idle model when loading one more would exceed max_loaded_models", () =>
    Effect.gen(function*() {
      const { backend, log } = yield* setup({ maxLoadedModels: 2 })
      yield* run(backend, A)
      yield* TestClock.adjust("1 second")
      yield* run(backend, B)
      yield* TestClock.adjust("1 second")
      yield* run(backend, A) // A is now more recent than B
      yield* TestClock.adjust("1 second")
      yield* run(backend, C)
      expect(log.events).toEqual(["load a.gguf", "load b.gguf", "unload b.gguf", "load c.gguf"])
      expect([...log.loaded].sort()).toEqual([A, C].sort())
    }))

  it.scoped("when every loaded model is in use, a request for another model waits instead of failing", () =>
    Effect.gen(function*() {
      const generationGate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const { backend, log } = yield* setup({ maxLoadedModels: 1 }, {
        generationGate,
        onGenerate: () => Deferred.succeed(started, undefined)
      })
      const first = yield* Effect.fork(run(backend, A))
      yield* Deferred.await(started)
      const second = yield* Effect.fork(run(backend, B))
      yield* TestClock.adjust("10 minutes")
      expect(log.events).toEqual(["load a.gguf"])
      expect(yield* Fiber.poll(second)).toEqual(expect.objectContaining({ _tag: "None" }))
      yield* Deferred.succeed(generationGate, undefined)
      const [a, b] = yield* Fiber.join(Fiber.zip(first, second))
      expect([a.text, b.text]).toEqual(["hello", "hello"])
      expect(log.events).toEqual(["load a.gguf", "unload a.gguf", "load b.gguf"])
    }))

  it.scoped("an interrupted waiter gives up its place; nothing leaks", () =>
    Effect.gen(function*() {
      const generationGate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const { backend, log } = yield* setup({ maxLoadedModels: 1, idleUnloadSeconds: 5 }, {
        generationGate,
        onGenerate: () => Deferred.succeed(started, undefined)
      })
      const first = yield* Effect.fork(run(backend, A))
      yield* Deferred.await(started)
      const waiting = yield* Effect.fork(run(backend, B))
      yield* Fiber.interrupt(waiting)
      yield* Deferred.succeed(generationGate, undefined)
      yield* Fiber.join(first)
      yield* TestClock.adjust("5 seconds")
      expect(log.events).toEqual(["load a.gguf", "unload a.gguf"])
      expect(log.loaded.size).toBe(0)
    }))

  it.scoped("at most `parallel` requests generate at once on one model; the others wait their turn", () =>
    Effect.gen(function*() {
      const generationGate = yield* Deferred.make<void>()
      const started = yield* Queue.unbounded<void>()
      const { backend, log } = yield* setup({ parallel: 2 }, {
        generationGate,
        onGenerate: () => Queue.offer(started, undefined)
      })
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.fork(run(backend, A)))
      // Wait for two generations to be running (file validation is real I/O, so no clock can stand in).
      yield* Queue.take(started)
      yield* Queue.take(started)
      yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), () => Effect.yieldNow())
      expect(log.active).toBe(2)
      yield* Deferred.succeed(generationGate, undefined)
      const results = yield* Fiber.joinAll(fibers)
      expect(results).toHaveLength(5)
      expect(log.maxActive).toBe(2)
      expect(log.events).toEqual(["load a.gguf"])
    }))

  it.scoped("a failed load fails every waiter, and the next request tries again", () =>
    Effect.gen(function*() {
      let fail = true
      const { backend, log } = yield* setup({}, { failLoad: () => fail })
      const errors = yield* Effect.forEach([1, 2], () => Effect.flip(run(backend, A)), { concurrency: "unbounded" })
      expect(errors.map((e) => e._tag)).toEqual(["BackendError", "BackendError"])
      fail = false
      const ok = yield* run(backend, A)
      expect(ok.text).toBe("hello")
      expect(log.events.filter((e) => e.startsWith("load"))).toHaveLength(2)
    }))

  it.scoped("resolves installed models through the store and local files directly; unknown names → pull hint", () =>
    Effect.gen(function*() {
      const { backend, log } = yield* setup()
      const installed = yield* run(backend, "org/repo:Q8_0")
      expect(installed.model).toBe("org/repo:Q8_0")
      expect(log.events).toEqual(["load c.gguf"])
      const loose = yield* run(backend, "a.gguf")
      expect(loose.model).toBe("a.gguf")
      const local = yield* run(backend, `file://${B}`)
      expect(local.model).toBe(`file://${B}`)
      const missing = yield* Effect.flip(run(backend, "someone/Missing-GGUF:Q4_K_M"))
      expect(missing._tag).toBe("ModelNotFound")
      expect(missing.hint).toBe("run `llmspell model pull someone/Missing-GGUF:Q4_K_M`")
      const noFile = yield* Effect.flip(run(backend, join(dir, "nope.gguf")))
      expect(noFile._tag).toBe("ModelNotFound")
    }))

  it.scoped("list shows installed models and loose .gguf files once each", () =>
    Effect.gen(function*() {
      const { backend } = yield* setup()
      const models = yield* backend.list
      expect(models.map((m) => m.name).sort()).toEqual(["a.gguf", "b.gguf", "org/repo:Q8_0"])
    }))

  it.scoped("remove unloads a loaded model (after its current request) before the downloader deletes it", () =>
    Effect.gen(function*() {
      const generationGate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const { backend, log, removed } = yield* setup({}, {
        generationGate,
        onGenerate: () => Deferred.succeed(started, undefined)
      })
      const request = yield* Effect.fork(run(backend, "org/repo:Q8_0"))
      yield* Deferred.await(started)
      const removal = yield* Effect.fork(backend.remove("org/repo:Q8_0"))
      yield* TestClock.adjust("1 second")
      expect(removed()).toEqual([])
      yield* Deferred.succeed(generationGate, undefined)
      yield* Fiber.join(request)
      const result = yield* Fiber.join(removal)
      expect(result.freedBytes).toBe(1_000_000)
      expect(log.events).toEqual(["load c.gguf", "unload c.gguf"])
      expect(removed()).toEqual(["org/repo:Q8_0"])
    }))

  it.scoped("status reports the runtime, the configuration and what is loaded", () =>
    Effect.gen(function*() {
      const { backend } = yield* setup({ threads: "auto" })
      yield* run(backend, A)
      const status = yield* backend.status
      expect(status.available).toBe(true)
      expect(status.modelsPresent).toBe(3)
      expect(status.details).toMatchObject({ binary: "prebuilt", device: "cpu (mock loader)" })
      expect(String(status.details["threads"])).toMatch(/auto/)
      expect(status.loaded).toHaveLength(1)
    }))

  it.scoped("a file replaced between validation and the end of its load is refused, not kept", () =>
    Effect.gen(function*() {
      const swapped = file("swapped")
      const other = join(dir, "other.tmp")
      writeFileSync(other, tinyLlamaGguf({ seed: 9 }))
      const loading = yield* Deferred.make<void>()
      const loadGate = yield* Deferred.make<void>()
      const { backend, log } = yield* setup({}, { loadGate, onLoad: () => Deferred.succeed(loading, undefined) })
      const request = yield* Effect.fork(Effect.flip(run(backend, swapped)))
      yield* Deferred.await(loading)
      // validated, now loading: another file is renamed over it (as a malformed one could be)
      renameSync(other, swapped)
      yield* Deferred.succeed(loadGate, undefined)
      const error = yield* Fiber.join(request)
      expect(error).toMatchObject({ _tag: "InvalidModelFile", path: swapped })
      expect(error.message).toMatch(/changed while it was being validated or loaded/)
      expect(log.loaded.size).toBe(0)
      // the file as it is now is validated and loaded afresh
      expect((yield* run(backend, swapped)).text).toBe("hello")
    }))

  it.scoped("a model unloads whole: keep_alive 0 (llmspell stop) unloads its chat and embedding contexts, keep_alive forever keeps both", () =>
    Effect.gen(function*() {
      const { backend, log } = yield* setup({ idleUnloadSeconds: 60 })
      yield* run(backend, A)
      yield* backend.embed(A, ["x"])
      expect([...log.loaded].sort()).toEqual([A, `${A} (embedding)`])
      yield* backend.keepAlive!(A, -1)
      yield* TestClock.adjust("1 hour")
      expect([...log.loaded].sort()).toEqual([A, `${A} (embedding)`])
      yield* backend.keepAlive!(A, 0)
      expect([...log.loaded]).toEqual([])
      expect(yield* backend.ps!).toEqual([])
    }))

  it.scoped("ps shows one row per model, its chat and embedding contexts as detail", () =>
    Effect.gen(function*() {
      const { backend } = yield* setup({ idleUnloadSeconds: 60, parallel: 2, maxLoadedModels: 3 })
      yield* run(backend, A)
      yield* TestClock.adjust("10 seconds")
      yield* backend.embed(A, ["x"])
      yield* run(backend, B)
      const rows = yield* backend.ps!
      expect(rows.map((r) => r.name).sort()).toEqual([A, B])
      const a = rows.find((r) => r.name === A)!
      expect(a).toMatchObject({
        sizeBytes: 2_000_000,
        activeRequests: 0,
        contextLength: 256,
        // the model is gone when its last context goes
        expiresAt: new Date(70_000).toISOString(),
        contexts: [
          { purpose: "chat", sizeBytes: 1_000_000, contextLength: 256, activeRequests: 0, expiresAt: new Date(60_000).toISOString() },
          { purpose: "embedding", sizeBytes: 1_000_000, contextLength: 256, activeRequests: 0, expiresAt: new Date(70_000).toISOString() }
        ]
      })
      expect(a.purpose).toBeUndefined()
      expect(rows.find((r) => r.name === B)!.contexts).toMatchObject([{ purpose: "chat" }])
      // a model loaded for embeddings only says so, as before
      yield* backend.keepAlive!(A, 0)
      yield* backend.embed(A, ["x"])
      expect((yield* backend.ps!).find((r) => r.name === A)).toMatchObject({ purpose: "embedding", contexts: [{ purpose: "embedding" }] })
    }))
})

/**
 * llama.cpp in a supervised worker process: files that make llama.cpp abort (a corpus this suite
 * writes, handed to the loader directly so our validator does not stop them first, plus a test
 * hook that aborts the worker while loading or mid-generation) fail with BackendCrashed naming the
 * assert while this process lives on; the pool loads a crashed model again once and refuses a
 * file that crashed twice while loading until it changes; a crash leaves another model's
 * generation alone. The budgets and the supervisor run on the TestClock, driven by the loader's
 * observed events and the worker's stall hooks (a thread blocked until the test releases it), so
 * nothing here depends on how fast the machine is: a prompt's budget counts from when the worker starts on it and
 * fails that request alone, a slow stop is waited for without killing, a worker is killed only when
 * it answers no ping; each death (heap cap, a kill from outside, the supervisor's) says what
 * happened. No worker outlives the tests.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { GgufInstanceConfig } from "../src/domain/ConfigSchema.js"
import type { BackendCrashed } from "../src/domain/Errors.js"
import { parseGgufBuffer } from "../src/domain/GgufReader.js"
import type { GenerateRequest } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import { makeWorkerLoader, type WorkerEvent } from "../src/layers/gguf/workerLoader.js"
import { TEST_ABORT_ENV, TEST_RELEASE_ENV, TEST_TRACE_ENV } from "../src/layers/gguf/workerProtocol.js"
import * as LlamaLoaderLive from "../src/layers/gguf/LlamaLoaderLive.js"
import type { LlamaLoaderService, LoaderEvent, LoadOptions } from "../src/services/LlamaLoader.js"
import { ModelDownloaderMock } from "../src/testing.js"
import { ggufInstance } from "./fixtures/ggufBackendFakes.js"
import { type TinyLlamaOptions, tinyLlamaGguf, v } from "./fixtures/ggufWriter.js"
import "./fixtures/ggufWorkerBundle.js"

const dir = mkdtempSync(join(tmpdir(), "llmspell-gguf-worker-"))
const write = (name: string, bytes: Uint8Array) => {
  const p = join(dir, name)
  writeFileSync(p, bytes)
  return p
}
const GOOD = write("good.gguf", tinyLlamaGguf({ vocabSize: 400 }))
// the worker's test hooks (process.abort / stall) fire for paths containing these names
const CRASH_GENERATE = write("crash-generate.gguf", tinyLlamaGguf({ seed: 3 }))
const CRASH_LOAD = write("crash-load.gguf", tinyLlamaGguf({ seed: 4 }))
const STALL_LOAD = write("stall-load.gguf", tinyLlamaGguf({ seed: 5 }))
const STALL_TEMPLATE = write("stall-template.gguf", tinyLlamaGguf({ seed: 7 }))
const TRACE = join(dir, "trace.log")
const RELEASE = join(dir, "release")
// and for requests whose last message contains "stall-me": the worker's thread blocks once the
// request has its sequence (as a runaway template or tokenizer would), until RELEASE exists
process.env[TEST_ABORT_ENV] = "generate:crash-generate,load:crash-load,stall-load:stall-load,stall-template:stall-template,stall-prepare:stall-me"
process.env[TEST_TRACE_ENV] = TRACE
process.env[TEST_RELEASE_ENV] = RELEASE

/** Resets the stall release (stalls from now on block) or releases every stalled worker. */
const stallRelease = (what: "reset" | "release") =>
  Effect.sync(() => (what === "reset" ? rmSync(RELEASE, { force: true }) : writeFileSync(RELEASE, "")))

// node-llama-cpp renders a model's chat template while loading (to pick the chat format), with
// placeholder messages: a runaway template strikes there; `range(100000000)` also builds a huge array
const RUNAWAY = write(
  "runaway-template.gguf",
  tinyLlamaGguf({ seed: 6, overrideMetadata: { "tokenizer.chat_template": v.str("{% for i in range(100000000) %}x{% endfor %}") } })
)

const loadOptions: LoadOptions = {
  device: "cpu",
  threads: 1,
  contextSize: 256,
  contextSizeCap: 4096,
  gpuLayers: "auto",
  sequences: 2
}
const ask = (overrides: Partial<GenerateRequest> = {}): GenerateRequest => ({
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello world" }],
  maxTokens: 8,
  seed: 1,
  ...overrides
})
const loader = LlamaLoaderLive.make()
const backendWith = (overrides: Partial<GgufInstanceConfig> = {}, with_: LlamaLoaderService = loader) =>
  makeBackend(ggufInstance({ modelDirectory: dir, contextSize: 256, threads: 1, ...overrides }), with_, ModelDownloaderMock().service)

const completionTokens = (stream: Stream.Stream<any, any>) =>
  Effect.map(Stream.runCollect(stream), (c) => {
    const last = Chunk.toReadonlyArray(c).at(-1) as { _tag: string; completion?: { usage: { completionTokens: number } } }
    return last.completion?.usage.completionTokens
  })

/** The loader's own stream: its Done event. */
const completion = (stream: Stream.Stream<LoaderEvent, any>) =>
  Effect.map(Stream.runCollect(stream), (c) => Chunk.toReadonlyArray(c).at(-1) as Extract<LoaderEvent, { _tag: "Done" }>)

/** The budgets of the observed loaders, all on the TestClock. */
const BUDGETS = { prepareTimeoutMs: 10_000, cancelGraceMs: 1000, livenessIntervalMs: 5000, stuckAfterMs: 60_000 } as const

/** A loader with BUDGETS whose events (the moments its budgets start counting) go to a queue. */
const observedLoader = () =>
  Effect.map(Queue.unbounded<WorkerEvent>(), (events) => ({
    events,
    loader: LlamaLoaderLive.make({ ...BUDGETS, observe: (event) => Queue.offer(events, event) })
  }))

/** Waits for the next event with this tag (others are skipped). */
const awaitEvent = (events: Queue.Queue<WorkerEvent>, tag: WorkerEvent["_tag"]): Effect.Effect<WorkerEvent> =>
  Effect.flatMap(Queue.take(events), (event) => (event._tag === tag ? Effect.succeed(event) : awaitEvent(events, tag)))

/** Waits until the worker has written `event` to the trace file (it reached that point); the worker's pid. */
const traced = (event: string) =>
  Effect.async<number>((resume) => {
    const find = () => existsSync(TRACE) ? readFileSync(TRACE, "utf8").split("\n").find((l) => l.endsWith(event)) : undefined
    const timer = setInterval(() => {
      const line = find()
      if (line !== undefined) {
        clearInterval(timer)
        resume(Effect.succeed(Number(line.split(" ")[0])))
      }
    }, 20)
    return Effect.sync(() => clearInterval(timer))
  })

/** Worker processes that are children of this process. */
const workerChildren = () =>
  execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], { encoding: "utf8" }).split("\n")
    .filter((l) => l.includes("gguf-worker"))

// ---------------------------------------------------------------------------------------------
// A corpus of files that make llama.cpp abort (found by writing them; see NOTES): our validator
// refuses all of them (checked), so they go to the loader directly, as if it had missed them.
// ---------------------------------------------------------------------------------------------

const byteless = Object.fromEntries(Array.from({ length: 256 }, (_, b) => [3 + b, `nobyte${b}`]))
const crashCorpus: ReadonlyArray<readonly [string, TinyLlamaOptions, RegExp]> = [
  ["expert_used_count without expert_count", { overrideMetadata: { "llama.expert_used_count": v.u32(2) } }, /GGML_ASSERT\(n_expert_used_max/],
  ["block_count over LLAMA_MAX_LAYERS", { overrideMetadata: { "llama.block_count": v.u32(513) } }, /GGML_ASSERT\(hparams\.n_layer_all/],
  ["tokenizer model bert on a llama", { overrideMetadata: { "tokenizer.ggml.model": v.str("bert") } }, /fatal error|GGML_ASSERT/],
  ["tokenizer model none", { overrideMetadata: { "tokenizer.ggml.model": v.str("none") } }, /GGML_ASSERT\(tokenizer/],
  ["SentencePiece vocabulary without byte tokens", { tokenOverrides: byteless }, /std::out_of_range/],
  ["NaN rms epsilon (aborts at the first decode)", { overrideMetadata: { "llama.attention.layer_norm_rms_epsilon": v.f32(NaN) } }, /GGML_ASSERT\(eps/]
]

describe("GGUF worker: a llama.cpp crash is a typed error", () => {
  it.scoped(`each of ${crashCorpus.length} aborting files fails with BackendCrashed naming the assert; this process lives on`, () =>
    Effect.gen(function*() {
      const workerLoader = makeWorkerLoader()
      for (const [name, options, assert] of crashCorpus) {
        const bytes = tinyLlamaGguf(options)
        // the validator knows this one: through the backend it never reaches llama.cpp
        expect({ name, validator: parseGgufBuffer(bytes)._tag }).toEqual({ name, validator: "Invalid" })
        const path = write(`abort-${name.replace(/[^a-z0-9]+/gi, "-")}.gguf`, bytes)
        const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
          const handle = yield* workerLoader.load(path, { ...loadOptions, instance: "gguf", model: name })
          return yield* Stream.runDrain(handle.generate(ask()))
        })))
        expect({ name, tag: error._tag }).toEqual({ name, tag: "BackendCrashed" })
        const crashed = error as BackendCrashed
        expect(crashed.signal).toBe("SIGABRT")
        expect(crashed.death).toBe("abort")
        expect(crashed.message).toMatch(assert)
        expect(crashed.message).toContain(`gguf: ${name}`)
        expect(crashed.hint).toContain("llmspell model")
      }
      // still here, and a good model generates
      const backend = yield* backendWith()
      expect(yield* completionTokens(backend.generate(GOOD, ask()))).toBe(8)
    }), 240_000)

  it.scoped("a crash mid-generation fails that request; the next request loads the model again", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith()
      const first = yield* Effect.flip(Stream.runDrain(backend.generate(CRASH_GENERATE, ask())))
      expect(first._tag).toBe("BackendCrashed")
      expect(first.message).toMatch(/died during generate \(signal SIGABRT\): GGML_ASSERT\(llmspell test hook/)
      // an abort while generating does not blame the file outright, as one while loading does
      expect(first).toMatchObject({ death: "abort" })
      expect(first.hint).toMatch(/^llama.cpp aborted while running this model: run the request again/)
      expect((yield* backend.status).loaded).toEqual([])
      // loaded again (and crashes again: the hook fires every time), not refused
      const second = yield* Effect.flip(Stream.runDrain(backend.generate(CRASH_GENERATE, ask())))
      expect(second).toMatchObject({ _tag: "BackendCrashed", operation: "generate" })
      expect(yield* completionTokens(backend.generate(GOOD, ask()))).toBe(8)
    }), 120_000)

  it.scoped("a model that crashed twice in a row while loading is refused until its file changes", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith()
      const tries = [] as Array<BackendCrashed>
      for (let i = 0; i < 3; i++) {
        tries.push((yield* Effect.flip(Stream.runDrain(backend.generate(CRASH_LOAD, ask())))) as BackendCrashed)
      }
      expect(tries.map((e) => [e._tag, e.operation, e.refused ?? false])).toEqual([
        ["BackendCrashed", "load model", false],
        ["BackendCrashed", "load model", false],
        ["BackendCrashed", "load model", true]
      ])
      expect(tries[2]!.message).toMatch(/not loaded again.*GGML_ASSERT\(llmspell test hook: abort during load\)/)
      // llama.cpp aborted while loading the file: this is the one death that blames the file
      expect(tries[0]).toMatchObject({ death: "abort" })
      expect(tries[0]!.hint).toMatch(/^the model file is probably malformed/)
      // a changed file (mtime) is tried again
      const later = new Date(Date.now() + 60_000)
      utimesSync(CRASH_LOAD, later, later)
      const afterChange = (yield* Effect.flip(Stream.runDrain(backend.generate(CRASH_LOAD, ask())))) as BackendCrashed
      expect(afterChange.refused ?? false).toBe(false)
    }), 120_000)

  it.scoped("a worker killed while idle is no longer listed as loaded, and the next request loads the model again", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith()
      const idle = write("idle-victim.gguf", tinyLlamaGguf({ seed: 12 }))
      expect(yield* completionTokens(backend.generate(idle, ask()))).toBe(8)
      const pid = Number(readFileSync(TRACE, "utf8").split("\n").filter((l) => l.endsWith(`load ${idle}`)).at(-1)!.split(" ")[0])
      process.kill(pid, "SIGKILL")
      // the host learns of the death from the child's "close" event: wait for it (real time, not the test clock)
      while ((yield* backend.status).loaded.length > 0) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 20)))
      expect(yield* completionTokens(backend.generate(idle, ask()))).toBe(8)
      const loads = readFileSync(TRACE, "utf8").split("\n").filter((l) => l.endsWith(`load ${idle}`))
      expect(loads.length).toBe(2)
      expect(Number(loads[1]!.split(" ")[0])).not.toBe(pid)
    }), 120_000)

  it.scoped("a crash of one model's worker does not disturb a generation on another model", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith({ maxLoadedModels: 2 })
      const [good, bad] = yield* Effect.all([
        completionTokens(backend.generate(GOOD, ask({ maxTokens: 48 }))),
        Effect.flip(Stream.runDrain(backend.generate(CRASH_GENERATE, ask())))
      ], { concurrency: "unbounded" })
      expect(good).toBe(48)
      expect(bad._tag).toBe("BackendCrashed")
    }), 120_000)
})

describe("GGUF worker: budgets and the supervisor, on the TestClock", () => {
  it.scoped("a prompt's budget counts from when the worker starts on it, not the wait for a sequence, and fails that request alone", () =>
    Effect.gen(function*() {
      const { events, loader: observed } = yield* observedLoader()
      const handle = yield* observed.load(GOOD, { ...loadOptions, sequences: 1 })
      yield* stallRelease("reset")
      // A holds the only sequence, stuck preparing; B waits behind it for longer than the budget
      const a = yield* Effect.fork(Stream.runDrain(handle.generate(ask({ messages: [{ role: "user", content: "stall-me now" }] }))))
      yield* awaitEvent(events, "Preparing")
      const b = yield* Effect.fork(completion(handle.generate(ask())))
      yield* TestClock.adjust(`${BUDGETS.prepareTimeoutMs - 1} millis`)
      expect(yield* Fiber.poll(a)).toEqual(Option.none())
      yield* TestClock.adjust("1 millis")
      const late = yield* Effect.flip(Fiber.join(a))
      expect(late.message).toContain(`prepare the prompt failed: rendering the chat template and tokenizing took longer than ${BUDGETS.prepareTimeoutMs / 1000} s (counted from when the worker started on it, not the wait for a sequence`)
      expect(yield* Fiber.poll(b)).toEqual(Option.none())
      // the worker finishes what blocked it, stops A, and B runs on the same worker
      yield* stallRelease("release")
      expect((yield* Fiber.join(b)).completionTokens).toBe(8)
      expect(yield* handle.alive).toBe(true)
    }), 120_000)

  it.scoped("a request slow to stop is not a stuck worker: its interruption ends after the grace, another answer goes on", () =>
    Effect.gen(function*() {
      const { events, loader: observed } = yield* observedLoader()
      const handle = yield* observed.load(GOOD, loadOptions)
      yield* stallRelease("reset")
      const other = yield* Effect.fork(completion(handle.generate(ask({ maxTokens: 200, messages: [{ role: "user", content: "go on" }] }))))
      const slow = yield* Effect.fork(Stream.runDrain(handle.generate(ask({ messages: [{ role: "user", content: "stall-me now" }] }))))
      yield* awaitEvent(events, "Preparing")
      // its Cancel cannot be read while the worker's thread is blocked: the interruption waits the grace, then lets go
      const interrupted = yield* Effect.fork(Fiber.interrupt(slow))
      yield* awaitEvent(events, "Stopping")
      yield* TestClock.adjust(`${BUDGETS.cancelGraceMs} millis`)
      expect(Exit.isInterrupted(yield* Fiber.join(interrupted))).toBe(true)
      expect(yield* handle.alive).toBe(true)
      yield* stallRelease("release")
      expect((yield* Fiber.join(other)).completionTokens).toBeGreaterThan(8)
      expect(yield* handle.alive).toBe(true)
      // both sequences came back
      expect(yield* handle.sequences!).toEqual({ total: 2, busy: 0 })
    }), 120_000)

  it.scoped("a worker whose event loop answers no ping is killed as stuck: the error says what the supervisor saw", () =>
    Effect.gen(function*() {
      const { events, loader: observed } = yield* observedLoader()
      const handle = yield* observed.load(GOOD, loadOptions)
      yield* stallRelease("reset")
      const stuck = yield* Effect.fork(Stream.runDrain(handle.generate(ask({ messages: [{ role: "user", content: "stall-me for good" }] }))))
      yield* awaitEvent(events, "Preparing")
      const waiting = yield* Effect.fork(Stream.runDrain(handle.generate(ask())))
      yield* TestClock.adjust(`${BUDGETS.livenessIntervalMs} millis`)
      yield* awaitEvent(events, "Pinged")
      // a ping answered late is not stuck yet
      yield* TestClock.adjust(`${BUDGETS.stuckAfterMs - 1} millis`)
      expect(yield* handle.alive).toBe(true)
      yield* TestClock.adjust("1 millis")
      const crashed = (yield* Effect.flip(Fiber.join(waiting))) as BackendCrashed
      expect(crashed).toMatchObject({ _tag: "BackendCrashed", death: "stopped", operation: "generate", signal: "SIGKILL" })
      expect(crashed.message).toContain(
        "llmspell stopped the process running llama.cpp during generate: its event loop answered no liveness ping for 60 s while 2 requests waited on it: "
      )
      // what each request was doing, and for how long (on the TestClock: exact)
      expect(crashed.message).toMatch(/#\d+ \(generate\) waiting for a sequence for 65 s/)
      expect(crashed.message).toMatch(/#\d+ \(generate\) stopping for 55 s/)
      expect(crashed.hint).not.toContain("malformed")
      expect((yield* Effect.flip(Fiber.join(stuck)))._tag).toMatch(/BackendError|BackendCrashed/)
      expect(yield* handle.alive).toBe(false)
    }), 120_000)

  it.scoped("a chat template that runs past the budget at load fails the load; a good model loads with the same budget", () =>
    Effect.gen(function*() {
      const { events, loader: observed } = yield* observedLoader()
      const backend = yield* backendWith({}, observed)
      const loading = yield* Effect.fork(Effect.flip(Stream.runDrain(backend.generate(STALL_TEMPLATE, ask()))))
      yield* awaitEvent(events, "TemplateRendering")
      yield* TestClock.adjust(`${BUDGETS.prepareTimeoutMs} millis`)
      const atLoad = yield* Fiber.join(loading)
      expect({ tag: atLoad._tag, message: atLoad.message }).toMatchObject({
        tag: "BackendError",
        message: expect.stringContaining(`prepare the chat template failed: rendering the model's chat template took longer than ${BUDGETS.prepareTimeoutMs / 1000} s`)
      })
      // however long a good template takes on a busy machine, the clock only moves when the test says
      expect(yield* completionTokens(backend.generate(GOOD, ask()))).toBe(8)
    }), 120_000)

  it.scoped("the budget comes from the instance's config (prepare_timeout_seconds), over the loader's default", () =>
    Effect.gen(function*() {
      const { events, loader: observed } = yield* observedLoader()
      const backend = yield* backendWith({ prepareTimeoutSeconds: 7 }, observed)
      yield* stallRelease("reset")
      const slow = yield* Effect.fork(Effect.flip(Stream.runDrain(backend.generate(GOOD, ask({ messages: [{ role: "user", content: "stall-me now" }] })))))
      yield* awaitEvent(events, "Preparing")
      yield* TestClock.adjust("6999 millis")
      expect(yield* Fiber.poll(slow)).toEqual(Option.none())
      yield* TestClock.adjust("1 millis")
      expect((yield* Fiber.join(slow)).message).toContain("took longer than 7 s")
      yield* stallRelease("release")
    }), 120_000)

  it.scoped("interrupting a load that hangs kills the worker", () =>
    Effect.gen(function*() {
      const workerLoader = makeWorkerLoader()
      const fiber = yield* Effect.fork(Effect.scoped(workerLoader.load(STALL_LOAD, loadOptions)))
      yield* traced(`load ${STALL_LOAD}`)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(workerChildren()).toEqual([])
    }), 120_000)
})

describe("GGUF worker: each death says what happened", () => {
  it.scoped("a template bomb dies of the worker's heap cap: BackendCrashed names the heap, not the file; this process's memory untouched", () =>
    Effect.gen(function*() {
      const rssBefore = process.memoryUsage().rss
      const backend = yield* backendWith({}, LlamaLoaderLive.make({ maxHeapMb: 96 }))
      const error = (yield* Effect.flip(Stream.runDrain(backend.generate(RUNAWAY, ask())))) as BackendCrashed
      expect(error).toMatchObject({ _tag: "BackendCrashed", death: "heap", heapMb: 96 })
      expect(error.message).toMatch(/heap out of memory/)
      expect(error.hint).toContain("worker_max_heap_mb")
      expect(error.hint).not.toContain("malformed")
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 2 ** 20)
    }), 120_000)

  it.scoped("the heap cap comes from the instance's config (worker_max_heap_mb)", () =>
    Effect.gen(function*() {
      const capped = yield* backendWith({ workerMaxHeapMb: 96 })
      const error = yield* Effect.flip(Stream.runDrain(capped.generate(RUNAWAY, ask())))
      expect(error).toMatchObject({ _tag: "BackendCrashed", death: "heap", heapMb: 96 })
    }), 120_000)

  it.scoped("a worker killed from outside (kill -9) mid-request: killed from outside llmspell, not a malformed file", () =>
    Effect.gen(function*() {
      rmSync(TRACE, { force: true })
      const handle = yield* loader.load(GOOD, loadOptions)
      yield* stallRelease("reset")
      const fiber = yield* Effect.fork(Effect.flip(Stream.runDrain(handle.generate(ask({ messages: [{ role: "user", content: "stall-me for good" }] })))))
      const pid = yield* traced("prepare 0")
      process.kill(pid, "SIGKILL")
      const error = (yield* Fiber.join(fiber)) as BackendCrashed
      expect(error).toMatchObject({ _tag: "BackendCrashed", death: "signal", signal: "SIGKILL", operation: "generate" })
      expect(error.message).toContain("was killed from outside llmspell (signal SIGKILL) during generate")
      expect(error.hint).toContain("dmesg")
      expect(error.hint).not.toContain("malformed")
    }), 120_000)
})

describe("GGUF worker: spare worker", () => {
  it.scoped("with spareWorker, the next loads use a started worker; shutdown leaves no process", () =>
    Effect.gen(function*() {
      const { service, shutdown } = LlamaLoaderLive.makeWithShutdown({ spareWorker: true })
      const backend = yield* backendWith({ maxLoadedModels: 1 }, service)
      const other = write("other.gguf", tinyLlamaGguf({ seed: 11 }))
      for (const path of [GOOD, other, GOOD]) expect(yield* completionTokens(backend.generate(path, ask()))).toBe(8)
      // one worker with the loaded model, at most one spare
      expect(workerChildren().length).toBeLessThanOrEqual(2)
      yield* shutdown
      const loadedWorker = readFileSync(TRACE, "utf8").split("\n").filter((l) => l.endsWith(`load ${GOOD}`)).at(-1)!.split(" ")[0]
      expect(workerChildren().map((l) => l.trim().split(/\s+/)[0])).toEqual([loadedWorker])
    }), 120_000)
})

afterAll(() => {
  // every worker started by this file is gone (closed scopes kill and reap them)
  expect(workerChildren()).toEqual([])
})

/**
 * llama.cpp in a supervised worker process: files that make llama.cpp abort (a corpus this suite
 * writes, handed to the loader directly so our validator does not stop them first, plus a test
 * hook that aborts the worker while loading or mid-generation) fail with BackendCrashed naming the
 * assert while this process lives on; the pool loads a crashed model again once and refuses a
 * file that crashed twice while loading until it changes; a crash leaves another model's
 * generation alone; a stuck request is killed on interruption; a runaway template hits the
 * preparation budget, a template bomb the heap cap; no worker outlives the tests.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { GgufInstanceConfig } from "../src/domain/ConfigSchema.js"
import type { BackendCrashed } from "../src/domain/Errors.js"
import { parseGgufBuffer } from "../src/domain/GgufReader.js"
import type { GenerateRequest } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import { makeWorkerLoader } from "../src/layers/gguf/workerLoader.js"
import { TEST_ABORT_ENV, TEST_TRACE_ENV } from "../src/layers/gguf/workerProtocol.js"
import * as LlamaLoaderLive from "../src/layers/gguf/LlamaLoaderLive.js"
import type { LlamaLoaderService, LoadOptions } from "../src/services/LlamaLoader.js"
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
const TRACE = join(dir, "trace.log")
process.env[TEST_ABORT_ENV] = "generate:crash-generate,load:crash-load,stall-load:stall-load"
process.env[TEST_TRACE_ENV] = TRACE

// node-llama-cpp renders a model's chat template while loading (to pick the chat format), with
// placeholder messages: a runaway template strikes there; `range(100000000)` also builds a huge array
const RUNAWAY = write(
  "runaway-template.gguf",
  tinyLlamaGguf({ seed: 6, overrideMetadata: { "tokenizer.chat_template": v.str("{% for i in range(100000000) %}x{% endfor %}") } })
)
// tokenizing ~24 MB of text takes a minute: a request stuck in its preparation
const huge = () => ({ messages: [{ role: "user" as const, content: "hello world, ".repeat(2_000_000) }], maxTokens: 4 })

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

/** Waits until the worker has written `event` to the trace file (it reached that point). */
const traced = (event: string) =>
  Effect.async<void>((resume) => {
    const check = () => existsSync(TRACE) && readFileSync(TRACE, "utf8").split("\n").some((l) => l.endsWith(event))
    const timer = setInterval(() => {
      if (check()) {
        clearInterval(timer)
        resume(Effect.void)
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

describe("GGUF worker: stuck requests", () => {
  it.scoped("interrupting a request stuck preparing its prompt kills its worker; the request ends interrupted", () =>
    Effect.gen(function*() {
      const workerLoader = makeWorkerLoader()
      const handle = yield* workerLoader.load(GOOD, loadOptions)
      const fiber = yield* Effect.fork(Stream.runDrain(handle.generate(huge())))
      yield* traced("generate 0")
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(yield* handle.alive).toBe(false)
    }), 120_000)

  it.scoped("preparation budgets: a huge prompt, a runaway chat template at load: typed errors, not hangs", () =>
    Effect.gen(function*() {
      // 1.5 s: a third of what tokenizing the 26 MB prompt takes on a quiet 2-core machine (~4.5 s;
      // with 5 s a quiet machine finished it, and the answer was the ContextOverflow after it)
      const backend = yield* backendWith({}, LlamaLoaderLive.make({ prepareTimeoutMs: 1500 }))
      const inRequest = yield* Effect.flip(Stream.runDrain(backend.generate(GOOD, huge())))
      expect({ tag: inRequest._tag, message: inRequest.message }).toMatchObject({
        tag: "BackendError",
        message: expect.stringContaining("prepare the prompt failed: rendering the chat template and tokenizing took longer than 1.5 s")
      })
      // the worker was stopped; the model loads again for the next request
      expect(yield* completionTokens(backend.generate(GOOD, ask()))).toBe(8)
      const atLoad = yield* Effect.flip(Stream.runDrain(backend.generate(RUNAWAY, ask())))
      expect({ tag: atLoad._tag, message: atLoad.message }).toMatchObject({
        tag: "BackendError",
        message: expect.stringContaining("prepare the chat template failed: rendering the model's chat template took longer than 1.5 s")
      })
    }), 120_000)

  it.scoped("a template bomb dies of the worker's heap cap: BackendCrashed, this process's memory untouched", () =>
    Effect.gen(function*() {
      const rssBefore = process.memoryUsage().rss
      const backend = yield* backendWith({}, LlamaLoaderLive.make({ maxHeapMb: 96 }))
      const error = yield* Effect.flip(Stream.runDrain(backend.generate(RUNAWAY, ask())))
      expect(error._tag).toBe("BackendCrashed")
      expect(error.message).toMatch(/heap out of memory/)
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 2 ** 20)
    }), 120_000)

  it.scoped("the budgets come from the instance's config (prepare_timeout_seconds, worker_max_heap_mb), over the loader's defaults", () =>
    Effect.gen(function*() {
      const capped = yield* backendWith({ workerMaxHeapMb: 96 })
      const error = yield* Effect.flip(Stream.runDrain(capped.generate(RUNAWAY, ask())))
      expect(error._tag).toBe("BackendCrashed")
      expect(error.message).toMatch(/heap out of memory/)
      const quick = yield* backendWith({ prepareTimeoutSeconds: 1 }) // well under the ~4.5 s the huge prompt takes
      const slow = yield* Effect.flip(Stream.runDrain(quick.generate(GOOD, huge())))
      expect(slow.message).toContain("took longer than 1 s")
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

/**
 * The parts of the GGUF worker link that need no process: the sequence queue (who gets which
 * sequence, in what order, and what an interrupted waiter leaves behind), the crash report (what
 * each way of dying says, and when the file is blamed), the batches on the wire (checked on
 * arrival, text by hand and the rest by the Schema) and the worker's outbox (what is joined, what
 * waits, in what order it leaves).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Exit from "effect/Exit"
import type { GenerateRequest } from "../src/domain/Types.js"
import * as SequenceQueue from "../src/layers/gguf/sequenceQueue.js"
import { crashReport } from "../src/layers/gguf/workerSupervisor.js"
import { makeOutbox } from "../src/layers/gguf/workerOutbox.js"
import { decodeFromWorkerBatch, encodeFromWorkerBatch, type FromWorker } from "../src/layers/gguf/workerProtocol.js"

const request = (content: string): GenerateRequest => ({ messages: [{ role: "user", content }] })

describe("the sequence queue", () => {
  it.scoped("hands free sequences least recently used first, and gives each back when its scope closes", () =>
    Effect.gen(function*() {
      const queue = yield* SequenceQueue.make(["s0", "s1"])
      const first = yield* Effect.scoped(queue.take(request("a")))
      const second = yield* Effect.scoped(queue.take(request("b")))
      const third = yield* Effect.scoped(queue.take(request("c")))
      expect([first, second, third]).toEqual(["s0", "s1", "s0"])
      expect(yield* queue.counts).toEqual({ total: 2, busy: 0, waiting: 0 })
    }))

  it.scoped("requests beyond the sequences wait in arrival order; an interrupted waiter leaves the line and takes nothing", () =>
    Effect.gen(function*() {
      const queue = yield* SequenceQueue.make(["only"])
      const holder = yield* Scope.make()
      yield* Scope.extend(queue.take(request("holder")), holder)
      const order: Array<string> = []
      const waiter = (name: string) =>
        Effect.fork(Effect.scoped(Effect.tap(queue.take(request(name)), () => Effect.sync(() => order.push(name)))))
      const a = yield* waiter("a")
      const b = yield* waiter("b")
      const c = yield* waiter("c")
      yield* Effect.yieldNow()
      expect(yield* queue.counts).toEqual({ total: 1, busy: 1, waiting: 3 })
      yield* Fiber.interrupt(b)
      expect(yield* queue.counts).toEqual({ total: 1, busy: 1, waiting: 2 })
      yield* Scope.close(holder, Exit.void)
      yield* Fiber.join(a)
      yield* Fiber.join(c)
      expect(order).toEqual(["a", "c"])
      expect(yield* queue.counts).toEqual({ total: 1, busy: 0, waiting: 0 })
    }))

  it.scoped("the chooser sees the request and every free sequence (the seam for a choice by shared prefix)", () =>
    Effect.gen(function*() {
      const seen: Array<[string, ReadonlyArray<string>]> = []
      const queue = yield* SequenceQueue.make(["x", "y", "z"], (free, r) => {
        seen.push([r.messages[0]!.content, free.map((f) => f.sequence)])
        return free.find((f) => f.sequence === r.messages[0]!.content) ?? SequenceQueue.leastRecentlyUsed(free)
      })
      const gate = yield* Deferred.make<void>()
      const held = yield* Effect.fork(Effect.scoped(Effect.zipRight(queue.take(request("y")), Deferred.await(gate))))
      yield* Effect.yieldNow()
      expect(yield* Effect.scoped(queue.take(request("z")))).toBe("z")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(held)
      expect(seen).toEqual([["y", ["x", "y", "z"]], ["z", ["x", "z"]]])
    }))
})

  it.scoped("a waiter is served through the chooser too, among every sequence free when its turn comes", () =>
    Effect.gen(function*() {
      const seen: Array<[string, ReadonlyArray<string>]> = []
      const queue = yield* SequenceQueue.make(["p", "q"], (free, r) => {
        seen.push([r.messages[0]!.content, free.map((f) => f.sequence)])
        return free.find((f) => f.sequence === r.messages[0]!.content) ?? SequenceQueue.leastRecentlyUsed(free)
      })
      const holdP = yield* Scope.make()
      const holdQ = yield* Scope.make()
      yield* Scope.extend(queue.take(request("p")), holdP)
      yield* Scope.extend(queue.take(request("q")), holdQ)
      const waiter = yield* Effect.fork(Effect.scoped(queue.take(request("w"))))
      yield* Effect.yieldNow()
      yield* Scope.close(holdQ, Exit.void)
      expect(yield* Fiber.join(waiter)).toBe("q")
      expect(seen.at(-1)).toEqual(["w", ["q"]])
    }))

describe("the crash report says what happened", () => {
  const context = { model: "m.gguf", instance: "gguf", operation: "generate", heapMb: 2048 }
  const exit = (signal: string | null, code: number | null = null, killedBecause?: string) => ({ signal, code, killedBecause })

  it("llama.cpp aborting while loading blames the file; while generating it does not outright", () => {
    const logs = ["llama_model_load: error", "GGML_ASSERT(hparams.n_layer) failed"]
    const atLoad = crashReport(exit("SIGABRT"), logs, { ...context, operation: "load model" })
    expect(atLoad).toMatchObject({ death: "abort", signal: "SIGABRT" })
    expect(atLoad.message).toBe("gguf: m.gguf: the process running llama.cpp died during load model (signal SIGABRT): GGML_ASSERT(hparams.n_layer) failed")
    expect(atLoad.hint).toMatch(/^the model file is probably malformed or unsupported by this llama.cpp/)
    const generating = crashReport(exit("SIGSEGV"), [], context)
    expect(generating.death).toBe("abort")
    expect(generating.hint).toMatch(/^llama.cpp aborted while running this model: run the request again/)
  })

  it("a heap exhaustion in stderr is the heap cap, whatever the signal", () => {
    const report = crashReport(exit("SIGABRT"), [
      "<--- Last few GCs --->",
      "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
      "1: 0xb8a0d0 node::Abort() [node]"
    ], context)
    expect(report).toMatchObject({ death: "heap", heapMb: 2048 })
    expect(report.message).toBe("gguf: m.gguf: the process running llama.cpp ran out of its JavaScript heap during generate (JavaScript heap out of memory, a cap of 2048 MiB)")
    expect(report.hint).toContain("worker_max_heap_mb")
  })

  it("llmspell's own kill says why; an outside signal says it came from outside; SIGBUS is a file changed in place; an exit code is an exit", () => {
    const stopped = crashReport(exit("SIGKILL", null, "its event loop answered no liveness ping for 60 s"), [], context)
    expect(stopped).toMatchObject({ death: "stopped", stoppedBecause: "its event loop answered no liveness ping for 60 s" })
    expect(stopped.message).toBe("gguf: m.gguf: llmspell stopped the process running llama.cpp during generate: its event loop answered no liveness ping for 60 s")
    const outside = crashReport(exit("SIGKILL"), [], context)
    expect(outside.death).toBe("signal")
    expect(outside.message).toBe("gguf: m.gguf: the process running llama.cpp was killed from outside llmspell (signal SIGKILL) during generate")
    expect(outside.hint).toContain("dmesg")
    expect(crashReport(exit("SIGBUS"), [], context).death).toBe("file-changed")
    const exited = crashReport(exit(null, 1), ["Error: boom"], context)
    expect(exited).toMatchObject({ death: "exit", exitCode: 1 })
    for (const e of [stopped, outside, exited]) expect(e.hint).not.toContain("malformed")
  })
})

describe("batches on the wire", () => {
  it("a batch encodes and decodes to itself; text chunks and the other messages alike", () => {
    const batch: ReadonlyArray<FromWorker> = [
      { _tag: "Started", id: 1 },
      { _tag: "Text", id: 1, text: "héllo" },
      { _tag: "Reasoning", id: 2, text: "hmm" },
      { _tag: "Done", id: 1, text: "héllo", promptTokens: 3, completionTokens: 2, finishReason: "length", maxTokensCapped: { requested: 9, used: 2 } }
    ]
    expect(decodeFromWorkerBatch(JSON.parse(JSON.stringify(encodeFromWorkerBatch(batch))))).toEqual(Either.right(batch))
  })

  it.each([
    ["not an array", { _tag: "Text", id: 1, text: "x" }],
    ["a text chunk with a text that is not a string", [{ _tag: "Text", id: 1, text: 3 }]],
    ["a text chunk with an id that is not a number", [{ _tag: "Text", id: "1", text: "x" }]],
    ["an unknown message", [{ _tag: "Text", id: 1, text: "x" }, { _tag: "Surprise", id: 1 }]],
    ["a Done without its counts", [{ _tag: "Done", id: 1, text: "x" }]]
  ])("%s is refused", (_name, raw) => {
    expect(Either.isLeft(decodeFromWorkerBatch(raw))).toBe(true)
  })
})

describe("the worker's outbox", () => {
  beforeEach(() => void vi.useFakeTimers())
  afterEach(() => void vi.useRealTimers())

  it("a request's first text leaves at the end of the turn; later text waits the window, joined; anything else flushes all, in order", () => {
    const sent: Array<ReadonlyArray<FromWorker>> = []
    const send = makeOutbox((batch) => sent.push(batch), 50)
    send({ _tag: "Started", id: 1 })
    expect(sent).toEqual([[{ _tag: "Started", id: 1 }]])
    send({ _tag: "Text", id: 1, text: "a" })
    send({ _tag: "Text", id: 1, text: "b" })
    expect(sent).toHaveLength(1)
    vi.advanceTimersToNextTimer() // the end of the turn (setImmediate)
    expect(sent.at(-1)).toEqual([{ _tag: "Text", id: 1, text: "ab" }])
    send({ _tag: "Text", id: 1, text: "c" })
    send({ _tag: "Text", id: 2, text: "x" }) // another request's first chunk: leaves at the end of the turn, with what waits
    send({ _tag: "Text", id: 1, text: "d" })
    vi.advanceTimersToNextTimer()
    expect(sent.at(-1)).toEqual([{ _tag: "Text", id: 1, text: "cd" }, { _tag: "Text", id: 2, text: "x" }])
    send({ _tag: "Text", id: 1, text: "e" })
    send({ _tag: "Reasoning", id: 1, text: "r" })
    vi.advanceTimersByTime(49)
    expect(sent).toHaveLength(3)
    vi.advanceTimersByTime(1)
    expect(sent.at(-1)).toEqual([{ _tag: "Text", id: 1, text: "e" }, { _tag: "Reasoning", id: 1, text: "r" }])
    send({ _tag: "Text", id: 2, text: "y" })
    send({ _tag: "Done", id: 2, text: "xy", promptTokens: 1, completionTokens: 2, finishReason: "stop" })
    expect(sent.at(-1)).toEqual([
      { _tag: "Text", id: 2, text: "y" },
      { _tag: "Done", id: 2, text: "xy", promptTokens: 1, completionTokens: 2, finishReason: "stop" }
    ])
    // a later request with the same id starts over: its first chunk is not held back
    send({ _tag: "Text", id: 2, text: "z" })
    vi.advanceTimersToNextTimer()
    expect(sent.at(-1)).toEqual([{ _tag: "Text", id: 2, text: "z" }])
  })
})

/**
 * The live Ollama backend with the real `ollama` client against the fake Ollama server: every
 * operation's mapping to the shared types, each fault's typed error, and interruption of stalled
 * streams closing the HTTP connection.
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { vi } from "vitest"
import type { OllamaInstanceConfig } from "../src/domain/ConfigSchema.js"
import { ExitCode, exitCodeFor } from "../src/domain/Failure.js"
import type { GenerateEvent } from "../src/domain/Types.js"
import * as OllamaBackendLive from "../src/layers/ollama/OllamaBackendLive.js"
import { isOllamaInstance } from "../src/services/OllamaBackend.js"
import { type FakeOllama, fakeLayer, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"

const layers = [fakeLayer("tiny-weights", 1000), fakeLayer("tiny-template", 100)]

let fake: FakeOllama

beforeEach(async () => {
  fake = await startFakeOllama({
    models: [fakeModel("present"), fakeModel("other:7b", { size: 42 })],
    loaded: ["present"],
    pullable: { tiny: layers },
    answer: () => "Hello there, tester!"
  })
})

afterEach(async () => {
  vi.restoreAllMocks()
  await fake.close()
})

const config = (overrides: Partial<OllamaInstanceConfig> = {}): OllamaInstanceConfig => ({
  type: "ollama",
  name: "ollama",
  baseUrl: fake.url,
  // An hour: a stalled request ends within any test's time only if the code under test ends it (abort,
  // interruption), never because timeout_seconds ran out first. Tests of the timeout itself set their own.
  timeoutSeconds: 3600,
  options: {},
  ...overrides
})

const backend = (overrides: Partial<OllamaInstanceConfig> = {}) => OllamaBackendLive.make(config(overrides))

const chat = (text = "hi") => ({ messages: [{ role: "user" as const, content: text }] })

const collect = <A, E>(stream: Stream.Stream<A, E>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const failure = <A, E>(effect: Effect.Effect<A, E>) => Effect.flip(effect)

const textOf = (events: ReadonlyArray<GenerateEvent>) =>
  events.flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join("")

describe("OllamaBackend: operations", () => {
  it.effect("status: version, models present, loaded models with VRAM and expiry", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      const status = yield* b.status
      expect(status).toMatchObject({
        instance: "ollama",
        backend: "ollama",
        endpoint: fake.url,
        available: true,
        version: "0.12.6",
        modelsPresent: 2,
        warnings: []
      })
      expect(status.loaded).toHaveLength(1)
      expect(status.loaded[0]).toMatchObject({ name: "present:latest", sizeBytes: 1_234_567, vramBytes: 1_234_567 })
      expect(Date.parse(status.loaded[0]!.expiresAt!)).toBeGreaterThan(0)
      expect(isOllamaInstance(b)).toBe(true)
    }))

  it.effect("status with the server down: available false with BackendUnavailable, never a failure", () =>
    Effect.gen(function*() {
      yield* Effect.promise(() => fake.close())
      const status = yield* (yield* backend()).status
      expect(status.available).toBe(false)
      expect(status.error?._tag).toBe("BackendUnavailable")
      expect(status.error?.message).toContain(fake.url)
      expect(status.error?.message).toContain("connection refused")
      expect(status.error?.hint).toContain("ollama serve")
      expect(status.error?.hint).toContain("llmspell model install-ollama")
    }))

  it.effect("list: name, size, digest, modified, family, parameter size, quantization, capabilities (from /api/show)", () =>
    Effect.gen(function*() {
      const models = yield* (yield* backend({ name: "workstation" })).list
      expect(models.map((m) => m.name)).toEqual(["present:latest", "other:7b"])
      expect(models[1]).toEqual({
        name: "other:7b",
        backend: "ollama",
        instance: "workstation",
        sizeBytes: 42,
        digest: fake.state.models[1]!.digest,
        modifiedAt: "2026-11-01T12:00:00.000Z",
        family: "llama",
        parameterSize: "1.2B",
        quantization: "Q4_K_M",
        format: "gguf",
        capabilities: fake.state.models[1]!.capabilities
      })
    }))

  it.effect("info: details, model_info, parameters, template, capabilities", () =>
    Effect.gen(function*() {
      const info = yield* (yield* backend()).info("present")
      expect(info).toMatchObject({
        name: "present:latest",
        backend: "ollama",
        instance: "ollama",
        architecture: "llama",
        parameterCount: 1_200_000_000,
        parameterSize: "1.2B",
        quantization: "Q4_K_M",
        contextLength: 4096,
        embeddingLength: 2048,
        chatTemplate: true,
        sizeBytes: 1_234_567,
        capabilities: ["completion"]
      })
      expect(info.details).toMatchObject({
        family: "llama",
        format: "gguf",
        template: "{{ .Prompt }}",
        parameters: expect.stringContaining("stop"),
        modelInfo: { "general.architecture": "llama" }
      })
    }))

  it.effect("pull: resolving → downloading per layer → verifying → done with the result; then listed", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      const events = yield* collect(b.pull("tiny"))
      expect(events[0]).toMatchObject({ phase: "resolving", model: "tiny:latest", backend: "ollama", instance: "ollama" })
      const phases = events.map((e) => e.phase).filter((p, i, all) => p !== all[i - 1])
      expect(phases).toEqual(["resolving", "downloading", "verifying", "done"])
      const downloading = events.filter((e) => e.phase === "downloading")
      const completed = downloading.map((e) => e.completedBytes)
      expect(completed).toEqual([...completed].sort((a, b) => a - b))
      const last = events.at(-1)!
      expect(last).toMatchObject({ phase: "done", completedBytes: 1100, totalBytes: 1100 })
      expect(last.files.map((f) => [f.name, f.completedBytes, f.totalBytes, f.status])).toEqual(
        layers.map((l) => [l.digest, l.size, l.size, "done"])
      )
      expect(last.result).toEqual({
        model: "tiny:latest",
        backend: "ollama",
        instance: "ollama",
        alreadyPresent: false,
        sizeBytes: 1100,
        files: layers.map((l) => l.digest),
        downloadedBytes: 1100
      })
      expect((yield* b.list).map((m) => m.name)).toContain("tiny:latest")
    }))

  it.effect("pull of a model the registry lacks: ModelNotFound with the server's message, no hint to pull it again", () =>
    Effect.gen(function*() {
      const error = yield* failure(Stream.runDrain((yield* backend()).pull("nope")))
      expect(error._tag).toBe("ModelNotFound")
      expect(error.message).toContain("pull model manifest: file does not exist")
      expect((error as { hint?: string }).hint).toMatch(/^check the name/)
    }))

  it.effect("pull with --quantization is a usage error (Ollama names quantizations in the tag)", () =>
    Effect.gen(function*() {
      const error = yield* failure(Stream.runDrain((yield* backend()).pull("tiny", { quantization: "Q8_0" })))
      expect(error._tag).toBe("UsageError")
      expect(fake.requests.filter((r) => r.path === "/api/pull")).toEqual([])
    }))

  it.effect("remove deletes; a missing model is ModelNotFound whose hint pulls it onto that instance", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      const removed = yield* b.remove("other:7b")
      expect(removed).toEqual({ model: "other:7b", backend: "ollama", instance: "ollama", removedFiles: [], freedBytes: 42 })
      expect(fake.state.models.map((m) => m.name)).toEqual(["present:latest"])

      const error = yield* failure(b.remove("ghost"))
      expect(error._tag).toBe("ModelNotFound")
      expect(exitCodeFor(error)).toBe(ExitCode.ModelNotFound)
      expect((error as { hint?: string }).hint).toBe("run `llmspell model pull ghost@ollama`")

      const other = yield* failure((yield* backend({ name: "workstation" })).remove("ghost"))
      expect((other as { hint?: string }).hint).toBe("run `llmspell model pull workstation/ghost`")
    }))

  it.effect("load and unload (keep_alive 0) show up in /api/ps", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      yield* b.unload("present")
      expect(fake.requests.at(-1)?.body).toMatchObject({ model: "present", keep_alive: 0, prompt: "" })
      expect((yield* b.status).loaded).toEqual([])
      const loaded = yield* b.load("other:7b", "10m")
      expect(loaded).toMatchObject({ name: "other:7b", vramBytes: 42 })
      expect((yield* b.status).loaded.map((m) => m.name)).toEqual(["other:7b"])
      const missing = yield* failure(b.unload("ghost"))
      expect(missing._tag).toBe("ModelNotFound")
    }))

  it.effect("generate streams tokens through /api/chat, then Finish with usage and Ollama's timings", () =>
    Effect.gen(function*() {
      const events = yield* collect((yield* backend()).generate("present", { ...chat("say hi"), maxTokens: 20, seed: 7 }))
      expect(textOf(events)).toBe("Hello there, tester!")
      expect(events.filter((e) => e._tag === "TextDelta").length).toBe(3)
      const finish = events.at(-1)!
      expect(finish._tag).toBe("Finish")
      if (finish._tag !== "Finish") return
      expect(finish.completion).toMatchObject({
        model: "present:latest",
        backend: "ollama",
        instance: "ollama",
        text: "Hello there, tester!",
        finishReason: "stop",
        usage: { promptTokens: 2, completionTokens: 3, totalTokens: 5 },
        // The fake reports 5 ms load, 2 ms prompt, 10 ms per token (in ns on the wire).
        timings: { loadMs: 5, totalMs: 5 + 2 + 30, tokensPerSecond: 100, promptTokensPerSecond: 1000 }
      })
      expect(fake.requests.at(-1)).toMatchObject({
        path: "/api/chat",
        body: { model: "present", stream: true, options: { num_predict: 20, seed: 7 } }
      })
    }))

  it.effect("complete streams a raw prompt through /api/generate", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      if (!isOllamaInstance(b)) throw new Error("not an Ollama instance")
      const events = yield* collect(b.complete("present", { prompt: "say hi", system: "be brief" }))
      expect(textOf(events)).toBe("Hello there, tester!")
      expect(events.at(-1)?._tag).toBe("Finish")
      expect(fake.requests.at(-1)).toMatchObject({ path: "/api/generate", body: { prompt: "say hi", system: "be brief" } })
    }))

  it.effect("verify: Ollama checks its own blobs; ok with no files, ModelNotFound for a missing model", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      expect(yield* b.verify(undefined)).toEqual({ ok: true, files: [] })
      expect(yield* b.verify("present")).toEqual({ ok: true, files: [] })
      expect((yield* failure(b.verify("ghost")))._tag).toBe("ModelNotFound")
    }))
})

describe("OllamaBackend: faults become typed errors", () => {
  it.effect("connection refused → BackendUnavailable with the URL and the hint, exit code 4", () =>
    Effect.gen(function*() {
      yield* Effect.promise(() => fake.close())
      const b = yield* backend()
      for (const error of [yield* failure(b.list), yield* failure(Stream.runDrain(b.generate("present", chat())))]) {
        expect(error._tag).toBe("BackendUnavailable")
        expect(error.message).toBe(`ollama is unavailable at ${fake.url}: connection refused (is the server running?)`)
        expect(exitCodeFor(error)).toBe(ExitCode.BackendUnavailable)
      }
    }))

  it.effect("HTTP 404 on chat → ModelNotFound (exit 3)", () =>
    Effect.gen(function*() {
      const error = yield* failure(Stream.runDrain((yield* backend()).generate("ghost", chat())))
      expect(error._tag).toBe("ModelNotFound")
      expect(error.message).toBe("model ghost not found on ollama")
      expect(exitCodeFor(error)).toBe(ExitCode.ModelNotFound)
    }))

  it.effect("another HTTP status → BackendError carrying the status and the server's message", () =>
    Effect.gen(function*() {
      fake.setFault("/api/tags", { kind: "status", status: 503, message: "busy" })
      const error = yield* failure((yield* backend()).list)
      expect(error._tag).toBe("BackendError")
      expect(error.message).toBe("ollama: list failed: HTTP 503: busy")
    }))

  it.effect("a non-JSON error body → BackendError quoting it; the client prints nothing to stdout", () =>
    Effect.gen(function*() {
      const log = vi.spyOn(console, "log")
      const write = vi.spyOn(process.stdout, "write")
      fake.setFault("/api/pull", { kind: "textError", body: "boom: not json" })
      const error = yield* failure(Stream.runDrain((yield* backend()).pull("tiny")))
      expect(error._tag).toBe("BackendError")
      expect(error.message).toContain('HTTP 500 with a non-JSON body: "boom: not json"')
      expect(log).not.toHaveBeenCalled()
      expect(write).not.toHaveBeenCalled()
    }))

  it.effect("an error record inside a 200 stream → BackendError with the server's message", () =>
    Effect.gen(function*() {
      fake.setFault("/api/chat", { kind: "inBandError", after: 2, message: "model runner crashed" })
      const seen: Array<GenerateEvent> = []
      const error = yield* failure(
        Stream.runForEach((yield* backend()).generate("present", chat()), (e) => Effect.sync(() => void seen.push(e)))
      )
      expect(error._tag).toBe("BackendError")
      expect(error.message).toBe("ollama: generate failed: the server reported an error: model runner crashed")
      expect(seen.map((e) => e._tag)).toEqual(["TextDelta", "TextDelta"])
    }))

  it.effect("a stream that ends without success → BackendError saying so", () =>
    Effect.gen(function*() {
      fake.setFault("/api/pull", { kind: "noFinalSuccess" })
      const error = yield* failure(Stream.runDrain((yield* backend()).pull("tiny")))
      expect(error._tag).toBe("BackendError")
      expect(error.message).toContain("ended without its final done/success record")
    }))

  it.effect("a connection dropped mid-stream → BackendError saying so", () =>
    Effect.gen(function*() {
      fake.setFault("/api/chat", { kind: "dropMidStream", after: 1 })
      const error = yield* failure(Stream.runDrain((yield* backend()).generate("present", chat())))
      expect(error._tag).toBe("BackendError")
      expect(error.message).toContain("the connection dropped in the middle of the response stream")
    }))

  it.effect("a connection dropped before answering → BackendError saying so", () =>
    Effect.gen(function*() {
      fake.setFault("/api/tags", { kind: "dropMidStream", after: 0 })
      const error = yield* failure((yield* backend()).list)
      expect(error._tag).toBe("BackendError")
      expect(error.message).toContain("closed the connection before answering")
    }))

  // Real clock: the timeout must really fire (the client's fetch timer is a real one). The fake stalls
  // forever; timeout_seconds leaves a loaded machine room to deliver the request and the records before
  // the stall (0.2 s did not, with two suites running: the pull timed out before the fake saw it).
  it.live("a silent server → BackendError for timeout_seconds, for a call and between stream records", () =>
    Effect.gen(function*() {
      const b = yield* backend({ timeoutSeconds: 2 })
      fake.setFault("/api/tags", { kind: "stall", after: 0 })
      const call = yield* failure(b.list)
      expect(call._tag).toBe("BackendError")
      expect(call.message).toContain("within 2 s (timeout_seconds)")

      fake.setFault("/api/pull", { kind: "stall", after: 2 })
      const stream = yield* failure(Stream.runDrain(b.pull("tiny")))
      expect(stream.message).toContain("within 2 s (timeout_seconds)")
      // between records: the two before the stall were sent, then the request was aborted
      const pull = fake.responses.find((r) => r.route === "/api/pull")
      expect(pull?.sent).toBe(2)
      yield* Effect.promise(() => pull!.closed)
    }))
})

describe("OllamaBackend: interruption aborts the HTTP request", () => {
  const interruptStalled = (route: "/api/pull" | "/api/chat", run: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function*() {
      fake.setFault(route, { kind: "stall", after: 2 })
      const fiber = yield* Effect.fork(run)
      yield* Effect.promise(() => fake.waitForRecords(route, 2))
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      // Resolves only when the server sees the connection close: the request was aborted.
      const response = fake.responses.find((r) => r.route === route)!
      yield* Effect.promise(() => response.closed)
      expect(response).toMatchObject({ sent: 2, finished: true })
    })

  it.live("interrupting a stalled pull closes its connection", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      yield* interruptStalled("/api/pull", Stream.runDrain(b.pull("tiny")))
    }))

  it.live("interrupting a stalled chat closes its connection", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      yield* interruptStalled("/api/chat", Stream.runDrain(b.generate("present", chat())))
    }))

  it.live("interrupting a call waiting for its answer closes its connection", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      fake.setFault("/api/show", { kind: "stall", after: 0 })
      const fiber = yield* Effect.fork(b.info("present"))
      yield* Effect.promise(() => fake.waitForRecords("/api/show", 0))
      yield* Fiber.interrupt(fiber)
      yield* Effect.promise(() => fake.responses.find((r) => r.route === "/api/show")!.closed)
    }))
})

/**
 * The live Ollama backend against a misbehaving fake server (issue 9, items 5, 13 and 15): null and
 * ill-typed entries in model lists, streamed lines that are not JSON or not Ollama's records, a
 * server that ignores num_predict, one that never sends its headers, and base_url credentials sent
 * as Basic auth. Real `ollama` client, real HTTP on 127.0.0.1.
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"
import { vi } from "vitest"
import { type OllamaInstanceConfig, resolveConfig } from "../src/domain/ConfigSchema.js"
import type { GenerateEvent } from "../src/domain/Types.js"
import * as OllamaBackendLive from "../src/layers/ollama/OllamaBackendLive.js"
import { isOllamaInstance } from "../src/services/OllamaBackend.js"
import { type FakeOllama, fakeLayer, fakeModel, MALFORMED_ENTRIES, startFakeOllama } from "./fixtures/fakeOllama.js"

let fake: FakeOllama

beforeEach(async () => {
  fake = await startFakeOllama({
    models: [fakeModel("present"), fakeModel("other:7b", { size: 42 })],
    loaded: ["present"],
    pullable: { tiny: [fakeLayer("tiny-weights", 1000)] },
    answer: () => "one two three"
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
const deltas = (events: ReadonlyArray<GenerateEvent>) => events.filter((e) => e._tag === "TextDelta")
const finish = (events: ReadonlyArray<GenerateEvent>) => {
  const last = events[events.length - 1]
  if (last?._tag !== "Finish") throw new Error("the stream did not end with Finish")
  return last.completion
}

/** Runs an effect with a logger that records what it logs. */
const withLogs = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const logs: Array<{ level: string; message: string }> = []
    const logger = Logger.make(({ logLevel, message }) =>
      logs.push({ level: logLevel.label, message: (Array.isArray(message) ? message : [message]).join(" ") })
    )
    const result = yield* effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return { result, logs }
  })

describe("model lists with malformed entries (crashed `model list` for every backend)", () => {
  it.effect("list skips null, non-string names and entries without a name, keeps the rest, warns once", () =>
    Effect.gen(function*() {
      fake.setFault("/api/tags", { kind: "malformedEntries" })
      const b = yield* backend()
      const { result, logs } = yield* withLogs(b.list)
      expect(result.map((m) => m.name)).toEqual(["present:latest", "other:7b"])
      expect(logs).toHaveLength(1)
      expect(logs[0]!.level).toBe("WARN")
      expect(logs[0]!.message).toContain(`ollama: skipped ${MALFORMED_ENTRIES.length} malformed entries in the server's /api/tags reply`)
      expect(logs[0]!.message).toContain("entry 3:")
    }))

  it.effect("an entry with odd descriptive fields is kept; only the odd fields are dropped", () =>
    Effect.gen(function*() {
      fake.setFault("/api/tags", {
        kind: "malformedEntries",
        entries: [{ name: "odd:1b", size: 7, digest: 5, modified_at: { x: 1 }, details: null }]
      })
      const models = yield* (yield* backend()).list
      expect(models.find((m) => m.name === "odd:1b")).toEqual({ name: "odd:1b", backend: "ollama", instance: "ollama", sizeBytes: 7 })
    }))

  it.effect("status counts the good models, lists the good loaded ones, and carries the warnings", () =>
    Effect.gen(function*() {
      fake.setFault("/api/tags", { kind: "malformedEntries" })
      fake.setFault("/api/ps", { kind: "malformedEntries", entries: [null] })
      const status = yield* (yield* backend()).status
      expect(status.available).toBe(true)
      expect(status.modelsPresent).toBe(2)
      expect(status.loaded.map((m) => m.name)).toEqual(["present:latest"])
      expect(status.warnings).toHaveLength(2)
      expect(status.warnings[0]).toContain("skipped 4 malformed entries in the server's /api/tags reply")
      expect(status.warnings[1]).toContain("skipped 1 malformed entry in the server's /api/ps reply (entry 2:")
    }))

  it.effect("info still works when the list used for its size has malformed entries", () =>
    Effect.gen(function*() {
      fake.setFault("/api/tags", { kind: "malformedEntries" })
      const info = yield* (yield* backend()).info("present")
      expect(info.name).toBe("present:latest")
    }))
})

describe("streamed lines that are not Ollama's records", () => {
  it.effect("a non-JSON line fails the stream with a typed error; the client prints nothing", () =>
    Effect.gen(function*() {
      const warn = vi.spyOn(console, "warn")
      const log = vi.spyOn(console, "log")
      fake.setFault("/api/chat", { kind: "garbageLines", after: 1 })
      const error = yield* Effect.flip(collect((yield* backend()).generate("present", chat())))
      expect(error._tag).toBe("BackendError")
      expect(error.message).toContain("the server sent a line that is not a JSON record")
      // The escape sequence is shown escaped, never raw.
      expect(error.message).toContain("\\u001b[31mthis is not JSON")
      expect(error.message).not.toContain("\u001b")
      expect((error as { hint?: string }).hint).toContain(fake.url)
      expect(warn).not.toHaveBeenCalled()
      expect(log).not.toHaveBeenCalled()
    }))

  it.effect("null, an array, and records of the wrong shape are typed errors too (no crash)", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      for (const line of ["null", "[1,2]", "42", "\"text\""]) {
        fake.setFault("/api/chat", { kind: "garbageLines", after: 0, lines: [line] })
        const error = yield* Effect.flip(collect(b.generate("present", chat())))
        expect(error.message, line).toContain("not a JSON record")
      }
      fake.setFault("/api/chat", { kind: "garbageLines", after: 1, lines: [`{"message":{"content":5},"done":false}`] })
      const shape = yield* Effect.flip(collect(b.generate("present", chat())))
      expect(shape._tag).toBe("BackendError")
      expect(shape.message).toContain("the server's streamed record is not what Ollama sends (message.content:")
    }))

  it.effect("a pull progress record without a status is a typed error", () =>
    Effect.gen(function*() {
      fake.setFault("/api/pull", { kind: "garbageLines", after: 1, lines: [`{"digest":"sha256:x","total":"many"}`] })
      const error = yield* Effect.flip(Stream.runDrain((yield* backend()).pull("tiny")))
      expect(error.message).toContain("pull progress record is not what Ollama sends")
    }))

  it.effect("a line growing past 1 MiB without a newline is refused, not buffered forever", () =>
    Effect.gen(function*() {
      fake.setFault("/api/generate", { kind: "garbageLines", after: 1, lines: ["x".repeat(2 * 1024 * 1024)] })
      const b = yield* backend()
      if (!isOllamaInstance(b)) throw new Error("expected an Ollama instance")
      const error = yield* Effect.flip(collect(b.complete("present", { prompt: "hi" })))
      expect(error.message).toContain("a reply line over 1 MiB")
      expect(error.message.length).toBeLessThan(1000)
    }))
})

describe("maxTokens is enforced on our side (a server ignoring num_predict streamed 8 MB)", () => {
  it.effect("chat: a server ignoring num_predict is cut at maxTokens, aborted, and the reason is length", () =>
    Effect.gen(function*() {
      fake.setFault("/api/chat", { kind: "ignoreNumPredict", tokens: 100_000 })
      const events = yield* collect((yield* backend()).generate("present", { ...chat(), maxTokens: 10 }))
      expect(deltas(events)).toHaveLength(10)
      const completion = finish(events)
      expect(completion.finishReason).toBe("length")
      expect(completion.text).toBe(Array.from({ length: 10 }, (_, i) => ` t${i}`).join(""))
      expect(completion.usage.completionTokens).toBe(10)
      // The request was aborted: the server saw its connection close long before its 100,000 records.
      const response = fake.responses.find((r) => r.route === "/api/chat")!
      yield* Effect.promise(() => response.closed)
      expect(response.sent).toBeLessThan(100_000)
      expect((fake.requests.find((r) => r.path === "/api/chat")!.body as { options: unknown }).options).toMatchObject({ num_predict: 10 })
    }))

  it.effect("generate (complete) is capped the same way", () =>
    Effect.gen(function*() {
      fake.setFault("/api/generate", { kind: "ignoreNumPredict", tokens: 100_000 })
      const b = yield* backend()
      if (!isOllamaInstance(b)) throw new Error("expected an Ollama instance")
      const events = yield* collect(b.complete("present", { prompt: "hi", maxTokens: 3 }))
      expect(deltas(events)).toHaveLength(3)
      expect(finish(events).finishReason).toBe("length")
    }))

  it.effect("a server that honours num_predict keeps its own final record (timings, prompt tokens)", () =>
    Effect.gen(function*() {
      const events = yield* collect((yield* backend()).generate("present", { ...chat("a b c"), maxTokens: 2 }))
      expect(deltas(events)).toHaveLength(2)
      const completion = finish(events)
      expect(completion).toMatchObject({ text: "one two", finishReason: "length" })
      expect(completion.usage.promptTokens).toBe(3)
    }))

  it.effect("one huge record cannot smuggle past the cap either", () =>
    Effect.gen(function*() {
      fake.state.answer = () => "x".repeat(100_000)
      const events = yield* collect((yield* backend()).generate("present", { ...chat(), maxTokens: 10 }))
      expect(finish(events).finishReason).toBe("length")
      expect(finish(events).text.length).toBeLessThanOrEqual(640)
    }))

  it.effect("without maxTokens nothing is cut", () =>
    Effect.gen(function*() {
      fake.setFault("/api/chat", { kind: "ignoreNumPredict", tokens: 50 })
      const events = yield* collect((yield* backend()).generate("present", chat()))
      expect(deltas(events)).toHaveLength(50)
      expect(finish(events).finishReason).toBe("stop")
    }))
})

describe("a server that accepts the connection but never sends headers", () => {
  // timeout_seconds is an hour: without an interruptible acquire, interrupt() waited for it.
  it.live("interrupting a chat waiting for headers returns at once and closes the connection", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      fake.setFault("/api/chat", { kind: "stallBeforeHeaders" })
      const fiber = yield* Effect.fork(Stream.runDrain(b.generate("present", chat())))
      yield* Effect.promise(() => fake.waitForRecords("/api/chat", 0))
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      const response = fake.responses.find((r) => r.route === "/api/chat")!
      yield* Effect.promise(() => response.closed)
      expect(response.sent).toBe(0)
    }))

  it.live("the same for a pull", () =>
    Effect.gen(function*() {
      const b = yield* backend()
      fake.setFault("/api/pull", { kind: "stallBeforeHeaders" })
      const fiber = yield* Effect.fork(Stream.runDrain(b.pull("tiny")))
      yield* Effect.promise(() => fake.waitForRecords("/api/pull", 0))
      expect(Exit.isInterrupted(yield* Fiber.interrupt(fiber))).toBe(true)
      yield* Effect.promise(() => fake.responses.find((r) => r.route === "/api/pull")!.closed)
    }))
})

describe("credentials in base_url are sent as Basic auth (Ollama behind a reverse proxy)", () => {
  it.effect("from OLLAMA_HOST=user:pw@host:port: every request carries the header, no URL carries them", () =>
    Effect.gen(function*() {
      const resolved = resolveConfig({ home: "/home/t", env: { OLLAMA_HOST: `alice:open%20sesame@${fake.host}:${fake.port}` } })
      if (Either.isLeft(resolved)) throw new Error(resolved.left.message)
      const instance = resolved.right.instances.find((i) => i.name === "ollama") as OllamaInstanceConfig
      expect(instance.baseUrl).toBe(fake.url)
      const b = yield* OllamaBackendLive.make(instance)
      yield* b.list
      yield* collect(b.generate("present", chat()))
      yield* b.status
      const expected = `Basic ${Buffer.from("alice:open sesame").toString("base64")}`
      expect(fake.requests.length).toBeGreaterThanOrEqual(4)
      for (const request of fake.requests) expect(request.headers.authorization, request.path).toBe(expected)
    }))

  it.effect("without credentials no Authorization header is sent", () =>
    Effect.gen(function*() {
      yield* (yield* backend()).list
      expect(fake.requests[0]!.headers.authorization).toBeUndefined()
    }))
})

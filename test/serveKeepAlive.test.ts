/**
 * What `llmspell serve`'s keep_alive, /api/ps and the CLI's connect mode rest on, without a server:
 * the GGUF pool's per-model keep-alive on the TestClock (0 unloads when idle, negative never
 * unloads, a duration counts from now), `ps` entries with context and device, the keep_alive
 * parser, and the state file (written atomically, removed on close, a dead pid ignored).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import { keepAliveSeconds } from "../src/serve/Routes.js"
import { holdServeState, readServeState, statePath } from "../src/serve/State.js"
import { LlamaLoaderMock, ModelDownloaderMock } from "../src/testing.js"
import { ggufInstance } from "./fixtures/ggufBackendFakes.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"

const dir = mkdtempSync(join(tmpdir(), "llmspell-keepalive-"))
const A = join(dir, "a.gguf")
writeFileSync(A, tinyLlamaGguf())

const setup = Effect.gen(function*() {
  const loader = LlamaLoaderMock({ defaultTokens: ["o", "k"] })
  const backend = yield* makeBackend(ggufInstance({ modelDirectory: dir, idleUnloadSeconds: 60 }), loader.service, ModelDownloaderMock({}).service)
  const run = backend.generate(A, { messages: [{ role: "user", content: "hi" }] }).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
  return { backend, run, loaded: () => loader.log.loaded.has(A) }
})

describe("GGUF keep-alive per model", () => {
  it.scoped("0 unloads an idle model at once; ps no longer lists it", () =>
    Effect.gen(function*() {
      const { backend, run, loaded } = yield* setup
      yield* run
      const ps = yield* backend.ps!
      expect(ps).toHaveLength(1)
      expect(ps[0]).toMatchObject({ activeRequests: 0, device: "cpu" })
      expect(ps[0]!.contextLength).toBeGreaterThan(0)
      yield* backend.keepAlive!(A, 0)
      expect(loaded()).toBe(false)
      expect(yield* backend.ps!).toEqual([])
    }))

  it.scoped("negative keeps it loaded past the idle unload; no expiry is reported", () =>
    Effect.gen(function*() {
      const { backend, run, loaded } = yield* setup
      yield* run
      yield* backend.keepAlive!(A, -1)
      yield* TestClock.adjust("10 hours")
      expect(loaded()).toBe(true)
      expect((yield* backend.ps!)[0]!.expiresAt).toBeUndefined()
    }))

  it.scoped("a duration counts from now and replaces the instance's idle unload", () =>
    Effect.gen(function*() {
      const { backend, run, loaded } = yield* setup
      yield* run
      yield* backend.keepAlive!(A, 600)
      yield* TestClock.adjust("599 seconds")
      expect(loaded()).toBe(true)
      yield* TestClock.adjust("1 second")
      expect(loaded()).toBe(false)
    }))

  it.scoped("a model that is not loaded: no-op", () =>
    Effect.gen(function*() {
      const { backend, loaded } = yield* setup
      yield* backend.keepAlive!(A, 0)
      expect(loaded()).toBe(false)
    }))
})

describe("keep_alive values", () => {
  it("seconds, Go durations, negative; anything else is refused", () => {
    expect(keepAliveSeconds(undefined)).toEqual(Either.right(undefined))
    expect(keepAliveSeconds(0)).toEqual(Either.right(0))
    expect(keepAliveSeconds(-1)).toEqual(Either.right(-1))
    expect(keepAliveSeconds("300")).toEqual(Either.right(300))
    expect(keepAliveSeconds("5m")).toEqual(Either.right(300))
    expect(keepAliveSeconds("1h30m")).toEqual(Either.right(5400))
    expect(keepAliveSeconds("500ms")).toEqual(Either.right(0.5))
    expect(keepAliveSeconds("-1m")).toEqual(Either.right(-60))
    for (const bad of ["soon", "5 m", "", "1d", {}, Infinity]) expect(Either.isLeft(keepAliveSeconds(bad))).toBe(true)
  })
})

describe("state file", () => {
  it("XDG_RUNTIME_DIR when set, else ~/.llmspell", () => {
    expect(statePath({ XDG_RUNTIME_DIR: "/run/user/1000" }, "/home/u")).toBe("/run/user/1000/llmspell/serve.json")
    expect(statePath({}, "/home/u")).toBe("/home/u/.llmspell/serve.json")
    expect(statePath({ XDG_RUNTIME_DIR: "relative" }, "/home/u")).toBe("/home/u/.llmspell/serve.json")
  })

  it.scoped("written while held (pid and URL, no key), read back, removed on close; a dead pid is ignored", () =>
    Effect.gen(function*() {
      const home = mkdtempSync(join(tmpdir(), "llmspell-state-"))
      const options = { env: {}, home }
      const path = statePath({}, home)
      yield* Effect.scoped(Effect.gen(function*() {
        const written = yield* holdServeState({ pid: process.pid, url: "http://127.0.0.1:1234", startedAt: "now", apiKey: true }, options)
        expect(Option.getOrThrow(written)).toBe(path)
        expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ pid: process.pid, url: "http://127.0.0.1:1234", startedAt: "now", apiKey: true })
        expect(Option.getOrThrow(yield* readServeState(options)).url).toBe("http://127.0.0.1:1234")
      }))
      expect(existsSync(path)).toBe(false)
      expect(yield* readServeState(options)).toEqual(Option.none())
      mkdirSync(join(home, ".llmspell"), { recursive: true })
      // a pid that cannot be running (beyond pid_max), and a malformed file
      writeFileSync(path, JSON.stringify({ pid: 2 ** 30, url: "http://127.0.0.1:1", startedAt: "x" }))
      expect(yield* readServeState(options)).toEqual(Option.none())
      writeFileSync(path, "{not json")
      expect(yield* readServeState(options)).toEqual(Option.none())
    }))
})

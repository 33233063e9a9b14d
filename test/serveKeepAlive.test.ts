/**
 * What `llmspell serve`'s keep_alive, /api/ps and the CLI's connect mode rest on: the GGUF pool's
 * per-model keep-alive on the TestClock (0 unloads when idle, negative never unloads, a duration
 * counts from now), `ps` entries with context and device, the keep_alive parser and its bounds
 * (at the Ollama API and at `/rpc`; any stored value still shows in /api/ps, `llmspell ps` and
 * `model status`), and the state file (written atomically, removed on close, a dead pid ignored).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import { unloadsIn } from "../src/cli/commands/ps.js"
import { MAX_KEEP_ALIVE_SECONDS } from "../src/serve/Policy.js"
import { keepAliveSeconds } from "../src/serve/Routes.js"
import { claimServeState, readServeState, statePath } from "../src/serve/State.js"
import { LlamaLoaderMock, ModelDownloaderMock } from "../src/testing.js"
import * as LlmspellRemote from "../src/layers/LlmspellRemote.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { ggufInstance } from "./fixtures/ggufBackendFakes.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

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
    expect(keepAliveSeconds("-1m")).toEqual(Either.right(-1))
    for (const bad of ["soon", "5 m", "", "1d", {}, Infinity]) expect(Either.isLeft(keepAliveSeconds(bad))).toBe(true)
  })

  it("bounded: any negative is -1 (forever); longer than Go's largest duration, NaN-ish or overflowing is refused, naming the bound", () => {
    for (const forever of [-1, -5, "-1", "-5m", -1e300, "-99999999999999999999h"]) expect(keepAliveSeconds(forever)).toEqual(Either.right(-1))
    expect(keepAliveSeconds(MAX_KEEP_ALIVE_SECONDS)).toEqual(Either.right(MAX_KEEP_ALIVE_SECONDS))
    for (const huge of [1e13, MAX_KEEP_ALIVE_SECONDS + 1, "99999999999999999999h", "1e13", "1e400", "99999999999999999999", 1e308]) {
      const result = keepAliveSeconds(huge)
      expect(Either.isLeft(result), String(huge)).toBe(true)
    }
    expect(Either.getLeft(keepAliveSeconds(1e13))).toEqual(Option.some(expect.stringContaining("-1")))
    for (const nan of ["NaN", "Infinity", "-Infinity", "0x10", " ", NaN, -Infinity, "1h NaN"]) expect(Either.isLeft(keepAliveSeconds(nan)), String(nan)).toBe(true)
  })

  it("`llmspell ps` reads any expiry a server reports: garbage is unknown, centuries away never, past now", () => {
    const now = Date.parse("2026-12-01T00:00:00Z")
    const model = (expiresAt: string | undefined) => ({ name: "m", ...(expiresAt !== undefined ? { expiresAt } : {}) })
    expect(unloadsIn(model("not a date"), now)).toBe("unknown")
    expect(unloadsIn(model("+275760-09-13T00:00:00.000Z"), now)).toBe("never")
    expect(unloadsIn(model("2318-11-01T00:00:00.000Z"), now)).toBe("never")
    expect(unloadsIn(model("2000-01-01T00:00:00Z"), now)).toBe("now")
    expect(unloadsIn(model("2026-12-01T00:04:00Z"), now)).toBe("in 4 min")
    expect(unloadsIn(model(undefined), now)).toBe("never")
  })

  it.scoped("a stored keep-alive no date can show (a library caller's 1e300 s) leaves ps and status working: no expiry, not a crash", () =>
    Effect.gen(function*() {
      const { backend, run } = yield* setup
      yield* run
      yield* backend.keepAlive!(A, 1e300)
      const ps = yield* backend.ps!
      expect(ps).toHaveLength(1)
      expect(ps[0]!.expiresAt).toBeUndefined()
      expect((yield* backend.status).loaded).toHaveLength(1)
    }))
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
        const written = yield* claimServeState({ pid: process.pid, url: "http://127.0.0.1:1234", startedAt: "now", apiKey: true }, options)
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

describe("the state file belongs to the server that wrote it", () => {
  /** A listening socket standing in for a running server's port. */
  const listening = Effect.acquireRelease(
    Effect.async<net.Server>((resume) => {
      const server = net.createServer((socket) => socket.destroy())
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  )
  const urlOf = (server: net.Server) => `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
  // a live process that is not this one: the test runner's parent
  const otherPid = process.ppid

  it.scoped("a second claim while the first server runs is refused, naming it and how to run a second; the first file stays", () =>
    Effect.gen(function*() {
      const home = mkdtempSync(join(tmpdir(), "llmspell-claim-"))
      const options = { env: {}, home }
      const path = statePath({}, home)
      const first = yield* listening
      mkdirSync(join(home, ".llmspell"), { recursive: true })
      const theirs = { pid: otherPid, url: urlOf(first), startedAt: "2026-12-01T00:00:00.000Z", version: "0.1.0", apiKey: false }
      writeFileSync(path, JSON.stringify(theirs))
      const refused = yield* Effect.flip(Effect.scoped(claimServeState({ pid: process.pid, url: "http://127.0.0.1:1", startedAt: "now" }, options)))
      expect(refused._tag).toBe("UsageError")
      expect(refused.message).toContain(`pid ${otherPid}`)
      expect(refused.message).toContain(urlOf(first))
      expect(refused.hint).toContain("XDG_RUNTIME_DIR")
      expect(refused.hint).toContain("--port")
      expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(theirs)
      expect(readdirSync(join(home, ".llmspell"))).toEqual(["serve.json"])
    }))

  it.scoped("a stale file is taken over: a dead pid, a live pid with nothing listening at its URL (a reused pid), a malformed file", () =>
    Effect.gen(function*() {
      const home = mkdtempSync(join(tmpdir(), "llmspell-claim-stale-"))
      const options = { env: {}, home }
      const path = statePath({}, home)
      mkdirSync(join(home, ".llmspell"), { recursive: true })
      const gone = yield* Effect.scoped(Effect.map(listening, urlOf))
      for (const stale of [
        JSON.stringify({ pid: 2 ** 30, url: "http://127.0.0.1:1", startedAt: "x" }),
        JSON.stringify({ pid: otherPid, url: gone, startedAt: "x" }),
        "{not json",
        ""
      ]) {
        writeFileSync(path, stale)
        const mine = { pid: process.pid, url: "http://127.0.0.1:2", startedAt: `claim ${stale.length}` }
        yield* Effect.scoped(Effect.gen(function*() {
          expect(yield* claimServeState(mine, options)).toEqual(Option.some(path))
          expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(mine)
        }))
        expect(existsSync(path), stale).toBe(false)
      }
      expect(readdirSync(join(home, ".llmspell"))).toEqual([])
    }))

  it.scoped("on close only its own file is removed: a file another server wrote since stays", () =>
    Effect.gen(function*() {
      const home = mkdtempSync(join(tmpdir(), "llmspell-claim-own-"))
      const options = { env: {}, home }
      const path = statePath({}, home)
      const other = { pid: otherPid, url: "http://127.0.0.1:3", startedAt: "later" }
      yield* Effect.scoped(Effect.gen(function*() {
        yield* claimServeState({ pid: process.pid, url: "http://127.0.0.1:2", startedAt: "mine" }, options)
        writeFileSync(path, JSON.stringify(other))
      }))
      expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(other)
    }))

  it.scoped("two claims at once: exactly one wins", () =>
    Effect.gen(function*() {
      const home = mkdtempSync(join(tmpdir(), "llmspell-claim-race-"))
      const options = { env: {}, home }
      const server = yield* listening
      const results = yield* Effect.forEach(
        [1, 2, 3, 4],
        (n) => Effect.either(claimServeState({ pid: process.pid, url: urlOf(server), startedAt: `racer ${n}` }, { ...options, isRunning: () => Effect.succeed(true) })),
        { concurrency: "unbounded" }
      )
      expect(results.filter((r) => r._tag === "Right")).toHaveLength(1)
    }))
})

describe("keep_alive at the server's edges, and every view of a stored one", () => {
  const TINY = "tiny.gguf@gguf"
  const serverDir = mkdtempSync(join(tmpdir(), "llmspell-keepalive-serve-"))
  let serve: ServeHarness
  beforeAll(async () => {
    serve = await startServe({ dir: serverDir })
    writeFileSync(join(serverDir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  })
  afterAll(async () => {
    await serve?.close()
  })
  const generate = (keepAlive: unknown) =>
    fetch(`${serve.url}/api/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY, prompt: "", stream: false, keep_alive: keepAlive })
    })
  const psJson = async () => {
    const r = await fetch(`${serve.url}/api/ps`)
    expect(r.status).toBe(200)
    return (await r.json()) as { models: Array<{ name: string; expires_at: string }> }
  }

  it("Ollama API: a keep_alive too long, overflowing or NaN-ish is 400 {error}; -1 stays forever; /api/ps answers", async () => {
    for (const bad of [1e13, "99999999999999999999h", "NaN", "1e13"]) {
      const r = await generate(bad)
      expect(r.status, String(bad)).toBe(400)
      expect(typeof ((await r.json()) as { error: unknown }).error).toBe("string")
    }
    expect((await generate(-1)).status).toBe(200)
    const ps = await psJson()
    expect(ps.models).toHaveLength(1)
    expect(Number.isNaN(Date.parse(ps.models[0]!.expires_at))).toBe(false)
  }, 60_000)

  it.effect("llmspell's protocol: KeepAlive and Load with a keep-alive no date can show fail with InvalidRequest", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const keep = yield* Effect.flip(llm.keepAlive(TINY, 1e300))
      expect(keep._tag).toBe("InvalidRequest")
      const load = yield* Effect.flip(llm.load(TINY, 1e300))
      expect(load._tag).toBe("InvalidRequest")
      expect(yield* llm.ps("gguf")).toHaveLength(1)
    }).pipe(Effect.provide(LlmspellRemote.layer({ url: serve.url }))), 60_000)

  it("a value stored past the edges (a library caller in the server's process): /api/ps, `llmspell ps` and `model status` still answer", async () => {
    ensureBuilt()
    await Effect.runPromise(serve.llm.keepAlive(TINY, 1e300))
    const ps = await psJson()
    expect(Number.isNaN(Date.parse(ps.models[0]!.expires_at))).toBe(false)
    const env = isolatedEnv(join(serverDir, "cli-home"))
    const table = await runCli(["ps"], { cwd: serverDir, env, mode: { host: serve.url } })
    expect(table.stderr).toBe("")
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/tiny\.gguf@gguf.*never/)
    const status = await runCli(["model", "status", "--backend", "gguf"], { cwd: serverDir, env, mode: { host: serve.url } })
    expect(status.stderr).not.toContain("bug")
    expect(status.code).toBe(0)
  }, 60_000)
})

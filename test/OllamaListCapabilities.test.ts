/**
 * An Ollama listing carries each model's capabilities: /api/tags has none (api/types.go
 * `ListModelResponse`), so the backend asks /api/show for the models it has no answer for, keyed by
 * name and digest, a few at a time (SHOW_CONCURRENCY, counted at the fake), sharing a show already
 * in flight. A show that fails leaves that model without capabilities; one that gets no answer
 * stops the listing asking more; interrupting the listing aborts its shows.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeCapture } from "../src/cli/CliIO.js"
import { main } from "../src/cli/main.js"
import type { OllamaInstanceConfig } from "../src/domain/ConfigSchema.js"
import * as OllamaBackendLive from "../src/layers/ollama/OllamaBackendLive.js"
import { gate } from "./fixtures/fakeHttp.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"

let fake: FakeOllama | undefined

afterEach(async () => {
  await fake?.close()
  fake = undefined
})

const CAPS: Record<string, Array<string>> = {
  chatty: ["completion", "tools"],
  llava: ["completion", "vision"],
  embedder: ["embedding"],
  thinker: ["completion", "tools", "thinking"]
}

const start = (names: ReadonlyArray<string> = Object.keys(CAPS)) =>
  Effect.promise(async () => {
    fake = await startFakeOllama({ models: names.map((n) => fakeModel(n, { capabilities: CAPS[n] ?? ["completion"] })) })
    return fake
  })

const backend = (f: FakeOllama, timeoutSeconds = 3600) =>
  OllamaBackendLive.make({ type: "ollama", name: "ollama", baseUrl: f.url, timeoutSeconds, options: {} } satisfies OllamaInstanceConfig)

const shows = (f: FakeOllama) => f.requests.filter((r) => r.path === "/api/show")
const showsOf = (f: FakeOllama, model: string) => shows(f).filter((r) => (r.body as { model?: string }).model === model).length
const modelOf = (x: { readonly body: unknown }) => (x.body as { model?: string } | undefined)?.model

/** Resolves once `n` shows are held at the fake at the same time (no polling: each wait is for the next hold). */
const heldShows = async (f: FakeOllama, n: number) => {
  const held = () => f.http.exchanges.filter((x) => x.path === "/api/show" && x.held).length
  while (held() < n) await f.http.next("held", { route: "/api/show" })
}

describe("Ollama listing capabilities", () => {
  it.effect("a listing after no show carries every model's capabilities; the next asks nothing", () =>
    Effect.gen(function*() {
      const f = yield* start()
      const instance = yield* backend(f)
      const listed = yield* instance.list
      expect(Object.fromEntries(listed.map((m) => [m.name, m.capabilities]))).toEqual({
        "chatty:latest": CAPS.chatty,
        "llava:latest": CAPS.llava,
        "embedder:latest": CAPS.embedder,
        "thinker:latest": CAPS.thinker
      })
      expect(shows(f)).toHaveLength(4)
      yield* instance.list
      expect(shows(f)).toHaveLength(4)
      // names only (the search for a model elsewhere): no show either
      f.state.models.push(fakeModel("newcomer"))
      const names = yield* instance.listNames!
      expect(names.map((m) => m.name)).toContain("newcomer:latest")
      expect(names.every((m) => m.capabilities === undefined)).toBe(true)
      expect(shows(f)).toHaveLength(4)
    }))

  it.effect("a model whose digest changed (re-pulled, re-created) is asked again, and only it", () =>
    Effect.gen(function*() {
      const f = yield* start()
      const instance = yield* backend(f)
      yield* instance.list
      const chatty = f.state.models.find((m) => m.name === "chatty:latest")!
      chatty.digest = "0".repeat(64)
      chatty.capabilities = ["completion", "tools", "vision"]
      const listed = yield* instance.list
      expect(listed.find((m) => m.name === "chatty:latest")?.capabilities).toEqual(["completion", "tools", "vision"])
      expect(showsOf(f, "chatty:latest")).toBe(2)
      expect(shows(f)).toHaveLength(5)
    }))

  it.effect("a request's show (no digest) is asked again by a listing, which then keeps it by digest", () =>
    Effect.gen(function*() {
      const f = yield* start(["chatty", "llava"])
      const instance = yield* backend(f)
      yield* instance.info("chatty")
      expect(shows(f)).toHaveLength(1)
      yield* instance.list
      expect(shows(f)).toHaveLength(3)
      yield* instance.list
      expect(shows(f)).toHaveLength(3)
    }))

  it.effect("a show failing for one model leaves it without capabilities, the others and the listing unharmed", () =>
    Effect.gen(function*() {
      const f = yield* start()
      f.http.fault({ route: "/api/show", match: (x) => modelOf(x) === "llava:latest", kind: "status", status: 500, times: 1 })
      const listed = yield* (yield* backend(f)).list
      const byName = new Map(listed.map((m) => [m.name, m.capabilities]))
      expect(byName.has("llava:latest")).toBe(true)
      expect(byName.get("llava:latest")).toBeUndefined()
      expect(byName.get("chatty:latest")).toEqual(CAPS.chatty)
      expect(byName.get("embedder:latest")).toEqual(CAPS.embedder)
      expect(byName.get("thinker:latest")).toEqual(CAPS.thinker)
    }))

  it.effect("a failed show is not kept: the next listing asks that model again", () =>
    Effect.gen(function*() {
      const f = yield* start(["chatty", "llava"])
      const inst = yield* backend(f)
      f.http.fault({ route: "/api/show", match: (x) => modelOf(x) === "llava:latest", kind: "status", status: 500, times: 1 })
      yield* inst.list
      const again = yield* inst.list
      expect(again.find((m) => m.name === "llava:latest")?.capabilities).toEqual(CAPS.llava)
      expect(showsOf(f, "llava:latest")).toBe(2)
      expect(showsOf(f, "chatty:latest")).toBe(1)
    }))

  it.effect(`at most ${OllamaBackendLive.SHOW_CONCURRENCY} shows at the server at once, and a show in flight is shared by two listings`, () =>
    Effect.gen(function*() {
      const names = Array.from({ length: 10 }, (_, i) => `model${i}`)
      const f = yield* start(names)
      let most = 0
      // counted as each show arrives: the shows the fake has not finished answering, this one included
      f.http.fault({
        route: "/api/show",
        kind: "hold",
        until: Promise.resolve(),
        match: () => {
          most = Math.max(most, f.http.exchanges.filter((e) => e.path === "/api/show" && !e.ended && !e.closed).length)
          return false
        }
      })
      const open = gate()
      f.http.fault({ route: "/api/show", kind: "hold", until: open })
      const inst = yield* backend(f)
      const first = yield* Effect.fork(inst.list)
      const second = yield* Effect.fork(inst.list)
      yield* Effect.promise(() => heldShows(f, OllamaBackendLive.SHOW_CONCURRENCY))
      // a request sent now reaches the fake after any show sent before it: none beyond the bound came
      yield* Effect.promise(() => fetch(`${f.url}/api/version`).then((r) => r.text()))
      expect(shows(f)).toHaveLength(OllamaBackendLive.SHOW_CONCURRENCY)
      open.open()
      const [a, b] = yield* Fiber.join(Fiber.zip(first, second))
      expect(a.every((m) => m.capabilities !== undefined)).toBe(true)
      expect(b.map((m) => m.capabilities)).toEqual(a.map((m) => m.capabilities))
      expect(most).toBe(OllamaBackendLive.SHOW_CONCURRENCY)
      // each model asked once, whichever listing sent its show
      expect(shows(f)).toHaveLength(names.length)
    }))

  it.effect("interrupting a listing whose shows hang aborts them (Ctrl-C, a client gone) and returns", () =>
    Effect.gen(function*() {
      const f = yield* start()
      const never = gate()
      f.http.fault({ route: "/api/show", kind: "hold", until: never })
      const inst = yield* backend(f)
      const listing = yield* Effect.fork(inst.list)
      yield* Effect.promise(() => heldShows(f, 4))
      yield* Fiber.interrupt(listing)
      const held = f.http.exchanges.filter((x) => x.path === "/api/show")
      yield* Effect.promise(() => Promise.all(held.map((x) => x.whenClosed)))
      expect(held.every((x) => x.aborted)).toBe(true)
      // an abandoned show is asked again by the next listing
      f.http.clearFaults()
      const listed = yield* inst.list
      expect(listed.every((m) => m.capabilities !== undefined)).toBe(true)
    }))

  it.effect(`one listing sends at most ${OllamaBackendLive.SHOWS_PER_LISTING} shows; the next asks for the rest`, () =>
    Effect.gen(function*() {
      const names = Array.from({ length: OllamaBackendLive.SHOWS_PER_LISTING + 6 }, (_, i) => `model${i}`)
      const f = yield* start(names)
      const inst = yield* backend(f)
      const first = yield* inst.list
      expect(shows(f)).toHaveLength(OllamaBackendLive.SHOWS_PER_LISTING)
      expect(first.filter((m) => m.capabilities === undefined)).toHaveLength(6)
      const second = yield* inst.list
      expect(shows(f)).toHaveLength(names.length)
      expect(second.every((m) => m.capabilities !== undefined)).toBe(true)
    }))

  it.effect("a show that gets no answer stops the listing asking more: a hung server costs one timeout, not one per model", () =>
    Effect.gen(function*() {
      const names = Array.from({ length: 12 }, (_, i) => `model${i}`)
      const f = yield* start(names)
      f.setFault("/api/show", { kind: "stallBeforeHeaders" })
      const inst = yield* backend(f, 1)
      const listed = yield* inst.list
      expect(listed.map((m) => m.name)).toHaveLength(names.length)
      expect(listed.every((m) => m.capabilities === undefined)).toBe(true)
      const sent = shows(f).length
      expect(sent).toBeGreaterThanOrEqual(1)
      expect(sent).toBeLessThanOrEqual(OllamaBackendLive.SHOW_CONCURRENCY)
    }))
})

describe("llmspell model list (in process)", () => {
  it.effect("each Ollama model with its capabilities, from a fresh process with nothing cached", () =>
    Effect.gen(function*() {
      const f = yield* start()
      const dir = mkdtempSync(join(tmpdir(), "llmspell-ollama-caps-"))
      try {
        const { code, stdout } = yield* cli(dir, f, ["model", "list", "--backend", "ollama", "--json"])
        expect(code).toBe(0)
        const models = (JSON.parse(stdout) as { models: Array<{ name: string; capabilities?: Array<string> }> }).models
        expect(Object.fromEntries(models.map((m) => [m.name, m.capabilities]))).toEqual({
          "chatty:latest": CAPS.chatty,
          "llava:latest": CAPS.llava,
          "embedder:latest": CAPS.embedder,
          "thinker:latest": CAPS.thinker
        })
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }))

  it.effect("the table shows no capabilities, and asks no show for them", () =>
    Effect.gen(function*() {
      const f = yield* start()
      const dir = mkdtempSync(join(tmpdir(), "llmspell-ollama-caps-"))
      try {
        const { code, stdout } = yield* cli(dir, f, ["model", "list", "--backend", "ollama"])
        expect(code).toBe(0)
        expect(stdout).toContain("chatty:latest")
        expect(shows(f)).toHaveLength(0)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }))
})

const cli = (dir: string, f: FakeOllama, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const capture = makeCapture()
    const code = yield* main(
      ["node", "llmspell", ...args],
      { HOME: dir, XDG_CONFIG_HOME: join(dir, "xdg"), OLLAMA_HOST: `${f.host}:${f.port}` },
      { cwd: dir, home: dir }
    ).pipe(Effect.provide(Layer.merge(capture.layer, NodeContext.layer)))
    return { code, stdout: capture.stdout() }
  })

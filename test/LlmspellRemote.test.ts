/**
 * LlmspellRemote against a real server (test/support/startServer.ts: the live stack behind
 * @effect/platform's Node HTTP server on 127.0.0.1, protocol at /rpc) with a generated GGUF and the
 * fake Ollama behind it: the same results and the same typed errors as the embedded LocalLLM,
 * interruption that reaches the backend, a server that is down or wants a key, the @effect/ai
 * adapters and the Promise facade over a connection.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BackendUnavailable, InvalidRequest, MissingCredentials, ModelNotFound, type ServerRefused } from "../src/domain/Errors.js"
import { exitCodeFor } from "../src/domain/Failure.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import * as LlmspellRemote from "../src/layers/LlmspellRemote.js"
import { createLocalLLM } from "../src/promise.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { startFakeHttp } from "./fixtures/fakeHttp.js"
import { fakeModel, type FakeOllama, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { isolatedEnv } from "./support/runCli.js"
import { startServer, type TestServer } from "./support/startServer.js"
import { unusedPort } from "./support/ports.js"

const dir = mkdtempSync(join(tmpdir(), "llmspell-remote-"))
const modelsDir = join(dir, "models")
mkdirSync(modelsDir)
const localModel = join(dir, "local.gguf")
writeFileSync(localModel, tinyLlamaGguf({ tensorType: "Q8_0", seed: 7 }))

let ollama: FakeOllama
let server: TestServer
let keyed: TestServer
let guarded: TestServer
let closedPort: number

const env = () =>
  isolatedEnv(dir, { OLLAMA_HOST: ollama.url, LLMSPELL_MODELS_DIR: modelsDir, LLMSPELL_GGUF_THREADS: "1" })

beforeAll(async () => {
  ollama = await startFakeOllama({ models: [fakeModel("llama3.2:latest")], answer: () => "one two three four five six" })
  server = await startServer({ env: env(), cwd: dir })
  keyed = await startServer({ env: env(), cwd: dir, apiKey: "s3cret-key" })
  // what `llmspell serve --read-only` (without --allow-paths) puts behind /rpc
  guarded = await startServer({ env: env(), cwd: dir, policy: { allowPaths: false, readOnly: true } })
  closedPort = await unusedPort()
})
afterAll(async () => {
  await server?.close()
  await keyed?.close()
  await guarded?.close()
  await ollama?.close()
})

const remote = () => LlmspellRemote.layer({ url: server.url, cwd: dir })
const embedded = () => LlmspellLive.layer({ env: env(), cwd: dir, home: dir })
const user = { role: "user" as const, content: "hi" }

describe("LlmspellRemote", () => {
  it.effect("lists, reports and describes exactly what the embedded LocalLLM does", () =>
    Effect.gen(function*() {
      const ask = Effect.gen(function*() {
        const llm = yield* LocalLLM
        return {
          list: yield* llm.list(),
          instances: yield* llm.instances(),
          info: yield* llm.info("llama3.2@ollama"),
          file: yield* llm.info(localModel)
        }
      })
      const there = yield* Effect.provide(ask, remote())
      const here = yield* Effect.provide(ask, embedded())
      expect(there).toEqual(here)
      expect(there.list.models.map((m) => m.name)).toContain("llama3.2:latest")
    }), 180_000)

  it.effect("a ModelNotFound on the server is a ModelNotFound here, hint included; an invalid request never leaves", () =>
    Effect.gen(function*() {
      const missing = (llm: LocalLLM["Type"]) => Effect.flip(llm.info("nothere@ollama"))
      const there = yield* Effect.provide(Effect.flatMap(LocalLLM, missing), remote())
      const here = yield* Effect.provide(Effect.flatMap(LocalLLM, missing), embedded())
      expect(there).toBeInstanceOf(ModelNotFound)
      expect(there.message).toBe(here.message)
      expect((there as ModelNotFound).hint).toBe((here as ModelNotFound).hint)
      const invalid = yield* Effect.provide(
        Effect.flatMap(LocalLLM, (llm) => Effect.flip(llm.run("llama3.2@ollama", { messages: [user], temperature: -1 }))),
        remote()
      )
      expect(invalid).toBeInstanceOf(InvalidRequest)
    }), 180_000)

  it.effect("the server's policy holds over the protocol: no file paths without --allow-paths, nothing written under --read-only", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      for (
        const refused of [
          Effect.flip(llm.run(localModel, { messages: [user], maxTokens: 2 })),
          Effect.flip(Stream.runDrain(llm.generate(localModel, { messages: [user], maxTokens: 2 }))),
          Effect.flip(llm.info(localModel)),
          Effect.flip(llm.embed(localModel, ["x"]))
        ]
      ) {
        const e = yield* refused
        expect(e._tag).toBe("ServerRefused")
        expect(exitCodeFor(e)).toBe(2)
        expect((e as ServerRefused).hint).toContain("llmspell serve --allow-paths")
      }
      expect(yield* Effect.flip(llm.importFile(localModel))).toMatchObject({ _tag: "ServerRefused" })
      const pull = yield* Effect.flip(Stream.runDrain(llm.pull("org/repo:Q8_0")))
      expect(pull).toMatchObject({ _tag: "ServerRefused", option: "--read-only" })
      const remove = yield* Effect.flip(llm.remove("llama3.2@ollama"))
      expect(remove).toMatchObject({ _tag: "ServerRefused", option: "--read-only" })
      // names are served as usual
      const result = yield* llm.run("llama3.2@ollama", { messages: [user] })
      expect(result.text).toBe("one two three four five six")
      expect(ollama.requests.filter((r) => r.path === "/api/delete")).toEqual([])
    }).pipe(Effect.provide(LlmspellRemote.layer({ url: guarded.url, cwd: dir }))), 180_000)

  it.effect("load puts a model in the server's memory without generating; stop takes it out; a missing one is ModelNotFound", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const loadedNames = Effect.map(llm.ps("gguf"), (ps) => ps.map((m) => m.name))
      yield* llm.unload(localModel)
      expect(yield* loadedNames).toEqual([])
      yield* llm.load(localModel, -1)
      const [entry] = yield* llm.ps("gguf")
      expect(entry?.name).toContain("local.gguf")
      expect(entry?.expiresAt).toBeUndefined() // negative: kept until unloaded
      yield* llm.unload(localModel)
      expect(yield* loadedNames).toEqual([])
      expect(yield* Effect.flip(llm.load(join(dir, "missing.gguf")))).toMatchObject({ _tag: "ModelNotFound" })
    }).pipe(Effect.provide(remote())), 180_000)

  it.effect("generates from a GGUF file and from Ollama through the server", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const events = yield* Stream.runCollect(llm.generate(localModel, { messages: [user], maxTokens: 4, seed: 1 }))
      expect([...events].at(-1)?._tag).toBe("Finish")
      const result = yield* llm.run("llama3.2@ollama", { messages: [user] })
      expect(result.text).toBe("one two three four five six")
    }).pipe(Effect.provide(remote())), 180_000)

  // 60 s, under the server's Ollama timeout_seconds (120 s): the chat must close because it was aborted.
  it.effect("interrupting a remote generation cancels it on the server: its backend request is aborted", () =>
    Effect.gen(function*() {
      ollama.clearLog()
      ollama.setFault("/api/chat", { kind: "stall", after: 1, times: 1 })
      const llm = yield* LocalLLM
      // The first delta arrives, then the backend stalls; leaving the stream interrupts the call.
      const first = yield* Stream.runHead(llm.generate("llama3.2@ollama", { messages: [user] }))
      expect(first._tag).toBe("Some")
      const chat = ollama.responses.find((r) => r.route === "/api/chat")!
      // Settles only when the server's Ollama request is aborted (the fake stalls forever otherwise).
      yield* Effect.promise(() => chat.closed)
      // it never got past the stall: the close is the server's abort
      expect(chat.sent).toBe(1)
      // and the server still serves
      const result = yield* llm.run("llama3.2@ollama", { messages: [user] })
      expect(result.text).toBe("one two three four five six")
    }).pipe(Effect.provide(remote())), 60_000)

  it.effect("a server that is down: BackendUnavailable naming the URL, exit 4, hint `llmspell serve`", () =>
    Effect.gen(function*() {
      const url = `http://127.0.0.1:${closedPort}`
      const error = yield* Effect.flip(Effect.provide(LocalLLM, LlmspellRemote.layer({ url })))
      expect(error).toBeInstanceOf(BackendUnavailable)
      expect(error.message).toContain(url)
      expect(error.hint).toContain("llmspell serve")
      expect(exitCodeFor(error)).toBe(4)
    }))

  it.scoped("a server that goes away mid-answer: BackendUnavailable saying the connection dropped, not 'HTTP 200'", () =>
    Effect.gen(function*() {
      // answers every /rpc request with 200 and NDJSON headers, then drops the connection
      const dropping = yield* Effect.acquireRelease(Effect.promise(() => startFakeHttp()), (s) => Effect.promise(() => s.close()))
      dropping.fallback((x) => x.stream([], { headers: { "content-type": "application/ndjson" }, fault: { kind: "drop", after: 0 } }))
      const url = dropping.url
      // the connection asks the server for its instances first: that answer is the one cut off
      const error = yield* Effect.flip(Effect.flatMap(LlmspellRemote.make({ url }), (llm) => llm.info("llama3.2@ollama")))
      expect(error).toBeInstanceOf(BackendUnavailable)
      expect(error.message).toContain(url)
      expect(error.message).toContain("the connection dropped in the middle of the answer")
      expect(exitCodeFor(error)).toBe(4)
    }))

  it.effect("with an API key: the right one works, a wrong one is a clear error that never shows a key", () =>
    Effect.gen(function*() {
      const ok = yield* Effect.provide(
        Effect.flatMap(LocalLLM, (llm) => llm.instances()),
        LlmspellRemote.layer({ url: keyed.url, apiKey: "s3cret-key" })
      )
      expect(ok.length).toBeGreaterThan(0)
      const error = yield* Effect.flip(
        Effect.provide(Effect.flatMap(LocalLLM, (llm) => llm.info("llama3.2@ollama")), LlmspellRemote.layer({ url: keyed.url, apiKey: "wrong-key" }))
      )
      // a server that refuses the key is a credentials problem (exit 2), not a server that is down
      expect(error).toBeInstanceOf(MissingCredentials)
      expect(error.message).toContain("401")
      expect((error as MissingCredentials).hint).toContain("LLMSPELL_API_KEY")
      expect(`${error.message} ${(error as MissingCredentials).hint}`).not.toMatch(/s3cret|wrong-key/)
    }), 180_000)

  it.effect("LanguageModel over the remote LocalLLM", () =>
    Effect.gen(function*() {
      const response = yield* LanguageModel.generateText({ prompt: "hi" })
      expect(response.text).toBe("one two three four five six")
    }).pipe(Effect.provide(LlmspellRemote.languageModel("llama3.2@ollama").pipe(Layer.provide(remote())))), 180_000)

  it("createLocalLLM({ url }) runs against the server", async () => {
    const llm = createLocalLLM({ url: server.url })
    try {
      const result = await llm.run("llama3.2@ollama", "hi")
      expect(result.text).toBe("one two three four five six")
      await expect(llm.info("nothere@ollama")).rejects.toMatchObject({ _tag: "ModelNotFound", exitCode: 3 })
    } finally {
      await llm.close()
    }
  }, 180_000)
})

/**
 * `llmspell serve` under trouble: a client that disconnects mid-stream aborts its generation and
 * frees its slot and sequence (shown by the upstream request closing, the load going back to
 * zero and a follow-up succeeding, not by timing); generations beyond the slots queue up to
 * --max-queue, then 503 with Retry-After; malformed bodies get 400 with the decode error; a bad
 * GGUF fails its request only; and SIGTERM through the built CLI drains a stream in flight and
 * exits 0, removing the state file.
 */
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeAnswerInput, type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { bin, ensureBuilt, isolatedEnv } from "./support/runCli.js"

let dir: string
let fake: FakeOllama
let serve: ServeHarness

const LONG = Array.from({ length: 400 }, (_, i) => `word${i}`).join(" ")
const answer = (input: FakeAnswerInput) => (input.prompt.includes("long") ? LONG : `You said: ${input.prompt}`)

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-reliability-"))
  fake = await startFakeOllama({ models: [fakeModel("agent")], answer, chunkDelayMs: 5 })
  serve = await startServe({ dir, ollamaUrl: fake.url }, { concurrency: 1, maxQueue: 1 })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  writeFileSync(join(dir, "models", "bad.gguf"), Buffer.concat([Buffer.from("GGUF"), Buffer.alloc(64, 0xff)]))
})

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

const post = (path: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${serve.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), ...(signal ? { signal } : {}) })

const chat = (model: string, content: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: "user", content }], ...extra })

/** Reads a streamed response until its first chunk. */
const firstChunk = async (response: Response) => {
  const reader = response.body!.getReader()
  const { value } = await reader.read()
  return { reader, text: new TextDecoder().decode(value) }
}

const idle = () => serve.waitForLoad((l) => l.running === 0 && l.queued === 0 && l.inFlight === 0)

describe("client disconnects mid-stream", () => {
  it("on an Ollama-backed model: the upstream request is aborted, the slot freed, the next request served", async () => {
    fake.clearLog()
    const controller = new AbortController()
    const response = await post("/api/chat", chat("agent@ollama", "say something long"), controller.signal)
    expect(response.status).toBe(200)
    const { text } = await firstChunk(response)
    expect(text).toContain("word0")
    controller.abort()
    const upstream = fake.responses.find((r) => r.route === "/api/chat")!
    await upstream.closed
    expect(upstream.sent).toBeLessThan(400) // the fake streams one record a word: it was cut off
    await idle()
    const next = await post("/api/chat", chat("agent@ollama", "hi", { stream: false }))
    expect(next.status).toBe(200)
    expect((await next.json() as { message: { content: string } }).message.content).toBe("You said: hi")
  })

  it("on the GGUF model (one sequence): the sequence is given back, so a follow-up generation runs", async () => {
    const controller = new AbortController()
    const response = await post("/v1/chat/completions", chat("tiny.gguf@gguf", "go", { stream: true, max_tokens: 480 }), controller.signal)
    expect(response.status).toBe(200)
    await firstChunk(response)
    controller.abort()
    await idle()
    const loaded = await Effect.runPromise(serve.llm.ps("gguf"))
    expect(loaded.every((m) => (m.activeRequests ?? 0) === 0)).toBe(true)
    const next = await post("/api/chat", chat("tiny.gguf@gguf", "again", { stream: false, options: { num_predict: 4 } }))
    expect(next.status).toBe(200)
    expect((await next.json() as { done: boolean }).done).toBe(true)
  })
})

describe("queue", () => {
  it("beyond the running generation and --max-queue waiting ones: 503 with Retry-After, in each API's error shape", async () => {
    fake.setFault("/api/chat", { kind: "stall", after: 1, times: 1 })
    const holder = new AbortController()
    const first = await post("/api/chat", chat("agent@ollama", "hold"), holder.signal)
    await firstChunk(first)
    const waiting = post("/api/chat", chat("agent@ollama", "wait", { stream: false }))
    await serve.waitForLoad((l) => l.queued === 1)
    const refused = await post("/api/chat", chat("agent@ollama", "no room", { stream: false }))
    expect(refused.status).toBe(503)
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0)
    expect((await refused.json() as { error: string }).error).toContain("--max-queue")
    const refusedV1 = await post("/v1/chat/completions", chat("agent@ollama", "no room"))
    expect(refusedV1.status).toBe(503)
    expect((await refusedV1.json() as { error: { type: string } }).error.type).toBe("server_error")
    holder.abort()
    const served = await waiting
    expect(served.status).toBe(200)
    expect((await served.json() as { message: { content: string } }).message.content).toBe("You said: wait")
    await idle()
  })
})

describe("bad input", () => {
  const corpus: ReadonlyArray<[string, string]> = [
    ["empty", ""],
    ["truncated", `{"model":"agent@ollama","messages":[`],
    ["not an object", `[1,2,3]`],
    ["null", "null"],
    ["model a number", `{"model":42,"messages":[]}`],
    ["messages a string", `{"model":"agent@ollama","messages":"hi","prompt":5,"input":5}`],
    ["unknown role", `{"model":"agent@ollama","messages":[{"role":"wizard","content":"x"}],"prompt":["x"],"input":{}}`],
    ["temperature a string", `{"model":"agent@ollama","messages":[{"role":"user","content":"x"}],"prompt":"x","input":7,"options":{"temperature":"hot"},"temperature":"hot"}`],
    ["negative temperature", `{"model":"agent@ollama","messages":[{"role":"user","content":"x"}],"prompt":"x","input":null,"options":{"temperature":-1},"temperature":-1,"stream":false}`],
    ["deep nesting", `${"[".repeat(5000)}${"]".repeat(5000)}`],
    ["bad utf-8 and controls", `{"model":"\u0000\u001b[31m","messages":[{"role":"user","content":"\ud800"}],"stream":false}`]
  ]
  for (const path of ["/api/chat", "/api/generate", "/api/embed", "/v1/chat/completions", "/v1/embeddings", "/v1/responses"]) {
    it(`${path}: each malformed body is a 400 with a message, and the server keeps serving`, async () => {
      for (const [name, body] of corpus) {
        const r = await fetch(`${serve.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body })
        expect(r.status, `${name}`).toBeGreaterThanOrEqual(400)
        expect(r.status, `${name}`).toBeLessThan(500)
        const json = await r.json() as { error: string | { message: string } }
        const message = typeof json.error === "string" ? json.error : json.error.message
        expect(message.length, name).toBeGreaterThan(0)
      }
      expect((await fetch(`${serve.url}/api/tags`)).status).toBe(200)
    })
  }

  it("the decode error says which field is wrong and how, in a line, not the request's whole type", async () => {
    const cases: ReadonlyArray<[string, unknown, string]> = [
      ["/api/chat", { model: "agent@ollama", messages: "hi" }, `invalid request: messages: Expected an array, actual "hi"`],
      ["/api/chat", [], "invalid request: Expected an object, actual []"],
      ["/api/chat", { model: "agent@ollama", messages: [{ role: "wizard", content: "x" }] }, `invalid request: messages[0].role: Expected "system" | "user" | "assistant" | "tool", actual "wizard"`]
    ]
    for (const [path, body, expected] of cases) {
      const r = await post(path, body)
      expect(r.status).toBe(400)
      expect((await r.json() as { error: string }).error).toBe(expected)
    }
    const v1 = await post("/v1/chat/completions", { model: "agent@ollama", messages: [{ role: "user", content: "x" }], n: 3, temperature: "hot" })
    expect(v1.status).toBe(400)
    const message = (await v1.json() as { error: { message: string } }).error.message
    // the decode error and the refused field (RequestFields: n is 1 only), both in one line
    expect(message).toMatch(/^invalid request: temperature: Expected .*actual "hot"; n 3 is not supported by llmspell serve: .*one choice per request$/)
    expect(message.length).toBeLessThan(200)
  })

  it("a GGUF that fails to load fails that request only; the good model is served next", async () => {
    const bad = await post("/api/chat", chat("bad.gguf@gguf", "x", { stream: false }))
    expect(bad.status).toBeGreaterThanOrEqual(400)
    expect((await bad.json() as { error: string }).error.length).toBeGreaterThan(0)
    const badStream = await post("/v1/chat/completions", chat("bad.gguf@gguf", "x", { stream: true }))
    expect(badStream.status).toBeGreaterThanOrEqual(400)
    const good = await post("/api/chat", chat("tiny.gguf@gguf", "x", { stream: false, options: { num_predict: 2 } }))
    expect(good.status).toBe(200)
  })
})

describe("drain on SIGTERM through the built CLI", () => {
  it("a stream in flight finishes, the process exits 0 and removes its state file", async () => {
    ensureBuilt()
    const home = join(dir, "cli-home")
    const runtime = join(home, "run")
    mkdirSync(runtime, { recursive: true })
    const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--drain-timeout", "60"], {
      cwd: dir,
      env: isolatedEnv(home, { OLLAMA_HOST: fake.url, XDG_RUNTIME_DIR: runtime, LLMSPELL_MODELS_DIR: join(dir, "models") }),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString("utf8")
        const match = /listening on (http:\/\/\S+)/.exec(stderr)
        if (match) resolve(match[1]!)
      })
      child.on("close", () => reject(new Error(`serve exited early: ${stderr}`)))
    })
    const state = join(runtime, "llmspell", "serve.json")
    expect(existsSync(state)).toBe(true)
    const response = await fetch(`${url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chat("agent@ollama", "something long"))
    })
    const reader = response.body!.getReader()
    let text = new TextDecoder().decode((await reader.read()).value)
    child.kill("SIGTERM")
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    const lines = text.trim().split("\n").map((l) => JSON.parse(l) as { done: boolean; message: { content: string } })
    expect(lines.at(-1)!.done).toBe(true)
    expect(lines.map((l) => l.message.content).join("")).toBe(LONG)
    expect(await exited).toBe(0)
    expect(stderr).toContain("stopping")
    expect(existsSync(state)).toBe(false)
  }, 120_000)
})

/**
 * `GET /metrics` on `llmspell serve`, read with a real Prometheus parser (and `promtool check
 * metrics` where it is installed), while real clients (`openai`) use the server: the counters and
 * histograms move with requests, a client that goes away, a worker that crashes; the gauges follow
 * what is loaded and running; no label comes from a request body; the route needs the key like
 * every other.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { TEST_ABORT_ENV } from "../src/layers/gguf/workerProtocol.js"
import { type FakeAnthropic, startFakeAnthropic } from "./fixtures/fakeAnthropic.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { gate } from "./fixtures/fakeHttp.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { countOf, type Exposition, parseExposition, promtoolCheck, valueOf } from "./fixtures/promText.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"
import "./fixtures/ggufWorkerBundle.js"

// the worker's test hook aborts (SIGABRT, as a llama.cpp assert does) when it generates from this file
process.env[TEST_ABORT_ENV] = "generate:crash-generate"

let dir: string
let fake: FakeOllama
let cloud: FakeAnthropic
let serve: ServeHarness
let client: OpenAI

const TINY = "tiny.gguf@gguf"
const AGENT = "agent@ollama"

const scrapeText = async (headers: Record<string, string> = {}) => {
  const response = await fetch(`${serve.url}/metrics`, { headers })
  expect(response.status).toBe(200)
  return { text: await response.text(), contentType: response.headers.get("content-type") }
}
const scrape = async (): Promise<Exposition> => parseExposition((await scrapeText()).text)

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-metrics-"))
  fake = await startFakeOllama({ models: [fakeModel("agent")] })
  cloud = await startFakeAnthropic({ apiKey: "sk-ant-upstream", answer: () => ({ content: "From the cache.", cacheReadInputTokens: 30 }) })
  serve = await startServe({
    dir,
    ollamaUrl: fake.url,
    gguf: { isolation: "process" },
    providers: { anthropic: { provider_type: "anthropic", base_url: cloud.baseUrl, api_key: "sk-ant-upstream" } }
  })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  writeFileSync(join(dir, "models", "crash-generate.gguf"), tinyLlamaGguf({ seed: 3 }))
  client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "unused", maxRetries: 0 })
})

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  await cloud?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe("GET /metrics", () => {
  it("is the Prometheus text format: every family llmspell_-prefixed, typed, counters ending in _total", async () => {
    const { text, contentType } = await scrapeText()
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/)
    const { families } = parseExposition(text)
    const names = families.map((f) => f.name)
    for (const name of names) expect(name).toMatch(/^llmspell_[a-z0-9_]+$/)
    for (const f of families) {
      expect(f.help.length).toBeGreaterThan(0)
      if (f.type === "COUNTER") expect(f.name).toMatch(/_total$/)
      else expect(f.name).not.toMatch(/_total$/)
    }
    // the families a dashboard needs are there before their first sample
    for (const name of ["llmspell_time_to_first_token_seconds", "llmspell_prompt_tokens_total", "llmspell_worker_crashes_total", "llmspell_requests_waiting"]) {
      expect(names).toContain(name)
    }
    expect(text).toMatch(/^# TYPE llmspell_time_to_first_token_seconds histogram$/m)
    const lint = promtoolCheck(text)
    if (lint !== undefined) expect(lint.output).toBe("")
  })

  it("a chat completion, plain and streamed, moves the request, token and latency figures", async () => {
    const before = await scrape()
    const plain = await client.chat.completions.create({
      model: TINY,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello" }],
      max_tokens: 8,
      seed: 1
    })
    let streamedUsage: OpenAI.CompletionUsage | undefined
    const stream = await client.chat.completions.create({
      model: TINY,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi again" }],
      max_tokens: 8,
      seed: 2,
      stream: true,
      stream_options: { include_usage: true }
    })
    for await (const chunk of stream) if (chunk.usage != null) streamedUsage = chunk.usage
    const after = await scrape()
    const model = { model: TINY, backend: "gguf" }
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels)
    const countDelta = (name: string, labels: Record<string, string> = {}) => countOf(after, name, labels) - countOf(before, name, labels)

    expect(delta("llmspell_http_requests_total", { route: "/v1/chat/completions", status_class: "2xx" })).toBe(2)
    expect(delta("llmspell_generations_total", model)).toBe(2)
    expect(delta("llmspell_prompt_tokens_total", model)).toBe(plain.usage!.prompt_tokens + streamedUsage!.prompt_tokens)
    expect(delta("llmspell_completion_tokens_total", model)).toBe(plain.usage!.completion_tokens + streamedUsage!.completion_tokens)
    expect(countDelta("llmspell_time_to_first_token_seconds", model)).toBe(2)
    expect(countDelta("llmspell_e2e_request_latency_seconds", model)).toBe(2)
    expect(countDelta("llmspell_request_queue_time_seconds")).toBe(2)
    expect(countDelta("llmspell_http_request_duration_seconds", { route: "/v1/chat/completions" })).toBe(2)
    // the model was loaded for these (once, in a worker process): loaded now, with its memory and sequences
    expect(valueOf(after, "llmspell_model_loads_total", { backend: "gguf" })).toBeGreaterThanOrEqual(1)
    expect(valueOf(after, "llmspell_models_loaded", { backend: "gguf" })).toBeGreaterThanOrEqual(1)
    expect(valueOf(after, "llmspell_model_memory_bytes", model)).toBeGreaterThan(0)
    expect(valueOf(after, "llmspell_sequences_capacity", model)).toBe(1)
    expect(valueOf(after, "llmspell_sequences_busy", model)).toBe(0)
    // ps says what the metrics know, per model
    const ps = await Effect.runPromise(serve.llm.ps("gguf"))
    const tiny = ps.find((m) => m.name === "tiny.gguf")
    expect(tiny?.requests).toBeGreaterThanOrEqual(2)
    expect(tiny?.tokensPerSecond).toBeGreaterThan(0)
  })

  it("`llmspell ps` connected to the server shows per model what it served: sequences busy/total, requests, tokens/s (--json too)", async () => {
    ensureBuilt()
    const env = isolatedEnv(join(dir, "cli-home"))
    const json = await runCli(["ps", "--json"], { cwd: dir, env, mode: { host: serve.url } })
    expect(json.stderr).toBe("")
    const models = (JSON.parse(json.stdout) as { models: Array<Record<string, unknown>> }).models
    const tiny = models.find((m) => m["name"] === "tiny.gguf")
    expect(tiny).toMatchObject({ sequences: { busy: 0, total: 1 } })
    expect(tiny?.["requests"]).toBeGreaterThanOrEqual(2)
    expect(tiny?.["tokensPerSecond"]).toBeGreaterThan(0)
    const table = await runCli(["ps"], { cwd: dir, env, mode: { host: serve.url } })
    expect(table.code).toBe(0)
    const [header, ...rows] = table.stdout.trim().split("\n")
    // the GGUF model reports its prompts' cached tokens (the same chat sent twice above), so ps has a cache column
    expect(tiny?.["cacheHitRate"]).toBeGreaterThan(0)
    expect(header).toMatch(/NAME\s+SIZE\s+CONTEXT\s+DEVICE\s+BUSY\s+REQUESTS\s+TOKENS\/S\s+CACHE HITS\s+UNLOADS/)
    expect(rows.find((r) => r.startsWith(TINY))).toMatch(new RegExp(`0/1\\s+${String(tiny?.["requests"])}\\s+\\d+\\.\\d`))
  }, 60_000)

  it("cached prompt tokens a backend reports (Anthropic's cache_read_input_tokens) move their counter, inside the prompt tokens", async () => {
    const before = await scrape()
    const reply = await client.chat.completions.create({ model: "anthropic/claude-3-5-haiku-latest", messages: [{ role: "user", content: "the same long system context again ".repeat(20) }] })
    const after = await scrape()
    const labels = { model: "anthropic/claude-3-5-haiku-latest", backend: "cloud" }
    const delta = (name: string) => valueOf(after, name, labels) - valueOf(before, name, labels)
    expect(delta("llmspell_cached_prompt_tokens_total")).toBe(30)
    expect(delta("llmspell_prompt_tokens_total")).toBe(reply.usage!.prompt_tokens)
    expect(reply.usage!.prompt_tokens).toBeGreaterThanOrEqual(30)
  })

  it("a request waiting for its answer shows in the running gauge; a client that goes away is counted as cancelled", async () => {
    // one answer first, so the model's spec is a known label
    await client.chat.completions.create({ model: AGENT, messages: [{ role: "user", content: "warm up" }] })
    const before = await scrape()
    const open = gate()
    fake.setFault("/api/chat", { kind: "hold", until: open, after: 1, times: 1 })
    const abort = new AbortController()
    const stream = await client.chat.completions.create(
      { model: AGENT, messages: [{ role: "user", content: "a long answer please" }], stream: true },
      { signal: abort.signal }
    )
    const iterator = stream[Symbol.asyncIterator]()
    await iterator.next()
    const during = await scrape()
    expect(valueOf(during, "llmspell_requests_running")).toBe(1)
    expect(valueOf(during, "llmspell_http_requests_in_flight")).toBeGreaterThanOrEqual(2)
    abort.abort()
    await iterator.next().catch(() => undefined)
    // the slot is freed after the generation's finalizer ran (the request scope closes in reverse order)
    await serve.waitForLoad((l) => l.running === 0)
    open.open()
    const after = await scrape()
    expect(
      valueOf(after, "llmspell_generations_total", { model: "agent:latest@ollama", outcome: "cancelled" }) -
        valueOf(before, "llmspell_generations_total", { model: "agent:latest@ollama", outcome: "cancelled" })
    ).toBe(1)
    expect(valueOf(after, "llmspell_requests_running")).toBe(0)
  })

  it("a worker that crashes mid-generation is counted, and the failed generation with it", async () => {
    const before = await scrape()
    await expect(
      client.chat.completions.create({ model: "crash-generate.gguf@gguf", messages: [{ role: "user", content: "hello" }], max_tokens: 4 })
    ).rejects.toMatchObject({ status: 500 })
    const after = await scrape()
    expect(
      valueOf(after, "llmspell_worker_crashes_total", { backend: "gguf", cause: "crash" }) -
        valueOf(before, "llmspell_worker_crashes_total", { backend: "gguf", cause: "crash" })
    ).toBe(1)
    expect(valueOf(after, "llmspell_generations_total", { outcome: "error" }) - valueOf(before, "llmspell_generations_total", { outcome: "error" })).toBe(1)
    expect(valueOf(after, "llmspell_http_requests_total", { status_class: "5xx" }) - valueOf(before, "llmspell_http_requests_total", { status_class: "5xx" })).toBe(1)
  })

  it("no label comes from a request: unknown models, prompt text and random paths stay out of the exposition", async () => {
    const canary = "CANARY-prompt-7f3a"
    for (let i = 0; i < 5; i++) {
      await expect(
        client.chat.completions.create({ model: `no-such-model-${canary}-${i}@gguf`, messages: [{ role: "user", content: `${canary} ${i}` }] })
      ).rejects.toMatchObject({ status: 404 })
      await fetch(`${serve.url}/probe/${canary}-${i}?q=${canary}`)
    }
    const { text } = await scrapeText()
    expect(text).not.toContain(canary)
    const families = parseExposition(text)
    expect(valueOf(families, "llmspell_http_requests_total", { route: "other", status_class: "4xx" })).toBeGreaterThanOrEqual(5)
    expect(valueOf(families, "llmspell_generations_total", { model: "unknown", outcome: "error" })).toBeGreaterThanOrEqual(5)
    const routes = new Set(families.families.find((f) => f.name === "llmspell_http_requests_total")!.metrics.map((s) => s.labels?.["route"]))
    for (const route of routes) expect(["/v1/chat/completions", "/metrics", "other", "/api/chat", "/api/tags", "/rpc"]).toContain(route)
  })
})

describe("GET /metrics behind the API key", () => {
  let keyed: ServeHarness
  beforeAll(async () => {
    keyed = await startServe({ dir: join(dir, "keyed") }, { apiKey: Redacted.make("s3cret-key-metrics") })
  })
  afterAll(async () => {
    await keyed?.close()
  })

  it("refuses a scrape without the key (401) and answers one with it; the key is in no sample", async () => {
    const authorized = async () => {
      const ok = await fetch(`${keyed.url}/metrics`, { headers: { authorization: "Bearer s3cret-key-metrics" } })
      expect(ok.status).toBe(200)
      const text = await ok.text()
      expect(text).not.toContain("s3cret")
      return parseExposition(text)
    }
    const before = await authorized()
    expect((await fetch(`${keyed.url}/metrics`)).status).toBe(401)
    expect((await fetch(`${keyed.url}/metrics`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401)
    const after = await authorized()
    const refused = { route: "/metrics", status_class: "4xx" }
    expect(valueOf(after, "llmspell_http_requests_total", refused) - valueOf(before, "llmspell_http_requests_total", refused)).toBe(2)
  })
})

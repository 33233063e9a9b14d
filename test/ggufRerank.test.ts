/**
 * GGUF rerank with the real node-llama-cpp on a generated reranker (a tiny qwen3 with a two-label
 * classifier head, test/fixtures/rerankerGguf.ts): through the worker process and in-process, the
 * scores of a plain `LlamaRankingContext.rankAll` on the same file (within 1e-4) in the same order;
 * a chat model refused from its header (no classifier head), before anything is loaded; a document
 * over the context is ContextOverflow naming it; the ranking context is a pool entry of its own;
 * `/v1/rerank` on `llmspell serve`; capabilities from the header (rerank, thinking).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseGgufBuffer } from "../src/domain/GgufReader.js"
import { factsOfFile } from "../src/domain/ModelFacts.js"
import { rankingSupport } from "../src/domain/Rerank.js"
import { TEST_TRACE_ENV } from "../src/layers/gguf/workerProtocol.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { tinyLlamaGguf, v } from "./fixtures/ggufWriter.js"
import "./fixtures/ggufWorkerBundle.js"
import { tinyRerankerGguf } from "./fixtures/rerankerGguf.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

// real llama.cpp work (loads, worker processes) on a 2-core machine shared with other jobs; nothing here waits for time
vi.setConfig({ testTimeout: 120_000 })

const dir = mkdtempSync(join(tmpdir(), "llmspell-gguf-rerank-"))
const models = join(dir, "models")
mkdirSync(models)
const RERANKER = join(models, "reranker.gguf")
const CHAT = join(models, "chat.gguf")
writeFileSync(RERANKER, tinyRerankerGguf({ vocabSize: 400, seed: 3 }))
writeFileSync(CHAT, tinyLlamaGguf({ vocabSize: 400, seed: 4 }))

// the worker writes what it does here (`<pid> rank <id> start`, `… stopped`): how a test sees inside it
const TRACE = join(dir, "worker-trace.log")
process.env[TEST_TRACE_ENV] = TRACE

/** The first traced rank event `event` written after line `after`: its line and request id. */
const traced = (event: "start" | "stopped", after = -1) =>
  Effect.async<{ readonly line: number; readonly id: string }>((resume) => {
    const find = () => {
      const lines = existsSync(TRACE) ? readFileSync(TRACE, "utf8").split("\n") : []
      for (let line = after + 1; line < lines.length; line++) {
        const m = /^(\d+) rank (\d+) (\w+)$/.exec(lines[line]!)
        if (m !== null && m[3] === event) return { line, id: `${m[1]} ${m[2]}` }
      }
      return undefined
    }
    const timer = setInterval(() => {
      const found = find()
      if (found !== undefined) {
        clearInterval(timer)
        resume(Effect.succeed(found))
      }
    }, 10)
    return Effect.sync(() => clearInterval(timer))
  })

const lastLine = () => (existsSync(TRACE) ? readFileSync(TRACE, "utf8").split("\n").length - 2 : -1)

const QUERY = "the cat"
const DOCS = ["the cat sat on the mat", "a dog barks at night", "hello world", "yes no", "", "the cat and the dog play"]

let baseline: ReadonlyArray<number>
beforeAll(async () => {
  const { getLlama } = await import("node-llama-cpp")
  const llama = await getLlama({ build: "never", gpu: false, logLevel: "error" as never })
  const model = await llama.loadModel({ modelPath: RERANKER })
  const ranking = await model.createRankingContext({ contextSize: 256, threads: 1 })
  baseline = await ranking.rankAll(QUERY, DOCS)
  await model.dispose()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const stack = (isolation: "process" | "none") =>
  LlmspellLive.layerFromObject(
    {
      providers: {
        gguf: { provider_type: "gguf", model_directory: models, threads: 1, context_size: 256, parallel: 1, isolation }
      },
      hub: { offline: true },
      stores: { ollama: false, hf_cache: false, lmstudio: false, node_llama_cpp: false }
    },
    { env: {}, home: dir }
  )

const expectBaseline = (results: ReadonlyArray<{ readonly index: number; readonly relevanceScore: number }>) => {
  const expected = baseline.map((score, index) => ({ index, score })).sort((a, b) => b.score - a.score || a.index - b.index)
  expect(results.map((r) => r.index)).toEqual(expected.map((e) => e.index))
  for (const r of results) expect(Math.abs(r.relevanceScore - baseline[r.index]!)).toBeLessThan(1e-4)
}

describe.each(["process", "none"] as const)("GGUF rerank (isolation %s)", (isolation) => {
  it.effect("the scores of a plain rankAll, best first, with the tokens read; topN cuts", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      // the scores differ per document: an order to check
      expect(new Set(baseline.map((s) => s.toFixed(6))).size).toBe(DOCS.length)
      const result = yield* llm.rerank("reranker.gguf@gguf", { query: QUERY, documents: DOCS })
      expect(result).toMatchObject({ backend: "gguf", instance: "gguf" })
      expectBaseline(result.results)
      expect(result.promptTokens).toBeGreaterThan(DOCS.length)
      const top = yield* llm.rerank("reranker.gguf@gguf", { query: QUERY, documents: DOCS, topN: 2 })
      expect(top.results).toEqual(result.results.slice(0, 2))
      const loaded = yield* llm.ps("gguf")
      expect(loaded.map((m) => m.name)).toEqual(["reranker.gguf"])
    }).pipe(Effect.provide(stack(isolation))))

  it.effect("a chat model is refused from its header (no classifier head) before any load; a document over the context names its index", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const refused = yield* Effect.flip(llm.rerank("chat.gguf@gguf", { query: QUERY, documents: DOCS }))
      expect(refused._tag).toBe("UnsupportedOperation")
      expect(refused.message).toMatch(/no classifier head/)
      expect(yield* llm.ps("gguf")).toEqual([])
      const long = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ")
      const over = yield* Effect.flip(llm.rerank("reranker.gguf@gguf", { query: QUERY, documents: ["short", long, "x"] }))
      expect(over._tag).toBe("ContextOverflow")
      if (over._tag === "ContextOverflow") {
        expect([over.operation, over.document]).toEqual(["rerank", 1])
        expect(over.message).toMatch(/the query with document 1 \(\d+ tokens\) is longer than reranker\.gguf's context of 256 tokens/)
      }
      // the model still ranks afterwards
      const after = yield* llm.rerank("reranker.gguf@gguf", { query: QUERY, documents: DOCS })
      expectBaseline(after.results)
    }).pipe(Effect.provide(stack(isolation))))
})

describe("GGUF rerank interrupted (worker process)", () => {
  it.effect("the worker gets Cancel and stops between documents; the model ranks the next request", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      yield* llm.rerank("reranker.gguf@gguf", { query: QUERY, documents: DOCS })
      const before = lastLine()
      const many = Array.from({ length: 10_000 }, (_, i) => `document ${i} about the cat`)
      const fiber = yield* Effect.fork(llm.rerank("reranker.gguf@gguf", { query: QUERY, documents: many }))
      const started = yield* traced("start", before)
      yield* Fiber.interrupt(fiber)
      expect((yield* traced("stopped", started.line)).id).toBe(started.id)
      const after = yield* llm.rerank("reranker.gguf@gguf", { query: QUERY, documents: DOCS })
      expectBaseline(after.results)
    }).pipe(Effect.provide(stack("process"))))
})

describe("GGUF rerank on llmspell serve", () => {
  let serve: ServeHarness
  beforeAll(async () => {
    serve = await startServe({ dir: join(dir, "serve"), gguf: { model_directory: models, context_size: 256, isolation: "process" } })
  })
  afterAll(async () => {
    await serve?.close()
  })

  it("/v1/rerank answers the plain rankAll's scores; a chat model is a 400 saying why", async () => {
    const response = await fetch(`${serve.url}/v1/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "reranker.gguf@gguf", query: QUERY, documents: DOCS.map((text) => ({ text })) })
    })
    expect(response.status).toBe(200)
    const body = await response.json() as { results: Array<{ index: number; relevance_score: number }>; usage: { prompt_tokens: number } }
    expectBaseline(body.results.map((r) => ({ index: r.index, relevanceScore: r.relevance_score })))
    expect(body.usage.prompt_tokens).toBeGreaterThan(0)
    const refused = await fetch(`${serve.url}/rerank`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "chat.gguf@gguf", query: QUERY, documents: DOCS })
    })
    expect(refused.status).toBe(400)
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/no classifier head/)
  })
})

describe("llmspell rerank on a GGUF file (built CLI)", () => {
  it("--json holds the plain rankAll's scores; the table is best first; a chat model exits non-zero saying why", async () => {
    ensureBuilt()
    const env = isolatedEnv(dir, { LLMSPELL_MODELS_DIR: models, LLMSPELL_GGUF_THREADS: "1" })
    const json = await runCli(["--local", "rerank", "-m", "./models/reranker.gguf", "-q", QUERY, ...DOCS, "--json"], { cwd: dir, env })
    expect(json.code).toBe(0)
    expectBaseline(JSON.parse(json.stdout).results)
    const table = await runCli(["--local", "rerank", "-m", "./models/reranker.gguf", "-q", QUERY, "--top", "1", ...DOCS], { cwd: dir, env })
    const best = baseline.indexOf(Math.max(...baseline))
    expect(table.stdout.trimEnd().split("\n")[1]!.split(/\s{2,}/)).toEqual(["1", baseline[best]!.toFixed(4), String(best), DOCS[best]])
    const refused = await runCli(["--local", "rerank", "-m", "./models/chat.gguf", "-q", QUERY, "a", "b"], { cwd: dir, env })
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/^error: .*cannot rank: it has no classifier head/m)
    expect(refused.stderr).toMatch(/^hint: use a reranker GGUF/m)
  })
})

describe("capabilities and ranking support from the header", () => {
  const parsed = (bytes: Uint8Array) => {
    const result = parseGgufBuffer(bytes)
    if (result._tag !== "Ok") throw new Error("not a GGUF")
    return result.file
  }
  it("a reranker: rerank (not embedding, not completion); a chat model: completion; a thinking template: thinking", () => {
    const reranker = parsed(tinyRerankerGguf({ vocabSize: 300 }))
    expect(rankingSupport(reranker)).toEqual({ ok: true, template: "separator" })
    expect(factsOfFile(reranker, "r.gguf").capabilities).toEqual(["rerank"])
    const chat = parsed(tinyLlamaGguf())
    expect(rankingSupport(chat)).toMatchObject({ ok: false })
    expect(factsOfFile(chat, "c.gguf").capabilities).toEqual(["completion"])
    const thinker = parsed(tinyLlamaGguf({ overrideMetadata: { "tokenizer.chat_template": v.str("{{ messages }}{% if not enable_thinking %}<think>\n\n</think>\n\n{% endif %}") } }))
    expect(factsOfFile(thinker, "t.gguf").capabilities).toEqual(["completion", "thinking"])
    const headless = parsed(tinyRerankerGguf({ vocabSize: 300, withHead: false }))
    expect(rankingSupport(headless)).toMatchObject({ ok: false, reason: expect.stringMatching(/no classifier head/) })
  })
})


/**
 * `llmspell serve`'s rerank: `POST /v1/rerank` and `POST /rerank` in llama-server's/Jina's shape
 * over the whole live stack, with an `openai_compatible` instance at the fake OpenAI server (its
 * `/v1/rerank`) behind it: documents as strings or `{text}`, `top_n`, `return_documents`, usage;
 * the same order as LocalLLM.rerank; errors in OpenAI's shape without a CLI hint (a bad body, an
 * unknown field, Ollama's refusal, a document over the context named by index, a missing model);
 * the API key and the admission queue of the other routes; the protocol at /rpc (LlmspellRemote).
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as LlmspellRemote from "../src/layers/LlmspellRemote.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { deterministicRelevance } from "../src/testing/MockBackend.js"
import { gate } from "./fixtures/fakeHttp.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"

const MODEL = "llama/bge-reranker"
const DOCS = ["the cat sat on the mat", "a dog barks at night", "a cat and a dog play in the garden", "nothing relevant here"]

let dir: string
let upstream: FakeOpenAI
let ollama: FakeOllama
let serve: ServeHarness
let keyed: ServeHarness
let narrow: ServeHarness

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-rerank-"))
  upstream = await startFakeOpenAI({ models: ["bge-reranker"], rerankContextTokens: 40 })
  ollama = await startFakeOllama({ models: [fakeModel("llama3.2")] })
  const providers = { llama: { provider_type: "openai_compatible", base_url: upstream.baseUrl } }
  serve = await startServe({ dir, ollamaUrl: ollama.url, providers, extra: { serve: { aliases: { "bge-reranker-v2-m3": MODEL } } } })
  keyed = await startServe({ dir: join(dir, "keyed"), providers }, { apiKey: Redacted.make("s3cret") })
  narrow = await startServe({ dir: join(dir, "narrow"), providers }, { concurrency: 1, maxQueue: 0 })
})

afterAll(async () => {
  await Promise.all([serve?.close(), keyed?.close(), narrow?.close()])
  await Promise.all([upstream?.close(), ollama?.close()])
  rmSync(dir, { recursive: true, force: true })
})

const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) })

describe("POST /v1/rerank and /rerank", () => {
  it("strings or {text}, top_n, return_documents: results best first with usage, the order of LocalLLM.rerank", async () => {
    const direct = await Effect.runPromise(serve.llm.rerank(MODEL, { query: "cat dog", documents: DOCS }))
    for (const path of ["/v1/rerank", "/rerank"]) {
      const response = await post(serve.url, path, {
        model: MODEL,
        query: "cat dog",
        documents: [DOCS[0], { text: DOCS[1] }, DOCS[2], { text: DOCS[3] }],
        top_n: 3,
        return_documents: true
      })
      expect(response.status).toBe(200)
      const body = await response.json() as any
      expect(body.model).toBe(MODEL)
      expect(body.results).toEqual(direct.results.slice(0, 3).map((r) => ({
        index: r.index,
        relevance_score: r.relevanceScore,
        document: { text: DOCS[r.index] }
      })))
      expect(body.results[0].relevance_score).toBe(deterministicRelevance("cat dog", DOCS[2]!))
      expect(body.usage.prompt_tokens).toBeGreaterThan(0)
      expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens)
    }
    const plain = await (await post(serve.url, "/v1/rerank", { model: MODEL, query: "garden", documents: DOCS })).json() as any
    expect(plain.results).toHaveLength(4)
    expect(plain.results[0]).toEqual({ index: 2, relevance_score: 1 })
    // a [serve.aliases] name reaches the spec it names, as on the other routes
    const aliased = await (await post(serve.url, "/rerank", { model: "bge-reranker-v2-m3", query: "garden", documents: DOCS })).json() as any
    expect(aliased.results).toEqual(plain.results)
  })

  it("errors in OpenAI's shape, never a CLI hint", async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [{ model: MODEL, documents: DOCS }, 400, /query/],
      [{ model: MODEL, query: "q", documents: [1] }, 400, /documents\[0\]/],
      [{ model: MODEL, query: "q", documents: DOCS, top_n: 0 }, 400, /top_n must be an integer ≥ 1; got 0/],
      [{ model: MODEL, query: "q", documents: DOCS, max_tokens_per_doc: 10 }, 400, /max_tokens_per_doc/],
      [{ model: MODEL, query: "q", documents: DOCS, bogus: 1 }, 400, /bogus/],
      [{ query: "q", documents: DOCS }, 400, /model is required/],
      [{ model: "llama3.2@ollama", query: "q", documents: DOCS }, 400, /Ollama has no rerank API/],
      [{ model: "llama/missing", query: "q", documents: DOCS }, 404, /missing/],
      [{ model: MODEL, query: "q", documents: ["short", Array.from({ length: 60 }, (_, i) => `w${i}`).join(" ")] }, 400, /one of the documents .*shorten or split the longest documents/]
    ]
    for (const [body, status, message] of cases) {
      for (const path of ["/v1/rerank", "/rerank"]) {
        const response = await post(serve.url, path, body)
        const answer = await response.json() as any
        expect({ path, body, status: response.status }).toEqual({ path, body, status })
        expect(answer.error.message).toMatch(message)
        expect(typeof answer.error.type).toBe("string")
        expect(answer.error.message).not.toMatch(/llmspell (model|rerank|run)|--[a-z]/)
      }
    }
  })

  it("the API key: 401 in OpenAI's shape on both paths without it, 200 with it", async () => {
    for (const path of ["/v1/rerank", "/rerank"]) {
      const refused = await post(keyed.url, path, { model: MODEL, query: "q", documents: DOCS })
      expect(refused.status).toBe(401)
      expect(((await refused.json()) as any).error.message).toMatch(/unauthorized|key/i)
      const allowed = await post(keyed.url, path, { model: MODEL, query: "q", documents: DOCS }, { authorization: "Bearer s3cret" })
      expect(allowed.status).toBe(200)
    }
  })

  it("the admission queue: with one slot and no queue, a second rerank is a 503 while the first runs", async () => {
    const held = gate()
    upstream.setFault("/v1/rerank", { kind: "hold", afterChunks: "request", until: held, times: 1 })
    const first = post(narrow.url, "/v1/rerank", { model: MODEL, query: "cat", documents: DOCS })
    await narrow.waitForLoad((l) => l.running === 1)
    const second = await post(narrow.url, "/rerank", { model: MODEL, query: "cat", documents: DOCS })
    expect(second.status).toBe(503)
    expect(second.headers.get("retry-after")).not.toBeNull()
    held.open()
    expect((await first).status).toBe(200)
    upstream.setFault("/v1/rerank", undefined)
  })
})

describe("the protocol at /rpc", () => {
  it("LlmspellRemote reranks as the embedded LocalLLM does; a bad request is InvalidRequest", async () => {
    const program = Effect.gen(function*() {
      const llm = yield* LocalLLM
      const result = yield* llm.rerank(MODEL, { query: "cat dog", documents: DOCS, topN: 2 })
      const bad = yield* Effect.flip(llm.rerank(MODEL, { query: "q", documents: DOCS, topN: 0 }))
      const ollamaRefusal = yield* Effect.flip(llm.rerank("llama3.2@ollama", { query: "q", documents: DOCS }))
      return { result, bad, ollamaRefusal }
    })
    const { bad, ollamaRefusal, result } = await Effect.runPromise(
      program.pipe(Effect.provide(LlmspellRemote.layer({ url: serve.url, cwd: dir })))
    )
    const direct = await Effect.runPromise(serve.llm.rerank(MODEL, { query: "cat dog", documents: DOCS, topN: 2 }))
    expect(result).toEqual(direct)
    expect(bad._tag).toBe("InvalidRequest")
    expect(ollamaRefusal._tag).toBe("UnsupportedOperation")
    expect(ollamaRefusal._tag === "UnsupportedOperation" && ollamaRefusal.hint).toMatch(/openai_compatible/)
  })
})

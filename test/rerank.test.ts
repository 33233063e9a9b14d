/**
 * Rerank through the library: LocalLLM.rerank over the scripted backends (order, topN, the request
 * check, a broken backend answer, Ollama's refusal), the Reranker service, and the cloud backend
 * against the fake OpenAI-compatible server — an `openai_compatible` instance (llama-server's
 * `/v1/rerank`), the Cohere (`/v2/rerank` beside its compatibility base URL) and Jina presets —
 * with its refusals: a server without rerank, an input over the context, a missing model, no key.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { finishReranking, validateRerankRequest } from "../src/domain/Rerank.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import * as RerankerLive from "../src/layers/RerankerLive.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import * as Reranker from "../src/services/Reranker.js"
import { createLocalLLM } from "../src/promise.js"
import { LlmspellMock } from "../src/testing/LlmspellMock.js"
import { deterministicRelevance } from "../src/testing/MockBackend.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"

const DOCS = [
  "the cat sat on the mat",
  "a dog barks at night",
  "a cat and a dog play in the garden",
  "nothing relevant here"
]

const mock = (scores?: (query: string, document: string) => number) =>
  LlmspellMock.make({
    gguf: { models: [{ name: "reranker.gguf", ...(scores !== undefined ? { rerank: scores } : {}) }] },
    ollama: { models: ["llama3.2:latest"] }
  })

describe("LocalLLM.rerank over scripted backends", () => {
  it.effect("results are sorted by score (ties in request order), cut to topN, with the tokens read", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const all = yield* llm.rerank("reranker.gguf@gguf", { query: "cat dog", documents: DOCS })
      expect(all.results.map((r) => r.index)).toEqual([2, 0, 1, 3])
      expect(all.results.map((r) => r.relevanceScore)).toEqual([1, 0.5, 0.5, 0])
      expect(all.promptTokens).toBeGreaterThan(0)
      expect([all.backend, all.instance]).toEqual(["gguf", "gguf"])
      const top = yield* llm.rerank("reranker.gguf@gguf", { query: "cat dog", documents: DOCS, topN: 2 })
      expect(top.results).toEqual(all.results.slice(0, 2))
      const more = yield* llm.rerank("reranker.gguf@gguf", { query: "cat", documents: DOCS, topN: 99 })
      expect(more.results).toHaveLength(4)
    }).pipe(Effect.provide(mock().layer)))

  it.effect("no documents: an empty result without asking the model", () =>
    Effect.gen(function*() {
      const m = mock()
      const result = yield* Effect.flatMap(LocalLLM, (llm) => llm.rerank("reranker.gguf@gguf", { query: "q", documents: [] })).pipe(
        Effect.provide(m.layer)
      )
      expect(result.results).toEqual([])
      expect(m.calls.filter((c) => c.operation === "rerank")).toHaveLength(0)
    }))

  it.effect("a request out of range is InvalidRequest naming the field, before anything is routed", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      for (const topN of [0, -1, 1.5, Number.NaN]) {
        const e = yield* Effect.flip(llm.rerank("reranker.gguf@gguf", { query: "q", documents: DOCS, topN }))
        expect(e._tag).toBe("InvalidRequest")
        if (e._tag === "InvalidRequest") expect([e.field, e.option]).toEqual(["topN", "--top"])
      }
      const bad = yield* Effect.flip(llm.rerank("reranker.gguf@gguf", { query: "q", documents: ["a", 3 as unknown as string] }))
      expect(bad._tag).toBe("InvalidRequest")
      if (bad._tag === "InvalidRequest") expect(bad.field).toBe("documents.1")
      const many = yield* Effect.flip(llm.rerank("nowhere@gguf", { query: "q", documents: Array.from({ length: 10_001 }, () => "x") }))
      expect(many._tag).toBe("InvalidRequest")
      const noQuery = yield* Effect.flip(llm.rerank("reranker.gguf@gguf", { documents: DOCS } as never))
      expect(noQuery._tag).toBe("InvalidRequest")
    }).pipe(Effect.provide(mock().layer)))

  it.effect("a backend's broken answer (a NaN score) is a BackendError, not a wrong order", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const e = yield* Effect.flip(llm.rerank("reranker.gguf@gguf", { query: "cat", documents: DOCS }))
      expect(e._tag).toBe("BackendError")
      expect(e.message).toMatch(/score of document 1 is not a finite number/)
    }).pipe(Effect.provide(mock((_, d) => (d.includes("dog barks") ? Number.NaN : 1)).layer)))

  it("finishReranking refuses out-of-range, repeated and missing indexes", () => {
    const request = { query: "q", documents: ["a", "b", "c"] }
    const base = { model: "m", backend: "cloud" as const, instance: "x", promptTokens: 0 }
    const check = (results: Array<{ index: number; relevanceScore: number }>, topN?: number) =>
      finishReranking(topN === undefined ? request : { ...request, topN }, { ...base, results })
    expect(check([{ index: 3, relevanceScore: 1 }, { index: 0, relevanceScore: 0 }, { index: 1, relevanceScore: 0 }])._tag).toBe("Left")
    expect(check([{ index: 0, relevanceScore: 1 }, { index: 0, relevanceScore: 0 }, { index: 1, relevanceScore: 0 }])._tag).toBe("Left")
    expect(check([{ index: 0, relevanceScore: 1 }])._tag).toBe("Left")
    // a backend that applied top_n itself
    const cut = check([{ index: 2, relevanceScore: 0.9 }], 1)
    expect(cut._tag === "Right" && cut.right.results).toEqual([{ index: 2, relevanceScore: 0.9 }])
    expect(validateRerankRequest({ query: "q", documents: [], topN: 3 })._tag).toBe("Right")
  })

  it.effect("Ollama: UnsupportedOperation whose hint names backends that can rank", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const e = yield* Effect.flip(llm.rerank("llama3.2@ollama", { query: "q", documents: DOCS }))
      expect(e._tag).toBe("UnsupportedOperation")
      if (e._tag !== "UnsupportedOperation") return
      expect(e.message).toContain("ollama/ollama#3368")
      expect(e.hint).toMatch(/GGUF reranker/)
      expect(e.hint).toMatch(/openai_compatible/)
      expect(e.hint).toMatch(/cohere\//)
    }).pipe(Effect.provide(mock().layer)))
})

describe("the Reranker service", () => {
  it.effect("rerank and rerankBy over a spec, from the context", () =>
    Effect.gen(function*() {
      const reranking = yield* Reranker.rerank("cat dog", DOCS, { topN: 1 })
      expect(reranking.results).toEqual([{ index: 2, relevanceScore: 1 }])
      const items = DOCS.map((text, id) => ({ id: `doc-${id}`, text }))
      const ranked = yield* Reranker.rerankBy("cat dog", items, (i) => i.text)
      expect(ranked.map((r) => r.item.id)).toEqual(["doc-2", "doc-0", "doc-1", "doc-3"])
      expect(ranked[0]!.relevanceScore).toBe(1)
      const refused = yield* Effect.flip(Effect.provide(Reranker.rerank("q", DOCS), RerankerLive.layer("llama3.2@ollama")))
      expect(refused._tag).toBe("UnsupportedOperation")
    }).pipe(
      Effect.provide(Layer.provideMerge(RerankerLive.layer("reranker.gguf@gguf"), mock().layer))
    ))
})

describe("the Promise facade", () => {
  it("rerank(spec, query, documents, { topN }) resolves to the Reranking; a refusal rejects with the typed error", async () => {
    const llm = createLocalLLM({ layer: mock().layer })
    try {
      const result = await llm.rerank("reranker.gguf@gguf", "cat dog", DOCS, { topN: 2 })
      expect(result.results.map((r) => r.index)).toEqual([2, 0])
      await expect(llm.rerank("llama3.2@ollama", "q", DOCS)).rejects.toMatchObject({ _tag: "UnsupportedOperation" })
    } finally {
      await llm.close()
    }
  })
})

const KEY = "sk-rerank-test-0123456789"
let llamaServer: FakeOpenAI
let noRerank: FakeOpenAI
let hosted: FakeOpenAI
beforeAll(async () => {
  llamaServer = await startFakeOpenAI({ models: ["bge-reranker-v2-m3"], rerankContextTokens: 40 })
  noRerank = await startFakeOpenAI({ models: ["bge-reranker-v2-m3"], rerank: false })
  hosted = await startFakeOpenAI({ apiKey: KEY, models: ["rerank-v3.5", "jina-reranker-v2-base-multilingual"] })
})
afterAll(async () => {
  await Promise.all([llamaServer?.close(), noRerank?.close(), hosted?.close()])
})

const cloudStack = (env: Record<string, string> = { COHERE_API_KEY: KEY, JINA_API_KEY: KEY }) =>
  LlmspellLive.layerFromObject(
    {
      providers: {
        llama: { provider_type: "openai_compatible", base_url: llamaServer.baseUrl },
        plain: { provider_type: "openai_compatible", base_url: noRerank.baseUrl },
        // Cohere's chat is at /compatibility/v1; its rerank at /v2/rerank on the same host
        cohere: { base_url: `${hosted.origin}/compatibility/v1` },
        jina: { base_url: hosted.baseUrl },
        openai: { base_url: hosted.baseUrl }
      }
    },
    { env: { OPENAI_API_KEY: KEY, ...env }, home: "/nonexistent-home" }
  )

describe("rerank on cloud and OpenAI-compatible backends (fake servers)", () => {
  it.effect("openai_compatible: POST {base_url}/rerank in llama-server's shape; scores and usage from the answer", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const before = llamaServer.requests.length
      const result = yield* llm.rerank("llama/bge-reranker-v2-m3", { query: "cat dog", documents: DOCS, topN: 3 })
      expect(result.results.map((r) => r.index)).toEqual([2, 0, 1])
      expect(result.results[0]!.relevanceScore).toBe(deterministicRelevance("cat dog", DOCS[2]!))
      expect(result.promptTokens).toBeGreaterThan(0)
      const sent = llamaServer.requests.slice(before)
      expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual(["POST /v1/rerank"])
      expect(sent[0]!.body).toEqual({ model: "bge-reranker-v2-m3", query: "cat dog", documents: DOCS, top_n: 3 })
    }).pipe(Effect.provide(cloudStack())))

  it.effect("a query + document over the server's context is ContextOverflow; a missing model ModelNotFound", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ")
      const e = yield* Effect.flip(llm.rerank("llama/bge-reranker-v2-m3", { query: "cat", documents: ["short", long] }))
      expect(e._tag).toBe("ContextOverflow")
      expect(e.message).toMatch(/nothing was truncated/)
      const missing = yield* Effect.flip(llm.rerank("llama/nope", { query: "cat", documents: DOCS }))
      expect(missing._tag).toBe("ModelNotFound")
    }).pipe(Effect.provide(cloudStack())))

  it.effect("a server without rerank (llama-server without --reranking: 501) is UnsupportedOperation in its own words", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const e = yield* Effect.flip(llm.rerank("plain/bge-reranker-v2-m3", { query: "cat", documents: DOCS }))
      expect(e._tag).toBe("UnsupportedOperation")
      expect(e.message).toMatch(/no rerank API \(HTTP 501 on POST \/rerank: This server does not support reranking/)
    }).pipe(Effect.provide(cloudStack())))

  it.effect("Cohere: /v2/rerank on the base URL's host, the key as a bearer token, input tokens from meta", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const before = hosted.requests.length
      const result = yield* llm.rerank("cohere/rerank-v3.5", { query: "cat dog", documents: DOCS })
      expect(result.results.map((r) => r.index)).toEqual([2, 0, 1, 3])
      expect(result.promptTokens).toBeGreaterThan(0)
      const sent = hosted.requests.slice(before)
      expect(sent.map((r) => `${r.method} ${r.path} ${r.authorized}`)).toEqual(["POST /v2/rerank true"])
    }).pipe(Effect.provide(cloudStack())))

  it.effect("Jina: {base_url}/rerank; a provider without rerank (OpenAI) and a missing key are refused before sending", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const before = hosted.requests.length
      const result = yield* llm.rerank("jina/jina-reranker-v2-base-multilingual", { query: "garden", documents: DOCS, topN: 1 })
      expect(result.results).toEqual([{ index: 2, relevanceScore: 1 }])
      expect(hosted.requests.slice(before).map((r) => r.path)).toEqual(["/v1/rerank"])
      const openai = yield* Effect.flip(llm.rerank("openai/gpt-4o-mini", { query: "q", documents: DOCS }))
      expect(openai._tag).toBe("UnsupportedOperation")
      expect(hosted.requests.length).toBe(before + 1)
    }).pipe(Effect.provide(cloudStack())))

  it.effect("no JINA_API_KEY: MissingCredentials naming the variable, nothing sent", () =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      const before = hosted.requests.length
      const e = yield* Effect.flip(llm.rerank("jina/jina-reranker-v2-base-multilingual", { query: "q", documents: DOCS }))
      expect(e._tag).toBe("MissingCredentials")
      expect(e.hint).toContain("JINA_API_KEY")
      expect(hosted.requests.length).toBe(before)
    }).pipe(Effect.provide(cloudStack({}))))
})

/**
 * GGUF embeddings and tokenize with the real node-llama-cpp on a generated model, through the
 * worker process (and once in-process): the same input gives the same vector, a vector has the
 * model's `embedding_length` dimensions, a batch gives the vectors of one-by-one requests, an
 * input longer than the context is ContextOverflow (nothing truncated), the embedding context is
 * a pool entry of its own (listed, LRU-evicted against max_loaded_models), `EmbeddingModelLive`
 * on a GGUF spec, and `llmspell embed -m <file.gguf>` through the built CLI.
 */
import * as EmbeddingModel from "@effect/ai/EmbeddingModel"
import * as Prompt from "@effect/ai/Prompt"
import * as Tokenizer from "@effect/ai/Tokenizer"
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { GgufInstanceConfig } from "../src/domain/ConfigSchema.js"
import { Embeddings } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import * as LlamaLoaderLive from "../src/layers/gguf/LlamaLoaderLive.js"
import { EmbeddingModelLive, TokenizerLive } from "../src/index.js"
import { tokenizerFromBackend } from "../src/layers/TokenizerAdapter.js"
import type { Backend } from "../src/services/Backend.js"
import { ModelDownloaderMock } from "../src/testing/index.js"
import { ggufInstance } from "./fixtures/ggufBackendFakes.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import "./fixtures/ggufWorkerBundle.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

// real llama.cpp work (loads, worker processes, a built CLI) on a 2-core machine shared with other
// jobs: a test here took 20–30 s at load average 20; nothing in it waits for time to pass
vi.setConfig({ testTimeout: 120_000 })

const dir = mkdtempSync(join(tmpdir(), "llmspell-gguf-embed-"))
const MODEL = join(dir, "embedder.gguf")
const OTHER = join(dir, "other.gguf")
const EMBEDDING_LENGTH = 96
writeFileSync(MODEL, tinyLlamaGguf({ vocabSize: 400, embeddingLength: EMBEDDING_LENGTH, headCount: 4, seed: 7 }))
writeFileSync(OTHER, tinyLlamaGguf({ seed: 8 }))

// EmbeddingModelLive reads the config from the usual places: point them at this directory
writeFileSync(
  join(dir, "llmspell.toml"),
  `[providers.gguf]\nprovider_type = "gguf"\nmodel_directory = "${join(dir, "models")}"\nthreads = 1\ncontext_size = 256\n`
)
process.env.HOME = dir
process.env.XDG_CONFIG_HOME = join(dir, "xdg")
process.env.LLMSPELL_CONFIG = join(dir, "llmspell.toml")

afterAll(() => rmSync(dir, { recursive: true, force: true }))

const loader = LlamaLoaderLive.make()
const backendWith = (overrides: Partial<GgufInstanceConfig> = {}) =>
  makeBackend(ggufInstance({ modelDirectory: dir, contextSize: 256, threads: 1, ...overrides }), loader, ModelDownloaderMock().service)

const maxDifference = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) =>
  a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0)

describe("GGUF embed (worker process)", () => {
  it.scoped("the same input gives the same vector, of the model's embedding_length; distinct inputs differ", () =>
    Effect.gen(function*() {
      const b = yield* backendWith()
      const first = yield* b.embed(MODEL, ["hello world"])
      const again = yield* b.embed(MODEL, ["hello world"])
      const other = yield* b.embed(MODEL, ["something else"])
      const info = yield* b.info(MODEL)
      expect(info.embeddingLength).toBe(EMBEDDING_LENGTH)
      expect(first).toMatchObject({ backend: "gguf", instance: "gguf", dimensions: EMBEDDING_LENGTH })
      expect(first.vectors).toHaveLength(1)
      expect(first.vectors[0]).toHaveLength(EMBEDDING_LENGTH)
      expect(first.vectors[0]!.every(Number.isFinite)).toBe(true)
      expect(again.vectors[0]).toEqual(first.vectors[0])
      expect(maxDifference(first.vectors[0]!, other.vectors[0]!)).toBeGreaterThan(1e-6)
      // BOS (and EOS where the vocabulary adds it) count as prompt tokens, as node-llama-cpp evaluates them
      expect(first.promptTokens).toBeGreaterThanOrEqual(yield* Effect.map(b.tokenize!(MODEL, "hello world"), (t) => t.length))
    }))

  it.scoped("a batch gives, in order, the vectors and token counts of one-by-one requests", () =>
    Effect.gen(function*() {
      const b = yield* backendWith()
      const inputs = ["alpha beta", "gamma", "", "a somewhat longer input with more words in it", "alpha beta"]
      const batch = yield* b.embed(MODEL, inputs)
      expect(batch.vectors).toHaveLength(inputs.length)
      let tokens = 0
      for (const [i, text] of inputs.entries()) {
        const one = yield* b.embed(MODEL, [text])
        expect(one.vectors[0]).toHaveLength(EMBEDDING_LENGTH)
        expect(maxDifference(batch.vectors[i]!, one.vectors[0]!)).toBeLessThanOrEqual(1e-6)
        tokens += one.promptTokens
      }
      expect(batch.promptTokens).toBe(tokens)
      expect(batch.vectors[4]).toEqual(batch.vectors[0])
    }))

  it.scoped("an input longer than the context is ContextOverflow (operation embed) before any vector; shorter ones still work", () =>
    Effect.gen(function*() {
      const b = yield* backendWith()
      const long = Array.from({ length: 300 }, (_, i) => `w${i}`).join(" ")
      const error = yield* Effect.flip(b.embed(MODEL, ["short", long]))
      expect(error).toMatchObject({ _tag: "ContextOverflow", operation: "embed", backend: "gguf", model: MODEL, contextSize: 256 })
      expect((error as { promptTokens: number }).promptTokens).toBeGreaterThan(256)
      expect(error.message).toContain("nothing was truncated")
      expect((yield* b.embed(MODEL, ["short"])).vectors).toHaveLength(1)
    }))

  it.scoped("the embedding context is a pool entry of its own: listed with purpose embedding, LRU-evicted like a chat model", () =>
    Effect.gen(function*() {
      const b = yield* backendWith({ maxLoadedModels: 2 })
      yield* b.embed(MODEL, ["x"])
      const loaded = () => Effect.map(b.status, (s) => s.loaded.map((m) => ({ name: m.name, purpose: m.purpose })))
      expect(yield* loaded()).toEqual([{ name: MODEL, purpose: "embedding" }])
      // tokenize uses the copy that is loaded rather than loading the chat one
      expect((yield* b.tokenize!(MODEL, "abc")).length).toBeGreaterThan(0)
      expect(yield* loaded()).toHaveLength(1)
      yield* Stream.runDrain(b.generate(MODEL, { messages: [{ role: "user", content: "hi" }], maxTokens: 2 }))
      yield* b.embed(OTHER, ["y"])
      // capacity 2: the least recently used (the first embedding context) went for the other model's
      const names = (yield* loaded()).map((m) => `${m.name}:${m.purpose ?? "chat"}`).sort()
      expect(names).toEqual([`${OTHER}:embedding`, `${MODEL}:chat`].sort())
    }))
})

describe("GGUF embed (in-process) and tokenize", () => {
  it.scoped("isolation none gives the same vectors as the worker; tokenize returns the model's ids", () =>
    Effect.gen(function*() {
      const worker = yield* backendWith()
      const local = yield* backendWith({ isolation: "none" })
      const a = yield* worker.embed(MODEL, ["same vector either way"])
      const c = yield* local.embed(MODEL, ["same vector either way"])
      expect(maxDifference(a.vectors[0]!, c.vectors[0]!)).toBeLessThanOrEqual(1e-6)
      const ids = yield* local.tokenize!(MODEL, "hello")
      expect(ids.every((t) => Number.isInteger(t) && t >= 0 && t < 400)).toBe(true)
      expect(yield* worker.tokenize!(MODEL, "hello")).toEqual(ids)
    }))
})

describe("EmbeddingModelLive on a GGUF spec", () => {
  it.effect("embedMany through @effect/ai gives the backend's vectors", () =>
    Effect.gen(function*() {
      const model = yield* EmbeddingModel.EmbeddingModel
      const [x, y] = yield* model.embedMany(["one text", "another"])
      expect(x).toHaveLength(EMBEDDING_LENGTH)
      expect(y).toHaveLength(EMBEDDING_LENGTH)
      expect(yield* model.embed("one text")).toEqual(x)
    }).pipe(Effect.provide(EmbeddingModelLive(MODEL))))
})

describe("Tokenizer (@effect/ai) for GGUF models", () => {
  it.effect("TokenizerLive(spec): tokenize is the model's ids; truncate keeps the last messages that fit", () =>
    Effect.gen(function*() {
      const tokenizer = yield* Tokenizer.Tokenizer
      const ids = yield* tokenizer.tokenize("hello world")
      expect(ids.length).toBeGreaterThan(0)
      const b = yield* backendWith()
      expect(ids).toEqual(yield* b.tokenize!(MODEL, "hello world"))
      const prompt = Prompt.make([
        { role: "user", content: "first message, rather long" },
        { role: "assistant", content: "second" },
        { role: "user", content: "third" }
      ])
      const all = (yield* tokenizer.tokenize(prompt)).length
      const last = (yield* tokenizer.tokenize("third")).length
      const second = (yield* tokenizer.tokenize(Prompt.make([{ role: "assistant", content: "second" }]))).length
      expect(all).toBeGreaterThan(last + second)
      const kept = yield* tokenizer.truncate(prompt, last + second)
      expect(kept.content.map((m) => m.role)).toEqual(["assistant", "user"])
    }).pipe(Effect.provide(TokenizerLive(MODEL)), Effect.scoped))

  it.effect("a backend without a tokenizer fails with an AiError whose cause is UnsupportedOperation", () =>
    Effect.gen(function*() {
      // the Ollama backend has no tokenize (no such route on the server)
      const backend = { name: "ollama", type: "ollama" } as unknown as Backend
      const error = yield* Effect.flip(tokenizerFromBackend(backend, "m").tokenize("x"))
      expect(error.cause).toMatchObject({ _tag: "UnsupportedOperation", operation: "tokenize" })
      expect((error.cause as { hint: string }).hint).toContain("llmspell model list --backend gguf")
    }))
})

describe("llmspell embed on a GGUF file (built CLI)", () => {
  beforeAll(() => ensureBuilt())

  it("embed -m ./file.gguf a b prints Embeddings with one vector per input", async () => {
    const result = await runCli(["embed", "-m", "./embedder.gguf", "a", "b"], {
      cwd: dir,
      env: isolatedEnv(dir, { LLMSPELL_MODELS_DIR: join(dir, "models") })
    })
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    const out = Schema.decodeUnknownSync(Schema.parseJson(Embeddings))(result.stdout.trim())
    expect(out).toMatchObject({ model: "./embedder.gguf", backend: "gguf", dimensions: EMBEDDING_LENGTH })
    expect(out.vectors).toHaveLength(2)
    expect(out.vectors[0]).not.toEqual(out.vectors[1])
  })
})

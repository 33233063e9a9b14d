/**
 * The GGUF backend on the real node-llama-cpp, with tiny models this suite writes itself:
 * generation with the model's chat template, deterministic for a seed, usage and timings;
 * interruption frees the sequence; concurrent requests beyond `parallel` wait; the pool with the
 * real loader (TestClock idle unload); model info and status; @effect/ai generateText/streamText;
 * and a corpus of malformed files that must each give InvalidModelFile with the process alive.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { GgufInstanceConfig } from "../src/domain/ConfigSchema.js"
import type { Completion, GenerateEvent, GenerateRequest } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import { autoThreads, parseCpuMax } from "../src/layers/gguf/cpu.js"
import * as LlamaLoaderLive from "../src/layers/gguf/LlamaLoaderLive.js"
import { fromBackend } from "../src/layers/LanguageModelAdapter.js"
import { ModelDownloaderMock } from "../src/testing.js"
import { ggufInstance } from "./fixtures/ggufBackendFakes.js"
import "./fixtures/ggufWorkerBundle.js"
import {
  encodeGgufWithLayout,
  prng,
  tinyLlamaGguf,
  tinyLlamaModel,
  type TinyLlamaOptions,
  v
} from "./fixtures/ggufWriter.js"

const dir = mkdtempSync(join(tmpdir(), "llmspell-gguf-backend-"))
const write = (name: string, bytes: Uint8Array) => {
  const p = join(dir, name)
  writeFileSync(p, bytes)
  return p
}
const TINY = write("tiny.gguf", tinyLlamaGguf({ vocabSize: 400 }))
const TINY_Q8 = write("tiny-q8.gguf", tinyLlamaGguf({ tensorType: "Q8_0", seed: 2 }))

// one loader for both isolations: "process" (a worker per model, the default) and "none" (in-process)
const loader = LlamaLoaderLive.make()
type Isolation = NonNullable<GgufInstanceConfig["isolation"]>
const backendIn = (isolation: Isolation) => (overrides: Partial<GgufInstanceConfig> = {}) =>
  makeBackend(
    ggufInstance({ modelDirectory: dir, contextSize: 256, threads: 1, isolation, ...overrides }),
    loader,
    ModelDownloaderMock().service
  )

const ask = (overrides: Partial<GenerateRequest> = {}): GenerateRequest => ({
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello world" }],
  maxTokens: 8,
  seed: 1,
  temperature: 0.8,
  ...overrides
})

const collect = (stream: Stream.Stream<GenerateEvent, any>) =>
  Effect.map(Stream.runCollect(stream), (c) => {
    const events = Chunk.toReadonlyArray(c)
    const finish = events.at(-1)
    if (finish?._tag !== "Finish") throw new Error("no Finish event")
    return { deltas: events.filter((e) => e._tag === "TextDelta").map((e) => (e as { text: string }).text), completion: finish.completion as Completion }
  })

describe.each<Isolation>(["process", "none"])("GgufBackend with node-llama-cpp, isolation = %s", (isolation) => {
  const backendWith = backendIn(isolation)

  it.scoped("generates with the chat template, deterministically for a seed, with usage and timings", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith()
      const first = yield* collect(backend.generate(TINY, ask()))
      expect(first.completion.text).toBe(first.deltas.join(""))
      expect(first.completion.finishReason).toBe("length")
      expect(first.completion.usage.completionTokens).toBe(8)
      expect(first.completion.usage.promptTokens).toBeGreaterThan(5)
      expect(first.completion.usage.totalTokens).toBe(first.completion.usage.promptTokens + 8)
      expect(first.completion).toMatchObject({ model: TINY, backend: "gguf", instance: "gguf" })
      const second = yield* collect(backend.generate(TINY, ask()))
      expect(second.completion.text).toBe(first.completion.text)
      expect(second.completion.timings.loadMs).toBe(0)
      const other = yield* collect(backend.generate(TINY, ask({ seed: 2 })))
      expect(other.completion.usage.completionTokens).toBe(8)
    }))

  it.scoped("a length finish counts every token generated, also those that never became text", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith()
      // the Q8_0 model with the default vocabulary emits byte tokens that do not complete a
      // character, which LlamaChat holds back from onToken; the count is the tokens generated
      for (const maxTokens of [1, 3, 8, 13]) {
        for (const seed of [1, 2, 3]) {
          const r = yield* collect(backend.generate(TINY_Q8, ask({ maxTokens, seed, messages: [{ role: "user", content: "hi" }] })))
          expect(r.completion.finishReason).toBe("length")
          expect(r.completion.usage.completionTokens, `maxTokens ${maxTokens}, seed ${seed}: ${JSON.stringify(r.completion.text)}`).toBe(maxTokens)
        }
      }
    }))

  it.scoped("stop sequences end generation with finish reason stop", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith()
      const free = yield* collect(backend.generate(TINY, ask({ maxTokens: 24 })))
      // stop at the second character the model produces when unconstrained
      const stop = free.completion.text.slice(1, 2)
      if (stop.trim().length === 0) return
      const stopped = yield* collect(backend.generate(TINY, ask({ maxTokens: 24, stop: [stop] })))
      expect(stopped.completion.finishReason).toBe("stop")
      expect(stopped.completion.text).toBe(free.completion.text.slice(0, free.completion.text.indexOf(stop)))
    }))

  it.scoped("interrupting a stream stops generation and frees its sequence", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith({ parallel: 1 })
      const got = yield* backend.generate(TINY, ask({ maxTokens: 100_000, messages: [{ role: "user", content: "go" }] })).pipe(
        Stream.take(3),
        Stream.runCollect
      )
      expect(Chunk.size(got)).toBe(3)
      // the loader's own count: the interrupted stream has ended, so its sequence is back
      expect((yield* backend.status).loaded).toMatchObject([{ sequences: { total: 1, busy: 0 } }])
      // with one sequence, this request could only run if the interrupted one gave its sequence back
      const next = yield* collect(backend.generate(TINY, ask()))
      expect(next.completion.usage.completionTokens).toBe(8)
      const status = yield* backend.status
      expect(status.loaded).toMatchObject([{ activeRequests: 0 }])
    }))

  it.scoped("ps counts the context sequences generations hold now, from the loader's own queue", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith({ parallel: 2 })
      const long = ask({ maxTokens: 100_000, messages: [{ role: "user", content: "go" }] })
      const counts = Effect.map(backend.ps!, (loaded) => loaded[0]?.sequences)
      // runs `inside` once the stream's first text is out, while the stream still holds its sequence
      const atFirstText = <A, E>(inside: Effect.Effect<A, E>) =>
        Stream.filter(backend.generate(TINY, long), (e) => e._tag === "TextDelta").pipe(
          Stream.take(1),
          Stream.mapEffect(() => inside),
          Stream.runCollect,
          Effect.map((c) => Chunk.unsafeHead(c))
        )
      const [outer, inner] = yield* atFirstText(Effect.zip(counts, atFirstText(counts)))
      expect(outer).toEqual({ total: 2, busy: 1 })
      expect(inner).toEqual({ total: 2, busy: 2 })
      expect(yield* counts).toEqual({ total: 2, busy: 0 })
      // a generation that ran to its end: by the time its Finish arrives, its sequence is free
      for (let i = 0; i < 5; i++) {
        yield* collect(backend.generate(TINY, ask({ maxTokens: 4, seed: i })))
        expect(yield* counts).toEqual({ total: 2, busy: 0 })
      }
    }))

  it.scoped("requests beyond `parallel` wait for a sequence instead of failing", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith({ parallel: 2 })
      const results = yield* Effect.forEach(
        [1, 2, 3, 4, 5],
        (seed) => collect(backend.generate(TINY, ask({ seed }))),
        { concurrency: "unbounded" }
      )
      expect(results.map((r) => r.completion.usage.completionTokens)).toEqual([8, 8, 8, 8, 8])
    }))

  it.scoped("the pool with the real loader: one load for concurrent callers, idle unload on the (test) clock", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith({ idleUnloadSeconds: 30, maxLoadedModels: 1 })
      yield* Effect.forEach([1, 2], () => collect(backend.generate(TINY, ask())), { concurrency: "unbounded" })
      expect((yield* backend.status).loaded.map((m) => m.name)).toEqual([TINY])
      // a second model evicts the idle first one (max_loaded_models = 1)
      yield* collect(backend.generate(TINY_Q8, ask()))
      expect((yield* backend.status).loaded.map((m) => m.name)).toEqual([TINY_Q8])
      yield* TestClock.adjust("30 seconds")
      expect((yield* backend.status).loaded).toEqual([])
      const again = yield* collect(backend.generate(TINY_Q8, ask()))
      expect(again.completion.usage.completionTokens).toBe(8)
    }))

  it.scoped("model info comes from the GGUF header, memory needs from GgufInsights", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith()
      const info = yield* backend.info(TINY_Q8)
      expect(info).toMatchObject({
        architecture: "llama",
        quantization: "Q8_0",
        contextLength: 1024,
        embeddingLength: 64,
        layers: 2,
        heads: 4,
        headsKv: 4,
        vocabularySize: 300,
        chatTemplate: true,
        path: TINY_Q8
      })
      expect(info.parameterCount).toBe(tinyLlamaModel().tensors.reduce((n, t) => n + t.dims.reduce<number>((a, b) => a * Number(b), 1), 0))
      expect(info.memory?.contextSize).toBe(256)
      expect(info.memory?.ramBytes).toBeGreaterThan(info.sizeBytes!)
      const noTemplate = write("no-template.gguf", tinyLlamaGguf({ chatTemplate: false }))
      expect((yield* backend.info(noTemplate)).chatTemplate).toBe(false)
    }))

  it.scoped("status names the binary, the device and why, threads, and warns about the CPU fallback", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith({ device: "auto", threads: "auto" })
      const status = yield* backend.status
      expect(status.available).toBe(true)
      expect(status.details["binary"]).toBe("prebuilt")
      expect(String(status.details["device"])).toMatch(/^cpu \(auto: /)
      expect(String(status.details["threads"])).toMatch(/auto/)
      expect(status.version).toMatch(/^node-llama-cpp 3\./)
      expect(status.warnings.join("\n")).toMatch(/running on the CPU/)
    }))

  it.scoped("an explicit device that is not available is DeviceUnavailable, never a silent fallback", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith({ device: "cuda" })
      const error = yield* Effect.flip(Stream.runDrain(backend.generate(TINY, ask())))
      expect(error._tag).toBe("DeviceUnavailable")
      const status = yield* backend.status
      expect(status.available).toBe(false)
      expect(status.error?._tag).toBe("DeviceUnavailable")
    }))

  it.scoped("is an @effect/ai LanguageModel: generateText and streamText with usage and finish reason", () =>
    Effect.gen(function*() {
      const backend = yield* backendWith()
      const lm = yield* fromBackend(backend, TINY, { maxTokens: 6, seed: 3 })
      const response = yield* LanguageModel.generateText({ prompt: [{ role: "user", content: "hi" }] }).pipe(
        Effect.provideService(LanguageModel.LanguageModel, lm)
      )
      expect(response.finishReason).toBe("length")
      expect(response.usage.outputTokens).toBe(6)
      expect(response.text.length).toBeGreaterThan(0)
      const parts = Chunk.toReadonlyArray(
        yield* Stream.runCollect(
          LanguageModel.streamText({ prompt: "hi" }).pipe(Stream.provideService(LanguageModel.LanguageModel, lm))
        )
      )
      expect(parts[0]?.type).toBe("text-start")
      const finish = parts.at(-1)
      expect(finish?.type === "finish" && finish.usage.outputTokens).toBe(6)
      const streamed = parts.flatMap((p) => (p.type === "text-delta" ? [p.delta] : [])).join("")
      expect(streamed.length).toBeGreaterThan(0)
    }))
})

// ---------------------------------------------------------------------------------------------
// Never crash on a bad file
// ---------------------------------------------------------------------------------------------

const model = tinyLlamaModel()
const { bytes: good, layout } = encodeGgufWithLayout({
  metadata: model.metadata,
  tensors: model.tensors.map((t) => ({ ...t, data: t.generate() }))
})
const withOptions = (options: TinyLlamaOptions) => tinyLlamaGguf(options)
const patch = (bytes: Uint8Array, offset: number, values: ReadonlyArray<number>) => {
  const copy = Uint8Array.from(bytes)
  values.forEach((b, i) => (copy[offset + i] = b))
  return copy
}
const random = (n: number, seed: number) => {
  const r = prng(seed)
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256))
}

const corpus: Array<readonly [string, Uint8Array]> = [
  ["empty file", new Uint8Array(0)],
  ["bad magic", patch(good, 0, [0x47, 0x47, 0x4d, 0x4c])],
  ["version 1", patch(good, 4, [1, 0, 0, 0])],
  ["version 4", patch(good, 4, [4, 0, 0, 0])],
  ["random bytes", random(4096, 7)],
  ["magic then garbage", Uint8Array.from([0x47, 0x47, 0x55, 0x46, ...random(4096, 8)])],
  ["absurd string length", withOptions({ overrideMetadata: { "general.name": { type: "string", value: "x", lengthOverride: 2n ** 40n } } })],
  [
    "absurd array length",
    withOptions({
      overrideMetadata: {
        "tokenizer.ggml.scores": { type: "array", elementType: "float32", elements: [v.f32(0)], countOverride: 2n ** 40n }
      }
    })
  ],
  ...(["general.architecture", "llama.context_length", "llama.embedding_length", "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count"]
    .map((key) => [`missing ${key}`, withOptions({ omitKeys: [key] })] as const)),
  // truncated inside the header, the key/values, the tensor infos and the data (a tensor past the end)
  ...[3, 8, 20, 23, layout.kvStart + 5, layout.kvStart + 301, Math.floor((layout.kvStart + layout.tensorInfoStart) / 2),
    layout.tensorInfoStart + 3, Math.floor((layout.tensorInfoStart + layout.headerEnd) / 2), layout.headerEnd - 1,
    layout.dataOffset + 10, Math.floor((layout.dataOffset + layout.fileSize) / 2), layout.fileSize - 1]
    .map((n) => [`truncated at ${n}`, good.subarray(0, n)] as const)
]

describe.each<Isolation>(["process", "none"])("GgufBackend never hands a malformed file to llama.cpp, isolation = %s", (isolation) => {
  const backendWith = backendIn(isolation)

  it.scoped(`each of ${corpus.length} malformed files gives InvalidModelFile through generate and info`, () =>
    Effect.gen(function*() {
      const backend = yield* backendWith()
      for (const [name, bytes] of corpus) {
        const path = write(`bad-${name.replace(/[^a-z0-9]+/gi, "-")}.gguf`, bytes)
        const viaGenerate = yield* Effect.flip(Stream.runDrain(backend.generate(path, ask())))
        const viaInfo = yield* Effect.flip(backend.info(path))
        expect({ name, generate: viaGenerate._tag, info: viaInfo._tag }).toEqual({
          name,
          generate: "InvalidModelFile",
          info: "InvalidModelFile"
        })
      }
      // the process is alive and the backend still works
      const ok = yield* collect(backend.generate(TINY, ask()))
      expect(ok.completion.usage.completionTokens).toBe(8)
      expect((yield* backend.status).loaded.map((m) => m.name)).toEqual([TINY])
    }))
})

describe("threads", () => {
  it("auto leaves a core for the JS thread and the system, never below one", () => {
    expect(autoThreads(1)).toBe(1)
    expect(autoThreads(2)).toBe(1)
    expect(autoThreads(8)).toBe(7)
  })
  it("reads the cgroup v2 cpu quota", () => {
    expect(parseCpuMax("200000 100000\n")).toBe(2)
    expect(parseCpuMax("max 100000")).toBeUndefined()
    expect(parseCpuMax(undefined)).toBeUndefined()
  })
})

/**
 * llmspell/testing's one call record: the scripted backends, the downloader and the GGUF loader
 * all append the same `Call` shape (source, operation, backend, instance, model, input, at) to one
 * `CallLog`; `at` is Clock time, so TestClock stamps it. The fakes script embeddings and token ids;
 * `LlmspellMock` with `ggufLoader` runs the real GGUF backend (pool, embedding contexts,
 * ContextOverflow) over `LlamaLoaderMock`, by the same composition as the live stack.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { ProviderRegistry } from "../src/services/ProviderRegistry.js"
import {
  type Call,
  describeCalls,
  LlamaLoaderMock,
  LlmspellMock,
  makeCallLog
} from "../src/testing/index.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"

const dir = mkdtempSync(join(tmpdir(), "llmspell-calllog-"))
const file = join(dir, "tiny.gguf")
writeFileSync(file, tinyLlamaGguf())
const hi = { messages: [{ role: "user" as const, content: "hi" }] }

describe("one call-record shape", () => {
  it.effect("scripted backends record generate, embed and tokenize with their input, stamped by the Clock", () => {
    const mock = LlmspellMock.make({
      gguf: {
        models: [{ name: "m", tokens: ["ok"], embed: (text) => [text.length, 1], tokenize: (text) => [...text].map((c) => c.charCodeAt(0)) }]
      },
      ollama: { models: ["e"] }
    })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      yield* Stream.runDrain(llm.generate("m", hi))
      yield* TestClock.adjust("5 seconds")
      const embedded = yield* llm.embed("m", ["abc", "de"])
      expect(embedded).toMatchObject({ dimensions: 2, vectors: [[3, 1], [2, 1]], promptTokens: 5 })
      const resolved = yield* (yield* ProviderRegistry).resolve("m")
      expect(yield* resolved.handle.tokenize!("m", "AB")).toEqual([65, 66])
      // the default: deterministic vectors and one id per word
      const e = yield* llm.embed("e@ollama", ["one two", "one two"])
      expect(e.vectors[0]).toEqual(e.vectors[1])
      expect(e.promptTokens).toBe(4)
      const calls: ReadonlyArray<Call> = mock.calls
      expect(describeCalls(calls)).toEqual(["gguf:generate:m", "gguf:embed:m", "gguf:tokenize:m", "ollama:embed:e"])
      expect(calls.map((c) => c.at)).toEqual([0, 5000, 5000, 5000])
      expect(calls[1]).toEqual({
        source: "gguf",
        backend: "gguf",
        instance: "gguf",
        operation: "embed",
        model: "m",
        input: ["abc", "de"],
        inputs: ["abc", "de"],
        at: 5000
      })
      expect(calls[2]!.input).toBe("AB")
      expect(calls[0]!.input).toEqual(calls[0]!.request)
    }).pipe(Effect.provide(mock.layer))
  })

  it.scoped("the real GGUF backend over LlamaLoaderMock: loader and downloader calls in the same log, in order", () => {
    const calls = makeCallLog()
    const loader = LlamaLoaderMock({ calls, embeddingDimensions: 4, defaultTokens: ["a", "b"] })
    const mock = LlmspellMock.make({
      ggufLoader: loader,
      calls,
      config: { providers: { gguf: { model_directory: dir, context_size: 64, threads: 1 } } }
    })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      yield* Stream.runDrain(llm.generate(`${file}@gguf`, hi))
      yield* TestClock.adjust("1 second")
      const embedded = yield* llm.embed(`${file}@gguf`, ["x y", "z"])
      expect(embedded).toMatchObject({ backend: "gguf", dimensions: 4, promptTokens: 3 + 2 })
      // an input that does not fit the embedding context is refused, not cut
      const long = Array.from({ length: 100 }, (_, i) => `w${i}`).join(" ")
      const overflow = yield* Effect.flip(llm.embed(`${file}@gguf`, [long]))
      expect(overflow).toMatchObject({ _tag: "ContextOverflow", operation: "embed", contextSize: 64, promptTokens: 101 })
      yield* Effect.either(llm.info("someone/missing:Q4_K_M@gguf"))
      const loaderCalls = calls.filter((c) => c.source === "loader")
      expect(loaderCalls.map((c) => c.operation)).toEqual(["load", "generate", "load", "embed", "embed"])
      expect(loaderCalls.every((c) => c.backend === "gguf" && c.model === file)).toBe(true)
      expect((loaderCalls[2]!.input as { purpose?: string }).purpose).toBe("embedding")
      expect(loaderCalls[3]).toMatchObject({ input: ["x y", "z"], at: 1000 })
      expect(loader.events).toEqual(["load tiny.gguf", "load tiny.gguf (embedding)"])
      // the downloader was asked for the store model, into the same log, after the loader's calls
      const find = calls.findIndex((c) => c.source === "downloader" && c.model === "someone/missing:Q4_K_M")
      expect(find).toBeGreaterThan(calls.indexOf(loaderCalls.at(-1)!))
      expect(calls[find]).toMatchObject({ operation: "find", ref: "someone/missing:Q4_K_M", instance: "gguf" })
    }).pipe(Effect.provide(mock.layer))
  })
})

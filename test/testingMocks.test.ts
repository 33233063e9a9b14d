/**
 * The mock layers of llmspell/testing as a consumer would use them: the fake loader under the real
 * GGUF pool (TestClock drives the idle unload), and the fake downloader behind the real backend.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as GgufBackendLive from "../src/layers/gguf/GgufBackendLive.js"
import { GgufBackendFactory } from "../src/services/GgufBackend.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { defaultTestConfig, describeCalls, LlamaLoaderMock, LlmspellMock, ModelDownloaderMock } from "../src/testing.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"

const dir = mkdtempSync(join(tmpdir(), "llmspell-mocks-"))
const modelPath = join(dir, "tiny.gguf")
writeFileSync(modelPath, tinyLlamaGguf())

const text = (backend: { generate: (m: string, r: any) => Stream.Stream<any, any> }, model: string) =>
  backend.generate(model, { messages: [{ role: "user", content: "hi" }] }).pipe(
    Stream.runCollect,
    Effect.map((events) => [...events].flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join(""))
  )

describe("llmspell/testing mocks", () => {
  it.scoped("LlamaLoaderMock under the real pool: one load for two requests, unload after the idle time", () => {
    const loader = LlamaLoaderMock({ tokens: { "tiny.gguf": ["Hel", "lo"] } })
    const downloader = ModelDownloaderMock()
    const instance = defaultTestConfig({
      providers: { gguf: { model_directory: dir, idle_unload_seconds: 30, threads: 1 } }
    }).instances.find((i) => i.name === "gguf")!
    return Effect.gen(function*() {
      const factory = yield* GgufBackendFactory
      const backend = yield* factory.make(instance as any)
      expect(yield* text(backend, modelPath)).toBe("Hello")
      expect(yield* text(backend, modelPath)).toBe("Hello")
      expect(loader.events.filter((e) => e.startsWith("load"))).toEqual(["load tiny.gguf"])
      yield* TestClock.adjust("29 seconds")
      expect(loader.loaded.size).toBe(1)
      yield* TestClock.adjust("2 seconds")
      // The idle fiber closes the scope asynchronously; wait for it without real time passing.
      yield* Effect.repeat(Effect.sync(() => loader.loaded.size), { until: (n) => n === 0, times: 1000 })
      expect(loader.events.at(-1)).toBe("unload tiny.gguf")
    }).pipe(Effect.provide(GgufBackendLive.layerWithoutLoader.pipe(Layer.provide(Layer.merge(loader.layer, downloader.layer)))))
  })

  it.scoped("ModelDownloaderMock: a model not installed gives ModelNotFound with the pull hint; a pull installs it", () => {
    const loader = LlamaLoaderMock()
    const downloader = ModelDownloaderMock({ pullSteps: 2 })
    const instance = defaultTestConfig({ providers: { gguf: { model_directory: dir } } }).instances.find((i) =>
      i.name === "gguf"
    )!
    return Effect.gen(function*() {
      const factory = yield* GgufBackendFactory
      const backend = yield* factory.make(instance as any)
      const missing = yield* Effect.flip(backend.info("qwen2.5:0.5b"))
      expect(missing._tag).toBe("ModelNotFound")
      const events = [...(yield* Stream.runCollect(backend.pull("qwen2.5:0.5b")))]
      expect(events.at(-1)!.phase).toBe("done")
      expect(downloader.calls.map((c) => c.operation)).toContain("pull")
      expect(downloader.installed.has("qwen2.5:0.5b")).toBe(true)
    }).pipe(Effect.provide(GgufBackendLive.layerWithoutLoader.pipe(Layer.provide(Layer.merge(loader.layer, downloader.layer)))))
  })
})

describe("LlmspellMock and the cloud backend", () => {
  it.effect("cloud specs answer from the cloud script (the registry's cloud backend is a real requirement, the mock fills it)", () => {
    const mock = LlmspellMock.make({ cloud: { models: [{ name: "gpt-4o-mini", tokens: ["from", " the", " cloud"] }] } })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const result = yield* llm.run("openai/gpt-4o-mini", { messages: [{ role: "user", content: "hi" }] })
      expect([result.text, result.backend, result.instance]).toEqual(["from the cloud", "cloud", "openai"])
      const missing = yield* Effect.flip(llm.info("openai/nothing-here"))
      expect(missing._tag).toBe("ModelNotFound")
      expect(describeCalls(mock.calls.filter((c) => c.source === "cloud"))).toEqual(["cloud:generate:gpt-4o-mini", "cloud:info:nothing-here"])
    }).pipe(Effect.provide(mock.layer))
  })
})

describe("LlmspellMock and the model store", () => {
  it.effect("LocalLLM imports into the store the stack provides (its layer requires one), and lists it", () => {
    const mock = LlmspellMock.make({ downloader: { installed: ["org/repo:Q4_K_M"] } })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const imported = yield* llm.importFile("/somewhere/my-model.gguf", { name: "mine" })
      expect(imported).toMatchObject({ model: "mine", backend: "gguf", instance: "gguf", source: "/somewhere/my-model.gguf" })
      expect(describeCalls(mock.calls)).toContain("downloader:import:/somewhere/my-model.gguf")
      const report = yield* llm.available()
      expect(report.models.length).toBeGreaterThan(0)
      expect(describeCalls(mock.calls)).toContain("downloader:list")
    }).pipe(Effect.provide(mock.layer))
  })
})

import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { BackendUnavailable, ModelNotFound } from "../src/domain/Errors.js"
import * as Protocol from "../src/domain/Protocol.js"
import { ModelList, promptRequest } from "../src/domain/Types.js"
import * as LocalLLMLive from "../src/layers/LocalLLMLive.js"
import * as RpcServe from "../src/serve/rpc.js"
import * as RpcTest from "@effect/rpc/RpcTest"
import type { Backend } from "../src/services/Backend.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import * as ProviderRegistryLive from "../src/layers/ProviderRegistryLive.js"
import { defaultTestConfig, LlmspellMock, ModelDownloaderMock } from "../src/testing.js"

describe("LocalLLM over mock backends", () => {
  it.effect("list --backend all reports an unavailable backend without hiding the other's models", () => {
    const mock = LlmspellMock.make({
      ollama: { models: ["llama3.2"], fail: { list: "unavailable" } },
      gguf: { models: ["qwen2.5:0.5b", "smollm2:1.7b"] }
    })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const result = yield* llm.list("all")
      expect(result.models.map((m) => m.name).sort()).toEqual(["qwen2.5:0.5b", "smollm2:1.7b"])
      expect(result.unavailable).toHaveLength(1)
      expect(result.unavailable[0]!.instance).toBe("ollama")
      expect(result.unavailable[0]!.error._tag).toBe("BackendUnavailable")
    }).pipe(Effect.provide(mock.layer))
  })

  it.effect("routes specs to the right backend instance and records the calls", () => {
    const mock = LlmspellMock.make({
      ollama: { models: [{ name: "llama3.2", tokens: ["from", " ollama"] }] },
      gguf: { models: [{ name: "qwen2.5:0.5b", tokens: ["from", " gguf"] }] },
      config: { providers: { workstation: { provider_type: "ollama", base_url: "http://10.0.0.5:11434" } } }
    })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const text = (spec: string) =>
        llm.generate(spec, { messages: [{ role: "user", content: "hi" }] }).pipe(
          Stream.runCollect,
          Effect.map((events) => [...events].flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join(""))
        )
      expect(yield* text("qwen2.5:0.5b")).toBe("from gguf")
      expect(yield* text("local/llama3.2@ollama")).toBe("from ollama")
      expect(yield* text("workstation/llama3.2")).toBe("from ollama")
      expect(mock.calls.map((c) => `${c.instance}:${c.operation}:${c.model}`)).toEqual([
        "gguf:generate:qwen2.5:0.5b",
        "ollama:generate:llama3.2",
        "workstation:generate:llama3.2"
      ])
    }).pipe(Effect.provide(mock.layer))
  })

  it.effect("run collects a completion with usage", () => {
    const mock = LlmspellMock.make({ gguf: { models: [{ name: "tiny", tokens: ["x", "y"] }] } })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const completion = yield* llm.run("tiny", { messages: [{ role: "user", content: "hi" }] })
      expect(completion).toMatchObject({ text: "xy", backend: "gguf", usage: { completionTokens: 2 } })
    }).pipe(Effect.provide(mock.layer))
  })

  it.effect("a missing model fails with ModelNotFound carrying the pull hint", () => {
    const mock = LlmspellMock.make({ gguf: { models: [] } })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const error = yield* Effect.flip(llm.info("qwen2.5:0.5b"))
      expect(error._tag).toBe("ModelNotFound")
      expect((error as { hint?: string }).hint).toContain("llmspell model pull qwen2.5:0.5b")
    }).pipe(Effect.provide(mock.layer))
  })

  it.effect("status never fails: an unavailable backend is reported as such", () => {
    const mock = LlmspellMock.make({ ollama: { fail: { status: "unavailable" } } })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const statuses = yield* llm.status("all")
      expect(statuses.map((s) => [s.instance, s.available])).toEqual([["ollama", false], ["gguf", true]])
    }).pipe(Effect.provide(mock.layer))
  })

  it.effect("pull streams progress ending in done with a result, then the model is listed", () => {
    const mock = LlmspellMock.make({ gguf: { pullSteps: 4 } })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const events = [...(yield* Stream.runCollect(llm.pull("qwen2.5:0.5b")))]
      expect(events.map((e) => e.phase)).toEqual([
        "resolving",
        "downloading",
        "downloading",
        "downloading",
        "downloading",
        "verifying",
        "done"
      ])
      expect(events.at(-1)!.result!.alreadyPresent).toBe(false)
      const listed = yield* llm.list("gguf")
      expect(listed.models.map((m) => m.name)).toEqual(["qwen2.5:0.5b"])
    }).pipe(Effect.provide(mock.layer))
  })
})

describe("ModelNotFound hints fit the operation and say where the model is", () => {
  const hintOf = (e: unknown) => (e as { hint?: string }).hint ?? ""

  it.effect("a name present on another configured backend: use it there, not a pull", () => {
    const mock = LlmspellMock.make({
      gguf: { models: [] },
      ollama: { models: ["tiny"] },
      config: { providers: { workstation: { provider_type: "ollama", base_url: "http://10.0.0.5:11434" } } }
    })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const viaRun = yield* Effect.flip(llm.run("tiny", { messages: [{ role: "user", content: "hi" }] }))
      expect(viaRun).toMatchObject({ _tag: "ModelNotFound", operation: "run", elsewhere: { spec: "tiny@ollama", instance: "ollama" } })
      expect(hintOf(viaRun)).toBe("tiny is on ollama: use tiny@ollama (`llmspell model info tiny@ollama` shows it)")
      const viaInfo = yield* Effect.flip(llm.info("local/tiny"))
      expect(hintOf(viaInfo)).toContain("use tiny@ollama")
      // an instance that is not its type's default is named as a provider
      const fromOllama = yield* Effect.flip(llm.info("missing@ollama"))
      expect(fromOllama).toMatchObject({ _tag: "ModelNotFound" })
      expect((fromOllama as { elsewhere?: unknown }).elsewhere).toBeUndefined()
    }).pipe(Effect.provide(mock.layer))
  })

  it.effect("every other backend down: the plain hint, and the original error", () => {
    const mock = LlmspellMock.make({ gguf: { models: [] }, ollama: { models: ["tiny"], fail: { list: "unavailable" } } })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const error = yield* Effect.flip(llm.info("tiny"))
      expect(error).toMatchObject({ _tag: "ModelNotFound", model: "tiny", backend: "gguf" })
      expect(hintOf(error)).toContain("llmspell model")
      expect(hintOf(error)).not.toContain("ollama")
    }).pipe(Effect.provide(mock.layer))
  })

  it.effect("pull and remove of a missing model never hint to pull it", () => {
    const mock = LlmspellMock.make({
      ollama: { models: [], pullable: [], fail: { pull: "notFound", remove: "notFound" } }
    })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      const pull = yield* Effect.flip(Stream.runDrain(llm.pull("nope@ollama")))
      expect(pull).toMatchObject({ _tag: "ModelNotFound", operation: "pull" })
      expect(hintOf(pull)).toMatch(/^check the name/)
      expect(hintOf(pull)).not.toContain("model pull")
      const remove = yield* Effect.flip(llm.remove("nope@ollama"))
      expect(remove).toMatchObject({ _tag: "ModelNotFound", operation: "remove" })
      expect(hintOf(remove)).toContain("`llmspell model list`")
      expect(hintOf(remove)).not.toContain("model pull")
    }).pipe(Effect.provide(mock.layer))
  })

  it.effect("a pull that names another existing quantization keeps that hint", () => {
    const { hanging, missing } = backends()
    const otherQuant: Backend = {
      ...missing,
      pull: (model) =>
        Stream.fail(new ModelNotFound({ model, backend: "gguf", detail: "org/repo has no Q5_K_M file; it has Q8_0", pullSpec: "org/repo:Q8_0" }))
    }
    return Effect.gen(function*() {
      const registry = yield* ProviderRegistryLive.make(defaultTestConfig(), [
        { type: "ollama", make: () => Effect.succeed(hanging) },
        { type: "gguf", make: () => Effect.succeed(otherQuant) }
      ])
      const error = yield* Effect.flip(Stream.runDrain(LocalLLMLive.make(registry, ModelDownloaderMock().store).pull("org/repo:Q5_K_M")))
      expect(error).toMatchObject({ _tag: "ModelNotFound", operation: "pull", pullSpec: "org/repo:Q8_0" })
      expect((error as { hint: string }).hint).toBe("run `llmspell model pull org/repo:Q8_0`")
    }).pipe(Effect.scoped)
  })

  it.effect("the lookup is bounded: a backend that never answers is given up after 3 s", () => {
    const { hanging, missing } = backends()
    return Effect.gen(function*() {
      const registry = yield* ProviderRegistryLive.make(defaultTestConfig(), [
        { type: "ollama", make: () => Effect.succeed(hanging) },
        { type: "gguf", make: () => Effect.succeed(missing) }
      ])
      const llm = LocalLLMLive.make(registry, ModelDownloaderMock().store)
      const fiber = yield* Effect.fork(Effect.flip(llm.info("tiny")))
      yield* TestClock.adjust("3 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "ModelNotFound", model: "tiny", operation: "info" })
      expect((error as { elsewhere?: unknown }).elsewhere).toBeUndefined()
    }).pipe(Effect.scoped)
  })

  it.effect("a backend that is down is skipped; a non-default instance is named as instance/model", () => {
    const { hanging, missing } = backends()
    const down: Backend = {
      ...hanging,
      list: Effect.fail(new BackendUnavailable({ backend: "ollama", instance: "ollama", reason: "connection refused" }))
    }
    const has: Backend = { ...hanging, name: "workstation", list: Effect.succeed([{ name: "tiny:latest", backend: "ollama", instance: "workstation", sizeBytes: 1 }]) }
    return Effect.gen(function*() {
      const config = defaultTestConfig({ providers: { workstation: { provider_type: "ollama", base_url: "http://10.0.0.5:11434" } } })
      const registry = yield* ProviderRegistryLive.make(config, [
        { type: "ollama", make: (i) => Effect.succeed(i.name === "workstation" ? has : down) },
        { type: "gguf", make: () => Effect.succeed(missing) }
      ])
      const error = yield* Effect.flip(LocalLLMLive.make(registry, ModelDownloaderMock().store).info("tiny"))
      expect(error).toMatchObject({ elsewhere: { spec: "workstation/tiny", instance: "workstation" } })
      expect((error as { hint: string }).hint).toContain("`llmspell model info workstation/tiny`")
    }).pipe(Effect.scoped)
  })
})

/** A backend that never answers, and a GGUF backend where every model is missing. */
const backends = () => {
  const hanging: Backend = {
    name: "ollama",
    type: "ollama",
    status: Effect.never,
    list: Effect.never,
    info: () => Effect.never,
    pull: () => Stream.never,
    remove: () => Effect.never,
    verify: () => Effect.never,
    generate: () => Stream.never,
    embed: () => Effect.never
  }
  const missing: Backend = {
    ...hanging,
    name: "gguf",
    type: "gguf",
    info: (model) => Effect.fail(new ModelNotFound({ model, backend: "gguf", instance: "gguf" }))
  }
  return { hanging, missing }
}

describe("protocol", () => {
  it.effect("the RpcGroup serves LocalLLM: results that encode with their schemas, errors arriving typed with their hint", () => {
    const mock = LlmspellMock.make({ gguf: { models: ["qwen2.5:0.5b"] } })
    return Effect.gen(function*() {
      const client = yield* RpcTest.makeClient(Protocol.LlmspellRpcs)
      const listed = yield* client.List({ backend: "gguf" })
      const encoded = Schema.encodeUnknownSync(ModelList)(listed)
      expect(encoded).toMatchObject({ models: [{ name: "qwen2.5:0.5b", backend: "gguf" }], unavailable: [] })
      const report = yield* client.Status({})
      expect(report.map((s) => s.instance).sort()).toEqual(["gguf", "ollama"])
      expect(yield* client.Instances({ backend: "gguf" })).toEqual([{ name: "gguf", backend: "gguf" }])
      const missing = yield* Effect.flip(client.Info({ spec: "nope@gguf" }))
      expect(missing).toBeInstanceOf(ModelNotFound)
      expect((missing as ModelNotFound).hint).toContain("llmspell model")
    }).pipe(Effect.scoped, Effect.provide(RpcServe.layerHandlers), Effect.provide(mock.layer))
  })
})

describe("promptRequest", () => {
  it("puts the system prompt first and keeps only the settings that are given", () => {
    const options = { system: "Be brief.", maxTokens: 8, seed: undefined, signal: new AbortController().signal }
    expect(promptRequest("hi", options)).toEqual({
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }],
      maxTokens: 8
    })
  })
})

/**
 * The metered LocalLLM over a scripted facade, and the exposition writer: cached prompt tokens
 * (Usage.cachedPromptTokens, where a backend reports it) reach the counter and `ps`'s cache hit
 * rate; a backend that does not report them leaves the rate unknown, not 0; `ps` figures follow
 * the last answers; a failed pull by checksum is a verify failure; the model label set is bounded;
 * label values that need escaping come back intact through a real Prometheus parser.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import { describe, expect, it } from "vitest"
import { ChecksumMismatch } from "../src/domain/Errors.js"
import * as M from "../src/domain/Metrics.js"
import * as PrometheusText from "../src/domain/PrometheusText.js"
import type { Completion, GenerateEvent, LoadedModel, PullProgress } from "../src/domain/Types.js"
import * as Metered from "../src/layers/MeteredLocalLLM.js"
import type { LocalLLMService } from "../src/services/LocalLLM.js"
import { parseExposition, valueOf } from "./fixtures/promText.js"

const completion = (model: string, usage: Record<string, number>, tokensPerSecond?: number): Completion => ({
  model,
  backend: "ollama",
  instance: "ollama",
  text: "ok",
  finishReason: "stop",
  usage: { promptTokens: usage["promptTokens"]!, completionTokens: usage["completionTokens"]!, totalTokens: usage["promptTokens"]! + usage["completionTokens"]!, ...usage } as Completion["usage"],
  timings: { loadMs: 0, totalMs: 10, ...(tokensPerSecond !== undefined ? { tokensPerSecond } : {}) }
})

/** A facade that answers from a script; `ps` lists the models given. */
const scripted = (answers: Array<Completion>, loaded: ReadonlyArray<LoadedModel>, pullEvents: Stream.Stream<PullProgress, ChecksumMismatch> = Stream.empty) =>
  ({
    generate: () => {
      const answer = answers.shift()!
      return Stream.fromIterable<GenerateEvent>([{ _tag: "TextDelta", text: "ok" }, { _tag: "Finish", completion: answer }])
    },
    run: () => Effect.succeed(answers.shift()!),
    ps: () => Effect.succeed(loaded),
    pull: () => pullEvents
  }) as unknown as LocalLLMService

const snapshotText = Effect.map(Metric.snapshot, (s) => PrometheusText.render(PrometheusText.fromSnapshot(M.catalogue, s)))

describe("MeteredLocalLLM", () => {
  it("counts cached prompt tokens where the backend reports them, and ps gives the hit rate and the rate of the last answers", async () => {
    const loaded: LoadedModel = { name: "cachey", backend: "ollama", instance: "ollama" }
    const llm = Metered.make(scripted([
      completion("cachey", { promptTokens: 100, completionTokens: 10, cachedPromptTokens: 80 }, 50),
      completion("cachey", { promptTokens: 100, completionTokens: 10, cachedPromptTokens: 70 }, 30)
    ], [loaded]))
    const before = parseExposition(await Effect.runPromise(snapshotText))
    await Effect.runPromise(Stream.runDrain(llm.generate("cachey@ollama", { messages: [] })))
    await Effect.runPromise(llm.run("cachey", { messages: [] }))
    const after = parseExposition(await Effect.runPromise(snapshotText))
    const labels = { model: "cachey@ollama", backend: "ollama" }
    expect(valueOf(after, "llmspell_cached_prompt_tokens_total", labels) - valueOf(before, "llmspell_cached_prompt_tokens_total", labels)).toBe(150)
    expect(valueOf(after, "llmspell_prompt_tokens_total", labels) - valueOf(before, "llmspell_prompt_tokens_total", labels)).toBe(200)
    const [model] = await Effect.runPromise(llm.ps("all"))
    expect(model).toMatchObject({ name: "cachey", requests: 2, tokensPerSecond: 40, cacheHitRate: 0.75 })
  })

  it("leaves the hit rate out (unknown, not 0) for a backend that reports no cached tokens, and a model it never served untouched", async () => {
    const served: LoadedModel = { name: "plain", backend: "ollama", instance: "ollama" }
    const idle: LoadedModel = { name: "idle", backend: "ollama", instance: "ollama" }
    const llm = Metered.make(scripted([completion("plain", { promptTokens: 5, completionTokens: 3 }, 12)], [served, idle]))
    await Effect.runPromise(Stream.runDrain(llm.generate("plain", { messages: [] })))
    const [a, b] = await Effect.runPromise(llm.ps("all"))
    expect(a).toMatchObject({ requests: 1, tokensPerSecond: 12 })
    expect(a!.cacheHitRate).toBeUndefined()
    expect(b).toEqual(idle)
  })

  it("a pull that fails its checksum is a verify failure; bytes count what was transferred, not what was there", async () => {
    const event = (completedBytes: number): PullProgress => ({
      phase: "downloading", model: "m", backend: "gguf", instance: "gguf", files: [], completedBytes
    })
    const events = Stream.concat(
      Stream.fromIterable([event(1000), event(1500), event(4000)]),
      Stream.fail(new ChecksumMismatch({ file: "m.gguf", expected: "a", actual: "b" }))
    )
    const llm = Metered.make(scripted([], [], events))
    const before = parseExposition(await Effect.runPromise(snapshotText))
    await Effect.runPromise(Effect.either(Stream.runDrain(llm.pull("m@gguf"))))
    const after = parseExposition(await Effect.runPromise(snapshotText))
    const delta = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels)
    expect(delta("llmspell_pull_bytes_total", { backend: "gguf" })).toBe(3000)
    expect(delta("llmspell_pull_verify_failures_total", { backend: "gguf" })).toBe(1)
    expect(delta("llmspell_pulls_total", { backend: "gguf", outcome: "verify_failed" })).toBe(1)
  })
})

describe("labels", () => {
  it("the model label set is bounded: past MAX_MODEL_LABELS distinct specs, the rest are `other`", () => {
    const seen = new Set<string>()
    for (let i = 0; i < M.MAX_MODEL_LABELS + 50; i++) seen.add(M.modelLabel(`model-${i}@gguf`))
    expect(seen.size).toBeLessThanOrEqual(M.MAX_MODEL_LABELS + 1)
    expect(seen.has("other")).toBe(true)
    expect(M.modelLabel("model-0@gguf")).toBe("model-0@gguf")
  })

  it("label values with quotes, backslashes and newlines survive a real parser", () => {
    const awkward = "a \"quoted\" C:\\dir\\file\nsecond line"
    const text = PrometheusText.render([
      { type: "gauge", name: "llmspell_test_value", help: "help with a \\ backslash\nand a newline", samples: [{ labels: { model: awkward }, value: 3 }] }
    ])
    const parsed = parseExposition(text)
    expect(parsed.families[0]!.metrics[0]!.labels).toEqual({ model: awkward })
    expect(valueOf(parsed, "llmspell_test_value", { model: awkward })).toBe(3)
  })
})

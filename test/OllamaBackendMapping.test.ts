/** Pure mappings from Ollama's wire records to the shared types: the pull state machine and completions. */
import { describe, expect, it } from "vitest"
import { initialPull, stepPull, toCompletion, toOllamaOptions } from "../src/layers/ollama/ollamaMapping.js"

const origin = { instance: "ollama" }

describe("Ollama pull records → PullProgress", () => {
  it("a model already present: layers arrive complete, so nothing was downloaded", () => {
    const state = initialPull(origin, "llama3.2", 0)
    const records = [
      { status: "pulling manifest" },
      { status: "pulling aaaa", digest: "sha256:aaaa", total: 500, completed: 500 },
      { status: "verifying sha256 digest" },
      { status: "writing manifest" },
      { status: "success" }
    ]
    const events = records.map((r, i) => stepPull(state, r, i * 1000))
    expect(events.map((e) => e.phase)).toEqual(["resolving", "downloading", "verifying", "verifying", "done"])
    expect(events.at(-1)!.result).toEqual({
      model: "llama3.2:latest",
      backend: "ollama",
      instance: "ollama",
      alreadyPresent: true,
      sizeBytes: 500,
      files: ["sha256:aaaa"],
      downloadedBytes: 0
    })
  })

  it("rate and ETA from bytes downloaded in this pull; total unknown until every layer has one", () => {
    const state = initialPull(origin, "m:7b", 0)
    stepPull(state, { status: "pulling a", digest: "sha256:a" }, 0)
    const unknown = stepPull(state, { status: "pulling b", digest: "sha256:b", total: 100 }, 0)
    expect(unknown.totalBytes).toBeUndefined()
    expect(unknown.files.map((f) => f.status)).toEqual(["pending", "pending"])
    stepPull(state, { status: "pulling a", digest: "sha256:a", total: 1000, completed: 0 }, 0)
    const half = stepPull(state, { status: "pulling a", digest: "sha256:a", total: 1000, completed: 550 }, 2000)
    expect(half).toMatchObject({ phase: "downloading", completedBytes: 550, totalBytes: 1100, bytesPerSecond: 275, etaSeconds: 2 })
    expect(half.message).toBeUndefined()
  })
})

describe("Ollama generation", () => {
  it("done record → Completion: ns → ms, tokens/s, length finish", () => {
    const completion = toCompletion(origin, "m", "abc", {
      done_reason: "length",
      total_duration: 2_000_000_000,
      load_duration: 500_000_000,
      prompt_eval_count: 10,
      prompt_eval_duration: 100_000_000,
      eval_count: 50,
      eval_duration: 1_000_000_000
    }, 120)
    expect(completion).toEqual({
      model: "m:latest",
      backend: "ollama",
      instance: "ollama",
      text: "abc",
      finishReason: "length",
      usage: { promptTokens: 10, completionTokens: 50, totalTokens: 60 },
      timings: { loadMs: 500, timeToFirstTokenMs: 120, totalMs: 2000, tokensPerSecond: 50, promptTokensPerSecond: 100 }
    })
  })

  it("request options: only what was set, in Ollama's names", () => {
    expect(toOllamaOptions({ messages: [], maxTokens: 5, topP: 0.9, stop: ["\n"], contextSize: 8192 })).toEqual({
      num_predict: 5,
      top_p: 0.9,
      stop: ["\n"],
      num_ctx: 8192
    })
    expect(toOllamaOptions({ messages: [] })).toEqual({})
  })
})

/**
 * Out-of-range generation settings are refused the same way everywhere: by the request schema, by
 * LocalLLM.generate/run (before any backend is called), by the Promise facade, and by the built CLI
 * (exit 2, the option and its range named, nothing sent to the server). `--max-tokens 0` used to run
 * unbounded and `--temperature -1` was accepted.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import type { InvalidRequest } from "../src/domain/Errors.js"
import { exitCodeFor } from "../src/domain/Failure.js"
import { validateGenerateRequest } from "../src/domain/Protocol.js"
import { type GenerateRequest, promptRequest } from "../src/domain/Types.js"
import { createLocalLLM, LlmspellFailure } from "../src/promise.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import { LlmspellMock } from "../src/testing.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const hi = [{ role: "user" as const, content: "hi" }]

/** [field, bad value, what the message must say is allowed]. */
const BAD: ReadonlyArray<readonly [keyof GenerateRequest, unknown, string]> = [
  ["maxTokens", 0, "an integer ≥ 1"],
  ["maxTokens", -1, "an integer ≥ 1"],
  ["maxTokens", 1.5, "an integer ≥ 1"],
  ["maxTokens", Number.POSITIVE_INFINITY, "an integer ≥ 1"],
  ["maxTokens", "10", "an integer ≥ 1"],
  ["temperature", -1, "a finite number ≥ 0"],
  ["temperature", Number.NaN, "a finite number ≥ 0"],
  ["temperature", Number.POSITIVE_INFINITY, "a finite number ≥ 0"],
  ["topP", 0, "a number in (0, 1]"],
  ["topP", 1.01, "a number in (0, 1]"],
  ["topP", -0.5, "a number in (0, 1]"],
  ["topK", -1, "an integer ≥ 0 (0: no limit)"],
  ["topK", 2.5, "an integer ≥ 0 (0: no limit)"],
  ["seed", 0.5, "an integer"],
  ["seed", Number.NaN, "an integer"],
  ["seed", 2 ** 60, "an integer"],
  ["minP", -0.1, "a number in [0, 1]"],
  ["minP", 1.5, "a number in [0, 1]"],
  ["frequencyPenalty", 2.5, "a number in [-2, 2]"],
  ["frequencyPenalty", Number.NaN, "a number in [-2, 2]"],
  ["presencePenalty", -3, "a number in [-2, 2]"],
  ["repeatPenalty", 0, "a number in (0, 10] (1: off)"],
  ["repeatPenalty", 11, "a number in (0, 10] (1: off)"],
  ["repeatLastN", -2, "an integer ≥ -1 (0: off, -1: the whole context)"],
  ["repeatLastN", 1.5, "an integer ≥ -1 (0: off, -1: the whole context)"]
]

/** The `llmspell run` option of each field, where there is one. */
const OPTION: Record<string, string | undefined> = {
  maxTokens: "--max-tokens",
  temperature: "--temperature",
  seed: "--seed"
}

describe("the request schema", () => {
  it("refuses every out-of-range value with an InvalidRequest naming the field, its option and the range", () => {
    for (const [field, value, allowed] of BAD) {
      const result = validateGenerateRequest({ messages: hi, [field]: value })
      expect(Either.isLeft(result), `${field}=${String(value)}`).toBe(true)
      const error = Either.getLeft(result).pipe((o) => (o._tag === "Some" ? o.value as InvalidRequest : undefined))!
      expect(error).toMatchObject({ _tag: "InvalidRequest", field, allowed })
      expect(error.option).toBe(OPTION[field])
      const named = OPTION[field] !== undefined ? `${field} (${OPTION[field]})` : field
      expect(error.message).toContain(`${named} must be ${allowed}`)
      expect(error.hint).toContain("`llmspell run --help`")
      expect(exitCodeFor(error)).toBe(2)
    }
  })

  it("accepts the edges of every range", () => {
    const edges: ReadonlyArray<Partial<GenerateRequest>> = [
      { maxTokens: 1 },
      { temperature: 0 },
      { temperature: 2.5 },
      { topP: 1 },
      { topP: 0.01 },
      { topK: 0 },
      { seed: -1 },
      { seed: 0 },
      { maxTokens: 512, temperature: 0.7, topP: 0.9, topK: 40, seed: 42, stop: ["\n"] },
      { minP: 0 },
      { minP: 1 },
      { frequencyPenalty: -2, presencePenalty: 2 },
      { repeatPenalty: 10, repeatLastN: -1 },
      { repeatLastN: 0 },
      { logitBias: { "0": -100, "42": 100 } },
      { parallelToolCalls: false }
    ]
    for (const edge of edges) {
      expect(validateGenerateRequest({ messages: hi, ...edge })).toEqual(Either.right({ messages: hi, ...edge }))
    }
  })

  it("refuses a logitBias outside [-100, 100], a key that is no token id, and more than 1024 tokens", () => {
    for (const logitBias of [{ "5": 101 }, { "-1": 1 }, { abc: 1 }, { "1.5": 1 }, Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [String(i), 1]))]) {
      const result = validateGenerateRequest({ messages: hi, logitBias })
      expect(Either.getLeft(result), JSON.stringify(logitBias).slice(0, 40)).toMatchObject({ _tag: "Some", value: { _tag: "InvalidRequest", field: "logitBias" } })
    }
  })

  it("refuses malformed messages and empty stop strings too", () => {
    const role = validateGenerateRequest({ messages: [{ role: "root", content: "x" }] })
    expect(Either.getLeft(role)).toMatchObject({ _tag: "Some", value: { _tag: "InvalidRequest", field: "messages.0.role" } })
    const stop = validateGenerateRequest({ messages: hi, stop: [""] })
    expect(Either.getLeft(stop)).toMatchObject({ _tag: "Some", value: { _tag: "InvalidRequest", field: "stop.0" } })
  })
})

describe("LocalLLM.generate / run", () => {
  it.effect("fail with InvalidRequest and never call the backend", () => {
    const mock = LlmspellMock.make({ gguf: { models: ["tiny"] } })
    return Effect.gen(function*() {
      const llm = yield* LocalLLM
      for (const [field, value] of BAD) {
        const request = { messages: hi, [field]: value } as unknown as GenerateRequest
        const viaRun = yield* Effect.flip(llm.run("tiny", request))
        expect(viaRun).toMatchObject({ _tag: "InvalidRequest", field })
        const viaGenerate = yield* Effect.flip(Stream.runDrain(llm.generate("tiny", request)))
        expect(viaGenerate).toMatchObject({ _tag: "InvalidRequest", field })
      }
      // checked before routing: even a spec that does not route gets the request error first
      const first = yield* Effect.flip(llm.run("nowhere/x", { messages: hi, maxTokens: 0 }))
      expect(first._tag).toBe("InvalidRequest")
      expect(mock.calls.filter((c) => c.operation === "generate")).toEqual([])
      // and a valid request still runs
      const ok = yield* llm.run("tiny", { messages: hi, maxTokens: 1, temperature: 0 })
      expect(ok.usage.completionTokens).toBe(1)
    }).pipe(Effect.provide(mock.layer))
  })
})

describe("the Promise facade", () => {
  it("rejects run and stream with an LlmspellFailure tagged InvalidRequest, exit code 2", async () => {
    const mock = LlmspellMock.make({ gguf: { models: ["tiny"] } })
    await using llm = createLocalLLM({ layer: mock.layer })
    for (const [field, value, allowed] of BAD) {
      const options = { [field]: value }
      const failure = await llm.run("tiny", "hi", options).catch((e: unknown) => e)
      expect(failure).toBeInstanceOf(LlmspellFailure)
      expect(failure).toMatchObject({ _tag: "InvalidRequest", exitCode: 2 })
      expect((failure as LlmspellFailure).message).toContain(allowed)
    }
    const stream = llm.stream("tiny", "hi", { temperature: -1 })
    const iterated = (async () => {
      for await (const _ of stream) { /* nothing may arrive */ }
    })()
    await expect(iterated).rejects.toMatchObject({ _tag: "InvalidRequest", exitCode: 2 })
    await expect(stream.completion).rejects.toMatchObject({ _tag: "InvalidRequest" })
    expect(mock.calls.filter((c) => c.operation === "generate")).toEqual([])
    // the facade builds the same request the CLI does
    expect(validateGenerateRequest(promptRequest("hi", { maxTokens: 3 }))._tag).toBe("Right")
  })
})

describe("llmspell run (built CLI)", () => {
  let dir: string
  let fake: FakeOllama

  beforeAll(async () => {
    ensureBuilt()
    dir = await mkdtemp(join(tmpdir(), "llmspell-request-"))
    fake = await startFakeOllama({ models: [fakeModel("tiny")], answer: () => "an answer" })
  })

  afterAll(async () => {
    await fake.close()
    await rm(dir, { recursive: true, force: true })
  })

  const run = (args: ReadonlyArray<string>) =>
    runCli(args, { cwd: dir, env: isolatedEnv(dir, { OLLAMA_HOST: `${fake.host}:${fake.port}` }) })

  it("exits 2 naming the option and its range; nothing reaches the server", async () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["--max-tokens", "0"], "--max-tokens) must be an integer ≥ 1; got 0"],
      [["--max-tokens", "-3"], "--max-tokens) must be an integer ≥ 1; got -3"],
      [["--temperature", "-1"], "--temperature) must be a finite number ≥ 0; got -1"],
      [["--temperature", "NaN"], "--temperature) must be a finite number ≥ 0; got NaN"]
    ]
    for (const [options, message] of cases) {
      const result = await run(["run", "-m", "tiny@ollama", ...options, "hi"])
      expect(result.code, result.stderr).toBe(2)
      expect(result.stderr).toContain(message)
      expect(result.stderr).toMatch(/^hint: .*`llmspell run --help`/m)
      expect(result.stdout).toBe("")
    }
    const json = await run(["run", "-m", "tiny@ollama", "--max-tokens", "0", "--json", "hi"])
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { _tag: "InvalidRequest" } })
    expect(fake.requests.filter((r) => r.path === "/api/chat")).toEqual([])

    const ok = await run(["run", "-m", "tiny@ollama", "--max-tokens", "1", "--temperature", "0", "hi"])
    expect(ok.code, ok.stderr).toBe(0)
    expect(fake.requests.filter((r) => r.path === "/api/chat")).toHaveLength(1)
  }, 60_000)
})

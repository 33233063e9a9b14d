/**
 * GGUF context limits with the real node-llama-cpp on a generated model (the GGUF twin of the
 * "Ollama context" tests in OllamaAgent.test.ts and cli-agent.test.ts): a prompt longer than a
 * 256-token context is ContextOverflow before any token is generated (never LlamaChat's silent
 * history compression), in the worker and in-process, and through the built CLI with a hint whose
 * command works; a `maxTokens` above what the context has left is capped and reported in Finish.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { GgufInstanceConfig } from "../src/domain/ConfigSchema.js"
import type { Completion, GenerateEvent, GenerateRequest } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import * as LlamaLoaderLive from "../src/layers/gguf/LlamaLoaderLive.js"
import { ModelDownloaderMock } from "../src/testing/index.js"
import { ggufInstance } from "./fixtures/ggufBackendFakes.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import "./fixtures/ggufWorkerBundle.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

// real llama.cpp work (loads, worker processes, a built CLI) on a 2-core machine shared with other
// jobs: a test here took 20–30 s at load average 20; nothing in it waits for time to pass
vi.setConfig({ testTimeout: 120_000 })

const dir = mkdtempSync(join(tmpdir(), "llmspell-gguf-context-"))
// trained for 256 tokens, so `context_size = "auto"` (the CLI's default) is 256 too
const MODEL = join(dir, "small.gguf")
writeFileSync(MODEL, tinyLlamaGguf({ vocabSize: 400, contextLength: 256, seed: 11 }))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const loader = LlamaLoaderLive.make()
const backendWith = (overrides: Partial<GgufInstanceConfig> = {}) =>
  makeBackend(ggufInstance({ modelDirectory: dir, contextSize: 256, threads: 1, ...overrides }), loader, ModelDownloaderMock().service)

const user = (content: string) => ({ role: "user" as const, content })
const long = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ")

/** Every event, then the error (if any) as the last element. */
const events = (stream: Stream.Stream<GenerateEvent, unknown>) =>
  Effect.map(Stream.runCollect(Stream.either(stream)), Chunk.toReadonlyArray)

const overflowCases: ReadonlyArray<readonly [string, GenerateRequest]> = [
  ["one long message", { messages: [user(long)], maxTokens: 4 }],
  // LlamaChat would drop the first turns of this history to make it fit
  [
    "a history that only fits without its first turns",
    {
      messages: [
        { role: "system", content: "Be brief." },
        ...Array.from({ length: 6 }, (_, i) => [user(`question ${i} ${"x".repeat(60)}`), { role: "assistant" as const, content: `answer ${i}` }]).flat(),
        user("and now?")
      ],
      maxTokens: 4
    }
  ]
]

describe("GGUF context", () => {
  for (const isolation of ["process", "none"] as const) {
    for (const [name, request] of overflowCases) {
      it.scoped(`${name} over a 256-token context is ContextOverflow before any token (isolation ${isolation})`, () =>
        Effect.gen(function*() {
          const b = yield* backendWith({ isolation })
          const all = yield* events(b.generate(MODEL, request))
          expect(all).toHaveLength(1)
          const error = all[0]!
          if (!Either.isLeft(error)) throw new Error("expected a failure")
          expect(error.left).toMatchObject({ _tag: "ContextOverflow", backend: "gguf", model: MODEL, contextSize: 256 })
          expect((error.left as { promptTokens: number }).promptTokens).toBeGreaterThan(255)
          const hint = (error.left as { hint: string }).hint
          expect(hint).toContain("context_size")
          expect(hint).toContain("[providers.gguf]")
          // the model is still usable: a prompt that fits is answered
          const fits = yield* events(b.generate(MODEL, { messages: [user("hello")], maxTokens: 2, seed: 1 }))
          expect(fits.at(-1)).toMatchObject({ _tag: "Right", right: { _tag: "Finish" } })
        }))
    }
  }

  it.scoped("maxTokens above what the context has left is capped, and Finish says so", () =>
    Effect.gen(function*() {
      const b = yield* backendWith()
      const all = yield* events(b.generate(MODEL, { messages: [user("hello world")], maxTokens: 1000, seed: 1 }))
      const last = all.at(-1)!
      if (!Either.isRight(last) || last.right._tag !== "Finish") throw new Error("expected a Finish")
      const completion: Completion = last.right.completion
      const { promptTokens, completionTokens } = completion.usage
      expect(completion.maxTokensCapped).toEqual({ requested: 1000, used: 256 - promptTokens - 1 })
      expect(completionTokens).toBeLessThanOrEqual(256 - promptTokens - 1)
      // a maxTokens that fits is not reported
      const small = yield* events(b.generate(MODEL, { messages: [user("hello world")], maxTokens: 3, seed: 1 }))
      const finish = small.at(-1)!
      if (!Either.isRight(finish) || finish.right._tag !== "Finish") throw new Error("expected a Finish")
      expect(finish.right.completion.maxTokensCapped).toBeUndefined()
      expect(finish.right.completion.usage.completionTokens).toBeLessThanOrEqual(3)
    }))
})

describe("llmspell run: GGUF context (built CLI)", () => {
  beforeAll(() => ensureBuilt())
  const run = (args: ReadonlyArray<string>) =>
    runCli(args, { cwd: dir, env: isolatedEnv(dir, { LLMSPELL_MODELS_DIR: join(dir, "models") }) })

  it("a prompt over a 256-token context exits 1 with ContextOverflow, and its hint's command works", async () => {
    const result = await run(["run", "-m", "./small.gguf", long, "--json"])
    expect(result.code).toBe(1)
    const error = JSON.parse(result.stdout.trim().split("\n").at(-1)!).error as { _tag: string; message: string; hint: string }
    expect(error._tag).toBe("ContextOverflow")
    expect(error.message).toContain("context of 256 tokens")
    expect(error.hint).toContain("context_size")
    const command = /`llmspell (model info [^`]+)`/.exec(error.hint)![1]!.split(" ")
    const info = await run([...command])
    expect(info.code).toBe(0)
    expect(info.stdout).toContain("small.gguf")
    const config = await run(["config", "path"])
    expect(config.code).toBe(0)
  })
})

/**
 * Proves the fixture writer produces models that the real node-llama-cpp loads and generates from,
 * deterministically for a fixed seed. Threads stay at 1: more collapse generation on 2-core machines.
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { getLlama, type Llama, LlamaChatSession, LlamaCompletion, LlamaLogLevel } from "node-llama-cpp"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tinyLlamaGguf, toF16Bits, type TinyTensorType, writeTinyLlamaGguf } from "./fixtures/ggufWriter.js"

let llama: Llama
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmspell-gguf-writer-"))
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error })
})

afterAll(async () => {
  await llama?.dispose()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe("toF16Bits", () => {
  it("encodes exact and rounded values", () => {
    expect(toF16Bits(0)).toBe(0)
    expect(toF16Bits(1)).toBe(0x3c00)
    expect(toF16Bits(-2)).toBe(0xc000)
    expect(toF16Bits(65504)).toBe(0x7bff)
    expect(toF16Bits(1e6)).toBe(0x7c00)
    expect(toF16Bits(2 ** -24)).toBe(1)
    expect(toF16Bits(1 + 2 ** -11)).toBe(0x3c00) // tie rounds to even
    expect(toF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02)
  })
})

describe("tinyLlamaGguf", () => {
  it("is deterministic and small by default", () => {
    const a = tinyLlamaGguf()
    const b = tinyLlamaGguf()
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true)
    expect(a.length).toBeGreaterThan(50_000)
    expect(a.length).toBeLessThan(600_000)
    expect(Buffer.from(tinyLlamaGguf({ seed: 2 })).equals(Buffer.from(a))).toBe(false)
  })

  it("streams to the same bytes it encodes in memory", async () => {
    const path = join(dir, "same.gguf")
    await writeTinyLlamaGguf(path, { tensorType: "Q8_0" })
    expect(Buffer.from(await readFile(path)).equals(Buffer.from(tinyLlamaGguf({ tensorType: "Q8_0" })))).toBe(true)
  })

  const generate = async (modelPath: string) => {
    const t0 = performance.now()
    const model = await llama.loadModel({ modelPath, useMmap: true })
    const loadMs = performance.now() - t0
    try {
      const context = await model.createContext({ contextSize: 256, threads: 1 })
      const runs: Array<ReadonlyArray<number>> = []
      let genMs = 0
      for (let run = 0; run < 2; run++) {
        const sequence = context.getSequence()
        const completion = new LlamaCompletion({ contextSequence: sequence })
        const tokens: Array<number> = []
        const t1 = performance.now()
        await completion.generateCompletion("Hello world", {
          maxTokens: 8,
          temperature: 0.8,
          seed: 42,
          onToken: (chunk) => tokens.push(...chunk)
        })
        genMs = performance.now() - t1
        runs.push(tokens)
        completion.dispose()
        sequence.dispose()
      }
      return { model, runs, loadMs, genMs }
    } catch (e) {
      await model.dispose()
      throw e
    }
  }

  for (const tensorType of ["F32", "F16", "Q8_0"] satisfies ReadonlyArray<TinyTensorType>) {
    it(`writes a ${tensorType} model that node-llama-cpp loads and generates from deterministically`, async () => {
      const path = join(dir, `tiny-${tensorType}.gguf`)
      await writeTinyLlamaGguf(path, { tensorType })
      const { model, runs, loadMs, genMs } = await generate(path)
      try {
        expect(model.tokens.bos).toBe(1)
        expect(model.tokens.eos).toBe(2)
        expect(model.fileInfo.metadata.general.architecture).toBe("llama")
        expect(runs[0]!.length).toBeGreaterThan(0)
        expect(runs[1]).toEqual(runs[0])
        console.info(
          `[ggufWriter] ${tensorType}: ${(await stat(path)).size} bytes, load ${loadMs.toFixed(0)} ms, ` +
            `${runs[0]!.length} tokens in ${genMs.toFixed(0)} ms`
        )
      } finally {
        await model.dispose()
      }
    })
  }

  it("serves a ChatML chat session with a short system prompt", async () => {
    const path = join(dir, "tiny-chat.gguf")
    await writeTinyLlamaGguf(path, { tensorType: "F16", vocabSize: 2000 })
    const model = await llama.loadModel({ modelPath: path, useMmap: true })
    try {
      const context = await model.createContext({ contextSize: 256, threads: 1 })
      const answers: Array<string> = []
      for (let run = 0; run < 2; run++) {
        const sequence = context.getSequence()
        const session = new LlamaChatSession({ contextSequence: sequence, systemPrompt: "Be brief." })
        expect(session.chatWrapper.wrapperName).toBe("ChatML")
        let tokenCount = 0
        answers.push(
          await session.prompt("Hi", {
            maxTokens: 8,
            temperature: 0.8,
            seed: 7,
            onToken: (chunk) => (tokenCount += chunk.length)
          })
        )
        expect(tokenCount).toBeGreaterThan(0)
        session.dispose()
        sequence.dispose()
      }
      expect(answers[1]).toBe(answers[0])
    } finally {
      await model.dispose()
    }
  })
})

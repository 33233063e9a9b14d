/**
 * `llmspell run`, `model info` and `model status` on the GGUF backend through the built
 * `dist/cli.js` (build first: `npm run build`), with a tiny model written into a temp directory:
 * JSON shapes that decode as our types, exit code 3 and the pull hint for a missing model.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Schema from "effect/Schema"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Completion, ModelInfo, StatusReport } from "../src/domain/Types.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string

const run = (args: ReadonlyArray<string>) =>
  runCli(args, { cwd: dir, env: isolatedEnv(dir, { LLMSPELL_MODELS_DIR: join(dir, "models") }) })

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-gguf-"))
  await writeFile(join(dir, "tiny.gguf"), tinyLlamaGguf())
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe("llmspell run on a GGUF file", () => {
  it("--json prints one Completion with usage and timings; the same seed gives the same text", async () => {
    const args = ["run", "--model", "./tiny.gguf", "hi", "--max-tokens", "8", "--seed", "1", "--json"]
    const first = await run(args)
    expect(first.stderr).toBe("")
    expect(first.code).toBe(0)
    const completion = Schema.decodeUnknownSync(Schema.parseJson(Completion))(first.stdout.trim())
    expect(completion).toMatchObject({ model: "./tiny.gguf", backend: "gguf", finishReason: "length" })
    expect(completion.usage.completionTokens).toBe(8)
    // a fresh process: nothing of the prompt was in the sequence's cache, and it says so (0, not absent)
    expect(completion.usage.cachedPromptTokens).toBe(0)
    expect(completion.timings.loadMs).toBeGreaterThan(0)
    const second = await run(args)
    expect(JSON.parse(second.stdout).text).toBe(completion.text)
  })

  it("--verbose: the line of figures counts the prompt's cached tokens", async () => {
    const result = await run(["--verbose", "run", "--model", "./tiny.gguf", "hi", "--max-tokens", "4", "--seed", "1"])
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/\d+ prompt \(0 cached\) \+ 4 completion tokens/)
  })

  it("a missing model is exit code 3 with the pull hint on stderr", async () => {
    const result = await run(["run", "--model", "someone/Missing-GGUF:Q4_K_M@gguf", "hi"])
    expect(result.code).toBe(3)
    expect(result.stderr).toContain("llmspell model pull someone/Missing-GGUF:Q4_K_M")
  })

  it("model info --json and model status --json", async () => {
    const info = await run(["model", "info", "./tiny.gguf@gguf", "--json"])
    expect(info.code).toBe(0)
    expect(Schema.decodeUnknownSync(Schema.parseJson(ModelInfo))(info.stdout.trim())).toMatchObject({
      architecture: "llama",
      quantization: "F16",
      chatTemplate: true
    })
    const status = await run(["model", "status", "--backend", "gguf", "--json"])
    expect(status.code).toBe(0)
    const report = Schema.decodeUnknownSync(Schema.parseJson(StatusReport))(status.stdout.trim())
    expect(report.backends[0]).toMatchObject({ backend: "gguf", available: true, loaded: [] })
    expect(report.backends[0]!.details["binary"]).toBe("prebuilt")
  })
})

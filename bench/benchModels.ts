/**
 * The generated llamas the benchmarks share, defined once so every section's figures are about the
 * same model: "small" (~60M parameters, F16, 111 MiB) and "large" (dim 1024, 16 layers, Q8_0,
 * ~275 MiB: the model of the issues' figures). Options for test/fixtures/ggufWriter.ts.
 */
import { mkdir, mkdtemp, stat } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { writeTinyLlamaGguf } from "../test/fixtures/ggufWriter.js"

export const benchModel = (size: "small" | "large", contextLength: number, name: string) =>
  size === "small"
    ? { vocabSize: 32000, embeddingLength: 512, blockCount: 8, contextLength, name }
    : { vocabSize: 32000, embeddingLength: 1024, blockCount: 16, feedForwardLength: 2816, tensorType: "Q8_0" as const, contextLength, name }

/** A benchmark's scratch directory: a HOME, a model directory holding `bench.gguf`, deleted by the caller. */
export interface BenchWorkspace {
  readonly dir: string
  readonly home: string
  readonly models: string
  readonly file: string
  readonly sizeMiB: number
  /** The model's spec: `bench.gguf@gguf`. */
  readonly spec: string
}

/** Writes the benchmark's generated llama into a fresh temp directory (`llmspell-bench-<name>-…`). */
export const benchWorkspace = async (name: string, size: "small" | "large", contextLength: number): Promise<BenchWorkspace> => {
  const dir = await mkdtemp(join(tmpdir(), `llmspell-bench-${name}-`))
  const home = join(dir, "home")
  const models = join(dir, "models")
  await mkdir(home, { recursive: true })
  await mkdir(models, { recursive: true })
  const file = join(models, "bench.gguf")
  await writeTinyLlamaGguf(file, benchModel(size, contextLength, "bench"))
  return { dir, home, models, file, sizeMiB: (await stat(file)).size / 2 ** 20, spec: "bench.gguf@gguf" }
}

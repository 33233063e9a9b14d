/**
 * The generated llamas the benchmarks share, defined once so every section's figures are about the
 * same model: "small" (~60M parameters, F16, 111 MiB) and "large" (dim 1024, 16 layers, Q8_0,
 * ~275 MiB: the model of the issues' figures). Options for test/fixtures/ggufWriter.ts.
 */
export const benchModel = (size: "small" | "large", contextLength: number, name: string) =>
  size === "small"
    ? { vocabSize: 32000, embeddingLength: 512, blockCount: 8, contextLength, name }
    : { vocabSize: 32000, embeddingLength: 1024, blockCount: 16, feedForwardLength: 2816, tensorType: "Q8_0" as const, contextLength, name }

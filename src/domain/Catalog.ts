/**
 * The curated catalog: GGUF models people actually run, under short aliases that `pull` and `run`
 * accept (`qwen2.5:0.5b`). Sizes are approximate (the hub's files, rounded) and only used to say
 * whether a model fits this machine; the hub listing is the truth at pull time. Pure: no I/O.
 */
import * as Schema from "effect/Schema"

/** One quantization of a catalog model. */
export interface CatalogQuantization {
  readonly name: string
  /** Approximate file size in bytes. */
  readonly sizeBytes: number
}

/** One catalog model. */
export interface CatalogEntry {
  readonly alias: string
  readonly repo: string
  readonly description: string
  readonly parameters: string
  readonly contextLength: number
  readonly license: string
  readonly recommended: boolean
  readonly defaultQuantization: string
  readonly quantizations: ReadonlyArray<CatalogQuantization>
}

const GB = 1_000_000_000
const MB = 1_000_000
const q = (name: string, sizeBytes: number): CatalogQuantization => ({ name, sizeBytes: Math.round(sizeBytes) })

/** Every catalog model. */
export const entries: ReadonlyArray<CatalogEntry> = [
  {
    alias: "qwen2.5:0.5b",
    repo: "bartowski/Qwen2.5-0.5B-Instruct-GGUF",
    description: "Qwen2.5 0.5B Instruct: tiny, fast, good for tests and simple tasks",
    parameters: "0.5B",
    contextLength: 32768,
    license: "apache-2.0",
    recommended: true,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 398 * MB), q("Q6_K", 506 * MB), q("Q8_0", 531 * MB), q("F16", 994 * MB)]
  },
  {
    alias: "qwen2.5:1.5b",
    repo: "bartowski/Qwen2.5-1.5B-Instruct-GGUF",
    description: "Qwen2.5 1.5B Instruct",
    parameters: "1.5B",
    contextLength: 32768,
    license: "apache-2.0",
    recommended: true,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 986 * MB), q("Q6_K", 1.27 * GB), q("Q8_0", 1.65 * GB), q("F16", 3.09 * GB)]
  },
  {
    alias: "qwen2.5:3b",
    repo: "bartowski/Qwen2.5-3B-Instruct-GGUF",
    description: "Qwen2.5 3B Instruct",
    parameters: "3B",
    contextLength: 32768,
    license: "qwen-research",
    recommended: false,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 1.93 * GB), q("Q6_K", 2.54 * GB), q("Q8_0", 3.29 * GB)]
  },
  {
    alias: "qwen2.5:7b",
    repo: "bartowski/Qwen2.5-7B-Instruct-GGUF",
    description: "Qwen2.5 7B Instruct: strong general model for 8+ GB of RAM",
    parameters: "7B",
    contextLength: 32768,
    license: "apache-2.0",
    recommended: true,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 4.68 * GB), q("Q5_K_M", 5.44 * GB), q("Q6_K", 6.25 * GB), q("Q8_0", 8.1 * GB)]
  },
  {
    alias: "qwen2.5-coder:7b",
    repo: "bartowski/Qwen2.5-Coder-7B-Instruct-GGUF",
    description: "Qwen2.5 Coder 7B Instruct: code generation and editing",
    parameters: "7B",
    contextLength: 32768,
    license: "apache-2.0",
    recommended: false,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 4.68 * GB), q("Q5_K_M", 5.44 * GB), q("Q8_0", 8.1 * GB)]
  },
  {
    alias: "llama3.2:1b",
    repo: "bartowski/Llama-3.2-1B-Instruct-GGUF",
    description: "Llama 3.2 1B Instruct",
    parameters: "1B",
    contextLength: 131072,
    license: "llama3.2",
    recommended: true,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 808 * MB), q("Q6_K", 1.02 * GB), q("Q8_0", 1.32 * GB), q("F16", 2.48 * GB)]
  },
  {
    alias: "llama3.2:3b",
    repo: "bartowski/Llama-3.2-3B-Instruct-GGUF",
    description: "Llama 3.2 3B Instruct",
    parameters: "3B",
    contextLength: 131072,
    license: "llama3.2",
    recommended: true,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 2.02 * GB), q("Q6_K", 2.64 * GB), q("Q8_0", 3.42 * GB)]
  },
  {
    alias: "llama3.1:8b",
    repo: "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
    description: "Llama 3.1 8B Instruct",
    parameters: "8B",
    contextLength: 131072,
    license: "llama3.1",
    recommended: true,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 4.92 * GB), q("Q5_K_M", 5.73 * GB), q("Q6_K", 6.6 * GB), q("Q8_0", 8.54 * GB)]
  },
  {
    alias: "phi3.5:3.8b",
    repo: "bartowski/Phi-3.5-mini-instruct-GGUF",
    description: "Phi-3.5 mini Instruct (3.8B)",
    parameters: "3.8B",
    contextLength: 131072,
    license: "mit",
    recommended: false,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 2.39 * GB), q("Q6_K", 3.14 * GB), q("Q8_0", 4.06 * GB)]
  },
  {
    alias: "gemma2:2b",
    repo: "bartowski/gemma-2-2b-it-GGUF",
    description: "Gemma 2 2B Instruct",
    parameters: "2.6B",
    contextLength: 8192,
    license: "gemma",
    recommended: true,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 1.71 * GB), q("Q6_K", 2.15 * GB), q("Q8_0", 2.78 * GB)]
  },
  {
    alias: "gemma2:9b",
    repo: "bartowski/gemma-2-9b-it-GGUF",
    description: "Gemma 2 9B Instruct",
    parameters: "9B",
    contextLength: 8192,
    license: "gemma",
    recommended: false,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 5.76 * GB), q("Q5_K_M", 6.65 * GB), q("Q8_0", 9.83 * GB)]
  },
  {
    alias: "mistral:7b",
    repo: "bartowski/Mistral-7B-Instruct-v0.3-GGUF",
    description: "Mistral 7B Instruct v0.3",
    parameters: "7B",
    contextLength: 32768,
    license: "apache-2.0",
    recommended: false,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 4.37 * GB), q("Q5_K_M", 5.14 * GB), q("Q6_K", 5.95 * GB), q("Q8_0", 7.7 * GB)]
  },
  {
    alias: "smollm2:1.7b",
    repo: "bartowski/SmolLM2-1.7B-Instruct-GGUF",
    description: "SmolLM2 1.7B Instruct",
    parameters: "1.7B",
    contextLength: 8192,
    license: "apache-2.0",
    recommended: false,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 1.06 * GB), q("Q6_K", 1.41 * GB), q("Q8_0", 1.82 * GB)]
  },
  {
    alias: "smollm2:360m",
    repo: "bartowski/SmolLM2-360M-Instruct-GGUF",
    description: "SmolLM2 360M Instruct: very small",
    parameters: "360M",
    contextLength: 8192,
    license: "apache-2.0",
    recommended: false,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 271 * MB), q("Q8_0", 386 * MB)]
  },
  {
    alias: "deepseek-r1:1.5b",
    repo: "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF",
    description: "DeepSeek R1 Distill Qwen 1.5B: small reasoning model",
    parameters: "1.5B",
    contextLength: 131072,
    license: "mit",
    recommended: false,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 1.12 * GB), q("Q6_K", 1.46 * GB), q("Q8_0", 1.89 * GB)]
  },
  {
    alias: "tinyllama:1.1b",
    repo: "TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF",
    description: "TinyLlama 1.1B Chat v1.0",
    parameters: "1.1B",
    contextLength: 2048,
    license: "apache-2.0",
    recommended: false,
    defaultQuantization: "Q4_K_M",
    quantizations: [q("Q4_K_M", 669 * MB), q("Q5_K_M", 783 * MB), q("Q8_0", 1.17 * GB)]
  }
]

/** The entry with this alias (case-insensitive). */
export const find = (alias: string): CatalogEntry | undefined => {
  const lower = alias.toLowerCase()
  return entries.find((e) => e.alias === lower)
}

/** The entry of a hub repo (case-insensitive), e.g. to name an installed model by its alias. */
export const findByRepo = (repo: string): CatalogEntry | undefined => {
  const lower = repo.toLowerCase()
  return entries.find((e) => e.repo.toLowerCase() === lower)
}

/**
 * Rough memory a model needs to run on the CPU: its weights (mmap'd, so resident once touched),
 * a KV cache for a 4096-token context (~12% of the weights for these architectures, at least 256 MiB)
 * and ~300 MiB of runtime. Good enough to say "fits" or "does not fit", not for scheduling.
 */
export const estimateRamBytes = (sizeBytes: number): number =>
  Math.round(sizeBytes + Math.max(256 * 1024 * 1024, sizeBytes * 0.12) + 300 * 1024 * 1024)

/** The catalog against the memory available: recommended and fitting models first, then by size. */
export const available = (
  freeMemoryBytes: number,
  options: { readonly recommendedOnly?: boolean } = {}
): ReadonlyArray<AvailableModel> =>
  entries
    .filter((e) => !options.recommendedOnly || e.recommended)
    .map((e) => {
      const quantizations = e.quantizations.map((qz) => {
        const ramBytes = estimateRamBytes(qz.sizeBytes)
        return { ...qz, ramBytes, fits: ramBytes <= freeMemoryBytes }
      })
      const main = quantizations.find((qz) => qz.name === e.defaultQuantization) ?? quantizations[0]!
      return { ...e, quantizations, fits: main.fits, ramBytes: main.ramBytes }
    })
    .sort((a, b) =>
      Number(b.recommended && b.fits) - Number(a.recommended && a.fits) ||
      Number(b.fits) - Number(a.fits) ||
      a.ramBytes - b.ramBytes
    )

/** A model some store on this machine holds, as the catalog matches it (by hub repo and quantization). */
export interface PresentModel {
  readonly repo: string
  readonly quantization?: string | undefined
  readonly stores: ReadonlyArray<string>
}

/** Marks the quantizations (and models) already on this machine, with the stores holding them. */
export const markOnMachine = (
  models: ReadonlyArray<AvailableModel>,
  present: ReadonlyArray<PresentModel>
): ReadonlyArray<AvailableModel> =>
  models.map((m) => {
    const ofRepo = present.filter((p) => p.repo.toLowerCase() === m.repo.toLowerCase())
    if (ofRepo.length === 0) return m
    const quantizations = m.quantizations.map((qz) => {
      const stores = [...new Set(ofRepo.filter((p) => p.quantization?.toUpperCase() === qz.name.toUpperCase()).flatMap((p) => p.stores))]
      return stores.length > 0 ? { ...qz, onMachine: stores } : qz
    })
    const stores = [...new Set(quantizations.flatMap((qz) => qz.onMachine ?? []))]
    return stores.length > 0 ? { ...m, quantizations, onMachine: stores } : m
  })

/** `model available --json`: the catalog against this machine. */
export const AvailableReport = Schema.Struct({
  freeMemoryBytes: Schema.Number,
  totalMemoryBytes: Schema.Number,
  models: Schema.Array(
    Schema.Struct({
      alias: Schema.String,
      repo: Schema.String,
      description: Schema.String,
      parameters: Schema.String,
      contextLength: Schema.Number,
      license: Schema.String,
      recommended: Schema.Boolean,
      defaultQuantization: Schema.String,
      fits: Schema.Boolean,
      ramBytes: Schema.Number,
      /** The stores already holding some quantization of it (`llmspell`, `ollama-store`, `hf-cache`, …). */
      onMachine: Schema.optional(Schema.Array(Schema.String)),
      quantizations: Schema.Array(
        Schema.Struct({
          name: Schema.String,
          sizeBytes: Schema.Number,
          ramBytes: Schema.Number,
          fits: Schema.Boolean,
          /** The stores already holding this file; a pull of it downloads nothing. */
          onMachine: Schema.optional(Schema.Array(Schema.String))
        })
      )
    })
  )
})
/** `model available --json`. */
export type AvailableReport = typeof AvailableReport.Type
/** One row of `model available`. */
export type AvailableModel = AvailableReport["models"][number]

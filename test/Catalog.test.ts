/**
 * The curated catalog: enough real models, well-formed entries whose aliases parse as hub references,
 * and the "fits this machine" ordering.
 */
import * as Either from "effect/Either"
import { describe, expect, it } from "vitest"
import * as Catalog from "../src/domain/Catalog.js"
import * as HubRef from "../src/domain/HubRef.js"
import * as ModelSpec from "../src/domain/ModelSpec.js"

describe("catalog", () => {
  it("has at least 12 models, including the ones people ask for, each well-formed", () => {
    expect(Catalog.entries.length).toBeGreaterThanOrEqual(12)
    const aliases = Catalog.entries.map((e) => e.alias)
    for (
      const alias of [
        "qwen2.5:0.5b",
        "qwen2.5:1.5b",
        "qwen2.5:3b",
        "qwen2.5:7b",
        "llama3.2:1b",
        "llama3.2:3b",
        "llama3.1:8b",
        "phi3.5:3.8b",
        "gemma2:2b",
        "gemma2:9b",
        "mistral:7b",
        "smollm2:1.7b"
      ]
    ) expect(aliases).toContain(alias)
    expect(new Set(aliases).size).toBe(aliases.length)
    for (const e of Catalog.entries) {
      expect(HubRef.validateRepo(e.repo), e.repo).toBeUndefined()
      expect(e.quantizations.map((q) => q.name)).toContain(e.defaultQuantization)
      for (const q of e.quantizations) {
        expect(HubRef.isQuantization(q.name), q.name).toBe(true)
        expect(q.sizeBytes).toBeGreaterThan(100_000_000)
      }
      expect(e.contextLength).toBeGreaterThanOrEqual(2048)
      expect(e.license.length).toBeGreaterThan(0)
      // The alias is a valid model spec and parses back to this entry.
      expect(Either.isRight(ModelSpec.parse(e.alias))).toBe(true)
      expect(Either.getOrThrow(HubRef.parse(e.alias))).toMatchObject({ repo: e.repo, alias: e.alias })
      expect(Catalog.findByRepo(e.repo.toUpperCase())?.alias).toBe(e.alias)
    }
    // Bigger quantizations are bigger files.
    for (const e of Catalog.entries) {
      const byName = new Map(e.quantizations.map((q) => [q.name, q.sizeBytes]))
      if (byName.has("Q4_K_M") && byName.has("Q8_0")) expect(byName.get("Q8_0")!).toBeGreaterThan(byName.get("Q4_K_M")!)
    }
  })

  it("available: fitting recommended models first; --recommended filters", () => {
    const free = 3 * 1024 ** 3
    const list = Catalog.available(free)
    expect(list).toHaveLength(Catalog.entries.length)
    const rank = (m: Catalog.AvailableModel) => (m.recommended && m.fits ? 0 : m.fits ? 1 : 2)
    for (let i = 1; i < list.length; i++) expect(rank(list[i]!)).toBeGreaterThanOrEqual(rank(list[i - 1]!))
    expect(list[0]).toMatchObject({ recommended: true, fits: true })
    expect(list.find((m) => m.alias === "llama3.1:8b")?.fits).toBe(false)
    expect(list.find((m) => m.alias === "qwen2.5:0.5b")?.fits).toBe(true)
    expect(Catalog.available(free, { recommendedOnly: true }).every((m) => m.recommended)).toBe(true)
    expect(Catalog.estimateRamBytes(4e9)).toBeGreaterThan(4e9)
  })
})

describe("catalog marks what is already on this machine", () => {
  it("marks the quantizations present (case-insensitive repo and quantization), with every store holding them", () => {
    const models = Catalog.available(64 * 2 ** 30)
    const target = models.find((m) => m.alias === "qwen2.5:0.5b")!
    const [first, second] = target.quantizations
    const marked = Catalog.markOnMachine(models, [
      { repo: target.repo.toUpperCase(), quantization: first!.name.toLowerCase(), stores: ["hf-cache"] },
      { repo: target.repo, quantization: first!.name, stores: ["llmspell", "hf-cache"] },
      { repo: "someone/else-GGUF", quantization: first!.name, stores: ["lmstudio"] }
    ])
    const row = marked.find((m) => m.alias === "qwen2.5:0.5b")!
    expect(row.onMachine).toEqual(["hf-cache", "llmspell"])
    expect(row.quantizations[0]!.onMachine).toEqual(["hf-cache", "llmspell"])
    if (second !== undefined) expect(row.quantizations[1]!.onMachine).toBeUndefined()
    // models of other repos are left as they were
    expect(marked.filter((m) => m.alias !== "qwen2.5:0.5b").every((m) => m.onMachine === undefined)).toBe(true)
  })

  it("a repo on the machine in a quantization the catalog does not list marks nothing", () => {
    const models = Catalog.available(64 * 2 ** 30)
    const target = models[0]!
    const marked = Catalog.markOnMachine(models, [{ repo: target.repo, quantization: "IQ1_S_NOT_LISTED", stores: ["ollama-store"] }])
    expect(marked[0]!.onMachine).toBeUndefined()
  })
})

/**
 * Hub references, quantization names, split grouping, selection and path safety: pure functions.
 */
import * as Either from "effect/Either"
import { describe, expect, it } from "vitest"
import * as HubRef from "../src/domain/HubRef.js"
import * as ModelSpec from "../src/domain/ModelSpec.js"

const ok = (text: string, q?: string) => Either.getOrThrow(HubRef.parse(text, q))
const bad = (text: string, q?: string) => {
  const r = HubRef.parse(text, q)
  if (Either.isRight(r)) throw new Error(`expected ${text} to be rejected`)
  return r.left.message
}

describe("parse", () => {
  it("catalog aliases resolve to their repo and default quantization; alias:QUANT and --quantization override", () => {
    expect(ok("qwen2.5:0.5b")).toEqual({
      kind: "repo",
      repo: "bartowski/Qwen2.5-0.5B-Instruct-GGUF",
      quantization: "Q4_K_M",
      alias: "qwen2.5:0.5b"
    })
    expect(ok("qwen2.5:0.5b:q8_0")).toMatchObject({ quantization: "Q8_0" })
    expect(ok("Qwen2.5:0.5B", "Q6_K")).toMatchObject({ quantization: "Q6_K", alias: "qwen2.5:0.5b" })
    expect(ok("local/llama3.2:1b@gguf").repo).toBe("bartowski/Llama-3.2-1B-Instruct-GGUF")
    expect(bad("nosuchmodel:7b")).toContain("model available")
  })

  it("org/repo[:QUANT], with hf.co/, local/, gguf/ and @gguf around it", () => {
    const expected = { kind: "repo", repo: "bartowski/Llama-3.2-1B-Instruct-GGUF", quantization: "Q4_K_M", alias: undefined }
    for (
      const text of [
        "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:q4_k_m",
        "https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        "local/hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M@gguf",
        "gguf/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M@candle"
      ]
    ) expect(ok(text)).toEqual(expected)
    expect(ok("org/repo")).toMatchObject({ kind: "repo", quantization: undefined })
    expect(ok("org/repo", "iq4_xs")).toMatchObject({ quantization: "IQ4_XS" })
    expect(bad("org/repo:Q9_X")).toContain("unknown quantization")
    expect(bad("org/repo", "nonsense")).toContain("unknown quantization")
    expect(bad("org/repo@ollama")).toContain("'@'")
  })

  it("a pasted hub address is the reference it names (repo, tree/main, resolve/main and blob/main files)", () => {
    const repo = { kind: "repo", repo: "org/repo", quantization: undefined, alias: undefined }
    const file = { kind: "file", repo: "org/repo", path: "sub/m-Q8_0.gguf", alias: undefined }
    for (const text of ["https://huggingface.co/org/repo", "https://huggingface.co/org/repo/", "http://www.huggingface.co/org/repo/tree/main", "https://hf.co/org/repo?library=gguf"]) {
      expect(ok(text)).toEqual(repo)
    }
    for (
      const text of [
        "https://huggingface.co/org/repo/resolve/main/sub/m-Q8_0.gguf",
        "https://huggingface.co/org/repo/resolve/main/sub/m-Q8_0.gguf?download=true",
        "https://huggingface.co/org/repo/blob/main/sub/m-Q8_0.gguf",
        "huggingface.co/org/repo/blob/main/sub%2Fm-Q8_0.gguf"
      ]
    ) expect(ok(text)).toEqual(file)
    expect(bad("https://huggingface.co/org/repo/blob/v1.0/m-Q8_0.gguf")).toContain("main revision only")
    expect(bad("https://huggingface.co/datasets/org/repo")).toContain("model repos")
    // The CLI parses a spec before the hub does: the address must survive that too.
    expect(Either.getOrThrow(ModelSpec.parse("https://huggingface.co/org/repo/resolve/main/sub/m-Q8_0.gguf"))).toEqual({
      model: "org/repo/sub/m-Q8_0.gguf"
    })
  })

  it("org/repo/path/file.gguf names one file", () => {
    expect(ok("org/repo/sub/model-Q5_K_M.gguf")).toEqual({
      kind: "file",
      repo: "org/repo",
      path: "sub/model-Q5_K_M.gguf",
      alias: undefined
    })
    expect(bad("org/repo/README.md")).toContain(".gguf")
    expect(bad("org/repo/x.gguf", "Q8_0")).toContain("does not apply")
  })

  it("rejects anything that could escape the store or is invalid on Windows", () => {
    for (
      const text of [
        "org/repo/../../etc/passwd.gguf",
        "org/repo/./x.gguf",
        "../repo:Q4_K_M",
        "org/../x:Q4_K_M",
        "org/repo/a:b.gguf",
        "org/repo/a\\b.gguf",
        "org/repo/CON.gguf",
        "org/repo/x.gguf./y.gguf",
        "org/repo//x.gguf",
        "org/re po:Q4_K_M",
        "-org/repo:Q4_K_M"
      ]
    ) expect(() => bad(text), text).not.toThrow()
  })
})

describe("validatePath", () => {
  it("accepts hub-style file names and rejects absolute paths, traversal and odd characters", () => {
    for (const p of ["model-Q4_K_M.gguf", "Q4_K_M/m-00001-of-00002.gguf", "x+y (v2).gguf"]) {
      expect(HubRef.validatePath(p), p).toBeUndefined()
    }
    for (const p of ["/etc/x.gguf", "C:/x.gguf", "a/../b.gguf", "..", "a/./b", "a\u0000b", "aux", "a/b.", "x:y", "a\\b"]) {
      expect(HubRef.validatePath(p), p).toBeDefined()
    }
  })
})

describe("quantizations", () => {
  it("reads the quantization from hub file names of every common style", () => {
    const cases: Array<[string, string | undefined]> = [
      ["Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"],
      ["qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M"],
      ["tinyllama-1.1b-chat-v1.0.Q5_K_S.gguf", "Q5_K_S"],
      ["gemma-2-9b-it-IQ4_XS.gguf", "IQ4_XS"],
      ["model-IQ2_XXS.gguf", "IQ2_XXS"],
      ["Phi-3.5-mini-instruct-Q8_0.gguf", "Q8_0"],
      ["model-f16.gguf", "F16"],
      ["model-BF16.gguf", "BF16"],
      ["model-Q3_K_XL.gguf", "Q3_K_XL"],
      ["model-Q6_K.gguf", "Q6_K"],
      ["Q4_K_M/big-00001-of-00003.gguf", "Q4_K_M"],
      ["Qwen2.5-0.5B.gguf", undefined]
    ]
    for (const [name, q] of cases) expect(HubRef.quantizationOf(name), name).toBe(q)
    expect(HubRef.isQuantization("q4_k_m")).toBe(true)
    expect(HubRef.isQuantization("Q4_K_MX")).toBe(false)
    expect(HubRef.normalizeQuantization("fp16")).toBe("F16")
  })
})

describe("grouping and selection", () => {
  const f = (path: string, size = 10) => ({ path, size, sha256: "a".repeat(64) })
  const files = [
    f("README.md"),
    f("m-Q4_K_M.gguf"),
    f("m-Q8_0.gguf"),
    f("mmproj-m-f16.gguf"),
    f("Q6_K/m-Q6_K-00002-of-00002.gguf"),
    f("Q6_K/m-Q6_K-00001-of-00002.gguf"),
    f("F16/m-F16-00001-of-00003.gguf"), // incomplete: parts 2 and 3 missing
    f("F16/m-F16-00003-of-00003.gguf")
  ]

  it("split parts form one model in order; incomplete splits and projectors are left out", () => {
    const groups = HubRef.groupGguf(files)
    expect(groups.map((g) => [g.quantization, g.files.map((x) => x.path)])).toEqual([
      ["Q4_K_M", ["m-Q4_K_M.gguf"]],
      ["Q8_0", ["m-Q8_0.gguf"]],
      ["Q6_K", ["Q6_K/m-Q6_K-00001-of-00002.gguf", "Q6_K/m-Q6_K-00002-of-00002.gguf"]]
    ])
    expect(HubRef.quantizationsOf(groups)).toEqual(["Q4_K_M", "Q6_K", "Q8_0"])
  })

  it("selects by quantization (default Q4_K_M) or by file; a missing one lists what exists", () => {
    const sel = (text: string, q?: string) => HubRef.select(ok(text, q), files)
    expect(Either.getOrThrow(sel("org/m")).name).toBe("org/m:Q4_K_M")
    expect(Either.getOrThrow(sel("org/m:Q6_K")).group.files).toHaveLength(2)
    expect(Either.getOrThrow(sel("org/m/Q6_K/m-Q6_K-00002-of-00002.gguf")).name).toBe(
      "org/m/Q6_K/m-Q6_K-00001-of-00002.gguf"
    )
    const missing = sel("org/m:IQ4_XS")
    expect(Either.isLeft(missing) && missing.left.message).toContain("it has Q4_K_M, Q6_K, Q8_0")
    expect(Either.isLeft(missing) && missing.left.hint).toContain("org/m:Q8_0")
    expect(Either.isLeft(sel("org/m/F16/m-F16-00001-of-00003.gguf"))).toBe(true)
    // One model only and no quantization asked for: take it whatever it is called.
    expect(Either.getOrThrow(HubRef.select(ok("org/x"), [f("x.gguf")])).group.files[0]!.path).toBe("x.gguf")
  })

  it("slugs are distinct, single file names without ':'", () => {
    const names = ["org/repo:Q4_K_M", "org/repo/Q4_K_M", "org--repo:Q4_K_M", "org/repo/x.gguf"]
    const slugs = names.map(HubRef.slugOf)
    expect(new Set(slugs).size).toBe(names.length)
    for (const s of slugs) expect(s).toMatch(/^[A-Za-z0-9._-]+$/)
  })
})

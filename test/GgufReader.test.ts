/**
 * The strict GGUF reader: valid files parse (whole or through NeedMore), and a corpus of malformed
 * files, many of which would abort llama.cpp or fool node-llama-cpp's reader, is rejected with a
 * reason, never a throw. Nothing here hands a file to llama.cpp itself.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { FastCheck } from "effect"
import { readGgufFileInfo } from "node-llama-cpp"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  fileTypeName,
  type GgufArray,
  type GgufFile,
  type GgufParseResult,
  ggmlTypeName,
  metadataNumber,
  metadataString,
  parameterCount,
  parseGguf,
  parseGgufBuffer
} from "../src/domain/GgufReader.js"
import {
  encodeGguf,
  encodeGgufWithLayout,
  type GgufSpec,
  type GgufTensor,
  type GgufTypedValue,
  prng,
  tinyLlamaGguf,
  tinyLlamaModel,
  type TinyLlamaOptions,
  v
} from "./fixtures/ggufWriter.js"

const ok = (result: GgufParseResult): GgufFile => {
  if (result._tag !== "Ok") throw new Error(`expected Ok, got ${JSON.stringify(result)}`)
  return result.file
}

const invalid = (result: GgufParseResult) => {
  if (result._tag !== "Invalid") throw new Error(`expected Invalid, got ${result._tag}`)
  return result.problem
}

/** The caller's loop: re-read a longer prefix while the reader asks for more. */
const parseInSteps = (whole: Uint8Array, first = 64) => {
  let length = Math.min(first, whole.length)
  const requests: Array<number> = []
  for (;;) {
    const result = parseGguf(whole.subarray(0, length), whole.length)
    if (result._tag !== "NeedMore") return { result, requests }
    expect(result.bytes).toBeGreaterThan(length)
    expect(result.bytes).toBeLessThanOrEqual(whole.length)
    requests.push(result.bytes)
    length = result.bytes
  }
}

const llamaFile = (options: TinyLlamaOptions = {}) => tinyLlamaGguf(options)

/** A minimal file: one F32 tensor and the metadata a non-llama architecture needs. */
const small = (overrides: Partial<GgufSpec> = {}, extra: GgufSpec["metadata"] = []) =>
  encodeGguf({
    metadata: [["general.architecture", v.str("custom")], ...extra],
    tensors: [{ name: "w", dims: [8, 2], type: 0, data: new Uint8Array(64) }],
    ...overrides
  })

const tensor = (name: string, dims: ReadonlyArray<number>, type: number, size: number): GgufTensor => ({
  name,
  dims,
  type,
  data: new Uint8Array(size)
})

describe("parseGguf on valid files", () => {
  for (const tensorType of ["F32", "F16", "Q8_0"] as const) {
    it(`reads a tiny ${tensorType} llama`, () => {
      const bytes = llamaFile({ tensorType })
      const file = ok(parseGgufBuffer(bytes))
      const model = tinyLlamaModel({ tensorType })
      expect(file.version).toBe(3)
      expect(file.alignment).toBe(32)
      expect(file.architecture).toBe("llama")
      expect(file.vocabularySize).toBe(300)
      expect(file.tensorCount).toBe(model.tensors.length)
      expect(file.tensors.map((t) => t.name)).toEqual(model.tensors.map((t) => t.name))
      expect(file.tensors.map((t) => t.byteSize)).toEqual(model.tensors.map((t) => t.byteSize))
      expect(file.dataOffset % 32).toBe(0)
      expect(file.headerBytes).toBeLessThanOrEqual(file.dataOffset)
      expect(file.fileSize).toBe(bytes.length)
      expect(metadataString(file, "general.name")).toBe("tiny-llama")
      expect(metadataNumber(file, "llama.embedding_length")).toBe(64)
      expect(fileTypeName(metadataNumber(file, "general.file_type")!)).toBe(tensorType)
      const embd = file.tensors[0]!
      expect(embd).toMatchObject({ name: "token_embd.weight", dims: [64, 300], typeName: tensorType, offset: 0 })
      expect(parameterCount(file)).toBe(model.tensors.reduce((n, t) => n + t.dims.reduce<number>((a, b) => a * Number(b), 1), 0))
      const tokens = file.metadata.get("tokenizer.ggml.tokens") as GgufArray
      expect(tokens.elementType).toBe("string")
      expect(tokens.length).toBe(300)
      // 300 ≤ the default materialization limit
      expect(tokens.values?.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"])
    })
  }

  it("summarizes long arrays instead of decoding them, but still counts the vocabulary", () => {
    const file = ok(parseGgufBuffer(llamaFile({ vocabSize: 2000 })))
    expect(file.vocabularySize).toBe(2000)
    expect(file.metadata.get("tokenizer.ggml.tokens")).toEqual({
      _tag: "GgufArray",
      elementType: "string",
      length: 2000,
      values: undefined
    })
    const full = ok(parseGgufBuffer(llamaFile({ vocabSize: 2000 }), { materializeArraysUpTo: 5000 }))
    expect((full.metadata.get("tokenizer.ggml.tokens") as GgufArray).values).toHaveLength(2000)
  })

  it("agrees with node-llama-cpp's reader on tensor layout", async () => {
    const dir = await mkdtemp(join(tmpdir(), "llmspell-gguf-reader-"))
    try {
      const path = join(dir, "m.gguf")
      const bytes = llamaFile({ tensorType: "Q8_0", blockCount: 3 })
      await writeFile(path, bytes)
      const theirs = await readGgufFileInfo(path, { readTensorInfo: true })
      const ours = ok(parseGgufBuffer(bytes))
      expect(ours.tensors.map((t) => [t.name, t.dims, t.type, t.offset])).toEqual(
        theirs.fullTensorInfo!.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType, Number(t.offset)])
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("decodes every value type, nested arrays and 64-bit extremes", () => {
    const file = ok(parseGgufBuffer(small({}, [
      ["u8", v.u8(255)],
      ["i8", v.i8(-128)],
      ["u16", v.u16(65535)],
      ["i16", v.i16(-32768)],
      ["u32", v.u32(4294967295)],
      ["i32", v.i32(-2147483648)],
      ["f32", v.f32(0.5)],
      ["f64", v.f64(-1.25)],
      ["u64", v.u64(2n ** 64n - 1n)],
      ["u64small", v.u64(12345)],
      ["i64", v.i64(-(2n ** 63n))],
      ["i64small", v.i64(-5)],
      ["bool", v.bool(true)],
      ["str", v.str("héllo")],
      ["nested", v.nested([v.arr("int32", [1, 2]), v.arr("string", ["a"])])]
    ])))
    const m = file.metadata
    expect([m.get("u8"), m.get("i8"), m.get("u16"), m.get("i16"), m.get("u32"), m.get("i32")]).toEqual([
      255, -128, 65535, -32768, 4294967295, -2147483648
    ])
    expect([m.get("f32"), m.get("f64"), m.get("bool"), m.get("str")]).toEqual([0.5, -1.25, true, "héllo"])
    expect(m.get("u64")).toBe(2n ** 64n - 1n)
    expect(m.get("u64small")).toBe(12345)
    expect(m.get("i64")).toBe(-(2n ** 63n))
    expect(m.get("i64small")).toBe(-5)
    const nested = m.get("nested") as GgufArray
    expect(nested.elementType).toBe("array")
    expect((nested.values![0] as GgufArray).values).toEqual([1, 2])
    expect((nested.values![1] as GgufArray).values).toEqual(["a"])
    expect(file.architecture).toBe("custom")
  })

  it("honours general.alignment and version 2", () => {
    const file = ok(parseGgufBuffer(small({ alignment: 64, version: 2 })))
    expect(file.alignment).toBe(64)
    expect(file.version).toBe(2)
    expect(file.dataOffset % 64).toBe(0)
  })

  it("accepts a vocabulary-only file with no tensors", () => {
    const file = ok(parseGgufBuffer(small({ tensors: [] })))
    expect(file.tensors).toEqual([])
    expect(parameterCount(file)).toBe(0)
  })

  it("arrives at the same answer through NeedMore, starting from 64 bytes", () => {
    for (const bytes of [llamaFile(), llamaFile({ vocabSize: 2000, tensorType: "Q8_0" })]) {
      const { result, requests } = parseInSteps(bytes)
      expect(requests.length).toBeGreaterThan(2)
      expect(result).toEqual(parseGgufBuffer(bytes))
      // the header is all the reader needs: no request reaches into the tensor data
      expect(requests.at(-1)!).toBeLessThanOrEqual(Math.max(ok(result).dataOffset, 2 * requests.at(-2)!))
    }
  })

  it("never asks for more than the file holds, even for a prefix of 0 bytes", () => {
    const bytes = llamaFile()
    const { result } = parseInSteps(bytes, 0)
    expect(result._tag).toBe("Ok")
  })

  it("parses a header with a 150k-token vocabulary well under 100 ms", () => {
    const n = 150_000
    const tokens = Array.from({ length: n }, (_, i) => `tok${i}`)
    const bytes = encodeGguf({
      metadata: [
        ["general.architecture", v.str("custom")],
        ["tokenizer.ggml.model", v.str("gpt2")],
        ["tokenizer.ggml.tokens", v.arr("string", tokens)],
        ["tokenizer.ggml.scores", v.arr("float32", tokens.map((_, i) => -i))],
        ["tokenizer.ggml.token_type", v.arr("int32", tokens.map(() => 1))],
        ["tokenizer.ggml.merges", v.arr("string", tokens.slice(0, 100_000).map((t) => `${t} x`))]
      ],
      tensors: []
    })
    parseGgufBuffer(bytes) // warm up the JIT
    const runs = Array.from({ length: 5 }, () => {
      const t0 = performance.now()
      const file = ok(parseGgufBuffer(bytes))
      expect(file.vocabularySize).toBe(n)
      return performance.now() - t0
    })
    const best = Math.min(...runs)
    console.info(`[GgufReader] ${bytes.length} byte header with ${n} tokens: best ${best.toFixed(1)} ms`)
    expect(best).toBeLessThan(100)
  })
})

describe("parseGguf on malformed files", () => {
  const withMetadata = (metadata: ReadonlyArray<readonly [string | Uint8Array, GgufTypedValue]>) =>
    encodeGguf({ metadata, tensors: [] })

  const cases: ReadonlyArray<readonly [string, () => Uint8Array, RegExp, { key?: string; offset?: number }?]> = [
    ["empty file", () => new Uint8Array(0), /empty/, { offset: 0 }],
    ["3 bytes", () => new Uint8Array([0x47, 0x47, 0x55]), /too short/],
    ["magic only", () => new TextEncoder().encode("GGUF"), /truncated/, { offset: 4 }],
    ["bad magic", () => small({ magic: "GGML" }), /expected magic "GGUF", found "GGML"/, { offset: 0 }],
    ["HTML page", () => new TextEncoder().encode("<!DOCTYPE html><html>…</html>"), /HTML page/],
    ["Git LFS pointer", () => new TextEncoder().encode("version https://git-lfs.github.com/spec/v1\n"), /Git LFS/],
    ["binary magic", () => small({ magic: new Uint8Array([0, 1, 2, 3]) }), /found 00 01 02 03/],
    ["version 1", () => small({ version: 1 }), /version 1 is no longer supported/, { offset: 4 }],
    ["version 99", () => small({ version: 99 }), /unsupported GGUF version 99/, { offset: 4 }],
    ["byte-swapped version", () => small({ version: 0x03000000 }), /byte-swapped/],
    ["absurd tensor count", () => small({ tensorCountOverride: 2n ** 40n }), /claims 1099511627776 tensors/, { offset: 8 }],
    ["max u64 tensor count", () => small({ tensorCountOverride: 2n ** 64n - 1n }), /tensors, more than/],
    ["absurd kv count", () => small({ kvCountOverride: 2n ** 62n }), /metadata entries, more than/, { offset: 16 }],
    ["kv count one too many", () => small({ kvCountOverride: 2n }), /truncated|claims|left in the file|not a GGUF value type|UTF-8/],
    ["absurd string length", () =>
      small({}, [["general.name", { type: "string", value: "x", lengthOverride: 2n ** 50n }]]), /claims 1125899906842624 bytes/, { key: "general.name" }],
    ["absurd key length", () =>
      encodeGguf({ metadata: [[new Uint8Array(0), v.u8(0)]], tensors: [], kvCountOverride: 1n }), /empty key/],
    ["absurd array length", () =>
      small({}, [["tokenizer.ggml.scores", { type: "array", elementType: "float32", elements: [], countOverride: 2n ** 40n }]]),
      /array of 1099511627776 float32 elements needs at least/, { key: "tokenizer.ggml.scores" }],
    ["absurd string array length", () =>
      small({}, [["tokenizer.ggml.merges", { type: "array", elementType: "string", elements: [], countOverride: 2n ** 33n }]]),
      /array of 8589934592 string elements/],
    ["unknown value type", () => small({}, [["x", { type: "raw", typeId: 99, payload: new Uint8Array(8) }]]), /99, which is not a GGUF value type/, { key: "x" }],
    ["unknown array element type", () =>
      small({}, [["x", { type: "array", elementType: "uint8", elements: [], elementTypeIdOverride: 13 }]]), /13, which is not a GGUF value type/],
    ["arrays nested too deep", () => {
      let value: GgufTypedValue = v.arr("uint8", [1])
      for (let i = 0; i < 9; i++) value = v.nested([value])
      return small({}, [["deep", value]])
    }, /nested more than 8 deep/, { key: "deep" }],
    ["bool byte 2", () => small({}, [["b", { type: "raw", typeId: 7, payload: new Uint8Array([2]) }]]), /bool with byte value 2/],
    ["invalid UTF-8 key", () => small({}, [[new Uint8Array([0x61, 0xff, 0xfe]), v.u8(1)]]), /not valid UTF-8/],
    ["duplicate key", () => small({}, [["general.architecture", v.str("custom")]]), /duplicate metadata key "general.architecture"/],
    ["alignment not a power of two", () => small({}, [["general.alignment", v.u32(48)]]), /48 is not a power of two/, { key: "general.alignment" }],
    ["alignment zero", () => small({}, [["general.alignment", v.u32(0)]]), /not a power of two/],
    ["alignment of the wrong type", () => small({}, [["general.alignment", v.u64(32)]]), /must be a uint32, found uint64/],
    ["architecture missing", () => withMetadata([["general.name", v.str("x")]]), /general.architecture is missing/, { key: "general.architecture" }],
    ["architecture not a string", () => withMetadata([["general.architecture", v.u32(1)]]), /must be a string, found uint32/],
    ["tensor with 0 dimensions", () => small({ tensors: [{ ...tensor("w", [8], 0, 32), nDimsOverride: 0 }] }), /0 dimensions/],
    ["tensor with 5 dimensions", () =>
      small({ tensors: [tensor("w", [1, 1, 1, 1, 8], 0, 32)] }), /5 dimensions \(must be 1-4\)/],
    ["tensor with an empty dimension", () => small({ tensors: [tensor("w", [8, 0], 0, 0)] }), /empty dimension 1/],
    ["tensor with an absurd dimension", () => small({ tensors: [{ name: "w", dims: [2n ** 60n], type: 0, data: new Uint8Array(4) }] }), /absurdly large/],
    ["tensor larger than the file", () => small({ tensors: [{ name: "w", dims: [2n ** 40n, 2n ** 12n], type: 0, data: new Uint8Array(4) }] }), /more than the whole file/],
    ["unknown ggml type", () => small({ tensors: [tensor("w", [8], 99, 32)] }), /unknown ggml type 99/],
    ["removed ggml type", () => small({ tensors: [tensor("w", [32], 4, 32)] }), /Q4_2 \(4\), which llama.cpp no longer supports/],
    ["row not a multiple of the block size", () => small({ tensors: [tensor("w", [48, 2], 8, 102)] }), /rows of 48 elements, not a multiple of the block size 32/],
    ["duplicate tensor name", () => small({ tensors: [tensor("w", [8], 0, 32), tensor("w", [8], 0, 32)] }), /duplicate tensor name "w"/],
    ["tensor name too long", () => small({ tensors: [tensor("x".repeat(64), [8], 0, 32)] }), /64 bytes; llama.cpp allows at most 63/],
    ["misaligned tensor offset", () => small({ tensors: [{ ...tensor("w", [8], 0, 32), offsetOverride: 4n }] }), /offset 4 is not a multiple of the alignment 32/],
    ["tensor past the end", () => small({ tensors: [{ ...tensor("w", [8], 0, 32), offsetOverride: 2n ** 20n }] }), /extends past the end of the file/],
    ["tensor offset near 2^64", () => small({ tensors: [{ ...tensor("w", [8], 0, 32), offsetOverride: 2n ** 64n - 32n }] }), /extends past the end/],
    ["scores shorter than the vocabulary", () =>
      llamaFile({ overrideMetadata: { "tokenizer.ggml.scores": v.arr("float32", [0, 0]) } }), /has 2 entries but the vocabulary has 300 tokens/, { key: "tokenizer.ggml.scores" }],
    ["scores of the wrong type", () =>
      llamaFile({ overrideMetadata: { "tokenizer.ggml.scores": v.arr("string", ["a"]) } }), /must be an array of float32/],
    ["token types of the wrong type", () =>
      llamaFile({ overrideMetadata: { "tokenizer.ggml.token_type": v.arr("uint8", Array(300).fill(1)) } }), /token_type must be an array of int32/],
    ["tokens not strings", () =>
      llamaFile({ overrideMetadata: { "tokenizer.ggml.tokens": v.arr("uint32", [1, 2]) } }), /tokens must be an array of string/],
    ["head count 0", () =>
      llamaFile({ overrideMetadata: { "llama.attention.head_count": v.u32(0) } }), /head_count must be a positive integer, found number 0/],
    ["kv head count 0", () =>
      llamaFile({ overrideMetadata: { "llama.attention.head_count_kv": v.u32(0) } }), /head_count_kv must be a positive integer/],
    ["context length as a string", () =>
      llamaFile({ overrideMetadata: { "llama.context_length": v.str("4096") } }), /context_length must be a positive integer, found the string "4096"/]
  ]

  for (const [name, build, reason, where] of cases) {
    it(`rejects: ${name}`, () => {
      const bytes = build()
      const problem = invalid(parseGgufBuffer(bytes))
      expect(problem.reason).toMatch(reason)
      if (where?.key !== undefined) expect(problem.key).toBe(where.key)
      if (where?.offset !== undefined) expect(problem.offset).toBe(where.offset)
      // the same verdict through the caller's NeedMore loop
      expect(parseInSteps(bytes, 16).result).toEqual(parseGgufBuffer(bytes))
    })
  }

  for (const key of [
    "llama.context_length",
    "llama.embedding_length",
    "llama.block_count",
    "llama.feed_forward_length",
    "llama.attention.head_count"
  ]) {
    it(`rejects a llama without ${key}`, () => {
      const problem = invalid(parseGgufBuffer(llamaFile({ omitKeys: [key] })))
      expect(problem).toEqual({ reason: expect.stringMatching(/is missing \(llama.cpp aborts/), key })
    })
  }

  it("requires the same keys for other known architectures, and none for unknown ones", () => {
    const arch = (name: string, keys: ReadonlyArray<string>) =>
      parseGgufBuffer(withMetadata([["general.architecture", v.str(name)], ...keys.map((k) => [`${name}.${k}`, v.u32(8)] as const)]))
    for (const name of ["qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3", "starcoder2", "falcon", "mistral3"]) {
      expect(invalid(arch(name, ["context_length", "embedding_length", "block_count", "feed_forward_length"])).key).toBe(
        `${name}.attention.head_count`
      )
      expect(arch(name, ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count"])._tag).toBe("Ok")
    }
    expect(arch("some-new-arch", [])._tag).toBe("Ok")
  })

  it("accepts per-layer arrays for the feed-forward length", () => {
    const bytes = llamaFile({ overrideMetadata: { "llama.feed_forward_length": v.arr("int32", [192, 192]) } })
    expect(parseGgufBuffer(bytes)._tag).toBe("Ok")
  })

  // Each of these passed the older checks and made llama.cpp abort the process (SIGABRT): found by
  // writing them (NOTES, and the crash corpus of GgufWorker.test.ts)
  const byteless = Object.fromEntries(Array.from({ length: 256 }, (_, b) => [3 + b, `nobyte${b}`]))
  const invariants: ReadonlyArray<readonly [string, TinyLlamaOptions, string, RegExp]> = [
    ["block_count over LLAMA_MAX_LAYERS", { overrideMetadata: { "llama.block_count": v.u32(513) } }, "llama.block_count", /at most 512 layers/],
    ["expert_used_count without expert_count", { overrideMetadata: { "llama.expert_used_count": v.u32(2) } }, "llama.expert_used_count", /no experts/],
    [
      "expert_used_count above expert_count",
      { overrideMetadata: { "llama.expert_count": v.u32(2), "llama.expert_used_count": v.u32(4) } },
      "llama.expert_used_count",
      /\(4\) is more than llama.expert_count \(2\)/
    ],
    ["expert_count without expert_used_count", { overrideMetadata: { "llama.expert_count": v.u32(8) } }, "llama.expert_used_count", /missing or 0/],
    ["a per-layer head_count with a 0", { overrideMetadata: { "llama.attention.head_count": v.arr("uint32", [4, 0]) } }, "llama.attention.head_count", /a 0 for a layer/],
    ["a per-layer head_count_kv with a 0", { overrideMetadata: { "llama.attention.head_count_kv": v.arr("uint32", [0, 4]) } }, "llama.attention.head_count_kv", /a 0 for a layer/],
    ["a per-layer feed_forward_length of the wrong length", { overrideMetadata: { "llama.feed_forward_length": v.arr("int32", [192, 192, 192]) } }, "llama.feed_forward_length", /3 entries but the model has 2 layers/],
    ["head_count not a multiple of head_count_kv", { overrideMetadata: { "llama.attention.head_count_kv": v.u32(3) } }, "llama.attention.head_count_kv", /\(4\) is not a multiple of .* \(3\)/],
    ["a NaN rms epsilon", { overrideMetadata: { "llama.attention.layer_norm_rms_epsilon": v.f32(NaN) } }, "llama.attention.layer_norm_rms_epsilon", /NaN, not a finite number/],
    ["an infinite rope base", { overrideMetadata: { "llama.rope.freq_base": v.f32(Infinity) } }, "llama.rope.freq_base", /Infinity, not a finite number/],
    ["a negative epsilon", { overrideMetadata: { "llama.attention.layer_norm_rms_epsilon": v.f32(-1) } }, "llama.attention.layer_norm_rms_epsilon", /negative/],
    ["duplicate tokens", { tokenOverrides: { 270: "▁the", 271: "▁the" } }, "tokenizer.ggml.tokens", /"▁the" twice \(ids 270 and 271\)/],
    ["tokenizer model none", { overrideMetadata: { "tokenizer.ggml.model": v.str("none") } }, "tokenizer.ggml.model", /no vocabulary/],
    ["an unknown tokenizer model", { overrideMetadata: { "tokenizer.ggml.model": v.str("sentencepiece2") } }, "tokenizer.ggml.model", /not a tokenizer llama.cpp knows/],
    ["a bert tokenizer on a llama", { overrideMetadata: { "tokenizer.ggml.model": v.str("bert") } }, "tokenizer.ggml.model", /does not fit architecture llama/],
    ["a SentencePiece vocabulary without byte tokens", { tokenOverrides: byteless }, "tokenizer.ggml.tokens", /lacks the byte token <0x00>/]
  ]
  it.each(invariants)("rejects %s (llama.cpp asserts on it)", (_name, options, key, reason) => {
    const problem = invalid(parseGgufBuffer(llamaFile(options)))
    expect(problem.key).toBe(key)
    expect(problem.reason).toMatch(reason)
  })

  it("checks duplicates and byte tokens in a vocabulary too long to materialize", () => {
    const options = { vocabSize: 2000 } as const
    expect(parseGgufBuffer(llamaFile(options))._tag).toBe("Ok")
    expect(invalid(parseGgufBuffer(llamaFile({ ...options, tokenOverrides: { 1990: "▁the" } }))).reason).toMatch(/"▁the" twice/)
    expect(invalid(parseGgufBuffer(llamaFile({ ...options, tokenOverrides: { 13: "x13" } }))).reason).toMatch(/lacks the byte token <0x0A>/)
  })

  it("accepts consistent experts and grouped-query heads", () => {
    const bytes = llamaFile({
      headCount: 4,
      headCountKv: 2,
      overrideMetadata: { "llama.expert_count": v.u32(8), "llama.expert_used_count": v.u32(2) }
    })
    expect(parseGgufBuffer(bytes)._tag).toBe("Ok")
  })

  it("rejects every truncation: through the header every 3 bytes, and at points in the data", () => {
    const { bytes, layout } = encodeGgufWithLayout({
      metadata: tinyLlamaModel().metadata,
      tensors: tinyLlamaModel().tensors.map((t) => ({ ...t, data: t.generate() }))
    })
    expect(ok(parseGgufBuffer(bytes)).dataOffset).toBe(layout.dataOffset)
    const cuts: Array<number> = []
    for (let n = 0; n < layout.dataOffset + 8; n += 3) cuts.push(n)
    for (const t of layout.tensors) cuts.push(layout.dataOffset + t.offset + 1, layout.dataOffset + t.offset + t.size - 1)
    cuts.push(bytes.length - 1)
    const reasons = new Set<string>()
    for (const n of cuts) {
      const cut = bytes.subarray(0, n)
      const result = parseGgufBuffer(cut)
      if (result._tag !== "Invalid") throw new Error(`truncation at ${n} gave ${result._tag}`)
      reasons.add(result.problem.reason.replace(/\d+/g, "#").replace(/"[^"]*"/g, "…"))
      // a caller that read the truncated file through small prefixes gets the same answer
      if (n % 30 === 0) expect(parseInSteps(cut, 32).result).toEqual(result)
    }
    expect([...reasons].some((r) => /truncated/.test(r))).toBe(true)
    expect(cuts.length).toBeGreaterThan(1000)
  })

  it("rejects random bytes, with or without a valid-looking start", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = prng(seed)
      const bytes = Uint8Array.from({ length: 16 + Math.floor(rand() * 4000) }, () => Math.floor(rand() * 256))
      expect(parseGgufBuffer(bytes)._tag).toBe("Invalid")
      bytes.set([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0])
      expect(parseGgufBuffer(bytes)._tag).toBe("Invalid")
    }
  })

  it("rejects a prefix longer than the stated file size consistently", () => {
    const bytes = llamaFile()
    const result = parseGguf(bytes, 100)
    expect(invalid(result).reason).toMatch(/truncated|more than/)
    expect(invalid(parseGguf(bytes, -1)).reason).toMatch(/not a byte count/)
  })
})

describe("parseGguf never throws", () => {
  const valid = llamaFile({ tensorType: "Q8_0" })
  const assertSane = (result: GgufParseResult, prefixLength: number, fileSize: number) => {
    expect(["Ok", "NeedMore", "Invalid"]).toContain(result._tag)
    if (result._tag === "NeedMore") {
      expect(prefixLength).toBeLessThan(fileSize)
      expect(result.bytes).toBeGreaterThan(prefixLength)
      expect(result.bytes).toBeLessThanOrEqual(fileSize)
    }
  }

  it("on arbitrary bytes and file sizes", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.uint8Array({ maxLength: 2048 }),
        FastCheck.nat({ max: 1 << 20 }),
        (bytes, extra) => {
          assertSane(parseGgufBuffer(bytes), bytes.length, bytes.length)
          assertSane(parseGguf(bytes, bytes.length + extra), bytes.length, bytes.length + extra)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("on arbitrary bytes after a valid magic and version", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.uint8Array({ maxLength: 512 }), FastCheck.constantFrom(2, 3), (tail, version) => {
        const bytes = new Uint8Array(8 + tail.length)
        bytes.set([0x47, 0x47, 0x55, 0x46, version, 0, 0, 0])
        bytes.set(tail, 8)
        assertSane(parseGgufBuffer(bytes), bytes.length, bytes.length)
      }),
      { numRuns: 500 }
    )
  })

  it("on truncations and byte flips of a valid file", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.nat({ max: valid.length }),
        FastCheck.array(FastCheck.tuple(FastCheck.nat({ max: valid.length - 1 }), FastCheck.integer({ min: 1, max: 255 })), { maxLength: 6 }),
        FastCheck.nat({ max: valid.length }),
        (cut, flips, prefix) => {
          const bytes = valid.slice(0, cut)
          for (const [at, mask] of flips) if (at < bytes.length) bytes[at]! ^= mask
          assertSane(parseGgufBuffer(bytes), bytes.length, bytes.length)
          const p = Math.min(prefix, bytes.length)
          assertSane(parseGguf(bytes.subarray(0, p), bytes.length), p, bytes.length)
        }
      ),
      { numRuns: 400 }
    )
  })

  it("on flips aimed at the header of a valid file", () => {
    const headerEnd = ok(parseGgufBuffer(valid)).headerBytes
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(FastCheck.tuple(FastCheck.nat({ max: headerEnd - 1 }), FastCheck.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        (flips) => {
          const bytes = valid.slice()
          for (const [at, mask] of flips) bytes[at]! ^= mask
          assertSane(parseGgufBuffer(bytes), bytes.length, bytes.length)
        }
      ),
      { numRuns: 1000 }
    )
  })
})

describe("names for model info", () => {
  it("maps llama.cpp file types", () => {
    expect([0, 1, 2, 7, 15, 16, 30, 32, 38].map(fileTypeName)).toEqual([
      "F32", "F16", "Q4_0", "Q8_0", "Q4_K_M", "Q5_K_S", "IQ4_XS", "BF16", "MXFP4_MOE"
    ])
    expect(fileTypeName(1024 + 15)).toBe("Q4_K_M (guessed)")
    expect(fileTypeName(5)).toBe("unknown(5)")
    expect(fileTypeName(999)).toBe("unknown(999)")
  })

  it("maps ggml tensor types", () => {
    expect([0, 1, 8, 12, 14, 23, 30, 39].map(ggmlTypeName)).toEqual([
      "F32", "F16", "Q8_0", "Q4_K", "Q6_K", "IQ4_XS", "BF16", "MXFP4"
    ])
    expect(ggmlTypeName(1000)).toBe("unknown(1000)")
  })
})

// Keeps the fixtures honest about node-llama-cpp's reader being unsafe on truncated headers: the
// reason this module exists. Pure JS on both sides; llama.cpp itself never sees these bytes.
describe("compared with node-llama-cpp's readGgufFileInfo", () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "llmspell-gguf-compare-"))
  })
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it("we reject a header truncated inside the tokens; node-llama-cpp may not", async () => {
    const bytes = llamaFile()
    const cut = bytes.subarray(0, 2000)
    const path = join(dir, "cut.gguf")
    await writeFile(path, cut)
    expect(invalid(parseGgufBuffer(cut)).reason).toMatch(/truncated/)
    const theirs = await readGgufFileInfo(path).then(() => "accepted", () => "rejected")
    console.info(`[GgufReader] node-llama-cpp readGgufFileInfo on a header cut at 2000 bytes: ${theirs}`)
  })
})

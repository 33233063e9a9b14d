/**
 * Strict GGUF header reader. Pure code, no I/O: the caller hands in the first bytes of a file and the
 * file's real size, and loops while the answer is `NeedMore`.
 *
 * It exists because llama.cpp aborts the whole process (SIGABRT, no JS error) on some malformed
 * files, and node-llama-cpp's own `readGgufFileInfo` reads zeros past the end of a truncated file and
 * "succeeds". So every length, count, type and offset is checked against the file size here, and the
 * metadata llama.cpp asserts on is required before a file is ever handed to it.
 */

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** Name of a GGUF metadata value type. */
export type GgufValueType =
  | "uint8"
  | "int8"
  | "uint16"
  | "int16"
  | "uint32"
  | "int32"
  | "float32"
  | "bool"
  | "string"
  | "array"
  | "uint64"
  | "int64"
  | "float64"

/** A metadata array; `values` is left out for long arrays (token lists, merges) to keep parsing fast. */
export interface GgufArray {
  readonly _tag: "GgufArray"
  readonly elementType: GgufValueType
  readonly length: number
  readonly values: ReadonlyArray<GgufValue> | undefined
}

/** A decoded metadata value; 64-bit integers are numbers when they fit, bigints otherwise. */
export type GgufValue = number | bigint | boolean | string | GgufArray

/** One tensor info entry; `offset` is relative to `GgufFile.dataOffset`. */
export interface GgufTensorInfo {
  readonly name: string
  /** ggml order: the first dimension is the row length. */
  readonly dims: ReadonlyArray<number>
  readonly type: number
  readonly typeName: string
  readonly offset: number
  readonly byteSize: number
  readonly elementCount: number
}

/** A GGUF file whose header passed every check. */
export interface GgufFile {
  readonly version: number
  readonly alignment: number
  readonly tensorCount: number
  readonly metadata: ReadonlyMap<string, GgufValue>
  readonly tensors: ReadonlyArray<GgufTensorInfo>
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number
  readonly architecture: string
  /** Bytes of the header proper (magic through the last tensor info, before padding). */
  readonly headerBytes: number
  /** Length of `tokenizer.ggml.tokens`, when present. */
  readonly vocabularySize: number | undefined
  readonly fileSize: number
}

/** What is wrong with a file, and where: a byte offset, a metadata key, or both. */
export interface GgufProblem {
  readonly reason: string
  readonly offset?: number
  readonly key?: string
}

/** The outcome of `parseGguf`. */
export type GgufParseResult =
  | { readonly _tag: "Ok"; readonly file: GgufFile }
  /** The header continues past the prefix: read at least `bytes` bytes from the start and call again. */
  | { readonly _tag: "NeedMore"; readonly bytes: number }
  | { readonly _tag: "Invalid"; readonly problem: GgufProblem }

/** Tuning for `parseGguf`. */
export interface GgufParseOptions {
  /** Arrays longer than this are summarized (`values: undefined`) rather than decoded. Default 1024. */
  readonly materializeArraysUpTo?: number
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

const VALUE_TYPES: ReadonlyArray<GgufValueType> = [
  "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64",
  "float64"
]
const T_STRING = 8
const T_ARRAY = 9
// bytes per element; strings and arrays give their smallest possible encoding (length / type + count)
const MIN_VALUE_BYTES: ReadonlyArray<number> = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8]

// GGML type id → [name, block size, bytes per block], as the llama.cpp bundled with node-llama-cpp
// 3.22 reports them. Block size 0 marks ids whose support llama.cpp removed.
const GGML_TYPES: ReadonlyArray<readonly [string, number, number]> = [
  ["F32", 1, 4], ["F16", 1, 2], ["Q4_0", 32, 18], ["Q4_1", 32, 20], ["Q4_2", 0, 0], ["Q4_3", 0, 0],
  ["Q5_0", 32, 22], ["Q5_1", 32, 24], ["Q8_0", 32, 34], ["Q8_1", 32, 36], ["Q2_K", 256, 84],
  ["Q3_K", 256, 110], ["Q4_K", 256, 144], ["Q5_K", 256, 176], ["Q6_K", 256, 210], ["Q8_K", 256, 292],
  ["IQ2_XXS", 256, 66], ["IQ2_XS", 256, 74], ["IQ3_XXS", 256, 98], ["IQ1_S", 256, 50], ["IQ4_NL", 32, 18],
  ["IQ3_S", 256, 110], ["IQ2_S", 256, 82], ["IQ4_XS", 256, 136], ["I8", 1, 1], ["I16", 1, 2], ["I32", 1, 4],
  ["I64", 1, 8], ["F64", 1, 8], ["IQ1_M", 256, 56], ["BF16", 1, 2], ["Q4_0_4_4", 0, 0], ["Q4_0_4_8", 0, 0],
  ["Q4_0_8_8", 0, 0], ["TQ1_0", 256, 54], ["TQ2_0", 256, 66], ["IQ4_NL_4_4", 0, 0], ["IQ4_NL_4_8", 0, 0],
  ["IQ4_NL_8_8", 0, 0], ["MXFP4", 32, 17], ["NVFP4", 64, 36], ["Q1_0", 128, 18], ["Q2_0", 64, 18]
]

// llama.h `enum llama_ftype` (gaps are values llama.cpp removed)
const FILE_TYPES: Readonly<Record<number, string>> = {
  0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "Q4_1_SOME_F16", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
  11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
  19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S",
  27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 33: "Q4_0_4_4", 34: "Q4_0_4_8",
  35: "Q4_0_8_8", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 41: "Q2_0"
}
const LLAMA_FTYPE_GUESSED = 1024

// llama.cpp reads these with "optional" getters, then asserts on (or divides by) the zero left behind,
// killing the process; for these dense architectures every real file has them.
const ARCHITECTURES_WITH_REQUIRED_KEYS: ReadonlySet<string> = new Set([
  "llama", "mistral3", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3", "starcoder2", "falcon"
])
const REQUIRED_ARCH_KEYS = [
  "context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count"
] as const

const GGML_MAX_DIMS = 4
// ggml's tensor name field is 64 bytes including the terminator; gguf.cpp rejects longer names
const GGML_MAX_NAME = 64
const MAX_ARRAY_NESTING = 8
const HEADER_FIXED_BYTES = 24 // magic, version, tensor count, kv count
const MIN_KV_BYTES = 8 + 1 + 4 + 1 // key length, ≥1 key byte, type, ≥1 value byte
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8 // name length, ≥1 name byte, n_dims, ≥1 dim, type, offset
const TWO_32 = 4294967296
const MAX_SAFE_HI = 0x1fffff // hi word of the largest u64 that is still a safe JS integer

// ---------------------------------------------------------------------------------------------
// Cursor
// ---------------------------------------------------------------------------------------------

// Thrown inside the parser, always caught by parseGguf: keeps the hot paths free of result plumbing.
class Stop {
  constructor(readonly result: Exclude<GgufParseResult, { _tag: "Ok" }>) {}
}

// a function declaration (not an arrow) so that TypeScript narrows after `if (…) fail(…)`
function fail(reason: string, offset?: number, key?: string): never {
  const problem: { reason: string; offset?: number; key?: string } = { reason }
  if (offset !== undefined) problem.offset = offset
  if (key !== undefined) problem.key = key
  throw new Stop({ _tag: "Invalid", problem })
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true })
const utf8Lenient = new TextDecoder("utf-8")

class Cursor {
  pos = 0
  /** Key or tensor being read, for problem reports. */
  key: string | undefined = undefined
  /** Where the tokens of `tokenizer.ggml.tokens` are, kept even when the array is too long to materialize. */
  vocabulary: Vocabulary | undefined = undefined
  readonly view: DataView
  readonly available: number

  constructor(readonly bytes: Uint8Array, readonly fileSize: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.available = Math.min(bytes.length, fileSize)
  }

  /** Claims `n` bytes at the cursor; past the file end is Invalid, past the prefix is NeedMore. */
  take(n: number, what: string): number {
    const start = this.pos
    const end = start + n
    if (end > this.fileSize) {
      fail(
        `file ends at byte ${this.fileSize} inside ${what} (which needs bytes up to ${end}): the file is truncated`,
        start,
        this.key
      )
    }
    if (end > this.available) {
      // doubling keeps the number of re-reads logarithmic when a long array is still ahead
      throw new Stop({ _tag: "NeedMore", bytes: Math.min(this.fileSize, Math.max(end, this.available * 2)) })
    }
    this.pos = end
    return start
  }

  get remaining(): number {
    return this.fileSize - this.pos
  }

  u8(what: string): number {
    return this.view.getUint8(this.take(1, what))
  }
  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true)
  }
  /** A u64 as a number; values past 2^53 come back approximate, which is fine for bounds checks. */
  u64(what: string): number {
    const at = this.take(8, what)
    return this.view.getUint32(at + 4, true) * TWO_32 + this.view.getUint32(at, true)
  }

  /** Reads a string's bytes after checking its length against what is left of the file. */
  stringBytes(what: string): Uint8Array {
    const lengthAt = this.pos
    const length = this.u64(`the length of ${what}`)
    if (length > this.remaining) {
      fail(
        `${what} claims ${length} bytes but only ${this.remaining} bytes are left in the file (truncated or corrupt)`,
        lengthAt,
        this.key
      )
    }
    const at = this.take(length, what)
    return this.bytes.subarray(at, at + length)
  }

  skipString(what: string): void {
    const lengthAt = this.pos
    const length = this.u64(`the length of ${what}`)
    if (length > this.remaining) {
      fail(`${what} claims ${length} bytes but only ${this.remaining} bytes are left in the file (truncated or corrupt)`, lengthAt, this.key)
    }
    this.take(length, what)
  }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

const readScalar = (c: Cursor, type: number, what: string): number | bigint | boolean => {
  const v = c.view
  switch (type) {
    case 0: return v.getUint8(c.take(1, what))
    case 1: return v.getInt8(c.take(1, what))
    case 2: return v.getUint16(c.take(2, what), true)
    case 3: return v.getInt16(c.take(2, what), true)
    case 4: return v.getUint32(c.take(4, what), true)
    case 5: return v.getInt32(c.take(4, what), true)
    case 6: return v.getFloat32(c.take(4, what), true)
    case 7: {
      const at = c.take(1, what)
      const b = v.getUint8(at)
      if (b > 1) fail(`${what} is a bool with byte value ${b} (only 0 and 1 are valid)`, at, c.key)
      return b === 1
    }
    case 10: {
      const at = c.take(8, what)
      const hi = v.getUint32(at + 4, true)
      return hi <= MAX_SAFE_HI ? hi * TWO_32 + v.getUint32(at, true) : v.getBigUint64(at, true)
    }
    case 11: {
      const at = c.take(8, what)
      const hi = v.getInt32(at + 4, true)
      return hi <= MAX_SAFE_HI && hi >= -MAX_SAFE_HI - 1
        ? hi * TWO_32 + v.getUint32(at, true)
        : v.getBigInt64(at, true)
    }
    default: return v.getFloat64(c.take(8, what), true)
  }
}

const readValueType = (c: Cursor, what: string): number => {
  const at = c.pos
  const type = c.u32(what)
  if (type >= VALUE_TYPES.length) {
    fail(`${what} is ${type}, which is not a GGUF value type (0-${VALUE_TYPES.length - 1})`, at, c.key)
  }
  return type
}

const readValue = (c: Cursor, type: number, depth: number, limit: number): GgufValue => {
  if (type === T_STRING) return utf8Lenient.decode(c.stringBytes("a string value"))
  if (type === T_ARRAY) return readArray(c, depth, limit, true)
  return readScalar(c, type, "a value")
}

/**
 * The tokens of a vocabulary as byte ranges of the header, with an open-addressing hash table over
 * them: duplicate and byte-token checks on a 150k-token vocabulary in a few ms, without making a
 * string per token.
 */
class Vocabulary {
  private table: Int32Array | undefined
  constructor(readonly bytes: Uint8Array, readonly starts: Uint32Array, readonly lengths: Uint32Array) {}

  private hash(start: number, length: number): number {
    let h = 0x811c9dc5
    for (let i = start; i < start + length; i++) h = Math.imul(h ^ this.bytes[i]!, 0x01000193)
    return h >>> 0
  }
  private same(id: number, other: Uint8Array, otherStart: number, length: number): boolean {
    if (this.lengths[id] !== length) return false
    const start = this.starts[id]!
    for (let i = 0; i < length; i++) if (this.bytes[start + i] !== other[otherStart + i]) return false
    return true
  }
  /** Builds the table; returns the first pair of ids holding the same token, if any. */
  firstDuplicate(): readonly [number, number] | undefined {
    const n = this.starts.length
    let size = 16
    while (size < n * 2) size *= 2
    const table = new Int32Array(size).fill(-1)
    for (let id = 0; id < n; id++) {
      const start = this.starts[id]!
      const length = this.lengths[id]!
      let slot = this.hash(start, length) & (size - 1)
      for (;;) {
        const other = table[slot]!
        if (other === -1) {
          table[slot] = id
          break
        }
        if (this.same(other, this.bytes, start, length)) return [other, id]
        slot = (slot + 1) & (size - 1)
      }
    }
    this.table = table
    return undefined
  }
  /** Whether the vocabulary has this token (after `firstDuplicate`). */
  has(token: string): boolean {
    const table = this.table!
    const bytes = new TextEncoder().encode(token)
    let h = 0x811c9dc5
    for (const b of bytes) h = Math.imul(h ^ b, 0x01000193)
    let slot = (h >>> 0) & (table.length - 1)
    for (;;) {
      const id = table[slot]!
      if (id === -1) return false
      if (this.same(id, bytes, 0, bytes.length)) return true
      slot = (slot + 1) & (table.length - 1)
    }
  }
  text(id: number): string {
    return utf8Lenient.decode(this.bytes.subarray(this.starts[id]!, this.starts[id]! + this.lengths[id]!))
  }
}

const readVocabulary = (c: Cursor, count: number): Vocabulary => {
  const starts = new Uint32Array(count)
  const lengths = new Uint32Array(count)
  for (let i = 0; i < count; i++) {
    const lengthAt = c.pos
    const length = c.u64("the length of a token")
    if (length > c.remaining) {
      fail(`a token claims ${length} bytes but only ${c.remaining} bytes are left in the file (truncated or corrupt)`, lengthAt, c.key)
    }
    starts[i] = c.take(length, "a token")
    lengths[i] = length
  }
  return new Vocabulary(c.bytes, starts, lengths)
}

const readArray = (c: Cursor, depth: number, limit: number, materialize: boolean): GgufArray => {
  if (depth >= MAX_ARRAY_NESTING) fail(`arrays are nested more than ${MAX_ARRAY_NESTING} deep`, c.pos, c.key)
  const elementType = readValueType(c, "the array element type")
  const countAt = c.pos
  const count = c.u64("the array length")
  const minBytes = count * MIN_VALUE_BYTES[elementType]!
  if (minBytes > c.remaining) {
    fail(
      `array of ${count} ${VALUE_TYPES[elementType]} elements needs at least ${minBytes} bytes ` +
        `but only ${c.remaining} bytes are left in the file (truncated or corrupt)`,
      countAt,
      c.key
    )
  }
  const elementTypeName = VALUE_TYPES[elementType]!
  if (!materialize || count > limit) {
    if (elementType === T_STRING && depth === 0 && c.key === "tokenizer.ggml.tokens") {
      c.vocabulary = readVocabulary(c, count)
    } else if (elementType === T_STRING) {
      for (let i = 0; i < count; i++) c.skipString("an array string")
    } else if (elementType === T_ARRAY) {
      for (let i = 0; i < count; i++) readArray(c, depth + 1, limit, false)
    } else {
      c.take(minBytes, "the array data")
    }
    return { _tag: "GgufArray", elementType: elementTypeName, length: count, values: undefined }
  }
  if (elementType === T_STRING && depth === 0 && c.key === "tokenizer.ggml.tokens") {
    const start = c.pos
    c.vocabulary = readVocabulary(c, count)
    c.pos = start
  }
  const values: Array<GgufValue> = new Array(count)
  for (let i = 0; i < count; i++) {
    values[i] = elementType === T_ARRAY
      ? readArray(c, depth + 1, limit, true)
      : readValue(c, elementType, depth + 1, limit)
  }
  return { _tag: "GgufArray", elementType: elementTypeName, length: count, values }
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

const describeMagic = (b: Uint8Array): string => {
  const text = String.fromCharCode(...b)
  const shown = /^[\x20-\x7e]{4}$/.test(text)
    ? `"${text}"`
    : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ")
  const hint = text === "vers"
    ? " (looks like a Git LFS pointer file, not the model itself)"
    : text === "<!DO" || text.toLowerCase() === "<htm"
    ? " (looks like an HTML page, not a model)"
    : text === "GGML" || text === "lmgg" || text === "tjgg" || text === "FUGG"
    ? " (an old GGML/GGJT file or a byte-swapped GGUF; re-download a current GGUF)"
    : ""
  return `${shown}${hint}`
}

const parseHeader = (c: Cursor, limit: number): GgufFile => {
  const fileSize = c.fileSize
  if (fileSize < 4) fail(fileSize === 0 ? "file is empty" : `file is ${fileSize} bytes, too short to be a GGUF file`, 0)
  const magicAt = c.take(4, "the magic")
  const magic = c.bytes.subarray(magicAt, magicAt + 4)
  if (magic[0] !== 0x47 || magic[1] !== 0x47 || magic[2] !== 0x55 || magic[3] !== 0x46) {
    fail(`not a GGUF file: expected magic "GGUF", found ${describeMagic(magic)}`, 0)
  }
  const version = c.u32("the version")
  if (version === 1) fail("GGUF version 1 is no longer supported by llama.cpp; use a newer conversion of the model", 4)
  if (version !== 2 && version !== 3) {
    fail(
      version !== 0 && (version & 0xffff) === 0
        ? `GGUF version ${version} looks byte-swapped: big-endian GGUF files are not supported`
        : `unsupported GGUF version ${version} (supported: 2 and 3)`,
      4
    )
  }
  const tensorCount = c.u64("the tensor count")
  const kvCount = c.u64("the metadata count")
  if (HEADER_FIXED_BYTES + kvCount * MIN_KV_BYTES > fileSize) {
    fail(`header claims ${kvCount} metadata entries, more than a ${fileSize}-byte file can hold`, 16)
  }
  if (HEADER_FIXED_BYTES + kvCount * MIN_KV_BYTES + tensorCount * MIN_TENSOR_INFO_BYTES > fileSize) {
    fail(`header claims ${tensorCount} tensors, more than a ${fileSize}-byte file can hold`, 8)
  }

  const metadata = new Map<string, GgufValue>()
  const types = new Map<string, number>()
  for (let i = 0; i < kvCount; i++) {
    c.key = undefined
    const keyAt = c.pos
    const keyBytes = c.stringBytes(`the key of metadata entry ${i}`)
    if (keyBytes.length === 0) fail(`metadata entry ${i} has an empty key`, keyAt)
    let key: string
    try {
      key = utf8Strict.decode(keyBytes)
    } catch {
      return fail(`the key of metadata entry ${i} is not valid UTF-8`, keyAt)
    }
    if (metadata.has(key)) fail(`duplicate metadata key "${key}"`, keyAt, key)
    c.key = key
    const type = readValueType(c, `the value type of "${key}"`)
    types.set(key, type)
    metadata.set(key, readValue(c, type, 0, limit))
  }
  c.key = undefined

  let alignment = 32
  const alignmentValue = metadata.get("general.alignment")
  if (alignmentValue !== undefined) {
    // llama.cpp reads it with gguf_get_val_u32, which asserts (aborts) on any other type
    if (types.get("general.alignment") !== 4) {
      fail(`general.alignment must be a uint32, found ${VALUE_TYPES[types.get("general.alignment")!]}`, undefined, "general.alignment")
    }
    alignment = alignmentValue as number
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
      fail(`general.alignment ${alignment} is not a power of two`, undefined, "general.alignment")
    }
  }

  const infos: Array<{ name: string; dims: Array<number>; type: number; offset: number; byteSize: number; at: number }> = []
  const names = new Set<string>()
  for (let i = 0; i < tensorCount; i++) {
    const at = c.pos
    const nameBytes = c.stringBytes(`the name of tensor ${i}`)
    let name: string
    try {
      name = utf8Strict.decode(nameBytes)
    } catch {
      return fail(`the name of tensor ${i} is not valid UTF-8`, at)
    }
    if (nameBytes.length === 0) fail(`tensor ${i} has an empty name`, at)
    if (nameBytes.length >= GGML_MAX_NAME) {
      fail(`tensor name "${name}" is ${nameBytes.length} bytes; llama.cpp allows at most ${GGML_MAX_NAME - 1}`, at)
    }
    if (names.has(name)) fail(`duplicate tensor name "${name}"`, at)
    names.add(name)
    const nDimsAt = c.pos
    const nDims = c.u32(`the dimension count of tensor "${name}"`)
    if (nDims < 1 || nDims > GGML_MAX_DIMS) {
      fail(`tensor "${name}" has ${nDims} dimensions (must be 1-${GGML_MAX_DIMS})`, nDimsAt)
    }
    const dims: Array<number> = []
    for (let d = 0; d < nDims; d++) {
      const dimAt = c.pos
      const dim = c.u64(`dimension ${d} of tensor "${name}"`)
      if (dim === 0) fail(`tensor "${name}" has an empty dimension ${d}`, dimAt)
      if (dim > Number.MAX_SAFE_INTEGER) fail(`tensor "${name}" dimension ${d} (${dim}) is absurdly large`, dimAt)
      dims.push(dim)
    }
    const typeAt = c.pos
    const type = c.u32(`the type of tensor "${name}"`)
    const ggml = GGML_TYPES[type]
    if (ggml === undefined) fail(`tensor "${name}" has unknown ggml type ${type}`, typeAt)
    const [typeName, blockSize, blockBytes] = ggml
    if (blockSize === 0) fail(`tensor "${name}" uses ggml type ${typeName} (${type}), which llama.cpp no longer supports`, typeAt)
    if (dims[0]! % blockSize !== 0) {
      fail(
        `tensor "${name}" of type ${typeName} has rows of ${dims[0]} elements, not a multiple of the block size ${blockSize}`,
        typeAt
      )
    }
    const offsetAt = c.pos
    const offset = c.u64(`the data offset of tensor "${name}"`)
    // multiply step by step against the file size: a float product past 2^53 still compares correctly
    let byteSize = (dims[0]! / blockSize) * blockBytes
    for (let d = 1; d < nDims && byteSize <= fileSize; d++) byteSize *= dims[d]!
    if (byteSize > fileSize) {
      fail(`tensor "${name}" [${dims.join(", ")}] ${typeName} needs ${byteSize} bytes, more than the whole file (${fileSize})`, at)
    }
    if (offset % alignment !== 0) {
      fail(`tensor "${name}" data offset ${offset} is not a multiple of the alignment ${alignment}`, offsetAt)
    }
    infos.push({ name, dims, type, offset, byteSize, at: offsetAt })
  }

  const headerBytes = c.pos
  const dataOffset = Math.ceil(headerBytes / alignment) * alignment
  const tensors: Array<GgufTensorInfo> = infos.map((t) => {
    const end = dataOffset + t.offset + t.byteSize
    if (end > fileSize) {
      fail(
        `tensor "${t.name}" data [${dataOffset + t.offset}, ${end}) extends past the end of the file ` +
          `(${fileSize} bytes): the file is truncated or the offset is wrong`,
        t.at
      )
    }
    return {
      name: t.name,
      dims: t.dims,
      type: t.type,
      typeName: GGML_TYPES[t.type]![0],
      offset: t.offset,
      byteSize: t.byteSize,
      elementCount: t.dims.reduce((a, b) => a * b, 1)
    }
  })

  const architecture = metadata.get("general.architecture")
  if (architecture === undefined) fail("required key general.architecture is missing", undefined, "general.architecture")
  if (typeof architecture !== "string") {
    fail(`general.architecture must be a string, found ${VALUE_TYPES[types.get("general.architecture")!]}`, undefined, "general.architecture")
  }
  const arch = architecture as string
  if (ARCHITECTURES_WITH_REQUIRED_KEYS.has(arch)) checkArchitectureKeys(arch, metadata)
  checkHyperParameters(arch, metadata)
  const vocabularySize = checkTokenizer(metadata, c.vocabulary)

  return {
    version,
    alignment,
    tensorCount,
    metadata,
    tensors,
    dataOffset,
    architecture: arch,
    headerBytes,
    vocabularySize,
    fileSize
  }
}

const isCount = (v: GgufValue | undefined): v is number => typeof v === "number" && Number.isInteger(v) && v > 0

const checkArchitectureKeys = (arch: string, metadata: ReadonlyMap<string, GgufValue>): void => {
  for (const suffix of REQUIRED_ARCH_KEYS) {
    const key = `${arch}.${suffix}`
    const value = metadata.get(key)
    if (value === undefined) {
      fail(`required key ${key} is missing (llama.cpp aborts the process without it)`, undefined, key)
    }
    // llama.cpp also accepts a per-layer array for the feed-forward length and head count
    const perLayer = suffix === "feed_forward_length" || suffix === "attention.head_count"
    if (perLayer && typeof value === "object" && value._tag === "GgufArray") {
      if (value.elementType === "string" || value.elementType === "array" || value.elementType === "bool") {
        fail(`${key} must be an integer or an array of integers, found an array of ${value.elementType}`, undefined, key)
      }
      continue
    }
    if (!isCount(value)) fail(`${key} must be a positive integer, found ${describeValue(value!)}`, undefined, key)
  }
  const kvHeads = metadata.get(`${arch}.attention.head_count_kv`)
  if (kvHeads !== undefined && typeof kvHeads !== "object" && !isCount(kvHeads)) {
    // llama.cpp divides by it
    fail(`${arch}.attention.head_count_kv must be a positive integer, found ${describeValue(kvHeads)}`, undefined, `${arch}.attention.head_count_kv`)
  }
}

// llama.cpp's LLAMA_MAX_LAYERS and LLAMA_MAX_EXPERTS: beyond them it asserts
const MAX_LAYERS = 512
const MAX_EXPERTS = 512

const integers = (value: GgufValue | undefined): ReadonlyArray<number> | undefined =>
  typeof value === "number"
    ? [value]
    : typeof value === "object" && value._tag === "GgufArray" && value.values !== undefined
    ? value.values.filter((x): x is number => typeof x === "number")
    : undefined

/**
 * Hyper-parameters llama.cpp asserts on (GGML_ASSERT, a process abort) instead of reporting,
 * found by writing files that break each one (see NOTES): the layer limit, expert counts that
 * contradict each other, zero or non-dividing head counts, non-finite floats.
 */
const checkHyperParameters = (arch: string, metadata: ReadonlyMap<string, GgufValue>): void => {
  const key = (suffix: string) => `${arch}.${suffix}`
  const blocks = metadata.get(key("block_count"))
  if (typeof blocks === "number" && blocks > MAX_LAYERS) {
    fail(`${key("block_count")} is ${blocks}; llama.cpp supports at most ${MAX_LAYERS} layers`, undefined, key("block_count"))
  }
  const experts = metadata.get(key("expert_count"))
  const used = metadata.get(key("expert_used_count"))
  const expertCount = typeof experts === "number" ? experts : 0
  const usedCount = typeof used === "number" ? used : 0
  if (expertCount > MAX_EXPERTS) {
    fail(`${key("expert_count")} is ${expertCount}; llama.cpp supports at most ${MAX_EXPERTS} experts`, undefined, key("expert_count"))
  }
  if (usedCount > expertCount) {
    fail(
      expertCount === 0
        ? `${key("expert_used_count")} is ${usedCount} but the model has no experts (${key("expert_count")} is missing or 0)`
        : `${key("expert_used_count")} (${usedCount}) is more than ${key("expert_count")} (${expertCount})`,
      undefined,
      key("expert_used_count")
    )
  }
  if (expertCount > 0 && usedCount === 0) {
    fail(`${key("expert_count")} is ${expertCount} but ${key("expert_used_count")} is missing or 0`, undefined, key("expert_used_count"))
  }
  if (ARCHITECTURES_WITH_REQUIRED_KEYS.has(arch)) {
    for (const suffix of ["attention.head_count", "attention.head_count_kv", "feed_forward_length"]) {
      const value = metadata.get(key(suffix))
      if (typeof value !== "object") continue
      const values = integers(value)
      if (values?.some((x) => x === 0)) fail(`${key(suffix)} has a 0 for a layer (llama.cpp divides by it)`, undefined, key(suffix))
      if (typeof blocks === "number" && value.length !== blocks) {
        fail(`${key(suffix)} has ${value.length} entries but the model has ${blocks} layers`, undefined, key(suffix))
      }
    }
    const heads = integers(metadata.get(key("attention.head_count")))
    const kvHeads = integers(metadata.get(key("attention.head_count_kv")))
    if (heads !== undefined && kvHeads !== undefined) {
      for (let layer = 0; layer < Math.max(heads.length, kvHeads.length); layer++) {
        const h = heads[Math.min(layer, heads.length - 1)]!
        const kv = kvHeads[Math.min(layer, kvHeads.length - 1)]!
        if (kv > 0 && h % kv !== 0) {
          fail(
            `${key("attention.head_count")} (${h}) is not a multiple of ${key("attention.head_count_kv")} (${kv})` +
              (heads.length > 1 || kvHeads.length > 1 ? ` in layer ${layer}` : ""),
            undefined,
            key("attention.head_count_kv")
          )
        }
      }
    }
  }
  for (const [k, value] of metadata) {
    if (!k.startsWith(`${arch}.`)) continue
    if (typeof value === "number" && !Number.isFinite(value)) fail(`${k} is ${value}, not a finite number`, undefined, k)
    if (k.endsWith("epsilon") && typeof value === "number" && value < 0) fail(`${k} is negative (${value})`, undefined, k)
  }
}

// llama.cpp's tokenizer models (llama-vocab.cpp): anything else aborts while loading
const TOKENIZER_MODELS: ReadonlySet<string> = new Set(["llama", "gpt2", "bert", "t5", "rwkv", "plamo2"])
const BERT_ARCHITECTURES: ReadonlySet<string> = new Set(["bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "modern-bert", "neo-bert"])

// llama.cpp reads scores and token types as raw C arrays indexed by token id, and asserts on the
// array types: a mismatch is an out-of-bounds read or an abort, not an error message.
const checkTokenizer = (
  metadata: ReadonlyMap<string, GgufValue>,
  collected: Vocabulary | undefined
): number | undefined => {
  const model = metadata.get("tokenizer.ggml.model")
  const arch = metadata.get("general.architecture")
  if (model !== undefined) {
    if (typeof model !== "string") fail(`tokenizer.ggml.model must be a string, found ${describeValue(model)}`, undefined, "tokenizer.ggml.model")
    if (model === "none" || model === "no_vocab") {
      fail(`tokenizer.ggml.model is "${model}": the model has no vocabulary, so it cannot generate text`, undefined, "tokenizer.ggml.model")
    }
    if (!TOKENIZER_MODELS.has(model)) {
      fail(
        `tokenizer.ggml.model "${model}" is not a tokenizer llama.cpp knows (${[...TOKENIZER_MODELS].join(", ")})`,
        undefined,
        "tokenizer.ggml.model"
      )
    }
    if (model === "bert" && typeof arch === "string" && !BERT_ARCHITECTURES.has(arch)) {
      fail(`tokenizer.ggml.model "bert" (WordPiece) does not fit architecture ${arch}`, undefined, "tokenizer.ggml.model")
    }
  }
  const tokens = metadata.get("tokenizer.ggml.tokens")
  if (tokens === undefined) return undefined
  const expectArray = (key: string, elementType: GgufValueType, length?: number): void => {
    const value = metadata.get(key)
    if (value === undefined) return
    if (typeof value !== "object" || value._tag !== "GgufArray" || value.elementType !== elementType) {
      fail(`${key} must be an array of ${elementType}, found ${describeValue(value)}`, undefined, key)
    }
    const array = value as GgufArray
    if (length !== undefined && array.length !== length) {
      fail(`${key} has ${array.length} entries but the vocabulary has ${length} tokens`, undefined, key)
    }
  }
  expectArray("tokenizer.ggml.tokens", "string")
  const vocabularySize = (tokens as GgufArray).length
  expectArray("tokenizer.ggml.scores", "float32", vocabularySize)
  expectArray("tokenizer.ggml.token_type", "int32", vocabularySize)
  expectArray("tokenizer.ggml.merges", "string")
  if (collected !== undefined) {
    const duplicate = collected.firstDuplicate()
    if (duplicate !== undefined) {
      const [first, id] = duplicate
      fail(
        `tokenizer.ggml.tokens has ${JSON.stringify(collected.text(id).slice(0, 40))} twice (ids ${first} and ${id}); llama.cpp aborts on duplicate tokens`,
        undefined,
        "tokenizer.ggml.tokens"
      )
    }
    // a SentencePiece vocabulary falls back to <0xNN> byte tokens for any character it lacks;
    // llama.cpp looks them up with std::map::at, and a missing one is an uncaught out_of_range
    if (model === "llama" || model === undefined) {
      for (let b = 0; b < 256; b++) {
        const byteToken = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`
        if (!collected.has(byteToken)) {
          fail(
            `tokenizer.ggml.tokens lacks the byte token ${byteToken}: a SentencePiece ("llama") vocabulary needs all 256`,
            undefined,
            "tokenizer.ggml.tokens"
          )
        }
      }
    }
  }
  return vocabularySize
}

const describeValue = (value: GgufValue): string =>
  typeof value === "object"
    ? `an array of ${value.length} ${value.elementType}`
    : typeof value === "string"
    ? `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`
    : `${typeof value} ${String(value)}`

// ---------------------------------------------------------------------------------------------
// Entry points and helpers
// ---------------------------------------------------------------------------------------------

/** Parses and validates a GGUF header from the first bytes of a file of `fileSize` bytes; never throws. */
export const parseGguf = (prefix: Uint8Array, fileSize: number, options: GgufParseOptions = {}): GgufParseResult => {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    return { _tag: "Invalid", problem: { reason: `file size ${fileSize} is not a byte count` } }
  }
  try {
    const file = parseHeader(new Cursor(prefix, fileSize), options.materializeArraysUpTo ?? 1024)
    return { _tag: "Ok", file }
  } catch (e) {
    if (e instanceof Stop) return e.result
    throw e
  }
}

/** What `peekGgufMetadata` read from the start of a file. */
export type GgufPeekResult =
  | {
    readonly _tag: "Ok"
    /** The metadata entries wholly inside the prefix, in file order. */
    readonly metadata: ReadonlyMap<string, GgufValue>
    /** True when every entry was read (the prefix reached the tensor infos). */
    readonly complete: boolean
  }
  | { readonly _tag: "Invalid"; readonly problem: GgufProblem }

/**
 * The metadata entries that fit in the first bytes of a GGUF file, without validating the rest: for a
 * listing that needs `general.architecture` and `general.file_type` (converters write `general.*` and the
 * architecture's keys before the long tokenizer arrays) and must not read megabytes per model. A file that
 * does not start like a GGUF is Invalid; a prefix ending inside an entry just ends the peek.
 */
export const peekGgufMetadata = (prefix: Uint8Array, fileSize: number): GgufPeekResult => {
  const metadata = new Map<string, GgufValue>()
  const c = new Cursor(prefix, Math.max(fileSize, prefix.length))
  try {
    if (c.fileSize < HEADER_FIXED_BYTES) fail(`file is ${c.fileSize} bytes, too short to be a GGUF file`, 0)
    const magicAt = c.take(4, "the magic")
    const magic = c.bytes.subarray(magicAt, magicAt + 4)
    if (magic[0] !== 0x47 || magic[1] !== 0x47 || magic[2] !== 0x55 || magic[3] !== 0x46) {
      fail(`not a GGUF file: expected magic "GGUF", found ${describeMagic(magic)}`, 0)
    }
    const version = c.u32("the version")
    if (version !== 2 && version !== 3) fail(`unsupported GGUF version ${version} (supported: 2 and 3)`, 4)
    c.u64("the tensor count")
    const kvCount = c.u64("the metadata count")
    for (let i = 0; i < kvCount; i++) {
      const keyBytes = c.stringBytes(`the key of metadata entry ${i}`)
      const key = utf8Lenient.decode(keyBytes)
      c.key = key
      metadata.set(key, readValue(c, readValueType(c, `the value type of "${key}"`), 0, 64))
    }
    return { _tag: "Ok", metadata, complete: true }
  } catch (e) {
    if (!(e instanceof Stop)) throw e
    if (e.result._tag === "NeedMore") return { _tag: "Ok", metadata, complete: false }
    // a malformed entry after the ones read: what came before is still what the file says
    return metadata.size > 0 ? { _tag: "Ok", metadata, complete: false } : e.result
  }
}

/** Parses a whole file held in memory (tests, small files); never answers NeedMore. */
export const parseGgufBuffer = (whole: Uint8Array, options?: GgufParseOptions): GgufParseResult =>
  parseGguf(whole, whole.length, options)

/** Name of a ggml tensor type id (`Q8_0`, `Q4_K`, …), or `unknown(<id>)`. */
export const ggmlTypeName = (type: number): string => GGML_TYPES[type]?.[0] ?? `unknown(${type})`

/** Name of a llama.cpp file type (`general.file_type`), e.g. `Q4_K_M`, or `unknown(<id>)`. */
export const fileTypeName = (fileType: number): string => {
  const guessed = fileType >= LLAMA_FTYPE_GUESSED && (fileType & LLAMA_FTYPE_GUESSED) !== 0
  const base = guessed ? fileType & ~LLAMA_FTYPE_GUESSED : fileType
  const name = FILE_TYPES[base] ?? `unknown(${fileType})`
  return guessed && FILE_TYPES[base] !== undefined ? `${name} (guessed)` : name
}

/** Total number of weights: the sum of every tensor's element count. */
export const parameterCount = (file: GgufFile): number =>
  file.tensors.reduce((sum, t) => sum + t.elementCount, 0)

/** A metadata value as a string, if it is one. */
export const metadataString = (file: GgufFile, key: string): string | undefined => {
  const value = file.metadata.get(key)
  return typeof value === "string" ? value : undefined
}

/** A metadata value as a safe-integer or float number, if it is one. */
export const metadataNumber = (file: GgufFile, key: string): number | undefined => {
  const value = file.metadata.get(key)
  return typeof value === "number" ? value : undefined
}

// ---------------------------------------------------------------------------------------------
// Streaming header scan (listings)
// ---------------------------------------------------------------------------------------------

/** Reads up to `length` bytes of a file at `position` (fewer only at its end); the caller's I/O. */
export type ReadAt = (position: number, length: number) => Promise<Uint8Array>

/** Tuning for `scanGgufHeader`. */
export interface GgufScanOptions {
  /** The bytes already read from offset 0 (a listing's peek): used before anything is read. */
  readonly initial?: Uint8Array | undefined
  /** A header (magic through the last tensor info) past this many bytes is TooLarge. Default 64 MiB. */
  readonly maxHeaderBytes?: number | undefined
  /** The largest read (the window grows by doubling from the peek up to this). Default 1 MiB. */
  readonly maxChunkBytes?: number | undefined
}

/** What `scanGgufHeader` found. */
export type GgufScanResult =
  /** The header's structure: metadata (long arrays summarized), tensor infos; not validated for llama.cpp. */
  | { readonly _tag: "Ok"; readonly file: GgufFile; readonly bytesRead: number }
  | { readonly _tag: "Invalid"; readonly problem: GgufProblem }
  /** The header goes on past `maxHeaderBytes`. */
  | { readonly _tag: "TooLarge"; readonly bytes: number }

class TooLarge {
  constructor(readonly bytes: number) {}
}

const SCALAR_BYTES: ReadonlyArray<number> = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8]

/**
 * A window over a file that moves forward: the bytes of [start, end) are in `buf`, `pos` is the
 * reading position. Skipping (a token's bytes) moves `pos` past the window without reading.
 */
class Window {
  buf: Uint8Array
  view: DataView
  start = 0
  end: number
  pos = 0
  bytesRead: number
  key: string | undefined = undefined
  private chunk: number
  constructor(
    readonly readAt: ReadAt,
    readonly fileSize: number,
    initial: Uint8Array,
    readonly maxHeader: number,
    readonly maxChunk: number
  ) {
    this.buf = initial.subarray(0, Math.min(initial.length, fileSize))
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)
    this.end = this.buf.length
    this.bytesRead = 0
    this.chunk = Math.min(maxChunk, Math.max(64 * 1024, this.buf.length * 2))
  }

  /** Makes [pos, pos + n) readable; past the file end is Invalid, past the cap TooLarge. */
  async need(n: number, what: string): Promise<void> {
    if (this.pos + n <= this.end) return
    if (this.pos + n > this.fileSize) {
      fail(`file ends at byte ${this.fileSize} inside ${what} (which needs bytes up to ${this.pos + n}): the file is truncated`, this.pos, this.key)
    }
    if (this.pos + n > this.maxHeader) throw new TooLarge(this.pos + n)
    const size = Math.min(Math.max(n, this.chunk), this.fileSize - this.pos)
    this.chunk = Math.min(this.maxChunk, this.chunk * 2)
    const next = new Uint8Array(size)
    // keep what the window already holds from pos on
    const kept = this.pos < this.end ? this.end - this.pos : 0
    if (kept > 0) next.set(this.buf.subarray(this.pos - this.start, this.end - this.start), 0)
    let filled = kept
    while (filled < size) {
      const got = await this.readAt(this.pos + filled, size - filled)
      if (got.length === 0) fail("the file got shorter while it was read", this.pos + filled, this.key)
      next.set(got.subarray(0, size - filled), filled)
      filled += Math.min(got.length, size - filled)
      this.bytesRead += got.length
    }
    this.buf = next
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength)
    this.start = this.pos
    this.end = this.pos + size
  }
  /** The window offset of `pos`, after claiming n bytes (which `need` made readable). */
  claim(n: number): number {
    const at = this.pos - this.start
    this.pos += n
    return at
  }
  async u32(what: string): Promise<number> {
    if (this.pos + 4 > this.end) await this.need(4, what)
    return this.view.getUint32(this.claim(4), true)
  }
  async u64(what: string): Promise<number> {
    if (this.pos + 8 > this.end) await this.need(8, what)
    const at = this.claim(8)
    return this.view.getUint32(at + 4, true) * TWO_32 + this.view.getUint32(at, true)
  }
  async length(what: string): Promise<number> {
    const at = this.pos
    const length = await this.u64(`the length of ${what}`)
    if (length > this.fileSize - this.pos) {
      fail(`${what} claims ${length} bytes but only ${this.fileSize - this.pos} bytes are left in the file (truncated or corrupt)`, at, this.key)
    }
    return length
  }
  async string(what: string): Promise<string> {
    const length = await this.length(what)
    if (this.pos + length > this.end) await this.need(length, what)
    const at = this.claim(length)
    return utf8Lenient.decode(this.buf.subarray(at, at + length))
  }
  /** Moves past n bytes without reading them. */
  skip(n: number): void {
    this.pos += n
  }
}

const scalarAt = (view: DataView, at: number, type: number): number | bigint | boolean => {
  switch (type) {
    case 0: return view.getUint8(at)
    case 1: return view.getInt8(at)
    case 2: return view.getUint16(at, true)
    case 3: return view.getInt16(at, true)
    case 4: return view.getUint32(at, true)
    case 5: return view.getInt32(at, true)
    case 6: return view.getFloat32(at, true)
    case 7: return view.getUint8(at) !== 0
    case 10: {
      const hi = view.getUint32(at + 4, true)
      return hi <= MAX_SAFE_HI ? hi * TWO_32 + view.getUint32(at, true) : view.getBigUint64(at, true)
    }
    case 11: {
      const hi = view.getInt32(at + 4, true)
      return hi <= MAX_SAFE_HI && hi >= -MAX_SAFE_HI - 1 ? hi * TWO_32 + view.getUint32(at, true) : view.getBigInt64(at, true)
    }
    default: return view.getFloat64(at, true)
  }
}

const scanType = async (w: Window, what: string): Promise<number> => {
  const at = w.pos
  const type = await w.u32(what)
  if (type >= VALUE_TYPES.length) fail(`${what} is ${type}, which is not a GGUF value type (0-${VALUE_TYPES.length - 1})`, at, w.key)
  return type
}

const scanValue = async (w: Window, type: number, depth: number, limit: number): Promise<GgufValue> => {
  if (type === T_STRING) return w.string("a string value")
  if (type === T_ARRAY) return scanArray(w, depth, limit)
  const n = SCALAR_BYTES[type]!
  if (w.pos + n > w.end) await w.need(n, "a value")
  return scalarAt(w.view, w.claim(n), type)
}

const scanArray = async (w: Window, depth: number, limit: number): Promise<GgufArray> => {
  if (depth >= MAX_ARRAY_NESTING) fail(`arrays are nested more than ${MAX_ARRAY_NESTING} deep`, w.pos, w.key)
  const elementType = await scanType(w, "the array element type")
  const countAt = w.pos
  const count = await w.u64("the array length")
  const minBytes = count * MIN_VALUE_BYTES[elementType]!
  if (minBytes > w.fileSize - w.pos) {
    fail(
      `array of ${count} ${VALUE_TYPES[elementType]} elements needs at least ${minBytes} bytes ` +
        `but only ${w.fileSize - w.pos} bytes are left in the file (truncated or corrupt)`,
      countAt,
      w.key
    )
  }
  const elementTypeName = VALUE_TYPES[elementType]!
  if (count <= limit) {
    const values: Array<GgufValue> = new Array(count)
    for (let i = 0; i < count; i++) values[i] = await scanValue(w, elementType, depth + 1, limit)
    return { _tag: "GgufArray", elementType: elementTypeName, length: count, values }
  }
  if (elementType === T_STRING) {
    // the vocabulary and the merges: each string's length is read, its bytes skipped (never buffered)
    for (let i = 0; i < count; i++) {
      if (w.pos + 8 > w.end) await w.need(8, "the length of an array string")
      const at = w.claim(8)
      const length = w.view.getUint32(at + 4, true) * TWO_32 + w.view.getUint32(at, true)
      if (length > w.fileSize - w.pos) {
        fail(`an array string claims ${length} bytes but only ${w.fileSize - w.pos} bytes are left in the file (truncated or corrupt)`, at + w.start, w.key)
      }
      w.skip(length)
    }
  } else if (elementType === T_ARRAY) {
    for (let i = 0; i < count; i++) await scanArray(w, depth + 1, 0)
  } else {
    w.skip(minBytes)
  }
  if (w.pos > w.fileSize) fail("the file is truncated inside an array", countAt, w.key)
  return { _tag: "GgufArray", elementType: elementTypeName, length: count, values: undefined }
}

/**
 * The header of a GGUF file up to the end of its tensor infos, read through `readAt` in a window that
 * moves forward and grows by doubling (from the `initial` bytes up to `maxChunkBytes`), so the
 * vocabulary and merges (megabytes of strings before `tokenizer.chat_template`) are walked, not
 * buffered: each string's length is read and its bytes skipped. Arrays longer than 64 entries are
 * summarized (their length only). Checks the structure against the file size (a truncated header is
 * Invalid), nothing that llama.cpp needs beyond it: this is for a listing's facts (`factsOfFile`),
 * `parseGguf` stays the check before a load. Never throws on a malformed file.
 */
export const scanGgufHeader = async (readAt: ReadAt, fileSize: number, options: GgufScanOptions = {}): Promise<GgufScanResult> => {
  const w = new Window(readAt, fileSize, options.initial ?? new Uint8Array(0), options.maxHeaderBytes ?? 64 * 1024 * 1024, options.maxChunkBytes ?? 1024 * 1024)
  try {
    if (fileSize < HEADER_FIXED_BYTES) fail(`file is ${fileSize} bytes, too short to be a GGUF file`, 0)
    await w.need(HEADER_FIXED_BYTES, "the header")
    const magic = w.buf.subarray(w.claim(4), w.pos - w.start)
    if (magic[0] !== 0x47 || magic[1] !== 0x47 || magic[2] !== 0x55 || magic[3] !== 0x46) {
      fail(`not a GGUF file: expected magic "GGUF", found ${describeMagic(magic)}`, 0)
    }
    const version = await w.u32("the version")
    if (version !== 2 && version !== 3) fail(`unsupported GGUF version ${version} (supported: 2 and 3)`, 4)
    const tensorCount = await w.u64("the tensor count")
    const kvCount = await w.u64("the metadata count")
    if (HEADER_FIXED_BYTES + kvCount * MIN_KV_BYTES + tensorCount * MIN_TENSOR_INFO_BYTES > fileSize) {
      fail(`header claims ${kvCount} metadata entries and ${tensorCount} tensors, more than a ${fileSize}-byte file can hold`, 8)
    }
    const metadata = new Map<string, GgufValue>()
    for (let i = 0; i < kvCount; i++) {
      w.key = undefined
      const key = await w.string(`the key of metadata entry ${i}`)
      w.key = key
      const type = await scanType(w, `the value type of "${key}"`)
      metadata.set(key, await scanValue(w, type, 0, 64))
    }
    w.key = undefined
    const alignmentValue = metadata.get("general.alignment")
    const alignment = typeof alignmentValue === "number" && alignmentValue > 0 && (alignmentValue & (alignmentValue - 1)) === 0
      ? alignmentValue
      : 32
    const tensors: Array<GgufTensorInfo> = []
    for (let i = 0; i < tensorCount; i++) {
      const name = await w.string(`the name of tensor ${i}`)
      const nDimsAt = w.pos
      const nDims = await w.u32(`the dimension count of tensor "${name}"`)
      if (nDims < 1 || nDims > GGML_MAX_DIMS) fail(`tensor "${name}" has ${nDims} dimensions (must be 1-${GGML_MAX_DIMS})`, nDimsAt)
      const dims: Array<number> = []
      for (let d = 0; d < nDims; d++) dims.push(await w.u64(`dimension ${d} of tensor "${name}"`))
      const type = await w.u32(`the type of tensor "${name}"`)
      const offset = await w.u64(`the data offset of tensor "${name}"`)
      const ggml = GGML_TYPES[type]
      const elementCount = dims.reduce((a, b) => a * b, 1)
      const byteSize = ggml !== undefined && ggml[1] > 0 ? (elementCount / ggml[1]) * ggml[2] : 0
      tensors.push({ name, dims, type, typeName: ggmlTypeName(type), offset, byteSize, elementCount })
    }
    const architecture = metadata.get("general.architecture")
    if (typeof architecture !== "string") fail("general.architecture is missing or not a string", undefined, "general.architecture")
    const tokens = metadata.get("tokenizer.ggml.tokens")
    const headerBytes = w.pos
    return {
      _tag: "Ok",
      bytesRead: w.bytesRead,
      file: {
        version,
        alignment,
        tensorCount,
        metadata,
        tensors,
        dataOffset: Math.ceil(headerBytes / alignment) * alignment,
        architecture: architecture as string,
        headerBytes,
        vocabularySize: typeof tokens === "object" && tokens._tag === "GgufArray" ? tokens.length : undefined,
        fileSize
      }
    }
  } catch (e) {
    if (e instanceof TooLarge) return { _tag: "TooLarge", bytes: e.bytes }
    if (e instanceof Stop) {
      if (e.result._tag === "Invalid") return e.result
      return { _tag: "Invalid", problem: { reason: "the header could not be read" } }
    }
    throw e
  }
}

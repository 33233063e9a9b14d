/**
 * An image's pixel size read from its header (PNG, JPEG, GIF, WebP), and what Anthropic documents
 * an image costs in tokens. Pure and bounded: every read is checked against the buffer's length,
 * the JPEG walk moves forward by at least two bytes a step and stops after a fixed number of
 * segments, so hostile bytes give `undefined`, never a throw or a long loop. No Node API: the web
 * page checks a file it attaches with it too.
 */

/** An image's format and size in pixels. */
export interface ImageSize {
  readonly format: "png" | "jpeg" | "gif" | "webp"
  readonly width: number
  readonly height: number
}

/** At most this many JPEG segments are walked before the frame header (real files have < 30). */
const MAX_JPEG_SEGMENTS = 1024

const u16be = (b: Uint8Array, i: number): number | undefined => (i + 2 <= b.length ? (b[i]! << 8) | b[i + 1]! : undefined)
const u16le = (b: Uint8Array, i: number): number | undefined => (i + 2 <= b.length ? b[i]! | (b[i + 1]! << 8) : undefined)
const u24le = (b: Uint8Array, i: number): number | undefined =>
  i + 3 <= b.length ? b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) : undefined
const u32be = (b: Uint8Array, i: number): number | undefined =>
  i + 4 <= b.length ? b[i]! * 0x1000000 + ((b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) : undefined
const matches = (b: Uint8Array, i: number, xs: ReadonlyArray<number>): boolean =>
  i + xs.length <= b.length && xs.every((x, j) => b[i + j] === x)

const sized = (format: ImageSize["format"], width: number | undefined, height: number | undefined): ImageSize | undefined =>
  width !== undefined && height !== undefined && width > 0 && height > 0 ? { format, width, height } : undefined

const IHDR = [0x49, 0x48, 0x44, 0x52]

// the first chunk must be IHDR (PNG spec 11.2.2); width and height are 1 … 2^31-1
const png = (b: Uint8Array): ImageSize | undefined => {
  if (!matches(b, 12, IHDR)) return undefined
  const width = u32be(b, 16)
  const height = u32be(b, 20)
  return width !== undefined && height !== undefined && width <= 0x7fffffff && height <= 0x7fffffff
    ? sized("png", width, height)
    : undefined
}

// SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range
const isFrameHeader = (marker: number): boolean =>
  marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc

const jpeg = (b: Uint8Array): ImageSize | undefined => {
  let i = 2 // after SOI
  for (let segments = 0; segments < MAX_JPEG_SEGMENTS; segments++) {
    // a marker is 0xFF followed by its code; 0xFF bytes before it are fill
    if (i >= b.length || b[i] !== 0xff) return undefined
    while (i < b.length && b[i] === 0xff) i++
    if (i >= b.length) return undefined
    const marker = b[i]!
    i++
    // markers without a length: TEM, RSTn, SOI; EOI or SOS before a frame header ends the search
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue
    if (marker === 0xd9 || marker === 0xda) return undefined
    const length = u16be(b, i)
    if (length === undefined || length < 2) return undefined
    if (isFrameHeader(marker)) {
      // length, precision (1 byte), height, width
      if (length < 7) return undefined
      return sized("jpeg", u16be(b, i + 5), u16be(b, i + 3))
    }
    i += length // length ≥ 2: always forward
  }
  return undefined
}

// the logical screen descriptor after "GIF87a"/"GIF89a"
const gif = (b: Uint8Array): ImageSize | undefined =>
  matches(b, 3, [0x38]) && (matches(b, 4, [0x37, 0x61]) || matches(b, 4, [0x39, 0x61]))
    ? sized("gif", u16le(b, 6), u16le(b, 8))
    : undefined

const webp = (b: Uint8Array): ImageSize | undefined => {
  const chunk = String.fromCharCode(...b.subarray(12, 16))
  switch (chunk) {
    case "VP8 ": {
      // a key frame: 3-byte frame tag, start code 9D 01 2A, then 14-bit width and height
      if (!matches(b, 23, [0x9d, 0x01, 0x2a])) return undefined
      const w = u16le(b, 26)
      const h = u16le(b, 28)
      return sized("webp", w === undefined ? undefined : w & 0x3fff, h === undefined ? undefined : h & 0x3fff)
    }
    case "VP8L": {
      // signature 0x2F, then width-1 and height-1 in 14 bits each, little-endian bit order
      if (!matches(b, 20, [0x2f]) || b.length < 25) return undefined
      const bits = b[21]! | (b[22]! << 8) | (b[23]! << 16) | (b[24]! << 24)
      return sized("webp", (bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1)
    }
    case "VP8X": {
      // flags (4 bytes), then canvas width-1 and height-1 in 24 bits each
      const w = u24le(b, 24)
      const h = u24le(b, 27)
      return sized("webp", w === undefined ? undefined : w + 1, h === undefined ? undefined : h + 1)
    }
    default:
      return undefined
  }
}

/** The media type the first bytes of an image say it is (PNG, JPEG, GIF, WebP), or undefined. */
export const sniffImage = (bytes: Uint8Array): string | undefined => {
  const at = (i: number, ...xs: Array<number>) => xs.every((x, j) => bytes[i + j] === x)
  if (at(0, 0x89, 0x50, 0x4e, 0x47)) return "image/png"
  if (at(0, 0xff, 0xd8, 0xff)) return "image/jpeg"
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return "image/gif"
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return "image/webp"
  return undefined
}

/** The format and pixel size an image's bytes declare, or undefined when they declare none readable. */
export const imageSize = (bytes: Uint8Array): ImageSize | undefined => {
  // the format by the same first bytes every other image check uses
  switch (sniffImage(bytes)) {
    case "image/png":
      return png(bytes)
    case "image/jpeg":
      return jpeg(bytes)
    case "image/gif":
      return gif(bytes)
    case "image/webp":
      return webp(bytes)
    default:
      return undefined
  }
}

/**
 * Anthropic's documented image cost ("Vision" → "Evaluate image size" / "Calculate image costs"):
 * an image whose long edge is over 1568 px, or which would be over ~1,600 tokens, is first scaled
 * down preserving its aspect ratio; it then costs about width × height / 750 tokens.
 */
export const ANTHROPIC_IMAGE = { maxLongEdge: 1568, maxTokens: 1600, pixelsPerToken: 750 } as const

/** The size an image is scaled to before it is counted (never up). */
export const anthropicScaledSize = (width: number, height: number): { readonly width: number; readonly height: number } => {
  const { maxLongEdge, maxTokens, pixelsPerToken } = ANTHROPIC_IMAGE
  const scale = Math.min(1, maxLongEdge / Math.max(width, height), Math.sqrt((maxTokens * pixelsPerToken) / (width * height)))
  return scale >= 1
    ? { width, height }
    : { width: Math.max(1, Math.floor(width * scale)), height: Math.max(1, Math.floor(height * scale)) }
}

/** The tokens Anthropic documents for an image of this size. */
export const anthropicImageTokens = (width: number, height: number): number => {
  const scaled = anthropicScaledSize(width, height)
  return Math.ceil((scaled.width * scaled.height) / ANTHROPIC_IMAGE.pixelsPerToken)
}

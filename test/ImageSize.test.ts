/**
 * `domain/ImageSize.ts`: an image's pixel size from its header, for PNG, JPEG (every frame-header
 * kind, after EXIF, fill bytes, restart markers), GIF and the three WebP chunk kinds, on images
 * written here; truncated and hostile bytes give `undefined`, never a throw, and the walk is
 * bounded by construction (a seeded fuzz of thousands of mutations, a JPEG of endless segments or
 * fill bytes); and Anthropic's documented image cost (scale to a 1568 px long edge and ~1,600
 * tokens, then width × height / 750).
 */
import { describe, expect, it } from "vitest"
import { anthropicImageTokens, anthropicScaledSize, imageSize } from "../src/domain/ImageSize.js"
import { gifImage, jpegImage, pngImage, webpImage } from "./fixtures/images.js"

const sizes: Array<[number, number]> = [[1, 1], [7, 3], [300, 200], [1568, 1], [4000, 3000], [16383, 16383]]

describe("imageSize", () => {
  it("reads a PNG's IHDR", () => {
    for (const [w, h] of [[1, 1], [7, 3], [300, 200], [64, 1000]] as const) {
      expect(imageSize(pngImage(w, h))).toEqual({ format: "png", width: w, height: h })
    }
  })

  it("reads a JPEG's frame header after APP0, a large APP1, DQT and fill bytes, for every SOF kind and not for DHT/JPG/DAC", () => {
    for (const [w, h] of sizes.filter(([w, h]) => w < 65536 && h < 65536)) {
      expect(imageSize(jpegImage(w, h))).toEqual({ format: "jpeg", width: w, height: h })
    }
    for (const sof of [0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]) {
      expect(imageSize(jpegImage(640, 480, { sof, exifBytes: 60_000 }))).toEqual({ format: "jpeg", width: 640, height: 480 })
    }
    // a table segment in the SOF range is walked over, and no frame header follows: no size
    for (const notFrame of [0xc4, 0xc8, 0xcc]) expect(imageSize(jpegImage(640, 480, { sof: notFrame }))).toBeUndefined()
  })

  it("walks over restart markers and stops at a scan or the end before any frame header", () => {
    const restart = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xd0, 0xff, 0x01]), jpegImage(10, 20).subarray(2)])
    expect(imageSize(restart)).toEqual({ format: "jpeg", width: 10, height: 20 })
    expect(imageSize(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 8, 0xff, 0xc0, 0, 17, 8, 0, 20, 0, 10]))).toBeUndefined()
    expect(imageSize(Buffer.from([0xff, 0xd8, 0xff, 0xd9]))).toBeUndefined()
  })

  it("reads a GIF's logical screen (87a and 89a)", () => {
    expect(imageSize(gifImage(320, 240))).toEqual({ format: "gif", width: 320, height: 240 })
    const gif87 = gifImage(5, 9)
    gif87.write("87a", 3, "latin1")
    expect(imageSize(gif87)).toEqual({ format: "gif", width: 5, height: 9 })
  })

  it("reads each WebP chunk kind: VP8 (14-bit), VP8L (14-bit, minus one), VP8X (24-bit canvas, minus one)", () => {
    for (const [w, h] of sizes) {
      expect(imageSize(webpImage(w, h, "VP8"))).toEqual({ format: "webp", width: w, height: h })
      expect(imageSize(webpImage(w, h, "VP8L"))).toEqual({ format: "webp", width: w, height: h })
      expect(imageSize(webpImage(w, h, "VP8X"))).toEqual({ format: "webp", width: w, height: h })
    }
    expect(imageSize(webpImage(100_000, 3, "VP8X"))).toEqual({ format: "webp", width: 100_000, height: 3 })
  })

  it("every truncation of every kind gives a size only once the header is whole, and never throws", () => {
    const images = [pngImage(3, 2), jpegImage(33, 44, { exifBytes: 10 }), gifImage(3, 4), webpImage(9, 8, "VP8"), webpImage(9, 8, "VP8L"), webpImage(9, 8, "VP8X")]
    for (const image of images) {
      const whole = imageSize(image)
      expect(whole).toBeDefined()
      for (let n = 0; n < image.length; n++) {
        const cut = imageSize(image.subarray(0, n))
        expect(cut === undefined || (cut.width === whole!.width && cut.height === whole!.height)).toBe(true)
      }
    }
  })

  it("zero sizes, unknown formats, empty input: undefined", () => {
    expect(imageSize(pngImage(0, 0))).toBeUndefined()
    expect(imageSize(gifImage(0, 5))).toBeUndefined()
    expect(imageSize(new Uint8Array())).toBeUndefined()
    expect(imageSize(Buffer.from("%PDF-1.7 not an image"))).toBeUndefined()
    expect(imageSize(Buffer.from("RIFF\0\0\0\0WEBPVP8Z"))).toBeUndefined()
  })

  it("bounded by construction: a JPEG of endless empty segments or of fill bytes ends with no size", () => {
    // 100,000 segments of length 2 (each one a step forward): the walk stops after its segment bound
    const segments = Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(400_000).fill(Buffer.from([0xff, 0xfe, 0x00, 0x02])), jpegImage(5, 5).subarray(2)])
    expect(imageSize(segments)).toBeUndefined()
    expect(imageSize(Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(1_000_000, 0xff)]))).toBeUndefined()
    // a length below 2 would not move the walk forward: refused
    expect(imageSize(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01, 0xff, 0xc0]))).toBeUndefined()
    expect(imageSize(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x00, 0xff, 0xc0]))).toBeUndefined()
  })

  it("a seeded fuzz of 5,000 mutations (flips, cuts, 0xFF runs, splices) never throws and answers positive sizes or nothing", () => {
    let seed = 0x2545f491
    const random = (n: number) => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) % n
    }
    const bases = [pngImage(4, 4), jpegImage(70, 50, { exifBytes: 30 }), jpegImage(70, 50, { sof: 0xc2, exifBytes: 0 }), gifImage(6, 6), webpImage(30, 20, "VP8"), webpImage(30, 20, "VP8L"), webpImage(30, 20, "VP8X")]
    let sized = 0
    for (let round = 0; round < 5000; round++) {
      const bytes = Buffer.from(bases[random(bases.length)]!)
      let mutated: Buffer = bytes
      for (let k = 1 + random(4); k > 0; k--) {
        switch (random(4)) {
          case 0:
            mutated[random(mutated.length)] = random(256)
            break
          case 1:
            mutated = mutated.subarray(0, random(mutated.length + 1))
            break
          case 2: {
            const at = random(mutated.length + 1)
            mutated = Buffer.concat([mutated.subarray(0, at), Buffer.alloc(random(64), 0xff), mutated.subarray(at)])
            break
          }
          default: {
            const at = random(mutated.length + 1)
            mutated = Buffer.concat([mutated.subarray(0, at), Buffer.from([0xff, 0xc0 + random(16), random(256), random(256)]), mutated.subarray(at)])
          }
        }
        if (mutated.length === 0) break
      }
      const size = imageSize(mutated)
      if (size !== undefined) {
        sized++
        expect(Number.isSafeInteger(size.width) && size.width > 0).toBe(true)
        expect(Number.isSafeInteger(size.height) && size.height > 0).toBe(true)
      }
    }
    // the mutations leave many headers readable: the fuzz reached the readers, not only the sniffing
    expect(sized).toBeGreaterThan(500)
  })
})

describe("Anthropic's documented image cost", () => {
  it("width × height / 750 at or under the limits (the docs' table: 200×200 ≈ 54, 1000×1000 ≈ 1334, 1092×1092 ≈ 1590)", () => {
    expect(anthropicImageTokens(200, 200)).toBe(54)
    expect(anthropicImageTokens(1000, 1000)).toBe(1334)
    expect(anthropicImageTokens(1092, 1092)).toBe(1590)
    expect(anthropicImageTokens(1, 1)).toBe(1)
    expect(anthropicImageTokens(300, 200)).toBe(80)
  })

  it("scaled down, keeping the aspect ratio, to a 1568 px long edge and ~1,600 tokens; never up", () => {
    expect(anthropicScaledSize(300, 200)).toEqual({ width: 300, height: 200 })
    // a long thin image: the long edge binds
    expect(anthropicScaledSize(3136, 100)).toEqual({ width: 1568, height: 50 })
    // a large photo: the area binds (≈ 1.2 megapixels)
    const photo = anthropicScaledSize(4000, 3000)
    expect(Math.max(photo.width, photo.height)).toBeLessThanOrEqual(1568)
    expect((photo.width * photo.height) / 750).toBeLessThanOrEqual(1600)
    expect(photo.width / photo.height).toBeCloseTo(4 / 3, 2)
    expect(anthropicImageTokens(4000, 3000)).toBeGreaterThan(1590)
    expect(anthropicImageTokens(4000, 3000)).toBeLessThanOrEqual(1600)
    // however large, one image is never over the cap
    for (const [w, h] of [[16383, 16383], [100_000, 3], [1, 100_000], [8000, 8000]] as const) {
      expect(anthropicImageTokens(w, h)).toBeLessThanOrEqual(1600)
      expect(anthropicImageTokens(w, h)).toBeGreaterThan(0)
    }
  })
})

/**
 * Image files for `llmspell run --image FILE` and `/image FILE` in `llmspell chat`: read, checked
 * against the per-image limit before reading (a stat, not the whole file), and typed by their first
 * bytes (PNG, JPEG, GIF, WebP), not by their names.
 */
import * as Effect from "effect/Effect"
import { readFile, stat } from "node:fs/promises"
import { UsageError } from "../domain/Errors.js"
import { IMAGE_LIMITS, sniffImage } from "../domain/Images.js"
import type { ImageInput, ImageSource } from "../domain/Types.js"

const code = (error: unknown) => (error as NodeJS.ErrnoException).code ?? String(error)

/** The image in a file, or a UsageError naming the file and why (`label`: `--image`, `/image`). */
export const readImageFile = (path: string, label: string): Effect.Effect<ImageInput, UsageError> =>
  Effect.gen(function*() {
    const cannot = (why: string, suggestion = "pass a PNG, JPEG, GIF or WebP file") => new UsageError({ reason: `${label}: ${path}: ${why}`, suggestion })
    const info = yield* Effect.tryPromise({ try: () => stat(path), catch: (e) => cannot(`cannot read it (${code(e)})`) })
    if (!info.isFile()) return yield* cannot("not a file")
    if (info.size > IMAGE_LIMITS.bytes) {
      return yield* cannot(`${info.size} bytes; at most ${IMAGE_LIMITS.bytes / 1024 / 1024} MiB per image`, "shrink the image first")
    }
    const bytes = yield* Effect.tryPromise({ try: () => readFile(path), catch: (e) => cannot(`cannot read it (${code(e)})`) })
    if (bytes.length === 0) return yield* cannot("the file is empty")
    const mediaType = sniffImage(bytes)
    if (mediaType === undefined) return yield* cannot("not a PNG, JPEG, GIF or WebP image")
    return { mediaType, data: bytes.toString("base64") }
  })

/**
 * Several images, checked against the count limit first. An http(s) URL is sent as a `{ url }`
 * image: a server (`--host`) fetches it when it runs with `--allow-image-urls`; this process never does.
 */
export const readImageFiles = (paths: ReadonlyArray<string>, label: string): Effect.Effect<Array<ImageSource>, UsageError> =>
  paths.length > IMAGE_LIMITS.count
    ? Effect.fail(new UsageError({ reason: `${label}: at most ${IMAGE_LIMITS.count} images in one request; got ${paths.length}`, suggestion: "send fewer images" }))
    : Effect.forEach(paths, (p): Effect.Effect<ImageSource, UsageError> => (/^https?:\/\//i.test(p) ? Effect.succeed({ url: p }) : readImageFile(p, label)))

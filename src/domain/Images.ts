/**
 * Images in chat messages: the limits every entry point applies (the library, each API of
 * `llmspell serve`, the CLI), `data:` URLs, base64 checked and measured without decoding twice,
 * and the media type a file's first bytes say it is.
 */
import { sniffImage } from "./ImageSize.js"
import type { ChatMessage, ImageInput, ImageSource } from "./Types.js"

export { sniffImage }

/** At most this many images in one request, and this many decoded bytes in one image. */
export const IMAGE_LIMITS = { count: 16, bytes: 20 * 1024 * 1024 } as const

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** The decoded size of base64 text (whitespace ignored), or undefined when it is not base64. */
export const base64Bytes = (data: string): number | undefined => {
  const text = /\s/.test(data) ? data.replace(/\s+/g, "") : data
  if (!BASE64.test(text) || text.length % 4 === 1) return undefined
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0
  return Math.floor((text.length * 3) / 4) - padding
}


/** The media type of base64 image data, from its first bytes (for Ollama's bare base64 `images`). */
export const sniffBase64 = (data: string): string | undefined =>
  sniffImage(Buffer.from(data.replace(/\s+/g, "").slice(0, 24), "base64"))

/** A `data:image/…;base64,…` URL as an image, or why it is not one. */
export const parseDataUrl = (url: string): ImageInput | string => {
  const match = /^data:(image\/[a-z0-9.+-]+)(?:;[a-z0-9-]+=[^;,]*)*;base64,/i.exec(url)
  if (match === null) {
    return /^https?:\/\//i.test(url)
      ? "image URLs are not fetched by this server; send the image as a data:image/…;base64,… URL"
      : "must be a data:image/…;base64,… URL"
  }
  return { mediaType: match[1]!.toLowerCase(), data: url.slice(match[0].length) }
}

/** What is wrong with one image (`at` names it), or undefined. A URL is checked for its form only (fetching is layers/ImageFetch's). */
export const imageProblem = (image: ImageSource, at: string): string | undefined => {
  if ("url" in image) {
    if (!/^https?:\/\/\S+$/i.test(image.url)) return `${at}: an image url must be an http(s) URL`
    return image.url.length > 8192 ? `${at}: an image url is at most 8192 characters` : undefined
  }
  const bytes = base64Bytes(image.data)
  if (bytes === undefined) return `${at}: the image data is not base64`
  if (bytes === 0) return `${at}: the image is empty`
  if (bytes > IMAGE_LIMITS.bytes) {
    return `${at}: the image is ${bytes} bytes; at most ${IMAGE_LIMITS.bytes} (${IMAGE_LIMITS.bytes / 1024 / 1024} MiB) per image`
  }
  return undefined
}

/**
 * What is wrong with a request's images (over the count, or one too big or not base64), naming
 * the field in the caller's terms: `where(messageIndex, imageIndex)`, and `field` for the count.
 */
export const imagesProblem = (
  messages: ReadonlyArray<ChatMessage>,
  where: (message: number, image: number) => string = (m, i) => `messages[${m}].images[${i}]`,
  field = "messages[].images"
): string | undefined => {
  let count = 0
  for (const [m, message] of messages.entries()) {
    for (const [i, image] of (message.images ?? []).entries()) {
      count++
      if (count > IMAGE_LIMITS.count) return `${field}: at most ${IMAGE_LIMITS.count} images in one request`
      const problem = imageProblem(image, where(m, i))
      if (problem !== undefined) return problem
    }
  }
  return undefined
}

/**
 * A message's images given by their bytes. LocalLLM inlines (or refuses) every `{ url }` image
 * before a request reaches a backend, so a backend maps these only.
 */
export const inlineImages = (images: ReadonlyArray<ImageSource> | undefined): Array<ImageInput> =>
  (images ?? []).flatMap((image) => ("url" in image ? [] : [image]))

/**
 * The first `{ url }` image of a request (`messages.i.images.j`), or undefined: a backend takes
 * images by their bytes, and refuses one that reaches it unfetched rather than drop it (a caller
 * using a backend's handle directly, past LocalLLM's fetching).
 */
export const unfetchedImageUrl = (messages: ReadonlyArray<ChatMessage>): string | undefined => {
  for (const [i, m] of messages.entries()) {
    const j = (m.images ?? []).findIndex((image) => "url" in image)
    if (j >= 0) return `messages.${i}.images.${j}`
  }
  return undefined
}

/** What a backend says of an image URL that reached it unfetched (see `unfetchedImageUrl`). */
export const unfetchedImageReason = (field: string): string =>
  `${field} is a URL, and a backend takes images by their bytes: LocalLLM fetches image URLs when the ImageUrls setting allows`

/** Whether a request carries any image. */
export const hasImages = (messages: ReadonlyArray<ChatMessage>): boolean =>
  messages.some((m) => m.images !== undefined && m.images.length > 0)

/** Why a GGUF model refuses images. */
export const GGUF_NO_VISION = "node-llama-cpp 3.x runs no vision model; use an Ollama or cloud spec"

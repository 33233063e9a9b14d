/**
 * `llmspell serve --allow-image-urls`: the http(s) image URLs of a request in an API's wire shape
 * fetched (layers/ImageFetch: public addresses only unless `--allow-private-image-urls`, the limits,
 * the redirects) and given back as the API's inline form. A request's URLs are fetched together
 * (4 at a time), in order; the first failure stops the others and is a reason naming its field,
 * which the route turns into a 400. A client going away interrupts them all.
 */
import * as Effect from "effect/Effect"
import { IMAGE_LIMITS } from "../domain/Images.js"
import type { ImageInput } from "../domain/Types.js"
import { fetchImages, type ImageFetchOptions, type ImageJob, isHttpUrl } from "../layers/ImageFetch.js"

export { isHttpUrl }

/** How the server fetches: the limits, and `private` for `--allow-private-image-urls`. */
export type ServeImageFetch = ImageFetchOptions & { readonly access?: "public" | "private" | undefined }

/**
 * The images of `jobs`, fetched together, in order, or why one could not be (`field: reason`).
 * `replace` is then given them to build the request back.
 */
export const fetchAll = (jobs: ReadonlyArray<ImageJob>, options: ServeImageFetch = {}): Effect.Effect<Array<ImageInput>, string> =>
  jobs.length === 0
    ? Effect.succeed([])
    : fetchImages(jobs, options).pipe(Effect.mapError((failure) => `${failure.field}: ${failure.reason}`))

/** An image_url part as the wire carries it. */
interface WirePart {
  readonly type: string
  readonly image_url?: string | { readonly url: string; readonly detail?: string | null | undefined } | undefined
}

/**
 * The messages with every http(s) `image_url` part of a user message fetched and replaced by its
 * `data:` URL, or why one could not be (naming the field: `messages.0.content.1.image_url`). At
 * most IMAGE_LIMITS.count URLs are fetched; beyond that the request is refused before any fetch.
 */
export const fetchImageUrls = <M extends { readonly role: string; readonly content?: unknown }>(
  messages: ReadonlyArray<M>,
  options: ServeImageFetch = {}
): Effect.Effect<ReadonlyArray<M>, string> =>
  Effect.gen(function*() {
    const urlOf = (part: WirePart) => typeof part.image_url === "string" ? part.image_url : part.image_url?.url
    const userParts = (m: M) => (m.role === "user" && Array.isArray(m.content) ? m.content as ReadonlyArray<WirePart> : undefined)
    const fetched = (part: WirePart) => {
      const url = part.type === "image_url" ? urlOf(part) : undefined
      return url !== undefined && isHttpUrl(url) ? url : undefined
    }
    let count = 0
    const jobs: Array<ImageJob> = []
    for (const [i, m] of messages.entries()) {
      for (const [j, part] of (userParts(m) ?? []).entries()) {
        if (part.type === "image_url") count++
        const url = fetched(part)
        if (url !== undefined) jobs.push({ url, field: `messages.${i}.content.${j}.image_url` })
      }
    }
    if (count > IMAGE_LIMITS.count) return yield* Effect.fail(`messages[].content image_url parts: at most ${IMAGE_LIMITS.count} images in one request`)
    if (jobs.length === 0) return messages
    const images = yield* fetchAll(jobs, options)
    let next = 0
    return messages.map((m) => {
      const parts = userParts(m)
      if (parts === undefined || !parts.some((part) => fetched(part) !== undefined)) return m
      return {
        ...m,
        content: parts.map((part) => {
          if (fetched(part) === undefined) return part
          const image = images[next++]!
          const dataUrl = `data:${image.mediaType};base64,${image.data}`
          return { ...part, image_url: typeof part.image_url === "string" ? dataUrl : { ...part.image_url, url: dataUrl } }
        })
      }
    })
  })

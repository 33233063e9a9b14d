/**
 * `llmspell serve --allow-image-urls`: an http(s) image URL in a request is fetched by the server
 * and sent on as a `data:` URL. Only http and https; at most IMAGE_LIMITS.bytes read (reading stops
 * past it); a deadline that counts the fetch alone (not the request's wait for a slot); a body that
 * is a PNG, JPEG, GIF or WebP by its Content-Type or its first bytes; a few redirects, each target
 * checked again. Every failure is a reason (a string) the route turns into a 400 naming the field.
 */
import * as Effect from "effect/Effect"
import * as http from "node:http"
import * as https from "node:https"
import { IMAGE_LIMITS, sniffImage } from "../domain/Images.js"
import type { ImageInput } from "../domain/Types.js"

export interface ImageFetchOptions {
  /** Largest body read, in bytes (default IMAGE_LIMITS.bytes). */
  readonly maxBytes?: number
  /** How long one URL's fetch may take, redirects included (default 30 s). */
  readonly timeoutMs?: number
  /** Redirects followed (default 5). */
  readonly maxRedirects?: number
}

export const IMAGE_FETCH_DEFAULTS = { timeoutMs: 30_000, maxRedirects: 5 } as const

const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"])

/** Whether a URL is one this module fetches (http or https). */
export const isHttpUrl = (url: string): boolean => /^https?:\/\//i.test(url)

type Hop = { readonly redirect: string } | { readonly image: ImageInput }

const parseUrl = (url: string): URL | string => {
  try {
    const parsed = new URL(url)
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      return `only http and https image URLs are fetched (got ${parsed.protocol.slice(0, -1)})`
    }
    return parsed
  } catch {
    return "is not a valid URL"
  }
}

/** Where a URL is, without its query or credentials (which may carry secrets). */
const shown = (url: URL) => `${url.protocol}//${url.host}${url.pathname}`

/** One request: the image, or where it redirects, or why not. */
const hop = (url: URL, maxBytes: number): Effect.Effect<Hop, string> =>
  Effect.async<Hop, string>((resume) => {
    let done = false
    const finish = (result: Effect.Effect<Hop, string>) => {
      if (done) return
      done = true
      resume(result)
    }
    const get = url.protocol === "https:" ? https.get : http.get
    const request = get(url, { headers: { accept: "image/png, image/jpeg, image/gif, image/webp" } }, (response) => {
      const status = response.statusCode ?? 0
      if (status >= 300 && status < 400 && status !== 304) {
        const location = response.headers.location
        response.resume()
        request.destroy()
        if (location === undefined) return finish(Effect.fail(`${shown(url)} answered HTTP ${status} without a Location`))
        let target: string
        try {
          target = new URL(location, url).toString()
        } catch {
          return finish(Effect.fail(`${shown(url)} redirects to an invalid URL`))
        }
        return finish(Effect.succeed({ redirect: target }))
      }
      if (status < 200 || status >= 300) {
        request.destroy()
        return finish(Effect.fail(`${shown(url)} answered HTTP ${status}`))
      }
      const declared = (response.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
      const length = Number(response.headers["content-length"])
      if (Number.isFinite(length) && length > maxBytes) {
        request.destroy()
        return finish(Effect.fail(`${shown(url)} is ${length} bytes; at most ${maxBytes} (${maxBytes / 1024 / 1024} MiB) per image`))
      }
      const chunks: Array<Buffer> = []
      let total = 0
      response.on("data", (chunk: Buffer) => {
        if (done) return
        total += chunk.length
        if (total > maxBytes) {
          request.destroy()
          return finish(Effect.fail(`${shown(url)} is over ${maxBytes} bytes (${maxBytes / 1024 / 1024} MiB), the most per image`))
        }
        chunks.push(chunk)
      })
      response.on("end", () => {
        const bytes = Buffer.concat(chunks)
        if (bytes.length === 0) return finish(Effect.fail(`${shown(url)} is empty`))
        const mediaType = sniffImage(bytes) ?? (IMAGE_TYPES.has(declared) ? declared : undefined)
        if (mediaType === undefined) {
          return finish(Effect.fail(
            `${shown(url)} is not a PNG, JPEG, GIF or WebP image (Content-Type ${declared === "" ? "missing" : JSON.stringify(declared)})`
          ))
        }
        finish(Effect.succeed({ image: { mediaType, data: bytes.toString("base64") } }))
      })
      response.on("error", (e) => finish(Effect.fail(`${shown(url)} could not be read: ${e.message}`)))
      response.on("aborted", () => finish(Effect.fail(`${shown(url)} closed the connection before the image was read`)))
    })
    request.on("error", (e) => finish(Effect.fail(`${shown(url)} could not be fetched: ${e.message}`)))
    // interrupted (the deadline, or the client went away): stop reading
    return Effect.sync(() => {
      done = true
      request.destroy()
    })
  })

/** Fetches an http(s) image URL: the image, or why it could not be used. */
export const fetchImage = (url: string, options: ImageFetchOptions = {}): Effect.Effect<ImageInput, string> => {
  const maxBytes = options.maxBytes ?? IMAGE_LIMITS.bytes
  const timeoutMs = options.timeoutMs ?? IMAGE_FETCH_DEFAULTS.timeoutMs
  const maxRedirects = options.maxRedirects ?? IMAGE_FETCH_DEFAULTS.maxRedirects
  const follow = (target: string, redirects: number): Effect.Effect<ImageInput, string> => {
    const parsed = parseUrl(target)
    if (typeof parsed === "string") return Effect.fail(redirects === 0 ? parsed : `a redirect's target ${parsed}`)
    return Effect.flatMap(hop(parsed, maxBytes), (next) => {
      if ("image" in next) return Effect.succeed(next.image)
      if (redirects >= maxRedirects) return Effect.fail(`more than ${maxRedirects} redirects (the last from ${shown(parsed)})`)
      return follow(next.redirect, redirects + 1)
    })
  }
  return follow(url, 0).pipe(
    Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => `the image was not fetched within ${timeoutMs / 1000} s` })
  )
}

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
  options: ImageFetchOptions = {}
): Effect.Effect<ReadonlyArray<M>, string> =>
  Effect.gen(function*() {
    const urlOf = (part: WirePart) => typeof part.image_url === "string" ? part.image_url : part.image_url?.url
    let count = 0
    for (const m of messages) {
      if (m.role !== "user" || !Array.isArray(m.content)) continue
      for (const part of m.content as ReadonlyArray<WirePart>) {
        if (part.type === "image_url") count++
      }
    }
    if (count > IMAGE_LIMITS.count) return yield* Effect.fail(`messages[].content image_url parts: at most ${IMAGE_LIMITS.count} images in one request`)
    const out: Array<M> = []
    for (const [i, m] of messages.entries()) {
      if (m.role !== "user" || !Array.isArray(m.content)) {
        out.push(m)
        continue
      }
      const parts: Array<WirePart> = []
      for (const [j, part] of (m.content as ReadonlyArray<WirePart>).entries()) {
        const url = part.type === "image_url" ? urlOf(part) : undefined
        if (url === undefined || !isHttpUrl(url)) {
          parts.push(part)
          continue
        }
        const image = yield* fetchImage(url, options).pipe(Effect.mapError((why) => `messages.${i}.content.${j}.image_url: ${why}`))
        const dataUrl = `data:${image.mediaType};base64,${image.data}`
        parts.push({ ...part, image_url: typeof part.image_url === "string" ? dataUrl : { ...part.image_url, url: dataUrl } })
      }
      out.push({ ...m, content: parts })
    }
    return out
  })

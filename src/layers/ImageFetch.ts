/**
 * Fetching http(s) image URLs, for the library (`ChatMessage.images` entries `{ url }`, the
 * @effect/ai adapter's URL file parts) and for `llmspell serve --allow-image-urls` alike. Never by
 * default: the `ImageUrls` setting says whether URLs are fetched at all (`off`, the default), from
 * public addresses only (`public`) or from any address (`private`, for trusted networks).
 *
 * Each URL: only http and https; at most IMAGE_LIMITS.bytes read (reading stops past it); a deadline
 * that counts the fetch alone; a body that is a PNG, JPEG, GIF or WebP by its first bytes or its
 * Content-Type; a few redirects, each target checked again. With `public`, the host is resolved
 * here and every address is classified (domain/Addresses): loopback, private, link-local (the cloud
 * metadata service at 169.254.169.254), unspecified, multicast, CGNAT and reserved addresses, and
 * IPv6 forms of them, are refused; the connection goes to the address that was checked (a `lookup`
 * of our own on the request), so a name cannot resolve to a public address for the check and a
 * private one for the connection. A request's URLs are fetched together (4 at a time by default),
 * in order; the first failure interrupts the others. Messages show a URL only through `redactUrl`
 * and never the address a name resolved to.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as dns from "node:dns"
import * as http from "node:http"
import * as https from "node:https"
import type { LookupFunction } from "node:net"
import { type AddressClass, classifyAddress } from "../domain/Addresses.js"
import { InvalidRequest } from "../domain/Errors.js"
import { IMAGE_LIMITS, sniffImage } from "../domain/Images.js"
import { redactUrl } from "../domain/ServerUrl.js"
import type { ChatMessage, GenerateRequest, ImageInput } from "../domain/Types.js"

/** Whether image URLs are fetched: not at all, from public addresses only, or from any address. */
export type ImageUrlAccess = "off" | "public" | "private"

/** One address a host name resolved to, and its class. */
export interface ResolvedAddress {
  readonly address: string
  readonly family: 4 | 6
  readonly class: AddressClass
}

export interface ImageFetchOptions {
  /** Largest body read, in bytes (default IMAGE_LIMITS.bytes). */
  readonly maxBytes?: number | undefined
  /** How long one URL's fetch may take, redirects included (default 30 s). */
  readonly timeoutMs?: number | undefined
  /** Redirects followed (default 5). */
  readonly maxRedirects?: number | undefined
  /** URLs of one request fetched at once (default 4). */
  readonly concurrency?: number | undefined
  /**
   * Resolves a host name to its addresses and their classes (default: the system resolver and
   * `classifyAddress`). For tests that need a name standing for a public address; the policy is
   * applied to what it returns.
   */
  readonly resolve?: ((hostname: string) => Promise<ReadonlyArray<ResolvedAddress>>) | undefined
}

/** The `ImageUrls` setting: whether and where image URLs are fetched, with the fetch's limits. */
export interface ImageUrlPolicy extends ImageFetchOptions {
  readonly access: ImageUrlAccess
  /**
   * What a refusal (`access: "off"`) says the caller can do; default: the library setting. The
   * server says what its operator can do.
   */
  readonly enableWith?: string | undefined
}

/**
 * Whether LocalLLM fetches the image URLs of a request: read by each `generate`/`run` from the
 * calling fiber's context, `off` unless provided. `Effect.provideService(program, ImageUrls,
 * { access: "public" })` (or `Layer.succeed(ImageUrls, …)` beside LlmspellLive) turns it on.
 * Over the protocol (a LocalLLM connected to `llmspell serve`) the URLs travel to the server,
 * which applies its own setting (`--allow-image-urls`).
 */
export class ImageUrls extends Context.Reference<ImageUrls>()("llmspell/ImageUrls", {
  defaultValue: (): ImageUrlPolicy => ({ access: "off" })
}) {}

export const IMAGE_FETCH_DEFAULTS = { timeoutMs: 30_000, maxRedirects: 5, concurrency: 4 } as const

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

/** Where a URL is, without its credentials or secret-looking parameters. */
const shown = (url: URL) => redactUrl(`${url.protocol}//${url.host}${url.pathname}${url.search}`)

const article = (c: AddressClass) => (/^[aeiou]/.test(c) ? "an" : "a")
const refusal = (url: URL, c: AddressClass, named: boolean) =>
  `${shown(url)} ${named ? "resolves to" : "is"} ${article(c)} ${c} address; image URLs are fetched from public addresses only`

/** A refusal of our lookup, told apart from a network error. */
class AddressRefused extends Error {
  constructor(readonly addressClass: AddressClass) {
    super(`refused: ${addressClass} address`)
  }
}

const systemResolve = (hostname: string): Promise<ReadonlyArray<ResolvedAddress>> =>
  dns.promises.lookup(hostname, { all: true, verbatim: true }).then((all) =>
    all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 as const : 4 as const, class: classifyAddress(a.address) ?? "reserved" }))
  )

/**
 * A `lookup` for node:http that resolves the name once, keeps only the addresses the access
 * allows, and hands those to the connection: what was checked is what is connected to.
 */
const pinnedLookup = (access: "public" | "private", resolve: (hostname: string) => Promise<ReadonlyArray<ResolvedAddress>>): LookupFunction =>
  ((hostname: string, options: dns.LookupOptions, callback: (...args: Array<unknown>) => void) => {
    resolve(hostname).then(
      (addresses) => {
        const family = typeof options.family === "number" && options.family !== 0 ? options.family : undefined
        const fitting = addresses.filter((a) => family === undefined || a.family === family)
        const allowed = access === "private" ? fitting : fitting.filter((a) => a.class === "public")
        if (allowed.length === 0) {
          const first = fitting[0]
          if (first !== undefined) return callback(new AddressRefused(first.class))
          const e = Object.assign(new Error(`no address found for ${hostname}`), { code: "ENOTFOUND" })
          return callback(e)
        }
        if (options.all === true) return callback(null, allowed.map((a) => ({ address: a.address, family: a.family })))
        callback(null, allowed[0]!.address, allowed[0]!.family)
      },
      (e: unknown) => callback(e)
    )
  }) as LookupFunction

/** One request: the image, or where it redirects, or why not. */
const hop = (url: URL, access: "public" | "private", options: ImageFetchOptions): Effect.Effect<Hop, string> => {
  const literal = classifyAddress(url.hostname)
  if (literal !== undefined && access === "public" && literal !== "public") return Effect.fail(refusal(url, literal, false))
  const maxBytes = options.maxBytes ?? IMAGE_LIMITS.bytes
  return Effect.async<Hop, string>((resume) => {
    let done = false
    const finish = (result: Effect.Effect<Hop, string>) => {
      if (done) return
      done = true
      resume(result)
    }
    const get = url.protocol === "https:" ? https.get : http.get
    const request = get(url, {
      headers: { accept: "image/png, image/jpeg, image/gif, image/webp" },
      // no keep-alive agent: a pooled socket would skip the lookup of the next request
      agent: false,
      lookup: pinnedLookup(access, options.resolve ?? systemResolve)
    }, (response) => {
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
    request.on("error", (e) =>
      finish(Effect.fail(
        e instanceof AddressRefused ? refusal(url, e.addressClass, true) : `${shown(url)} could not be fetched: ${e.message}`
      )))
    // interrupted (the deadline, another URL's failure, or the client went away): stop reading
    return Effect.sync(() => {
      done = true
      request.destroy()
    })
  })
}

/**
 * Fetches an http(s) image URL from where `access` allows (`public`, the default, or `private`):
 * the image, or why it could not be used.
 */
export const fetchImage = (
  url: string,
  options: ImageFetchOptions & { readonly access?: "public" | "private" | undefined } = {}
): Effect.Effect<ImageInput, string> => {
  const access = options.access ?? "public"
  const timeoutMs = options.timeoutMs ?? IMAGE_FETCH_DEFAULTS.timeoutMs
  const maxRedirects = options.maxRedirects ?? IMAGE_FETCH_DEFAULTS.maxRedirects
  const follow = (target: string, redirects: number): Effect.Effect<ImageInput, string> => {
    const parsed = parseUrl(target)
    if (typeof parsed === "string") return Effect.fail(redirects === 0 ? parsed : `a redirect's target ${parsed}`)
    return Effect.flatMap(hop(parsed, access, options), (next) => {
      if ("image" in next) return Effect.succeed(next.image)
      if (redirects >= maxRedirects) return Effect.fail(`more than ${maxRedirects} redirects (the last from ${shown(parsed)})`)
      return follow(next.redirect, redirects + 1)
    })
  }
  // a race rather than Effect.timeoutFail: interrupted from outside (another URL of the request
  // failed), a timeoutFail here waited for its deadline before the fetch was stopped
  return Effect.raceFirst(
    follow(url, 0),
    Effect.fail(`the image was not fetched within ${timeoutMs / 1000} s`).pipe(Effect.delay(timeoutMs))
  )
}

/** One URL of a request to fetch, and the request field it came from. */
export interface ImageJob {
  readonly url: string
  readonly field: string
}

/** Why a request's image URL could not be used, and its field. */
export interface ImageFetchFailure {
  readonly field: string
  readonly reason: string
}

/**
 * Fetches a request's image URLs together (`concurrency` at a time, default 4), the images in the
 * jobs' order; the first failure interrupts the fetches still running and is the answer.
 */
export const fetchImages = (
  jobs: ReadonlyArray<ImageJob>,
  options: ImageFetchOptions & { readonly access?: "public" | "private" | undefined } = {}
): Effect.Effect<Array<ImageInput>, ImageFetchFailure> =>
  Effect.forEach(
    jobs,
    (job) => fetchImage(job.url, options).pipe(Effect.mapError((reason): ImageFetchFailure => ({ field: job.field, reason }))),
    { concurrency: Math.max(1, options.concurrency ?? IMAGE_FETCH_DEFAULTS.concurrency) }
  )

const ALLOWED_IMAGE = "an image given as { mediaType, data } (base64 bytes)"

/**
 * The request with every `{ url }` image of its messages fetched and inlined, as the `ImageUrls`
 * setting in context allows; off (the default), a URL image is an InvalidRequest naming its field.
 * A request without URL images is returned as it is, with nothing read.
 */
export const inlineImageUrls = (request: GenerateRequest): Effect.Effect<GenerateRequest, InvalidRequest> =>
  Effect.gen(function*() {
    const jobs: Array<ImageJob> = []
    for (const [i, message] of request.messages.entries()) {
      for (const [j, image] of (message.images ?? []).entries()) {
        if ("url" in image) jobs.push({ url: image.url, field: `messages.${i}.images.${j}` })
      }
    }
    if (jobs.length === 0) return request
    const policy = yield* ImageUrls
    if (policy.access === "off") {
      return yield* new InvalidRequest({
        field: jobs[0]!.field,
        allowed: `${ALLOWED_IMAGE}; an http(s) image URL is fetched only when ${
          policy.enableWith ?? "the ImageUrls setting allows it (access \"public\", or \"private\" for trusted networks)"
        }`,
        value: "an image URL"
      })
    }
    const fetched = yield* fetchImages(jobs, { ...policy, access: policy.access }).pipe(
      Effect.mapError((failure) =>
        new InvalidRequest({
          field: failure.field,
          allowed: `${ALLOWED_IMAGE}, or the URL of a PNG, JPEG, GIF or WebP image that can be fetched${
            policy.access === "public" ? " from a public address" : ""
          }`,
          value: failure.reason
        })
      )
    )
    let next = 0
    const messages = request.messages.map((message): ChatMessage =>
      message.images === undefined || !message.images.some((image) => "url" in image)
        ? message
        : { ...message, images: message.images.map((image) => ("url" in image ? fetched[next++]! : image)) }
    )
    return { ...request, messages }
  })

/**
 * The web page's files, as `llmspell serve` answers them: `GET /` from a browser (its `Accept`
 * names `text/html`) gets the page, `/ui/<file>` its scripts and styles; every other request
 * (Ollama clients probing `/` included) goes on to the routes. The server never imports the page's
 * code: `npm run build` bundles it into `dist/ui/` (scripts/uiBuild.mjs) and this module reads
 * those files once, at start, into memory — a fixed set of names, so no request path reaches the
 * file system.
 *
 * The page and its files hold no data, so they are answered before the API-key check (the page
 * then asks for the key and sends it as a bearer header); the Host and Origin checks still come
 * first. Every answer carries a strict Content-Security-Policy (scripts and styles from this
 * origin only, no inline script or style, no frames, requests only to this origin), `nosniff` and
 * `no-referrer`. The page (`index.html`) is revalidated on every load (`no-cache` + ETag); the
 * other files have a content hash in their names and are cached for a year as immutable.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { extname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"

/** The policy of every page answer: nothing inline, nothing from elsewhere, no frames. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // attached images are previewed from data: URLs; exported transcripts are saved through blob: URLs
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8"
}

/** The path prefix of the page's files (and `/ui/api/` of its JSON routes, which are not files). */
export const ASSET_PREFIX = "/ui/"

interface Asset {
  readonly body: Uint8Array
  /** The gzip of a text file worth compressing. */
  readonly gzip: Uint8Array | undefined
  readonly contentType: string
  readonly etag: string
  readonly cacheControl: string
}

/** The built page in memory. */
export interface UiPage {
  /** Where the files were read from. */
  readonly directory: string
  /** The answer to a request for the page or one of its files; none for any other request. */
  readonly answer: (request: HttpServerRequest.HttpServerRequest) => Option.Option<HttpServerResponse.HttpServerResponse>
}

/**
 * Where `npm run build` put the page, seen from this module: next to the CLI bundle (dist/cli.js →
 * dist/ui), from the library build (dist/lib/serve → dist/ui) or from the sources (src/serve →
 * dist/ui, for tests).
 */
export const defaultDirectory = (): string | undefined =>
  ["./ui/", "../../ui/", "../../dist/ui/"]
    .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
    .find((dir) => existsSync(join(dir, "index.html")))

const asset = (name: string, body: Uint8Array): Asset => {
  const contentType = CONTENT_TYPES[extname(name).toLowerCase()] ?? "application/octet-stream"
  const compressible = /^(text\/|application\/json|image\/svg)/.test(contentType) && body.length > 512
  return {
    body,
    gzip: compressible ? gzipSync(body, { level: 9 }) : undefined,
    contentType,
    etag: `"${createHash("sha256").update(body).digest("hex").slice(0, 24)}"`,
    cacheControl: name === "index.html" ? "no-cache" : "public, max-age=31536000, immutable"
  }
}

/** True when a request's `Accept` asks for HTML: what a browser's navigation sends, and no API client does. */
export const wantsHtml = (accept: string | undefined): boolean => accept !== undefined && /(^|[,\s])text\/html\b/i.test(accept)

/**
 * Reads the built page from `directory` (default: `defaultDirectory()`); none when it is not there
 * (a checkout that was not built): the server then runs without it.
 */
export const load = (directory: string | undefined = defaultDirectory()): Effect.Effect<Option.Option<UiPage>> =>
  Effect.sync(() => {
    if (directory === undefined || !existsSync(join(directory, "index.html"))) return Option.none()
    const files = new Map<string, Asset>()
    for (const name of readdirSync(directory)) {
      const path = join(directory, name)
      if (statSync(path).isFile()) files.set(name, asset(name, readFileSync(path)))
    }
    return Option.some(make(directory, files))
  })

const make = (directory: string, files: ReadonlyMap<string, Asset>): UiPage => {
  const index = files.get("index.html")!
  const send = (request: HttpServerRequest.HttpServerRequest, file: Asset, vary: string) => {
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      "cache-control": file.cacheControl,
      etag: file.etag,
      vary
    }
    if (request.headers["if-none-match"]?.split(/\s*,\s*/).includes(file.etag)) {
      return HttpServerResponse.empty({ status: 304, headers })
    }
    const gzip = file.gzip !== undefined && /\bgzip\b/i.test(request.headers["accept-encoding"] ?? "")
    return HttpServerResponse.uint8Array(gzip ? file.gzip! : file.body, {
      status: 200,
      contentType: file.contentType,
      headers: gzip ? { ...headers, "content-encoding": "gzip" } : headers
    })
  }
  const notFound = (path: string) =>
    HttpServerResponse.text(`no file ${path} in the web page`, { status: 404, headers: { ...SECURITY_HEADERS, "cache-control": "no-cache" } })

  return {
    directory,
    answer: (request) => {
      if (request.method !== "GET" && request.method !== "HEAD") return Option.none()
      const path = new URL(request.url, "http://x").pathname
      // `/` answers Ollama's "Ollama is running" to every client but a browser; the answer varies by Accept
      if (path === "/") return wantsHtml(request.headers["accept"]) ? Option.some(send(request, index, "Accept, Accept-Encoding")) : Option.none()
      if (!path.startsWith(ASSET_PREFIX) || path.startsWith(`${ASSET_PREFIX}api/`)) return Option.none()
      const file = files.get(path.slice(ASSET_PREFIX.length))
      return Option.some(file === undefined || path.slice(ASSET_PREFIX.length) === "index.html" ? notFound(path) : send(request, file, "Accept-Encoding"))
    }
  }
}

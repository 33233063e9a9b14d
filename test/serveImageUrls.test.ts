/**
 * `llmspell serve --allow-image-urls` with the real `openai` client (as
 * `--allow-private-image-urls`, ServeOptions.allowPrivateImageUrls: the image server is on
 * 127.0.0.1, which the public-only default refuses; test/imageUrls.test.ts tests that):
 * an http(s) `image_url` is fetched by the server from a local image server on 127.0.0.1 and its
 * bytes reach the fake Ollama as bare base64; an oversize body (declared, or streamed without a
 * length), a body that is not an image, a stalled body past the fetch deadline, a redirect loop, a
 * redirect to a non-http target and an HTTP error are each a 400 naming the part and why. A slow
 * body released by the test arrives whole, and other requests go on meanwhile. Without the option
 * the URL is refused, naming data: URLs and no CLI option.
 */
import * as http from "node:http"
import { mkdtempSync, rmSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Anthropic from "@anthropic-ai/sdk"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { IMAGE_LIMITS } from "../src/domain/Images.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"

const VISION = "llava@ollama"
const png = (n: number) => Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, n, n + 1, n + 2, 0, 255])
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")

const deferred = <A = void>() => {
  let resolve!: (a: A) => void
  const promise = new Promise<A>((r) => (resolve = r))
  return { promise, resolve }
}

/** The local image server and what it saw. */
const state = {
  slowArrived: deferred(),
  slowRelease: deferred(),
  bigWritten: 0,
  bigClosed: deferred<number>(),
  stallClosed: deferred(),
  hangArrived: deferred(),
  hangClosed: deferred(),
  loopHits: 0
}
const BIG_CAP = 4 * IMAGE_LIMITS.bytes

const images = http.createServer((req, res) => {
  const path = req.url ?? "/"
  switch (path) {
    case "/cat.png":
      res.writeHead(200, { "content-type": "image/png" }).end(png(1))
      return
    case "/octet":
      res.writeHead(200, { "content-type": "application/octet-stream" }).end(png(2))
      return
    case "/page.html":
      res.writeHead(200, { "content-type": "text/html" }).end("<html><body>not an image</body></html>")
      return
    case "/declared-big":
      res.writeHead(200, { "content-type": "image/png", "content-length": String(IMAGE_LIMITS.bytes + 1) })
      res.write(png(3))
      return
    case "/big": {
      // no Content-Length: the server must stop reading once past the limit
      res.writeHead(200, { "content-type": "image/png" })
      const chunk = Buffer.alloc(1024 * 1024, 7)
      png(4).copy(chunk)
      res.on("close", () => state.bigClosed.resolve(state.bigWritten))
      const pump = () => {
        while (!res.destroyed && state.bigWritten < BIG_CAP) {
          state.bigWritten += chunk.length
          if (!res.write(chunk)) return void res.once("drain", pump)
        }
        if (!res.destroyed) res.end()
      }
      pump()
      return
    }
    case "/slow.png": {
      res.writeHead(200, { "content-type": "image/png" })
      const bytes = png(5)
      res.write(bytes.subarray(0, 4))
      state.slowArrived.resolve()
      void state.slowRelease.promise.then(() => res.end(bytes.subarray(4)))
      return
    }
    case "/stall.png":
      res.writeHead(200, { "content-type": "image/png" })
      res.write(png(6).subarray(0, 4))
      res.on("close", () => state.stallClosed.resolve())
      return
    case "/hang.png":
      res.writeHead(200, { "content-type": "image/png" })
      res.write(png(7).subarray(0, 4))
      res.on("close", () => state.hangClosed.resolve())
      state.hangArrived.resolve()
      return
    case "/loop":
      state.loopHits++
      res.writeHead(302, { location: "/loop" }).end()
      return
    case "/hop":
      res.writeHead(301, { location: "/cat.png" }).end()
      return
    case "/to-file":
      res.writeHead(302, { location: "file:///etc/passwd" }).end()
      return
    default:
      res.writeHead(404, { "content-type": "text/plain" }).end("no such image")
  }
})

let dir: string
let ollamaFake: FakeOllama
let allowed: ServeHarness
let quick: ServeHarness
let refusing: ServeHarness
let base: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-image-urls-"))
  await new Promise<void>((resolve) => images.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(images.address() as AddressInfo).port}`
  ollamaFake = await startFakeOllama({ models: [fakeModel("llava", { capabilities: ["completion", "vision", "tools"] })] })
  // a fetch deadline longer than any test's: only a client going away can end the /hang.png fetch in time
  allowed = await startServe({ dir: join(dir, "a"), ollamaUrl: ollamaFake.url }, { allowPrivateImageUrls: true, imageUrlTimeoutMs: 600_000 })
  // a short fetch deadline, only for the body that never comes
  quick = await startServe({ dir: join(dir, "b"), ollamaUrl: ollamaFake.url }, { allowPrivateImageUrls: true, imageUrlTimeoutMs: 300 })
  refusing = await startServe({ dir: join(dir, "c"), ollamaUrl: ollamaFake.url })
})

afterAll(async () => {
  state.slowRelease.resolve()
  await Promise.all([allowed?.close(), quick?.close(), refusing?.close()])
  await ollamaFake?.close()
  images.closeAllConnections()
  await new Promise((resolve) => images.close(resolve))
  rmSync(dir, { recursive: true, force: true })
})

const ask = (serve: ServeHarness, url: string) =>
  new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 }).chat.completions.create({
    model: VISION,
    messages: [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url } }] }]
  })

const failure = async (p: Promise<unknown>) => {
  try {
    await p
  } catch (e) {
    return { status: (e as { status?: number }).status, message: (e as Error).message }
  }
  throw new Error("expected a failure")
}

/** The images of the fake Ollama's /api/chat requests since `from`. */
const chatImages = (from: number) =>
  ollamaFake.requests.slice(from)
    .filter((r) => r.path === "/api/chat")
    .map((r) => (r.body as { messages: Array<{ images?: Array<string> }> }).messages.at(-1)!.images)

describe("serve --allow-image-urls", () => {
  it("fetches an http image URL and sends its bytes to Ollama as base64", async () => {
    const from = ollamaFake.requests.length
    const reply = await ask(allowed, `${base}/cat.png`)
    expect(reply.choices[0]!.message.role).toBe("assistant")
    expect(chatImages(from)).toEqual([[b64(png(1))]])
  })

  it("takes an image by its bytes when the Content-Type does not say, and follows a redirect", async () => {
    const from = ollamaFake.requests.length
    await ask(allowed, `${base}/octet`)
    await ask(allowed, `${base}/hop`)
    expect(chatImages(from)).toEqual([[b64(png(2))], [b64(png(1))]])
  })

  it("refuses a body that is not an image, naming the part and the Content-Type", async () => {
    const from = ollamaFake.requests.length
    const e = await failure(ask(allowed, `${base}/page.html`))
    expect(e.status).toBe(400)
    expect(e.message).toContain("messages.0.content.1.image_url")
    expect(e.message).toContain("text/html")
    expect(chatImages(from)).toEqual([])
  })

  it("refuses an image over the limit, declared or streamed, and stops reading", async () => {
    const declared = await failure(ask(allowed, `${base}/declared-big`))
    expect(declared.status).toBe(400)
    expect(declared.message).toContain("messages.0.content.1.image_url")
    expect(declared.message).toContain(String(IMAGE_LIMITS.bytes))

    const streamed = await failure(ask(allowed, `${base}/big`))
    expect(streamed.status).toBe(400)
    expect(streamed.message).toContain("messages.0.content.1.image_url")
    expect(streamed.message).toMatch(/over \d+ bytes/)
    // the server hung up long before the image server had sent all it would
    expect(await state.bigClosed.promise).toBeLessThan(BIG_CAP)
  })

  it("follows redirects a few times at most, and re-checks each target", async () => {
    const loop = await failure(ask(allowed, `${base}/loop`))
    expect(loop.status).toBe(400)
    expect(loop.message).toContain("messages.0.content.1.image_url")
    expect(loop.message).toContain("redirects")
    expect(state.loopHits).toBe(6)

    const file = await failure(ask(allowed, `${base}/to-file`))
    expect(file.status).toBe(400)
    expect(file.message).toContain("only http and https")

    const missing = await failure(ask(allowed, `${base}/missing.png`))
    expect(missing.status).toBe(400)
    expect(missing.message).toContain("HTTP 404")
  })

  it("waits for a slow body without holding up other requests", async () => {
    const from = ollamaFake.requests.length
    const slow = ask(allowed, `${base}/slow.png`)
    await state.slowArrived.promise
    // another request goes through while the slow image is still being read
    await ask(allowed, `data:image/png;base64,${b64(png(9))}`)
    expect(chatImages(from)).toEqual([[b64(png(9))]])
    state.slowRelease.resolve()
    await slow
    expect(chatImages(from)).toEqual([[b64(png(9))], [b64(png(5))]])
  })

  it("refuses more image URLs than the limit before fetching any", async () => {
    const hits = state.loopHits
    const e = await failure(
      new OpenAI({ baseURL: `${allowed.url}/v1`, apiKey: "none", maxRetries: 0 }).chat.completions.create({
        model: VISION,
        messages: [{
          role: "user",
          content: Array.from({ length: IMAGE_LIMITS.count + 1 }, () => ({ type: "image_url" as const, image_url: { url: `${base}/loop` } }))
        }]
      })
    )
    expect(e.status).toBe(400)
    expect(e.message).toContain(`at most ${IMAGE_LIMITS.count} images`)
    expect(state.loopHits).toBe(hits)
  })

  it("stops the fetch when the client goes away", async () => {
    const controller = new AbortController()
    const asked = new OpenAI({ baseURL: `${allowed.url}/v1`, apiKey: "none", maxRetries: 0 }).chat.completions.create(
      { model: VISION, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: `${base}/hang.png` } }] }] },
      { signal: controller.signal }
    )
    await state.hangArrived.promise
    controller.abort()
    await expect(asked).rejects.toThrow()
    // the deadline is 10 minutes: the image server's connection closes because the client left
    await state.hangClosed.promise
  })

  it("gives up on a body that stalls past the fetch deadline, with a 400, and hangs up", async () => {
    const e = await failure(ask(quick, `${base}/stall.png`))
    expect(e.status).toBe(400)
    expect(e.message).toContain("messages.0.content.1.image_url")
    expect(e.message).toContain("not fetched within")
    await state.stallClosed.promise
  })
})

describe("serve --allow-image-urls on /v1/responses", () => {
  const respond = (serve: ServeHarness, url: string) =>
    new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 }).responses.create({
      model: VISION,
      input: [{
        role: "user",
        content: [{ type: "input_text", text: "what is it?" }, { type: "input_image", image_url: url, detail: "auto" }]
      }]
    })

  it("fetches an input_image URL and sends its bytes to Ollama; a failure names the part", async () => {
    const from = ollamaFake.requests.length
    await respond(allowed, `${base}/hop`)
    expect(chatImages(from)).toEqual([[b64(png(1))]])
    const e = await failure(respond(allowed, `${base}/page.html`))
    expect(e.status).toBe(400)
    expect(e.message).toContain("input.0.content.1.image_url")
    expect(e.message).toContain("text/html")
    const refused = await failure(respond(refusing, `${base}/cat.png`))
    expect(refused.status).toBe(400)
    expect(refused.message).toContain("image URLs are not fetched by this server")
    expect(chatImages(from)).toEqual([[b64(png(1))]])
  })

  it("refuses more images than the limit before fetching any", async () => {
    const hits = state.loopHits
    const parts = Array.from({ length: IMAGE_LIMITS.count + 1 }, () => ({ type: "input_image" as const, image_url: `${base}/loop`, detail: "auto" as const }))
    const e = await failure(
      new OpenAI({ baseURL: `${allowed.url}/v1`, apiKey: "none", maxRetries: 0 }).responses.create({ model: VISION, input: [{ role: "user", content: parts }] })
    )
    expect(e.status).toBe(400)
    expect(e.message).toContain(`at most ${IMAGE_LIMITS.count} images`)
    expect(state.loopHits).toBe(hits)
  })
})

describe("serve --allow-image-urls on /v1/messages (Anthropic url image sources)", () => {
  const message = (serve: ServeHarness, url: string) =>
    new Anthropic({ baseURL: serve.url, apiKey: "none", maxRetries: 0 }).messages.create({
      model: VISION,
      max_tokens: 16,
      messages: [{ role: "user", content: [{ type: "text", text: "what is it?" }, { type: "image", source: { type: "url", url } }] }]
    })

  it("fetches a url source and sends its bytes to Ollama; a failure names the block; off, it is refused", async () => {
    const from = ollamaFake.requests.length
    await message(allowed, `${base}/octet`)
    expect(chatImages(from)).toEqual([[b64(png(2))]])
    const e = await failure(message(allowed, `${base}/declared-big`))
    expect(e.status).toBe(400)
    expect(e.message).toContain("messages.0.content.1.source.url")
    expect(e.message).toContain(String(IMAGE_LIMITS.bytes))
    const refused = await failure(message(refusing, `${base}/cat.png`))
    expect(refused.status).toBe(400)
    expect(refused.message).toContain("image URLs are not fetched by this server")
    expect(refused.message).not.toContain("--")
    expect(chatImages(from)).toEqual([[b64(png(2))]])
  })
})

describe("without --allow-image-urls", () => {
  it("refuses an http image URL, naming data: URLs and no CLI option, and fetches nothing", async () => {
    const from = ollamaFake.requests.length
    const hits = state.loopHits
    const e = await failure(ask(refusing, `${base}/loop`))
    expect(e.status).toBe(400)
    expect(e.message).toContain("image URLs are not fetched by this server")
    expect(e.message).toContain("data:")
    expect(e.message).not.toContain("--")
    expect(state.loopHits).toBe(hits)
    expect(chatImages(from)).toEqual([])
  })
})

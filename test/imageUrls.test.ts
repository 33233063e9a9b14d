/**
 * Image URLs for library callers and their SSRF guard (layers/ImageFetch, domain/Addresses):
 * - the address classifier as a pure function (IPv4, IPv6, mapped and embedded forms);
 * - the default (`public`) fetch refusing 127.0.0.1, [::1], `localhost`, 169.254.169.254 and a
 *   redirect from an allowed host to a refused one, naming the address class and no credentials;
 *   a name the test's resolver calls public is connected to at the address it gave (the name
 *   itself does not resolve: only the pinned lookup can reach the server);
 * - a request's URLs fetched together (the image server holds every answer until all are in
 *   flight), the images in order; one failure interrupting the others (their connections close);
 * - LocalLLM: a `{ url }` image refused by default (InvalidRequest naming the field), fetched with
 *   the ImageUrls setting, and the @effect/ai adapter's URL parts the same; the Promise facade's
 *   `imageUrls`; over the protocol the server's setting, not the client's.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Prompt from "@effect/ai/Prompt"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { classifyAddress } from "../src/domain/Addresses.js"
import { InvalidRequest, UnsupportedOperation } from "../src/domain/Errors.js"
import { fetchImage, fetchImages, ImageUrls, type ResolvedAddress } from "../src/layers/ImageFetch.js"
import * as LanguageModelAdapter from "../src/layers/LanguageModelAdapter.js"
import * as LlmspellRemote from "../src/layers/LlmspellRemote.js"
import { createLocalLLM } from "../src/promise.js"
import type { GenerateRequest } from "../src/domain/Types.js"
import { LocalLLM, type LocalLLMService } from "../src/services/LocalLLM.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, stackConfig, startServe } from "./fixtures/serveHarness.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const VISION = "llava@ollama"
const png = (n: number) => Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, n, n + 1, 0, 255])
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")

const deferred = <A = void>() => {
  let resolve!: (a: A) => void
  const promise = new Promise<A>((r) => (resolve = r))
  return { promise, resolve }
}

describe("classifyAddress", () => {
  it.each([
    ["8.8.8.8", "public"],
    ["172.32.0.1", "public"],
    ["100.128.0.1", "public"],
    ["2606:4700:4700::1111", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.1.2", "loopback"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["[::ffff:169.254.169.254]", "link-local"],
    ["64:ff9b::7f00:1", "loopback"],
    ["2002:7f00:1::", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["ff02::1", "multicast"],
    ["100.64.0.1", "shared (CGNAT)"],
    ["100.127.255.255", "shared (CGNAT)"],
    ["255.255.255.255", "reserved"]
  ])("%s is %s", (address, expected) => {
    expect(classifyAddress(address)).toBe(expected)
  })

  it.each(["example.com", "localhost", "1.2.3", "1.2.3.256", "01.2.3.4", "1::2::3", "12345::", "::ffff:1.2.3", ""])(
    "%s is not an address",
    (text) => expect(classifyAddress(text)).toBeUndefined()
  )
})

/** The image server: what it was asked, and answers held until the test lets them go. */
const seen: Array<string> = []
let held: { wanted: number; arrived: Array<{ n: number; send: () => void }>; all: { promise: Promise<void>; resolve: (a: void) => void } } | undefined
const closed = new Map<string, { promise: Promise<void>; resolve: (a: void) => void }>()
const closedOf = (path: string) => {
  if (!closed.has(path)) closed.set(path, deferred<void>())
  return closed.get(path)!
}
let base: string
let port: number

const images = http.createServer((req, res) => {
  const path = req.url ?? "/"
  seen.push(path)
  res.on("close", () => closedOf(path).resolve())
  const held_ = /^\/held\/(\d+)\.png$/.exec(path)
  if (held_ !== null && held !== undefined) {
    // every answer waits until `wanted` requests are here at once: only concurrent fetches finish
    const h = held
    h.arrived.push({ n: Number(held_[1]), send: () => void res.writeHead(200, { "content-type": "image/png" }).end(png(Number(held_[1]))) })
    if (h.arrived.length === h.wanted) {
      // answer in reverse order of arrival: the images still come back in the request's order
      for (const a of [...h.arrived].reverse()) a.send()
      h.all.resolve()
    }
    return
  }
  if (path.startsWith("/hang/")) {
    res.writeHead(200, { "content-type": "image/png" })
    res.write(png(0).subarray(0, 4))
    if (held !== undefined) {
      held.arrived.push({ n: -1, send: () => {} })
      if (held.arrived.length === held.wanted) held.all.resolve()
    }
    return
  }
  if (path === "/fail-after-hangs") {
    // a 404, but only once the hanging fetches are in flight
    void held!.all.promise.then(() => res.writeHead(404).end("no"))
    return
  }
  if (path.startsWith("/cat.png")) return void res.writeHead(200, { "content-type": "image/png" }).end(png(1))
  if (path === "/to-loopback") return void res.writeHead(302, { location: `http://127.0.0.1:${port}/cat.png` }).end()
  if (path === "/to-localhost") return void res.writeHead(302, { location: `http://localhost:${port}/cat.png` }).end()
  if (path === "/to-internal") return void res.writeHead(302, { location: `http://internal.test:${port}/cat.png` }).end()
  if (path === "/to-public") return void res.writeHead(302, { location: `http://images.test:${port}/cat.png` }).end()
  res.writeHead(404).end()
})

/** The test's resolver: `images.test` stands for a public address (it is this machine), `internal.test` a private one. */
const resolve = async (hostname: string): Promise<ReadonlyArray<ResolvedAddress>> => {
  if (hostname === "images.test") return [{ address: "127.0.0.1", family: 4, class: "public" }]
  if (hostname === "internal.test") return [{ address: "127.0.0.1", family: 4, class: "private" }]
  if (hostname === "localhost") return [{ address: "127.0.0.1", family: 4, class: "loopback" }]
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" })
}

const failureOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.flip(effect))

let dir: string
let ollama: FakeOllama
let allowed: ServeHarness
let publicOnly: ServeHarness
let refusing: ServeHarness

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-image-urls-"))
  await new Promise<void>((r) => images.listen(0, "127.0.0.1", r))
  port = (images.address() as AddressInfo).port
  base = `http://127.0.0.1:${port}`
  ollama = await startFakeOllama({ models: [fakeModel("llava", { capabilities: ["completion", "vision"] })] })
  allowed = await startServe({ dir: join(dir, "a"), ollamaUrl: ollama.url }, { allowPrivateImageUrls: true })
  publicOnly = await startServe({ dir: join(dir, "b"), ollamaUrl: ollama.url }, { allowImageUrls: true })
  refusing = await startServe({ dir: join(dir, "c"), ollamaUrl: ollama.url })
})

afterAll(async () => {
  await Promise.all([allowed?.close(), publicOnly?.close(), refusing?.close()])
  await ollama?.close()
  images.closeAllConnections()
  await new Promise((r) => images.close(r))
  rmSync(dir, { recursive: true, force: true })
})

describe("fetchImage, public addresses only (the default)", () => {
  it("refuses loopback and link-local addresses, literal or resolved, before any connection", async () => {
    const before = seen.length
    for (const [url, cls] of [
      [`${base}/cat.png`, "loopback"],
      [`http://[::1]:${port}/cat.png`, "loopback"],
      [`http://[::ffff:127.0.0.1]:${port}/cat.png`, "loopback"],
      [`http://localhost:${port}/cat.png`, "loopback"],
      ["http://169.254.169.254/latest/meta-data/", "link-local"],
      [`http://0.0.0.0:${port}/cat.png`, "unspecified"],
      ["http://10.0.0.1/cat.png", "private"],
      // other spellings of 127.0.0.1, as the URL parser reads them
      [`http://127.1:${port}/cat.png`, "loopback"],
      [`http://2130706433:${port}/cat.png`, "loopback"],
      [`http://0x7f.0.0.1:${port}/cat.png`, "loopback"],
      [`http://[0:0:0:0:0:ffff:7f00:1]:${port}/cat.png`, "loopback"]
    ] as const) {
      const why = await failureOf(fetchImage(url))
      expect(why).toContain(`${cls} address`)
      expect(why).toContain("public addresses only")
    }
    // `localhost` through the system resolver too, not only the test's
    expect(await failureOf(fetchImage(`http://localhost:${port}/cat.png`, { resolve }))).toContain("resolves to a loopback address")
    expect(seen.length).toBe(before)
  })

  it("connects to the address the resolver gave for a name (the name itself resolves nowhere)", async () => {
    const image = await Effect.runPromise(fetchImage(`http://images.test:${port}/cat.png`, { resolve }))
    expect(image).toEqual({ mediaType: "image/png", data: b64(png(1)) })
  })

  it("re-checks every redirect: to a loopback literal, to localhost, to a name resolving to a private address", async () => {
    for (const [path, text] of [
      ["/to-loopback", "is a loopback address"],
      ["/to-localhost", "resolves to a loopback address"],
      ["/to-internal", "resolves to a private address"]
    ] as const) {
      const before = seen.filter((p) => p === "/cat.png").length
      const why = await failureOf(fetchImage(`http://images.test:${port}${path}`, { resolve }))
      expect(why).toContain(text)
      // the refused target was never asked
      expect(seen.filter((p) => p === "/cat.png").length).toBe(before)
    }
    // and a redirect to an allowed name is followed
    expect(await Effect.runPromise(fetchImage(`http://images.test:${port}/to-public`, { resolve }))).toEqual({
      mediaType: "image/png",
      data: b64(png(1))
    })
  })

  it("names no credentials of the URL in a refusal", async () => {
    const why = await failureOf(fetchImage(`http://bob:hunter2@127.0.0.1:${port}/cat.png?token=s3cr3t&size=2`))
    expect(why).toContain("loopback")
    expect(why).not.toContain("hunter2")
    expect(why).not.toContain("s3cr3t")
    const resolved = await failureOf(fetchImage(`http://bob:hunter2@internal.test:${port}/cat.png?api_key=s3cr3t`, { resolve }))
    expect(resolved).toContain("private")
    expect(resolved).not.toContain("hunter2")
    expect(resolved).not.toContain("s3cr3t")
    // nor the address a name resolved to
    expect(resolved).not.toContain("127.0.0.1")
  })

  it("with access private, fetches from loopback", async () => {
    expect(await Effect.runPromise(fetchImage(`${base}/cat.png`, { access: "private" }))).toEqual({ mediaType: "image/png", data: b64(png(1)) })
  })
})

describe("a request's URLs, fetched together", () => {
  it("fetches 4 at once (the server answers none until all 4 are in flight), the images in order", async () => {
    held = { wanted: 4, arrived: [], all: deferred<void>() }
    const jobs = [1, 2, 3, 4].map((n) => ({ url: `${base}/held/${n}.png`, field: `messages.0.images.${n - 1}` }))
    const got = await Effect.runPromise(fetchImages(jobs, { access: "private" }))
    expect(got.map((i) => i.data)).toEqual([1, 2, 3, 4].map((n) => b64(png(n))))
    held = undefined
  })

  it("one failure fails the request naming its field, and interrupts the others", async () => {
    held = { wanted: 2, arrived: [], all: deferred<void>() }
    const jobs = [
      { url: `${base}/hang/a.png`, field: "messages.0.images.0" },
      { url: `${base}/hang/b.png`, field: "messages.0.images.1" },
      { url: `${base}/fail-after-hangs`, field: "messages.1.images.0" }
    ]
    const failure = await failureOf(fetchImages(jobs, { access: "private", timeoutMs: 600_000 }))
    expect(failure.field).toBe("messages.1.images.0")
    expect(failure.reason).toContain("HTTP 404")
    // both hanging fetches were stopped: their connections close (the deadline is 10 minutes)
    await closedOf("/hang/a.png").promise
    await closedOf("/hang/b.png").promise
    held = undefined
  })
})

/** The images the fake Ollama's /api/chat requests carried since `from`. */
const chatImages = (from: number) =>
  ollama.requests.slice(from)
    .filter((r) => r.path === "/api/chat")
    .map((r) => (r.body as { messages: Array<{ images?: Array<string> }> }).messages.at(-1)!.images)

const urlRequest = (url: string): GenerateRequest => ({
  messages: [{ role: "user", content: "what is it?", images: [{ mediaType: "image/png", data: b64(png(9)) }, { url }] }],
  maxTokens: 8
})

const runWith = (llm: LocalLLMService, request: GenerateRequest) => llm.run(VISION, request)

describe("LocalLLM and image URLs", () => {
  it("refuses a { url } image by default with InvalidRequest naming the field and the setting, fetching nothing", async () => {
    const before = seen.length
    const from = ollama.requests.length
    const e = await failureOf(runWith(allowed.llm, urlRequest(`${base}/cat.png`)))
    expect(e).toBeInstanceOf(InvalidRequest)
    expect((e as InvalidRequest).field).toBe("messages.0.images.1")
    expect(e.message).toContain("ImageUrls")
    expect(e.message).not.toContain("127.0.0.1")
    expect(seen.length).toBe(before)
    expect(chatImages(from)).toEqual([])
  })

  it("fetches it with the ImageUrls setting, the bytes reaching Ollama beside the inline image", async () => {
    const from = ollama.requests.length
    await Effect.runPromise(
      runWith(allowed.llm, urlRequest(`${base}/cat.png`)).pipe(Effect.provideService(ImageUrls, { access: "private" }))
    )
    expect(chatImages(from)).toEqual([[b64(png(9)), b64(png(1))]])
  })

  it("a backend reached past LocalLLM (its handle) refuses an unfetched URL image instead of dropping it", async () => {
    const before = seen.length
    const from = ollama.requests.length
    const resolved = await Effect.runPromise(allowed.llm.resolve(VISION))
    const e = await failureOf(Stream.runDrain(resolved.handle.generate(resolved.model, urlRequest(`${base}/cat.png`))))
    expect(e).toBeInstanceOf(UnsupportedOperation)
    expect(e.message).toContain("messages.0.images.1 is a URL")
    expect(seen.length).toBe(before)
    expect(ollama.requests.slice(from).filter((r) => r.path === "/api/chat")).toEqual([])
  })

  it("a GGUF model refuses the images without anything being fetched", async () => {
    const file = join(dir, "tiny.gguf")
    writeFileSync(file, tinyLlamaGguf({ seed: 3 }))
    const before = seen.length
    const e = await failureOf(
      allowed.llm.run(file, urlRequest(`${base}/cat.png`)).pipe(Effect.provideService(ImageUrls, { access: "private" }))
    )
    expect(e._tag).toBe("UnsupportedOperation")
    expect(seen.length).toBe(before)
  })

  it("public access refuses a loopback URL as InvalidRequest naming the field and the class", async () => {
    const e = await failureOf(
      runWith(allowed.llm, urlRequest(`${base}/cat.png`)).pipe(Effect.provideService(ImageUrls, { access: "public" }))
    )
    expect(e).toBeInstanceOf(InvalidRequest)
    expect((e as InvalidRequest).field).toBe("messages.0.images.1")
    expect(e.message).toContain("loopback address")
  })

  it("the @effect/ai adapter's URL image part follows the same rule", async () => {
    const prompt = Prompt.make([{
      role: "user",
      content: [{ type: "text", text: "what is it?" }, { type: "file", mediaType: "image/png", data: new URL(`${base}/cat.png`) }]
    }])
    // over a backend instance (the adapter fetches) and over a LocalLLM (LocalLLM fetches)
    const resolved = await Effect.runPromise(allowed.llm.resolve(VISION))
    const layer = Layer.effect(LanguageModel.LanguageModel, LanguageModelAdapter.fromBackend(resolved.handle, resolved.model))
    const ask = LanguageModel.generateText({ prompt }).pipe(Effect.provide(layer))
    const refused = await Effect.runPromiseExit(ask)
    expect(Exit.isFailure(refused)).toBe(true)
    expect(JSON.stringify(refused)).toContain("messages.0.images.0")
    const from = ollama.requests.length
    await Effect.runPromise(ask.pipe(Effect.provideService(ImageUrls, { access: "private" })))
    expect(chatImages(from)).toEqual([[b64(png(1))]])

    const overLocalLLM = LanguageModel.generateText({ prompt }).pipe(
      Effect.provide(LlmspellRemote.languageModel(VISION).pipe(Layer.provide(Layer.succeed(LocalLLM, allowed.llm))))
    )
    expect(JSON.stringify(await Effect.runPromiseExit(overLocalLLM))).toContain("messages.0.images.0")
    await Effect.runPromise(overLocalLLM.pipe(Effect.provideService(ImageUrls, { access: "private" })))
    expect(chatImages(from)).toEqual([[b64(png(1))], [b64(png(1))]])
  })

  it("the Promise facade takes imageUrls", async () => {
    const from = ollama.requests.length
    const config = stackConfig({ dir: join(dir, "p"), ollamaUrl: ollama.url })
    const off = createLocalLLM({ config, home: dir, env: {} })
    const on = createLocalLLM({ config, home: dir, env: {}, imageUrls: "private" })
    try {
      await expect(off.run(VISION, urlRequest(`${base}/cat.png`).messages)).rejects.toMatchObject({ _tag: "InvalidRequest" })
      await on.run(VISION, urlRequest(`${base}/cat.png`).messages)
      expect(chatImages(from)).toEqual([[b64(png(9)), b64(png(1))]])
    } finally {
      await off.close()
      await on.close()
    }
  })
})

describe("over the protocol: the server's setting", () => {
  const remoteRun = (serve: ServeHarness, url: string) =>
    Effect.gen(function*() {
      const llm = yield* LocalLLM
      return yield* llm.run(VISION, urlRequest(url))
    }).pipe(
      // the client's own setting does not reach the server
      Effect.provideService(ImageUrls, { access: "private" }),
      Effect.provide(LlmspellRemote.layer({ url: serve.url, cwd: dir }))
    )

  it("carries the URL to the server, which fetches it when allowed", async () => {
    const from = ollama.requests.length
    await Effect.runPromise(remoteRun(allowed, `${base}/cat.png`))
    expect(chatImages(from)).toEqual([[b64(png(9)), b64(png(1))]])
  })

  it("a server without --allow-image-urls refuses it, naming the field and the option", async () => {
    const e = await failureOf(remoteRun(refusing, `${base}/cat.png`))
    expect(e).toBeInstanceOf(InvalidRequest)
    expect((e as InvalidRequest).field).toBe("messages.0.images.1")
    expect(e.message).toContain("--allow-image-urls")
  })

  it("a server with --allow-image-urls refuses a loopback URL", async () => {
    const e = await failureOf(remoteRun(publicOnly, `${base}/cat.png`))
    expect(e).toBeInstanceOf(InvalidRequest)
    expect(e.message).toContain("loopback address")
  })
})

describe("llmspell run --image URL", () => {
  it("connected, the URL goes to the server, which fetches it; embedded, it is refused naming the server option", async () => {
    ensureBuilt()
    const env = isolatedEnv(dir, { OLLAMA_HOST: ollama.url })
    const from = ollama.requests.length
    const connected = await runCli(["--host", allowed.url, "run", "-m", VISION, "--image", `${base}/cat.png`, "what is it?"], { cwd: dir, env })
    expect(connected.code).toBe(0)
    expect(chatImages(from)).toEqual([[b64(png(1))]])
    const before = seen.length
    const embedded = await runCli(["run", "-m", VISION, "--image", `${base}/cat.png`, "what is it?"], { cwd: dir, env })
    expect(embedded.code).toBe(2)
    expect(embedded.stderr).toContain("messages.0.images.0")
    expect(embedded.stderr).toContain("llmspell serve --allow-image-urls")
    expect(seen.length).toBe(before)
  }, 120_000)
})

describe("serve --allow-image-urls refuses non-public addresses", () => {
  it("a loopback or metadata URL is a 400 naming the part and the class, on each API", async () => {
    const openai = await fetch(`${publicOnly.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: VISION,
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "http://169.254.169.254/latest/meta-data/" } }] }]
      })
    })
    expect(openai.status).toBe(400)
    const openaiText = await openai.text()
    expect(openaiText).toContain("messages.0.content.0.image_url")
    expect(openaiText).toContain("link-local address")

    const anthropic = await fetch(`${publicOnly.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        model: VISION,
        max_tokens: 8,
        messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url: `http://localhost:${port}/cat.png` } }] }]
      })
    })
    expect(anthropic.status).toBe(400)
    const anthropicText = await anthropic.text()
    expect(anthropicText).toContain("messages.0.content.0.source.url")
    expect(anthropicText).toContain("loopback address")

    const responses = await fetch(`${publicOnly.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: VISION,
        input: [{ role: "user", content: [{ type: "input_image", image_url: `http://[::1]:${port}/cat.png` }] }]
      })
    })
    expect(responses.status).toBe(400)
    const responsesText = await responses.text()
    expect(responsesText).toContain("input.0.content.0.image_url")
    expect(responsesText).toContain("loopback address")
  })

  it("a client going away interrupts every fetch of its request", async () => {
    held = { wanted: 2, arrived: [], all: deferred<void>() }
    const controller = new AbortController()
    const asked = fetch(`${allowed.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      signal: controller.signal,
      body: JSON.stringify({
        model: VISION,
        messages: [{
          role: "user",
          content: [
            { type: "image_url", image_url: { url: `${base}/hang/c.png` } },
            { type: "image_url", image_url: { url: `${base}/hang/d.png` } }
          ]
        }]
      })
    })
    await held.all.promise
    controller.abort()
    await expect(asked).rejects.toThrow()
    await closedOf("/hang/c.png").promise
    await closedOf("/hang/d.png").promise
    held = undefined
  })
})

/**
 * `llmspell serve`'s security: loopback by default and no other bind without a key (exit 2 through
 * the built CLI), the API key on every route (never logged; a blank one refused at start, from
 * the flag or LLMSPELL_API_KEY, which library callers' servers read too), the Host check against
 * DNS rebinding (one Host header, parsed strictly), CORS off unless origins are listed (preflight
 * answered), file-path specs refused without --allow-paths, --read-only refusing pull and delete,
 * and the body limit (413, declared or streamed).
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Option from "effect/Option"
import * as net from "node:net"
import { concurrencyFor } from "../src/serve/Defaults.js"
import { parseHost } from "../src/serve/Policy.js"
import { checkBind, isLoopbackName } from "../src/serve/Server.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let fake: FakeOllama
const servers: Array<ServeHarness> = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-security-"))
  fake = await startFakeOllama({ models: [fakeModel("agent")] })
})

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()))
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

const start = async (options: Parameters<typeof startServe>[1], sub: string) => {
  const s = await startServe({ dir: join(dir, sub), ollamaUrl: fake.url }, options)
  servers.push(s)
  return s
}

/** A raw HTTP request (node:http lets a test set Host and stream a chunked body). */
const request = (
  url: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Array<string> }
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> =>
  new Promise((resolve, reject) => {
    const target = new URL(url)
    const req = http.request({ host: target.hostname, port: target.port, method: options.method ?? "GET", path: options.path, headers: options.headers }, (res) => {
      let body = ""
      res.on("data", (c: Buffer) => void (body += c.toString("utf8")))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on("error", reject)
    if (Array.isArray(options.body)) for (const part of options.body) req.write(part)
    else if (options.body !== undefined) req.write(options.body)
    req.end()
  })

const chatBody = (model: string) => JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], stream: false })

describe("binding", () => {
  it("loopback names are recognised; any other bind without a key is refused with a typed error", async () => {
    for (const name of ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3", "api.localhost"]) expect(isLoopbackName(name)).toBe(true)
    for (const name of ["0.0.0.0", "::", "192.168.1.2", "example.com", "127.0.0.1.evil.com"]) expect(isLoopbackName(name)).toBe(false)
    const refused = await Effect.runPromise(Effect.flip(checkBind("0.0.0.0", undefined)))
    expect(refused._tag).toBe("UsageError")
    expect(refused.hint).toContain("--api-key")
    await Effect.runPromise(checkBind("0.0.0.0", Redacted.make("k")))
  })

  it("through the built CLI: serve --host 0.0.0.0 without --api-key exits 2 with the reason and a hint", async () => {
    ensureBuilt()
    const home = join(dir, "cli-home")
    const result = await runCli(["serve", "--listen", "0.0.0.0", "--port", "0"], { cwd: dir, env: isolatedEnv(home, { OLLAMA_HOST: fake.url }) })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("without an API key")
    expect(result.stderr).toContain("--api-key")
  }, 60_000)
})

describe("port in use", () => {
  it("a port that is taken fails the start with ServeFailed and a hint, not a crash", async () => {
    const first = await start({}, "port-first")
    const error = await startServe({ dir: join(dir, "port-second") }, { port: Number(new URL(first.url).port) }).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(String(error)).toContain("ServeFailed")
    expect(String(error)).toContain("cannot listen on 127.0.0.1:")
  })
})

describe("API key", () => {
  it("every route needs the bearer key (401 otherwise, with WWW-Authenticate); the key is never logged", async () => {
    const s = await start({ apiKey: Redacted.make("s3cret-key") }, "key")
    for (const path of ["/api/tags", "/v1/models", "/api/version", "/nope"]) {
      const none = await request(s.url, { path })
      expect(none.status).toBe(401)
      expect(none.headers["www-authenticate"]).toBe("Bearer")
      expect((await request(s.url, { path, headers: { authorization: "Bearer wrong" } })).status).toBe(401)
      expect((await request(s.url, { path, headers: { authorization: "Bearer s3cret-key-and-more" } })).status).toBe(401)
      expect((await request(s.url, { path, headers: { authorization: "s3cret-key" } })).status).toBe(401)
    }
    expect((await request(s.url, { path: "/api/tags", headers: { authorization: "Bearer s3cret-key" } })).status).toBe(200)
    const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "s3cret-key", maxRetries: 0 })
    const reply = await openai.chat.completions.create({ model: "agent@ollama", messages: [{ role: "user", content: "hi" }] })
    expect(reply.choices[0]!.message.content).toContain("hi")
    const wrong = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "nope", maxRetries: 0 })
    expect(await wrong.models.list().then(() => undefined, (e) => e)).toBeInstanceOf(OpenAI.AuthenticationError)
    expect(JSON.stringify(s.log)).not.toContain("s3cret")
  })
})

describe("Host header (DNS rebinding)", () => {
  it("on loopback, a Host that is not a loopback name is refused with 403; loopback names with ports pass", async () => {
    const s = await start({}, "host")
    const port = new URL(s.url).port
    for (const host of [`evil.example:${port}`, "attacker.com", `127.0.0.1.nip.io:${port}`, "192.168.0.10"]) {
      const r = await request(s.url, { path: "/api/tags", headers: { host } })
      expect(r.status, host).toBe(403)
      expect(JSON.parse(r.body).error).toContain("not a loopback name")
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "127.0.0.2", "localhost"]) {
      expect((await request(s.url, { path: "/api/tags", headers: { host } })).status, host).toBe(200)
    }
  })
})

/** A raw request over a socket (duplicate Host headers, absolute targets: what node:http will not send); the status code. */
const rawStatus = (url: string, head: string) =>
  new Promise<number>((resolve, reject) => {
    const target = new URL(url)
    let received = ""
    const socket = net.connect(Number(target.port), target.hostname, () => socket.write(`${head}Connection: close\r\n\r\n`))
    socket.on("data", (c: Buffer) => void (received += c.toString("latin1")))
    socket.on("error", reject)
    socket.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0)))
  })

describe("Host header, strictly", () => {
  it("one Host, host[:port] and nothing else: trailing junk, several Host headers, odd forms and an absolute target elsewhere are 403", async () => {
    const s = await start({}, "host-strict")
    const port = new URL(s.url).port
    const refused = [
      "[::1]evil.com",
      `[::1]evil.com:${port}`,
      `localhost:${port}:${port}`,
      "localhost evil.com",
      "user@localhost",
      "localhost.",
      "127.1",
      "0x7f.0.0.1",
      "127.0.0.01",
      "[::1",
      "localhost:99999",
      "localhost:",
      ""
    ]
    for (const host of refused) {
      expect(await rawStatus(s.url, `GET /api/tags HTTP/1.1\r\nHost: ${host}\r\n`), JSON.stringify(host)).toBe(403)
    }
    for (const hosts of [["127.0.0.1", "evil.com"], ["evil.com", "127.0.0.1"], ["localhost", "localhost"]]) {
      const head = `GET /api/tags HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join("")}`
      expect(await rawStatus(s.url, head), hosts.join(" + ")).toBe(403)
    }
    expect(await rawStatus(s.url, `GET http://evil.com/api/tags HTTP/1.1\r\nHost: 127.0.0.1\r\n`)).toBe(403)
    expect(await rawStatus(s.url, `GET /api/tags HTTP/1.0\r\n`)).toBe(403)
    for (const host of [`[0:0:0:0:0:0:0:1]:${port}`, "[::ffff:127.0.0.1]", `LOCALHOST:${port}`, "a.b.localhost", "127.255.255.254"]) {
      expect(await rawStatus(s.url, `GET /api/tags HTTP/1.1\r\nHost: ${host}\r\n`), host).toBe(200)
    }
    expect(await rawStatus(s.url, `GET http://localhost:${port}/api/tags HTTP/1.1\r\nHost: localhost:${port}\r\n`)).toBe(200)
  })

  it("parseHost: the grammar, not a prefix", () => {
    expect(parseHost("[::1]:11435")).toEqual(Option.some({ host: "[::1]", port: Option.some(11435) }))
    expect(parseHost("localhost")).toEqual(Option.some({ host: "localhost", port: Option.none() }))
    for (const bad of ["[::1]evil.com", "[::1]]", "[evil]", "a:b:c", "host:-1", "ho st", "h\u00e9te", "a..b", "-a.b"]) {
      expect(parseHost(bad), bad).toEqual(Option.none())
    }
  })
})

describe("blank API keys are refused at start", () => {
  it("--api-key \"\" or a blank or spaced LLMSPELL_API_KEY: UsageError before listening, in the library and through the CLI (exit 2)", async () => {
    for (const [options, env] of [
      [{ apiKey: Redacted.make("") }, {}],
      [{ apiKey: Redacted.make("   ") }, {}],
      [{ apiKey: Redacted.make("two words") }, {}],
      [{}, { LLMSPELL_API_KEY: "" }],
      [{}, { LLMSPELL_API_KEY: " \t" }]
    ] as const) {
      const error = await startServe({ dir: join(dir, "blank"), env }, options).then(
        async (s) => {
          await s.close()
          return undefined
        },
        (e: unknown) => e
      )
      expect(String(error), JSON.stringify(env)).toContain("UsageError")
    }
    ensureBuilt()
    const home = join(dir, "cli-blank-home")
    const flag = await runCli(["serve", "--listen", "0.0.0.0", "--port", "0", "--api-key", ""], { cwd: dir, env: isolatedEnv(home, { OLLAMA_HOST: fake.url }) })
    expect(flag.code).toBe(2)
    expect(flag.stderr).toContain("--api-key is empty")
    const variable = await runCli(["serve", "--port", "0"], { cwd: dir, env: isolatedEnv(home, { OLLAMA_HOST: fake.url, LLMSPELL_API_KEY: " " }) })
    expect(variable.code).toBe(2)
    expect(variable.stderr).toContain("LLMSPELL_API_KEY is empty")
  }, 60_000)

  it("Server.start reads LLMSPELL_API_KEY itself, as the CLI does: a library caller's server requires it", async () => {
    const s = await startServe({ dir: join(dir, "env-key"), ollamaUrl: fake.url, env: { LLMSPELL_API_KEY: "from-env-k3y" } }, {})
    servers.push(s)
    expect(s.server.keyRequired).toBe(true)
    expect((await request(s.url, { path: "/api/tags" })).status).toBe(401)
    expect((await request(s.url, { path: "/api/tags", headers: { authorization: "Bearer from-env-k3y" } })).status).toBe(200)
    // 401 in each API's own shape
    const v1 = await request(s.url, { path: "/v1/models" })
    expect(v1.status).toBe(401)
    expect(JSON.parse(v1.body)).toMatchObject({ error: { type: "invalid_request_error", code: "invalid_api_key" } })
    expect(typeof JSON.parse((await request(s.url, { path: "/api/tags" })).body).error).toBe("string")
  })

  it("the concurrency default counts each GGUF instance's parallel and 4 per Ollama server", () => {
    const instances = (list: ReadonlyArray<Record<string, unknown>>) => ({ instances: list }) as unknown as Parameters<typeof concurrencyFor>[0]
    expect(concurrencyFor(instances([{ type: "gguf", parallel: 2 }, { type: "ollama" }, { type: "cloud" }]))).toBe(6)
    expect(concurrencyFor(instances([{ type: "cloud" }]))).toBe(4)
  })
})

describe("CORS", () => {
  it("off by default: a browser origin is refused, its preflight too", async () => {
    const s = await start({}, "cors-off")
    const r = await request(s.url, { path: "/api/tags", headers: { origin: "http://evil.example" } })
    expect(r.status).toBe(403)
    expect(r.headers["access-control-allow-origin"]).toBeUndefined()
    const pre = await request(s.url, { method: "OPTIONS", path: "/api/chat", headers: { origin: "http://evil.example", "access-control-request-method": "POST" } })
    expect(pre.status).toBe(403)
  })

  it("with --cors-origin: that origin's preflight is answered and its responses carry the header; others are refused", async () => {
    const s = await start({ corsOrigins: ["http://app.local:3000"] }, "cors-on")
    const pre = await request(s.url, {
      method: "OPTIONS",
      path: "/v1/chat/completions",
      headers: { origin: "http://app.local:3000", "access-control-request-method": "POST", "access-control-request-headers": "content-type, authorization" }
    })
    expect(pre.status).toBe(204)
    expect(pre.headers["access-control-allow-origin"]).toBe("http://app.local:3000")
    expect(pre.headers["access-control-allow-methods"]).toContain("POST")
    expect(pre.headers["access-control-allow-headers"]).toContain("authorization")
    const get = await request(s.url, { path: "/api/tags", headers: { origin: "http://app.local:3000" } })
    expect(get.status).toBe(200)
    expect(get.headers["access-control-allow-origin"]).toBe("http://app.local:3000")
    expect((await request(s.url, { path: "/api/tags", headers: { origin: "http://other.local" } })).status).toBe(403)
  })
})

describe("paths, read-only, body limit", () => {
  it("a spec that is a file path is refused (403) unless --allow-paths", async () => {
    const file = join(dir, "local.gguf")
    writeFileSync(file, tinyLlamaGguf({ vocabSize: 400 }))
    const s = await start({}, "paths")
    for (const model of [file, "./local.gguf", "~/local.gguf", `file://${file}`, `${file}@gguf`]) {
      const r = await request(s.url, { method: "POST", path: "/api/chat", headers: { "content-type": "application/json" }, body: chatBody(model) })
      expect(r.status, model).toBe(403)
      expect(JSON.parse(r.body).error).toContain("--allow-paths")
    }
    const v1 = await request(s.url, { method: "POST", path: "/v1/chat/completions", headers: { "content-type": "application/json" }, body: chatBody(file) })
    expect(v1.status).toBe(403)
    expect(JSON.parse(v1.body).error.type).toBe("permission_error")
    const allowed = await start({ allowPaths: true }, "paths-allowed")
    const ok = await request(allowed.url, {
      method: "POST",
      path: "/api/chat",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: file, messages: [{ role: "user", content: "hi" }], stream: false, options: { num_predict: 2 } })
    })
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body).done).toBe(true)
  })

  it("--read-only refuses pull and delete with 403 and serves the rest", async () => {
    const s = await start({ readOnly: true }, "ro")
    const headers = { "content-type": "application/json" }
    const pull = await request(s.url, { method: "POST", path: "/api/pull", headers, body: JSON.stringify({ model: "agent@ollama" }) })
    expect(pull.status).toBe(403)
    expect(JSON.parse(pull.body).error).toContain("read-only")
    const delBody = JSON.stringify({ model: "agent@ollama" })
    const del = await request(s.url, { method: "DELETE", path: "/api/delete", headers: { ...headers, "content-length": String(delBody.length) }, body: delBody })
    expect(del.status).toBe(403)
    expect(fake.state.models.map((m) => m.name)).toContain("agent:latest")
    expect((await request(s.url, { method: "POST", path: "/api/chat", headers, body: chatBody("agent@ollama") })).status).toBe(200)
  })

  it("bodies over the limit get 413: a declared Content-Length before reading, a chunked body as soon as it passes", async () => {
    const s = await start({ maxBodyBytes: 1024 }, "body")
    const big = JSON.stringify({ model: "agent@ollama", messages: [{ role: "user", content: "x".repeat(4000) }] })
    const declared = await request(s.url, { method: "POST", path: "/api/chat", headers: { "content-type": "application/json", "content-length": String(big.length) }, body: big })
    expect(declared.status).toBe(413)
    const chunked = await request(s.url, {
      method: "POST",
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      body: [big.slice(0, 800), big.slice(800, 1600), big.slice(1600)]
    })
    expect(chunked.status).toBe(413)
    expect(JSON.parse(chunked.body).error.message).toContain("larger than 1024 bytes")
    // the server goes on serving
    expect((await request(s.url, { method: "POST", path: "/api/chat", headers: { "content-type": "application/json" }, body: chatBody("agent@ollama") })).status).toBe(200)
  })
})

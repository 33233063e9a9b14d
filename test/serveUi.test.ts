/**
 * The web page's server side, without a browser: `GET /` answers the page only to a browser
 * (every other client still gets Ollama's `Ollama is running`), its files come with their content
 * types, caching headers and a strict Content-Security-Policy, no request path reaches the file
 * system, the page loads without the API key while its data routes need it, the Host and Origin
 * checks still apply, the page's own requests (same origin) pass, and /ui/api/ answers models of
 * every store, removal plans and the server's state. `--no-ui` turns it all off; `--open` opens
 * a browser, and a browser that cannot be opened is a warning.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from "node:fs"
import { request as httpRequest } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gunzipSync } from "node:zlib"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as UiAssets from "../src/serve/UiAssets.js"
import { commitId, hfCacheFile, loadableGguf } from "./fixtures/foreignStores.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { bin, ensureBuilt, isolatedEnv, root } from "./support/runCli.js"

let dir: string
let fake: FakeOllama
let serve: ServeHarness
let keyed: ServeHarness
let bare: ServeHarness

const KEY = "s3cret-key"

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-ui-"))
  fake = await startFakeOllama({ models: [fakeModel("agent", { capabilities: ["completion", "tools"] })], loaded: ["agent"] })
  await hfCacheFile(join(dir, "hf"), { repo: "org/cached", commit: commitId("cached"), file: "cached-Q8_0.gguf", bytes: loadableGguf(3) })
  const page = Option.getOrThrow(Effect.runSync(UiAssets.load()))
  serve = await startServe({ dir, ollamaUrl: fake.url, stores: { hf_cache: join(dir, "hf") } }, { ui: page })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 300 }))
  keyed = await startServe({ dir: join(dir, "keyed") }, { ui: page, apiKey: Redacted.make(KEY) })
  bare = await startServe({ dir: join(dir, "bare") })
}, 120_000)

afterAll(async () => {
  await Promise.all([serve?.close(), keyed?.close(), bare?.close()])
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A raw request (fetch would not let a test set Host or Origin). */
const raw = (url: string, options: { path: string; method?: string; headers?: Record<string, string>; body?: string }) =>
  new Promise<{ status: number; headers: Record<string, string | Array<string> | undefined>; body: Buffer }>((resolve, reject) => {
    const target = new URL(options.path, url)
    const req = httpRequest(target, { method: options.method ?? "GET", headers: options.headers }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.on("error", reject)
    req.end(options.body)
  })

const BROWSER = { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" }

const assetNames = () => {
  const html = readFileSync(join(root, "dist", "ui", "index.html"), "utf8")
  return [...html.matchAll(/\/ui\/([\w.-]+)/g)].map((m) => m[1]!)
}

describe("GET / and the page's files", () => {
  it("a browser gets the page; every other client still gets Ollama's answer", async () => {
    const page = await raw(serve.url, { path: "/", headers: BROWSER })
    expect(page.status).toBe(200)
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
    expect(page.body.toString()).toContain('<div id="app"></div>')
    expect(page.headers["vary"]).toMatch(/Accept/)
    for (const headers of [{}, { accept: "*/*" }, { accept: "application/json" }] as Array<Record<string, string>>) {
      const probe = await raw(serve.url, { path: "/", headers })
      expect([probe.status, probe.body.toString()]).toEqual([200, "Ollama is running"])
    }
    const head = await raw(serve.url, { path: "/", method: "HEAD" }) // Claude Code's probe
    expect(head.status).toBe(200)
    expect(head.headers["content-type"]).toMatch(/^text\/plain/)
  })

  it("a strict Content-Security-Policy and the other protective headers on the page and its files", async () => {
    for (const path of ["/", ...assetNames().map((n) => `/ui/${n}`)]) {
      const r = await raw(serve.url, { path, headers: BROWSER })
      expect(r.status, path).toBe(200)
      const csp = String(r.headers["content-security-policy"])
      expect(csp).toContain("default-src 'none'")
      expect(csp).toContain("script-src 'self'")
      expect(csp).toContain("style-src 'self'")
      expect(csp).toContain("frame-ancestors 'none'")
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/)
      expect(r.headers["x-content-type-options"]).toBe("nosniff")
      expect(r.headers["referrer-policy"]).toBe("no-referrer")
    }
    // and the page itself has no inline script or style for the policy to refuse
    const html = readFileSync(join(root, "dist", "ui", "index.html"), "utf8")
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i)
  })

  it("content types; hashed files cached as immutable, the page revalidated; gzip when asked; 304 on a matching ETag", async () => {
    const names = assetNames()
    const js = names.find((n) => n.endsWith(".js"))!
    const css = names.find((n) => n.endsWith(".css"))!
    expect(js).toMatch(/^app-[A-Z0-9]{8}\.js$/)
    const script = await raw(serve.url, { path: `/ui/${js}`, headers: { "accept-encoding": "gzip, br" } })
    expect(script.headers["content-type"]).toBe("text/javascript; charset=utf-8")
    expect(script.headers["cache-control"]).toBe("public, max-age=31536000, immutable")
    expect(script.headers["content-encoding"]).toBe("gzip")
    expect(gunzipSync(script.body).equals(readFileSync(join(root, "dist", "ui", js)))).toBe(true)
    const plain = await raw(serve.url, { path: `/ui/${js}` })
    expect(plain.headers["content-encoding"]).toBeUndefined()
    expect(plain.body.equals(readFileSync(join(root, "dist", "ui", js)))).toBe(true)
    expect((await raw(serve.url, { path: `/ui/${css}` })).headers["content-type"]).toBe("text/css; charset=utf-8")
    const page = await raw(serve.url, { path: "/", headers: BROWSER })
    expect(page.headers["cache-control"]).toBe("no-cache")
    const again = await raw(serve.url, { path: "/", headers: { ...BROWSER, "if-none-match": String(page.headers["etag"]) } })
    expect(again.status).toBe(304)
    expect(again.body.length).toBe(0)
  })

  it("no path reaches the file system: unknown, traversing and encoded names are 404", async () => {
    for (const path of ["/ui/nope.js", "/ui/../package.json", "/ui/%2e%2e/package.json", "/ui/..%2fpackage.json", "/ui/index.html", "/ui/", "/ui//etc/passwd"]) {
      const r = await raw(serve.url, { path })
      expect(r.status, path).toBe(404)
      expect(r.body.toString()).not.toContain('"name": "llmspell"')
    }
  })

  it("the Host check applies to the page (DNS rebinding); another origin is refused, the page's own passes", async () => {
    expect((await raw(serve.url, { path: "/", headers: { ...BROWSER, host: "evil.example:11435" } })).status).toBe(403)
    const own = new URL(serve.url).host
    const body = JSON.stringify({ model: "agent@ollama", stream: false })
    const same = await raw(serve.url, { path: "/api/show", method: "POST", headers: { origin: `http://${own}`, "content-type": "application/json" }, body })
    expect(same.status).toBe(200)
    const other = await raw(serve.url, { path: "/api/show", method: "POST", headers: { origin: "http://evil.example", "content-type": "application/json" }, body })
    expect(other.status).toBe(403)
    // a page on another port of this machine is another origin
    const port = await raw(serve.url, { path: "/api/show", method: "POST", headers: { origin: "http://127.0.0.1:1", "content-type": "application/json" }, body })
    expect(port.status).toBe(403)
  })
})

describe("with an API key", () => {
  it("the page and its files load without the key; its data routes and every API need it", async () => {
    expect((await raw(keyed.url, { path: "/", headers: BROWSER })).status).toBe(200)
    for (const name of assetNames()) expect((await raw(keyed.url, { path: `/ui/${name}` })).status).toBe(200)
    for (const path of ["/ui/api/server", "/ui/api/models", "/ui/api/ps", "/api/tags", "/"]) {
      expect((await raw(keyed.url, { path })).status, path).toBe(401)
    }
    const wrong = await raw(keyed.url, { path: "/ui/api/server", headers: { authorization: "Bearer nope" } })
    expect(wrong.status).toBe(401)
    const right = await raw(keyed.url, { path: "/ui/api/server", headers: { authorization: `Bearer ${KEY}` } })
    expect(right.status).toBe(200)
    expect(JSON.parse(right.body.toString())).toEqual({ version: "0.0.0", readOnly: false, allowPaths: false })
    // the key never comes back in a page answer
    expect((await raw(keyed.url, { path: "/", headers: BROWSER })).body.toString()).not.toContain(KEY)
  })
})

describe("/ui/api/", () => {
  it("models: every instance's and store's model, with the spec that reaches it and whether it is loaded", async () => {
    const reply = await (await fetch(`${serve.url}/ui/api/models`)).json() as { models: Array<Record<string, unknown>>; unavailable: Array<unknown> }
    const bySpec = new Map(reply.models.map((m) => [m["spec"], m]))
    expect(bySpec.get("tiny.gguf@gguf")).toMatchObject({ backend: "gguf", store: "llmspell", loaded: false })
    expect(bySpec.get("agent:latest@ollama")).toMatchObject({ backend: "ollama", loaded: true, quantization: "Q4_K_M" })
    const cached = reply.models.find((m) => m["store"] === "hf-cache")
    expect(cached).toMatchObject({ backend: "gguf", name: "hf.co/org/cached:Q8_0", spec: "hf.co/org/cached:Q8_0@gguf" })
    expect(reply.unavailable).toEqual([])
  })

  it("removal: the files a delete would remove, with their bytes; nothing is deleted by asking", async () => {
    const plan = await (await fetch(`${serve.url}/ui/api/removal?model=${encodeURIComponent("tiny.gguf@gguf")}`)).json() as { files: Array<{ path: string; sizeBytes: number }> }
    expect(plan.files).toEqual([{ path: join(dir, "models", "tiny.gguf"), sizeBytes: tinyLlamaGguf({ vocabSize: 300 }).length }])
    expect(existsSync(join(dir, "models", "tiny.gguf"))).toBe(true)
    expect((await fetch(`${serve.url}/ui/api/removal`)).status).toBe(400)
    expect((await fetch(`${serve.url}/ui/api/removal?model=%2Fetc%2Fpasswd`)).status).toBe(403)
  })

  it("ps: loaded models as `llmspell ps --json` has them, the server's load and memory", async () => {
    const reply = await (await fetch(`${serve.url}/ui/api/ps`)).json() as { models: Array<Record<string, unknown>>; server: Record<string, number>; machine: Record<string, unknown> }
    expect(reply.models).toEqual([expect.objectContaining({ spec: "agent:latest@ollama", name: "agent:latest", backend: "ollama", contextLength: 4096 })])
    // concurrency is what the config's instances run at once (each GGUF instance's sequences, a few per Ollama server)
    expect(reply.server).toMatchObject({ running: 0, queued: 0, inFlight: 1, maxQueue: 64 })
    expect(Number.isInteger(reply.server["concurrency"]) && reply.server["concurrency"]! >= 4).toBe(true)
    expect(reply.server["rssBytes"]).toBeGreaterThan(0)
    expect(reply.machine["totalMemoryBytes"]).toBeGreaterThan(0)
  })
})

describe("without the page (--no-ui)", () => {
  it("/ answers Ollama's text to a browser too, and /ui/ is not there", async () => {
    const page = await raw(bare.url, { path: "/", headers: BROWSER })
    expect(page.body.toString()).toBe("Ollama is running")
    expect((await raw(bare.url, { path: "/ui/api/models" })).status).toBe(404)
    expect((await raw(bare.url, { path: `/ui/${assetNames()[0]}` })).status).toBe(404)
  })
})

describe("serve --open and --no-ui through the binary", () => {
  /** Starts `llmspell serve` with these flags and a PATH whose `xdg-open` records its arguments; returns once it listens. */
  const startCli = async (flags: ReadonlyArray<string>, opener: "records" | "missing") => {
    const home = mkdtempSync(join(dir, "cli-"))
    const binDir = join(home, "bin")
    mkdirSync(binDir)
    const record = join(home, "opened.txt")
    if (opener === "records") {
      writeFileSync(join(binDir, "xdg-open"), `#!/bin/sh\nprintf '%s' "$*" > "${record}.tmp" && mv "${record}.tmp" "${record}"\n`)
      chmodSync(join(binDir, "xdg-open"), 0o755)
    }
    const env = { ...isolatedEnv(home, { LLMSPELL_MODELS_DIR: join(home, "models"), OLLAMA_HOST: fake.url }), PATH: `${binDir}:/usr/bin:/bin` }
    if (opener === "missing") env.PATH = binDir
    const child = spawn(process.execPath, [bin, "serve", "--port", "0", ...flags], { cwd: home, env, stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString("utf8")
        const m = /listening on (\S+)/.exec(stderr)
        if (m) resolve(m[1]!)
      })
      child.on("close", () => reject(new Error(stderr)))
    })
    const stop = () => new Promise<number | null>((resolve) => {
      child.on("close", resolve)
      child.kill("SIGTERM")
    })
    return { url, record, home, stderr: () => stderr, child, stop }
  }

  it("--open runs the desktop's opener with the page's URL (never the key)", async () => {
    const s = await startCli(["--open", "--api-key", "k3y"], "records")
    try {
      // the opener writes its file by rename: wait for the rename event, no polling
      if (!existsSync(s.record)) {
        await new Promise<void>((resolve) => {
          const watcher = watch(s.home, () => {
            if (existsSync(s.record)) {
              watcher.close()
              resolve()
            }
          })
          if (existsSync(s.record)) {
            watcher.close()
            resolve()
          }
        })
      }
      expect(readFileSync(s.record, "utf8")).toBe(`${s.url}/`)
      expect(s.stderr()).toContain("web page at /")
    } finally {
      expect(await s.stop()).toBe(0)
    }
  }, 60_000)

  it("--open with no opener on the machine is a warning; the server runs", async () => {
    const s = await startCli(["--open"], "missing")
    try {
      const warned = s.stderr().includes("could not open a browser")
        ? true
        : await new Promise<boolean>((resolve) => s.child.stderr!.on("data", () => s.stderr().includes("could not open a browser") && resolve(true)))
      expect(warned).toBe(true)
      expect(s.stderr()).toContain(`open ${s.url}/ yourself`)
      expect(await (await fetch(`${s.url}/api/version`)).json()).toMatchObject({ version: expect.any(String) })
    } finally {
      expect(await s.stop()).toBe(0)
    }
  }, 60_000)

  it("--no-ui: no page, Ollama's answer at /", async () => {
    const s = await startCli(["--no-ui"], "records")
    try {
      const page = await fetch(`${s.url}/`, { headers: BROWSER })
      expect(await page.text()).toBe("Ollama is running")
      expect(s.stderr()).not.toContain("web page")
    } finally {
      expect(await s.stop()).toBe(0)
    }
  }, 60_000)
})

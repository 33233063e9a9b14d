/**
 * The CLI in both modes: the same commands through the built `dist/cli.js`, embedded and connected
 * (`--host` to a server started here: test/support/startServer.ts, the live stack with the
 * protocol at /rpc), each mode with a store of its own, must print the same thing (paths and
 * timings aside) and exit the same way. Then how the CLI finds a server (`--host`,
 * `LLMSPELL_HOST`, the state file, `--local`), what `--verbose` says, a server that is down, and
 * the API key (used, never printed).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { extractGlobalOptions } from "../src/cli/GlobalOptions.js"
import { type FakeHub, startFakeHub } from "./fixtures/fakeHub.js"
import { fakeModel, type FakeOllama, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type CliMode, type CliResult, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"
import { startServer, type TestServer } from "./support/startServer.js"
import { unusedPort } from "./support/ports.js"

const model = tinyLlamaGguf({ tensorType: "Q8_0", seed: 7 })

let ollama: FakeOllama
let hub: FakeHub
let server: TestServer
let keyed: TestServer
let closedPort: number

/** One mode's world: its own HOME, store and cwd (holding local.gguf). */
const world = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), `llmspell-${name}-`))
  mkdirSync(join(dir, "models"))
  writeFileSync(join(dir, "local.gguf"), model)
  return dir
}
const embeddedDir = world("embedded")
const connectedDir = world("connected")

const envOf = (dir: string, extra: Record<string, string> = {}) =>
  isolatedEnv(dir, {
    OLLAMA_HOST: ollama.url,
    HF_ENDPOINT: hub.url,
    LLMSPELL_MODELS_DIR: join(dir, "models"),
    LLMSPELL_GGUF_THREADS: "1",
    ...extra
  })

beforeAll(async () => {
  ensureBuilt()
  ollama = await startFakeOllama({ models: [fakeModel("llama3.2:latest")], answer: () => "Hello from the fake Ollama" })
  hub = await startFakeHub({ pageSize: 50 })
  await hub.addRepo({ name: "org/Tiny-GGUF", files: [{ path: "Tiny-Q8_0.gguf", content: model }] })
  server = await startServer({ env: envOf(connectedDir), cwd: connectedDir })
  keyed = await startServer({ env: envOf(connectedDir), cwd: connectedDir, apiKey: "k3y-not-for-eyes" })
  closedPort = await unusedPort()
}, 120_000)
afterAll(async () => {
  await server?.close()
  await keyed?.close()
  await ollama?.close()
  await hub?.close()
})

const inMode = (mode: "embedded" | "connected", args: ReadonlyArray<string>): Promise<CliResult> => {
  const dir = mode === "embedded" ? embeddedDir : connectedDir
  const cliMode: CliMode = mode === "embedded" ? "embedded" : { host: server.url }
  return runCli(args, { cwd: dir, env: envOf(dir), mode: cliMode })
}

/** Values that depend on the moment (timings, free memory, dates), not on the mode. */
const VOLATILE = new Set(["timings", "freeMemoryBytes", "fits", "modifiedAt", "expiresAt", "mtimeMs", "durationMs", "elapsedMs", "bytesPerSecond", "etaSeconds", "ram"])

const normalize = (text: string, dir: string): unknown => {
  const scrub = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(scrub)
      : value !== null && typeof value === "object"
      ? Object.fromEntries(Object.entries(value).filter(([k]) => !VOLATILE.has(k)).map(([k, v]) => [k, scrub(v)]))
      : value
  const lines = text.split("\n").filter((l) => l.length > 0).map((l) => l.split(dir).join("<dir>"))
  return lines.map((line) => {
    try {
      return scrub(JSON.parse(line))
    } catch {
      return line
    }
  })
}

/** Runs a command in both modes, one after the other; both outcomes, normalized. */
const both = async (args: ReadonlyArray<string>, pick: (lines: Array<unknown>) => unknown = (l) => l) => {
  const results = [] as Array<{ code: number | null; stdout: unknown; stderr: unknown }>
  for (const mode of ["embedded", "connected"] as const) {
    const dir = mode === "embedded" ? embeddedDir : connectedDir
    const r = await inMode(mode, args)
    results.push({
      code: r.code,
      stdout: pick(normalize(r.stdout, dir) as Array<unknown>),
      stderr: normalize(r.stderr.replace(/\d+(\.\d+)? ?(ms|s|tokens\/s)\b/g, "<t>"), dir)
    })
  }
  return { embedded: results[0]!, connected: results[1]! }
}

describe("the same CLI in both modes", () => {
  // In order: the pull, import and remove change each mode's own store the same way.
  const cases: ReadonlyArray<{ args: ReadonlyArray<string>; code: number; pick?: (lines: Array<unknown>) => unknown }> = [
    { args: ["model", "status", "--json"], code: 0 },
    { args: ["model", "list", "--json"], code: 0 },
    { args: ["model", "list"], code: 0 },
    { args: ["model", "info", "llama3.2@ollama", "--json"], code: 0 },
    { args: ["model", "info", "./local.gguf"], code: 0 },
    { args: ["model", "info", "missing@ollama"], code: 3 },
    { args: ["model", "info", "missing@ollama", "--json"], code: 3 },
    { args: ["model", "available", "--recommended", "--json"], code: 0 },
    { args: ["model", "install-ollama", "--dry-run", "--json"], code: 0 },
    // the progress events depend on timing; the result is the last one
    { args: ["model", "pull", "org/Tiny-GGUF:Q8_0", "--json"], code: 0, pick: (lines) => lines.at(-1) },
    { args: ["model", "list", "--backend", "gguf", "--json"], code: 0 },
    { args: ["model", "verify", "--json"], code: 0 },
    { args: ["model", "remove", "org/Tiny-GGUF:Q8_0", "--json"], code: 2 },
    { args: ["model", "remove", "org/Tiny-GGUF:Q8_0", "--yes", "--json"], code: 0 },
    // (after the remove: an import of the same bytes would be listed as one model with the pull)
    { args: ["model", "import", "./local.gguf", "--name", "imported", "--json"], code: 0 },
    { args: ["model", "list", "--backend", "gguf"], code: 0 },
    { args: ["model", "remove", "imported", "--yes"], code: 0 },
    { args: ["run", "-m", "llama3.2@ollama", "hi"], code: 0 },
    { args: ["run", "-m", "llama3.2@ollama", "hi", "--json"], code: 0 },
    { args: ["run", "-m", "./local.gguf", "--max-tokens", "4", "--seed", "1", "hi"], code: 0 },
    { args: ["run", "-m", "llama3.2@ollama", "--temperature", "-1", "hi"], code: 2 },
    { args: ["embed", "-m", "llama3.2@ollama", "one", "two"], code: 0 }
  ]
  for (const c of cases) {
    it(`llmspell ${c.args.join(" ")}`, async () => {
      const { connected, embedded } = await both(c.args, c.pick)
      expect(embedded.code).toBe(c.code)
      expect(connected).toEqual(embedded)
    }, 120_000)
  }
})

describe("finding the server", () => {
  const run = (args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
    runCli(args, { cwd: connectedDir, env: envOf(connectedDir, extra) })

  it("--verbose says which: connected to the --host URL, or embedded; --local forces embedded", async () => {
    const connected = await run(["--host", server.url, "--verbose", "model", "list", "--json"])
    expect(connected.code).toBe(0)
    expect(connected.stderr).toContain(`connected to ${server.url}`)
    const local = await run(["--host", server.url, "--local", "--verbose", "model", "list", "--json"])
    expect(local.code).toBe(0)
    expect(local.stderr).toContain("embedded")
    expect(local.stderr).not.toContain("connected to")
  }, 60_000)

  it("LLMSPELL_HOST, else a state file whose pid is alive; a dead pid's state file is ignored", async () => {
    const viaEnv = await run(["--verbose", "model", "list", "--json"], { LLMSPELL_HOST: server.url })
    expect(viaEnv.stderr).toContain(`connected to ${server.url}`)
    const runtimeDir = join(connectedDir, "runtime")
    mkdirSync(join(runtimeDir, "llmspell"), { recursive: true })
    writeFileSync(join(runtimeDir, "llmspell", "serve.json"), JSON.stringify({ pid: process.pid, url: server.url, startedAt: new Date().toISOString() }))
    const viaState = await run(["--verbose", "model", "list", "--json"], { XDG_RUNTIME_DIR: runtimeDir })
    expect(viaState.stderr).toContain(`connected to ${server.url}`)
    // a pid that cannot be alive: above the kernel's pid_max
    writeFileSync(join(runtimeDir, "llmspell", "serve.json"), JSON.stringify({ pid: 2 ** 22 + 1, url: server.url, startedAt: new Date().toISOString() }))
    const dead = await run(["--verbose", "model", "list", "--json"], { XDG_RUNTIME_DIR: runtimeDir })
    expect(dead.code).toBe(0)
    expect(dead.stderr).toContain("embedded")
    // `serve --host` is where a server listens, not where to connect: left to the command
    expect(extractGlobalOptions(["--json", "serve", "--host", "0.0.0.0"]).rest).toEqual(["serve", "--host", "0.0.0.0", "--json"])
    expect(extractGlobalOptions(["--host", "http://h:1", "model", "list"]).options.host).toBe("http://h:1")
  }, 60_000)

  it("config flags configure a run here: with them a server from the environment is not used, and --host is a usage error", async () => {
    const otherModels = join(connectedDir, "other-models")
    mkdirSync(otherModels, { recursive: true })
    writeFileSync(join(otherModels, "flagged.gguf"), model)
    const viaEnv = await run(["--models-dir", otherModels, "--verbose", "model", "list", "--backend", "gguf", "--json"], { LLMSPELL_HOST: server.url })
    expect(viaEnv.code).toBe(0)
    expect(viaEnv.stderr).toContain("embedded (--models-dir given)")
    expect(viaEnv.stderr).not.toContain("connected to")
    // the flag was honoured: the model in that directory is listed (the server's store does not hold it)
    expect(viaEnv.stdout).toContain("flagged")
    const explicit = await run(["--host", server.url, "--config", join(connectedDir, "none.toml"), "--offline", "model", "list", "--json"])
    expect(explicit.code).toBe(2)
    const error = JSON.parse(explicit.stdout).error as { _tag: string; message: string; hint: string }
    expect(error._tag).toBe("UsageError")
    expect(error.message).toContain("--config, --offline configure a run in this process")
    expect(error.hint).toContain("drop --host")
    expect(error.hint).toContain("llmspell serve --config")
  }, 60_000)

  it("a server that is down: exit 4 naming the URL, with the hint to start one, quickly", async () => {
    const url = `http://127.0.0.1:${closedPort}`
    for (const args of [["model", "list"], ["run", "-m", "x", "hi"]]) {
      const result = await run(["--host", url, ...args])
      expect(result.code).toBe(4)
      expect(result.stderr).toContain(url)
      expect(result.stderr).toContain("llmspell serve")
    }
    const json = await run(["--host", url, "model", "status", "--json"])
    expect(json.code).toBe(4)
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { _tag: "BackendUnavailable" } })
  }, 60_000)

  it("an API key from LLMSPELL_API_KEY is used; a missing or wrong one is exit 2 naming LLMSPELL_API_KEY; neither is ever printed", async () => {
    const ok = await run(["--host", keyed.url, "model", "list", "--json", "--verbose"], { LLMSPELL_API_KEY: "k3y-not-for-eyes" })
    expect(ok.code).toBe(0)
    expect(ok.stdout + ok.stderr).not.toContain("k3y-not-for-eyes")
    const wrong = await run(["--host", keyed.url, "model", "list", "--verbose"], { LLMSPELL_API_KEY: "another-s3cret" })
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain("401")
    expect(wrong.stderr).toMatch(/^hint: .*LLMSPELL_API_KEY/m)
    expect(wrong.stdout + wrong.stderr).not.toMatch(/k3y-not-for-eyes|another-s3cret/)
    // no key at all: the server wants one, so it is a credentials problem (2), not a server that is down (4)
    const missing = await run(["--host", keyed.url, "model", "list", "--json"])
    expect(missing.code).toBe(2)
    const error = JSON.parse(missing.stdout).error as { _tag: string; message: string; hint: string }
    expect(error._tag).toBe("MissingCredentials")
    expect(error.message).toContain(keyed.url)
    expect(error.hint).toContain("LLMSPELL_API_KEY")
    expect(error.hint).not.toContain("[providers.")
  }, 60_000)

  it("--host and LLMSPELL_HOST take the forms OLLAMA_HOST takes: host:port, :port, with a trailing slash", async () => {
    const port = new URL(server.url).port
    for (const host of [`127.0.0.1:${port}`, `:${port}`, `127.0.0.1:${port}/`]) {
      const viaFlag = await run(["--host", host, "--verbose", "model", "status", "--json"])
      expect(viaFlag.code, `--host ${host}: ${viaFlag.stderr}`).toBe(0)
      expect(viaFlag.stderr).toContain(`connected to http://127.0.0.1:${port}`)
    }
    const viaEnv = await run(["--verbose", "model", "status", "--json"], { LLMSPELL_HOST: `127.0.0.1:${port}` })
    expect(viaEnv.code, viaEnv.stderr).toBe(0)
    expect(viaEnv.stderr).toContain(`connected to http://127.0.0.1:${port}`)
    // (a bare host gets llmspell serve's port, 11435: test/ServerUrl.test.ts; not run here, where another server may listen)
  }, 60_000)

  it("an address that is still wrong is a usage error (exit 2) naming where it came from, not a server that is down", async () => {
    for (const [args, extra, source] of [
      [["--host", "127.0.0.1:99999"], {}, "--host"],
      [["--host", "ftp://127.0.0.1:1234"], {}, "--host"],
      [["--host", "http://127.0.0.1:6000"], {}, "--host"],
      [[], { LLMSPELL_HOST: "127.0.0.1:abc" }, "LLMSPELL_HOST"]
    ] as const) {
      const result = await run([...args, "model", "status", "--json"], extra)
      expect(result.code, result.stdout + result.stderr).toBe(2)
      const error = JSON.parse(result.stdout).error as { _tag: string; message: string; hint: string }
      expect(error._tag).toBe("UsageError")
      expect(error.message).toContain(source)
    }
  }, 60_000)
})

/**
 * The built CLI (`dist/cli.js`) against a misbehaving fake Ollama and hostile configuration (issue 9,
 * items 5, 10, 13 and 15): Ctrl-C while a server withholds its headers, a FIFO as --config, a model
 * list with null entries, a port fetch refuses, credentials in OLLAMA_HOST, and a server that ignores
 * num_predict.
 */
import { spawn } from "node:child_process"
import { execFileSync } from "node:child_process"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { type FakeOllama, type FakeRoute, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { bin, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let emptyPath: string
let fake: FakeOllama

const envFor = (extra: Record<string, string> = {}) =>
  isolatedEnv(dir, { PATH: emptyPath, OLLAMA_HOST: `${fake.host}:${fake.port}`, ...extra })

// Async on purpose: the fake server lives in this process and must keep answering.
const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => runCli(args, { cwd: dir, env: envFor(env) })

/** Spawns the CLI, waits until `ready` resolves (the fake saw the request), sends SIGINT, and waits for the exit. */
const interruptWhen = (args: ReadonlyArray<string>, ready: Promise<void>, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: dir, env: envFor(env), stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    let signalled = false
    child.stdout.resume()
    child.stderr.on("data", (c: Buffer) => void (stderr += c.toString("utf8")))
    child.on("error", reject)
    child.on("close", (code, signal) => {
      if (!signalled) return reject(new Error(`exited (${code}) before the signal: ${stderr}`))
      resolve({ code, signal, stderr })
    })
    ready.then(() => {
      signalled = true
      child.kill("SIGINT")
    }, reject)
  })

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-ollama-hard-cli-"))
  emptyPath = join(dir, "empty-bin")
  await mkdir(emptyPath)
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

beforeEach(async () => {
  fake = await startFakeOllama({ models: [fakeModel("present"), fakeModel("other:7b")], answer: () => "one two three" })
})

afterEach(async () => {
  await fake.close()
})

describe("Ctrl-C while an Ollama server accepted the connection but sends no headers", () => {
  // Before the fix, Ctrl-C was ignored until timeout_seconds ran out. Here it is an hour and the fake never
  // answers, so only the signal can end the run before the test's own timeout (no wall-clock bound needed).
  const cases: ReadonlyArray<[string, FakeRoute, ReadonlyArray<string>]> = [
    ["run (streamed chat)", "/api/chat", ["run", "-m", "present@ollama", "hi"]],
    ["model pull (streamed pull)", "/api/pull", ["model", "pull", "tiny@ollama"]],
    ["model list (a plain call)", "/api/tags", ["model", "list", "--backend", "ollama"]]
  ]
  for (const [name, route, args] of cases) {
    it(`${name}: exits 130 on SIGINT, not when timeout_seconds runs out`, async () => {
      fake.setFault(route, { kind: "stallBeforeHeaders" })
      const config = join(dir, "hour-timeout.toml")
      await writeFile(config, "[providers.ollama]\ntimeout_seconds = 3600\n")
      const result = await interruptWhen(["--config", config, ...args], fake.waitForRecords(route, 0))
      expect(result.code, result.stderr).toBe(130)
      await fake.responses.find((r) => r.route === route)!.closed
    })
  }
})

describe("a FIFO as the config file", () => {
  // Opening a FIFO blocks until a writer appears: before the fix this hung, Ctrl-C or not.
  it("--config FIFO exits 2 at once, naming the path and its type", async () => {
    const fifo = join(dir, `config-${Date.now()}.fifo`)
    execFileSync("mkfifo", [fifo])
    const result = await run(["--config", fifo, "config", "show"])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(fifo)
    expect(result.stderr).toContain("is a FIFO (named pipe), not a regular file")
    expect(result.stderr).toContain("hint:")
  })

  it("LLMSPELL_CONFIG=FIFO the same", async () => {
    const fifo = join(dir, `env-${Date.now()}.fifo`)
    execFileSync("mkfifo", [fifo])
    const result = await run(["model", "list"], { LLMSPELL_CONFIG: fifo })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("env LLMSPELL_CONFIG")
  })

  it("a config file over 1 MiB exits 2 naming the file and its size", async () => {
    const big = join(dir, "big.toml")
    await writeFile(big, `# ${"x".repeat(1024 * 1024)}\n`)
    const result = await run(["--config", big, "config", "show"])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(big)
    expect(result.stderr).toContain("over the 1 MiB limit")
  })
})

describe("model list with null entries in /api/tags (was: \"Cannot read properties of null\")", () => {
  it("lists the good models, exit 0, one warning on stderr, --json stays valid", async () => {
    fake.setFault("/api/tags", { kind: "malformedEntries" })
    const result = await run(["model", "list", "--backend", "ollama", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const doc = JSON.parse(result.stdout) as { models: Array<{ name: string }> }
    expect(doc.models.map((m) => m.name).sort()).toEqual(["other:7b", "present:latest"])
    const warnings = result.stderr.split("\n").filter((l) => l.startsWith("warning:"))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain("skipped 4 malformed entries in the server's /api/tags reply")
  })

  it("model list over every backend keeps working too", async () => {
    fake.setFault("/api/tags", { kind: "malformedEntries" })
    const result = await run(["model", "list"], { LLMSPELL_MODELS_DIR: join(dir, "models") })
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toContain("present:latest")
    expect(result.stderr).not.toContain("bug in llmspell")
  })
})

describe("OLLAMA_HOST with a port fetch refuses (was: \"bad port\", no hint)", () => {
  it("is a config error, exit 2, naming the value and the source", async () => {
    const result = await run(["model", "list", "--backend", "ollama"], { OLLAMA_HOST: "127.0.0.1:1" })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("env OLLAMA_HOST")
    expect(result.stderr).toContain(`"127.0.0.1:1"`)
    expect(result.stderr).toContain("port 1 is one that fetch refuses")
    expect(result.stderr).toContain("hint:")
  })

  it("--ollama-host the same, naming the flag", async () => {
    const result = await run(["--ollama-host", "127.0.0.1:6000", "model", "status"])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("flag --ollama-host")
  })
})

describe("credentials in OLLAMA_HOST: used as Basic auth, never printed", () => {
  const secretHost = () => `alice:pw-SECRET-42@${fake.host}:${fake.port}`

  it("config show redacts them; status and list reach the server with the header", async () => {
    const env = { OLLAMA_HOST: secretHost() }
    const show = await run(["config", "show"], env)
    expect(show.code).toBe(0)
    expect(show.stdout).toContain(`http://<redacted>@${fake.host}:${fake.port}`)
    const status = await run(["model", "status", "--backend", "ollama", "--verbose"], env)
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain("state: available")
    const list = await run(["model", "list", "--backend", "ollama", "--json"], env)
    expect(list.code).toBe(0)
    for (const r of [show, status, list]) expect(r.stdout + r.stderr).not.toMatch(/pw-SECRET-42|alice/)
    const expected = `Basic ${Buffer.from("alice:pw-SECRET-42").toString("base64")}`
    expect(fake.requests.length).toBeGreaterThan(0)
    for (const request of fake.requests) expect(request.headers.authorization).toBe(expected)
  })

  it("errors (--verbose) do not print them", async () => {
    const result = await run(["model", "info", "missing@ollama", "--verbose"], { OLLAMA_HOST: secretHost() })
    expect(result.code).toBe(3)
    expect(result.stdout + result.stderr).not.toMatch(/pw-SECRET-42|alice/)
  })

  it("HF_ENDPOINT with credentials is refused with exit 2, redacted", async () => {
    const result = await run(["config", "show"], { HF_ENDPOINT: "https://bob:hf-SECRET@hub.example" })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("https://<redacted>@hub.example")
    expect(result.stderr).not.toContain("hf-SECRET")
  })

  it("a secret-looking unknown key in the config file is redacted in config show", async () => {
    const file = join(dir, "secret.toml")
    await writeFile(file, `[providers.ollama]\nproxy_password = "pp-SECRET"\n`)
    const result = await run(["--config", file, "config", "show", "--json"])
    expect(result.code).toBe(0)
    expect(result.stdout + result.stderr).not.toContain("pp-SECRET")
    expect(result.stdout).toContain("providers.ollama.proxy_password")
  })
})

describe("run --max-tokens against a server that ignores num_predict", () => {
  it("prints only max-tokens tokens and exits 0", async () => {
    fake.setFault("/api/chat", { kind: "ignoreNumPredict", tokens: 200_000 })
    const result = await run(["run", "-m", "present@ollama", "--max-tokens", "10", "hi"])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim()).toBe(Array.from({ length: 10 }, (_, i) => `t${i}`).join(" "))
  })
})

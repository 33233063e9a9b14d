/**
 * The serve-related CLI through the built binary (`dist/cli.js`): `ps` (table and --json) and
 * `stop` against the fake Ollama's loaded models, `serve --json` logging NDJSON and stopping with
 * exit 0 on SIGINT, `serve --help` and every command's usage line (`--listen`, placeholders, optional
 * repeated parts), `serve --host` as the old spelling of `--listen`. And the `/rpc` seam: an app given as `rpc` is mounted
 * behind the same checks.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { startServe } from "./fixtures/serveHarness.js"
import { type CommandNode, commandTree } from "../src/cli/Cli.js"
import { usageLine } from "../src/cli/Help.js"
import { bin, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let fake: FakeOllama

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-cli-"))
  fake = await startFakeOllama({ models: [fakeModel("agent"), fakeModel("other")], loaded: ["agent"] })
})

afterAll(async () => {
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** `serve --port 0 --json` in a child: where it listens, its pid and state file, and its exit. */
const spawnServe = async (serveEnv: Record<string, string>) => {
  const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--json"], { cwd: dir, env: serveEnv, stdio: ["ignore", "pipe", "pipe"] })
  let stderr = ""
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  const listening = await new Promise<{ url: string; pid: number; stateFile: string }>((resolve, reject) => {
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString("utf8")
      const line = stderr.split("\n").find((l) => l.includes(`"listening"`))
      if (line) resolve(JSON.parse(line) as { url: string; pid: number; stateFile: string })
    })
    child.on("close", () => reject(new Error(stderr)))
  })
  return { ...listening, child, exited }
}

const env = () => isolatedEnv(join(dir, "home"), { OLLAMA_HOST: fake.url, LLMSPELL_MODELS_DIR: join(dir, "models") })

describe("ps and stop", () => {
  it("ps --json lists loaded models with backend and instance; the table names them as specs", async () => {
    const json = await runCli(["ps", "--json"], { cwd: dir, env: env() })
    expect(json.code).toBe(0)
    const report = JSON.parse(json.stdout) as { models: Array<Record<string, unknown>> }
    expect(report.models).toEqual([expect.objectContaining({ name: "agent:latest", backend: "ollama", instance: "ollama", contextLength: 4096 })])
    const table = await runCli(["ps"], { cwd: dir, env: env() })
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/NAME\s+SIZE\s+CONTEXT\s+DEVICE\s+UNLOADS/)
    expect(table.stdout).toContain("agent:latest@ollama")
    expect(table.stdout).toMatch(/in \d+ min/)
  }, 60_000)

  it("stop unloads the model now; ps then says none", async () => {
    const stop = await runCli(["stop", "agent@ollama"], { cwd: dir, env: env() })
    expect(stop.code).toBe(0)
    expect(stop.stdout).toContain("stopped agent@ollama")
    expect(fake.state.loaded).toEqual([])
    const after = await runCli(["ps"], { cwd: dir, env: env() })
    expect(after.stdout).toContain("no models loaded")
    const missing = await runCli(["stop", "nope@ollama", "--json"], { cwd: dir, env: env() })
    expect(missing.code).toBe(0) // not loaded: stopped either way
  }, 60_000)
})

describe("serve through the binary", () => {
  it("--json: a listening line and one NDJSON line per request on stderr; SIGINT stops it with exit 0", async () => {
    const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--json"], { cwd: dir, env: env(), stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString("utf8")
        const line = stderr.split("\n").find((l) => l.includes(`"listening"`))
        if (line) resolve((JSON.parse(line) as { url: string }).url)
      })
      child.on("close", () => reject(new Error(stderr)))
    })
    const reply = await fetch(`${url}/api/chat`, {
      method: "POST",
      body: JSON.stringify({ model: "other@ollama", messages: [{ role: "user", content: "hi" }], stream: false })
    })
    expect(reply.status).toBe(200)
    await reply.json()
    const logged = new Promise<void>((resolve) => {
      const check = () => (stderr.includes(`"path":"/api/chat"`) ? resolve() : undefined)
      check()
      child.stderr.on("data", check)
    })
    await logged
    child.kill("SIGINT")
    expect(await exited).toBe(0)
    const request = stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.event === "request" && e.path === "/api/chat")
    expect(request).toMatchObject({ method: "POST", model: "other@ollama", status: 200 })
    expect(request!.tokens).toBeGreaterThan(0)
  }, 60_000)

  it("a second serve on the same state file is refused (exit 2) naming the first, which keeps its file and its clients", async () => {
    const home = join(dir, "two-servers")
    const twoEnv = isolatedEnv(home, { OLLAMA_HOST: fake.url, LLMSPELL_MODELS_DIR: join(dir, "models") })
    const first = await spawnServe(twoEnv)
    try {
      const state = readFileSync(first.stateFile, "utf8")
      for (const args of [["serve", "--port", "0"], ["serve", "--port", new URL(first.url).port]]) {
        const second = await runCli(args, { cwd: dir, env: twoEnv })
        expect(second.code, args.join(" ")).toBe(2)
        expect(second.stderr).toContain(`already running here (pid ${first.pid}, ${first.url}`)
        expect(second.stderr).toContain("XDG_RUNTIME_DIR=")
        expect(readFileSync(first.stateFile, "utf8")).toBe(state)
      }
      // commands still find the first server
      const ps = await runCli(["--verbose", "ps"], { cwd: dir, env: twoEnv })
      expect(ps.stderr).toContain(`connected to ${first.url}`)
      // a second one apart, with its own state directory, runs beside it
      const apart = await spawnServe({ ...twoEnv, XDG_RUNTIME_DIR: join(home, "run2") })
      expect(apart.stateFile).toBe(join(home, "run2", "llmspell", "serve.json"))
      apart.child.kill("SIGTERM")
      expect(await apart.exited).toBe(0)
    } finally {
      first.child.kill("SIGTERM")
    }
    expect(await first.exited).toBe(0)
    expect(existsSync(first.stateFile)).toBe(false)
  }, 120_000)

  it("serve --help lists its options; the listen address is --listen, not the global --host (one flag, one meaning)", async () => {
    const help = await runCli(["serve", "--help"], { cwd: dir, env: env() })
    expect(help.code).toBe(0)
    for (const option of ["--listen <address>", "--api-key <key>", "--cors-origin <origin>", "--read-only", "--allow-paths", "--allow-image-urls", "--allow-private-image-urls", "--max-queue <n>", "--max-body <bytes>", "--drain-timeout <seconds>"]) {
      expect(help.stdout).toContain(option)
    }
    const usage = help.stdout.split("\n").find((l) => l.includes("llmspell serve ["))!
    expect(usage).toContain("[--api-key <key>]")
    expect(usage).toContain("[--cors-origin <origin>]...")
    expect(usage).not.toContain("--host")
    // the only --host in serve's help is the global one, which connects
    expect(help.stdout.match(/--host/g)).toHaveLength(1)
    expect(help.stdout).toMatch(/--host <url>\s+use the `llmspell serve` at this address/)
    // @effect/cli's type boilerplate is left out ("A user-defined piece of text that is confidential.")
    expect(help.stdout).not.toMatch(/A user-defined piece of text/)
  }, 60_000)

  it("every command's usage line reads as help: <placeholders>, not type words; repeatable and optional parts in brackets", () => {
    const leaves: Array<ReadonlyArray<CommandNode>> = []
    const walk = (path: ReadonlyArray<CommandNode>) => {
      const node = path[path.length - 1]!
      if (node.children.length === 0) leaves.push(path)
      for (const child of node.children) walk([...path, child])
    }
    walk([commandTree])
    expect(leaves.length).toBeGreaterThan(10)
    for (const path of leaves) {
      const line = usageLine(path)
      expect(line, line).toMatch(/^llmspell [a-z]/)
      expect(line, line).not.toMatch(/ (text|integer|float|redacted|secret|date)(?=[\s\]]|$)/)
      // "..." only as `[x]...` or `[x...]`: a repeated part is never shown as required
      expect(line, line).not.toMatch(/(?<!\])\.\.\.(?!\])/)
      expect(line.split("[").length, line).toBe(line.split("]").length)
      // an option with a value: a <placeholder> or a|b choices
      for (const m of line.matchAll(/(--[a-z-]+) ([^\s[\]]+)/g)) {
        if (!m[2]!.startsWith("-")) expect(m[2], line).toMatch(/^<[^>]+>\]?$|^[\w.-]+(\|[\w.-]+)+\]?$/)
      }
    }
    const serve = leaves.find((p) => p.at(-1)!.name === "serve")!
    expect(usageLine(serve)).toContain("[--cors-origin <origin>]...")
    const embed = leaves.find((p) => p.at(-1)!.name === "embed")!
    expect(usageLine(embed)).toContain("[<text>...]")
  })

  it("serve --host ADDRESS, the old spelling, still listens; a URL for --listen, or --host before serve, is a usage error saying where each goes", async () => {
    const old = await runCli(["serve", "--host", "0.0.0.0", "--port", "0"], { cwd: dir, env: env() })
    // parsed as the listen address: refused for want of a key, as `--listen 0.0.0.0` would be
    expect(old.code).toBe(2)
    expect(old.stderr).toContain("refusing to listen on 0.0.0.0 without an API key")
    const url = await runCli(["serve", "--listen", "http://127.0.0.1:11435"], { cwd: dir, env: env() })
    expect(url.code).toBe(2)
    expect(url.stderr).toContain("not a URL")
    const withPort = await runCli(["serve", "--listen", "127.0.0.1:8080"], { cwd: dir, env: env() })
    expect(withPort.code).toBe(2)
    expect(withPort.stderr).toContain("--listen 127.0.0.1 --port 8080")
    const connect = await runCli(["--host", "http://127.0.0.1:11435", "serve"], { cwd: dir, env: env() })
    expect(connect.code).toBe(2)
    expect(connect.stderr).toContain("serve --listen")
  }, 60_000)
})

describe("the /rpc seam", () => {
  it("an app given as `rpc` answers under /rpc, behind the key check", async () => {
    const serve = await startServe({ dir: join(dir, "rpc") }, {
      apiKey: Redacted.make("k"),
      rpc: Effect.succeed(HttpServerResponse.text("llmspell rpc"))
    })
    try {
      expect((await fetch(`${serve.url}/rpc`, { method: "POST" })).status).toBe(401)
      const ok = await fetch(`${serve.url}/rpc`, { method: "POST", headers: { authorization: "Bearer k" } })
      expect(ok.status).toBe(200)
      expect(await ok.text()).toBe("llmspell rpc")
    } finally {
      await serve.close()
    }
  })
})

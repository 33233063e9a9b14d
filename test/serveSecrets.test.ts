/**
 * No key leaves `llmspell serve`: the server's own `--api-key`, the cloud providers' keys (from
 * `api_key = "${VAR}"`, a literal `api_key`, a conventional variable) and the hub token never
 * appear in what the server prints (its listening line and request logs, plain and `--json`, its
 * shutdown), in its HTTP answers (`/api/tags`, `/api/ps`, `/api/show`, `/v1/models`, errors from a
 * provider that refuses its key, a 500, a dropped stream, a wrong bearer), or in what a connected
 * CLI prints (`--verbose`, `--json`, `ps --json`, `model status`). The built binary, as a user runs it.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ANT_KEY, type CloudWorld, ENV_KEY, expectNoKey, FILE_KEY, startCloudWorld } from "./support/cloudWorld.js"
import { unusedPort } from "./support/ports.js"
import { bin, type CliResult, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const SERVE_KEY = "llmspell-DISTINCTIVE-serve-key-5d20ac"
const HF_KEY = "hf_DISTINCTIVEtoken31c0ffee77"
const WRONG_BEARER = "DISTINCTIVE-wrong-bearer-4411aa"
const KEYS = [SERVE_KEY, ENV_KEY, FILE_KEY, ANT_KEY, HF_KEY, WRONG_BEARER]

let dir: string
let world: CloudWorld
let closedPort: number

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-secrets-"))
  closedPort = await unusedPort()
  world = await startCloudWorld()
  mkdirSync(join(dir, "models"), { recursive: true })
  writeFileSync(
    join(dir, "config.toml"),
    [
      ...world.configLines,
      // the right server, the wrong key: the provider's 401 body quotes the key it was sent
      "[providers.wrongkey]",
      `provider_type = "openai_compatible"`,
      `base_url = "${world.openai.baseUrl}"`,
      `api_key = "${FILE_KEY}"`,
      "[hub]",
      `token = "${HF_KEY}"`,
      ""
    ].join("\n")
  )
}, 120_000)

afterAll(async () => {
  await world?.close()
  rmSync(dir, { recursive: true, force: true })
})

const env = (extra: Record<string, string> = {}) =>
  isolatedEnv(dir, {
    ...world.env,
    LLMSPELL_MODELS_DIR: join(dir, "models"),
    OLLAMA_HOST: `127.0.0.1:${closedPort}`, // nothing there: Ollama is not part of this test
    ...extra
  })

/** Every key, and a recognisable tail of each, is absent from `text`. */
const noKey = (text: string, what: string) => expectNoKey(text, KEYS, what)

interface RunningServe {
  readonly url: string
  readonly child: ChildProcess
  readonly output: () => string
  readonly stop: () => Promise<number | null>
}

/** `llmspell serve --config … --api-key KEY --port 0 [--json]` as a child process; resolves once it listens. */
const startServe = async (json: boolean): Promise<RunningServe> => {
  const args = [bin, "--config", join(dir, "config.toml"), "serve", "--port", "0", "--api-key", SERVE_KEY, ...(json ? ["--json"] : [])]
  const child = spawn(process.execPath, args, { cwd: dir, env: env(), stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (c: Buffer) => void (stdout += c.toString("utf8")))
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString("utf8")
      const found = /http:\/\/127\.0\.0\.1:\d+/.exec(stderr)
      if (found) resolve(found[0])
    })
    child.on("close", () => reject(new Error(`serve exited before listening: ${stderr}`)))
  })
  return {
    url,
    child,
    output: () => `${stdout}\n${stderr}`,
    stop: () => {
      child.kill("SIGTERM")
      return exited
    }
  }
}

/** Sends a request to the server with the right key (or `bearer`), returning the status and the whole body. */
const call = async (url: string, path: string, body?: unknown, bearer = SERVE_KEY) => {
  const response = await fetch(`${url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  return { status: response.status, text: await response.text() }
}

const chat = (model: string, stream: boolean) => ({ model, messages: [{ role: "user", content: "hi" }], stream })

describe("llmspell serve never shows a key", () => {
  for (const json of [false, true]) {
    it(`${json ? "--json" : "plain"} logs, HTTP answers, a connected CLI and shutdown`, async () => {
      world.openai.setAnswer(() => ({ content: "a b c d" }))
      const serve = await startServe(json)
      const answers: Array<{ what: string; status: number; text: string }> = []
      const record = async (what: string, reply: Promise<{ status: number; text: string }>) => {
        const r = await reply
        answers.push({ what, ...r })
        return r
      }
      const cli: Array<{ what: string; result: CliResult }> = []
      const connected = async (what: string, args: ReadonlyArray<string>) => {
        const result = await runCli(["--host", serve.url, ...args], { cwd: dir, env: env({ LLMSPELL_API_KEY: SERVE_KEY }) })
        cli.push({ what, result })
        return result
      }
      try {
        // served: each API, each provider
        expect((await record("openai chat", call(serve.url, "/v1/chat/completions", chat("openai/gpt-4o-mini", false)))).status).toBe(200)
        expect((await record("vllm chat stream", call(serve.url, "/v1/chat/completions", chat("vllm/meta-llama/Llama-3.1-8B-Instruct", true)))).status).toBe(200)
        expect((await record("anthropic ollama chat", call(serve.url, "/api/chat", chat("anthropic/claude-3-5-haiku-latest", false)))).status).toBe(200)
        for (const path of ["/api/tags", "/api/ps", "/v1/models", "/api/version"]) await record(path, call(serve.url, path))
        await record("show", call(serve.url, "/api/show", { model: "openai/gpt-4o-mini" }))
        // refused: the provider's 401 quotes the key it was sent; a 500; a stream dropped half-way
        const refused = await record("provider 401", call(serve.url, "/v1/chat/completions", chat("wrongkey/gpt-4o-mini", false)))
        // a bad gateway: the request was fine, the server's own key for the provider was refused
        expect(refused.status).toBe(502)
        expect(refused.text).toContain("refused the key")
        world.openai.setFault("/v1/chat/completions", { kind: "status", status: 500, times: 3 })
        expect((await record("provider 500", call(serve.url, "/api/chat", chat("openai/gpt-4o-mini", false)))).status).toBeGreaterThanOrEqual(500)
        world.openai.setFault("/v1/chat/completions", undefined)
        world.openai.setFault("/v1/chat/completions", { kind: "drop", afterChunks: 2, times: 3 })
        await record("provider drop", call(serve.url, "/v1/chat/completions", chat("openai/gpt-4o-mini", true)))
        world.openai.setFault("/v1/chat/completions", undefined)
        // our own 401: a wrong bearer, and none
        expect((await record("wrong bearer", call(serve.url, "/api/tags", undefined, WRONG_BEARER))).status).toBe(401)
        expect((await record("no bearer", fetch(`${serve.url}/api/tags`).then(async (r) => ({ status: r.status, text: await r.text() })))).status).toBe(401)

        // a connected CLI, with the key from LLMSPELL_API_KEY
        world.openai.setAnswer(() => ({ content: "a b c d" }))
        const ran = await connected("run --verbose --json", ["run", "-m", "openai/gpt-4o-mini", "hi", "--verbose", "--json"])
        expect(ran.code, ran.stdout + ran.stderr).toBe(0)
        expect((await connected("run wrong key", ["--verbose", "run", "-m", "wrongkey/gpt-4o-mini", "hi"])).code).toBe(2)
        expect((await connected("ps --json", ["ps", "--json"])).code).toBe(0)
        expect((await connected("status", ["model", "status", "--backend", "cloud", "--json", "--verbose"])).code).toBe(0)
        expect((await connected("list", ["model", "list", "--backend", "cloud", "--verbose"])).code).toBe(0)
        const wrong = await runCli(["--host", serve.url, "--verbose", "model", "list"], { cwd: dir, env: env({ LLMSPELL_API_KEY: WRONG_BEARER }) })
        // a key the server refuses is a credentials problem (issue 19 item 11)
        expect(wrong.code).toBe(2)
        cli.push({ what: "wrong LLMSPELL_API_KEY", result: wrong })
      } finally {
        expect(await serve.stop()).toBe(0)
      }

      // the server logged every request (so the check below looked at real logs), and no key anywhere
      const logs = serve.output()
      expect(logs).toContain("/v1/chat/completions")
      expect(logs).toContain("/api/tags")
      if (json) expect(logs.split("\n").filter((l) => l.startsWith("{") && l.includes(`"request"`)).length).toBeGreaterThanOrEqual(answers.length)
      noKey(logs, "the server's output")
      for (const a of answers) noKey(a.text, `HTTP ${a.what} (${a.status})`)
      for (const c of cli) noKey(`${c.result.stdout}\n${c.result.stderr}`, `CLI ${c.what}`)
    }, 120_000)
  }
})

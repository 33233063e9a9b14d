/**
 * `llmspell launch claude|codex|opencode`, run as a user runs it (the built CLI in a child process),
 * with a stand-in agent on PATH: one script installed as `claude`, `codex` and `opencode` that
 * records its arguments and environment and then talks to the server the way that agent would —
 * Claude Code from ANTHROPIC_BASE_URL/ANTHROPIC_AUTH_TOKEN, Codex from the provider in its `-c`
 * overrides (base_url, env_key, model) with a Responses request, opencode from the config file
 * OPENCODE_CONFIG names, its `{env:…}` key filled in as opencode does. It checks that the agent
 * reaches the model with the key it was given and not without it, that no key is printed or
 * written, the context check, `--dry-run`, a missing agent, a running server reused, the exit code
 * and the signals while the agent runs.
 */
import { spawn } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { bin, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let agentBin: string

/** The stand-in agent (see the module comment); FAKE_AGENT_MODE=wait waits for SIGTERM. */
const FAKE_AGENT = `#!${process.execPath}
const fs = require("fs")
const name = require("path").basename(process.argv[1])
const args = process.argv.slice(2)
const env = process.env
const record = { name, args, env: { ...env }, probes: [], signals: [], files: {} }
const save = () => fs.writeFileSync(env.RECORD_FILE, JSON.stringify(record))
const call = async (url, init) => {
  try {
    const res = await fetch(url, init)
    const text = await res.text()
    let body
    try { body = JSON.parse(text) } catch { body = text }
    return { url, status: res.status, body }
  } catch (e) {
    return { url, error: String(e) }
  }
}
const bearer = (key) => ({ authorization: "Bearer " + key, "content-type": "application/json" })
const probe = async () => {
  if (name === "claude") {
    const base = env.ANTHROPIC_BASE_URL
    record.probes.push(await call(base + "/v1/models", { headers: bearer(env.ANTHROPIC_AUTH_TOKEN) }))
    record.probes.push(await call(base + "/v1/models", {}))
  } else if (name === "codex") {
    const provider = args.find((a) => a.startsWith("model_providers.llmspell="))
    const base = /base_url = "([^"]+)"/.exec(provider)[1]
    const keyVar = /env_key = "([^"]+)"/.exec(provider)[1]
    const model = JSON.parse(args.find((a) => a.startsWith("model=")).slice(6))
    record.codex = { base, keyVar, model, wire: /wire_api = "([^"]+)"/.exec(provider)[1] }
    const body = JSON.stringify({ model, input: "hi", max_output_tokens: 2, store: false, parallel_tool_calls: false })
    record.probes.push(await call(base + "/responses", { method: "POST", headers: bearer(env[keyVar]), body }))
    record.probes.push(await call(base + "/responses", { method: "POST", headers: { "content-type": "application/json" }, body }))
  } else if (name === "opencode") {
    const text = fs.readFileSync(env.OPENCODE_CONFIG, "utf8")
    record.files.config = text
    const config = JSON.parse(text)
    const provider = config.provider.llmspell
    const key = provider.options.apiKey.replace(/\\{env:(\\w+)\\}/, (_, v) => env[v])
    record.opencode = { config, inline: JSON.parse(env.OPENCODE_CONFIG_CONTENT) }
    record.probes.push(await call(provider.options.baseURL + "/models", { headers: bearer(key) }))
    record.probes.push(await call(provider.options.baseURL + "/models", {}))
  }
  save()
}
if (env.FAKE_AGENT_MODE === "wait") {
  process.on("SIGINT", () => { record.signals.push("SIGINT"); save() })
  process.on("SIGTERM", async () => {
    record.signals.push("SIGTERM")
    await probe()
    process.exit(3)
  })
  probe().then(() => process.stdout.write("ready\\n"))
  setInterval(() => {}, 1 << 30)
} else {
  probe().then(() => process.exit(Number(env.FAKE_AGENT_EXIT ?? "7")))
}
`

const record = (file: string) =>
  JSON.parse(readFileSync(file, "utf8")) as {
    name: string
    args: Array<string>
    env: Record<string, string>
    probes: Array<{ url: string; status?: number; body?: unknown; error?: string }>
    signals: Array<string>
    files: Record<string, string>
    codex?: { base: string; keyVar: string; model: string; wire: string }
    opencode?: { config: Record<string, unknown>; inline: Record<string, unknown> }
  }

let runs = 0
/** The environment of a run: HOME in dir (its GGUF models), the stand-in agents first on PATH, a record file. */
const envFor = (extra: Record<string, string> = {}) => {
  const file = join(dir, `record-${++runs}.json`)
  return {
    file,
    env: isolatedEnv(dir, {
      PATH: `${agentBin}${delimiter}${process.env["PATH"] ?? ""}`,
      RECORD_FILE: file,
      // a user's own key, which must not reach the agent's server
      ANTHROPIC_API_KEY: "sk-ant-users-own-key",
      TMPDIR: join(dir, "tmp"),
      ...extra
    })
  }
}

const launch = (args: ReadonlyArray<string>, env: Record<string, string>) => runCli(["launch", ...args], { cwd: dir, env })

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-launch-"))
  agentBin = join(dir, "agents")
  mkdirSync(agentBin)
  mkdirSync(join(dir, "tmp"))
  for (const name of ["claude", "codex", "opencode"]) {
    writeFileSync(join(agentBin, name), FAKE_AGENT)
    chmodSync(join(agentBin, name), 0o755)
  }
  const models = join(dir, ".llmspell", "models")
  mkdirSync(models, { recursive: true })
  // one trained for a long context, one for 1024 tokens (too short for any agent)
  writeFileSync(join(models, "long.gguf"), tinyLlamaGguf({ vocabSize: 400, contextLength: 32768 }))
  writeFileSync(join(models, "short.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Nothing of the run's key in what llmspell printed, nor in the temporary directory's files after it. */
const expectKeyKept = (key: string, out: { stdout: string; stderr: string }) => {
  expect(key.length).toBeGreaterThanOrEqual(16)
  expect(out.stdout).not.toContain(key)
  expect(out.stderr).not.toContain(key)
}

describe("launch with a server started for the run", () => {
  it("claude: ANTHROPIC_* point at the server with a key made for the run, every model variable is the spec; the agent's exit code is launch's", async () => {
    const { env, file } = envFor()
    const out = await launch(["claude", "-m", "long.gguf@gguf", "--context", "30000", "--", "-p", "hello there"], env)
    expect(out.code, out.stderr).toBe(7)
    const r = record(file)
    expect(r.args).toEqual(["-p", "hello there"])
    expect(r.env["ANTHROPIC_BASE_URL"]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    for (const v of ["ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_SMALL_FAST_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL"]) {
      expect(r.env[v], v).toBe("long.gguf@gguf")
    }
    expect(r.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"]).toBe("1")
    // the user's own Anthropic key is not handed to the agent (it would be sent to the local server)
    expect(r.env).not.toHaveProperty("ANTHROPIC_API_KEY")
    // the server answers the key it was given, and refuses a request without it
    expect(r.probes.map((p) => p.status)).toEqual([200, 401])
    expectKeyKept(r.env["ANTHROPIC_AUTH_TOKEN"]!, out)
    expect(out.stderr).toContain("long.gguf@gguf")
    // the server was the run's: it is gone
    const after = await fetch(`${r.env["ANTHROPIC_BASE_URL"]}/v1/models`).then(() => "up", () => "down")
    expect(after).toBe("down")
  })

  it("codex: a -c provider with wire_api responses, env_key naming the variable that holds the key, and the spec as model; a Responses request reaches the model", async () => {
    const { env, file } = envFor()
    const out = await launch(["codex", "-m", "long.gguf@gguf", "--context", "20000", "--", "exec", "fix the bug"], env)
    expect(out.code, out.stderr).toBe(7)
    const r = record(file)
    expect(r.codex).toMatchObject({ keyVar: "LLMSPELL_API_KEY", model: "long.gguf@gguf", wire: "responses" })
    expect(r.codex!.base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/)
    expect(r.args).toContain('model_provider="llmspell"')
    expect(r.args).toContain("model_context_window=20000")
    // Codex's hosted web search tool is turned off: serve runs function tools only
    expect(r.args).toContain('web_search="disabled"')
    // the agent's own arguments come last, as given
    expect(r.args.slice(-2)).toEqual(["exec", "fix the bug"])
    const [withKey, withoutKey] = r.probes
    expect(withKey, JSON.stringify(withKey)).toMatchObject({ status: 200, body: { object: "response", model: "long.gguf@gguf" } })
    expect(withoutKey!.status).toBe(401)
    // the key travels in the environment only, never on the command line
    const key = r.env["LLMSPELL_API_KEY"]!
    expect(r.args.join(" ")).not.toContain(key)
    expectKeyKept(key, out)
  })

  it("opencode: its provider config in a private temporary file that names the key's variable (no key on disk), the model inline; both gone after", async () => {
    const { env, file } = envFor()
    const out = await launch(["opencode", "-m", "long.gguf@gguf", "--context", "20000"], env)
    expect(out.code, out.stderr).toBe(7)
    const r = record(file)
    const key = r.env["LLMSPELL_API_KEY"]!
    expect(r.files["config"]).not.toContain(key)
    expect(r.opencode!.config).toMatchObject({
      provider: { llmspell: { npm: "@ai-sdk/openai-compatible", options: { apiKey: "{env:LLMSPELL_API_KEY}" }, models: { "long.gguf@gguf": { limit: { context: 20000 } } } } },
      model: "llmspell/long.gguf@gguf"
    })
    expect(r.opencode!.inline).toMatchObject({ model: "llmspell/long.gguf@gguf" })
    expect(r.probes.map((p) => p.status)).toEqual([200, 401])
    expect((r.probes[0]!.body as { data: Array<{ id: string }> }).data.map((m) => m.id)).toContain("long.gguf@gguf")
    // the temporary config is in TMPDIR, private, and removed when the agent ends
    expect(r.env["OPENCODE_CONFIG"]!.startsWith(join(dir, "tmp"))).toBe(true)
    expect(existsSync(r.env["OPENCODE_CONFIG"]!)).toBe(false)
    expectKeyKept(key, out)
  })
})

describe("what launch refuses, before running anything", () => {
  it("an agent that is not installed: the error names its npm package", async () => {
    for (const [agent, pkg] of [["claude", "@anthropic-ai/claude-code"], ["codex", "@openai/codex"], ["opencode", "opencode-ai"]] as const) {
      const { env, file } = envFor({ PATH: process.env["PATH"] ?? "" })
      const out = await launch([agent, "-m", "long.gguf@gguf", "--context", "30000"], env)
      expect(out.code, agent).not.toBe(0)
      expect(out.stderr).toContain(`npm install -g ${pkg}`)
      expect(out.stderr).toContain("not installed")
      expect(existsSync(file)).toBe(false)
    }
  })

  it("a model whose context is too small: the numbers and the --context that fits; a model trained for less: choose another", async () => {
    const { env, file } = envFor()
    const small = await launch(["claude", "-m", "long.gguf@gguf"], env)
    expect(small.code).toBe(2)
    // the GGUF instance's default context (auto: at most 4096) against Claude Code's 24576
    expect(small.stderr).toContain("4096")
    expect(small.stderr).toContain("24576")
    expect(small.stderr).toContain("--context 32768")
    const trained = await launch(["codex", "-m", "short.gguf@gguf"], env)
    expect(trained.code).toBe(2)
    expect(trained.stderr).toContain("trained for a context of 1024 tokens")
    const over = await launch(["codex", "-m", "long.gguf@gguf", "--context", "65536"], env)
    expect(over.code).toBe(2)
    expect(over.stderr).toContain("32768")
    const missing = await launch(["codex", "-m", "nothere.gguf@gguf"], env)
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain("nothere")
    const noModel = await launch(["codex"], env)
    expect(noModel.code).toBe(2)
    expect(noModel.stderr).toContain("-m <spec>")
    expect(existsSync(file)).toBe(false)
  })
})

describe("an Ollama model", () => {
  it("is checked against the context Ollama has it loaded with (else its trained one); --context is Ollama's to set", async () => {
    const trained = { "general.architecture": "llama", "llama.context_length": 131072 }
    const fake = await startFakeOllama({
      models: [fakeModel("coder", { model_info: trained, context_length: 4096 }), fakeModel("idle", { model_info: trained })],
      loaded: ["coder"]
    })
    try {
      const ollama = { OLLAMA_HOST: fake.url }
      const loadedSmall = await launch(["claude", "-m", "coder@ollama"], envFor(ollama).env)
      expect(loadedSmall.code).toBe(2)
      expect(loadedSmall.stderr).toContain("loaded by Ollama with a context of 4096 tokens")
      expect(loadedSmall.stderr).toContain("OLLAMA_CONTEXT_LENGTH=32768")
      const refused = await launch(["claude", "-m", "idle@ollama", "--context", "30000"], envFor(ollama).env)
      expect(refused.code).toBe(2)
      expect(refused.stderr).toContain("OLLAMA_CONTEXT_LENGTH")
      const { env, file } = envFor(ollama)
      const ok = await launch(["claude", "-m", "idle@ollama"], env)
      expect(ok.code, ok.stderr).toBe(7)
      expect(record(file).env["ANTHROPIC_MODEL"]).toBe("idle@ollama")
      expect(record(file).probes.map((p) => p.status)).toEqual([200, 401])
    } finally {
      await fake.close()
    }
  })
})

describe("--dry-run / --print-env", () => {
  it("prints the variables (keys redacted), what is unset, the files and the command, and runs nothing", async () => {
    const { env, file } = envFor()
    const out = await launch(["claude", "-m", "long.gguf@gguf", "--context", "30000", "--dry-run", "--", "-p", "hi"], env)
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout).toContain("export ANTHROPIC_AUTH_TOKEN='<redacted>'")
    expect(out.stdout).toContain("export ANTHROPIC_MODEL=long.gguf@gguf")
    expect(out.stdout).toContain("unset ANTHROPIC_API_KEY")
    expect(out.stdout).toMatch(/^claude -p hi$/m)
    expect(existsSync(file)).toBe(false)
    const viaAlias = await launch(["opencode", "-m", "long.gguf@gguf", "--context", "30000", "--print-env", "--json"], env)
    expect(viaAlias.code, viaAlias.stderr).toBe(0)
    const plan = JSON.parse(viaAlias.stdout) as { env: Record<string, string>; files: Record<string, string>; server: { started: boolean }; binary: string }
    expect(plan.env["LLMSPELL_API_KEY"]).toBe("<redacted>")
    expect(plan.server.started).toBe(true)
    expect(plan.binary).toBe(join(agentBin, "opencode"))
    expect(JSON.parse(plan.files["opencode.json"]!)).toMatchObject({ model: "llmspell/long.gguf@gguf" })
  })

  it("works without the agent installed, and says how to install it", async () => {
    const { env } = envFor({ PATH: process.env["PATH"] ?? "" })
    const out = await launch(["codex", "-m", "long.gguf@gguf", "--context", "30000", "--dry-run", "--json"], env)
    expect(out.code, out.stderr).toBe(0)
    expect(JSON.parse(out.stdout)).toMatchObject({ binary: null, installCommand: "npm install -g @openai/codex" })
  })
})

describe("launch with a running server", () => {
  let serve: ServeHarness
  let serveDir: string
  const KEY = "running-server-key-0123456789"

  beforeAll(async () => {
    serveDir = await mkdtemp(join(tmpdir(), "llmspell-cli-launch-serve-"))
    serve = await startServe({ dir: serveDir, gguf: { context_size: 24576 }, env: { LLMSPELL_API_KEY: KEY } })
    writeFileSync(join(serveDir, "models", "served.gguf"), tinyLlamaGguf({ vocabSize: 400, contextLength: 32768 }))
  })

  afterAll(async () => {
    await serve?.close()
    await rm(serveDir, { recursive: true, force: true })
  })

  it("uses it (--host), with LLMSPELL_API_KEY, and checks the context it runs the model with; --context is refused there", async () => {
    const { env, file } = envFor({ LLMSPELL_API_KEY: KEY })
    const out = await launch(["--host", serve.url, "claude", "-m", "served.gguf@gguf"], env)
    expect(out.code, out.stderr).toBe(7)
    const r = record(file)
    expect(r.env["ANTHROPIC_BASE_URL"]).toBe(serve.url)
    expect(r.env["ANTHROPIC_AUTH_TOKEN"]).toBe(KEY)
    expect(r.probes.map((p) => p.status)).toEqual([200, 401])
    expectKeyKept(KEY, out)
    // still running after the agent ended: it was not the run's
    expect((await fetch(`${serve.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(200)
    const refused = await launch(["--host", serve.url, "claude", "-m", "served.gguf@gguf", "--context", "30000"], envFor({ LLMSPELL_API_KEY: KEY }).env)
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("--local")
  })
})

describe("signals while the agent runs", () => {
  it("Ctrl-C (SIGINT) is the agent's: llmspell neither ends nor passes it on; SIGTERM is passed on, the server stays up until the agent ends, and the agent's code is launch's", async () => {
    const { env, file } = envFor({ FAKE_AGENT_MODE: "wait" })
    const child = spawn(process.execPath, [bin, "launch", "claude", "-m", "long.gguf@gguf", "--context", "30000"], {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (c: Buffer) => void (stderr += c.toString("utf8")))
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    // the agent says it is ready once it has reached the server
    await new Promise<void>((resolve, reject) => {
      let out = ""
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString("utf8")
        if (out.includes("ready\n")) resolve()
      })
      child.once("close", () => reject(new Error(`launch ended before the agent was ready: ${stderr}`)))
    })
    child.kill("SIGINT")
    child.kill("SIGINT")
    child.kill("SIGTERM")
    const code = await exited
    expect(code, stderr).toBe(3)
    const r = record(file)
    // SIGINT reached neither the agent (sent to llmspell alone) nor ended llmspell; SIGTERM was passed on
    expect(r.signals).toEqual(["SIGTERM"])
    // after the signals, the server still answered the agent
    expect(r.probes.map((p) => p.status)).toEqual([200, 401, 200, 401])
  })
})

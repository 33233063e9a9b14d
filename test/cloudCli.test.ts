/**
 * The cloud providers through the built CLI (`dist/cli.js`) against the fake servers: `run` with
 * cloud specs, `model list/status --backend cloud`, `config show`, and the rule that no output
 * path — stdout, stderr, `--json`, `--verbose`, errors on 401, 500 and a dropped stream, `config
 * show` — ever prints a key, whether it came from `api_key = "${VAR}"`, a literal `api_key`, or
 * the provider's conventional variable.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ANT_KEY, type CloudWorld, ENV_KEY, expectNoKey, FILE_KEY, startCloudWorld } from "./support/cloudWorld.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const KEYS = [ENV_KEY, FILE_KEY, ANT_KEY]

let dir: string
let world: CloudWorld
let openai: CloudWorld["openai"]

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "llmspell-cloud-cli-"))
  world = await startCloudWorld()
  openai = world.openai
  mkdirSync(join(dir, "xdg", "llmspell"), { recursive: true })
  writeFileSync(join(dir, "config.toml"), [...world.configLines, ""].join("\n"))
}, 120_000)

afterAll(async () => {
  await world?.close()
  rmSync(dir, { recursive: true, force: true })
})

const run = (args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
  runCli(["--config", join(dir, "config.toml"), ...args], { cwd: dir, env: isolatedEnv(dir, { ...world.env, ...extra }) })

const noKey = (r: { stdout: string; stderr: string }, what: string) => expectNoKey(`${r.stdout}\n${r.stderr}`, KEYS, what)

describe("llmspell with cloud providers (built CLI)", () => {
  it("run streams from openai/…, an openai_compatible instance (model with '/') and anthropic/…", async () => {
    openai.setAnswer(() => ({ content: "hello from the cloud" }))
    const a = await run(["run", "-m", "openai/gpt-4o-mini", "hi"])
    expect([a.code, a.stdout.trim()]).toEqual([0, "hello from the cloud"])
    world.proxy.setAnswer((r) => ({ content: `model ${r.model}` }))
    const b = await run(["run", "-m", "vllm/meta-llama/Llama-3.1-8B-Instruct", "hi", "--json"])
    expect(b.code).toBe(0)
    expect(JSON.parse(b.stdout)).toMatchObject({ text: "model meta-llama/Llama-3.1-8B-Instruct", backend: "cloud", instance: "vllm" })
    const c = await run(["run", "-m", "anthropic/claude-3-5-haiku-latest", "hi"])
    expect([c.code, c.stdout.trim()]).toEqual([0, "Hello from claude-3-5-haiku-latest."])
    for (const r of [a, b, c]) noKey(r, "run")
  }, 60_000)

  it("a built-in provider without its variable: exit 2, the hint names it, nothing sent", async () => {
    const r = await run(["run", "-m", "groq/llama-3.3-70b-versatile", "hi"])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^error: groq: no API key: GROQ_API_KEY is not set/m)
    expect(r.stderr).toMatch(/^hint: set GROQ_API_KEY/m)
    const j = await run(["run", "-m", "groq/llama-3.3-70b-versatile", "hi", "--json"])
    expect(JSON.parse(j.stdout).error._tag).toBe("MissingCredentials")
  }, 60_000)

  it("model list and status --backend cloud: the models, and whether a key is present — never the key", async () => {
    const list = await run(["model", "list", "--backend", "cloud", "--json"])
    expect(list.code).toBe(0)
    const names = JSON.parse(list.stdout).models.map((m: { name: string; instance: string }) => `${m.instance}:${m.name}`)
    expect(names).toEqual(["openai:gpt-4o-mini", "vllm:meta-llama/Llama-3.1-8B-Instruct", "anthropic:claude-3-5-haiku-latest"])
    const status = await run(["model", "status", "--backend", "cloud"])
    expect(status.code).toBe(0)
    expect(status.stdout).toContain("apiKey: present (MY_OPENAI_KEY)")
    expect(status.stdout).toContain("apiKey: present (config api_key)")
    expect(status.stdout).toContain("apiKey: present (ANTHROPIC_API_KEY)")
    const statusJson = await run(["model", "status", "--backend", "cloud", "--json", "--verbose"])
    expect(JSON.parse(statusJson.stdout).backends.every((b: { available: boolean }) => b.available)).toBe(true)
    const missing = await run(["model", "status", "--backend", "cloud"], { MY_OPENAI_KEY: "" })
    expect(missing.stdout).toContain("apiKey: missing (set MY_OPENAI_KEY)")
    for (const r of [list, status, statusJson, missing]) noKey(r, "list/status")
  }, 60_000)

  it("no output path prints a key: --json, --verbose, config show, 401, 500, a dropped stream", async () => {
    openai.setAnswer(() => ({ content: "a b c d e f" }))
    const results = [
      await run(["run", "-m", "openai/gpt-4o-mini", "hi", "--json", "--verbose"]),
      await run(["--verbose", "run", "-m", "vllm/meta-llama/Llama-3.1-8B-Instruct", "hi"]),
      await run(["config", "show"]),
      await run(["config", "show", "--json"])
    ]
    const shown = JSON.parse(results[3]!.stdout).entries.filter((e: { key: string }) => e.key.endsWith("api_key"))
    expect(shown.map((e: { value: unknown }) => e.value)).toEqual(["<redacted>", "<redacted>"])

    // 401: the provider refuses a wrong key (the fake's error body quotes the key it got).
    const wrong = await run(["run", "-m", "openai/gpt-4o-mini", "hi", "--verbose"], { MY_OPENAI_KEY: `${FILE_KEY}` })
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toMatch(/^hint: set MY_OPENAI_KEY/m)
    const wrongJson = await run(["run", "-m", "openai/gpt-4o-mini", "hi", "--json"], { MY_OPENAI_KEY: `${FILE_KEY}` })
    expect(JSON.parse(wrongJson.stdout).error._tag).toBe("MissingCredentials")
    openai.setFault("/v1/chat/completions", { kind: "status", status: 500, times: 2 })
    const down = await run(["run", "-m", "openai/gpt-4o-mini", "hi", "--verbose"])
    expect(down.code).toBe(4)
    const downJson = await run(["run", "-m", "openai/gpt-4o-mini", "hi", "--json"])
    expect(JSON.parse(downJson.stdout).error._tag).toBe("BackendUnavailable")
    openai.setFault("/v1/chat/completions", { kind: "drop", afterChunks: 3, times: 2 })
    const drop = await run(["run", "-m", "openai/gpt-4o-mini", "hi", "--verbose"])
    expect(drop.code).toBe(1)
    expect(drop.stderr).toMatch(/dropped/)
    const dropJson = await run(["run", "-m", "openai/gpt-4o-mini", "hi", "--json"])
    expect(JSON.parse(dropJson.stdout.trim().split("\n").at(-1)!).error._tag).toBe("BackendError")
    for (const [i, r] of [...results, wrong, wrongJson, down, downJson, drop, dropJson].entries()) noKey(r, `case ${i}`)
    // the fake's own log keeps only the key's length
    expect(JSON.stringify(openai.requests)).not.toContain(ENV_KEY)
  }, 120_000)
})

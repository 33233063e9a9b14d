/**
 * Credentials written in a server URL's query (`base_url = "…/v1?api_key=…"`, `?token=` on an
 * Ollama URL or `hub.endpoint`, OLLAMA_HOST with one) are never printed: not by `config show`
 * (text or `--json`), `model status`, `model list` and its warnings, errors, `--verbose`, nor in
 * what a server hands its clients (issue 19 item 21). The query cannot work anyway (llmspell
 * appends API paths after it), so it is left out of the URL used, with a warning that shows it
 * redacted; the servers keep working without it.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeHub, startFakeHub } from "./fixtures/fakeHub.js"
import { fakeModel, type FakeOllama, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"
import { unusedPort } from "./support/ports.js"
import { type CliResult, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"
import { startServer, type TestServer } from "./support/startServer.js"

const KEY = "sk-proxy-key-for-the-header"
/** Every secret below carries this marker, so one check finds any of them. */
const MARK = "QSECRET"

let ollama: FakeOllama
let hub: FakeHub
let proxy: FakeOpenAI
let server: TestServer | undefined
let closedPort: number
const dir = mkdtempSync(join(tmpdir(), "llmspell-url-secrets-"))
let configFile: string

const env = (extra: Record<string, string> = {}) =>
  isolatedEnv(dir, { LLMSPELL_MODELS_DIR: join(dir, "models"), LLMSPELL_CONFIG: configFile, ...extra })

const run = (args: ReadonlyArray<string>, extra: Record<string, string> = {}): Promise<CliResult> =>
  runCli(args, { cwd: dir, env: env(extra) })

const expectNoSecret = (result: CliResult, what: string) => {
  expect(result.stdout + result.stderr, what).not.toContain(MARK)
}

beforeAll(async () => {
  ensureBuilt()
  ollama = await startFakeOllama({ models: [fakeModel("llama3.2:latest")] })
  hub = await startFakeHub()
  proxy = await startFakeOpenAI({ apiKey: KEY, models: ["meta-llama/Llama-3.1-8B-Instruct"] })
  closedPort = await unusedPort()
  configFile = join(dir, "llmspell.toml")
  writeFileSync(
    configFile,
    [
      "[providers.ollama]",
      `base_url = "${ollama.url}/?token=${MARK}-ollama&page=1"`,
      "[providers.vllm]",
      `provider_type = "openai_compatible"`,
      `base_url = "${proxy.baseUrl}?api_key=${MARK}-vllm"`,
      `api_key = "${KEY}"`,
      "[providers.down]",
      `provider_type = "openai_compatible"`,
      `base_url = "http://127.0.0.1:${closedPort}/v1?X-Amz-Signature=${MARK}-down#access_token=${MARK}-fragment"`,
      "[hub]",
      `endpoint = "${hub.url}/?access_token=${MARK}-hub"`
    ].join("\n") + "\n"
  )
}, 60_000)

afterAll(async () => {
  await server?.close()
  await Promise.all([ollama?.close(), hub?.close(), proxy?.close()])
})

describe("a credential in a server URL's query", () => {
  it("config show (text and --json) shows the keys redacted and warns that the query is left out", async () => {
    const text = await run(["config", "show"])
    expect(text.code, text.stderr).toBe(0)
    expectNoSecret(text, "config show")
    expect(text.stdout).toContain("?api_key=<redacted>")
    expect(text.stdout).toContain("?token=<redacted>&page=1")
    expect(text.stderr).toMatch(/^warning: .*providers\.vllm\.base_url: "\?api_key=<redacted>" is left out/m)
    const json = await run(["config", "show", "--json"])
    expect(json.code).toBe(0)
    expectNoSecret(json, "config show --json")
  }, 60_000)

  it("model status and model list (text, --json, --verbose) never show it, and the servers still answer", async () => {
    for (const args of [
      ["model", "status"],
      ["model", "status", "--json"],
      ["model", "status", "--backend", "cloud", "--json", "--verbose"],
      ["model", "list"],
      ["model", "list", "--json", "--verbose"],
      ["model", "list", "--backend", "cloud"]
    ]) {
      const result = await run(args)
      expectNoSecret(result, args.join(" "))
    }
    const status = JSON.parse((await run(["model", "status", "--json"])).stdout) as { backends: Array<{ instance: string; endpoint: string; available: boolean }> }
    const byName = new Map(status.backends.map((b) => [b.instance, b]))
    expect(byName.get("ollama")).toMatchObject({ endpoint: ollama.url, available: true })
    const list = await run(["model", "list", "--backend", "cloud", "--json"])
    expect(list.stdout).toContain("meta-llama/Llama-3.1-8B-Instruct")
  }, 180_000)

  it("errors and --verbose: a provider that is down, a pull from the hub that fails", async () => {
    for (const args of [
      ["run", "-m", "down/some-model", "hi"],
      ["run", "-m", "down/some-model", "hi", "--json", "--verbose"],
      ["model", "pull", "org/Missing-GGUF:Q4_K_M"],
      ["model", "pull", "org/Missing-GGUF:Q4_K_M", "--json", "--verbose"]
    ]) {
      const result = await run(args)
      expect(result.code, args.join(" ")).not.toBe(0)
      expectNoSecret(result, args.join(" "))
    }
    const ok = await run(["run", "-m", "vllm/meta-llama/Llama-3.1-8B-Instruct", "hi"])
    expect(ok.code, ok.stderr).toBe(0)
    expectNoSecret(ok, "run on vllm")
  }, 180_000)

  it("OLLAMA_HOST with one: the same", async () => {
    const result = await run(["model", "status", "--json", "--verbose"], { OLLAMA_HOST: `${ollama.url}/?token=${MARK}-env` })
    expect(result.code).toBe(0)
    expectNoSecret(result, "OLLAMA_HOST")
  }, 60_000)

  it("a server started with this config never hands it to its clients", async () => {
    server = await startServer({ env: env(), cwd: dir })
    for (const args of [["model", "status", "--json"], ["model", "list", "--json"], ["run", "-m", "down/some-model", "hi", "--json"]]) {
      const result = await runCli(args, { cwd: dir, env: env(), mode: { host: server.url } })
      expectNoSecret(result, `connected ${args.join(" ")}`)
    }
  }, 180_000)
})

/**
 * `llmspell` (the built `dist/cli.js`) against the fake Ollama server, end to end: every model
 * command on Ollama, the exit codes of each failure, and the stdout/stderr split (results and
 * `--json` documents on stdout, progress and errors on stderr, nothing from the ollama client).
 */
import { existsSync } from "node:fs"
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { type FakeOllama, fakeLayer, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { CLI_MODES, modeRunner } from "./support/bothModes.js"
import { bin, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let emptyPath: string
let fake: FakeOllama

// Async on purpose: the fake server lives in this process and must keep answering.
const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}, command = process.execPath, argv?: Array<string>) =>
  runCli(args, {
    cwd: dir,
    env: isolatedEnv(dir, { PATH: emptyPath, OLLAMA_HOST: `${fake.host}:${fake.port}`, ...env }),
    command,
    ...(argv !== undefined ? { argv } : {})
  })

const jsonLines = (text: string) => text.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>)

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-ollama-"))
  emptyPath = join(dir, "empty-bin")
  await mkdir(emptyPath)
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

beforeEach(async () => {
  fake = await startFakeOllama({
    models: [fakeModel("present"), fakeModel("other:7b", { size: 42 })],
    loaded: ["present"],
    pullable: { tiny: [fakeLayer("tiny-weights", 1000), fakeLayer("tiny-template", 100)] },
    answer: () => "Hello there, tester!"
  })
})

afterEach(async () => {
  await fake.close()
})

describe.each(CLI_MODES)("%s", (mode) => {
  const { run: runIn } = modeRunner(mode, { env: () => isolatedEnv(dir, { PATH: emptyPath, OLLAMA_HOST: `${fake.host}:${fake.port}` }), cwd: () => dir })
  const run = (args: ReadonlyArray<string>) => runIn(args)

  describe("llmspell model … on Ollama", () => {
    it("status and list show the server, its models and what is loaded", async () => {
      const status = await run(["model", "status", "--backend", "ollama"])
      expect(status).toMatchObject({ code: 0, stderr: "" })
      expect(status.stdout).toContain(`ollama (ollama) ${fake.url}`)
      expect(status.stdout).toContain("state: available, version 0.12.6")
      expect(status.stdout).toContain("loaded now: present:latest")

      const list = await run(["model", "list", "--backend", "ollama", "--json"])
      expect(list.code).toBe(0)
      const parsed = JSON.parse(list.stdout) as { models: Array<{ name: string; quantization: string }> }
      expect(parsed.models.map((m) => m.name)).toEqual(["present:latest", "other:7b"])
      expect(parsed.models[0]!.quantization).toBe("Q4_K_M")
    })

    it("status with the server down: available false, the hint, exit 0", async () => {
      await fake.close()
      const result = await run(["model", "status", "--backend", "ollama"])
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("state: unavailable")
      expect(result.stdout).toContain("connection refused")
      expect(result.stdout).toContain("ollama serve")
      const json = await run(["model", "status", "--backend", "ollama", "--json"])
      expect(JSON.parse(json.stdout).backends[0]).toMatchObject({ available: false, error: { _tag: "BackendUnavailable" } })
    })

    it("list --backend all with Ollama down still answers, warning about Ollama on stderr", async () => {
      await fake.close()
      const result = await run(["model", "list", "--backend", "all"])
      expect(result.code).toBe(0)
      expect(result.stderr).toMatch(/^warning: ollama \(ollama\): ollama is unavailable at .*connection refused/m)
      expect(result.stdout).not.toContain("ollama")
    })

    it("info shows the model's details", async () => {
      const result = await run(["model", "info", "present@ollama"])
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/architecture:\s+llama/)
      expect(result.stdout).toMatch(/context length:\s+4096/)
    })

    it("pull x@ollama and ollama/x emit the same NDJSON progress as a hub pull, ending with done", async () => {
      const first = await run(["model", "pull", "tiny@ollama", "--json"])
      expect(first.code).toBe(0)
      const events = jsonLines(first.stdout)
      expect(events.map((e) => e.phase).filter((p, i, all) => p !== all[i - 1])).toEqual([
        "resolving",
        "downloading",
        "verifying",
        "done"
      ])
      expect(events.at(-1)).toMatchObject({
        phase: "done",
        backend: "ollama",
        result: { model: "tiny:latest", sizeBytes: 1100, downloadedBytes: 1100 }
      })

      const second = await run(["model", "pull", "ollama/tiny", "--json"])
      expect(second.code).toBe(0)
      expect(jsonLines(second.stdout).at(-1)).toMatchObject({ phase: "done", model: "tiny:latest" })

      const plain = await run(["model", "pull", "ollama/tiny"])
      expect(plain).toMatchObject({ code: 0, stdout: "pulled tiny:latest (1.1 KiB)\n" })
      expect(plain.stderr).toContain("tiny:latest: done 100%")
    })

    it("run streams tokens from local/x@ollama", async () => {
      const local = await run(["run", "--model", "local/present@ollama", "hi"])
      expect(local).toMatchObject({ code: 0, stdout: "Hello there, tester!\n", stderr: "" })
    })

    it("remove without a TTY refuses without --yes (exit 2, nothing deleted); with --yes removes and --json reports it", async () => {
      const refused = await run(["model", "remove", "other:7b@ollama", "--json"])
      expect(refused.code).toBe(2)
      expect(JSON.parse(refused.stdout)).toMatchObject({ error: { _tag: "UsageError", hint: expect.stringContaining("--yes") } })
      expect(fake.state.models.map((m) => m.name)).toContain("other:7b")
      const result = await run(["model", "remove", "other:7b@ollama", "--yes", "--json"])
      expect(result.code).toBe(0)
      expect(JSON.parse(result.stdout)).toMatchObject({ model: "other:7b", instance: "ollama", freedBytes: 42 })
      expect(fake.state.models.map((m) => m.name)).toEqual(["present:latest"])
    })

  })

  describe("llmspell on Ollama: failures, exit codes, stdout/stderr", () => {
    it("server not running → exit 4 with the URL and the hint; --json puts the error on stdout", async () => {
      await fake.close()
      const result = await run(["run", "--model", "present@ollama", "hi"])
      expect(result.code).toBe(4)
      expect(result.stdout).toBe("")
      expect(result.stderr).toContain(`error: ollama is unavailable at ${fake.url}: connection refused`)
      expect(result.stderr).toContain("hint: start it with `ollama serve`")
      expect(result.stderr).toContain("llmspell model install-ollama")

      const json = await run(["model", "info", "present@ollama", "--json"])
      expect(json.code).toBe(4)
      expect(JSON.parse(json.stdout)).toEqual({
        error: { _tag: "BackendUnavailable", message: expect.stringContaining(fake.url), hint: expect.stringContaining("ollama serve") }
      })
    })

    it("model not found → exit 3 with the pull hint", async () => {
      const result = await run(["run", "--model", "ghost@ollama", "hi"])
      expect(result.code).toBe(3)
      expect(result.stdout).toBe("")
      expect(result.stderr).toBe("error: model ghost not found on ollama\nhint: run `llmspell model pull ghost@ollama`\n")

      const json = await run(["model", "remove", "ghost@ollama", "--yes", "--json"])
      expect(json.code).toBe(3)
      expect(JSON.parse(json.stdout)).toEqual({
        // removing a missing model: pulling it first would be a hint in a circle
        error: { _tag: "ModelNotFound", message: "model ghost not found on ollama", hint: "nothing to remove; `llmspell model list` shows the models present" }
      })
    })

    it("a non-JSON error body → exit 1 with what happened; nothing from the client on stdout", async () => {
      fake.setFault("/api/pull", { kind: "textError", body: "boom: not json" })
      const result = await run(["model", "pull", "tiny@ollama"])
      expect(result.code).toBe(1)
      expect(result.stdout).toBe("")
      expect(result.stderr).toContain('HTTP 500 with a non-JSON body: "boom: not json"')
      expect(result.stderr).not.toContain("Getting text from response")

      fake.setFault("/api/pull", { kind: "textError", body: "boom: not json" })
      const json = await run(["model", "pull", "tiny@ollama", "--json"])
      expect(json.code).toBe(1)
      expect(jsonLines(json.stdout)).toEqual([
        { error: { _tag: "BackendError", message: expect.stringContaining("non-JSON body"), hint: "check the server's log" } }
      ])
    })

    it("an error inside the 200 stream → exit 1; the tokens before it stay on stdout, the error on stderr", async () => {
      fake.setFault("/api/chat", { kind: "inBandError", after: 2, message: "model runner crashed" })
      const result = await run(["run", "--model", "present@ollama", "hi"])
      expect(result.code).toBe(1)
      expect(result.stdout).toBe("Hello there,")
      expect(result.stderr).toContain("error: ollama: generate failed: the server reported an error: model runner crashed")
    })

    it("a stream without its final success, and a dropped connection → exit 1 saying so", async () => {
      fake.setFault("/api/pull", { kind: "noFinalSuccess" })
      const truncated = await run(["model", "pull", "tiny@ollama", "--json"])
      expect(truncated.code).toBe(1)
      expect(jsonLines(truncated.stdout).at(-1)).toMatchObject({
        error: { _tag: "BackendError", message: expect.stringContaining("ended without its final done/success record") }
      })

      fake.setFault("/api/chat", { kind: "dropMidStream", after: 1 })
      const dropped = await run(["run", "--model", "present@ollama", "hi"])
      expect(dropped.code).toBe(1)
      expect(dropped.stderr).toContain("the connection dropped in the middle of the response stream")
    })
  })

  describe("llmspell model install-ollama", () => {
    it("--dry-run with nothing installed: prints the official steps, changes nothing", async () => {
      await fake.close()
      const result = await run(["model", "install-ollama", "--dry-run", "--yes"])
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("Ollama is not installed")
      if (process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64")) {
        expect(result.stdout).toContain("curl -fsSL https://ollama.com/install.sh | sh")
      }
      expect(result.stdout).toContain("dry run: nothing was changed")
    })

    it("without --yes: shows the method and how to run it", async () => {
      await fake.close()
      const result = await run(["model", "install-ollama"])
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("install-ollama --yes")
    })
  })
})

// What configures or reaches this process itself (a config file, a short timeout in one, the PATH
// the installer searches, a TTY): embedded runs only. In connected mode the server's configuration
// and environment are the ones used (test/cli-connected.test.ts covers flags given with --host).
describe("embedded: this process's config, PATH and TTY", () => {
  it("run streams tokens from a second instance in a config file", async () => {
    const workstation = await startFakeOllama({ models: [fakeModel("big:7b")], answer: () => "from the workstation" })
    try {
      const config = join(dir, "workstation.toml")
      await writeFile(config, `[providers.workstation]\nprovider_type = "ollama"\nbase_url = "${workstation.url}"\n`)
      const result = await run(["run", "--config", config, "--model", "workstation/big:7b", "hi", "--json"])
      expect(result.code).toBe(0)
      expect(JSON.parse(result.stdout)).toMatchObject({
        text: "from the workstation",
        backend: "ollama",
        instance: "workstation",
        usage: { completionTokens: 3 }
      })
      expect(workstation.requests.some((r) => r.path === "/api/chat")).toBe(true)
    } finally {
      await workstation.close()
    }
  })

  it.runIf(process.platform === "linux" && existsSync("/usr/bin/script"))("remove on a TTY asks first; 'n' keeps the model", async () => {
    const command = `'${process.execPath}' '${bin}' model remove other:7b@ollama`
    const result = await run([], { PATH: process.env["PATH"] ?? "/usr/bin:/bin" }, "sh", [
      "-c",
      `printf 'n\\n' | script -qec "${command}" /dev/null`
    ])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("remove other:7b from ollama? [y/N]")
    expect(result.stdout).toContain("not removed")
    expect(fake.state.models.map((m) => m.name)).toContain("other:7b")
  })

  it("a silent server → exit 1 with the timeout", async () => {
    const config = join(dir, "short-timeout.toml")
    await writeFile(config, `[providers.ollama]\nprovider_type = "ollama"\nbase_url = "${fake.url}"\ntimeout_seconds = 0.3\n`)
    fake.setFault("/api/show", { kind: "stall", after: 0 })
    const result = await run(["model", "info", "present@ollama", "--config", config], { OLLAMA_HOST: "" })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("no answer from")
    expect(result.stderr).toContain("within 0.3 s (timeout_seconds)")
  })

  it("installed and running: says so with its version", async () => {
    const binDir = join(dir, "with-ollama")
    await mkdir(binDir, { recursive: true })
    await writeFile(join(binDir, "ollama"), "#!/bin/sh\necho 'ollama version is 0.12.6'\n")
    await chmod(join(binDir, "ollama"), 0o755)
    const result = await run(["model", "install-ollama"], { PATH: binDir })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`Ollama 0.12.6 is installed and running at ${fake.url}`)
  })

  // Only where ollama.com is unreachable: elsewhere this would really install Ollama.
  it("--yes without network: a clear error, nothing run", async () => {
    const online = await fetch("https://ollama.com", { method: "HEAD", signal: AbortSignal.timeout(3000) }).then(
      () => true,
      () => false
    )
    if (online || process.platform !== "linux") return
    await fake.close()
    const result = await run(["model", "install-ollama", "--yes"])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("cannot reach https://ollama.com")
    expect(result.stderr).toContain("offline")
  })
})

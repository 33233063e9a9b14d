/**
 * Issue 9's CLI items through the built `dist/cli.js` (build first: `npm run build`), against the
 * fake Ollama server, a closed port and a tiny GGUF: `--backend candle`, a named backend that is
 * down, `model status --check`, help that reads like a CLI's, `--json` anywhere and on every
 * command, a 130k-row table, model output on a terminal, the progress bar and the loading spinner
 * on a pseudo-terminal (`script`), and exit codes 130/143 after SIGINT/SIGTERM with their cleanup.
 * Processes are stopped only when the output shows they reached the point under test.
 */
import * as Schema from "effect/Schema"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, readFileSync, watch, writeFileSync } from "node:fs"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { InstallOllamaReport } from "../src/domain/InstallOllama.js"
import { ModelList, StatusReport } from "../src/domain/Types.js"
import { gate } from "./fixtures/fakeHttp.js"
import { type FakeOllama, fakeLayer, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { bin, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"
import { unusedPort } from "./support/ports.js"

const EVIL = "safe \x1b]0;pwned\x07\x1b[31mred\x1b[0m\x1b[2J end"
const hasScript = process.platform === "linux" && existsSync("/usr/bin/script")
const hasTmux = process.platform === "linux" && existsSync("/usr/bin/tmux")

let dir: string
let emptyPath: string
let fake: FakeOllama
let closedPort: number

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-hardening-"))
  emptyPath = join(dir, "empty-bin")
  await mkdir(emptyPath)
  await writeFile(join(dir, "tiny.gguf"), tinyLlamaGguf())
  fake = await startFakeOllama({
    models: [fakeModel("present:latest"), fakeModel("evil:latest")],
    pullable: { tiny: [fakeLayer("tiny-weights", 1000), fakeLayer("tiny-template", 100)] },
    answer: (input) => (input.model.startsWith("evil") ? EVIL : "Hello there, tester!")
  })
  closedPort = await unusedPort()
})

afterAll(async () => {
  await fake?.close()
  await rm(dir, { recursive: true, force: true })
})

const envWith = (extra: Record<string, string> = {}) =>
  isolatedEnv(dir, { PATH: emptyPath, OLLAMA_HOST: `${fake.host}:${fake.port}`, LLMSPELL_MODELS_DIR: join(dir, "models"), ...extra })

const run = (args: ReadonlyArray<string>, extra: Record<string, string> = {}) => runCli(args, { cwd: dir, env: envWith(extra) })
const down = () => ({ OLLAMA_HOST: `127.0.0.1:${closedPort}` })

/** A running process whose output can be awaited: `until` resolves when the output satisfies a test. */
const start = (command: string, argv: ReadonlyArray<string>, env: Record<string, string>) => {
  const child: ChildProcess = spawn(command, argv, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  const waiters: Array<() => void> = []
  const notify = () => waiters.splice(0).forEach((w) => w())
  child.stdout!.on("data", (c: Buffer) => ((stdout += c.toString("utf8")), notify()))
  child.stderr!.on("data", (c: Buffer) => ((stderr += c.toString("utf8")), notify()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("close", (code, signal) => (notify(), resolve({ code, signal })))
  })
  let done = false
  void exited.then(() => (done = true))
  const until = async (test: (out: { stdout: string; stderr: string }) => boolean): Promise<void> => {
    while (!test({ stdout, stderr })) {
      if (done) throw new Error(`exited before the expected output:\n${stdout}\n${stderr}`)
      await new Promise<void>((resolve) => waiters.push(resolve))
    }
  }
  return { child, exited, until, output: () => ({ stdout, stderr }) }
}

/** Runs a command on a pseudo-terminal of the given width (`script`: stdout and stderr both a TTY). */
const onTerminal = (commandLine: string, env: Record<string, string>, columns = 80) =>
  start("script", ["-qec", `stty cols ${columns} rows 24; exec ${commandLine}`, "/dev/null"], {
    ...env,
    PATH: process.env["PATH"] ?? "/usr/bin:/bin"
  })

const cliLine = (args: string) => `'${process.execPath}' '${bin}' ${args}`

describe("--backend", () => {
  it("candle is accepted as the alias of gguf it is documented to be", async () => {
    const list = await run(["model", "list", "--backend", "candle", "--json"], down())
    expect(list.code).toBe(0)
    expect(Schema.decodeUnknownSync(Schema.parseJson(ModelList))(list.stdout.trim())).toEqual({ models: [], unavailable: [] })
    const status = await run(["model", "status", "--backend", "candle", "--json"], down())
    expect(status.code).toBe(0)
    const report = Schema.decodeUnknownSync(Schema.parseJson(StatusReport))(status.stdout.trim())
    expect(report.backends.map((b) => b.backend)).toEqual(["gguf"])
  })
})

describe("a backend that is down", () => {
  it("model list --backend ollama: its failure is the command's, exit 4 with the hint, not 'no models'", async () => {
    const result = await run(["model", "list", "--backend", "ollama"], down())
    expect(result.code).toBe(4)
    expect(result.stdout).toBe("")
    expect(result.stderr).toContain(`error: ollama is unavailable at http://127.0.0.1:${closedPort}: connection refused`)
    expect(result.stderr).toContain("hint: start it with `ollama serve`")

    for (const args of [["model", "list", "--backend", "ollama", "--json"], ["--json", "model", "list", "--backend", "ollama"]]) {
      const json = await run(args, down())
      expect(json.code).toBe(4)
      expect(JSON.parse(json.stdout)).toMatchObject({ error: { _tag: "BackendUnavailable", hint: expect.stringContaining("ollama serve") } })
    }
  })

  it("info, pull, remove and run on that backend: exit 4 with the hint too", async () => {
    for (const args of [
      ["model", "info", "x@ollama"],
      ["model", "pull", "x@ollama"],
      ["model", "remove", "x@ollama", "--yes"],
      ["run", "-m", "x@ollama", "hi"]
    ]) {
      const result = await run(args, down())
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: 4, stdout: "" })
      expect(result.stderr).toContain("hint: start it with `ollama serve`")
    }
  })

  it("model list --backend all keeps answering with a warning while another backend is up", async () => {
    const result = await run(["model", "list"], down())
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/^warning: ollama \(ollama\): /m)
  })

  it("model list --backend all with every backend down: each error with its hint, exit 4", async () => {
    const notADirectory = join(dir, "tiny.gguf")
    const result = await run(["model", "list", "--models-dir", notADirectory], down())
    expect(result.code).toBe(4)
    expect(result.stdout).toBe("")
    expect(result.stderr.match(/^error: /gm)).toHaveLength(2)
    expect(result.stderr.match(/^hint: /gm)).toHaveLength(2)
    const json = await run(["model", "list", "--models-dir", notADirectory, "--json"], down())
    expect(json.code).toBe(4)
    const list = Schema.decodeUnknownSync(Schema.parseJson(ModelList))(json.stdout.trim())
    expect(list.unavailable.map((u) => u.backend).sort()).toEqual(["gguf", "ollama"])
  })

  it("model status exits 0 naming what is down; --check exits 4 when any backend is down, 0 when all are up", async () => {
    const status = await run(["model", "status"], down())
    expect(status.code).toBe(0)
    expect(status.stderr).toContain("unavailable: ollama (ollama)")
    const check = await run(["model", "status", "--check"], down())
    expect(check.code).toBe(4)
    const checkJson = await run(["model", "status", "--check", "--json"], down())
    expect(checkJson.code).toBe(4)
    expect(JSON.parse(checkJson.stdout).backends.find((b: { backend: string }) => b.backend === "ollama").available).toBe(false)
    const up = await run(["model", "status", "--backend", "ollama", "--check"])
    expect(up.code).toBe(0)
    expect(up.stderr).toBe("")
  })
})

describe("help", () => {
  it("is plain when piped even without NO_COLOR, has no @effect/cli boilerplate, and lists --hub-endpoint", async () => {
    const env = envWith()
    delete env["NO_COLOR"]
    const root = await runCli(["--help"], { cwd: dir, env })
    expect(root.code).toBe(0)
    expect(root.stdout).not.toContain("\x1b")
    expect(root.stdout).toContain("--hub-endpoint <url>")
    expect(root.stdout).toContain("  model status ")
    const status = await runCli(["model", "status", "--help"], { cwd: dir, env })
    expect(status.stdout).toContain("  llmspell model status [--json]")
    expect(status.stdout).toContain("--check")
    for (const boilerplate of ["A true or false value", "This setting is optional", "$ status", "--wizard", "--log-level"]) {
      expect(status.stdout).not.toContain(boilerplate)
    }
  })

  it("`model bogus` names the model subcommands; the old message is gone", async () => {
    const result = await run(["model", "bogus"])
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    expect(result.stderr).toBe(
      "error: `llmspell model` has no command 'bogus'; its commands are status, list, pull, import, available, info, remove, verify, install-ollama\n" +
        "hint: see `llmspell model --help`\n"
    )
  })

  it.runIf(hasScript)("on a terminal: bold headings, none with NO_COLOR", async () => {
    const coloured = onTerminal(cliLine("--help"), { ...envWith(), NO_COLOR: "" })
    await coloured.exited
    expect(coloured.output().stdout).toContain("\x1b[1mUsage:")
    const plain = onTerminal(cliLine("--help"), envWith())
    await plain.exited
    expect(plain.output().stdout).toContain("Usage:")
    expect(plain.output().stdout).not.toContain("\x1b")
  })
})

describe("--json", () => {
  it("works before the subcommand and on every command, install-ollama included", async () => {
    const list = await run(["--json", "model", "list", "--backend", "ollama"])
    expect(list.code).toBe(0)
    expect(JSON.parse(list.stdout).models.map((m: { name: string }) => m.name)).toContain("present:latest")
    const install = await run(["model", "install-ollama", "--json"])
    expect(install.code).toBe(0)
    const report = Schema.decodeUnknownSync(Schema.parseJson(InstallOllamaReport))(install.stdout.trim())
    expect(report).toMatchObject({ installedVersion: null, server: { available: true }, ran: false })
  })
})

describe("a table of 130,000 models", () => {
  it("prints every row (the table printer used to overflow the stack)", async () => {
    const many = await startFakeOllama({ models: Array.from({ length: 130_000 }, (_, i) => fakeModel(`m${i}:latest`)) })
    try {
      const result = await run(["model", "list", "--backend", "ollama"], { OLLAMA_HOST: `${many.host}:${many.port}` })
      expect(result.stderr).toBe("")
      expect(result.code).toBe(0)
      expect(result.stdout.trimEnd().split("\n")).toHaveLength(130_001)
    } finally {
      await many.close()
    }
  }, 120_000)
})

describe("model output", () => {
  it("piped: passed through unchanged", async () => {
    const result = await run(["run", "-m", "evil@ollama", "hi"])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(`${EVIL}\n`)
  })

  it.runIf(hasScript)("on a terminal: escape sequences stripped, the text kept", async () => {
    const term = onTerminal(cliLine("run -m evil@ollama hi"), envWith())
    expect((await term.exited).code).toBe(0)
    const out = term.output().stdout
    expect(out).toContain("safe red end")
    expect(out).not.toContain("pwned")
    expect(out).not.toContain("\x1b[31m")
    expect(out).not.toContain("\x1b[2J")
  })
})

describe.runIf(hasScript)("the terminal", () => {
  it("a loading spinner on stderr while the model loads, erased when it answers", async () => {
    fake.setFault("/api/chat", { kind: "stall", after: 0, times: 1 })
    const term = onTerminal(cliLine("run -m present@ollama hi"), envWith())
    try {
      await term.until(({ stdout }) => /loading present@ollama \(1\.2 MiB\)…/.test(stdout))
    } finally {
      term.child.kill("SIGTERM")
      await term.exited
      fake.clearFaults()
    }
  })

  it("the pull bar on 80 columns: figures first, every redraw within 79 characters", async () => {
    fake.setFault("/api/pull", { kind: "stall", after: 3, times: 1 })
    const term = onTerminal(cliLine("model pull tiny@ollama"), envWith(), 80)
    try {
      await term.until(({ stdout }) => /\d+(\.\d)?% .*\[[#-]+\]/.test(stdout))
    } finally {
      term.child.kill("SIGTERM")
      await term.exited
      fake.clearFaults()
    }
    // eslint-disable-next-line no-control-regex
    const redraws = term.output().stdout.split(/\r\x1b\[2K|\r?\n/).filter((s) => s.includes("%"))
    expect(redraws.length).toBeGreaterThan(0)
    for (const line of redraws) {
      expect(line.length).toBeLessThanOrEqual(79)
      expect(line).toMatch(/^\d+(\.\d)?% /)
    }
  })

  it("TERM=dumb gets plain lines, no redraws", async () => {
    const term = onTerminal(cliLine("model pull tiny@ollama --force"), envWith({ TERM: "dumb" }))
    expect((await term.exited).code).toBe(0)
    expect(term.output().stdout).not.toContain("\x1b[2K")
    expect(term.output().stdout).toContain("tiny:latest: done 100%")
  })
})

describe.runIf(hasTmux)("the terminal resized (tmux)", () => {
  it("the bar follows the new width after SIGWINCH", async () => {
    // A pull that sends some progress, then is held until the window has been resized, then carries on
    // (paced, so several redraws follow): what is drawn before the gate opens is at 100 columns, what comes
    // after must fit 50. No step depends on how fast the machine is.
    const resized = gate()
    const slow = await startFakeOllama({ pullable: { tiny: [fakeLayer("slow-weights", 400_000)] }, pullSteps: 400, chunkDelayMs: 20 })
    slow.setFault("/api/pull", { kind: "hold", after: 10, until: resized })
    const socket = join(dir, "tmux.sock")
    const log = join(dir, "tmux.log")
    writeFileSync(log, "")
    const env = envWith({ OLLAMA_HOST: `${slow.host}:${slow.port}`, PATH: process.env["PATH"] ?? "/usr/bin:/bin" })
    const tmux = (...args: Array<string>) => execFileSync("tmux", ["-S", socket, "-f", "/dev/null", ...args], { env })
    /** Resolves when the pane's raw output (from `pipe-pane`) satisfies the test. */
    const untilLog = (test: (text: string) => boolean) =>
      new Promise<string>((resolve) => {
        const check = () => {
          const text = readFileSync(log, "utf8")
          if (!test(text)) return false
          watcher.close()
          resolve(text)
          return true
        }
        const watcher = watch(log, () => void check())
        check()
      })
    // eslint-disable-next-line no-control-regex
    const redraws = (text: string) => text.split(/\r\x1b\[2K|\r?\n/).filter((s) => /\d%/.test(s))
    try {
      // The pane waits for the log pipe before it starts the pull, so no output escapes the log.
      const go = `tmux -S '${socket}' wait-for piped`
      tmux("new-session", "-d", "-s", "pull", "-x", "100", "-y", "24", `${go}; ${cliLine("model pull tiny@ollama")}; sleep 60`)
      tmux("pipe-pane", "-t", "pull", "-o", `cat >> '${log}'`)
      tmux("wait-for", "-S", "piped")
      await slow.http.reached("held", { route: "/api/pull" })
      const before = await untilLog((text) => redraws(text).length >= 1)
      expect(redraws(before).every((line) => line.length > 49 && line.length <= 99)).toBe(true)
      tmux("resize-window", "-t", "pull", "-x", "50", "-y", "24")
      resized.open()
      const after = await untilLog((text) => redraws(text.slice(before.length)).some((line) => line.length <= 49))
      const narrow = redraws(after.slice(before.length)).filter((line) => line.length <= 49)
      expect(narrow[0]).toMatch(/^\d+(\.\d)?% /)
    } finally {
      execFileSync("tmux", ["-S", socket, "kill-server"], { env })
      await slow.close()
    }
  })
})

describe("signals", () => {
  const stopRun = async (signal: NodeJS.Signals) => {
    const env = isolatedEnv(dir, { PATH: emptyPath })
    const p = start(process.execPath, [bin, "run", "-m", "./tiny.gguf", "hello", "--max-tokens", "100000"], env)
    // Generating: the first token is on stdout.
    await p.until(({ stdout }) => stdout.length > 0)
    p.child.kill(signal)
    return { ...(await p.exited), ...p.output() }
  }

  it("run stopped by Ctrl-C exits 130 after its cleanup, not by the signal", async () => {
    const result = await stopRun("SIGINT")
    expect(result).toMatchObject({ code: 130, signal: null })
    expect(result.stderr).toBe("interrupted\n")
  })

  it("run stopped by SIGTERM exits 143 the same way", async () => {
    const result = await stopRun("SIGTERM")
    expect(result).toMatchObject({ code: 143, signal: null })
    expect(result.stderr).toBe("interrupted\n")
  })

  it("an interrupted pull --json ends with an {interrupted: true} record", async () => {
    fake.setFault("/api/pull", { kind: "stall", after: 3, times: 1 })
    const p = start(process.execPath, [bin, "model", "pull", "tiny@ollama", "--force", "--json"], envWith())
    try {
      await p.until(({ stdout }) => stdout.includes('"downloading"'))
      p.child.kill("SIGINT")
      const exit = await p.exited
      expect(exit).toMatchObject({ code: 130, signal: null })
    } finally {
      fake.clearFaults()
    }
    const records = p.output().stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(records.at(-1)).toMatchObject({ interrupted: true, model: "tiny:latest", phase: "downloading" })
    expect(records.slice(0, -1).every((r) => r["interrupted"] === undefined)).toBe(true)
  })
})

/**
 * The CLI shell: in-process through `main(argv, env, where)` with a captured CliIO (config show/path,
 * model status, errors, --json, exit codes, usage errors once, stack traces only when asked), then
 * a few runs of the built `dist/cli.js` in a child process (exit codes, stdout vs stderr, --help).
 * Every run gets a temp HOME/cwd: nothing reads the real HOME or its config.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { execFile, execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { makeCapture } from "../src/cli/CliIO.js"
import { main } from "../src/cli/main.js"
import { describeFailure } from "../src/cli/output.js"
import { BackendError, BackendUnavailable, ConfigError, InvalidModelSpec, ModelNotFound, ProviderNotAvailable, UsageError } from "../src/domain/Errors.js"
import { ExitCode } from "../src/domain/Failure.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { unusedPort } from "./support/ports.js"

// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "")

let dir: string
let home: string
let closedPort: number
let fake: FakeOllama

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmspell-cli-"))
  home = path.join(dir, "home")
  fs.mkdirSync(home)
  // A port nobody listens on: bind, note it, close.
  closedPort = await unusedPort()
  fake = await startFakeOllama({ models: [fakeModel("present:latest")] })
})
afterAll(async () => {
  await fake?.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const baseEnv = () => ({ HOME: home, XDG_CONFIG_HOME: path.join(dir, "xdg"), OLLAMA_HOST: `127.0.0.1:${closedPort}` })

/** One in-process invocation; argv as typed after `llmspell`. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Effect.Effect<Result> =>
  Effect.gen(function*() {
    const capture = makeCapture()
    const code = yield* main(["node", "llmspell", ...args], { ...baseEnv(), ...env }, { cwd: dir, home }).pipe(
      Effect.provide(Layer.merge(capture.layer, NodeContext.layer))
    )
    return { code, stdout: capture.stdout(), stderr: stripAnsi(capture.stderr()) }
  })

const writeConfig = (name: string, text: string) => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, text)
  return file
}

describe("config show / config path (in-process)", () => {
  it.effect("config show --json: every value with its source, secrets redacted", () =>
    Effect.gen(function*() {
      const file = writeConfig("show.toml", `[providers.workstation]\nprovider_type = "ollama"\nbase_url = "http://10.0.0.5:11434"\n`)
      const r = yield* cli(["config", "show", "--json", "--config", file], { HF_TOKEN: "hf_topsecret", LLMSPELL_GGUF_THREADS: "2" })
      expect(r.code).toBe(0)
      expect(r.stderr).toBe("")
      const doc = JSON.parse(r.stdout) as { file: string; entries: Array<{ key: string; value: unknown; source: string }> }
      expect(doc.file).toBe(file)
      const byKey = new Map(doc.entries.map((e) => [e.key, e]))
      expect(byKey.get("providers.workstation.base_url")).toStrictEqual({ key: "providers.workstation.base_url", value: "http://10.0.0.5:11434", source: file })
      expect(byKey.get("providers.ollama.base_url")).toMatchObject({ value: `http://127.0.0.1:${closedPort}`, source: "env OLLAMA_HOST" })
      expect(byKey.get("providers.gguf.threads")).toMatchObject({ value: 2, source: "env LLMSPELL_GGUF_THREADS" })
      expect(byKey.get("providers.gguf.model_directory")).toMatchObject({ value: `${home}/.llmspell/models`, source: "default" })
      expect(byKey.get("hub.token")).toMatchObject({ value: "<redacted>", source: "env HF_TOKEN" })
      expect(r.stdout).not.toContain("hf_topsecret")
    }))

  it.effect("config show: a table, flags shown as sources; warnings on stderr", () =>
    Effect.gen(function*() {
      const file = writeConfig("warn.toml", `[providers.ollama]\nmystery = 1\n`)
      const r = yield* cli(["config", "show", "--config", file, "--models-dir", "/flag/models"])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`config file: ${file}`)
      expect(r.stdout).toMatch(/^KEY +VALUE +SOURCE$/m)
      expect(r.stdout).toMatch(/^providers\.gguf\.model_directory +\/flag\/models +flag --models-dir$/m)
      expect(r.stderr).toBe(`warning: ${file}: providers.ollama.mystery: unknown key, kept in the instance's options\n`)
    }))

  it.effect("config path: the file used, or that none was and where it looked", () =>
    Effect.gen(function*() {
      const none = yield* cli(["config", "path"])
      expect(none.code).toBe(0)
      expect(none.stdout).toContain("no config file found")
      expect(none.stdout).toContain(path.join(dir, "llmspell.toml"))
      expect(none.stdout).toContain(path.join(dir, "xdg", "llmspell", "config.toml"))
      const json = yield* cli(["config", "path", "--json"])
      expect(JSON.parse(json.stdout)).toStrictEqual({
        file: null,
        searched: [
          path.join(dir, "llmspell.toml"),
          path.join(dir, "xdg", "llmspell", "config.toml"),
          path.join(home, ".llmspell", "config.toml")
        ]
      })
      const file = writeConfig("via-env.toml", "")
      const found = yield* cli(["config", "path"], { LLMSPELL_CONFIG: file })
      expect(found.stdout.trim()).toBe(`${file} (env LLMSPELL_CONFIG)`)
    }))

  it.effect("a global option works anywhere in argv", () =>
    Effect.gen(function*() {
      const file = writeConfig("anywhere.toml", `[providers]\ndefault_backend = "ollama"\n`)
      for (const args of [["--config", file, "config", "show", "--json"], ["config", "show", "--json", `--config=${file}`]]) {
        const r = yield* cli(args)
        expect(r.code).toBe(0)
        expect(JSON.parse(r.stdout).file).toBe(file)
      }
    }))
})

describe("model status (in-process)", () => {
  it.effect("--json lists every configured instance with its type and endpoint", () =>
    Effect.gen(function*() {
      const file = writeConfig("status.toml", `
[providers.workstation]
provider_type = "ollama"
base_url = "http://127.0.0.1:${closedPort}"

[providers.gguf]
model_directory = "${dir}/models"
`)
      const r = yield* cli(["model", "status", "--json", "--config", file])
      expect(r.code).toBe(0)
      const doc = JSON.parse(r.stdout) as { backends: Array<{ instance: string; backend: string; endpoint: string; available: boolean }> }
      expect(doc.backends.map((b) => [b.instance, b.backend, b.endpoint])).toStrictEqual([
        ["ollama", "ollama", `http://127.0.0.1:${closedPort}`],
        ["gguf", "gguf", `${dir}/models`],
        ["workstation", "ollama", `http://127.0.0.1:${closedPort}`]
      ])
      // Nothing listens there: status reports it, it does not fail.
      expect(doc.backends.find((b) => b.instance === "ollama")?.available).toBe(false)
    }))

  it.effect("plain text names each instance, its type and where it points", () =>
    Effect.gen(function*() {
      const r = yield* cli(["model", "status", "--backend", "ollama"])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`ollama (ollama) http://127.0.0.1:${closedPort}`)
    }))
})

describe("errors and exit codes (in-process)", () => {
  it.effect("a bad config: exit 2, every problem on stderr as error:/hint:, nothing on stdout, no stack", () =>
    Effect.gen(function*() {
      const file = writeConfig("bad.toml", `[providers.gguf]\nthreads = 0\ndevice = "tpu"\n[providers.ollama]\nbase_url = "ftp://x"\n`)
      // OLLAMA_HOST would override (and so hide) the bad base_url: leave it unset here.
      const r = yield* cli(["config", "show", "--config", file], { OLLAMA_HOST: "" })
      expect(r.code).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toMatch(/^error: invalid configuration \(3 problems\):\n/)
      expect(r.stderr).toContain(`${file}: providers.gguf.threads: must be "auto" or a positive integer (got 0)`)
      expect(r.stderr).toContain(`${file}: providers.gguf.device: must be one of auto, cuda, metal, vulkan, cpu (got "tpu")`)
      expect(r.stderr).toContain(`${file}: providers.ollama.base_url: must be an http:// or https:// URL, or host:port (got "ftp://x")`)
      expect(r.stderr).toMatch(/^hint: fix .* \(it was not changed\)/m)
      expect(r.stderr).not.toMatch(/^\s+at /m)
    }))

  it.effect("--json errors are {error:{_tag,message,hint}} on stdout", () =>
    Effect.gen(function*() {
      const file = writeConfig("bad2.toml", `[providers.gguf]\nthreads = 0\n`)
      const r = yield* cli(["config", "show", "--config", file, "--json"])
      expect(r.code).toBe(2)
      expect(r.stderr).toBe("")
      const doc = JSON.parse(r.stdout) as { error: { _tag: string; message: string; hint: string } }
      expect(Object.keys(doc)).toStrictEqual(["error"])
      expect(Object.keys(doc.error)).toStrictEqual(["_tag", "message", "hint"])
      expect(doc.error._tag).toBe("ConfigError")
      expect(doc.error.message).toContain("providers.gguf.threads")
    }))

  it.effect("an invalid spec: exit 2 with the grammar in the hint", () =>
    Effect.gen(function*() {
      const r = yield* cli(["run", "--model", "x@", "hi"])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/^error: invalid model spec "x@": nothing follows '@'/)
      expect(r.stderr).toContain("hint: a model spec is [provider/]model[@backend]")
      const json = yield* cli(["run", "--model", "openai/gpt-4o", "hi", "--json"])
      expect(json.code).toBe(2)
      expect(JSON.parse(json.stdout).error._tag).toBe("MissingCredentials")
    }))

  it.effect("an unreachable Ollama: exit 4 with how to start it", () =>
    Effect.gen(function*() {
      const r = yield* cli(["run", "--model", "present@ollama", "hi"])
      expect(r.code).toBe(4)
      expect(r.stderr).toMatch(/^error: .*unavailable/)
      expect(r.stderr).toMatch(/^hint: .*ollama serve/m)
    }))

  it.effect("a missing model: exit 3 with the pull hint; a present one: exit 0", () =>
    Effect.gen(function*() {
      const env = { OLLAMA_HOST: `${fake.host}:${fake.port}` }
      const missing = yield* cli(["run", "--model", "ghost@ollama", "hi"], env)
      expect(missing.code).toBe(3)
      expect(missing.stderr).toMatch(/^hint: run `llmspell model pull /m)
      const json = yield* cli(["run", "--model", "ghost@ollama", "hi", "--json"], env)
      expect(json.code).toBe(3)
      expect(JSON.parse(json.stdout).error._tag).toBe("ModelNotFound")
      const ok = yield* cli(["run", "--model", "present@ollama", "hi"], env)
      expect(ok.code).toBe(0)
      expect(ok.stdout.length).toBeGreaterThan(0)
    }))

  it.effect("a backend failure that is not one of the above: exit 1", () =>
    Effect.gen(function*() {
      fake.setFault("/api/chat", { kind: "status", status: 500, message: "boom", times: 1 })
      fake.setFault("/api/generate", { kind: "status", status: 500, message: "boom", times: 1 })
      const r = yield* cli(["run", "--model", "present@ollama", "hi"], { OLLAMA_HOST: `${fake.host}:${fake.port}` })
      fake.clearFaults()
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^error: /)
    }))

  it.effect("usage errors: exit 2, the message printed once, --json as UsageError", () =>
    Effect.gen(function*() {
      const r = yield* cli(["bogus"])
      expect(r.code).toBe(2)
      expect(r.stdout).toBe("")
      // every command named, once (the list grows with the commands; each is one of the CLI's)
      expect(r.stderr).toMatch(/^error: `llmspell` has no command 'bogus'; its commands are ([a-z]+, )+[a-z]+\nhint: see `llmspell --help`\n$/)
      const named = /its commands are ([^\n]+)/.exec(r.stderr)![1]!.split(", ")
      expect(new Set(named).size).toBe(named.length)
      expect(named).toEqual(expect.arrayContaining(["model", "run", "chat", "embed", "serve", "launch", "ps", "stop", "config"]))

      const unknown = yield* cli(["config", "show", "--nope"])
      expect(unknown).toStrictEqual({
        code: 2,
        stdout: "",
        stderr: "error: Received unknown argument: '--nope'\nhint: see `llmspell config show --help`\n"
      })

      const json = yield* cli(["config", "show", "--nope", "--json"])
      expect(json.code).toBe(2)
      expect(JSON.parse(json.stdout)).toStrictEqual({
        error: { _tag: "UsageError", message: "Received unknown argument: '--nope'", hint: "see `llmspell config show --help`" }
      })

      const missingValue = yield* cli(["config", "show", "--config"])
      expect(missingValue).toStrictEqual({ code: 2, stdout: "", stderr: "error: --config needs a value (--config <file>)\nhint: see `llmspell --help`\n" })
    }))

  it.effect("a stack trace only with --verbose or LLMSPELL_DEBUG=1", () =>
    Effect.gen(function*() {
      const file = writeConfig("bad3.toml", `[providers.gguf]\nthreads = 0\n`)
      const quiet = yield* cli(["config", "show", "--config", file])
      expect(quiet.stderr).not.toMatch(/^\s+at /m)
      const verbose = yield* cli(["config", "show", "--config", file, "--verbose"])
      expect(verbose.code).toBe(2)
      expect(verbose.stderr).toMatch(/^\s+at /m)
      const debug = yield* cli(["config", "show", "--config", file], { LLMSPELL_DEBUG: "1" })
      expect(debug.stderr).toMatch(/^\s+at /m)
    }))

  it.effect("--help and --version exit 0 with text on stdout", () =>
    Effect.gen(function*() {
      const help = yield* cli(["--help"])
      expect(help.code).toBe(0)
      expect(stripAnsi(help.stdout)).toContain("manage and run local LLMs")
      expect(help.stderr).toBe("")
      const sub = yield* cli(["config", "show", "--help"])
      expect(sub.code).toBe(0)
      expect(stripAnsi(sub.stdout)).toContain("print the effective configuration")
      const version = yield* cli(["--version"])
      expect(version.code).toBe(0)
      expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
    }))
})

describe("the exit-code table (describeFailure)", () => {
  it.each([
    [new ConfigError({ problems: ["x"] }), ExitCode.Usage],
    [new InvalidModelSpec({ spec: "", reason: "empty" }), ExitCode.Usage],
    [new ProviderNotAvailable({ provider: "openai", reason: "later" }), ExitCode.Usage],
    [new UsageError({ reason: "no prompt" }), ExitCode.Usage],
    [new ModelNotFound({ model: "m", backend: "ollama", pullSpec: "m@ollama" }), ExitCode.ModelNotFound],
    [new BackendUnavailable({ backend: "ollama", reason: "refused" }), ExitCode.BackendUnavailable],
    [new BackendError({ backend: "ollama", operation: "chat", reason: "500" }), ExitCode.Failure]
  ] as const)("%s → %i", (error, code) => {
    expect(describeFailure(Cause.fail(error), { json: false, verbose: false }).code).toBe(code)
    expect(describeFailure(Cause.fail(error), { json: true, verbose: false }).code).toBe(code)
  })

  it("values: 0 ok, 1 failure, 2 usage, 3 model not found, 4 backend unavailable, 130 interrupted", () => {
    expect(ExitCode).toStrictEqual({ Ok: 0, Failure: 1, Usage: 2, ModelNotFound: 3, BackendUnavailable: 4, Interrupted: 130 })
    expect(describeFailure(Cause.interrupt(0 as never), { json: false, verbose: false }).code).toBe(130)
  })

  it("a defect is exit 1, says it is a bug, and shows the cause only with --verbose", () => {
    const quiet = describeFailure(Cause.die(new Error("kaboom")), { json: false, verbose: false })
    expect(quiet.code).toBe(1)
    expect(quiet.stderr).toMatch(/^error: unexpected: kaboom\nhint: this is a bug/)
    expect(quiet.stderr).not.toMatch(/^\s+at /m)
    expect(describeFailure(Cause.die(new Error("kaboom")), { json: false, verbose: true }).stderr).toMatch(/^\s+at /m)
    const json = describeFailure(Cause.die(new Error("kaboom")), { json: true, verbose: false })
    expect(JSON.parse(json.stdout!).error).toMatchObject({ _tag: "UnexpectedError", message: "kaboom" })
  })
})

// ---------------------------------------------------------------------------------------------
// The built binary
// ---------------------------------------------------------------------------------------------

describe("dist/cli.js in a child process", () => {
  const root = fileURLToPath(new URL("..", import.meta.url))
  const bin = path.join(root, "dist", "cli.js")

  beforeAll(() => {
    // `npm test` builds first; a direct `vitest run` rebuilds when dist is missing or older than src.
    const newest = (d: string): number =>
      fs.readdirSync(d, { withFileTypes: true }).reduce((m, e) => {
        const p = path.join(d, e.name)
        return Math.max(m, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs)
      }, 0)
    if (!fs.existsSync(bin) || fs.statSync(bin).mtimeMs < newest(path.join(root, "src"))) {
      execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: root, stdio: "ignore" })
    }
  })

  const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
    new Promise<Result>((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args],
        { cwd: dir, env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...baseEnv(), ...env } },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
          resolve({ code, stdout, stderr: stripAnsi(stderr) })
        }
      )
    })

  it("--help: exit 0, the command tree on stdout", async () => {
    const r = await run(["--help"])
    expect(r.code).toBe(0)
    const text = stripAnsi(r.stdout)
    expect(text).toContain("llmspell")
    expect(text).toContain("manage and run local LLMs")
    for (const command of ["model status", "model list", "model pull", "run", "config show", "config path"]) {
      expect(text).toContain(command)
    }
    expect(r.stderr).toBe("")
  })

  it("config show --json: exit 0, JSON on stdout only", async () => {
    const r = await run(["config", "show", "--json"])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe("")
    expect(JSON.parse(r.stdout).file).toBeNull()
  })

  it("a bad config: exit 2, all problems on stderr, stdout empty", async () => {
    const file = writeConfig("bin-bad.toml", `[providers.gguf]\nthreads = 0\nmax_loaded_models = 0\n[hub]\nendpoint = "ftp://x"\n`)
    const r = await run(["model", "status", "--config", file])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).toContain("invalid configuration (3 problems)")
    expect(r.stderr).toContain("providers.gguf.threads")
    expect(r.stderr).toContain("providers.gguf.max_loaded_models")
    expect(r.stderr).toContain("hub.endpoint")
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })

  it("--json errors on stdout; usage errors exit 2 once", async () => {
    const spec = await run(["run", "--model", "@ollama", "hi", "--json"])
    expect(spec.code).toBe(2)
    expect(JSON.parse(spec.stdout).error._tag).toBe("InvalidModelSpec")
    const usage = await run(["bogus"])
    expect(usage.code).toBe(2)
    expect(usage.stdout).toBe("")
    expect(usage.stderr.match(/has no command 'bogus'/g)).toHaveLength(1)
  })

  it("an unreachable Ollama: exit 4", async () => {
    const r = await run(["run", "--model", "x@ollama", "hi"])
    expect(r.code).toBe(4)
    expect(r.stdout).toBe("")
    expect(r.stderr).toMatch(/^error: /)
  })
})

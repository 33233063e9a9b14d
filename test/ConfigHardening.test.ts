/**
 * Config under hostile or careless input (issue 9, items 10 and 13): oversized files, FIFOs and
 * other non-regular files, floods of unknown keys, credentials in URLs, secret-looking unknown keys,
 * and ports fetch refuses. Files live in a temp directory passed in as cwd/home; nothing reads the
 * real HOME.
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import {
  FETCH_BAD_PORTS,
  type LlmspellConfig,
  MAX_INSTANCES,
  MAX_WARNINGS,
  type OllamaInstanceConfig,
  parseOllamaHost,
  redactUrl,
  resolveConfig
} from "../src/domain/ConfigSchema.js"
import { ConfigError } from "../src/domain/Errors.js"
import { ExitCode, exitCodeFor } from "../src/domain/Failure.js"
import * as ConfigLive from "../src/layers/ConfigLive.js"

const HOME = "/home/tester"
const FILE = "/etc/llmspell/test.toml"

const resolve = (text: string | undefined, env: Record<string, string> = {}) =>
  resolveConfig({ home: HOME, env, ...(text !== undefined ? { file: { path: FILE, text } } : {}) })
const good = (text: string | undefined, env: Record<string, string> = {}): LlmspellConfig => {
  const r = resolve(text, env)
  if (Either.isLeft(r)) throw new Error(`expected a valid config, got:\n${r.left.problems.join("\n")}`)
  return r.right
}
const problems = (text: string | undefined, env: Record<string, string> = {}): ReadonlyArray<string> => {
  const r = resolve(text, env)
  if (Either.isRight(r)) throw new Error("expected a config error")
  return r.left.problems
}
const ollama = (config: LlmspellConfig) => config.instances.find((i) => i.name === "ollama") as OllamaInstanceConfig
const everythingPrinted = (config: LlmspellConfig) => JSON.stringify({ entries: config.entries, warnings: config.warnings, instances: config.instances })

let dir: string
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmspell-cfg-hard-"))
})
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true })
})

const load = (configFile: string | undefined, env: Record<string, string> = {}) =>
  ConfigLive.load({ configFile, env: { HOME: dir, XDG_CONFIG_HOME: path.join(dir, "xdg"), ...env }, cwd: dir, home: dir })

const loadError = (configFile: string | undefined, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(load(configFile, env))
    if (!Exit.isFailure(exit) || exit.cause._tag !== "Fail") throw new Error(`expected a ConfigError, got ${String(exit)}`)
    expect(exit.cause.error).toBeInstanceOf(ConfigError)
    expect(exitCodeFor(exit.cause.error)).toBe(ExitCode.Usage)
    return exit.cause.error
  })

describe("config files that are not small regular files", () => {
  it.effect("a file over 1 MiB is refused unread, naming the file and its size", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "big.toml")
      fs.writeFileSync(file, `# ${"x".repeat(ConfigLive.MAX_CONFIG_BYTES)}\n`)
      const error = yield* loadError(file)
      expect(error.file).toBe(file)
      expect(error.message).toContain(file)
      expect(error.message).toContain("over the 1 MiB limit")
      expect(error.message).toContain(`${fs.statSync(file).size} bytes`)
    }))

  it.effect("a file of exactly 1 MiB is read", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "edge.toml")
      const head = "[providers]\ndefault_backend = \"ollama\"\n#"
      fs.writeFileSync(file, `${head}${"x".repeat(ConfigLive.MAX_CONFIG_BYTES - head.length - 1)}\n`)
      expect(fs.statSync(file).size).toBe(ConfigLive.MAX_CONFIG_BYTES)
      const config = yield* load(file)
      expect(config.defaultBackend).toBe("ollama")
    }))

  // Opening a FIFO for reading blocks until a writer appears: the old code hung here forever.
  const fifo = () => {
    const p = path.join(dir, "config.fifo")
    execFileSync("mkfifo", [p])
    return p
  }

  it.effect("a FIFO given with --config is refused at once with its path and type", () =>
    Effect.gen(function*() {
      const p = fifo()
      const error = yield* loadError(p)
      expect(error.message).toContain(p)
      expect(error.message).toContain("flag --config")
      expect(error.message).toContain("is a FIFO (named pipe), not a regular file")
    }))

  it.effect("a FIFO in $LLMSPELL_CONFIG is refused too", () =>
    Effect.gen(function*() {
      const p = fifo()
      const error = yield* loadError(undefined, { LLMSPELL_CONFIG: p })
      expect(error.message).toContain("env LLMSPELL_CONFIG")
      expect(error.message).toContain("FIFO")
    }))

  it.effect("a FIFO found by discovery (./llmspell.toml) is refused, not opened", () =>
    Effect.gen(function*() {
      execFileSync("mkfifo", [path.join(dir, "llmspell.toml")])
      const error = yield* loadError(undefined)
      expect(error.message).toContain(path.join(dir, "llmspell.toml"))
      expect(error.message).toContain("working directory")
      expect(error.message).toContain("FIFO")
    }))

  it.effect("a directory, a socket and a character device are refused with their type", () =>
    Effect.gen(function*() {
      const sub = path.join(dir, "sub")
      fs.mkdirSync(sub)
      expect((yield* loadError(sub)).message).toContain("is a directory, not a regular file")
      expect((yield* loadError("/dev/null")).message).toContain("is a character device, not a regular file")
      const socketPath = path.join(dir, "s.sock")
      const server = net.createServer()
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void server.listen(socketPath, () => resume(Effect.void))),
        () => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      expect((yield* loadError(socketPath)).message).toContain("is a socket, not a regular file")
    }).pipe(Effect.scoped))

  it.effect("a symlink to a regular file is read", () =>
    Effect.gen(function*() {
      const real = path.join(dir, "real.toml")
      fs.writeFileSync(real, "[providers]\ndefault_backend = \"ollama\"\n")
      fs.symlinkSync(real, path.join(dir, "link.toml"))
      expect((yield* load(path.join(dir, "link.toml"))).defaultBackend).toBe("ollama")
    }))
})

describe("floods of unknown keys", () => {
  it("prints at most 20 warnings, then one counting the rest", () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `unknown_${i} = ${i}`).join("\n")
    const config = good(`[providers.ollama]\n${keys}\n`)
    expect(config.warnings).toHaveLength(MAX_WARNINGS + 1)
    expect(config.warnings[0]).toContain("providers.ollama.unknown_0: unknown key")
    expect(config.warnings[MAX_WARNINGS]).toBe(`… and ${5000 - MAX_WARNINGS} more warnings like these (not shown)`)
  })

  it("a file just under 1 MiB full of unknown keys resolves without overflowing the stack", () => {
    const line = (i: number) => `k${i} = 1\n`
    let text = "[providers.ollama]\n"
    let i = 0
    while (text.length < ConfigLive.MAX_CONFIG_BYTES - 32) text += line(i++)
    const config = good(text)
    expect(config.warnings).toHaveLength(MAX_WARNINGS + 1)
    expect(config.warnings[MAX_WARNINGS]).toContain(`${i - MAX_WARNINGS} more warnings`)
  })

  it("exactly 20 warnings are all shown, with no count line", () => {
    const keys = Array.from({ length: MAX_WARNINGS }, (_, i) => `u${i} = ${i}`).join("\n")
    expect(good(`[providers.ollama]\n${keys}\n`).warnings).toHaveLength(MAX_WARNINGS)
  })
})

describe("secrets", () => {
  it("unknown keys whose names look secret are redacted in entries; warnings never carry values", () => {
    const config = good(`
[providers.ollama]
proxy_token = "tok-SECRET1"
api_key = "key-SECRET2"
client_secret = "sec-SECRET3"
db_password = "pw-SECRET4"
auth_header = "auth-SECRET5"
keep_alive = "10m"
`)
    const printed = everythingPrinted({ ...config, instances: [] })
    for (const secret of ["SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5"]) expect(printed).not.toContain(secret)
    const entry = (key: string) => config.entries.find((e) => e.key === `providers.ollama.${key}`)
    expect(entry("proxy_token")).toMatchObject({ value: "<redacted>", secret: true })
    expect(entry("auth_header")).toMatchObject({ value: "<redacted>", secret: true })
    expect(entry("keep_alive")).toMatchObject({ value: "10m", secret: false })
    // Still usable by the instance: only the printing is redacted.
    expect(ollama(config).options["proxy_token"]).toBe("tok-SECRET1")
  })

  it("an invalid value under a secret-looking key is reported without the value", () => {
    const ps = problems(`[hub]\ntoken = 12345678\n`)
    expect(ps.join("\n")).toContain("hub.token")
    expect(ps.join("\n")).not.toContain("12345678")
  })
})

describe("credentials in base_url (Ollama behind a reverse proxy)", () => {
  it("become a Basic Authorization header and leave the URL, which is printed redacted", () => {
    const config = good(`[providers.ollama]\nbase_url = "https://alice:s%3Acret@proxy.example:8443/ollama"\n`)
    const instance = ollama(config)
    expect(instance.baseUrl).toBe("https://proxy.example:8443/ollama")
    expect(Redacted.value(instance.authorization!)).toBe(`Basic ${Buffer.from("alice:s:cret").toString("base64")}`)
    const entry = config.entries.find((e) => e.key === "providers.ollama.base_url")!
    expect(entry.value).toBe("https://<redacted>@proxy.example:8443/ollama")
    expect(JSON.stringify(config.entries)).not.toContain("s%3Acret")
    expect(JSON.stringify(config.entries)).not.toContain("alice")
  })

  it("OLLAMA_HOST=user:pw@host:port works the same way", () => {
    expect(parseOllamaHost("bob:hunter2@10.0.0.5:8080")).toBe("http://bob:hunter2@10.0.0.5:8080")
    const config = good(undefined, { OLLAMA_HOST: "bob:hunter2@10.0.0.5:8080" })
    expect(ollama(config).baseUrl).toBe("http://10.0.0.5:8080")
    expect(Redacted.value(ollama(config).authorization!)).toBe(`Basic ${Buffer.from("bob:hunter2").toString("base64")}`)
    expect(JSON.stringify(config.entries)).not.toContain("hunter2")
  })

  it("a URL without credentials sends no Authorization header", () => {
    expect(ollama(good(undefined)).authorization).toBeUndefined()
  })

  it("an invalid base_url with credentials is reported without them", () => {
    const ps = problems(`[providers.ollama]\nbase_url = "ftp://alice:pw-SECRET@host"\n`)
    expect(ps.join("\n")).toContain("must be an http:// or https:// URL")
    expect(ps.join("\n")).toContain("ftp://<redacted>@host")
    expect(ps.join("\n")).not.toContain("pw-SECRET")
  })

  it("HF_ENDPOINT with credentials is refused (the hub takes a token), without printing them", () => {
    const ps = problems(undefined, { HF_ENDPOINT: "https://mirror-user:mirror-SECRET@hub.example" })
    expect(ps).toHaveLength(1)
    expect(ps[0]).toContain("env HF_ENDPOINT: hub.endpoint: must not contain a user name or password")
    expect(ps[0]).toContain("https://<redacted>@hub.example")
    expect(ps[0]).toContain("HF_TOKEN")
    expect(ps[0]).not.toContain("mirror-SECRET")
  })

  it("redactUrl leaves other strings alone", () => {
    expect(redactUrl("http://u:p@h:1/x@y")).toBe("http://<redacted>@h:1/x@y")
    expect(redactUrl("http://h:1/x@y")).toBe("http://h:1/x@y")
    expect(redactUrl("just text @ here")).toBe("just text @ here")
  })
})

describe("every server address takes the forms OLLAMA_HOST takes (issue 19 item 11)", () => {
  const cloud = (config: LlmspellConfig, name: string) => config.instances.find((i) => i.name === name) as { baseUrl?: string }

  it("base_url and hub.endpoint without a scheme: http://, and an Ollama instance's default port", () => {
    const config = good(
      `[providers.vllm]\nprovider_type = "openai_compatible"\nbase_url = "10.0.0.7:8000/v1"\n` +
        `[providers.workstation]\nprovider_type = "ollama"\nbase_url = "10.0.0.5"\n` +
        `[providers.box6]\nprovider_type = "ollama"\nbase_url = "[fd00::5]:9999"\n` +
        `[hub]\nendpoint = "hub.local:9000"\n`
    )
    expect(cloud(config, "vllm").baseUrl).toBe("http://10.0.0.7:8000/v1")
    expect(cloud(config, "workstation").baseUrl).toBe("http://10.0.0.5:11434")
    expect(cloud(config, "box6").baseUrl).toBe("http://[fd00::5]:9999")
    expect(config.hub.endpoint).toBe("http://hub.local:9000")
    expect(good(undefined, { HF_ENDPOINT: "127.0.0.1:9000" }).hub.endpoint).toBe("http://127.0.0.1:9000")
  })

  it("a short form with a bad port is the same error as a URL with one, naming the source", () => {
    const ps = problems(`[providers.vllm]\nprovider_type = "openai_compatible"\nbase_url = "10.0.0.7:99999/v1"\n`)
    expect(ps).toEqual([`${FILE}: providers.vllm.base_url: must have a port from 1 to 65535 (the port is "99999") (got "10.0.0.7:99999/v1")`])
    expect(problems(undefined, { HF_ENDPOINT: "hub.local:6000" })[0]).toMatch(/^env HF_ENDPOINT: hub\.endpoint: port 6000 is one that fetch refuses/)
  })
})

describe("credentials in a URL's query are never shown (issue 19 item 21)", () => {
  it("a query on base_url or hub.endpoint is left out of the URL used and shown, with a warning showing it redacted", () => {
    const config = good(
      `[providers.vllm]\nprovider_type = "openai_compatible"\nbase_url = "http://10.0.0.7:8000/v1?api_key=Q-SECRET-1"\n` +
        `[providers.ollama]\nbase_url = "http://10.0.0.5:11434/?token=Q-SECRET-2"\n` +
        `[hub]\nendpoint = "https://hub.example/?access_token=Q-SECRET-3&page=1"\n`,
      { OLLAMA_HOST: "10.0.0.6:11434/?Token=Q-SECRET-4#sig=Q-SECRET-5" }
    )
    expect((config.instances.find((i) => i.name === "vllm") as { baseUrl: string }).baseUrl).toBe("http://10.0.0.7:8000/v1")
    expect(ollama(config).baseUrl).toBe("http://10.0.0.6:11434")
    expect(config.hub.endpoint).toBe("https://hub.example")
    expect(everythingPrinted(config)).not.toMatch(/Q-SECRET/)
    expect(JSON.stringify(config.instances)).not.toMatch(/Q-SECRET/)
    expect(config.entries.find((e) => e.key === "providers.vllm.base_url")!.value).toBe("http://10.0.0.7:8000/v1?api_key=<redacted>")
    expect(config.entries.find((e) => e.key === "hub.endpoint")!.value).toBe("https://hub.example/?access_token=<redacted>&page=1")
    expect(config.warnings.join("\n")).toContain(`${FILE}: providers.vllm.base_url: "?api_key=<redacted>" is left out`)
    expect(config.warnings.join("\n")).toContain(`env OLLAMA_HOST: providers.ollama.base_url`)
  })

  it("an invalid URL with a credential in its query is reported without it", () => {
    const ps = problems(`[providers.vllm]\nprovider_type = "openai_compatible"\nbase_url = "ftp://h/v1?token=Q-SECRET"\n`)
    expect(ps.join("\n")).toContain("ftp://h/v1?token=<redacted>")
    expect(ps.join("\n")).not.toContain("Q-SECRET")
  })
})

describe("a config with thousands of instances (issue 19 item 25)", () => {
  const tables = (n: number) =>
    Array.from({ length: n }, (_, i) => `[providers.o${i}]\nprovider_type = "ollama"\nbase_url = "http://10.0.${i % 250}.1:11434"\n`).join("\n")

  it(`is refused past MAX_INSTANCES with one clear problem naming the count, the limit and why`, () => {
    // the built-in ollama and gguf instances count too
    expect(good(tables(MAX_INSTANCES - 2)).instances).toHaveLength(MAX_INSTANCES)
    const ps = problems(tables(10_000))
    expect(ps).toEqual([
      `${FILE}: providers: 10002 instances (with the built-in ollama and gguf); llmspell takes at most ${MAX_INSTANCES}, ` +
        "since model list and model status ask every one of them"
    ])
  })
})

describe("ports fetch refuses (OLLAMA_HOST=127.0.0.1:1 said \"bad port\" at run time)", () => {
  it("OLLAMA_HOST with a bad port is a config error naming the value and the source", () => {
    const ps = problems(undefined, { OLLAMA_HOST: "127.0.0.1:1" })
    expect(ps).toHaveLength(1)
    expect(ps[0]).toContain("env OLLAMA_HOST: providers.ollama.base_url: port 1 is one that fetch refuses")
    expect(ps[0]).toContain(`(got "127.0.0.1:1")`)
  })

  it("a rejected OLLAMA_HOST with credentials is shown without them", () => {
    const ps = problems(undefined, { OLLAMA_HOST: "alice:pw-SECRET@127.0.0.1:1" })
    expect(ps[0]).toContain(`(got "<redacted>@127.0.0.1:1")`)
    expect(ps.join("\n")).not.toMatch(/pw-SECRET|alice/)
  })

  it("base_url in the file with a bad port names the file and key", () => {
    const ps = problems(`[providers.ollama]\nbase_url = "http://127.0.0.1:6667"\n`)
    expect(ps[0]).toContain(`${FILE}: providers.ollama.base_url: port 6667 is one that fetch refuses`)
  })

  it("ports 0 and over 65535 are refused with the range, not silently replaced by the default", () => {
    expect(problems(undefined, { OLLAMA_HOST: "127.0.0.1:70000" })[0]).toContain("must have a port from 1 to 65535")
    expect(problems(`[providers.ollama]\nbase_url = "http://127.0.0.1:0"\n`)[0]).toContain("must have a port from 1 to 65535")
  })

  it("the bad-port list is exactly what this Node's fetch refuses", async () => {
    for (const port of FETCH_BAD_PORTS) {
      const error = await fetch(`http://127.0.0.1:${port}/`).then(() => undefined, (e: unknown) => e as { cause?: unknown })
      expect(String((error?.cause as Error | undefined)?.message ?? error?.cause), `port ${port}`).toContain("bad port")
    }
  })

  it("ordinary ports (11434, 80 by default, 8080) are fine", () => {
    expect(ollama(good(undefined, { OLLAMA_HOST: "127.0.0.1:8080" })).baseUrl).toBe("http://127.0.0.1:8080")
    expect(ollama(good(`[providers.ollama]\nbase_url = "http://example.test"\n`)).baseUrl).toBe("http://example.test")
  })
})

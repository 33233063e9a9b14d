/**
 * Config resolution (defaults < file < env < flags, with sources), the legacy shapes, expansion,
 * validation, and file discovery. Discovery runs against temp directories passed in as cwd, home and
 * env: nothing here reads or writes the real HOME.
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import {
  type CloudInstanceConfig,
  type ConfigInput,
  defaultInstance,
  expandPath,
  type GgufInstanceConfig,
  type LlmspellConfig,
  type OllamaInstanceConfig,
  parseOllamaHost,
  resolveConfig
} from "../src/domain/ConfigSchema.js"
import { ConfigError } from "../src/domain/Errors.js"
import * as ConfigLive from "../src/layers/ConfigLive.js"

const HOME = "/home/tester"
const FILE = "/etc/llmspell/test.toml"

const resolve = (text: string | undefined, extra: Partial<ConfigInput> = {}) =>
  resolveConfig({ home: HOME, env: {}, ...(text !== undefined ? { file: { path: FILE, text } } : {}), ...extra })

const good = (text: string | undefined, extra: Partial<ConfigInput> = {}): LlmspellConfig => {
  const r = resolve(text, extra)
  if (Either.isLeft(r)) throw new Error(`expected a valid config, got:\n${r.left.problems.join("\n")}`)
  return r.right
}
const problems = (text: string | undefined, extra: Partial<ConfigInput> = {}): ReadonlyArray<string> => {
  const r = resolve(text, extra)
  if (Either.isRight(r)) throw new Error("expected a config error")
  expect(r.left).toBeInstanceOf(ConfigError)
  return r.left.problems
}
const entry = (config: LlmspellConfig, key: string) => {
  const e = config.entries.find((x) => x.key === key)
  if (e === undefined) throw new Error(`no entry ${key}`)
  return e
}
const ollama = (config: LlmspellConfig, name = "ollama") =>
  config.instances.find((i) => i.name === name) as OllamaInstanceConfig
const gguf = (config: LlmspellConfig, name = "gguf") => config.instances.find((i) => i.name === name) as GgufInstanceConfig

const FLAT = `
[providers]
default_provider = "local"
default_backend = "gguf"

[providers.ollama]
provider_type = "ollama"
base_url = "http://localhost:11434"
timeout_seconds = 120

[providers.gguf]
provider_type = "gguf"
model_directory = "\${HOME}/.llmspell/models"
device = "auto"
threads = "auto"
context_size = "auto"
idle_unload_seconds = 300
max_loaded_models = 2

[providers.workstation]
provider_type = "ollama"
base_url = "http://10.0.0.5:11434"
`

describe("defaults", () => {
  it("no file at all: an ollama instance on 127.0.0.1:11434, a gguf instance in ~/.llmspell/models, default_backend gguf", () => {
    const c = good(undefined)
    expect(c.file).toBeUndefined()
    expect(c.defaultProvider).toBe("local")
    expect(c.defaultBackend).toBe("gguf")
    expect(c.instances.map((i) => [i.name, i.type])).toStrictEqual([["ollama", "ollama"], ["gguf", "gguf"]])
    expect(ollama(c).baseUrl).toBe("http://127.0.0.1:11434")
    expect(ollama(c).timeoutSeconds).toBe(120)
    expect(gguf(c)).toMatchObject({
      modelDirectory: `${HOME}/.llmspell/models`,
      device: "auto",
      threads: "auto",
      contextSize: "auto",
      idleUnloadSeconds: 300,
      maxLoadedModels: 2
    })
    expect(c.hub).toMatchObject({ endpoint: "https://huggingface.co", offline: false })
    expect(Option.isNone(c.hub.token)).toBe(true)
    expect(c.warnings).toStrictEqual([])
    expect(c.entries.every((e) => e.source === "default")).toBe(true)
  })

  it("each default config show lists is the resolved value, and every key of each instance type, [hub] and [stores] has one", () => {
    // Instances of other names get their type's defaults too; the file gives only their types.
    const c = good(`[providers.big]\nprovider_type = "gguf"\n[providers.remote]\nprovider_type = "ollama"\n`)
    expect(c.entries.filter((e) => e.source !== "default").map((e) => e.key)).toStrictEqual([
      "providers.big.provider_type",
      "providers.remote.provider_type"
    ])
    const camelCase = (key: string) => (key === "provider_type" ? "type" : key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()))
    const tables: Array<[prefix: string, resolved: object, notKeys: ReadonlyArray<string>]> = [
      ["providers.ollama.", ollama(c), ["name", "options"]],
      ["providers.remote.", ollama(c, "remote"), ["name", "options"]],
      ["providers.gguf.", gguf(c), ["name", "options"]],
      ["providers.big.", gguf(c, "big"), ["name", "options"]],
      // a token has no default: none unless given
      ["hub.", c.hub, ["token"]],
      ["stores.", c.stores, ["env", "home"]]
    ]
    for (const [prefix, resolved, notKeys] of tables) {
      const defaults = c.entries
        .filter((e) => e.key.startsWith(prefix))
        .map((e) => [`${prefix}${camelCase(e.key.slice(prefix.length))}`, e.value])
      const fields = Object.entries(resolved)
        .filter(([k]) => !notKeys.includes(k))
        .map(([k, v]) => [`${prefix}${k}`, v])
      expect(defaults.sort()).toStrictEqual(fields.sort())
    }
    expect(entry(c, "providers.default_provider")).toMatchObject({ value: c.defaultProvider, source: "default" })
    expect(entry(c, "providers.default_backend")).toMatchObject({ value: c.defaultBackend, source: "default" })
    expect(c.instances.filter((i) => i.type === "gguf" || i.type === "ollama")).toHaveLength(4)
  })
})

describe("the flat file shape", () => {
  it("reads the issue's example: instances named by their table key, sources are the file", () => {
    const c = good(FLAT)
    expect(c.file).toBe(FILE)
    expect(c.instances.map((i) => `${i.name}:${i.type}`)).toStrictEqual(["ollama:ollama", "gguf:gguf", "workstation:ollama"])
    expect(ollama(c, "workstation").baseUrl).toBe("http://10.0.0.5:11434")
    expect(gguf(c).modelDirectory).toBe(`${HOME}/.llmspell/models`)
    expect(entry(c, "providers.workstation.base_url").source).toBe(FILE)
    expect(entry(c, "providers.ollama.base_url")).toMatchObject({ value: "http://localhost:11434", source: FILE })
    // gpu_layers is not in the file: it stays a default.
    expect(entry(c, "providers.gguf.gpu_layers").source).toBe("default")
    expect(c.warnings).toStrictEqual([])
  })

  it("an instance table without provider_type named like a backend gets that type", () => {
    const c = good(`[providers.ollama]\nbase_url = "http://h:1001"\n`)
    expect(ollama(c).baseUrl).toBe("http://h:1001")
  })

  it("provider_type = \"local\" with backend = … is normalized to that backend's type", () => {
    const c = good(`
[providers.box]
provider_type = "local"
backend = "ollama"
base_url = "http://box:11434"

[providers.files]
provider_type = "local"
backend = "candle"
model_directory = "/srv/models"
`)
    expect(ollama(c, "box")).toMatchObject({ type: "ollama", baseUrl: "http://box:11434" })
    expect(gguf(c, "files")).toMatchObject({ type: "gguf", modelDirectory: "/srv/models" })
    expect(gguf(c, "files").options).toStrictEqual({})
    expect(entry(c, "providers.files.provider_type").value).toBe("gguf")
  })

  it("provider_type = \"local\" without a backend is an error", () => {
    expect(problems(`[providers.box]\nprovider_type = "local"\n`)).toStrictEqual([
      `${FILE}: providers.box.backend: provider_type = "local" needs backend = "ollama" or "gguf"`
    ])
  })

  it("candle is an alias of gguf, for provider_type and default_backend", () => {
    const c = good(`[providers]\ndefault_backend = "candle"\n[providers.cpu]\nprovider_type = "candle"\nmodel_directory = "/m"\n`)
    expect(c.defaultBackend).toBe("gguf")
    expect(gguf(c, "cpu").type).toBe("gguf")
    expect(entry(c, "providers.default_backend").value).toBe("gguf")
  })

  it("unknown instance keys are kept in options, each with a warning naming the file and key", () => {
    const c = good(`[providers.ollama]\nkeep_alive = "5m"\nnum_ctx = 4096\n`)
    expect(ollama(c).options).toStrictEqual({ keep_alive: "5m", num_ctx: 4096 })
    expect(c.warnings).toStrictEqual([
      `${FILE}: providers.ollama.keep_alive: unknown key, kept in the instance's options`,
      `${FILE}: providers.ollama.num_ctx: unknown key, kept in the instance's options`
    ])
    expect(entry(c, "providers.ollama.keep_alive")).toMatchObject({ value: "5m", source: FILE })
  })

  it("unknown top-level and [hub] keys are warned about, never silently dropped", () => {
    const c = good(`colour = "blue"\n[hub]\nmirror = "x"\n`)
    expect(c.warnings).toHaveLength(2)
    expect(c.warnings[0]).toMatch(new RegExp(`^${FILE}: colour: unknown top-level key`))
    expect(c.warnings[1]).toMatch(new RegExp(`^${FILE}: hub.mirror: unknown key`))
  })

  it("a cloud provider entry is accepted (and routed to ProviderNotAvailable later)", () => {
    const c = good(`[providers.gpt]\nprovider_type = "openai"\napi_key = "sk-secret"\n`)
    expect(c.instances.find((i) => i.name === "gpt")?.type).toBe("openai")
    expect(entry(c, "providers.gpt.api_key")).toMatchObject({ value: "<redacted>", secret: true })
  })
})

describe("the nested [providers.local] form", () => {
  const NESTED = `
[providers.local]
default_backend = "candle"

[providers.local.ollama]
base_url = "http://nested:11434"

[providers.local.candle]
model_directory = "/srv/gguf"
threads = 2
`
  it("is normalized to the flat shape with exactly one warning naming the file and suggesting the flat form", () => {
    const c = good(NESTED)
    expect(c.defaultBackend).toBe("gguf")
    expect(ollama(c).baseUrl).toBe("http://nested:11434")
    expect(gguf(c)).toMatchObject({ modelDirectory: "/srv/gguf", threads: 2 })
    expect(c.instances.map((i) => i.name)).toStrictEqual(["ollama", "gguf"])
    expect(c.warnings).toHaveLength(1)
    expect(c.warnings[0]).toContain(FILE)
    expect(c.warnings[0]).toContain("nested form")
    expect(c.warnings[0]).toContain("flat form")
  })

  it("the worker's budgets: defaults, values from the file, and out-of-range values refused", () => {
    const defaults = gguf(good(undefined))
    expect([defaults.prepareTimeoutSeconds, defaults.workerMaxHeapMb]).toEqual([30, 2048])
    const set = gguf(good(`[providers.gguf]\nprepare_timeout_seconds = 5\nworker_max_heap_mb = 512\n`))
    expect([set.prepareTimeoutSeconds, set.workerMaxHeapMb]).toEqual([5, 512])
    const ps = problems(`[providers.gguf]\nprepare_timeout_seconds = 0\nworker_max_heap_mb = 8\n`)
    expect(ps).toContain(`${FILE}: providers.gguf.prepare_timeout_seconds: must be a number > 0 (got 0)`)
    expect(ps).toContain(`${FILE}: providers.gguf.worker_max_heap_mb: must be an integer ≥ 64 (got 8)`)
  })

  it("its problems name the keys as written in the file", () => {
    const ps = problems(`[providers.local.candle]\nthreads = 0\nmodel_directory = "\${NOPE_UNSET}/m"\n`)
    expect(ps).toContain(`${FILE}: providers.local.candle.threads: must be "auto" or a positive integer (got 0)`)
    expect(ps.some((p) => p.startsWith(`${FILE}: providers.local.candle.model_directory: environment variable NOPE_UNSET`))).toBe(true)
  })

  it("an unknown backend sub-table is an error", () => {
    expect(problems(`[providers.local.llamafile]\nx = 1\n`)).toStrictEqual([
      `${FILE}: providers.local.llamafile: unknown backend sub-table (expected ollama, gguf or candle)`
    ])
  })
})

describe("expansion in path values", () => {
  it("${VAR}, $VAR and a leading ~ expand", () => {
    const env = { MODELS: "/data/models", USER_DIR: "/u" }
    expect(Either.getOrThrow(expandPath("${MODELS}/gguf", env, HOME))).toBe("/data/models/gguf")
    expect(Either.getOrThrow(expandPath("$USER_DIR/x", env, HOME))).toBe("/u/x")
    expect(Either.getOrThrow(expandPath("~/m", env, HOME))).toBe(`${HOME}/m`)
    expect(Either.getOrThrow(expandPath("~", env, HOME))).toBe(HOME)
    expect(Either.getOrThrow(expandPath("${HOME}/m", {}, HOME))).toBe(`${HOME}/m`)
    // Only a leading ~ is home.
    expect(Either.getOrThrow(expandPath("/a/~/b", env, HOME))).toBe("/a/~/b")
  })

  it("in the file, the environment variables come from the env given", () => {
    const c = good(`[providers.gguf]\nmodel_directory = "$MODELS/gguf"\n[providers.ollama]\nbase_url = "http://x:1001"\n`, {
      env: { MODELS: "/data" }
    })
    expect(gguf(c).modelDirectory).toBe("/data/gguf")
  })

  it("an unset variable is an error naming the key and the file", () => {
    expect(problems(`[providers.gguf]\nmodel_directory = "\${LLMSPELL_TEST_UNSET}/models"\n`)).toStrictEqual([
      `${FILE}: providers.gguf.model_directory: environment variable LLMSPELL_TEST_UNSET is not set (in "\${LLMSPELL_TEST_UNSET}/models")`
    ])
    expect(problems(`[providers.gguf]\nmodel_directory = "\${}/models"\n`)[0]).toMatch(/invalid variable reference/)
  })

  it("env values expand too (LLMSPELL_MODELS_DIR=~/models)", () => {
    expect(gguf(good(undefined, { env: { LLMSPELL_MODELS_DIR: "~/models" } })).modelDirectory).toBe(`${HOME}/models`)
  })
})

describe("OLLAMA_HOST, in every form Ollama accepts", () => {
  it.each([
    ["example.com", "http://example.com:11434"],
    ["example.com:8080", "http://example.com:8080"],
    [":11435", "http://127.0.0.1:11435"],
    ["0.0.0.0", "http://127.0.0.1:11434"],
    ["0.0.0.0:9999", "http://127.0.0.1:9999"],
    ["http://box:1234", "http://box:1234"],
    // written with a scheme: kept as written (the client uses the scheme's port)
    ["http://box", "http://box"],
    ["https://ollama.example.com", "https://ollama.example.com"],
    ["https://ollama.example.com/proxy/", "https://ollama.example.com/proxy/"],
    ["http://0.0.0.0:11434", "http://127.0.0.1:11434"],
    ["[::1]:11434", "http://[::1]:11434"],
    ["::1", "http://[::1]:11434"],
    ["  10.0.0.5  ", "http://10.0.0.5:11434"]
  ])("%j → %s", (raw, url) => {
    expect(parseOllamaHost(raw)).toBe(url)
  })

  it("applies to the ollama instance with its source, over the file", () => {
    const c = good(FLAT, { env: { OLLAMA_HOST: "10.1.1.1:5000" } })
    expect(ollama(c).baseUrl).toBe("http://10.1.1.1:5000")
    expect(entry(c, "providers.ollama.base_url").source).toBe("env OLLAMA_HOST")
    // The second server keeps its own address.
    expect(ollama(c, "workstation").baseUrl).toBe("http://10.0.0.5:11434")
  })

  it("an empty OLLAMA_HOST is ignored", () => {
    expect(ollama(good(undefined, { env: { OLLAMA_HOST: "" } })).baseUrl).toBe("http://127.0.0.1:11434")
  })
})

describe("environment variables", () => {
  it("LLMSPELL_MODELS_DIR and LLMSPELL_DEFAULT_BACKEND", () => {
    const c = good(FLAT, { env: { LLMSPELL_MODELS_DIR: "/fast/models", LLMSPELL_DEFAULT_BACKEND: "ollama" } })
    expect(gguf(c).modelDirectory).toBe("/fast/models")
    expect(c.defaultBackend).toBe("ollama")
    expect(entry(c, "providers.gguf.model_directory").source).toBe("env LLMSPELL_MODELS_DIR")
    expect(entry(c, "providers.default_backend").source).toBe("env LLMSPELL_DEFAULT_BACKEND")
  })

  it("LLMSPELL_DEFAULT_BACKEND=candle means gguf; a bad value is reported with its source", () => {
    expect(good(undefined, { env: { LLMSPELL_DEFAULT_BACKEND: "candle" } }).defaultBackend).toBe("gguf")
    expect(problems(undefined, { env: { LLMSPELL_DEFAULT_BACKEND: "vllm" } })).toStrictEqual([
      `env LLMSPELL_DEFAULT_BACKEND: providers.default_backend: must be "ollama" or "gguf" (got "vllm")`
    ])
  })

  it("HF_TOKEN is redacted in entries and kept as a Redacted value", () => {
    const c = good(undefined, { env: { HF_TOKEN: "hf_supersecret" } })
    expect(entry(c, "hub.token")).toStrictEqual({ key: "hub.token", value: "<redacted>", source: "env HF_TOKEN", secret: true })
    expect(Redacted.value(Option.getOrThrow(c.hub.token))).toBe("hf_supersecret")
    expect(JSON.stringify(c.entries)).not.toContain("hf_supersecret")
    expect(String(Option.getOrThrow(c.hub.token))).not.toContain("hf_supersecret")
  })

  it("a token in the file is redacted too, and HF_TOKEN overrides it", () => {
    const c = good(`[hub]\ntoken = "hf_fromfile"\n`)
    expect(entry(c, "hub.token")).toMatchObject({ value: "<redacted>", source: FILE })
    const d = good(`[hub]\ntoken = "hf_fromfile"\n`, { env: { HF_TOKEN: "hf_env" } })
    expect(Redacted.value(Option.getOrThrow(d.hub.token))).toBe("hf_env")
  })

  it("HF_ENDPOINT and HF_HUB_OFFLINE", () => {
    const c = good(undefined, { env: { HF_ENDPOINT: "http://127.0.0.1:9000/", HF_HUB_OFFLINE: "1" } })
    expect(c.hub.endpoint).toBe("http://127.0.0.1:9000")
    expect(c.hub.offline).toBe(true)
    expect(entry(c, "hub.endpoint").source).toBe("env HF_ENDPOINT")
    expect(entry(c, "hub.offline").source).toBe("env HF_HUB_OFFLINE")
    expect(good(undefined, { env: { HF_HUB_OFFLINE: "0" } }).hub.offline).toBe(false)
    expect(problems(undefined, { env: { HF_HUB_OFFLINE: "maybe" } })[0]).toMatch(/^env HF_HUB_OFFLINE: hub.offline: must be true or false/)
    // the short form OLLAMA_HOST takes works for every server address: no scheme means http://
    expect(good(undefined, { env: { HF_ENDPOINT: "hub.local:9000" } }).hub.endpoint).toBe("http://hub.local:9000")
    expect(problems(undefined, { env: { HF_ENDPOINT: "ftp://hub.local" } })[0]).toMatch(/^env HF_ENDPOINT: hub.endpoint: must be an http/)
  })

  it("LLMSPELL_<INSTANCE>_<KEY> sets any key of any instance, numbers coerced", () => {
    const c = good(FLAT, {
      env: {
        LLMSPELL_GGUF_THREADS: "3",
        LLMSPELL_GGUF_DEVICE: "cpu",
        LLMSPELL_WORKSTATION_BASE_URL: "http://10.0.0.9:11434",
        LLMSPELL_WORKSTATION_TIMEOUT_SECONDS: "5",
        LLMSPELL_OLLAMA_KEEP_ALIVE: "1h"
      }
    })
    expect(gguf(c)).toMatchObject({ threads: 3, device: "cpu" })
    expect(ollama(c, "workstation")).toMatchObject({ baseUrl: "http://10.0.0.9:11434", timeoutSeconds: 5 })
    expect(ollama(c).options).toStrictEqual({ keep_alive: "1h" })
    expect(entry(c, "providers.gguf.threads").source).toBe("env LLMSPELL_GGUF_THREADS")
  })

  it("the longest instance name wins (gguf_big before gguf), names with '-' map to '_'", () => {
    const c = good(`[providers.gguf_big]\nprovider_type = "gguf"\n[providers.lab-2]\nprovider_type = "ollama"\n`, {
      env: { LLMSPELL_GGUF_BIG_THREADS: "7", LLMSPELL_LAB_2_BASE_URL: "http://lab2:1001" }
    })
    expect(gguf(c, "gguf_big").threads).toBe(7)
    expect(gguf(c).threads).toBe("auto")
    expect(ollama(c, "lab-2").baseUrl).toBe("http://lab2:1001")
  })

  it("a bad env value is reported with the variable as its source; provider_type cannot be set", () => {
    expect(problems(undefined, { env: { LLMSPELL_GGUF_THREADS: "many" } })).toStrictEqual([
      `env LLMSPELL_GGUF_THREADS: providers.gguf.threads: must be "auto" or a positive integer (got "many")`
    ])
    expect(problems(undefined, { env: { LLMSPELL_OLLAMA_PROVIDER_TYPE: "gguf" } })[0]).toMatch(/cannot be changed/)
  })
})

describe("precedence: default < file < env < flag", () => {
  const file = `[providers.gguf]\nmodel_directory = "/from/file"\n[providers.ollama]\nbase_url = "http://file:1001"\n[providers]\ndefault_backend = "gguf"\n[hub]\nendpoint = "http://file-hub"\noffline = false\n`

  it.each([
    ["no file, no env, no flag", undefined, {}, {}, ["/home/tester/.llmspell/models", "default"], ["http://127.0.0.1:11434", "default"], ["gguf", "default"]],
    ["file", file, {}, {}, ["/from/file", FILE], ["http://file:1001", FILE], ["gguf", FILE]],
    [
      "env over file",
      file,
      { LLMSPELL_MODELS_DIR: "/from/env", OLLAMA_HOST: "env:1002", LLMSPELL_DEFAULT_BACKEND: "ollama" },
      {},
      ["/from/env", "env LLMSPELL_MODELS_DIR"],
      ["http://env:1002", "env OLLAMA_HOST"],
      ["ollama", "env LLMSPELL_DEFAULT_BACKEND"]
    ],
    [
      "flag over env over file",
      file,
      { LLMSPELL_MODELS_DIR: "/from/env", OLLAMA_HOST: "env:1002", LLMSPELL_DEFAULT_BACKEND: "ollama" },
      { modelsDir: "/from/flag", ollamaHost: "flag:1003", defaultBackend: "gguf" },
      ["/from/flag", "flag --models-dir"],
      ["http://flag:1003", "flag --ollama-host"],
      ["gguf", "flag --backend"]
    ]
  ] as const)("%s", (_name, text, env, flags, dir, url, backend) => {
    const c = good(text, { env, flags })
    expect([gguf(c).modelDirectory, entry(c, "providers.gguf.model_directory").source]).toStrictEqual(dir)
    expect([ollama(c).baseUrl, entry(c, "providers.ollama.base_url").source]).toStrictEqual(url)
    expect([c.defaultBackend, entry(c, "providers.default_backend").source]).toStrictEqual(backend)
  })

  it("hub: --offline and a --hub-endpoint flag beat HF_HUB_OFFLINE/HF_ENDPOINT and the file", () => {
    const c = good(file, { env: { HF_ENDPOINT: "http://env-hub", HF_HUB_OFFLINE: "0" }, flags: { offline: true, hubEndpoint: "http://flag-hub" } })
    expect(c.hub.offline).toBe(true)
    expect(c.hub.endpoint).toBe("http://flag-hub")
    expect(entry(c, "hub.offline").source).toBe("flag --offline")
    expect(entry(c, "hub.endpoint").source).toBe("flag --hub-endpoint")
    expect(good(file, { env: { HF_ENDPOINT: "http://env-hub" } }).hub.endpoint).toBe("http://env-hub")
  })

  it("env and flags target the instance named like the type, else the first of that type", () => {
    const c = good(`[providers.ollama]\nprovider_type = "gguf"\n[providers.remote]\nprovider_type = "ollama"\n`, {
      flags: { ollamaHost: "r:1009" }
    })
    expect(ollama(c, "remote").baseUrl).toBe("http://r:1009")
    expect(defaultInstance(c, "ollama")?.name).toBe("remote")
  })
})

describe("validation: every problem at once", () => {
  it("reports each bad key as `<file>: <key.path>: <message>`", () => {
    const ps = problems(`
[providers]
default_provider = "nowhere"
default_backend = "vllm"

[providers.ollama]
base_url = "ftp://x"
timeout_seconds = -1

[providers.gguf]
device = "tpu"
threads = 0
context_size = 8
gpu_layers = -2
idle_unload_seconds = -1
max_loaded_models = 1.5
parallel = "lots"
model_directory = ""

[providers.bad]
provider_type = "vllm"

[providers."has space"]
provider_type = "ollama"

[providers.notatable]
x = 1

[hub]
endpoint = "nope://x"
offline = "sometimes"
max_retries = -1
`)
    expect([...ps].sort()).toStrictEqual(
      [
        `${FILE}: providers.bad.provider_type: unknown provider type "vllm" (ollama, gguf, openai_compatible or a cloud provider: openai, anthropic, groq, together, fireworks, mistral, perplexity, deepseek, openrouter, gemini, cohere, jina)`,
        `${FILE}: providers.has space: an instance name may only contain letters, digits, '-' and '_'`,
        `${FILE}: providers.default_backend: must be "ollama" or "gguf" (got "vllm")`,
        `${FILE}: providers.ollama.base_url: must be an http:// or https:// URL, or host:port (got "ftp://x")`,
        `${FILE}: providers.ollama.timeout_seconds: must be a number > 0 (got -1)`,
        `${FILE}: providers.gguf.model_directory: must be a non-empty string (got "")`,
        `${FILE}: providers.gguf.device: must be one of auto, cuda, metal, vulkan, cpu (got "tpu")`,
        `${FILE}: providers.gguf.threads: must be "auto" or a positive integer (got 0)`,
        `${FILE}: providers.gguf.context_size: must be "auto" or an integer ≥ 32 (got 8)`,
        `${FILE}: providers.gguf.gpu_layers: must be "auto" or an integer ≥ 0 (got -2)`,
        `${FILE}: providers.gguf.idle_unload_seconds: must be a number ≥ 0 (got -1)`,
        `${FILE}: providers.gguf.max_loaded_models: must be a positive integer (got 1.5)`,
        `${FILE}: providers.gguf.parallel: must be a positive integer (got "lots")`,
        `${FILE}: providers.notatable.provider_type: missing (ollama, gguf, openai_compatible or a cloud provider)`,
        `${FILE}: providers.default_provider: "nowhere" is neither "local" nor a configured instance (ollama, gguf)`,
        `${FILE}: hub.endpoint: must be an http:// or https:// URL, or host:port (got "nope://x")`,
        `${FILE}: hub.offline: must be true or false (got "sometimes")`,
        `${FILE}: hub.max_retries: must be an integer ≥ 0 (got -1)`
      ].sort()
    )
  })

  it("the ConfigError message lists every problem and the hint says the file was not changed", () => {
    const r = resolve(`[providers.gguf]\nthreads = 0\ndevice = "tpu"\n`)
    const error = Either.getLeft(r).pipe(Option.getOrThrow)
    expect(error.message).toMatch(/^invalid configuration \(2 problems\):\n {2}.*device.*\n {2}.*threads/)
    expect(error.hint).toContain(`fix ${FILE} (it was not changed)`)
  })

  it("the hint names what to fix by where each problem came from: the file, a variable, a flag", () => {
    const hintOf = (text: string | undefined, extra: Partial<ConfigInput>) => Either.getLeft(resolve(text, extra)).pipe(Option.getOrThrow).hint
    const envOnly = hintOf(`[providers.gguf]\nthreads = 2\n`, { env: { OLLAMA_HOST: "127.0.0.1:9" } })
    expect(envOnly).toBe("fix or unset OLLAMA_HOST; `llmspell config path` shows which config file is read")
    const flagOnly = hintOf(undefined, { flags: { hubEndpoint: "ftp://x" } })
    expect(flagOnly).toMatch(/^fix --hub-endpoint; /)
    const mixed = hintOf(`[providers.gguf]\nthreads = 0\n`, { env: { OLLAMA_HOST: "127.0.0.1:9" } })
    expect(mixed).toMatch(new RegExp(`^fix ${FILE.replace(/\./g, "\\.")} \\(it was not changed\\); fix or unset OLLAMA_HOST; `))
    const inCode = hintOf(undefined, { object: { value: { providers: { gguf: { threads: 0 } } } } })
    expect(inCode).toMatch(/^fix the configuration given in code; /)
  })

  it("invalid TOML gives the file, line and column", () => {
    const ps = problems(`[providers.gguf]\nthreads = 2\nmodel_directory = "unterminated\n`)
    expect(ps).toHaveLength(1)
    expect(ps[0]).toMatch(new RegExp(`^${FILE.replace(/\./g, "\\.")}:3:\\d+: invalid TOML: `))
  })

  it("a non-table [providers] entry and a scalar providers key are errors", () => {
    expect(problems(`providers = 3\n`)).toStrictEqual([`${FILE}: providers: must be a table`])
    expect(problems(`[providers]\nworkstation = "http://x"\n`)[0]).toMatch(/^.*providers\.workstation: must be a table/)
  })

  it("a cloud entry's keys are checked like the other tables, every problem at once; unknown keys warn", () => {
    const text = `[providers.vllm]\nprovider_type = "openai_compatible"\nbase_url = "ftp://x"\nmodel = 3\nmodels = ["a", ""]\n` +
      `[providers.gpt]\nprovider_type = "openai"\nbase_url = "https://proxy.example/v1/"\nmodels = "gpt-4o"\ntemprature = 0.2\n`
    expect([...problems(text)].sort()).toStrictEqual([
      `${FILE}: providers.gpt.models: must be a list of model names (got "gpt-4o")`,
      `${FILE}: providers.vllm.base_url: must be an http:// or https:// URL, or host:port (got "ftp://x")`,
      `${FILE}: providers.vllm.model: must be a non-empty string (got 3)`,
      `${FILE}: providers.vllm.models: must be a list of model names (got ["a",""])`
    ])
    const ok = Either.getOrThrow(resolve(`[providers.gpt]\nprovider_type = "openai"\nbase_url = "https://proxy.example/v1/"\nmodels = ["gpt-4o"]\ntemprature = 0.2\n`))
    const gpt = ok.instances.find((i) => i.name === "gpt") as CloudInstanceConfig
    expect(gpt).toMatchObject({ baseUrl: "https://proxy.example/v1", models: ["gpt-4o"], keyVariable: "OPENAI_API_KEY", protocol: "openai" })
    expect(ok.warnings.join("\n")).toContain("temprature")
  })

  it("a secret value is never echoed in a problem", () => {
    const ps = problems(`[hub]\ntoken = 12345678\n[providers.gpt]\nprovider_type = "openai"\napi_key = 87654321\n`)
    expect(ps).toStrictEqual([`${FILE}: providers.gpt.api_key: must be a string`, `${FILE}: hub.token: must be a string`])
    expect(ps.join("\n")).not.toContain("12345678")
    expect(ps.join("\n")).not.toContain("87654321")
  })
})

// ---------------------------------------------------------------------------------------------
// Discovery, against temp directories
// ---------------------------------------------------------------------------------------------

describe("file discovery (ConfigLive)", () => {
  let root: string
  let cwd: string
  let home: string
  let xdg: string
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, text)
    return file
  }
  const tagged = (name: string) => `[providers.ollama]\nbase_url = "http://${name}:1001"\n`
  const load = (options: ConfigLive.ConfigLoadOptions) =>
    ConfigLive.load({ cwd, home, env: { HOME: home }, ...options })

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "llmspell-config-"))
    cwd = path.join(root, "project")
    home = path.join(root, "home")
    xdg = path.join(root, "xdg")
    fs.mkdirSync(cwd, { recursive: true })
    fs.mkdirSync(home, { recursive: true })
  })
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }))

  it.effect("first found wins: --config, LLMSPELL_CONFIG, ./llmspell.toml, $XDG_CONFIG_HOME, ~/.config, ~/.llmspell", () =>
    Effect.gen(function*() {
      const flagFile = write(path.join(root, "flag.toml"), tagged("flag"))
      const envFile = write(path.join(root, "env.toml"), tagged("env"))
      const cwdFile = write(path.join(cwd, "llmspell.toml"), tagged("cwd"))
      const xdgFile = write(path.join(xdg, "llmspell", "config.toml"), tagged("xdg"))
      const dotConfig = write(path.join(home, ".config", "llmspell", "config.toml"), tagged("dotconfig"))
      const homeFile = write(path.join(home, ".llmspell", "config.toml"), tagged("home"))
      const env = { HOME: home, LLMSPELL_CONFIG: envFile, XDG_CONFIG_HOME: xdg }
      const url = (c: LlmspellConfig) => ollama(c).baseUrl

      let c = yield* load({ configFile: flagFile, env })
      expect([c.file, url(c)]).toStrictEqual([flagFile, "http://flag:1001"])
      c = yield* load({ env })
      expect([c.file, url(c)]).toStrictEqual([envFile, "http://env:1001"])
      c = yield* load({ env: { HOME: home, XDG_CONFIG_HOME: xdg } })
      expect([c.file, url(c)]).toStrictEqual([cwdFile, "http://cwd:1001"])
      fs.rmSync(cwdFile)
      c = yield* load({ env: { HOME: home, XDG_CONFIG_HOME: xdg } })
      expect([c.file, url(c)]).toStrictEqual([xdgFile, "http://xdg:1001"])
      // Without XDG_CONFIG_HOME, it defaults to ~/.config.
      c = yield* load({ env: { HOME: home } })
      expect([c.file, url(c)]).toStrictEqual([dotConfig, "http://dotconfig:1001"])
      fs.rmSync(dotConfig)
      c = yield* load({ env: { HOME: home } })
      expect([c.file, url(c)]).toStrictEqual([homeFile, "http://home:1001"])
      fs.rmSync(homeFile)
      c = yield* load({ env: { HOME: home } })
      expect(c.file).toBeUndefined()
      expect(url(c)).toBe("http://127.0.0.1:11434")
      expect(gguf(c).modelDirectory).toBe(`${home}/.llmspell/models`)
    }))

  it("candidates lists the search order; an explicit file replaces the search", () => {
    const env = { HOME: home, XDG_CONFIG_HOME: xdg }
    expect(ConfigLive.candidates({ cwd, home, env }).map((c) => [c.path, c.origin])).toStrictEqual([
      [path.join(cwd, "llmspell.toml"), "working directory"],
      [path.join(xdg, "llmspell", "config.toml"), "XDG config"],
      [path.join(home, ".llmspell", "config.toml"), "home"]
    ])
    expect(ConfigLive.candidates({ cwd, home, env, configFile: "~/my.toml" })).toStrictEqual([
      { path: path.join(home, "my.toml"), origin: "flag --config", explicit: true }
    ])
    expect(ConfigLive.candidates({ cwd, home, env: { ...env, LLMSPELL_CONFIG: "rel.toml" } })).toStrictEqual([
      { path: path.join(cwd, "rel.toml"), origin: "env LLMSPELL_CONFIG", explicit: true }
    ])
  })

  it.effect("an explicit file that does not exist is a ConfigError; a missing optional file is not", () =>
    Effect.gen(function*() {
      const missing = path.join(root, "missing.toml")
      const exit = yield* Effect.exit(load({ configFile: missing }))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(load({ env: { HOME: home, LLMSPELL_CONFIG: missing } }))
      expect(error).toBeInstanceOf(ConfigError)
      expect(error.problems).toStrictEqual([`${missing}: cannot read (env LLMSPELL_CONFIG): no such file`])
      const dir = yield* Effect.flip(load({ configFile: root }))
      expect(dir.problems[0]).toMatch(/is a directory/)
    }))

  it.effect("the ConfigEnvironment reference supplies env, cwd and home when options do not", () =>
    Effect.gen(function*() {
      write(path.join(cwd, "llmspell.toml"), tagged("viaref"))
      const c = yield* ConfigLive.load({}).pipe(
        Effect.provideService(ConfigLive.ConfigEnvironment, { env: { OLLAMA_HOST: "ref:1007" }, cwd, home })
      )
      expect(c.file).toBe(path.join(cwd, "llmspell.toml"))
      expect(ollama(c).baseUrl).toBe("http://ref:1007")
    }))

  it.effect("an unset variable in model_directory fails, naming key and file, and creates no ${HOME} directory", () =>
    Effect.gen(function*() {
      const file = write(path.join(cwd, "llmspell.toml"), `[providers.gguf]\nmodel_directory = "\${LLMSPELL_TEST_NOT_SET}/models"\n`)
      const error = yield* Effect.flip(load({ env: { HOME: home } }))
      expect(error.problems).toStrictEqual([
        `${file}: providers.gguf.model_directory: environment variable LLMSPELL_TEST_NOT_SET is not set (in "\${LLMSPELL_TEST_NOT_SET}/models")`
      ])
      expect(error.file).toBe(file)
      // Nothing was created anywhere we can see: no literal "${…}" directory, no models directory.
      expect(fs.readdirSync(cwd)).toStrictEqual(["llmspell.toml"])
      expect(fs.readdirSync(home)).toStrictEqual([])
      expect(fs.existsSync(path.join(process.cwd(), "${LLMSPELL_TEST_NOT_SET}"))).toBe(false)
      expect(fs.existsSync(path.join(process.cwd(), "${HOME}"))).toBe(false)
    }))

  it.effect("the file is never rewritten: same bytes and mtime after a good and a bad load", () =>
    Effect.gen(function*() {
      const text = `# my comments stay\n[providers.local]\ndefault_backend = "candle"\n[providers.local.candle]\nmodel_directory = "~/m"\nmystery = 1\n`
      const file = write(path.join(cwd, "llmspell.toml"), text)
      const past = new Date(Date.now() - 3_600_000)
      fs.utimesSync(file, past, past)
      const before = fs.statSync(file)
      const c = yield* load({})
      expect(c.warnings.length).toBeGreaterThan(0)
      fs.writeFileSync(path.join(root, "bad.toml"), "[providers.gguf]\nthreads = 0\n")
      const badBefore = fs.statSync(path.join(root, "bad.toml"))
      yield* Effect.flip(load({ configFile: path.join(root, "bad.toml") }))
      expect(fs.readFileSync(file, "utf8")).toBe(text)
      expect(fs.statSync(file).mtimeMs).toBe(before.mtimeMs)
      expect(fs.statSync(path.join(root, "bad.toml")).mtimeMs).toBe(badBefore.mtimeMs)
      expect(fs.readFileSync(path.join(root, "bad.toml"), "utf8")).toBe("[providers.gguf]\nthreads = 0\n")
    }))
})

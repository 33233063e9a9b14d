/**
 * The configuration model and its resolution: defaults, then the TOML file (normalized from the
 * legacy shapes), then the environment, then command-line flags; every value remembers where it came
 * from. Validation reports every problem at once. Pure: the caller reads the file and passes the
 * environment in; nothing here touches the disk or creates a directory.
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { parse as parseToml } from "smol-toml"
import { CLOUD_PROVIDER_TYPES, type CloudProtocol, KEY_VARIABLES, presetOf } from "./CloudPresets.js"
import { ConfigError } from "./Errors.js"
import type { ModelAlias } from "./ModelAliases.js"
import { CLOUD_PROVIDERS, normalizeBackend, parse as parseSpec } from "./ModelSpec.js"

// ---------------------------------------------------------------------------------------------
// Resolved configuration
// ---------------------------------------------------------------------------------------------

// Each table's type is the resolved (camelCase) side of its Schema below, plus what is not a TOML key.

/** An Ollama server. */
export interface OllamaInstanceConfig extends Schema.Schema.Type<typeof OllamaInstance> {
  readonly name: string
  /**
   * The `Authorization` header sent with every request: `Basic …` from the user name and password
   * written in `base_url` (`http://user:pw@host`, how Ollama is put behind a reverse proxy). They
   * are taken out of `baseUrl`, which is printed; fetch refuses URLs with credentials anyway.
   */
  readonly authorization?: Redacted.Redacted<string> | undefined
  readonly options: Readonly<Record<string, unknown>>
}

type GgufFields = Schema.Schema.Type<typeof GgufInstance>
/** Optional for code that builds an instance itself (tests, embedding): the backend has fallbacks for them. */
type WorkerSettings = "isolation" | "prepareTimeoutSeconds" | "workerMaxHeapMb"

/** The in-process GGUF runtime and its model store. */
export interface GgufInstanceConfig extends Omit<GgufFields, WorkerSettings>, Partial<Pick<GgufFields, WorkerSettings>> {
  readonly name: string
  readonly options: Readonly<Record<string, unknown>>
}

/**
 * A cloud provider: a built-in one (`openai`, `anthropic`, `groq`, …; see `CloudPresets.ts`) or an
 * `openai_compatible` server at `base_url` (vLLM, TGI, llama-server, LM Studio, another llmspell).
 */
export interface CloudInstanceConfig {
  readonly type: (typeof CLOUD_PROVIDERS)[number] | "openai_compatible" | "deepseek" | "openrouter"
  readonly name: string
  readonly options: Readonly<Record<string, unknown>>
  /** The wire protocol; undefined for a provider llmspell cannot speak to (replicate). */
  readonly protocol?: CloudProtocol | undefined
  /** Where the API lives (without a trailing `/`). */
  readonly baseUrl?: string | undefined
  /** The key, from `api_key` (with `${VAR}` expanded) or the provider's conventional variable. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** The variable the key comes (or would come) from, for messages; undefined when it is written in the file or not needed. */
  readonly keyVariable?: string | undefined
  /** Models to list when the server has no models endpoint (or to list instead of it). */
  readonly models?: ReadonlyArray<string> | undefined
  /** Ask for a usage chunk when streaming (`stream_options.include_usage`). */
  readonly streamUsage?: boolean | undefined
  /** Whether `/embeddings` is offered (undefined: try it). */
  readonly embeddings?: boolean | undefined
}

/** One configured provider instance. */
export type ProviderInstanceConfig = OllamaInstanceConfig | GgufInstanceConfig | CloudInstanceConfig

/** Where models are pulled from. */
export interface HubConfig extends Schema.Schema.Type<typeof Hub> {}

/**
 * One foreign store's setting in `[stores]`: `"auto"` (use the tool's default location if it exists),
 * a path (use that directory), or `false` (never look there).
 */
export type StoreSetting = Schema.Schema.Type<typeof storeSetting>

/** `[stores]`: which other tools' GGUF stores llmspell reads in place (never writes). */
export interface StoresConfig extends Schema.Schema.Type<typeof Stores> {
  /** The environment variables the tools themselves read to find their stores (OLLAMA_MODELS, HF_HOME, …). */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly home: string
}

/** One effective value and where it came from, for `config show`. */
export interface ConfigEntry {
  readonly key: string
  /** The value as displayed: secrets are already redacted. */
  readonly value: unknown
  /** `default`, the file path, `env NAME` or `flag --name`. */
  readonly source: string
  readonly secret: boolean
}

/** The effective configuration. */
export interface LlmspellConfig {
  readonly defaultProvider: string
  readonly defaultBackend: "ollama" | "gguf"
  readonly instances: ReadonlyArray<ProviderInstanceConfig>
  readonly hub: HubConfig
  readonly stores: StoresConfig
  /** The file that was read, if any. */
  readonly file: string | undefined
  readonly entries: ReadonlyArray<ConfigEntry>
  readonly warnings: ReadonlyArray<string>
  /** Cloud keys found in the providers' conventional variables (OPENAI_API_KEY, …), for built-in providers used without a config entry. */
  readonly cloudKeys?: Readonly<Record<string, Redacted.Redacted<string>>> | undefined
  /** `[serve.aliases]`: model names (or globs) clients of `llmspell serve` send, and the specs they mean, in file order. */
  readonly serveAliases?: ReadonlyArray<ModelAlias> | undefined
}

/** Values given on the command line; they override everything. */
export interface ConfigFlags {
  readonly modelsDir?: string | undefined
  readonly ollamaHost?: string | undefined
  readonly defaultBackend?: string | undefined
  readonly hubEndpoint?: string | undefined
  readonly offline?: boolean | undefined
}

/** What `resolveConfig` reads: all I/O already done by the caller. */
export interface ConfigInput {
  /** The file's path and text, when one was found. */
  readonly file?: { readonly path: string; readonly text: string } | undefined
  /** A TOML-shaped object given in code instead of a file (embedding). */
  readonly object?: { readonly value: unknown; readonly source?: string } | undefined
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly flags?: ConfigFlags
  readonly home: string
}

// ---------------------------------------------------------------------------------------------
// Known keys, defaults and validation
// ---------------------------------------------------------------------------------------------

const DEFAULT_SOURCE = "default"

/**
 * One "must …" message for a key, whichever check failed. `override: true` also covers the inner
 * checks (the Int under `positive`, the members of a union or multi-member Literal), which otherwise
 * report Schema's own "Expected …, actual <value>" and would echo a secret's value.
 */
const must = (message: string) => ({ message: () => ({ message, override: true }) })

const positiveInt = Schema.Int.pipe(Schema.positive()).annotations(must("must be a positive integer"))
const nonNegativeInt = Schema.Int.pipe(Schema.nonNegative()).annotations(must("must be an integer ≥ 0"))
const autoOr = <A>(schema: Schema.Schema<A, A>, what: string) =>
  Schema.Union(Schema.Literal("auto"), schema).annotations(must(`must be "auto" or ${what}`))
/**
 * Ports Node's fetch (undici) refuses to connect to, with "bad port" and no more: the fetch
 * standard's bad-port list (https://fetch.spec.whatwg.org/#port-blocking). Checked here so such a
 * URL is a config error naming its source, not a runtime failure with no hint.
 */
export const FETCH_BAD_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080
])

const USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)@/

/** A URL with its user name and password (if any) replaced by `<redacted>`; other strings unchanged. */
export const redactUrl = (value: string): string => value.replace(USERINFO, "$1<redacted>@")

/** A URL without its user name and password. */
const stripUserinfo = (value: string): string => value.replace(USERINFO, "$1")

/** What is wrong with a server URL, or undefined: scheme, syntax, and a port fetch can reach. */
const urlProblem = (s: string): string | undefined => {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^/?#]*@)?(\[[^\]]*\]|[^/?#:]*)(?::([^/?#]*))?/.exec(s)
  const port = authority?.[2]
  if (port !== undefined && port.length > 0) {
    const n = /^\d+$/.test(port) ? Number(port) : NaN
    if (!(n >= 1 && n <= 65535)) return `must have a port from 1 to 65535 (the port is ${JSON.stringify(port)})`
    if (FETCH_BAD_PORTS.has(n)) {
      return `port ${n} is one that fetch refuses to connect to ("bad port" in the fetch standard): use another port`
    }
  }
  try {
    const u = new URL(s)
    return u.protocol === "http:" || u.protocol === "https:" ? undefined : "must be an http:// or https:// URL"
  } catch {
    return "must be an http:// or https:// URL"
  }
}

/** An http(s) URL, resolved without its trailing `/` (paths are appended to it). */
const httpUrl = Schema.transform(
  Schema.String.annotations(must("must be an http:// or https:// URL")).pipe(Schema.filter((s) => urlProblem(s) ?? true)),
  Schema.String,
  { strict: true, decode: (s) => s.replace(/\/+$/, ""), encode: (s) => s }
)
const nonEmpty = Schema.String.pipe(Schema.minLength(1)).annotations(must("must be a non-empty string"))
const positiveNumber = Schema.Number.pipe(Schema.positive()).annotations(must("must be a number > 0"))
const nonNegativeNumber = Schema.Number.pipe(Schema.nonNegative()).annotations(must("must be a number ≥ 0"))

/**
 * A key of a TOML table: its snake_case name in the file, its check, and its default, which is
 * the only one: `config show`'s "default" values are this, encoded back (see `defaultsOf`).
 */
const tomlKey = <K extends string, S extends Schema.Schema.AnyNoContext>(key: K, schema: S, value: Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { exact: true, default: () => value }).pipe(Schema.fromKey(key))

/** `[providers.NAME]` with provider_type = "ollama". */
const OllamaInstance = Schema.Struct({
  type: tomlKey("provider_type", Schema.Literal("ollama"), "ollama"),
  baseUrl: tomlKey("base_url", httpUrl, "http://127.0.0.1:11434"),
  timeoutSeconds: tomlKey("timeout_seconds", positiveNumber, 120)
})

/** `[providers.NAME]` with provider_type = "gguf". */
const GgufInstance = Schema.Struct({
  type: tomlKey("provider_type", Schema.Literal("gguf"), "gguf"),
  /** The default is written as in a file: `~` expands like in any path value (`expandPaths`). */
  modelDirectory: tomlKey("model_directory", nonEmpty, "~/.llmspell/models"),
  device: tomlKey(
    "device",
    Schema.Literal("auto", "cuda", "metal", "vulkan", "cpu").annotations(must("must be one of auto, cuda, metal, vulkan, cpu")),
    "auto"
  ),
  threads: tomlKey("threads", autoOr(positiveInt, "a positive integer"), "auto"),
  contextSize: tomlKey("context_size", autoOr(Schema.Int.pipe(Schema.greaterThanOrEqualTo(32)), "an integer ≥ 32"), "auto"),
  gpuLayers: tomlKey("gpu_layers", autoOr(nonNegativeInt, "an integer ≥ 0"), "auto"),
  idleUnloadSeconds: tomlKey("idle_unload_seconds", nonNegativeNumber, 300),
  maxLoadedModels: tomlKey("max_loaded_models", positiveInt, 2),
  /** Context sequences per loaded model: concurrent requests on one model. */
  parallel: tomlKey("parallel", positiveInt, 4),
  /** Where llama.cpp runs: a worker process per loaded model (absent = "process"), or this process. */
  isolation: tomlKey("isolation", Schema.Literal("process", "none").annotations(must("must be process or none")), "process"),
  /** Worker only: seconds a prompt's chat template + tokenizing (or the template at load) may take. */
  prepareTimeoutSeconds: tomlKey("prepare_timeout_seconds", positiveNumber, 30),
  /** Worker only: the worker's JS heap cap in MiB (a runaway chat template fails fast). */
  workerMaxHeapMb: tomlKey(
    "worker_max_heap_mb",
    Schema.Int.pipe(Schema.greaterThanOrEqualTo(64)).annotations(must("must be an integer ≥ 64")),
    2048
  )
})

/**
 * `[providers.NAME]` of a cloud provider or an `openai_compatible` server: the keys a file may
 * set, checked like the other tables. The rest of a `CloudInstanceConfig` comes from the
 * provider's preset (CloudPresets.ts: base URL, key variable, protocol) and the environment (the
 * key), in `cloudInstance`.
 */
const CloudInstanceFile = Schema.Struct({
  provider_type: Schema.String,
  base_url: Schema.optional(httpUrl),
  /** The key, or `${VAR}` / `$VAR` naming the variable that holds it. */
  api_key: Schema.optional(Schema.String.annotations(must("must be a string"))),
  model: Schema.optional(nonEmpty),
  /** Models to list when the server has no models endpoint (or to list instead of it). */
  models: Schema.optional(Schema.Array(Schema.String.pipe(Schema.minLength(1))).annotations(must("must be a list of model names")))
})

/** `[hub]`. */
const Hub = Schema.Struct({
  endpoint: tomlKey("endpoint", httpUrl, "https://huggingface.co"),
  /** From `token` or HF_TOKEN; an empty one is none. */
  token: Schema.optionalToRequired(
    Schema.UndefinedOr(Schema.String.annotations(must("must be a string"))),
    Schema.OptionFromSelf(Schema.RedactedFromSelf(Schema.String)),
    {
      decode: (token) => Option.map(Option.filter(token, (t): t is string => t !== undefined && t.length > 0), Redacted.make),
      encode: Option.map(Redacted.value)
    }
  ),
  offline: tomlKey("offline", Schema.Boolean.annotations(must("must be true or false")), false),
  /** A download with no bytes for this long is retried. */
  stallTimeoutSeconds: tomlKey("stall_timeout_seconds", positiveNumber, 30),
  maxRetries: tomlKey("max_retries", nonNegativeInt, 5),
  /** Files of one model downloaded at once (split GGUF parts). */
  parallelDownloads: tomlKey("parallel_downloads", positiveInt, 3)
})

/** `"auto"`, `false` or a directory path, resolved as `{ path }`. */
const storeSetting = Schema.transform(
  Schema.Union(Schema.Literal("auto", false), Schema.String.pipe(Schema.minLength(1)))
    .annotations(must(`must be "auto", a directory path, or false`)),
  Schema.Union(Schema.Literal("auto", false), Schema.Struct({ path: Schema.String })),
  {
    strict: true,
    decode: (setting) => (setting === "auto" || setting === false ? setting : { path: setting }),
    encode: (setting) => (typeof setting === "object" ? setting.path : setting)
  }
)

/** `[stores]`. */
const Stores = Schema.Struct({
  ollama: tomlKey("ollama", storeSetting, "auto"),
  hfCache: tomlKey("hf_cache", storeSetting, "auto"),
  lmstudio: tomlKey("lmstudio", storeSetting, "auto"),
  nodeLlamaCpp: tomlKey("node_llama_cpp", storeSetting, "auto")
})

/** A table's keys as written in the file. */
const tomlKeys = (schema: Schema.Schema.AnyNoContext): ReadonlyArray<string> =>
  SchemaAST.getPropertySignatures(Schema.encodedSchema(schema).ast).map((p) => String(p.name))

/** A table's defaults as written in a file: an empty table decoded (which fills them in), encoded back. */
const defaultsOf = <A, I>(schema: Schema.Schema<A, I>): Readonly<Record<string, unknown>> =>
  Schema.encodeSync(schema)(Schema.decodeUnknownSync(schema)({})) as Record<string, unknown>

/**
 * The GGUF worker settings' defaults, resolved (for a loader built without a config: the same
 * values a config gets, from the Schema above).
 */
export const GGUF_WORKER_DEFAULTS: { readonly workerMaxHeapMb: number; readonly prepareTimeoutSeconds: number } = (() => {
  const { prepareTimeoutSeconds, workerMaxHeapMb } = Schema.decodeUnknownSync(GgufInstance)({})
  return { workerMaxHeapMb, prepareTimeoutSeconds }
})()

const INSTANCE_DEFAULTS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  ollama: defaultsOf(OllamaInstance),
  gguf: defaultsOf(GgufInstance)
}
const HUB_DEFAULTS = defaultsOf(Hub)
const STORE_DEFAULTS = defaultsOf(Stores)
const defaultsFor = (type: string) => INSTANCE_DEFAULTS[type] ?? { provider_type: type }

const STORE_KEYS = tomlKeys(Stores)
/** The variables the foreign tools read to locate their stores (passed on, so roots resolve as each tool does). */
const STORE_ENV = ["OLLAMA_MODELS", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"]

const KNOWN_KEYS: Record<string, ReadonlyArray<string>> = {
  ollama: tomlKeys(OllamaInstance),
  gguf: tomlKeys(GgufInstance),
  cloud: tomlKeys(CloudInstanceFile)
}
const HUB_KEYS = tomlKeys(Hub)
const NUMERIC_KEYS = new Set([
  "timeout_seconds",
  "threads",
  "context_size",
  "gpu_layers",
  "idle_unload_seconds",
  "max_loaded_models",
  "parallel",
  "prepare_timeout_seconds",
  "worker_max_heap_mb",
  "stall_timeout_seconds",
  "max_retries",
  "parallel_downloads"
])
const BOOLEAN_KEYS = new Set(["offline"])
/** Keys whose values are never printed: known secrets and unknown keys that look like one. */
const SECRET_KEY = /(token|key|secret|passw|auth|credential)/i
/** At most this many warnings are kept; the rest are counted in one last warning. */
export const MAX_WARNINGS = 20
/** Keys whose values are paths: `${VAR}`, `$VAR` and a leading `~` expand in them. */
const isPathKey = (key: string) => key === "model_directory" || /(_dir|_directory|_path|_file)$/.test(key)

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

interface Slot {
  value: unknown
  source: string
  /** The key as written in its source (e.g. `providers.local.candle.model_directory`), for messages. */
  path?: string
  /** The value as the user wrote it, when `value` is derived from it (OLLAMA_HOST → base_url), for messages. */
  raw?: unknown
}

interface Draft {
  defaultProvider: Slot
  defaultBackend: Slot
  instances: Map<string, Map<string, Slot>>
  hub: Map<string, Slot>
  stores: Map<string, Slot>
  /** `[serve.aliases]` entries in file order. */
  serveAliases: Array<{ readonly name: string; readonly slot: Slot }>
  problems: Array<string>
  warnings: Array<string>
}

const defaultSlots = (table: Readonly<Record<string, unknown>>): Map<string, Slot> =>
  new Map(Object.entries(table).map(([k, v]) => [k, { value: v, source: DEFAULT_SOURCE }]))

const isTable = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) && !(u instanceof Date)

/** Resolves the effective configuration, or every problem found in it. */
export const resolveConfig = (input: ConfigInput): Either.Either<LlmspellConfig, ConfigError> => {
  const env = input.env ?? {}
  const draft: Draft = {
    defaultProvider: { value: "local", source: DEFAULT_SOURCE },
    defaultBackend: { value: "gguf", source: DEFAULT_SOURCE },
    instances: new Map(),
    hub: defaultSlots(HUB_DEFAULTS),
    stores: defaultSlots(STORE_DEFAULTS),
    serveAliases: [],
    problems: [],
    warnings: []
  }
  for (const type of ["ollama", "gguf"]) draft.instances.set(type, defaultSlots(defaultsFor(type)))

  let filePath: string | undefined
  if (input.file !== undefined) {
    filePath = input.file.path
    const parsed = parseTomlText(input.file.text, input.file.path)
    if (Either.isLeft(parsed)) return Either.left(new ConfigError({ file: filePath, problems: [parsed.left] }))
    applyDocument(draft, parsed.right, filePath)
  } else if (input.object !== undefined) {
    applyDocument(draft, input.object.value, input.object.source ?? "code")
  }

  applyEnv(draft, env)
  applyFlags(draft, input.flags ?? {})
  expandPaths(draft, env, input.home)

  const result = validate(draft, filePath, env, input.home)
  if (draft.problems.length > 0 || result === undefined) {
    return Either.left(new ConfigError({ file: filePath, problems: draft.problems }))
  }
  return Either.right(result)
}

const parseTomlText = (text: string, path: string): Either.Either<unknown, string> => {
  try {
    return Either.right(parseToml(text))
  } catch (e) {
    const err = e as { line?: number; column?: number; message?: string }
    const first = String(err.message ?? e).split("\n")[0]!.replace(/^Invalid TOML document:\s*/, "")
    const where = err.line !== undefined ? `:${err.line}:${err.column ?? 0}` : ""
    return Either.left(`${path}${where}: invalid TOML: ${first}`)
  }
}

/** Applies a parsed TOML document (or an embedding object) over the defaults, normalizing legacy shapes. */
const applyDocument = (draft: Draft, doc: unknown, source: string) => {
  const problem = (key: string, message: string) => draft.problems.push(`${source}: ${key}: ${message}`)
  if (!isTable(doc)) return problem("(root)", "must be a table")
  for (const [topKey, topValue] of Object.entries(doc)) {
    if (topKey === "providers") continue
    if (topKey === "hub") {
      if (!isTable(topValue)) {
        problem("hub", "must be a table")
        continue
      }
      for (const [k, v] of Object.entries(topValue)) {
        if (!HUB_KEYS.includes(k)) draft.warnings.push(`${source}: hub.${k}: unknown key, ignored`)
        else draft.hub.set(k, { value: v, source })
      }
      continue
    }
    if (topKey === "stores") {
      if (!isTable(topValue)) {
        problem("stores", "must be a table")
        continue
      }
      for (const [k, v] of Object.entries(topValue)) {
        if (!STORE_KEYS.includes(k)) {
          draft.warnings.push(`${source}: stores.${k}: unknown key, ignored (expected ${STORE_KEYS.join(", ")})`)
        } else draft.stores.set(k, { value: v, source })
      }
      continue
    }
    if (topKey === "serve") {
      applyServe(draft, topValue, source)
      continue
    }
    draft.warnings.push(`${source}: ${topKey}: unknown top-level key, ignored (expected [providers], [hub], [stores] and [serve])`)
  }
  const providers = doc["providers"]
  if (providers === undefined) return
  if (!isTable(providers)) return problem("providers", "must be a table")

  for (const [key, value] of Object.entries(providers)) {
    if (key === "default_provider") {
      draft.defaultProvider = { value, source }
      continue
    }
    if (key === "default_backend") {
      draft.defaultBackend = { value, source }
      continue
    }
    if (!isTable(value)) {
      problem(`providers.${key}`, "must be a table ([providers.NAME]) or default_provider/default_backend")
      continue
    }
    if (isNestedLocal(key, value)) {
      draft.warnings.push(
        `${source}: [providers.local] with sub-tables is the old nested form; it still works, but prefer the flat form ` +
          `([providers.ollama], [providers.gguf] with provider_type, and default_backend under [providers])`
      )
      for (const [sub, subValue] of Object.entries(value)) {
        if (sub === "default_backend") {
          draft.defaultBackend = { value: subValue, source, path: "providers.local.default_backend" }
          continue
        }
        if (sub === "provider_type") continue
        if (!isTable(subValue)) {
          problem(`providers.local.${sub}`, "unknown key in the nested form (expected default_backend and backend sub-tables)")
          continue
        }
        const backend = normalizeBackend(sub)
        if (backend === undefined) {
          problem(`providers.local.${sub}`, "unknown backend sub-table (expected ollama, gguf or candle)")
          continue
        }
        applyInstance(draft, backend, { provider_type: backend, ...subValue }, `providers.local.${sub}`, source)
      }
      continue
    }
    applyInstance(draft, key, value, `providers.${key}`, source)
  }
}

/**
 * `[serve]`: settings of `llmspell serve` kept in the config; today its `[serve.aliases]` table of
 * model names (or globs) clients send → the specs they mean (checked in `validate`).
 */
const applyServe = (draft: Draft, table: unknown, source: string) => {
  if (!isTable(table)) return void draft.problems.push(`${source}: serve: must be a table`)
  for (const [key, value] of Object.entries(table)) {
    if (key !== "aliases") {
      draft.warnings.push(`${source}: serve.${key}: unknown key, ignored (expected aliases)`)
      continue
    }
    if (!isTable(value)) {
      draft.problems.push(`${source}: serve.aliases: must be a table of "name" = "spec" (e.g. "claude-*" = "qwen3-coder@gguf")`)
      continue
    }
    for (const [name, spec] of Object.entries(value)) {
      // a later source (another file, code) replaces an alias of the same name where it stood
      const at = draft.serveAliases.findIndex((a) => a.name === name)
      const entry = { name, slot: { value: spec, source, path: `serve.aliases.${aliasKey(name)}` } }
      if (at >= 0) draft.serveAliases[at] = entry
      else draft.serveAliases.push(entry)
    }
  }
}

/** An alias name as a TOML key: bare when it can be, else quoted. */
const aliasKey = (name: string) => (/^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name))

const isNestedLocal = (key: string, table: Record<string, unknown>) =>
  key === "local" &&
  (table["provider_type"] === undefined || table["provider_type"] === "local") &&
  table["backend"] === undefined &&
  Object.values(table).some(isTable)

const applyInstance = (
  draft: Draft,
  name: string,
  table: Record<string, unknown>,
  keyPath: string,
  source: string
) => {
  const problem = (key: string, message: string) => draft.problems.push(`${source}: ${key}: ${message}`)
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) {
    return problem(keyPath, "an instance name may only contain letters, digits, '-' and '_'")
  }
  const entries = { ...table }
  let type = entries["provider_type"]
  if (type === "local") {
    const backend = typeof entries["backend"] === "string" ? normalizeBackend(entries["backend"]) : undefined
    if (backend === undefined) {
      return problem(`${keyPath}.backend`, 'provider_type = "local" needs backend = "ollama" or "gguf"')
    }
    type = backend
    delete entries["backend"]
  }
  if (type === undefined) {
    // `[providers.openai]` without a type is the built-in provider of that name, reconfigured.
    const inferred = normalizeBackend(name) ?? (presetOf(name) !== undefined ? name : undefined)
    if (inferred === undefined) return problem(`${keyPath}.provider_type`, "missing (ollama, gguf, openai_compatible or a cloud provider)")
    type = inferred
  }
  if (typeof type !== "string") return problem(`${keyPath}.provider_type`, "must be a string (ollama or gguf)")
  const normalized = normalizeBackend(type) ?? type
  if (normalized !== "ollama" && normalized !== "gguf" && !isCloudType(normalized)) {
    return problem(
      `${keyPath}.provider_type`,
      `unknown provider type ${JSON.stringify(type)} (ollama, gguf, openai_compatible or a cloud provider: ${CLOUD_PROVIDER_TYPES.filter((t) => t !== "openai_compatible").join(", ")})`
    )
  }
  entries["provider_type"] = normalized

  let slots = draft.instances.get(name)
  const existingType = slots?.get("provider_type")?.value
  if (slots === undefined || existingType !== normalized) {
    // A built-in instance redefined with another type loses the old type's defaults.
    slots = defaultSlots(defaultsFor(normalized))
    draft.instances.set(name, slots)
  }
  const known = KNOWN_KEYS[normalized] ?? KNOWN_KEYS["cloud"]!
  for (const [k, v] of Object.entries(entries)) {
    if (k === "provider_type") {
      slots.set(k, { value: normalized, source, path: `${keyPath}.${k}` })
      continue
    }
    if (!known.includes(k)) {
      draft.warnings.push(`${source}: ${keyPath}.${k}: unknown key, kept in the instance's options`)
    }
    slots.set(k, { value: v, source, path: `${keyPath}.${k}` })
  }
}

/** `Basic …` from a URL's user name and password (percent-decoded), when it has them. */
const basicAuthorization = (url: string): Redacted.Redacted<string> | undefined => {
  if (!USERINFO.test(url)) return undefined
  try {
    const u = new URL(url)
    const user = decodeURIComponent(u.username)
    const password = decodeURIComponent(u.password)
    return Redacted.make(`Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`)
  } catch {
    return undefined
  }
}

/** Parses OLLAMA_HOST the way Ollama does: `host`, `host:port`, `:port` or a URL; default port 11434. */
export const parseOllamaHost = (raw: string): string => {
  const s = raw.trim()
  let scheme = "http"
  let hostport = s
  let defaultPort = "11434"
  const sep = s.indexOf("://")
  if (sep >= 0) {
    scheme = s.slice(0, sep).toLowerCase()
    hostport = s.slice(sep + 3)
    if (scheme === "http") defaultPort = "80"
    else if (scheme === "https") defaultPort = "443"
  }
  const slash = hostport.indexOf("/")
  const path = slash >= 0 ? hostport.slice(slash) : ""
  if (slash >= 0) hostport = hostport.slice(0, slash)
  // `user:pw@host:port`: kept in the URL, which validation turns into an Authorization header.
  const at = hostport.lastIndexOf("@")
  const userinfo = at >= 0 ? `${hostport.slice(0, at)}@` : ""
  if (at >= 0) hostport = hostport.slice(at + 1)
  let host = "127.0.0.1"
  let port = defaultPort
  const m = /^(\[[^\]]+\]|[^:]*):(\d*)$/.exec(hostport)
  if (m !== null) {
    host = m[1]!.length > 0 ? m[1]! : "127.0.0.1"
    // An out-of-range port is kept: validation reports it with its source instead of guessing.
    if (m[2]!.length > 0) port = m[2]!
  } else if (hostport.length > 0) {
    host = hostport.includes(":") && !hostport.startsWith("[") ? `[${hostport}]` : hostport
  }
  // 0.0.0.0 is a listen address; a client reaches that server on loopback.
  if (host === "0.0.0.0") host = "127.0.0.1"
  if (host === "[::]") host = "[::1]"
  return `${scheme}://${userinfo}${host}:${port}${path === "/" ? "" : path}`
}

const RESERVED_ENV = new Set(["LLMSPELL_CONFIG", "LLMSPELL_DEBUG", "LLMSPELL_MODELS_DIR", "LLMSPELL_DEFAULT_BACKEND"])

const defaultInstanceOf = (draft: Draft, type: "ollama" | "gguf"): string | undefined => {
  if (draft.instances.get(type)?.get("provider_type")?.value === type) return type
  for (const [name, slots] of draft.instances) if (slots.get("provider_type")?.value === type) return name
  return undefined
}

const applyEnv = (draft: Draft, env: Readonly<Record<string, string | undefined>>) => {
  const set = (instance: string | undefined, key: string, value: unknown, name: string) => {
    if (instance === undefined) return
    draft.instances.get(instance)?.set(key, { value, source: `env ${name}` })
  }
  const get = (name: string) => {
    const v = env[name]
    return v !== undefined && v.length > 0 ? v : undefined
  }
  const ollamaHost = get("OLLAMA_HOST")
  if (ollamaHost !== undefined) {
    const instance = defaultInstanceOf(draft, "ollama")
    if (instance !== undefined) {
      draft.instances.get(instance)?.set("base_url", {
        value: parseOllamaHost(ollamaHost),
        source: "env OLLAMA_HOST",
        raw: ollamaHost
      })
    }
  }
  const modelsDir = get("LLMSPELL_MODELS_DIR")
  if (modelsDir !== undefined) set(defaultInstanceOf(draft, "gguf"), "model_directory", modelsDir, "LLMSPELL_MODELS_DIR")
  const defaultBackend = get("LLMSPELL_DEFAULT_BACKEND")
  if (defaultBackend !== undefined) draft.defaultBackend = { value: defaultBackend, source: "env LLMSPELL_DEFAULT_BACKEND" }
  const token = get("HF_TOKEN")
  if (token !== undefined) draft.hub.set("token", { value: token, source: "env HF_TOKEN" })
  const endpoint = get("HF_ENDPOINT")
  if (endpoint !== undefined) draft.hub.set("endpoint", { value: endpoint, source: "env HF_ENDPOINT" })
  const offline = get("HF_HUB_OFFLINE")
  if (offline !== undefined) draft.hub.set("offline", { value: coerceBoolean(offline), source: "env HF_HUB_OFFLINE" })

  // LLMSPELL_<INSTANCE>_<KEY>: longest instance name first, so `gguf_big` wins over `gguf`.
  const names = [...draft.instances.keys()].sort((a, b) => b.length - a.length)
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith("LLMSPELL_") || RESERVED_ENV.has(name) || raw === undefined) continue
    const rest = name.slice("LLMSPELL_".length)
    const instance = names.find((n) => rest.startsWith(`${envName(n)}_`) && rest.length > envName(n).length + 1)
    if (instance === undefined) continue
    const key = rest.slice(envName(instance).length + 1).toLowerCase()
    if (key === "provider_type") {
      draft.problems.push(`env ${name}: the provider type cannot be changed from the environment`)
      continue
    }
    set(instance, key, coerceEnvValue(key, raw), name)
  }
}

const envName = (instance: string) => instance.toUpperCase().replace(/[^A-Z0-9]/g, "_")

const coerceBoolean = (raw: string): unknown => {
  const v = raw.trim().toLowerCase()
  if (["1", "true", "yes", "on"].includes(v)) return true
  if (["0", "false", "no", "off", ""].includes(v)) return false
  return raw
}

const coerceEnvValue = (key: string, raw: string): unknown => {
  if (NUMERIC_KEYS.has(key) && /^-?\d+(\.\d+)?$/.test(raw.trim())) return Number(raw.trim())
  if (BOOLEAN_KEYS.has(key)) return coerceBoolean(raw)
  return raw
}

const applyFlags = (draft: Draft, flags: ConfigFlags) => {
  if (flags.ollamaHost !== undefined) {
    const inst = defaultInstanceOf(draft, "ollama")
    if (inst !== undefined) {
      draft.instances.get(inst)!.set("base_url", {
        value: parseOllamaHost(flags.ollamaHost),
        source: "flag --ollama-host",
        raw: flags.ollamaHost
      })
    }
  }
  if (flags.modelsDir !== undefined) {
    const inst = defaultInstanceOf(draft, "gguf")
    if (inst !== undefined) {
      draft.instances.get(inst)!.set("model_directory", { value: flags.modelsDir, source: "flag --models-dir" })
    }
  }
  if (flags.defaultBackend !== undefined) {
    draft.defaultBackend = { value: flags.defaultBackend, source: "flag --backend" }
  }
  if (flags.hubEndpoint !== undefined) draft.hub.set("endpoint", { value: flags.hubEndpoint, source: "flag --hub-endpoint" })
  if (flags.offline !== undefined) draft.hub.set("offline", { value: flags.offline, source: "flag --offline" })
}

/**
 * Expands `${VAR}`, `$VAR` and a leading `~` in a path. An unset variable is an error: a literal
 * `${HOME}` directory must never be created by accident.
 */
export const expandPath = (
  value: string,
  env: Readonly<Record<string, string | undefined>>,
  home: string
): Either.Either<string, string> => {
  let missing: string | undefined
  const lookup = (name: string) => {
    const v = name === "HOME" && env[name] === undefined ? home : env[name]
    if (v === undefined) missing ??= name
    return v ?? ""
  }
  let out = value.replace(/\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? ""
    if (braced !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(braced)) {
      missing ??= `{${braced}}`
      return ""
    }
    return lookup(name)
  })
  if (missing !== undefined) {
    return Either.left(
      missing.startsWith("{") ? `invalid variable reference $${missing}` : `environment variable ${missing} is not set`
    )
  }
  if (out === "~") out = home
  else if (out.startsWith("~/")) out = joinPath(home, out.slice(2))
  return Either.right(out)
}

const expandPaths = (draft: Draft, env: Readonly<Record<string, string | undefined>>, home: string) => {
  for (const [key, slot] of draft.stores) {
    if (typeof slot.value !== "string" || slot.value === "auto") continue
    const expanded = expandPath(slot.value, env, home)
    if (Either.isLeft(expanded)) draft.problems.push(`${slot.source}: stores.${key}: ${expanded.left} (in ${JSON.stringify(slot.value)})`)
    else slot.value = expanded.right
  }
  for (const [name, slots] of draft.instances) {
    for (const [key, slot] of slots) {
      if (!isPathKey(key) || typeof slot.value !== "string") continue
      const expanded = expandPath(slot.value, env, home)
      if (Either.isLeft(expanded)) {
        draft.problems.push(
          `${slot.source}: ${slot.path ?? `providers.${name}.${key}`}: ${expanded.left} (in ${JSON.stringify(slot.value)})`
        )
      } else {
        slot.value = expanded.right
      }
    }
  }
}

const validate = (
  draft: Draft,
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  home: string
): LlmspellConfig | undefined => {
  const entries: Array<ConfigEntry> = []
  const record = (key: string, slot: Slot) => {
    const secret = SECRET_KEY.test(key.split(".").pop() ?? "")
    const value = secret ? "<redacted>" : typeof slot.value === "string" ? redactUrl(slot.value) : slot.value
    entries.push({ key, value, source: slot.source, secret })
  }
  const check = <A>(
    schema: Schema.Schema<A, any>,
    slots: Map<string, Slot>,
    prefix: string
  ): A | undefined => {
    // Keys the schema does not know (an instance's options) are ignored.
    const obj = Object.fromEntries([...slots].map(([k, slot]) => [k, slot.value]))
    const decoded = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })(obj)
    if (Either.isRight(decoded)) return decoded.right
    // A union reports one issue per member; our annotated "must …" message says it once.
    const byKey = new Map<string, Array<string>>()
    for (const issue of ParseResult.ArrayFormatter.formatErrorSync(decoded.left)) {
      const key = issue.path.map(String).join(".")
      const message = issue._tag === "Missing" ? "is required" : issue.message
      byKey.set(key, [...(byKey.get(key) ?? []), message])
    }
    for (const [key, messages] of byKey) {
      const preferred = messages.filter((m) => m.startsWith("must ") || m === "is required")
      const secret = SECRET_KEY.test(key)
      // Schema's own messages quote the value: never let a secret's value through.
      const message = preferred.length === 0 && secret
        ? "has an invalid value"
        : [...new Set(preferred.length > 0 ? preferred : messages)].join("; ")
      const slot = slots.get(key.split(".")[0] ?? "")
      const source = slot?.source ?? file ?? DEFAULT_SOURCE
      const shown = slot !== undefined && !secret ? ` (got ${display(slot.raw ?? slot.value)})` : ""
      draft.problems.push(`${source}: ${slot?.path ?? `${prefix}.${key}`}: ${message}${shown}`)
    }
    return undefined
  }

  // default_backend: normalize candle → gguf before checking.
  const backendValue = draft.defaultBackend.value
  const defaultBackend = typeof backendValue === "string" ? normalizeBackend(backendValue) : undefined
  if (defaultBackend === undefined) {
    draft.problems.push(
      `${draft.defaultBackend.source}: ${draft.defaultBackend.path ?? "providers.default_backend"}: must be "ollama" or "gguf" (got ${JSON.stringify(backendValue)})`
    )
  }
  record("providers.default_provider", draft.defaultProvider)
  record("providers.default_backend", { ...draft.defaultBackend, value: defaultBackend ?? backendValue })

  const instances: Array<ProviderInstanceConfig> = []
  for (const [name, slots] of draft.instances) {
    const type = slots.get("provider_type")!.value as string
    for (const [k, slot] of slots) record(`providers.${name}.${k}`, slot)
    const known = KNOWN_KEYS[type] ?? KNOWN_KEYS["cloud"]!
    const options: Record<string, unknown> = {}
    for (const [k, slot] of slots) if (!known.includes(k)) options[k] = slot.value
    if (type === "ollama") {
      const v = check(OllamaInstance, slots, `providers.${name}`)
      if (v !== undefined) {
        // The user name and password in base_url become a header and leave the printed URL.
        const authorization = basicAuthorization(v.baseUrl)
        instances.push({
          name,
          ...v,
          baseUrl: stripUserinfo(v.baseUrl),
          ...(authorization !== undefined ? { authorization } : {}),
          options
        })
      }
    } else if (type === "gguf") {
      const v = check(GgufInstance, slots, `providers.${name}`)
      if (v !== undefined) instances.push({ name, ...v, options })
    } else {
      const file = check(CloudInstanceFile, slots, `providers.${name}`)
      if (type === "openai_compatible" && !slots.has("base_url")) {
        draft.problems.push(`${slots.get("provider_type")?.source ?? "config"}: providers.${name}.base_url: is required for provider_type = "openai_compatible"`)
      } else if (file !== undefined) {
        instances.push(cloudInstance(name, type as CloudInstanceConfig["type"], file, options, env))
      }
    }
  }

  const dp = draft.defaultProvider
  if (typeof dp.value !== "string" || dp.value.length === 0) {
    draft.problems.push(`${dp.source}: providers.default_provider: must be a non-empty string`)
  } else if (
    dp.value !== "local" &&
    normalizeBackend(dp.value) === undefined &&
    !draft.instances.has(dp.value) &&
    !isCloudType(dp.value)
  ) {
    draft.problems.push(
      `${dp.source}: providers.default_provider: ${JSON.stringify(dp.value)} is neither "local" nor a configured instance ` +
        `(${[...draft.instances.keys()].join(", ")})`
    )
  }

  for (const [k, slot] of draft.hub) record(`hub.${k}`, slot)
  const hub = check(Hub, draft.hub, "hub")
  if (hub !== undefined && USERINFO.test(hub.endpoint)) {
    // The hub authenticates with a bearer token; a user name and password in the URL would be
    // a second, conflicting credential that huggingface.co ignores. Refuse it, never print it.
    const slot = draft.hub.get("endpoint")!
    draft.problems.push(
      `${slot.source}: hub.endpoint: must not contain a user name or password (got ${display(slot.value)}); ` +
        `the hub authenticates with a token: put it in HF_TOKEN or hub.token`
    )
  }

  for (const [k, slot] of draft.stores) record(`stores.${k}`, slot)
  const stores = check(Stores, draft.stores, "stores")

  const serveAliases: Array<ModelAlias> = []
  for (const { name, slot } of draft.serveAliases) {
    record(slot.path!, slot)
    const spec = slot.value
    if (name.trim() === "") {
      draft.problems.push(`${slot.source}: ${slot.path}: an alias needs a name`)
    } else if (typeof spec !== "string" || spec.trim() === "") {
      draft.problems.push(`${slot.source}: ${slot.path}: must be a model spec, e.g. "qwen3-coder@gguf" (got ${display(spec)})`)
    } else {
      const parsed = parseSpec(spec)
      if (Either.isLeft(parsed)) draft.problems.push(`${slot.source}: ${slot.path}: ${parsed.left.message}`)
      else serveAliases.push({ name, spec: spec.trim() })
    }
  }
  // Each of these failed with a problem already reported.
  if (defaultBackend === undefined || hub === undefined || stores === undefined) return undefined

  return {
    defaultProvider: String(dp.value),
    defaultBackend,
    instances,
    hub,
    stores: {
      ...stores,
      env: Object.fromEntries(STORE_ENV.filter((k) => env[k] !== undefined).map((k) => [k, env[k]])),
      home
    },
    file,
    entries,
    warnings: capWarnings(draft.warnings),
    ...(serveAliases.length > 0 ? { serveAliases } : {}),
    cloudKeys: Object.fromEntries(
      KEY_VARIABLES.flatMap((v) => (env[v] !== undefined && env[v]!.length > 0 ? [[v, Redacted.make(env[v]!)]] : []))
    )
  }
}

const isCloudType = (type: string) =>
  CLOUD_PROVIDER_TYPES.includes(type) || (CLOUD_PROVIDERS as ReadonlyArray<string>).includes(type)

/**
 * A cloud instance from its slots: the preset's base URL and key variable unless the entry says
 * otherwise; `api_key` has `${VAR}` / `$VAR` expanded, and an unset variable leaves the key absent
 * (a `MissingCredentials` naming it when the instance is used), not a config error, so local use
 * never breaks on a cloud entry. The key is never kept among the options.
 */
const cloudInstance = (
  name: string,
  type: CloudInstanceConfig["type"],
  file: typeof CloudInstanceFile.Type,
  options: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>
): CloudInstanceConfig => {
  const preset = type === "openai_compatible" ? undefined : presetOf(type)
  let apiKey: Redacted.Redacted<string> | undefined
  let keyVariable: string | undefined = preset?.keyVariable
  if (file.api_key !== undefined) {
    const reference = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$|^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(file.api_key.trim())
    const variable = reference?.[1] ?? reference?.[2]
    if (variable !== undefined) {
      keyVariable = variable
      const value = env[variable]
      if (value !== undefined && value.length > 0) apiKey = Redacted.make(value)
    } else if (file.api_key.length > 0) {
      keyVariable = undefined
      apiKey = Redacted.make(file.api_key)
    }
  } else if (keyVariable !== undefined) {
    const value = env[keyVariable]
    if (value !== undefined && value.length > 0) apiKey = Redacted.make(value)
  }
  return {
    type,
    name,
    options: {
      ...options,
      ...(file.base_url !== undefined ? { base_url: file.base_url } : {}),
      ...(file.model !== undefined ? { model: file.model } : {}),
      ...(file.models !== undefined ? { models: file.models } : {})
    },
    protocol: type === "openai_compatible" ? "openai" : preset?.protocol,
    baseUrl: file.base_url !== undefined ? stripUserinfo(file.base_url) : preset?.baseUrl,
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(keyVariable !== undefined ? { keyVariable } : {}),
    ...(file.models !== undefined ? { models: file.models } : {}),
    streamUsage: preset?.streamUsage ?? true,
    ...(preset !== undefined ? { embeddings: preset.embeddings } : {})
  }
}

/**
 * The cloud instance a provider name means: a configured cloud instance of that name, else the
 * built-in provider of that name with its key from the conventional variable. Undefined when the
 * name is neither (or names a local instance).
 */
export const cloudInstanceOf = (config: LlmspellConfig, name: string): CloudInstanceConfig | undefined => {
  const configured = config.instances.find((i) => i.name === name)
  if (configured !== undefined) return configured.type === "ollama" || configured.type === "gguf" ? undefined : configured
  const preset = presetOf(name)
  if (preset === undefined) return undefined
  const apiKey = config.cloudKeys?.[preset.keyVariable]
  return {
    type: preset.name as CloudInstanceConfig["type"],
    name: preset.name,
    options: {},
    protocol: preset.protocol,
    baseUrl: preset.baseUrl,
    ...(apiKey !== undefined ? { apiKey } : {}),
    keyVariable: preset.keyVariable,
    streamUsage: preset.streamUsage,
    embeddings: preset.embeddings
  }
}

/** The first MAX_WARNINGS warnings, then one that counts the rest (a file of 100k unknown keys stays readable). */
const capWarnings = (warnings: ReadonlyArray<string>): ReadonlyArray<string> =>
  warnings.length <= MAX_WARNINGS
    ? warnings
    : [...warnings.slice(0, MAX_WARNINGS), `… and ${warnings.length - MAX_WARNINGS} more warnings like these (not shown)`]

/**
 * A value as printed in a message: a URL without its user name and password, and the same for a
 * `user:pw@host:port` written without a scheme (OLLAMA_HOST as the user typed it).
 */
const display = (value: unknown): string =>
  typeof value === "string"
    ? JSON.stringify(redactUrl(value).replace(/^[^/?#\s"]*@/, "<redacted>@"))
    : JSON.stringify(value) ?? String(value)

/** Joins path segments with '/', without touching the file system. */
const joinPath = (...parts: Array<string>) =>
  parts
    .map((p, i) => (i === 0 ? p.replace(/\/+$/, "") : p.replace(/^\/+|\/+$/g, "")))
    .filter((p, i) => i === 0 || p.length > 0)
    .join("/")

/** The instance a backend type uses by default: the one named like the type, else the first of that type. */
export function defaultInstance(config: LlmspellConfig, type: "ollama"): OllamaInstanceConfig | undefined
export function defaultInstance(config: LlmspellConfig, type: "gguf"): GgufInstanceConfig | undefined
export function defaultInstance(
  config: LlmspellConfig,
  type: "ollama" | "gguf"
): OllamaInstanceConfig | GgufInstanceConfig | undefined
export function defaultInstance(config: LlmspellConfig, type: "ollama" | "gguf"): OllamaInstanceConfig | GgufInstanceConfig | undefined {
  const ofType = config.instances.filter((i) => i.type === type) as Array<OllamaInstanceConfig | GgufInstanceConfig>
  return ofType.find((i) => i.name === type) ?? ofType[0]
}

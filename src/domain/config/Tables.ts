/**
 * The config file's tables as Schemas: every key's snake_case name in the file, its check, and its
 * default (the only copy of the defaults: `config show`'s "default" values are these, encoded
 * back). Built on first use, not at import: `--help` and commands run against a server never
 * resolve a configuration, so they never pay for building these. Pure: no I/O.
 */
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { CLOUD_PROVIDER_TYPES } from "../CloudPresets.js"
import { CLOUD_PROVIDERS } from "../ModelSpec.js"
import { OLLAMA_DEFAULT_PORT, parseServerUrl, SECRET_NAME, urlProblem } from "../ServerUrl.js"

/**
 * The GGUF worker settings' defaults, for a loader built without a config: the same values
 * `worker_max_heap_mb` and `prepare_timeout_seconds` default to below.
 */
export const GGUF_WORKER_DEFAULTS: { readonly workerMaxHeapMb: number; readonly prepareTimeoutSeconds: number } = {
  workerMaxHeapMb: 2048,
  prepareTimeoutSeconds: 30
}

/**
 * One "must …" message for a key, whichever check failed. `override: true` also covers the inner
 * checks (the Int under `positive`, the members of a union or multi-member Literal), which otherwise
 * report Schema's own "Expected …, actual <value>" and would echo a secret's value.
 */
const must = (message: string) => ({ message: () => ({ message, override: true }) })

/**
 * A key of a TOML table: its snake_case name in the file, its check, and its default, which is
 * the only one: `config show`'s "default" values are this, encoded back (see `defaultsOf`).
 */
const tomlKey = <K extends string, S extends Schema.Schema.AnyNoContext>(key: K, schema: S, value: Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { exact: true, default: () => value }).pipe(Schema.fromKey(key))

/** A table's keys as written in the file. */
const tomlKeys = (schema: Schema.Schema.AnyNoContext): ReadonlyArray<string> =>
  SchemaAST.getPropertySignatures(Schema.encodedSchema(schema).ast).map((p) => String(p.name))

/** A table's defaults as written in a file: an empty table decoded (which fills them in), encoded back. */
const defaultsOf = <A, I>(schema: Schema.Schema<A, I>): Readonly<Record<string, unknown>> =>
  Schema.encodeSync(schema)(Schema.decodeUnknownSync(schema)({})) as Record<string, unknown>

const makeTables = () => {
  const positiveInt = Schema.Int.pipe(Schema.positive()).annotations(must("must be a positive integer"))
  const nonNegativeInt = Schema.Int.pipe(Schema.nonNegative()).annotations(must("must be an integer ≥ 0"))
  const autoOr = <A>(schema: Schema.Schema<A, A>, what: string) =>
    Schema.Union(Schema.Literal("auto"), schema).annotations(must(`must be "auto" or ${what}`))
  /**
   * A server URL in any form `parseServerUrl` reads (a short form gets `http://` and the default
   * port), checked after that, resolved without its trailing `/` (paths are appended to it).
   */
  const httpUrl = (defaultPort?: number) =>
    Schema.transform(
      Schema.String.annotations(must("must be an http:// or https:// URL, or host:port")),
      Schema.String.pipe(Schema.filter((s) => urlProblem(s) ?? true)),
      { strict: true, decode: (s) => parseServerUrl(s, defaultPort).replace(/\/+$/, ""), encode: (s) => s }
    )
  const nonEmpty = Schema.String.pipe(Schema.minLength(1)).annotations(must("must be a non-empty string"))
  const positiveNumber = Schema.Number.pipe(Schema.positive()).annotations(must("must be a number > 0"))
  const nonNegativeNumber = Schema.Number.pipe(Schema.nonNegative()).annotations(must("must be a number ≥ 0"))

  /** `[providers.NAME]` with provider_type = "ollama". */
  const OllamaInstance = Schema.Struct({
    type: tomlKey("provider_type", Schema.Literal("ollama"), "ollama"),
    baseUrl: tomlKey("base_url", httpUrl(OLLAMA_DEFAULT_PORT), `http://127.0.0.1:${OLLAMA_DEFAULT_PORT}`),
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
    prepareTimeoutSeconds: tomlKey("prepare_timeout_seconds", positiveNumber, GGUF_WORKER_DEFAULTS.prepareTimeoutSeconds),
    /** Worker only: the worker's JS heap cap in MiB (a runaway chat template fails fast). */
    workerMaxHeapMb: tomlKey(
      "worker_max_heap_mb",
      Schema.Int.pipe(Schema.greaterThanOrEqualTo(64)).annotations(must("must be an integer ≥ 64")),
      GGUF_WORKER_DEFAULTS.workerMaxHeapMb
    )
  })

  /**
   * `[providers.NAME]` of a cloud provider or an `openai_compatible` server: the keys a file may
   * set, checked like the other tables. The rest of a `CloudInstanceConfig` comes from the
   * provider's preset (CloudPresets.ts: base URL, key variable, protocol) and the environment (the
   * key), in `cloudInstance` (Resolve.ts).
   */
  const CloudInstanceFile = Schema.Struct({
    provider_type: Schema.String,
    base_url: Schema.optional(httpUrl()),
    /** The key, or `${VAR}` / `$VAR` naming the variable that holds it. */
    api_key: Schema.optional(Schema.String.annotations(must("must be a string"))),
    model: Schema.optional(nonEmpty),
    /** Models to list when the server has no models endpoint (or to list instead of it). */
    models: Schema.optional(Schema.Array(Schema.String.pipe(Schema.minLength(1))).annotations(must("must be a list of model names")))
  })

  /** `[hub]`. */
  const Hub = Schema.Struct({
    endpoint: tomlKey("endpoint", httpUrl(), "https://huggingface.co"),
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

  return { OllamaInstance, GgufInstance, CloudInstanceFile, Hub, storeSetting, Stores }
}

type TableSchemas = ReturnType<typeof makeTables>

const makeKeys = (t: TableSchemas) => ({
  /** The keys each instance type knows, as written in the file. */
  instance: { ollama: tomlKeys(t.OllamaInstance), gguf: tomlKeys(t.GgufInstance), cloud: tomlKeys(t.CloudInstanceFile) } as Readonly<
    Record<string, ReadonlyArray<string>>
  >,
  hub: tomlKeys(t.Hub),
  stores: tomlKeys(t.Stores),
  /** Each table's defaults as written in a file. */
  defaults: {
    instance: { ollama: defaultsOf(t.OllamaInstance), gguf: defaultsOf(t.GgufInstance) } as Readonly<
      Record<string, Readonly<Record<string, unknown>>>
    >,
    hub: defaultsOf(t.Hub),
    stores: defaultsOf(t.Stores)
  }
})

let built: (TableSchemas & { readonly keys: ReturnType<typeof makeKeys> }) | undefined

/** The tables' Schemas, their keys and defaults: built on the first call, then shared. */
export const tables = () => {
  if (built === undefined) {
    const schemas = makeTables()
    built = { ...schemas, keys: makeKeys(schemas) }
  }
  return built
}

/** An Ollama table, resolved. */
export type OllamaFields = Schema.Schema.Type<TableSchemas["OllamaInstance"]>
/** A GGUF table, resolved. */
export type GgufFields = Schema.Schema.Type<TableSchemas["GgufInstance"]>
/** A cloud table as the file may write it. */
export type CloudFileFields = Schema.Schema.Type<TableSchemas["CloudInstanceFile"]>
/** `[hub]`, resolved. */
export type HubFields = Schema.Schema.Type<TableSchemas["Hub"]>
/** `[stores]`, resolved. */
export type StoresFields = Schema.Schema.Type<TableSchemas["Stores"]>
/** One `[stores]` setting, resolved. */
export type StoreSettingValue = Schema.Schema.Type<TableSchemas["storeSetting"]>

/** The defaults of an instance of this type, as written in a file (a cloud type has only its type). */
export const defaultsFor = (type: string): Readonly<Record<string, unknown>> =>
  tables().keys.defaults.instance[type] ?? { provider_type: type }

/** The keys an instance of this type knows (cloud types share one table). */
export const knownKeysOf = (type: string): ReadonlyArray<string> =>
  tables().keys.instance[type] ?? tables().keys.instance["cloud"]!

/** The variables the foreign tools read to locate their stores (passed on, so roots resolve as each tool does). */
export const STORE_ENV = ["OLLAMA_MODELS", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"]

/** Keys whose values are numbers (an environment variable's text is read as a number for them). */
export const NUMERIC_KEYS: ReadonlySet<string> = new Set([
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
/** Keys whose values are booleans. */
export const BOOLEAN_KEYS: ReadonlySet<string> = new Set(["offline"])
/** Keys whose values are never printed: known secrets and unknown keys that look like one. */
export const SECRET_KEY = SECRET_NAME
/**
 * At most this many provider instances (the built-in ones included): `model list` and `model
 * status` ask every one, so a config of thousands (10,000 tables fit in the 1 MiB a config file
 * may have) would make them take minutes; it is refused with one clear problem instead.
 */
export const MAX_INSTANCES = 1000
/** At most this many warnings are kept; the rest are counted in one last warning. */
export const MAX_WARNINGS = 20
/** Keys whose values are paths: `${VAR}`, `$VAR` and a leading `~` expand in them. */
export const isPathKey = (key: string) => key === "model_directory" || /(_dir|_directory|_path|_file)$/.test(key)
/** Keys whose values are server URLs. */
export const isUrlKey = (key: string) => key === "base_url" || key === "endpoint"

/** A built-in cloud provider's name, or `openai_compatible`. */
export const isCloudType = (type: string) =>
  CLOUD_PROVIDER_TYPES.includes(type) || (CLOUD_PROVIDERS as ReadonlyArray<string>).includes(type)

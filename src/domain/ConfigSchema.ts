/**
 * The configuration's shape: the resolved types every layer reads (instances, hub, stores, the
 * provenance of each value), and the entry points of its resolution. Each job of resolving it is a
 * module of its own under `config/`: `Tables` (the TOML tables as Schemas, with the defaults),
 * `Document` (the file and its legacy shapes), `Overlay` (environment, flags, path expansion),
 * `Resolve` (checking, provenance, cloud instances); server URL forms and their redaction are
 * `ServerUrl.ts`. Pure: the caller reads the file and passes the environment in; nothing here
 * touches the disk or creates a directory.
 */
import type * as Redacted from "effect/Redacted"
import type { CloudProtocol, RerankEndpoint } from "./CloudPresets.js"
import type { GgufFields, HubFields, OllamaFields, StoresFields, StoreSettingValue } from "./config/Tables.js"
import type { ModelAlias } from "./ModelAliases.js"
import type { CLOUD_PROVIDERS } from "./ModelSpec.js"

export { cloudInstanceOf, defaultInstance, resolveConfig } from "./config/Resolve.js"
export { expandPath } from "./config/Overlay.js"
export { GGUF_WORKER_DEFAULTS, MAX_INSTANCES, MAX_WARNINGS } from "./config/Tables.js"
export { FETCH_BAD_PORTS, parseOllamaHost, redactUrl } from "./ServerUrl.js"

/** An Ollama server. */
export interface OllamaInstanceConfig extends OllamaFields {
  readonly name: string
  /**
   * The `Authorization` header sent with every request: `Basic …` from the user name and password
   * written in `base_url` (`http://user:pw@host`, how Ollama is put behind a reverse proxy). They
   * are taken out of `baseUrl`, which is printed; fetch refuses URLs with credentials anyway.
   */
  readonly authorization?: Redacted.Redacted<string> | undefined
  readonly options: Readonly<Record<string, unknown>>
}

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
  /** Where the API lives (without a trailing `/`, a user name and password, or a query). */
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
  /** Where rerank is offered, false where it is not (undefined: try `{base_url}/rerank`). */
  readonly rerank?: RerankEndpoint | false | undefined
}

/** One configured provider instance. */
export type ProviderInstanceConfig = OllamaInstanceConfig | GgufInstanceConfig | CloudInstanceConfig

/** Where models are pulled from. */
export interface HubConfig extends HubFields {}

/**
 * One foreign store's setting in `[stores]`: `"auto"` (use the tool's default location if it exists),
 * a path (use that directory), or `false` (never look there).
 */
export type StoreSetting = StoreSettingValue

/** `[stores]`: which other tools' GGUF stores llmspell reads in place (never writes). */
export interface StoresConfig extends StoresFields {
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

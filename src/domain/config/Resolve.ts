/**
 * Resolution: defaults, then the document (Document.ts), then the environment and the flags
 * (Overlay.ts), then every table checked against its Schema (Tables.ts) with every problem
 * reported at once, each naming its source. Also what the checked values become: the provenance
 * entries `config show` prints (secrets redacted), an Ollama URL's user name and password turned
 * into a header, a server URL's query left out (with a warning: it would never reach the server),
 * and cloud instances completed from their presets. Pure: the caller reads the file and passes
 * the environment in; nothing here touches the disk.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { KEY_VARIABLES, presetOf } from "../CloudPresets.js"
import type {
  CloudInstanceConfig,
  ConfigEntry,
  ConfigInput,
  GgufInstanceConfig,
  LlmspellConfig,
  OllamaInstanceConfig,
  ProviderInstanceConfig
} from "../ConfigSchema.js"
import { ConfigError } from "../Errors.js"
import type { ModelAlias } from "../ModelAliases.js"
import { normalizeBackend, parse as parseSpec } from "../ModelSpec.js"
import { hasScheme, redactUrl, splitQuery, stripUserinfo, userinfoOf } from "../ServerUrl.js"
import { applyDocument, parseTomlText } from "./Document.js"
import { DEFAULT_SOURCE, defaultSlots, display, type Draft, type Slot } from "./Draft.js"
import { applyEnv, applyFlags, expandPaths } from "./Overlay.js"
import {
  type CloudFileFields,
  defaultsFor,
  isCloudType,
  knownKeysOf,
  MAX_INSTANCES,
  MAX_WARNINGS,
  SECRET_KEY,
  STORE_ENV,
  tables
} from "./Tables.js"

type Env = Readonly<Record<string, string | undefined>>

/** Resolves the effective configuration, or every problem found in it. */
export const resolveConfig = (input: ConfigInput): Either.Either<LlmspellConfig, ConfigError> => {
  const env = input.env ?? {}
  const { keys } = tables()
  const draft: Draft = {
    defaultProvider: { value: "local", source: DEFAULT_SOURCE },
    defaultBackend: { value: "gguf", source: DEFAULT_SOURCE },
    instances: new Map(),
    hub: defaultSlots(keys.defaults.hub),
    stores: defaultSlots(keys.defaults.stores),
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

const validate = (draft: Draft, file: string | undefined, env: Env, home: string): LlmspellConfig | undefined => {
  const t = tables()
  const entries: Array<ConfigEntry> = []
  const record = (key: string, slot: Slot) => {
    const secret = SECRET_KEY.test(key.split(".").pop() ?? "")
    const value = secret ? "<redacted>" : typeof slot.value === "string" ? redactUrl(slot.value) : slot.value
    entries.push({ key, value, source: slot.source, secret })
  }
  const check = <A>(schema: Schema.Schema<A, any>, slots: Map<string, Slot>, prefix: string): A | undefined => {
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
      const preferred = messages.filter((m) => m.startsWith("must ") || m === "is required" || m.startsWith("port "))
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
  /**
   * A checked server URL without its query and fragment, which would never reach the server
   * (API paths are appended after them): left out, with a warning that shows them redacted.
   */
  const withoutQuery = (url: string, slot: Slot | undefined, key: string, instead: string): string => {
    const { dropped, url: kept } = splitQuery(url)
    if (dropped === undefined) return url
    draft.warnings.push(
      `${slot?.source ?? DEFAULT_SOURCE}: ${slot?.path ?? key}: ${JSON.stringify(redactUrl(dropped))} is left out: ` +
        `llmspell appends API paths to this URL, so a query or fragment there never reaches the server; ${instead}`
    )
    return kept.replace(/\/+$/, "")
  }

  // default_backend: normalize candle → gguf before checking.
  const backendValue = draft.defaultBackend.value
  const defaultBackend = typeof backendValue === "string" ? normalizeBackend(backendValue) : undefined
  if (defaultBackend === undefined) {
    draft.problems.push(
      `${draft.defaultBackend.source}: ${draft.defaultBackend.path ?? "providers.default_backend"}: must be "ollama" or "gguf" (got ${display(backendValue)})`
    )
  }
  record("providers.default_provider", draft.defaultProvider)
  record("providers.default_backend", { ...draft.defaultBackend, value: defaultBackend ?? backendValue })

  if (draft.instances.size > MAX_INSTANCES) {
    // One problem, before checking thousands of tables one by one.
    draft.problems.push(
      `${file ?? [...draft.instances.values()].at(-1)?.get("provider_type")?.source ?? DEFAULT_SOURCE}: providers: ` +
        `${draft.instances.size} instances (with the built-in ollama and gguf); llmspell takes at most ${MAX_INSTANCES}, ` +
        "since model list and model status ask every one of them"
    )
    return undefined
  }
  const instances: Array<ProviderInstanceConfig> = []
  for (const [name, slots] of draft.instances) {
    const type = slots.get("provider_type")!.value as string
    for (const [k, slot] of slots) record(`providers.${name}.${k}`, slot)
    const known = knownKeysOf(type)
    const options: Record<string, unknown> = {}
    for (const [k, slot] of slots) if (!known.includes(k)) options[k] = slot.value
    const urlSlot = slots.get("base_url")
    const urlKey = `providers.${name}.base_url`
    if (type === "ollama") {
      const v = check(t.OllamaInstance, slots, `providers.${name}`)
      if (v !== undefined) {
        const baseUrl = withoutQuery(v.baseUrl, urlSlot, urlKey, "a proxy's password goes in the URL as http://user:password@host")
        // The user name and password in base_url become a header and leave the printed URL.
        const authorization = basicAuthorization(baseUrl)
        const instance: OllamaInstanceConfig = {
          name,
          ...v,
          baseUrl: stripUserinfo(baseUrl),
          ...(authorization !== undefined ? { authorization } : {}),
          options
        }
        instances.push(instance)
      }
    } else if (type === "gguf") {
      const v = check(t.GgufInstance, slots, `providers.${name}`)
      if (v !== undefined) instances.push({ name, ...v, options } satisfies GgufInstanceConfig)
    } else {
      const checked = check(t.CloudInstanceFile, slots, `providers.${name}`)
      if (type === "openai_compatible" && !slots.has("base_url")) {
        draft.problems.push(`${slots.get("provider_type")?.source ?? "config"}: providers.${name}.base_url: is required for provider_type = "openai_compatible"`)
      } else if (checked !== undefined) {
        const fields = checked.base_url === undefined
          ? checked
          : { ...checked, base_url: withoutQuery(checked.base_url, urlSlot, urlKey, "the key goes in api_key (or its variable)") }
        instances.push(cloudInstance(name, type as CloudInstanceConfig["type"], fields, options, env))
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
      `${dp.source}: providers.default_provider: ${display(dp.value)} is neither "local" nor a configured instance ` +
        `(${[...draft.instances.keys()].join(", ")})`
    )
  }

  for (const [k, slot] of draft.hub) record(`hub.${k}`, slot)
  const checkedHub = check(t.Hub, draft.hub, "hub")
  let hub = checkedHub
  if (checkedHub !== undefined) {
    const slot = draft.hub.get("endpoint")!
    if (stripUserinfo(checkedHub.endpoint) !== checkedHub.endpoint) {
      // The hub authenticates with a bearer token; a user name and password in the URL would be
      // a second, conflicting credential that huggingface.co ignores. Refuse it, never print it.
      draft.problems.push(
        `${slot.source}: hub.endpoint: must not contain a user name or password (got ${display(slot.value)}); ` +
          `the hub authenticates with a token: put it in HF_TOKEN or hub.token`
      )
    }
    hub = { ...checkedHub, endpoint: withoutQuery(checkedHub.endpoint, slot, "hub.endpoint", "the token goes in HF_TOKEN or hub.token") }
  }

  for (const [k, slot] of draft.stores) record(`stores.${k}`, slot)
  const stores = check(t.Stores, draft.stores, "stores")

  const serveAliases: Array<ModelAlias> = []
  for (const { name, slot } of draft.serveAliases) {
    // a spec, not a URL: `qwen3-coder@gguf` has no user name to redact (record's redactUrl would take it for one)
    entries.push({ key: slot.path!, value: slot.value, source: slot.source, secret: false })
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

/** `Basic …` from a URL's user name and password (percent-decoded), when it has them. */
const basicAuthorization = (url: string): Redacted.Redacted<string> | undefined => {
  const userinfo = hasScheme(url) ? userinfoOf(url) : undefined
  if (userinfo === undefined) return undefined
  return Redacted.make(`Basic ${Buffer.from(`${userinfo.user}:${userinfo.password}`, "utf8").toString("base64")}`)
}

/**
 * A cloud instance from its checked table: the preset's base URL and key variable unless the entry
 * says otherwise; `api_key` has `${VAR}` / `$VAR` expanded, and an unset variable leaves the key
 * absent (a `MissingCredentials` naming it when the instance is used), not a config error, so local
 * use never breaks on a cloud entry. The key is never kept among the options.
 */
const cloudInstance = (
  name: string,
  type: CloudInstanceConfig["type"],
  file: CloudFileFields,
  options: Record<string, unknown>,
  env: Env
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
  const baseUrl = file.base_url !== undefined ? stripUserinfo(file.base_url) : undefined
  return {
    type,
    name,
    options: {
      ...options,
      ...(baseUrl !== undefined ? { base_url: baseUrl } : {}),
      ...(file.model !== undefined ? { model: file.model } : {}),
      ...(file.models !== undefined ? { models: file.models } : {})
    },
    protocol: type === "openai_compatible" ? "openai" : preset?.protocol,
    baseUrl: baseUrl ?? preset?.baseUrl,
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(keyVariable !== undefined ? { keyVariable } : {}),
    ...(file.models !== undefined ? { models: file.models } : {}),
    streamUsage: preset?.streamUsage ?? true,
    ...(preset !== undefined ? { embeddings: preset.embeddings, rerank: preset.rerank } : {})
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
    embeddings: preset.embeddings,
    rerank: preset.rerank
  }
}

/** The first MAX_WARNINGS warnings, then one that counts the rest (a file of 100k unknown keys stays readable). */
const capWarnings = (warnings: ReadonlyArray<string>): ReadonlyArray<string> =>
  warnings.length <= MAX_WARNINGS
    ? warnings
    : [...warnings.slice(0, MAX_WARNINGS), `… and ${warnings.length - MAX_WARNINGS} more warnings like these (not shown)`]

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

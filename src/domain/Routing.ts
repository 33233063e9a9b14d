/**
 * Routing: where a model spec goes — which configured instance (or built-in cloud provider), which
 * backend type, and the model name the backend sees. Pure: every decision can be tested without a
 * backend; `ProviderRegistryLive` (layers/) turns a route into a live backend instance.
 */
import * as Either from "effect/Either"
import type { CloudInstanceConfig, LlmspellConfig, ProviderInstanceConfig } from "./ConfigSchema.js"
import { cloudInstanceOf, defaultInstance } from "./ConfigSchema.js"
import { type InvalidModelSpec, ProviderNotAvailable } from "./Errors.js"
import * as ModelSpec from "./ModelSpec.js"
import type { BackendType } from "./Types.js"

/** Where a spec goes: the instance, its backend type and the model name the backend sees. */
export interface Route {
  readonly spec: ModelSpec.ModelSpec
  readonly text: string
  /** The instance: a configured one, or for a built-in cloud provider (`groq/…`) its preset. */
  readonly instance: ProviderInstanceConfig
  readonly backend: BackendType
  /** The model part of the spec, as the backend receives it. */
  readonly model: string
  /** Why this instance was chosen, for `--verbose` and tests. */
  readonly reason: string
}

/** True for the instances that run on this machine (or a configured Ollama server): not cloud. */
export const isLocal = (i: ProviderInstanceConfig): i is Exclude<ProviderInstanceConfig, CloudInstanceConfig> =>
  i.type === "ollama" || i.type === "gguf"

/** The backend type that serves an instance: its own type for local ones, `cloud` for every cloud provider. */
export const backendTypeOf = (i: ProviderInstanceConfig): BackendType => (isLocal(i) ? i.type : "cloud")

/** Where an instance lives, for status lines: the server URL, the model directory, or the API's base URL. */
export const endpointOf = (i: ProviderInstanceConfig): string =>
  i.type === "ollama" ? i.baseUrl : i.type === "gguf" ? i.modelDirectory : (i.baseUrl ?? i.name)

/** Pure routing: explicit `@backend` first, then the provider instance's type, then the defaults. */
export const route = (
  config: LlmspellConfig,
  input: string | ModelSpec.ModelSpec
): Either.Either<Route, InvalidModelSpec | ProviderNotAvailable> => {
  const names = config.instances.map((i) => i.name)
  const parsed = typeof input === "string" ? ModelSpec.parse(input, names) : Either.right(input)
  if (Either.isLeft(parsed)) return Either.left(parsed.left)
  const spec = parsed.right
  const text = typeof input === "string" ? input : ModelSpec.format(spec)
  const byName = (name: string) => config.instances.find((i) => i.name === name)
  const notAvailable = (provider: string, reason: string) =>
    Either.left(new ProviderNotAvailable({ provider, reason, spec: text }))
  const done = (instance: ProviderInstanceConfig, reason: string, model = spec.model): Either.Either<Route, ProviderNotAvailable> =>
    isLocal(instance) || instance.protocol !== undefined
      ? Either.right({ spec, text, instance, backend: backendTypeOf(instance), model, reason })
      : notAvailable(
        instance.name,
        `llmspell has no client for ${instance.type}; if it offers an OpenAI-compatible API, configure it with provider_type = "openai_compatible" and base_url`
      )
  const defaultOf = (backend: "ollama" | "gguf", why: string) => {
    const instance = defaultInstance(config, backend)
    return instance === undefined
      ? notAvailable(backend, `no ${backend} instance is configured`)
      : done(instance, why)
  }

  // What the spec's provider part means: an instance (configured name wins over a type name), a type, or nothing.
  const provider = spec.provider ?? config.defaultProvider
  const providerWhy = spec.provider !== undefined ? `provider ${provider}` : `default_provider ${provider}`
  // A configured instance of that name wins; else a built-in cloud provider of that name (`groq/…`).
  const named = byName(provider) ?? cloudInstanceOf(config, provider)

  // An openai_compatible server names its models as it likes: to another `llmspell serve`,
  // `agent@ollama` and `tiny.gguf@gguf` are model names, not routing (or paths) on this machine.
  if (spec.provider !== undefined && named !== undefined && !isLocal(named) && named.type === "openai_compatible") {
    return done(named, providerWhy, spec.backend !== undefined ? `${spec.model}@${spec.backend}` : spec.model)
  }

  // A local file runs in-process whatever the provider or default backend says: an Ollama server
  // cannot open a path on this machine (and a remote one would look it up on its own disk).
  if (ModelSpec.isFileReference(spec.model)) {
    if (spec.backend !== undefined && ModelSpec.normalizeBackend(spec.backend) !== "gguf") {
      return notAvailable(spec.backend, `a local file runs on the GGUF runtime, not @${spec.backend}: drop @${spec.backend}`)
    }
    if (named !== undefined && named.type === "gguf") return done(named, `local file on instance ${named.name}`)
    return defaultOf("gguf", "a local file runs on the GGUF runtime")
  }

  if (spec.backend !== undefined) {
    const backend = ModelSpec.normalizeBackend(spec.backend)!
    if (named !== undefined && !isLocal(named) && spec.provider !== undefined) {
      return notAvailable(provider, `${provider} is a cloud provider; a cloud model runs there, not @${spec.backend}: drop @${spec.backend}`)
    }
    if (named !== undefined && named.type === backend) return done(named, `@${spec.backend} on instance ${named.name}`)
    if (named !== undefined && spec.provider !== undefined && provider !== "local" && named.type !== backend) {
      return notAvailable(provider, `instance ${provider} is a ${named.type} provider, but the spec asks for @${spec.backend}`)
    }
    if ((ModelSpec.CLOUD_PROVIDERS as ReadonlyArray<string>).includes(provider) && spec.provider !== undefined) {
      return notAvailable(provider, `${provider} is a cloud provider, not a local backend: drop @${spec.backend}`)
    }
    return defaultOf(backend, `@${spec.backend}`)
  }
  if (provider === "local" && named === undefined) {
    return defaultOf(config.defaultBackend, `${providerWhy} → default_backend ${config.defaultBackend}`)
  }
  if (named !== undefined) return done(named, providerWhy)
  const asBackend = ModelSpec.normalizeBackend(provider)
  if (asBackend !== undefined) return defaultOf(asBackend, providerWhy)
  if ((ModelSpec.CLOUD_PROVIDERS as ReadonlyArray<string>).includes(provider)) {
    return notAvailable(
      provider,
      `llmspell has no client for ${provider}; if it offers an OpenAI-compatible API, configure it with provider_type = "openai_compatible" and base_url`
    )
  }
  return notAvailable(provider, "no such provider type or configured instance")
}


/**
 * ProviderRegistry: routes a model spec to a backend instance. Backend factories are registered by
 * type (`ollama`, `gguf`; cloud later); instances are created lazily from the config and cached by
 * instance name. Routing is pure (`route`) so every decision can be tested without a backend.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type { CloudInstanceConfig, LlmspellConfig, ProviderInstanceConfig } from "../domain/ConfigSchema.js"
import { cloudInstanceOf, defaultInstance } from "../domain/ConfigSchema.js"
import { type InvalidModelSpec, type LlmspellError, ProviderNotAvailable } from "../domain/Errors.js"
import * as ModelSpec from "../domain/ModelSpec.js"
import type { BackendType } from "../domain/Types.js"
import type { Backend, BackendFactory } from "./Backend.js"
import { CloudBackend } from "./CloudBackend.js"
import { Config } from "./Config.js"
import { GgufBackend } from "./GgufBackend.js"
import { OllamaBackend } from "./OllamaBackend.js"

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

/** A route plus the live backend instance it points at. */
export interface ResolvedModel extends Route {
  readonly handle: Backend
}

/** Routes specs and hands out backend instances. */
export interface ProviderRegistryService {
  /** Parses and routes a spec, creating the backend instance on first use. */
  readonly resolve: (
    spec: string | ModelSpec.ModelSpec
  ) => Effect.Effect<ResolvedModel, InvalidModelSpec | ProviderNotAvailable | LlmspellError>
  /** Routes a spec without creating anything. */
  readonly route: (spec: string | ModelSpec.ModelSpec) => Effect.Effect<Route, InvalidModelSpec | ProviderNotAvailable>
  /** The backend instance with this name. */
  readonly instance: (name: string) => Effect.Effect<Backend, ProviderNotAvailable | LlmspellError>
  /** Every configured local instance (`all`), or those of one backend type (`cloud`: the configured cloud instances). */
  readonly instances: (filter?: BackendType | "all") => ReadonlyArray<ProviderInstanceConfig>
  /** The instance a spec of this backend type goes to when it names none (`x@gguf`); undefined when none is configured. */
  readonly defaultInstance: (type: BackendType) => ProviderInstanceConfig | undefined
}

/** The registry. */
export class ProviderRegistry extends Context.Tag("llmspell/ProviderRegistry")<ProviderRegistry, ProviderRegistryService>() {}

const isLocal = (i: ProviderInstanceConfig): i is Exclude<ProviderInstanceConfig, CloudInstanceConfig> =>
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

/** Builds a registry from the config and the backend factories; instances live as long as the layer. */
export const make = (
  config: LlmspellConfig,
  factories: ReadonlyArray<BackendFactory<any>>
): Effect.Effect<ProviderRegistryService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const cache = yield* SynchronizedRef.make(new Map<string, Effect.Effect<Backend, LlmspellError>>())

    const instance = (name: string): Effect.Effect<Backend, ProviderNotAvailable | LlmspellError> =>
      Effect.flatten(
        SynchronizedRef.modifyEffect(cache, (map) => {
          const cached = map.get(name)
          if (cached !== undefined) return Effect.succeed([cached, map] as const)
          const entry = config.instances.find((i) => i.name === name) ?? cloudInstanceOf(config, name)
          if (entry === undefined) {
            return Effect.fail(new ProviderNotAvailable({ provider: name, reason: "no such configured instance" }))
          }
          const factory = factories.find((f) => f.type === backendTypeOf(entry))
          if (factory === undefined) {
            return Effect.fail(
              new ProviderNotAvailable({
                provider: name,
                reason: isLocal(entry) ? `no ${entry.type} backend is registered` : `no cloud backend is registered for ${entry.type}`
              })
            )
          }
          // Effect.cached: the instance is built once, on first use, even under concurrent callers.
          // A failed build is forgotten, so a passing problem (a server still starting) is retried next time.
          const forget = SynchronizedRef.update(cache, (m) => {
            const next = new Map(m)
            next.delete(name)
            return next
          })
          return Effect.cached(Scope.extend(factory.make(entry), scope)).pipe(
            Effect.map((built) => {
              const guarded = Effect.tapError(built, () => forget)
              return [guarded, new Map(map).set(name, guarded)] as const
            })
          )
        })
      )

    const routeEffect = (spec: string | ModelSpec.ModelSpec) =>
      Either.match(route(config, spec), { onLeft: Effect.fail, onRight: Effect.succeed })

    return {
      route: routeEffect,
      resolve: (spec) =>
        Effect.flatMap(routeEffect(spec), (r) => Effect.map(instance(r.instance.name), (handle) => ({ ...r, handle }))),
      instance,
      // `all` stays local: listing every model must not call hosted APIs the user did not ask about.
      instances: (filter = "all") =>
        filter === "all" ? config.instances.filter(isLocal) : config.instances.filter((i) => backendTypeOf(i) === filter),
      defaultInstance: (type) => {
        if (type === "cloud") return undefined // a cloud spec always names its provider
        const instance = defaultInstance(config, type)
        return instance !== undefined && isLocal(instance) ? instance : undefined
      }
    }
  })

/**
 * The registry over the configured instances with the Ollama and GGUF backends registered, and
 * the cloud backend when a `CloudBackend` is provided (LlmspellLive provides it).
 */
export const layer: Layer.Layer<ProviderRegistry, never, Config | OllamaBackend | GgufBackend> = Layer.scoped(
  ProviderRegistry,
  Effect.gen(function*() {
    const config = yield* Config
    const ollama = yield* OllamaBackend
    const gguf = yield* GgufBackend
    const cloud = yield* Effect.serviceOption(CloudBackend)
    return yield* make(config, cloud._tag === "Some" ? [ollama, gguf, cloud.value] : [ollama, gguf])
  })
)

/**
 * The live ProviderRegistry: routes with `domain/Routing.ts` and builds each backend instance once,
 * on first use, from the factory registered for its backend type; instances live as long as the layer.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type { LlmspellConfig } from "../domain/ConfigSchema.js"
import { cloudInstanceOf, defaultInstance } from "../domain/ConfigSchema.js"
import { ProviderNotAvailable } from "../domain/Errors.js"
import type * as ModelSpec from "../domain/ModelSpec.js"
import { backendTypeOf, isLocal, route } from "../domain/Routing.js"
import type { Backend, BackendFactory } from "../services/Backend.js"
import { CloudBackendFactory } from "../services/CloudBackend.js"
import { EffectiveConfig } from "../services/EffectiveConfig.js"
import { GgufBackendFactory } from "../services/GgufBackend.js"
import { OllamaBackendFactory } from "../services/OllamaBackend.js"
import { type InstanceError, ProviderRegistry, type ProviderRegistryService } from "../services/ProviderRegistry.js"

/** Builds a registry from the config and the backend factories; instances live as long as the layer. */
export const make = (
  config: LlmspellConfig,
  factories: ReadonlyArray<BackendFactory<any>>
): Effect.Effect<ProviderRegistryService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    // Looked up by name, and cached in a persistent map: with thousands of instances, scanning the
    // list or copying the cache for each one made listing them quadratic.
    const byName = new Map(config.instances.map((i) => [i.name, i] as const))
    const cache = yield* SynchronizedRef.make(HashMap.empty<string, Effect.Effect<Backend, InstanceError>>())
    const forget = (name: string) => SynchronizedRef.update(cache, HashMap.remove(name))

    const instance = (name: string): Effect.Effect<Backend, InstanceError> =>
      Effect.flatten(
        SynchronizedRef.modifyEffect(cache, (map) => {
          const cached = HashMap.get(map, name)
          if (Option.isSome(cached)) return Effect.succeed([cached.value, map] as const)
          const entry = byName.get(name) ?? cloudInstanceOf(config, name)
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
          return Effect.cached(Scope.extend(factory.make(entry), scope)).pipe(
            Effect.map((built) => {
              const guarded = Effect.tapError(built, () => forget(name))
              return [guarded, HashMap.set(map, name, guarded)] as const
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

/** The registry over the configured instances with the Ollama, GGUF and cloud backends registered. */
export const layer: Layer.Layer<
  ProviderRegistry,
  never,
  EffectiveConfig | OllamaBackendFactory | GgufBackendFactory | CloudBackendFactory
> = Layer.scoped(
  ProviderRegistry,
  Effect.gen(function*() {
    const config = yield* EffectiveConfig
    const factories = yield* Effect.all([OllamaBackendFactory, GgufBackendFactory, CloudBackendFactory])
    return yield* make(config, factories)
  })
)

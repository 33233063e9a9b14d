/**
 * ProviderRegistry: routes a model spec to a backend instance. Backend factories are registered by
 * type (`ollama`, `gguf`, `cloud`); instances are created lazily from the config and cached by
 * instance name. The routing itself is pure (`domain/Routing.ts`); the live registry is
 * `layers/ProviderRegistryLive.ts`.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { ProviderInstanceConfig } from "../domain/ConfigSchema.js"
import { BackendUnavailable, InvalidModelSpec, ProviderNotAvailable } from "../domain/Errors.js"
import type * as ModelSpec from "../domain/ModelSpec.js"
import type { Route } from "../domain/Routing.js"
import type { BackendType } from "../domain/Types.js"
import type { Backend } from "./Backend.js"

export type { Route } from "../domain/Routing.js"

/** `route`: a spec that does not parse, or names a provider or backend that cannot serve it. */
export const RouteError = Schema.Union(InvalidModelSpec, ProviderNotAvailable)
/** What routing a spec can fail with. */
export type RouteError = typeof RouteError.Type

/** `instance`: no such configured instance (or no backend registered for it), or its backend cannot be set up. */
export const InstanceError = Schema.Union(ProviderNotAvailable, BackendUnavailable)
/** What getting a backend instance can fail with. */
export type InstanceError = typeof InstanceError.Type

/** `resolve`: routing's errors, then the instance's. */
export const ResolveError = Schema.Union(InvalidModelSpec, ProviderNotAvailable, BackendUnavailable)
/** What resolving a spec to a live backend can fail with. */
export type ResolveError = typeof ResolveError.Type

/** A route plus the live backend instance it points at. */
export interface ResolvedModel extends Route {
  readonly handle: Backend
}

/** Routes specs and hands out backend instances. */
export interface ProviderRegistryService {
  /** Parses and routes a spec, creating the backend instance on first use. */
  readonly resolve: (spec: string | ModelSpec.ModelSpec) => Effect.Effect<ResolvedModel, ResolveError>
  /** Routes a spec without creating anything. */
  readonly route: (spec: string | ModelSpec.ModelSpec) => Effect.Effect<Route, RouteError>
  /** The backend instance with this name. */
  readonly instance: (name: string) => Effect.Effect<Backend, InstanceError>
  /** Every configured local instance (`all`), or those of one backend type (`cloud`: the configured cloud instances). */
  readonly instances: (filter?: BackendType | "all") => ReadonlyArray<ProviderInstanceConfig>
  /** The instance a spec of this backend type goes to when it names none (`x@gguf`); undefined when none is configured. */
  readonly defaultInstance: (type: BackendType) => ProviderInstanceConfig | undefined
}

/** The registry. */
export class ProviderRegistry extends Context.Tag("llmspell/ProviderRegistry")<ProviderRegistry, ProviderRegistryService>() {}

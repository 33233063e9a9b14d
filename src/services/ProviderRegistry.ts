/**
 * ProviderRegistry: routes a model spec to a backend instance. Backend factories are registered by
 * type (`ollama`, `gguf`, `cloud`); instances are created lazily from the config and cached by
 * instance name. The routing itself is pure (`domain/Routing.ts`); the live registry is
 * `layers/ProviderRegistryLive.ts`.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { ProviderInstanceConfig } from "../domain/ConfigSchema.js"
import type { InvalidModelSpec, LlmspellError, ProviderNotAvailable } from "../domain/Errors.js"
import type * as ModelSpec from "../domain/ModelSpec.js"
import type { Route } from "../domain/Routing.js"
import type { BackendType } from "../domain/Types.js"
import type { Backend } from "./Backend.js"

export type { Route } from "../domain/Routing.js"

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

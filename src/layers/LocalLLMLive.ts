/**
 * The live LocalLLM: a thin layer over the ProviderRegistry. Multi-backend calls run per instance
 * concurrently and turn one instance's failure into an entry of `unavailable`, never a failure.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import type * as Protocol from "../domain/Protocol.js"
import { BackendError, errorToJson, isLlmspellError, type LlmspellError } from "../domain/Errors.js"
import type { BackendStatus } from "../domain/Types.js"
import type { GenerateRequest, ModelList } from "../domain/Types.js"
import { type BackendFilter, LocalLLM, type LocalLLMService } from "../services/LocalLLM.js"
import { ProviderRegistry, type ProviderRegistryService } from "../services/ProviderRegistry.js"

const errorInfo = (e: unknown) =>
  isLlmspellError(e) ? errorToJson(e) : { _tag: "UnknownError", message: e instanceof Error ? e.message : String(e) }

/** Builds the facade over a registry. */
export const make = (registry: ProviderRegistryService): LocalLLMService => {
  const status = (filter: BackendFilter = "all") =>
    Effect.forEach(
      registry.instances(filter),
      (instance) =>
        registry.instance(instance.name).pipe(
          Effect.flatMap((backend) => backend.status),
          Effect.catchAll((e: LlmspellError) =>
            Effect.succeed<BackendStatus>({
              instance: instance.name,
              backend: instance.type,
              endpoint: instance.type === "ollama" ? instance.baseUrl : instance.modelDirectory,
              available: false,
              error: errorInfo(e),
              loaded: [],
              details: {},
              warnings: []
            })
          )
        ),
      { concurrency: "unbounded" }
    )

  const list = (filter: BackendFilter = "all"): Effect.Effect<ModelList> =>
    Effect.forEach(
      registry.instances(filter),
      (instance) =>
        registry.instance(instance.name).pipe(
          Effect.flatMap((backend) => backend.list),
          Effect.either,
          Effect.map((r) => ({ instance, r }))
        ),
      { concurrency: "unbounded" }
    ).pipe(
      Effect.map((results) => ({
        models: results.flatMap(({ r }) => (r._tag === "Right" ? r.right : [])),
        unavailable: results.flatMap(({ instance, r }) =>
          r._tag === "Left" ? [{ instance: instance.name, backend: instance.type, error: errorInfo(r.left) }] : []
        )
      }))
    )

  const verify = (spec?: string) =>
    spec !== undefined
      ? Effect.flatMap(registry.resolve(spec), (r) => r.handle.verify(r.model))
      : Effect.flatMap(registry.resolve("local/*@gguf"), (r) => r.handle.verify(undefined))

  const generate = (spec: string, request: GenerateRequest) =>
    Stream.unwrap(Effect.map(registry.resolve(spec), (r) => r.handle.generate(r.model, request)))

  return {
    status,
    list,
    resolve: registry.resolve,
    info: (spec) => Effect.flatMap(registry.resolve(spec), (r) => r.handle.info(r.model)),
    pull: (spec, options) => Stream.unwrap(Effect.map(registry.resolve(spec), (r) => r.handle.pull(r.model, options))),
    remove: (spec) => Effect.flatMap(registry.resolve(spec), (r) => r.handle.remove(r.model)),
    verify,
    generate,
    run: (spec, request) =>
      generate(spec, request).pipe(
        Stream.runLast,
        Effect.flatMap((last) =>
          last._tag === "Some" && last.value._tag === "Finish"
            ? Effect.succeed(last.value.completion)
            : Effect.fail(
              new BackendError({ backend: "llmspell", operation: "run", reason: "the generation ended without a completion" })
            )
        )
      )
  }
}

/** The live facade; needs a ProviderRegistry. */
export const layer: Layer.Layer<LocalLLM, never, ProviderRegistry> = Layer.effect(
  LocalLLM,
  Effect.map(ProviderRegistry, make)
)

/**
 * Serves one protocol request with the facade: the same operations a connection would carry.
 * `Pull` answers with its progress stream; the others with one value.
 */
export const serve = (llm: LocalLLMService) =>
(request: Protocol.LocalLLMRequest): Effect.Effect<unknown, LlmspellError> | Stream.Stream<unknown, LlmspellError> => {
  switch (request._tag) {
    case "Status":
      return Effect.map(llm.status(request.backend), (backends) => ({ backends }))
    case "List":
      return llm.list(request.backend)
    case "Pull":
      return llm.pull(request.spec, {
        force: request.force,
        ...(request.quantization !== undefined ? { quantization: request.quantization } : {})
      })
    case "Info":
      return llm.info(request.spec)
    case "Remove":
      return llm.remove(request.spec)
    case "Verify":
      return llm.verify(request.spec)
  }
}

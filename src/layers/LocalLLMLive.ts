/**
 * The live LocalLLM: a thin layer over the ProviderRegistry. Multi-backend calls run per instance
 * concurrently and turn one instance's failure into an entry of `unavailable`, never a failure.
 * Generation requests are validated here before anything is routed or loaded. A `ModelNotFound`
 * leaves here with a hint that fits the operation, and says when the name exists on another
 * configured backend (a bounded lookup that ignores backends that are down).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { BackendError, isLlmspellError, type LlmspellError, ModelNotFound } from "../domain/Errors.js"
import { errorToJson } from "../domain/Failure.js"
import { isFileReference } from "../domain/ModelSpec.js"
import * as Protocol from "../domain/Protocol.js"
import type { BackendStatus, LoadedModel, LocalModel } from "../domain/Types.js"
import type { GenerateRequest, ModelList, RunResult } from "../domain/Types.js"
import { structuredAnswer } from "../domain/JsonSchemaCheck.js"
import { type BackendFilter, LocalLLM, type LocalLLMService } from "../services/LocalLLM.js"
import { backendTypeOf, endpointOf, ProviderRegistry, type ProviderRegistryService } from "../services/ProviderRegistry.js"

/** How long the "is it on another backend?" lookup may take per backend before it is given up. */
const ELSEWHERE_TIMEOUT = Duration.seconds(3)

/** True when a listed model is the name the user asked for (Ollama adds `:latest` to a bare name). */
const sameModel = (listed: LocalModel, wanted: string) =>
  listed.name === wanted || listed.name === `${wanted}:latest` || listed.name === `${wanted}.gguf`

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
              backend: backendTypeOf(instance),
              endpoint: endpointOf(instance),
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
          r._tag === "Left" ? [{ instance: instance.name, backend: backendTypeOf(instance), error: errorInfo(r.left) }] : []
        )
      }))
    )

  /** The spec that names `model` on `instance`: `model@type` when that routes there, else `instance/model`. */
  const specOn = (model: string, instance: { readonly name: string; readonly type: string }) => {
    const short = `${model}@${instance.type}`
    return registry.route(short).pipe(
      Effect.map((r) => (r.instance.name === instance.name ? short : `${instance.name}/${model}`)),
      Effect.orElseSucceed(() => `${instance.name}/${model}`)
    )
  }

  /** The first other configured instance that has `model`; a backend that is down or slow is skipped. */
  const findElsewhere = (model: string, exclude: string | undefined) =>
    Effect.forEach(
      registry.instances("all").filter((i) => i.name !== exclude),
      (instance) =>
        registry.instance(instance.name).pipe(
          Effect.flatMap((backend) => backend.list),
          Effect.timeout(ELSEWHERE_TIMEOUT),
          Effect.map((models) => (models.some((m) => sameModel(m, model)) ? Option.some(instance) : Option.none())),
          Effect.orElseSucceed(() => Option.none())
        ),
      { concurrency: "unbounded" }
    ).pipe(
      Effect.map((found) => Option.firstSomeOf(found)),
      Effect.flatMap(Option.match({
        onNone: () => Effect.succeed(undefined),
        onSome: (instance) => Effect.map(specOn(model, instance), (spec) => ({ spec, instance: instance.name }))
      }))
    )

  /** `./x.gguf` when the user wrote `x.gguf` and that is a regular file in the current directory. */
  const localFileFor = (model: string) =>
    isFileReference(model) || model.includes("/") || model.includes("\\")
      ? Effect.succeed(undefined)
      : Effect.promise(() =>
        fs.stat(nodePath.resolve(model)).then((s) => (s.isFile() ? `./${model}` : undefined), () => undefined)
      )

  /** Gives a ModelNotFound the hint that fits what was being done, with where the model really is. */
  const explain = (operation: string, spec: string) => <E>(error: E): Effect.Effect<never, E | ModelNotFound> => {
    if (!(error instanceof ModelNotFound)) return Effect.fail(error)
    return Effect.gen(function*() {
      const route = yield* Effect.option(registry.route(spec))
      const model = Option.match(route, { onNone: () => error.model, onSome: (r) => r.model })
      const exclude = Option.match(route, { onNone: () => error.instance, onSome: (r) => r.instance.name })
      const lookup = operation !== "pull" && !isFileReference(model)
      const elsewhere = error.elsewhere ?? (lookup ? yield* findElsewhere(model, exclude) : undefined)
      // A pull hint that routes to what just failed would send the user in a circle: drop it.
      const circular = operation === "pull" && error.pullSpec !== undefined && Option.isSome(route) &&
        Option.match(yield* Effect.option(registry.route(error.pullSpec)), {
          onNone: () => false,
          onSome: (r) => r.instance.name === route.value.instance.name && r.model === route.value.model
        })
      const localFile = error.localFile ??
        (lookup && elsewhere === undefined && error.backend === "gguf" ? yield* localFileFor(model) : undefined)
      return yield* Effect.fail(
        new ModelNotFound({
          model: error.model,
          backend: error.backend,
          ...(error.instance !== undefined ? { instance: error.instance } : {}),
          ...(error.pullSpec !== undefined && !circular ? { pullSpec: error.pullSpec } : {}),
          ...(error.detail !== undefined ? { detail: error.detail } : {}),
          operation: error.operation ?? operation,
          ...(elsewhere !== undefined ? { elsewhere } : {}),
          ...(localFile !== undefined ? { localFile } : {})
        })
      )
    })
  }

  const verify = (spec?: string) =>
    spec !== undefined
      ? Effect.flatMap(registry.resolve(spec), (r) => r.handle.verify(r.model)).pipe(Effect.catchAll(explain("verify", spec)))
      : Effect.flatMap(registry.resolve("local/*@gguf"), (r) => r.handle.verify(undefined))

  const generate = (spec: string, request: GenerateRequest) =>
    Stream.unwrap(
      Effect.gen(function*() {
        const valid = yield* Either.match(Protocol.validateGenerateRequest(request), {
          onLeft: Effect.fail,
          onRight: Effect.succeed
        })
        const r = yield* registry.resolve(spec)
        return r.handle.generate(r.model, valid)
      })
    ).pipe(Stream.catchAll((e) => Stream.fromEffect(explain("run", spec)(e))))

  const keepAlive = (spec: string, seconds: number) =>
    Effect.flatMap(registry.resolve(spec), (r) =>
      r.handle.keepAlive !== undefined ? r.handle.keepAlive(r.model, seconds) : Effect.void
    ).pipe(Effect.catchAll(explain("stop", spec)))

  return {
    status,
    list,
    resolve: registry.resolve,
    info: (spec) =>
      Effect.flatMap(registry.resolve(spec), (r) => r.handle.info(r.model)).pipe(Effect.catchAll(explain("info", spec))),
    pull: (spec, options) =>
      Stream.unwrap(Effect.map(registry.resolve(spec), (r) => r.handle.pull(r.model, options))).pipe(
        Stream.catchAll((e) => Stream.fromEffect(explain("pull", spec)(e)))
      ),
    remove: (spec) =>
      Effect.flatMap(registry.resolve(spec), (r) => r.handle.remove(r.model)).pipe(Effect.catchAll(explain("remove", spec))),
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
        ),
        Effect.flatMap((completion): Effect.Effect<RunResult, LlmspellError> => {
          const format = request.responseFormat
          if (format === undefined || format === "text") return Effect.succeed(completion)
          return Either.match(structuredAnswer(completion.model, completion.text, format), {
            onLeft: Effect.fail,
            onRight: (object) => Effect.succeed({ ...completion, object })
          })
        })
      ),
    embed: (spec, inputs) =>
      Effect.flatMap(registry.resolve(spec), (r) => r.handle.embed(r.model, inputs)).pipe(
        Effect.catchAll(explain("embed", spec))
      ),
    ps: (filter = "all") =>
      Effect.forEach(
        registry.instances(filter),
        (instance) =>
          registry.instance(instance.name).pipe(
            Effect.flatMap((backend) =>
              backend.ps ?? Effect.map(backend.status, (s) => s.loaded)
            ),
            Effect.map((loaded) => loaded.map((m): LoadedModel => ({ ...m, backend: backendTypeOf(instance), instance: instance.name }))),
            Effect.orElseSucceed((): ReadonlyArray<LoadedModel> => [])
          ),
        { concurrency: "unbounded" }
      ).pipe(Effect.map((all) => all.flat())),
    unload: (spec) => keepAlive(spec, 0),
    keepAlive
  }
}

/** The live facade; needs a ProviderRegistry. */
export const layer: Layer.Layer<LocalLLM, never, ProviderRegistry> = Layer.effect(
  LocalLLM,
  Effect.map(ProviderRegistry, make)
)

/**
 * Serves one protocol request with the facade: the same operations a connection would carry.
 * `Pull` and `Generate` answer with their event streams; the others with one value.
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
    case "Generate":
      return llm.generate(request.spec, request.request)
    case "Embed":
      return llm.embed(request.spec, request.inputs)
  }
}

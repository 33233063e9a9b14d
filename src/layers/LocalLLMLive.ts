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
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Catalog from "../domain/Catalog.js"
import { BackendError, BackendUnavailable, ModelNotFound, UnsupportedOperation } from "../domain/Errors.js"
import { errorToJson } from "../domain/Failure.js"
import * as HubRef from "../domain/HubRef.js"
import { type InstallOllamaReport, planInstall } from "../domain/InstallOllama.js"
import { isFileReference } from "../domain/ModelSpec.js"
import * as Protocol from "../domain/Protocol.js"
import { finishReranking, RERANK_ALTERNATIVES, validateRerankRequest } from "../domain/Rerank.js"
import type { BackendStatus, LoadedModel, LocalModel } from "../domain/Types.js"
import type { GenerateRequest, ModelList, RerankRequest, Reranking, RunResult } from "../domain/Types.js"
import { incompleteAnswer, markIncomplete, structuredAnswer } from "../domain/JsonSchemaCheck.js"
import { type BackendFilter, type ListOptions, LocalLLM, type LocalLLMService, type RerankError, type RunError } from "../services/LocalLLM.js"
import { ModelStore, type ModelStoreService } from "../services/ModelStore.js"
import { backendTypeOf, endpointOf } from "../domain/Routing.js"
import { ProviderRegistry, type ProviderRegistryService } from "../services/ProviderRegistry.js"
import { inlineImageUrls } from "./ImageFetch.js"
import * as MeteredLocalLLM from "./MeteredLocalLLM.js"
import * as Tracing from "./Tracing.js"
import * as OllamaInstaller from "./ollama/OllamaInstaller.js"

/** How long the "is it on another backend?" lookup may take per backend before it is given up. */
const ELSEWHERE_TIMEOUT = Duration.seconds(3)

/** True when a listed model is the name the user asked for (Ollama adds `:latest` to a bare name). */
const sameModel = (listed: LocalModel, wanted: string) =>
  listed.name === wanted || listed.name === `${wanted}:latest` || listed.name === `${wanted}.gguf`

const errorInfo = errorToJson

/**
 * Instances asked at once by the operations that cover all of them (status, list, ps, the search
 * for a model elsewhere): a config with thousands of instances must not open thousands of
 * connections at once (issue 19 item 25); each instance's own timeout bounds its probe.
 */
export const PROBE_CONCURRENCY = 16

const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()

/** Builds the facade over a registry and the model store (`available` reads it, `importFile` writes it). */
export const make = (registry: ProviderRegistryService, store: ModelStoreService): LocalLLMService => {
  const status = (filter: BackendFilter = "all") =>
    Effect.forEach(
      registry.instances(filter),
      (instance) =>
        registry.instance(instance.name).pipe(
          Effect.flatMap((backend) => backend.status),
          Effect.catchAll((e) =>
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
      { concurrency: PROBE_CONCURRENCY }
    )

  // `namesOnly`: without what takes a request per model (Ollama's capabilities), where only names and files matter
  const listing = (filter: BackendFilter, namesOnly: boolean): Effect.Effect<ModelList> =>
    Effect.forEach(
      registry.instances(filter),
      (instance) =>
        registry.instance(instance.name).pipe(
          Effect.flatMap((backend) => (namesOnly ? backend.listNames ?? backend.list : backend.list)),
          Effect.either,
          Effect.map((r) => ({ instance, r }))
        ),
      { concurrency: PROBE_CONCURRENCY }
    ).pipe(
      Effect.map((results) => ({
        models: results.flatMap(({ r }) => (r._tag === "Right" ? r.right : [])),
        unavailable: results.flatMap(({ instance, r }) =>
          r._tag === "Left" ? [{ instance: instance.name, backend: backendTypeOf(instance), error: errorInfo(r.left) }] : []
        )
      }))
    )

  const list = (filter: BackendFilter = "all", options?: ListOptions): Effect.Effect<ModelList> =>
    listing(filter, options?.capabilities === false)

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
          Effect.flatMap((backend) => backend.listNames ?? backend.list),
          Effect.timeout(ELSEWHERE_TIMEOUT),
          Effect.map((models) => (models.some((m) => sameModel(m, model)) ? Option.some(instance) : Option.none())),
          Effect.orElseSucceed(() => Option.none())
        ),
      { concurrency: PROBE_CONCURRENCY }
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
      : Effect.flatMap(defaultGguf("verify"), (instance) =>
        Effect.flatMap(registry.instance(instance.name), (backend) => backend.verify(undefined)))

  /** The default GGUF instance; BackendUnavailable when none is configured. */
  const defaultGguf = (operation: string) => {
    const instance = registry.defaultInstance("gguf")
    return instance !== undefined && instance.type === "gguf"
      ? Effect.succeed(instance)
      : Effect.fail(
        new BackendUnavailable({
          backend: "gguf",
          reason: "no GGUF instance is configured",
          suggestion: "add a [providers] gguf instance (see `llmspell config show`)"
        })
      )
  }

  const planRemoval = (spec: string) =>
    Effect.gen(function*() {
      const resolved = yield* registry.route(spec)
      const present = yield* listing(resolved.backend, true)
      const mine = present.models.filter((m) => m.instance === resolved.instance.name)
      // For the GGUF store, an alias or `org/repo` names one canonical model (`org/repo:Q4_K_M`).
      const parsed = resolved.backend === "gguf" ? HubRef.parse(resolved.model) : undefined
      const canonical = parsed !== undefined && Either.isRight(parsed) ? HubRef.canonicalName(parsed.right) : undefined
      const entry = mine.find((m) => sameName(m.name, resolved.model)) ??
        (canonical !== undefined ? mine.find((m) => sameName(m.name, canonical)) : undefined)
      if (entry === undefined) return { model: resolved.model, instance: resolved.instance.name, files: [] }
      const files = yield* Effect.forEach(entry.files ?? [], (path) =>
        Effect.promise(() => fs.stat(path).then((s) => Number(s.size), () => undefined)).pipe(
          Effect.map((sizeBytes) => {
            const sharedWith = mine.find((m) => m !== entry && (m.files ?? []).includes(path))?.name
            return {
              path,
              ...(sizeBytes !== undefined ? { sizeBytes } : {}),
              ...(sharedWith !== undefined ? { sharedWith } : {})
            }
          })
        ))
      return {
        model: entry.name,
        instance: resolved.instance.name,
        files,
        ...(entry.sizeBytes !== undefined ? { sizeBytes: entry.sizeBytes } : {})
      }
    })

  const available = (options: { readonly recommendedOnly?: boolean } = {}) =>
    Effect.gen(function*() {
      // os.freemem() is MemAvailable on Linux (page cache counts as free); no GPU is assumed: CPU RAM decides.
      const freeMemoryBytes = os.freemem()
      const totalMemoryBytes = os.totalmem()
      const gguf = registry.defaultInstance("gguf")
      const inventory = yield* store.list({
        directory: gguf !== undefined && gguf.type === "gguf" ? gguf.modelDirectory : "",
        instance: gguf?.name ?? "gguf"
      }).pipe(Effect.orElseSucceed(() => ({ models: [], warnings: [] })))
      const present = inventory.models.flatMap((m) =>
        m.repo === undefined ? [] : [{ repo: m.repo, quantization: m.quantization, stores: m.locations.map((l) => l.store) }]
      )
      const models = Catalog.markOnMachine(
        Catalog.available(freeMemoryBytes, { recommendedOnly: options.recommendedOnly ?? false }),
        present
      )
      return { freeMemoryBytes, totalMemoryBytes, models }
    })

  const importFile = (file: string, options: { readonly name?: string; readonly copy?: boolean } = {}) =>
    Effect.gen(function*() {
      const instance = yield* defaultGguf("import")
      const model = yield* store.importFile(file, { directory: instance.modelDirectory, instance: instance.name }, {
        ...(options.name !== undefined ? { name: options.name } : {}),
        ...(options.copy ? { copy: options.copy } : {})
      })
      return {
        model: model.name,
        backend: "gguf" as const,
        instance: instance.name,
        path: model.primaryPath,
        source: file,
        sizeBytes: model.sizeBytes,
        sha256: model.files[0]!.sha256
      }
    })

  /** What is installed and running, and the plan the pure `planInstall` makes of it. */
  const ollamaInstallPlan = (flags: Protocol.InstallOllamaFlags) =>
    Effect.gen(function*() {
      const instance = registry.defaultInstance("ollama")
      const [installedVersion, status] = yield* Effect.all([
        OllamaInstaller.installedVersion,
        instance !== undefined
          ? registry.instance(instance.name).pipe(Effect.flatMap((b) => b.status), Effect.option)
          : Effect.succeedNone
      ], { concurrency: 2 })
      const server = status._tag === "Some"
        ? { url: status.value.endpoint, available: status.value.available, version: status.value.version }
        : { url: instance !== undefined && instance.type === "ollama" ? instance.baseUrl : "http://127.0.0.1:11434", available: false }
      const plan = planInstall({ platform: os.platform(), arch: os.arch(), installedVersion, server }, flags)
      const report = (ran: boolean): InstallOllamaReport => ({
        state: plan.state,
        installedVersion: installedVersion ?? null,
        server: server.version !== undefined ? server : { url: server.url, available: server.available },
        lines: plan.lines,
        action: plan.run !== undefined ? { description: plan.run.description, argv: plan.run.argv } : null,
        ran
      })
      return { plan, report }
    })

  const installOllama = (flags: Protocol.InstallOllamaFlags) =>
    Effect.gen(function*() {
      const { plan, report } = yield* ollamaInstallPlan(flags)
      if (plan.run === undefined) return report(false)
      yield* OllamaInstaller.checkReachable(plan.run.requires)
      // The installer writes to stderr (OllamaInstaller.run), so stdout keeps only the JSON document.
      yield* OllamaInstaller.run(plan.run)
      return report(true)
    })

  const generate = (spec: string, request: GenerateRequest) =>
    Stream.unwrap(
      Effect.gen(function*() {
        const checked = yield* Either.match(Protocol.validateGenerateRequest(request), {
          onLeft: Effect.fail,
          onRight: Effect.succeed
        })
        const r = yield* registry.resolve(spec)
        // image URLs: fetched (together) as the caller's ImageUrls setting allows, else refused;
        // after the spec resolved, so a spec that does not exist costs no fetch, and not for a
        // GGUF model, which refuses every image (UnsupportedOperation) whatever was fetched
        const valid = r.handle.type === "gguf" ? checked : yield* inlineImageUrls(checked)
        // whatever the backend, a structured answer or forced call cut by the token limit says so
        return r.handle.generate(r.model, valid).pipe(
          Stream.map((event) => (event._tag === "Finish" ? { ...event, completion: markIncomplete(valid, event.completion) } : event))
        )
      })
    ).pipe(Stream.catchAll((e) => Stream.fromEffect(explain("run", spec)(e))))

  // Checked before anything is routed or loaded; the backend only scores, the order and the cut
  // to topN are made here (and the backend's answer checked), the same for every backend.
  const rerank = (spec: string, request: RerankRequest): Effect.Effect<Reranking, RerankError> =>
    Effect.gen(function*() {
      const valid = yield* Either.match(validateRerankRequest(request), { onLeft: Effect.fail, onRight: Effect.succeed })
      const r = yield* registry.resolve(spec)
      if (r.handle.rerank === undefined) {
        return yield* new UnsupportedOperation({
          backend: r.handle.name,
          operation: "rerank",
          reason: `the ${r.handle.type} backend has no rerank API`,
          suggestion: RERANK_ALTERNATIVES
        })
      }
      if (valid.documents.length === 0) {
        return { model: r.model, backend: r.handle.type, instance: r.handle.name, results: [], promptTokens: 0 }
      }
      const scored = yield* r.handle.rerank(r.model, valid)
      return yield* Either.match(finishReranking(valid, scored), { onLeft: Effect.fail, onRight: Effect.succeed })
    }).pipe(Effect.catchAll(explain("rerank", spec)))

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
      Stream.unwrap(Effect.map(registry.resolve(spec), (r) =>
        // only the hub's listing says sizes before a download: another backend would just pull
        options?.dryRun === true && r.backend !== "gguf"
          ? Stream.fail(new UnsupportedOperation({
            backend: r.backend,
            operation: "pull --dry-run",
            reason: `a dry run reads the Hugging Face hub's listing; ${r.backend} models are pulled by their own server`,
            suggestion: "pull a GGUF from the hub (org/repo:QUANT) to see its size first, or pull without --dry-run"
          }))
          : r.handle.pull(r.model, options))).pipe(
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
        Effect.flatMap((completion): Effect.Effect<RunResult, RunError> => {
          // `run` promises the answer asked for: one the token limit cut is a typed failure
          const incomplete = incompleteAnswer(completion, request.maxTokens)
          if (incomplete !== undefined) return Effect.fail(incomplete)
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
    rerank,
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
        { concurrency: PROBE_CONCURRENCY }
      ).pipe(Effect.map((all) => all.flat())),
    unload: (spec) => keepAlive(spec, 0),
    keepAlive,
    load: (spec, seconds) =>
      Effect.flatMap(registry.resolve(spec), (r) =>
        r.handle.load !== undefined ? r.handle.load(r.model, seconds) : Effect.void
      ).pipe(Effect.catchAll(explain("load", spec))),
    instances: (filter = "all") =>
      Effect.sync(() => registry.instances(filter).map((i) => ({ name: i.name, backend: backendTypeOf(i) }))),
    planRemoval,
    available,
    importFile,
    planOllamaInstall: (flags) => Effect.map(ollamaInstallPlan(flags), ({ report }) => report(false)),
    installOllama
  }
}

/** The live facade over the ProviderRegistry and the ModelStore. */
export const layer: Layer.Layer<LocalLLM, never, ProviderRegistry | ModelStore> = Layer.effect(
  LocalLLM,
  // metered: the generations and pulls it serves update the metrics, and `ps` says what each model served
  Effect.map(Effect.all([ProviderRegistry, ModelStore, Tracing.captureContent]), ([registry, store, captureContent]) =>
    MeteredLocalLLM.make(make(registry, store), { captureContent }))
)

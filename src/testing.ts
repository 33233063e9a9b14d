/**
 * llmspell/testing: scriptable fakes of the backends and the downloader, so a program that uses
 * llmspell can be tested without a server, a model file or a network. Each fake is given models,
 * scripted token streams and pull progress, injected failures, and records the calls it gets.
 *
 * ```ts
 * const mock = LlmspellMock.make({ gguf: { models: [{ name: "qwen2.5:0.5b", tokens: ["Hi", "!"] }] } })
 * const text = await Effect.runPromise(myProgram.pipe(Effect.provide(mock.layer)))
 * expect(mock.calls.map((c) => c.operation)).toEqual(["generate"])
 * ```
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { type LlmspellConfig, resolveConfig } from "./domain/ConfigSchema.js"
import {
  BackendError,
  BackendUnavailable,
  ChecksumMismatch,
  type LlmspellError,
  ModelNotFound
} from "./domain/Errors.js"
import type {
  BackendType,
  Completion,
  GenerateEvent,
  GenerateRequest,
  LocalModel,
  ModelInfo,
  PullProgress,
  VerifyReport
} from "./domain/Types.js"
import * as LocalLLMLive from "./layers/LocalLLMLive.js"
import type { Backend, BackendFactory } from "./services/Backend.js"
import { Config } from "./services/Config.js"
import { GgufBackend } from "./services/GgufBackend.js"
import { LlamaLoader, type LlamaLoaderService, type LoaderEvent } from "./services/LlamaLoader.js"
import type { LocalLLM } from "./services/LocalLLM.js"
import { type InstalledModel, ModelDownloader, type ModelDownloaderService } from "./services/ModelDownloader.js"
import { OllamaBackend } from "./services/OllamaBackend.js"
import * as ProviderRegistry from "./services/ProviderRegistry.js"

/** A model a fake backend has (or can pull). */
export interface MockModel {
  readonly name: string
  readonly sizeBytes?: number
  /** The token stream `generate` answers with (default: the words of "This is a scripted answer."). */
  readonly tokens?: ReadonlyArray<string>
  /** Extra fields of `info`. */
  readonly info?: Partial<ModelInfo>
  readonly quantization?: string
}

/** A failure to inject: by name, or any llmspell error. */
export type MockFailure = "unavailable" | "notFound" | "checksumMismatch" | LlmspellError

/** Operations of a backend. */
export type MockOperation = "status" | "list" | "info" | "pull" | "remove" | "verify" | "generate"

/** Script of one fake backend type. */
export interface MockBackendOptions {
  /** Models present from the start. */
  readonly models?: ReadonlyArray<MockModel | string>
  /** Models `pull` can fetch (they appear in `list` afterwards). Default: any name. */
  readonly pullable?: ReadonlyArray<MockModel | string> | "any"
  /** Progress events a pull emits before `done` (default: resolving, 3 downloading steps, verifying). */
  readonly pullSteps?: number
  /** Failures per operation (every call), e.g. `{ generate: "notFound" }`. */
  readonly fail?: Partial<Record<MockOperation, MockFailure>>
  readonly version?: string
}

/** One call a fake received. */
export interface MockCall {
  readonly backend: BackendType
  readonly instance: string
  readonly operation: MockOperation
  readonly model?: string
  readonly request?: GenerateRequest
}

const toModel = (m: MockModel | string): MockModel => (typeof m === "string" ? { name: m } : m)

const DEFAULT_TOKENS = ["This", " is", " a", " scripted", " answer", "."]

const failureFor = (
  failure: MockFailure,
  backend: BackendType,
  instance: string,
  model: string | undefined
): LlmspellError => {
  if (typeof failure !== "string") return failure
  switch (failure) {
    case "unavailable":
      return new BackendUnavailable({ backend, instance, reason: "mock: backend unavailable" })
    case "notFound":
      return new ModelNotFound({
        model: model ?? "?",
        backend,
        instance,
        pullSpec: backend === "ollama" ? `${model}@ollama` : model
      })
    case "checksumMismatch":
      return new ChecksumMismatch({ file: `${model ?? "model"}.gguf`, expected: "0".repeat(64), actual: "f".repeat(64) })
  }
}

/** Builds one scripted backend instance; state (models present) is shared by the type's instances. */
const makeBackend = (
  type: BackendType,
  instance: string,
  endpoint: string,
  options: MockBackendOptions,
  present: Map<string, MockModel>,
  calls: Array<MockCall>
): Backend => {
  const record = (operation: MockOperation, model?: string, request?: GenerateRequest) =>
    Effect.sync(() => {
      calls.push({
        backend: type,
        instance,
        operation,
        ...(model !== undefined ? { model } : {}),
        ...(request !== undefined ? { request } : {})
      })
    })
  const failIf = (operation: MockOperation, model?: string): Effect.Effect<void, LlmspellError> => {
    const f = options.fail?.[operation]
    return f === undefined ? Effect.void : Effect.fail(failureFor(f, type, instance, model))
  }
  const find = (model: string) =>
    Option.fromNullable(present.get(model)).pipe(
      Option.match({
        onNone: () =>
          Effect.fail<LlmspellError>(
            new ModelNotFound({ model, backend: type, instance, pullSpec: type === "ollama" ? `${model}@ollama` : model })
          ),
        onSome: Effect.succeed
      })
    )
  const asLocal = (m: MockModel): LocalModel => ({
    name: m.name,
    backend: type,
    instance,
    sizeBytes: m.sizeBytes ?? 1_000_000,
    ...(m.quantization !== undefined ? { quantization: m.quantization } : {})
  })
  const pullable = options.pullable ?? "any"

  return {
    name: instance,
    type,
    status: Effect.gen(function*() {
      yield* record("status")
      const f = options.fail?.status
      return {
        instance,
        backend: type,
        endpoint,
        available: f === undefined,
        ...(options.version !== undefined ? { version: options.version } : {}),
        ...(f !== undefined
          ? (() => {
            const e = failureFor(f, type, instance, undefined)
            return { error: { _tag: e._tag, message: e.message } }
          })()
          : {}),
        modelsPresent: present.size,
        loaded: [],
        details: { mock: true },
        warnings: []
      }
    }),
    list: Effect.gen(function*() {
      yield* record("list")
      yield* failIf("list")
      return [...present.values()].map(asLocal)
    }),
    info: (model) =>
      Effect.gen(function*() {
        yield* record("info", model)
        yield* failIf("info", model)
        const m = yield* find(model)
        return {
          name: m.name,
          backend: type,
          instance,
          chatTemplate: true,
          sizeBytes: m.sizeBytes ?? 1_000_000,
          details: {},
          ...m.info
        }
      }),
    pull: (model, pullOptions) =>
      Stream.unwrap(
        Effect.gen(function*() {
          yield* record("pull", model)
          yield* failIf("pull", model)
          const alreadyPresent = present.has(model) && pullOptions?.force !== true
          const known = pullable === "any"
            ? { name: model }
            : pullable.map(toModel).find((m) => m.name === model)
          if (known === undefined && !alreadyPresent) {
            return yield* Effect.fail(new ModelNotFound({ model, backend: type, instance }))
          }
          const m = present.get(model) ?? known!
          const total = m.sizeBytes ?? 1_000_000
          const steps = alreadyPresent ? 0 : options.pullSteps ?? 3
          const base = { model, backend: type, instance, files: [] } as const
          const events: Array<PullProgress> = [{ ...base, phase: "resolving", completedBytes: 0, totalBytes: total }]
          for (let i = 1; i <= steps; i++) {
            const done = Math.round((total * i) / steps)
            events.push({
              ...base,
              phase: "downloading",
              files: [{ name: model, completedBytes: done, totalBytes: total, status: i === steps ? "done" : "downloading" }],
              completedBytes: done,
              totalBytes: total
            })
          }
          if (steps > 0) events.push({ ...base, phase: "verifying", completedBytes: total, totalBytes: total })
          return Stream.fromIterable(events).pipe(
            Stream.concat(
              Stream.fromEffect(
                Effect.sync((): PullProgress => {
                  present.set(model, m)
                  return {
                    ...base,
                    phase: "done",
                    completedBytes: total,
                    totalBytes: total,
                    result: {
                      model,
                      backend: type,
                      instance,
                      alreadyPresent,
                      sizeBytes: total,
                      files: [model],
                      downloadedBytes: alreadyPresent ? 0 : total
                    }
                  }
                })
              )
            )
          )
        })
      ),
    remove: (model) =>
      Effect.gen(function*() {
        yield* record("remove", model)
        yield* failIf("remove", model)
        const m = yield* find(model)
        present.delete(model)
        return { model, backend: type, instance, removedFiles: [model], freedBytes: m.sizeBytes ?? 1_000_000 }
      }),
    verify: (model) =>
      Effect.gen(function*() {
        yield* record("verify", model)
        yield* failIf("verify", model)
        const models = model === undefined ? [...present.values()] : [yield* find(model)]
        const report: VerifyReport = {
          ok: true,
          files: models.map((m) => ({ model: m.name, file: m.name, status: "ok" as const }))
        }
        return report
      }),
    generate: (model, request) =>
      Stream.unwrap(
        Effect.gen(function*() {
          yield* record("generate", model, request)
          yield* failIf("generate", model)
          const m = yield* find(model)
          const tokens = (m.tokens ?? DEFAULT_TOKENS).slice(0, request.maxTokens ?? Infinity)
          const text = tokens.join("")
          const promptTokens = request.messages.reduce((n, msg) => n + msg.content.split(/\s+/).length, 0)
          const completion: Completion = {
            model,
            backend: type,
            instance,
            text,
            finishReason: request.maxTokens !== undefined && tokens.length >= request.maxTokens ? "length" : "stop",
            usage: { promptTokens, completionTokens: tokens.length, totalTokens: promptTokens + tokens.length },
            timings: { loadMs: 0, timeToFirstTokenMs: 0, totalMs: 0 }
          }
          return Stream.fromIterable(tokens.map((t): GenerateEvent => ({ _tag: "TextDelta", text: t }))).pipe(
            Stream.concat(Stream.succeed<GenerateEvent>({ _tag: "Finish", completion }))
          )
        })
      )
  }
}

/** A scripted backend factory of one type, and the calls its instances received. */
export const makeMockBackend = <T extends BackendType>(
  type: T,
  options: MockBackendOptions = {},
  calls: Array<MockCall> = []
) => {
  const present = new Map(options.models?.map((m) => [toModel(m).name, toModel(m)]) ?? [])
  const factory: BackendFactory<any> = {
    type,
    make: (instance) =>
      Effect.succeed(
        makeBackend(
          type,
          instance.name,
          type === "ollama" ? (instance.baseUrl ?? "mock://ollama") : (instance.modelDirectory ?? "mock://gguf"),
          options,
          present,
          calls
        )
      )
  }
  return { factory, calls, present }
}

/** A scripted OllamaBackend layer and its call record. */
export const OllamaBackendMock = (options: MockBackendOptions = {}, calls: Array<MockCall> = []) => {
  const mock = makeMockBackend("ollama", options, calls)
  return { layer: Layer.succeed(OllamaBackend, mock.factory), calls: mock.calls }
}

/** A scripted GgufBackend layer and its call record. */
export const GgufBackendMock = (options: MockBackendOptions = {}, calls: Array<MockCall> = []) => {
  const mock = makeMockBackend("gguf", options, calls)
  return { layer: Layer.succeed(GgufBackend, mock.factory), calls: mock.calls }
}

/** Script of the fake downloader. */
export interface MockDownloaderOptions {
  /** Installed models: names (files are made up under the store), or full records with real paths. */
  readonly installed?: ReadonlyArray<string | InstalledModel>
  readonly pullSteps?: number
  readonly fail?: Partial<Record<"pull" | "find" | "list" | "verify" | "remove", MockFailure>>
}

/** An installed-model record for one file (what the live downloader's manifest describes). */
export const installedModel = (name: string, path: string, sizeBytes = 1_000_000): InstalledModel => ({
  name,
  repo: name.split(":")[0]!,
  revision: "0".repeat(40),
  files: [{ path, sizeBytes, sha256: "0".repeat(64) }],
  primaryPath: path,
  sizeBytes,
  pulledAt: new Date(0).toISOString()
})

/** A scripted ModelDownloader layer, its service, the installed models (by name) and its call record. */
export const ModelDownloaderMock = (options: MockDownloaderOptions = {}) => {
  const calls: Array<{ readonly operation: string; readonly ref?: string }> = []
  const madeUp = (ref: string, directory: string) => installedModel(ref, `${directory}/${ref.replace(/[:/]/g, "_")}.gguf`)
  const installed = new Map<string, InstalledModel>(
    (options.installed ?? []).map((m) => typeof m === "string" ? [m, madeUp(m, "/mock-store")] : [m.name, m])
  )
  const find = (ref: string) => [...installed.values()].find((m) => m.name === ref || m.alias === ref)
  const fail = (op: keyof NonNullable<MockDownloaderOptions["fail"]>, ref?: string): Effect.Effect<void, LlmspellError> => {
    const f = options.fail?.[op]
    return f === undefined ? Effect.void : Effect.fail(failureFor(f, "gguf", "gguf", ref))
  }
  const service: ModelDownloaderService = {
    pull: (ref, store, pullOptions) => {
      const gguf = makeMockBackend("gguf", {
        models: installed.has(ref) ? [ref] : [],
        ...(options.pullSteps !== undefined ? { pullSteps: options.pullSteps } : {})
      })
      return Stream.unwrap(
        Effect.gen(function*() {
          calls.push({ operation: "pull", ref })
          yield* fail("pull", ref)
          const backend = yield* Effect.scoped(gguf.factory.make({ type: "gguf", name: store.instance, modelDirectory: store.directory }))
          return backend.pull(ref, pullOptions).pipe(
            Stream.ensuring(Effect.sync(() => void installed.set(ref, find(ref) ?? madeUp(ref, store.directory))))
          )
        })
      )
    },
    importFile: (file, store, importOptions) =>
      Effect.sync(() => {
        const name = importOptions?.name ?? file.replace(/^.*[\\/]/, "").replace(/\.gguf$/i, "")
        const model = madeUp(name, store.directory)
        installed.set(name, model)
        return model
      }),
    findInstalled: (ref) =>
      Effect.sync(() => calls.push({ operation: "find", ref })).pipe(
        Effect.zipRight(fail("find", ref)),
        Effect.map(() => Option.fromNullable(find(ref)))
      ),
    listInstalled: () =>
      Effect.sync(() => calls.push({ operation: "list" })).pipe(
        Effect.zipRight(fail("list")),
        Effect.map(() => [...installed.values()])
      ),
    verify: (_store, ref) =>
      Effect.sync(() => calls.push({ operation: "verify", ...(ref !== undefined ? { ref } : {}) })).pipe(
        Effect.zipRight(fail("verify", ref)),
        Effect.map(() => ({
          ok: true,
          files: [...installed.values()].filter((m) => ref === undefined || m.name === ref).flatMap((m) =>
            m.files.map((f) => ({ model: m.name, file: f.path, status: "ok" as const }))
          )
        }))
      ),
    remove: (ref, store) =>
      Effect.gen(function*() {
        calls.push({ operation: "remove", ref })
        yield* fail("remove", ref)
        const model = find(ref)
        if (model === undefined) {
          return yield* Effect.fail(new ModelNotFound({ model: ref, backend: "gguf", instance: store.instance }))
        }
        installed.delete(model.name)
        return {
          model: model.name,
          backend: "gguf" as const,
          instance: store.instance,
          removedFiles: model.files.map((f) => f.path),
          freedBytes: model.sizeBytes
        }
      })
  }
  return { layer: Layer.succeed(ModelDownloader, service), service, calls, installed }
}

/** Script of the fake GGUF loader (the seam under GgufBackend, below its model pool). */
export interface MockLoaderOptions {
  /** Tokens per model file name. */
  readonly tokens?: Readonly<Record<string, ReadonlyArray<string>>>
  /** Tokens of any other file (default: the words of "This is a scripted answer."). */
  readonly defaultTokens?: ReadonlyArray<string>
  /** Loading these file names (or the paths the predicate accepts) fails. */
  readonly failLoad?: ReadonlyArray<string> | ((path: string) => boolean)
  /** Every load waits for this before it completes (to hold loads in flight). */
  readonly loadGate?: Deferred.Deferred<void>
  /** Runs when a load starts (before `loadGate`). */
  readonly onLoad?: (path: string) => Effect.Effect<void>
  /** Every generation waits for this, holding its sequence, before it produces text. */
  readonly generationGate?: Deferred.Deferred<void>
  /** Runs when a generation has its sequence and starts. */
  readonly onGenerate?: (request: GenerateRequest) => Effect.Effect<void>
  readonly sizeBytes?: number
}

/** What the fake loader saw: `load <file>` / `unload <file>` in order, what is loaded, generations running. */
export interface MockLoaderLog {
  readonly events: Array<string>
  readonly loaded: Set<string>
  active: number
  maxActive: number
}

/**
 * A scripted LlamaLoader: provide it under `GgufBackendLive.layerWithoutLoader` to test the real
 * pool (lazy loads, sharing, idle unload with TestClock, LRU eviction) without llama.cpp. Like the
 * live loader, each loaded model has `sequences` context sequences and generations beyond them wait.
 */
export const LlamaLoaderMock = (options: MockLoaderOptions = {}) => {
  const log: MockLoaderLog = { events: [], loaded: new Set(), active: 0, maxActive: 0 }
  const fileName = (path: string) => path.split(/[\\/]/).at(-1)!
  const fails = (path: string) =>
    typeof options.failLoad === "function" ? options.failLoad(path) : options.failLoad?.includes(fileName(path)) ?? false
  const sizeBytes = options.sizeBytes ?? 1_000_000
  const service: LlamaLoaderService = {
    runtime: () =>
      Effect.succeed({ device: "cpu", reason: "mock loader", binary: "prebuilt", gpuNames: [], warnings: [] }),
    memoryNeeds: (_path, o) => Effect.succeed({ contextSize: o.contextSize, ramBytes: sizeBytes, vramBytes: 0 }),
    load: (path, loadOptions) =>
      Effect.acquireRelease(
        Effect.gen(function*() {
          log.events.push(`load ${fileName(path)}`)
          if (options.onLoad) yield* options.onLoad(path)
          if (options.loadGate) yield* Deferred.await(options.loadGate)
          if (fails(path)) {
            return yield* new BackendError({ backend: "gguf", operation: "load model", reason: "mock: load failed" })
          }
          log.loaded.add(path)
          const sequences = yield* Effect.makeSemaphore(loadOptions.sequences)
          const running = Effect.acquireRelease(
            Effect.zipRight(
              sequences.take(1),
              Effect.sync(() => {
                log.active++
                log.maxActive = Math.max(log.maxActive, log.active)
              })
            ),
            () => Effect.zipRight(Effect.sync(() => void log.active--), sequences.release(1))
          )
          return {
            path,
            sizeBytes,
            vramBytes: 0,
            contextSize: typeof loadOptions.contextSize === "number" ? loadOptions.contextSize : 256,
            alive: Effect.succeed(true),
            generate: (request: GenerateRequest) =>
              Stream.unwrapScoped(Effect.gen(function*() {
                yield* running
                if (options.onGenerate) yield* options.onGenerate(request)
                if (options.generationGate) yield* Deferred.await(options.generationGate)
                const tokens = (options.tokens?.[fileName(path)] ?? options.defaultTokens ?? DEFAULT_TOKENS)
                  .slice(0, request.maxTokens ?? Infinity)
                const done: LoaderEvent = {
                  _tag: "Done",
                  text: tokens.join(""),
                  promptTokens: request.messages.length,
                  completionTokens: tokens.length,
                  finishReason: request.maxTokens !== undefined && tokens.length >= request.maxTokens ? "length" : "stop"
                }
                return Stream.fromIterable<LoaderEvent>([...tokens.map((text): LoaderEvent => ({ _tag: "Text", text })), done])
              }))
          }
        }),
        () =>
          Effect.sync(() => {
            if (log.loaded.delete(path)) log.events.push(`unload ${fileName(path)}`)
          })
      )
  }
  return { layer: Layer.succeed(LlamaLoader, service), service, log, events: log.events, loaded: log.loaded }
}

/** The built-in default configuration (no file, no environment), for tests. */
export const defaultTestConfig = (overrides: unknown = {}): LlmspellConfig => {
  const resolved = resolveConfig({ object: { value: overrides, source: "test" }, env: {}, home: "/nonexistent-home" })
  if (Either.isLeft(resolved)) throw resolved.left
  return resolved.right
}

/** Everything a consumer's test needs: Config, ProviderRegistry and LocalLLM over scripted backends. */
export const LlmspellMock = {
  make: (
    options: {
      readonly ollama?: MockBackendOptions
      readonly gguf?: MockBackendOptions
      /** TOML-shaped config overrides, e.g. a second Ollama instance. */
      readonly config?: unknown
    } = {}
  ) => {
    const calls: Array<MockCall> = []
    const ollama = OllamaBackendMock(options.ollama, calls)
    const gguf = GgufBackendMock(options.gguf, calls)
    const config = Layer.succeed(Config, defaultTestConfig(options.config))
    const layer: Layer.Layer<LocalLLM | ProviderRegistry.ProviderRegistry | Config> = LocalLLMLive.layer.pipe(
      Layer.provideMerge(ProviderRegistry.layer),
      Layer.provide(Layer.merge(ollama.layer, gguf.layer)),
      Layer.provideMerge(config)
    )
    return { layer, calls: calls as ReadonlyArray<MockCall> }
  }
}

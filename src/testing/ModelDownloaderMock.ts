/**
 * A scriptable ModelDownloader: installed models, pulls with progress, and its calls recorded in
 * a `CallLog` (source "downloader", the reference as `model`). Its `store` is the ModelStore over
 * the same installed models (llmspell's own store only: no foreign stores), for LocalLLM's
 * `available` and `importFile`.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { type LlmspellError, ModelNotFound } from "../domain/Errors.js"
import { type InstalledModel, ModelDownloader, type ModelDownloaderService } from "../services/ModelDownloader.js"
import { ModelStore, type ModelStoreService, type StoredModel } from "../services/ModelStore.js"
import { type CallLog, recordCall } from "./CallLog.js"
import { failureFor } from "./internal.js"
import { makeMockBackend, type MockFailure } from "./MockBackend.js"

/** Script of the fake downloader. */
export interface MockDownloaderOptions {
  /** Installed models: names (files are made up under the store), or full records with real paths. */
  readonly installed?: ReadonlyArray<string | InstalledModel>
  readonly pullSteps?: number
  readonly fail?: Partial<Record<"pull" | "find" | "list" | "verify" | "remove", MockFailure>>
  /** Where its calls are recorded (default: a log of its own); share one log between fakes to see their order. */
  readonly calls?: CallLog
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

/** An installed model as the store lists it. */
const stored = (model: InstalledModel): StoredModel => ({
  name: model.name,
  store: "llmspell",
  path: model.primaryPath,
  files: model.files.map((f) => f.path),
  sizeBytes: model.sizeBytes,
  ...(model.files.length === 1 ? { sha256: model.files[0]!.sha256 } : {}),
  quantization: model.quantization,
  repo: model.repo,
  modifiedAt: model.pulledAt,
  installed: true,
  locations: [{ store: "llmspell", name: model.name, path: model.primaryPath }]
})

/**
 * A scripted ModelDownloader layer, its service, the ModelStore over the same models (`store`,
 * `storeLayer`), the installed models (by name) and its call record.
 */
export const ModelDownloaderMock = (options: MockDownloaderOptions = {}) => {
  const calls: CallLog = options.calls ?? []
  const record = (operation: string, ref?: string, instance?: string) =>
    recordCall(calls, {
      source: "downloader",
      backend: "gguf",
      operation,
      ...(instance !== undefined ? { instance } : {}),
      ...(ref !== undefined ? { model: ref, ref } : {})
    })
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
          yield* record("pull", ref, store.instance)
          yield* fail("pull", ref)
          const backend = yield* Effect.scoped(gguf.factory.make({ type: "gguf", name: store.instance, modelDirectory: store.directory }))
          return backend.pull(ref, pullOptions).pipe(
            Stream.ensuring(Effect.sync(() => void installed.set(ref, find(ref) ?? madeUp(ref, store.directory))))
          )
        })
      )
    },
    importFile: (file, store, importOptions) =>
      Effect.zipRight(record("import", file, store.instance), Effect.sync(() => {
        const name = importOptions?.name ?? file.replace(/^.*[\\/]/, "").replace(/\.gguf$/i, "")
        const model = madeUp(name, store.directory)
        installed.set(name, model)
        return model
      })),
    findInstalled: (ref, store) =>
      record("find", ref, store.instance).pipe(
        Effect.zipRight(fail("find", ref)),
        Effect.map(() => Option.fromNullable(find(ref)))
      ),
    listInstalled: (store) =>
      record("list", undefined, store.instance).pipe(
        Effect.zipRight(fail("list")),
        Effect.map(() => [...installed.values()])
      ),
    verify: (store, ref) =>
      record("verify", ref, store.instance).pipe(
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
        yield* record("remove", ref, store.instance)
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
  const store: ModelStoreService = {
    list: (own) =>
      record("list", undefined, own.instance).pipe(
        Effect.zipRight(fail("list")),
        Effect.map(() => ({ models: [...installed.values()].map(stored), warnings: [] }))
      ),
    find: (ref, own) =>
      record("find", ref, own.instance).pipe(
        Effect.zipRight(fail("find", ref)),
        Effect.map(() => Option.map(Option.fromNullable(find(ref)), stored))
      ),
    findBlob: (sha256) =>
      Effect.sync(() =>
        Option.fromNullable(
          [...installed.values()].flatMap((m) => m.files).find((f) => f.sha256 === sha256.toLowerCase())
        ).pipe(Option.map((f) => ({ store: "llmspell" as const, path: f.path, sizeBytes: f.sizeBytes })))
      ),
    verify: (own, ref) => service.verify(own, ref),
    remove: (ref, own) => service.remove(ref, own),
    importFile: (file, own, importOptions) => service.importFile(file, own, importOptions)
  }
  return {
    layer: Layer.succeed(ModelDownloader, service),
    service,
    store,
    storeLayer: Layer.succeed(ModelStore, store),
    calls,
    installed
  }
}

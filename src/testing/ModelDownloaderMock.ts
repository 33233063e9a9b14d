/**
 * A scriptable ModelDownloader and the ModelStore it pulls into: installed models, pulls with progress, and
 * its calls recorded in a `CallLog` (source "downloader", the reference as `model`). Its `layer` provides
 * both services (the real GGUF backend resolves names through the store and pulls through the downloader).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { readdir, rm, stat } from "node:fs/promises"
import { join } from "node:path"
import { type LlmspellError, ModelNotFound } from "../domain/Errors.js"
import { identityDigest } from "../domain/ModelFacts.js"
import { ModelDownloader, type ModelDownloaderService, type PullError } from "../services/ModelDownloader.js"
import { type InstalledModel, ModelStore, type ModelStoreService, type StoredModel } from "../services/ModelStore.js"
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

/** A scripted ModelDownloader layer, its service, the installed models (by name) and its call record. */
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
  // a scripted failure is whatever the script says: the mock does not narrow it to the method's errors
  const failAs = <E>(op: keyof NonNullable<MockDownloaderOptions["fail"]>, ref?: string) => fail(op, ref) as Effect.Effect<void, E>
  const stored = (m: InstalledModel): StoredModel => ({
    name: m.name,
    store: "llmspell",
    path: m.primaryPath,
    files: m.files.map((f) => f.path),
    sizeBytes: m.sizeBytes,
    ...(m.files.length === 1 ? { sha256: m.files[0]!.sha256 } : {}),
    digest: m.files.length === 1 ? m.files[0]!.sha256 : identityDigest(m.primaryPath, m.sizeBytes, m.pulledAt),
    ...(m.quantization !== undefined ? { quantization: m.quantization } : {}),
    modifiedAt: m.pulledAt,
    installed: true,
    locations: [{ store: "llmspell", name: m.name, path: m.primaryPath }]
  })
  // `.gguf` files dropped into the store's directory are models too, as in the live store
  const looseFiles = (directory: string) =>
    Effect.promise(async (): Promise<Array<StoredModel>> => {
      const names = await readdir(directory).catch(() => [] as Array<string>)
      const out: Array<StoredModel> = []
      for (const name of names.filter((n) => n.endsWith(".gguf")).sort()) {
        const path = join(directory, name)
        const info = await stat(path).catch(() => undefined)
        if (info === undefined || !info.isFile()) continue
        const modifiedAt = info.mtime.toISOString()
        out.push({
          name,
          store: "llmspell",
          path,
          files: [path],
          sizeBytes: info.size,
          digest: identityDigest(path, info.size, modifiedAt),
          modifiedAt,
          installed: false,
          locations: [{ store: "llmspell", name, path }]
        })
      }
      return out
    })
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
      ).pipe(Stream.mapError((e) => e as PullError))
    }
  }
  const store: ModelStoreService = {
    importFile: (file, store, importOptions) =>
      Effect.zipRight(record("import", file, store.instance), Effect.sync(() => {
        const name = importOptions?.name ?? file.replace(/^.*[\\/]/, "").replace(/\.gguf$/i, "")
        const model = madeUp(name, store.directory)
        installed.set(name, model)
        return model
      })),
    find: (ref, store) =>
      record("find", ref, store.instance).pipe(
        Effect.zipRight(failAs<never>("find", ref)),
        Effect.flatMap(() => {
          const model = find(ref)
          return model !== undefined
            ? Effect.succeed(Option.some(stored(model)))
            : Effect.map(looseFiles(store.directory), (loose) => Option.fromNullable(loose.find((m) => m.name === ref || m.name === `${ref}.gguf`)))
        })
      ),
    findBlob: () => Effect.succeed(Option.none()),
    list: (store) =>
      record("list", undefined, store.instance).pipe(
        Effect.zipRight(failAs<never>("list")),
        Effect.zipRight(looseFiles(store.directory)),
        Effect.map((loose) => {
          const models = [...installed.values()].map(stored)
          const known = new Set(models.map((m) => m.path))
          return { models: [...models, ...loose.filter((m) => !known.has(m.path))], warnings: [] }
        })
      ),
    verify: (store, ref) =>
      record("verify", ref, store.instance).pipe(
        Effect.zipRight(failAs<never>("verify", ref)),
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
        yield* failAs<never>("remove", ref)
        const model = find(ref)
        if (model === undefined) {
          const loose = (yield* looseFiles(store.directory)).find((m) => m.name === ref || m.name === `${ref}.gguf`)
          if (loose !== undefined) {
            yield* Effect.promise(() => rm(loose.path, { force: true }))
            return { model: ref, backend: "gguf" as const, instance: store.instance, removedFiles: [loose.path], freedBytes: loose.sizeBytes }
          }
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
  return {
    layer: Layer.merge(Layer.succeed(ModelDownloader, service), Layer.succeed(ModelStore, store)),
    service,
    store,
    /** The ModelStore alone (LlmspellMock provides it beside the scripted backends). */
    storeLayer: Layer.succeed(ModelStore, store),
    calls,
    installed
  }
}

/**
 * The live ModelStore: llmspell's own store (manifests and loose `.gguf` files under `model_directory`,
 * see `ownStore.ts`) and the foreign stores named in `[stores]`, walked read-only by
 * `foreignStoreScan.ts`. Touches nothing but the local disk, and writes nothing but the
 * inventory cache in llmspell's own directory (`inventoryCache.ts`, used by `list`; `find`
 * looks only where a name can live instead): the write path of a pull belongs to the downloader, and
 * foreign stores are never written by anyone here.
 *
 * Merging: a model is one entry per distinct bytes. Stores that state a sha256 (our manifests, Ollama's
 * `sha256-<hex>` blobs, the HF cache's LFS blob names) are merged on it without reading a byte; files with
 * no stated sha256 (LM Studio, node-llama-cpp, loose files) are never hashed for listing (a 4 GB hash per
 * model would make `model list` take minutes) and stand alone unless they are the same path.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import type { StoreSetting, StoresConfig } from "../../domain/ConfigSchema.js"
import type { ForeignModel, ForeignStoreRoots } from "../../domain/ForeignStores.js"
import { sameOllamaName } from "../../domain/ForeignStores.js"
import * as HubRef from "../../domain/HubRef.js"
import type { LlmspellError } from "../../domain/Errors.js"
import type { ModelLocation } from "../../domain/Types.js"
import { EffectiveConfig } from "../../services/EffectiveConfig.js"
import type { InstalledModel, ModelDownloaderService, StoreRoot } from "../../services/ModelDownloader.js"
import { type Inventory, ModelStore, type ModelStoreService, type StoredModel } from "../../services/ModelStore.js"
import { resolveDefaultRoots, scanAllEffect, scanForReference } from "./foreignStoreScan.js"
import { cacheFileOf, scanAllCached } from "./inventoryCache.js"
import { ggufQuantization } from "./ggufQuantization.js"
import { fileLocation, filesPresent, type Manifest, matchManifests, readManifests, toInstalled } from "./ownStore.js"
import * as StoreWrite from "./ownStoreWrite.js"
import { nodeFileSystem } from "./storeFs.js"

const absoluteStore = (store: StoreRoot): StoreRoot => ({ ...store, directory: nodePath.resolve(store.directory) })

const sameText = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase()

const fromManifest = (store: StoreRoot, m: Manifest): StoredModel => ({
  ...fromInstalled(toInstalled(store, m)),
  ...(m.repo !== "local" ? { repo: m.repo } : {})
})

/** A pulled model's record as an inventory entry. */
export const fromInstalled = (installed: InstalledModel): StoredModel => {
  return {
    name: installed.name,
    store: "llmspell",
    path: installed.primaryPath,
    files: installed.files.map((f) => f.path),
    sizeBytes: installed.sizeBytes,
    // a split model has no single sha256; a one-file model is its file's
    ...(installed.files.length === 1 ? { sha256: installed.files[0]!.sha256 } : {}),
    quantization: installed.quantization,
    modifiedAt: installed.pulledAt,
    installed: true,
    locations: [{ store: "llmspell", name: installed.name, path: installed.primaryPath }]
  }
}

// Ollama names a model pulled from the hub `hf.co/<org>/<repo>:<quant>`.
const HF_OLLAMA_NAME = /^(?:hf\.co|huggingface\.co)\/([^/:]+\/[^/:]+)(?::|$)/i

const fromForeign = (m: ForeignModel): StoredModel => ({
  name: m.name,
  ...(m.repo !== undefined && m.store === "hf-cache"
    ? { repo: m.repo }
    : HF_OLLAMA_NAME.test(m.name)
    ? { repo: HF_OLLAMA_NAME.exec(m.name)![1]! }
    : {}),
  store: m.store,
  path: m.path,
  files: m.parts ?? [m.path],
  sizeBytes: m.sizeBytes,
  ...(m.sha256 !== undefined ? { sha256: m.sha256 } : {}),
  ...(m.quantization !== undefined ? { quantization: m.quantization } : {}),
  installed: false,
  locations: [{ store: m.store, name: m.name, path: m.path, removeCommand: m.removeCommand }]
})

/** Merges models holding the same bytes (sha256, else path) into one, keeping the first as the one used. */
export const mergeByContent = (models: ReadonlyArray<StoredModel>): ReadonlyArray<StoredModel> => {
  const out: Array<StoredModel> = []
  const byKey = new Map<string, number>()
  for (const m of models) {
    const keys = [...(m.sha256 !== undefined ? [`sha256:${m.sha256}`] : []), `path:${m.path}`]
    const at = keys.map((k) => byKey.get(k)).find((i) => i !== undefined)
    if (at === undefined) {
      for (const k of keys) byKey.set(k, out.length)
      out.push(m)
      continue
    }
    const first = out[at]!
    const known = new Set(first.locations.map((l) => `${l.store}\0${l.path}`))
    out[at] = {
      ...first,
      sha256: first.sha256 ?? m.sha256,
      quantization: first.quantization ?? m.quantization,
      repo: first.repo ?? m.repo,
      locations: [...first.locations, ...m.locations.filter((l) => !known.has(`${l.store}\0${l.path}`))]
    }
    for (const k of keys) byKey.set(k, at)
  }
  return out
}

const rootsOf = (setting: StoreSetting, defaults: ReadonlyArray<string>): ReadonlyArray<string> =>
  setting === false ? [] : setting === "auto" ? defaults : [setting.path]

/** The directories to scan per store, as `[stores]` says (auto: each tool's own default locations). */
export const foreignRoots = (stores: StoresConfig): Effect.Effect<{ roots: ForeignStoreRoots; hfDefaultRoot: string | undefined }> =>
  Effect.promise(() => resolveDefaultRoots({ env: stores.env, home: stores.home })).pipe(
    Effect.map((defaults) => ({
      roots: {
        ollama: rootsOf(stores.ollama, defaults.ollama),
        hfCache: rootsOf(stores.hfCache, defaults.hfCache),
        lmstudio: rootsOf(stores.lmstudio, defaults.lmstudio),
        nodeLlamaCpp: rootsOf(stores.nodeLlamaCpp, defaults.nodeLlamaCpp)
      },
      hfDefaultRoot: defaults.hfCache[0]
    }))
  )

/** Does a foreign location answer to this reference? */
const locationMatches = (ref: string, location: ModelLocation, foreign: ForeignModel | undefined): boolean => {
  if (sameText(location.name, ref)) return true
  if (location.store === "ollama-store") return sameOllamaName(location.name, ref)
  if (foreign === undefined || foreign.repo === undefined) return false
  const parsed = HubRef.parse(ref)
  if (Either.isLeft(parsed)) return false
  const r = parsed.right
  if (!sameText(r.repo, foreign.repo)) return false
  if (r.kind === "file") return r.path === foreign.file
  return sameText(r.quantization ?? HubRef.DEFAULT_QUANTIZATION, foreign.quantization)
}

/** Where the pulled models of llmspell's own store are read from. */
export interface PulledModels {
  readonly list: (store: StoreRoot) => Effect.Effect<ReadonlyArray<StoredModel>, LlmspellError>
  readonly find: (ref: string, store: StoreRoot) => Effect.Effect<Option.Option<StoredModel>, LlmspellError>
}

/** The manifests on disk (the live store). */
const manifestModels: PulledModels = {
  list: (store) => Effect.map(readManifests(store), (all) => all.map((m) => fromManifest(store, m))),
  find: (ref, store) =>
    Effect.gen(function*() {
      for (const m of matchManifests(ref, yield* readManifests(store))) {
        if (yield* filesPresent(store, m)) return Option.some(fromManifest(store, m))
      }
      return Option.none()
    })
}

/** Pulled models as a downloader reports them (for a backend built over a scripted downloader). */
export const downloaderModels = (downloader: ModelDownloaderService): PulledModels => ({
  list: (store) => Effect.map(downloader.listInstalled(store), (all) => all.map(fromInstalled)),
  find: (ref, store) => Effect.map(downloader.findInstalled(ref, store), Option.map(fromInstalled))
})

/** `[stores]` with every foreign store off: llmspell's own store only. */
export const ownStoreOnly = (home: string): StoresConfig => ({
  ollama: false,
  hfCache: false,
  lmstudio: false,
  nodeLlamaCpp: false,
  env: {},
  home
})

/** Builds the store over the `[stores]` settings. */
/** A GGUF dropped into llmspell's model directory (no manifest: not pulled, not installed by us). */
const looseModel = (name: string, path: string, stat: { readonly size: number; readonly mtime: Date }): StoredModel => ({
  name,
  store: "llmspell",
  path,
  files: [path],
  sizeBytes: stat.size,
  modifiedAt: stat.mtime.toISOString(),
  installed: false,
  locations: [{ store: "llmspell", name, path }]
})

export const make = (
  stores: StoresConfig,
  pulledModels: PulledModels = manifestModels,
  fileSystem: FileSystem.FileSystem = nodeFileSystem
): ModelStoreService => {
  const withFs = Effect.provideService(FileSystem.FileSystem, fileSystem)
  const scanForeign = Effect.gen(function*() {
    const { hfDefaultRoot, roots } = yield* foreignRoots(stores)
    return yield* scanAllEffect(roots, hfDefaultRoot !== undefined ? { hfDefaultRoot } : {})
  }).pipe(Effect.withSpan("ModelStore.scanForeign"))

  // The inventory of `list`, through the cache in llmspell's model directory (inventoryCache.ts).
  const scanForeignCached = (store: StoreRoot) =>
    Effect.gen(function*() {
      const { hfDefaultRoot, roots } = yield* foreignRoots(stores)
      return yield* Effect.promise((signal) =>
        scanAllCached(roots, { signal, cacheFile: cacheFileOf(store.directory), ...(hfDefaultRoot !== undefined ? { hfDefaultRoot } : {}) })
      )
    }).pipe(Effect.withSpan("ModelStore.scanForeignCached"))

  const looseFiles = (store: StoreRoot) =>
    Effect.promise(async () => {
      const entries = await fs.readdir(store.directory, { withFileTypes: true }).catch(() => [])
      const out: Array<StoredModel> = []
      for (const e of entries) {
        if (!e.isFile() || !e.name.endsWith(".gguf")) continue
        const p = nodePath.join(store.directory, e.name)
        const s = await fs.stat(p).catch(() => undefined)
        if (s === undefined) continue
        out.push(looseModel(e.name, p, s))
      }
      return out
    })

  const ownModels = (store: StoreRoot) =>
    Effect.gen(function*() {
      const pulled = yield* pulledModels.list(store)
      const known = new Set(pulled.flatMap((m) => m.files))
      const loose = yield* Effect.forEach(
        (yield* looseFiles(store)).filter((m) => !known.has(m.path)),
        (m) => Effect.map(ggufQuantization(m.path), (q): StoredModel => (q !== undefined ? { ...m, quantization: q } : m)),
        { concurrency: 4 }
      )
      return [...pulled, ...loose]
    })

  const inventory = (store: StoreRoot) =>
    Effect.gen(function*() {
      const [own, foreign] = yield* Effect.all([ownModels(store), scanForeignCached(store)], { concurrency: 2 })
      return { own, foreign, models: mergeByContent([...own, ...foreign.models.map(fromForeign)]) }
    })

  const list = (given: StoreRoot): Effect.Effect<Inventory, LlmspellError> =>
    Effect.map(inventory(absoluteStore(given)), ({ foreign, models }) => ({ models, warnings: foreign.warnings })).pipe(
      Effect.withSpan("ModelStore.list")
    )

  /**
   * The foreign models a reference can name and everything holding the same bytes, merged as `list`
   * merges them, without walking every store (`scanForReference`).
   */
  const findForeign = (ref: string, store: StoreRoot) =>
    Effect.gen(function*() {
      const { hfDefaultRoot, roots } = yield* foreignRoots(stores)
      // as scanAll does: `hf cache rm` gets --cache-dir unless the root is hf's default
      const defaultRoot = hfDefaultRoot ?? roots.hfCache[0]
      const { models: foreign } = yield* Effect.promise((signal) =>
        scanForReference(roots, ref, { signal, ...(defaultRoot !== undefined ? { hfDefaultRoot: defaultRoot } : {}) })
      )
      const pulled = yield* pulledModels.list(store)
      return { foreign, models: mergeByContent([...pulled, ...foreign.map(fromForeign)]) }
    }).pipe(Effect.withSpan("ModelStore.findForeign"))

  const find = (ref: string, given: StoreRoot) =>
    Effect.gen(function*() {
      const store = absoluteStore(given)
      const pulled = yield* pulledModels.find(ref, store)
      if (Option.isSome(pulled)) return pulled
      if (!ref.includes("/") && !ref.includes("\\")) {
        for (const candidate of [ref, `${ref}.gguf`]) {
          const p = nodePath.join(store.directory, candidate)
          const s = yield* Effect.promise(() => fs.stat(p).catch(() => undefined))
          if (s?.isFile() && p.endsWith(".gguf")) {
            return Option.some(looseModel(ref, p, s))
          }
        }
      }
      const { foreign, models } = yield* findForeign(ref, store)
      const byPath = new Map(foreign.map((f) => [`${f.store}\0${f.path}`, f]))
      const matches = (m: StoredModel) =>
        m.locations.some((l) => l.store !== "llmspell" && locationMatches(ref, l, byPath.get(`${l.store}\0${l.path}`)))
      // a name as a store spells it beats a hub reference resolved to a repo and quantization
      const exact = models.find((m) => m.locations.some((l) => l.store !== "llmspell" && sameText(l.name, ref)))
      const found = exact ?? models.find(matches)
      if (found === undefined) return Option.none()
      // the model is used from the location that was asked for, unless llmspell's store has the same bytes
      const asked = found.locations.find((l) => sameText(l.name, ref)) ??
        found.locations.find((l) => l.store !== "llmspell" && locationMatches(ref, l, byPath.get(`${l.store}\0${l.path}`))) ??
        found.locations[0]!
      return Option.some(found.store === "llmspell" || asked.path === found.path ? found : {
        ...found,
        name: asked.name,
        store: asked.store,
        path: asked.path,
        files: byPath.get(`${asked.store}\0${asked.path}`)?.parts ?? [asked.path]
      })
    }).pipe(Effect.withSpan("ModelStore.find", { attributes: { ref } }))

  const findBlob = (sha256: string, given: StoreRoot) =>
    Effect.gen(function*() {
      const store = absoluteStore(given)
      const wanted = sha256.toLowerCase()
      for (const m of yield* readManifests(store)) {
        for (const f of m.files) {
          if (f.sha256 !== wanted) continue
          const location = fileLocation(store, f)
          const s = yield* Effect.promise(() => fs.stat(location).catch(() => undefined))
          // trusted as a pull trusts it: the size, and the mtime recorded with its sha256 (a changed file is not offered)
          if (s?.isFile() && s.size === f.sizeBytes && f.mtimeMs !== undefined && s.mtimeMs === f.mtimeMs) {
            return Option.some({ store: "llmspell" as const, path: location, sizeBytes: f.sizeBytes })
          }
        }
      }
      const foreign = yield* scanForeign
      const hit = foreign.models.find((m) => m.sha256 === wanted && m.parts === undefined)
      return hit === undefined ? Option.none() : Option.some({ store: hit.store, path: hit.path, sizeBytes: hit.sizeBytes })
    }).pipe(Effect.withSpan("ModelStore.findBlob"))

  return {
    list,
    find,
    findBlob,
    verify: (own, ref) => StoreWrite.verify(absoluteStore(own), ref).pipe(withFs, Effect.withSpan("ModelStore.verify")),
    remove: (ref, own) => StoreWrite.remove(ref, absoluteStore(own)).pipe(withFs, Effect.withSpan("ModelStore.remove")),
    importFile: (file, own, options) =>
      StoreWrite.importFile(file, absoluteStore(own), options).pipe(withFs, Effect.withSpan("ModelStore.importFile"))
  }
}

/** The live store over the configuration's `[stores]`, its file I/O through the FileSystem in context. */
export const layer: Layer.Layer<ModelStore, never, EffectiveConfig | FileSystem.FileSystem> = Layer.effect(
  ModelStore,
  Effect.gen(function*() {
    const config = yield* EffectiveConfig
    return make(config.stores, manifestModels, yield* FileSystem.FileSystem)
  })
)

/**
 * The live ModelStore: llmspell's own store (manifests and loose `.gguf` files under `model_directory`,
 * see `ownStore.ts`, written by `ownStoreWrite.ts`) and the foreign stores named in `[stores]`, walked
 * read-only by `foreign/` (one scanner per store). Touches nothing but the local disk, and writes nothing
 * but llmspell's own directory: its inventory cache (`foreign/inventoryCache.ts`, used by `list`; `find`
 * looks only where a name can live instead), and verify/remove/import. Foreign stores are never written.
 *
 * Merging: a model is one entry per distinct bytes and name. Stores that state a sha256 (our manifests,
 * Ollama's `sha256-<hex>` blobs, the HF cache's LFS blob names) are merged on it without reading a byte;
 * files with no stated sha256 (LM Studio, node-llama-cpp, loose files) are never hashed for listing (a
 * 4 GB hash per model would make `model list` take minutes) and stand alone unless they are the same path.
 * Two names in one store for the same bytes (`model import` twice, `ollama cp`) are two entries: each is
 * listed and each is removable; other stores holding the bytes are locations of the first.
 *
 * Facts (family, quantization) come from the first bytes of each file (`domain/ModelFacts.ts`), read by
 * the scans and cached with them, and recorded in our manifests when a model is pulled or imported.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as nodePath from "node:path"
import type { StoreSetting, StoresConfig } from "../../domain/ConfigSchema.js"
import { BackendError, ModelNotFound, type ModelStoreUnusable } from "../../domain/Errors.js"
import type { ForeignModel, ForeignStoreRoots } from "../../domain/ForeignStores.js"
import { sameOllamaName } from "../../domain/ForeignStores.js"
import * as HubRef from "../../domain/HubRef.js"
import { identityDigest, type ModelFacts } from "../../domain/ModelFacts.js"
import type { ModelLocation } from "../../domain/Types.js"
import { EffectiveConfig } from "../../services/EffectiveConfig.js"
import {
  type Inventory,
  ModelStore,
  type ModelStoreService,
  type StoredBlob,
  type StoredModel,
  type StoreRoot
} from "../../services/ModelStore.js"
import { cacheFileOf, scanAllCached } from "./foreign/inventoryCache.js"
import { resolveDefaultRoots, scanAll, scanForReference } from "./foreign/scan.js"
import { type FactsCache, headerFacts, loadFactsCache, saveFactsCache } from "./headerFacts.js"
import { fileLocation, filesPresent, type Manifest, matchManifests, readManifests, sameMtime } from "./ownStore.js"
import * as StoreWrite from "./ownStoreWrite.js"
import { ScanFs } from "./scanFs.js"

const absoluteStore = StoreWrite.absoluteStore

const sameText = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase()

/** A manifest's model as an inventory entry, with the facts of its first file. */
const fromManifest = (store: StoreRoot, m: Manifest, facts: ModelFacts): StoredModel => {
  const files = m.files.map((f) => fileLocation(store, f))
  const sizeBytes = m.files.reduce((n, f) => n + f.sizeBytes, 0)
  // a split model has no single sha256; a one-file model is its file's
  const sha256 = m.files.length === 1 ? m.files[0]!.sha256 : undefined
  const quantization = facts.quantization ?? m.quantization
  const family = m.family ?? facts.family
  const capabilities = m.capabilities ?? facts.capabilities
  return {
    name: m.name,
    store: "llmspell",
    path: files[0]!,
    files,
    sizeBytes,
    ...(sha256 !== undefined ? { sha256 } : {}),
    digest: sha256 ?? identityDigest(files[0]!, sizeBytes, m.pulledAt),
    ...(quantization !== undefined ? { quantization } : {}),
    ...(family !== undefined ? { family } : {}),
    ...(capabilities !== undefined ? { capabilities } : {}),
    ...(m.repo !== "local" ? { repo: m.repo } : {}),
    modifiedAt: m.pulledAt,
    installed: true,
    locations: [{ store: "llmspell", name: m.name, path: files[0]! }]
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
  digest: m.sha256 ?? identityDigest(m.path, m.sizeBytes, m.modifiedAt),
  ...(m.quantization !== undefined ? { quantization: m.quantization } : {}),
  ...(m.family !== undefined ? { family: m.family } : {}),
  ...(m.capabilities !== undefined ? { capabilities: m.capabilities } : {}),
  ...(m.modifiedAt !== undefined ? { modifiedAt: m.modifiedAt } : {}),
  installed: false,
  locations: [{ store: m.store, name: m.name, path: m.path, removeCommand: m.removeCommand }]
})

/**
 * Merges models holding the same bytes (sha256, else path) into one, keeping the first as the one used;
 * a second name in the same store as the first stays an entry of its own.
 */
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
    if (first.store === m.store && !sameText(first.name, m.name)) {
      // another name of the same bytes in the same store: listed (and removable) by that name too
      out.push({ ...m, locations: [...m.locations, ...first.locations.filter((l) => l.store !== m.store)] })
      continue
    }
    const known = new Set(first.locations.map((l) => `${l.store}\0${l.path}\0${l.name}`))
    out[at] = {
      ...first,
      sha256: first.sha256 ?? m.sha256,
      quantization: first.quantization ?? m.quantization,
      family: first.family ?? m.family,
      capabilities: first.capabilities ?? m.capabilities,
      repo: first.repo ?? m.repo,
      locations: [...first.locations, ...m.locations.filter((l) => !known.has(`${l.store}\0${l.path}\0${l.name}`))]
    }
    for (const k of keys) byKey.set(k, at)
  }
  return out
}

const rootsOf = (setting: StoreSetting, defaults: ReadonlyArray<string>): ReadonlyArray<string> =>
  setting === false ? [] : setting === "auto" ? defaults : [setting.path]

/** The directories to scan per store, as `[stores]` says (auto: each tool's own default locations). */
export const foreignRoots = (
  stores: StoresConfig
): Effect.Effect<{ roots: ForeignStoreRoots; hfDefaultRoot: string | undefined }, never, ScanFs> =>
  Effect.map(resolveDefaultRoots({ env: stores.env, home: stores.home }), (defaults) => ({
    roots: {
      ollama: rootsOf(stores.ollama, defaults.ollama),
      hfCache: rootsOf(stores.hfCache, defaults.hfCache),
      lmstudio: rootsOf(stores.lmstudio, defaults.lmstudio),
      nodeLlamaCpp: rootsOf(stores.nodeLlamaCpp, defaults.nodeLlamaCpp)
    },
    hfDefaultRoot: defaults.hfCache[0]
  }))

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
  // the quantization a hub reference means is the one in the file name (as the store names the model)
  return sameText(r.quantization ?? HubRef.DEFAULT_QUANTIZATION, HubRef.quantizationOf(foreign.file ?? foreign.path))
}

/** `[stores]` with every foreign store off: llmspell's own store only. */
export const ownStoreOnly = (home: string): StoresConfig => ({
  ollama: false,
  hfCache: false,
  lmstudio: false,
  nodeLlamaCpp: false,
  env: {},
  home
})

/** Builds the store over the `[stores]` settings and the file-system services in context. */
export const make = (stores: StoresConfig): Effect.Effect<ModelStoreService, never, FileSystem.FileSystem | ScanFs> =>
  Effect.gen(function*() {
    const fileSystem = yield* FileSystem.FileSystem
    const scanFs = yield* ScanFs
    const provide = <A, E>(effect: Effect.Effect<A, E, FileSystem.FileSystem | ScanFs>): Effect.Effect<A, E> =>
      effect.pipe(Effect.provideService(FileSystem.FileSystem, fileSystem), Effect.provideService(ScanFs, scanFs))

    const roots = foreignRoots(stores)

    /**
     * A manifest's model, with the header's facts unless the manifest recorded them (pulls and imports
     * do; manifests written before capabilities were recorded have the header read, through the cache).
     */
    const manifestModel = (store: StoreRoot, m: Manifest, cache?: FactsCache) =>
      Effect.map(
        // a find (every request's name resolution) wants no capabilities: the family recorded is enough there
        m.family !== undefined && (m.capabilities !== undefined || cache === undefined)
          ? Effect.succeed<ModelFacts>({})
          : provide(headerFacts(fileLocation(store, m.files[0]!), { fileName: m.files[0]!.repoPath, cache })),
        (facts) => fromManifest(store, m, facts)
      )

    const manifestModels = (store: StoreRoot, cache?: FactsCache) =>
      Effect.flatMap(readManifests(store), (all) => Effect.forEach(all, (m) => manifestModel(store, m, cache), { concurrency: 8 }))

    /** A GGUF dropped into llmspell's model directory (no manifest: not pulled, not imported). */
    const looseModel = (name: string, path: string, info: { readonly size: number; readonly mtimeMs: number }, cache?: FactsCache) =>
      Effect.map(
        // the whole header (the dominant tensor type stands in for a missing file type), through the cache
        provide(headerFacts(path, { fileName: name, quantizationFrom: "whole", cache })),
        (facts): StoredModel => {
          const modifiedAt = new Date(info.mtimeMs).toISOString()
          return {
            name,
            store: "llmspell",
            path,
            files: [path],
            sizeBytes: info.size,
            digest: identityDigest(path, info.size, modifiedAt),
            ...(facts.quantization !== undefined ? { quantization: facts.quantization } : {}),
            ...(facts.family !== undefined ? { family: facts.family } : {}),
            ...(facts.capabilities !== undefined ? { capabilities: facts.capabilities } : {}),
            modifiedAt,
            installed: false,
            locations: [{ store: "llmspell", name, path }]
          }
        }
      )

    const looseFiles = (store: StoreRoot, known: ReadonlySet<string>, cache?: FactsCache) =>
      Effect.gen(function*() {
        const listing = yield* scanFs.readDirectory(store.directory, 100_000).pipe(
          Effect.orElseSucceed(() => ({ entries: [], truncated: false }))
        )
        const names = listing.entries.filter((e) => e.kind === "file" && e.name.endsWith(".gguf")).map((e) => e.name).sort()
        const found = yield* Effect.forEach(names, (name) => {
          const path = nodePath.join(store.directory, name)
          if (known.has(path)) return Effect.succeed(undefined)
          return scanFs.lstat(path).pipe(
            Effect.flatMap((info) => (info.kind === "file" ? looseModel(name, path, info, cache) : Effect.succeed(undefined))),
            Effect.orElseSucceed(() => undefined)
          )
        }, { concurrency: 4 })
        return found.filter((m): m is StoredModel => m !== undefined)
      })

    const ownModels = (store: StoreRoot, cache?: FactsCache) =>
      Effect.gen(function*() {
        const pulled = yield* manifestModels(store, cache)
        return [...pulled, ...(yield* looseFiles(store, new Set(pulled.flatMap((m) => m.files)), cache))]
      })

    // The inventory of `list`, through the cache in llmspell's model directory (foreign/inventoryCache.ts).
    const scanForeignCached = (store: StoreRoot, facts: FactsCache) =>
      Effect.gen(function*() {
        const { hfDefaultRoot, roots: r } = yield* roots
        return yield* scanAllCached(r, {
          cacheFile: cacheFileOf(store.directory),
          facts,
          ...(hfDefaultRoot !== undefined ? { hfDefaultRoot } : {})
        })
      }).pipe(Effect.withSpan("ModelStore.scanForeignCached"))

    const list = (given: StoreRoot): Effect.Effect<Inventory, ModelStoreUnusable> =>
      Effect.gen(function*() {
        const store = absoluteStore(given)
        // the facts of long headers read by earlier listings (headerFacts.ts): a second listing reads first bytes only
        const facts = yield* loadFactsCache(store.directory)
        const [own, foreign] = yield* Effect.all([ownModels(store, facts), scanForeignCached(store, facts)], { concurrency: 2 })
        yield* saveFactsCache(store.directory, facts)
        return { models: mergeByContent([...own, ...foreign.models.map(fromForeign)]), warnings: foreign.warnings }
      }).pipe(provide, Effect.withSpan("ModelStore.list"))

    /**
     * The foreign models a reference can name and everything holding the same bytes, merged as `list`
     * merges them, without walking every store (`scanForReference`).
     */
    const findForeign = (ref: string, store: StoreRoot) =>
      Effect.gen(function*() {
        const { hfDefaultRoot, roots: r } = yield* roots
        // as scanAll does: `hf cache rm` gets --cache-dir unless the root is hf's default
        const defaultRoot = hfDefaultRoot ?? r.hfCache[0]
        const { models: foreign } = yield* scanForReference(r, ref, defaultRoot !== undefined ? { hfDefaultRoot: defaultRoot } : {})
        const pulled = yield* manifestModels(store)
        return { foreign, models: mergeByContent([...pulled, ...foreign.map(fromForeign)]) }
      }).pipe(Effect.withSpan("ModelStore.findForeign"))

    /** A loose `.gguf` of llmspell's directory named `ref` (or `ref.gguf`). */
    const findLoose = (ref: string, store: StoreRoot) =>
      Effect.gen(function*() {
        if (ref.includes("/") || ref.includes("\\")) return undefined
        for (const candidate of [ref, `${ref}.gguf`]) {
          if (!candidate.endsWith(".gguf")) continue
          const path = nodePath.join(store.directory, candidate)
          const info = yield* scanFs.stat(path).pipe(Effect.option)
          if (Option.isSome(info) && info.value.kind === "file") return yield* looseModel(ref, path, info.value)
        }
        return undefined
      })

    /** The foreign model `ref` names, with the record the scan made of it. */
    const matchForeign = (ref: string, store: StoreRoot) =>
      Effect.gen(function*() {
        const { foreign, models } = yield* findForeign(ref, store)
        const byPath = new Map(foreign.map((f) => [`${f.store}\0${f.path}`, f]))
        const matches = (m: StoredModel) =>
          m.locations.some((l) => l.store !== "llmspell" && locationMatches(ref, l, byPath.get(`${l.store}\0${l.path}`)))
        // a name as a store spells it beats a hub reference resolved to a repo and quantization
        const exact = models.find((m) => m.locations.some((l) => l.store !== "llmspell" && sameText(l.name, ref)))
        const found = exact ?? models.find(matches)
        if (found === undefined) return undefined
        // the model is used from the location that was asked for, unless llmspell's store has the same bytes
        const asked = found.locations.find((l) => sameText(l.name, ref)) ??
          found.locations.find((l) => l.store !== "llmspell" && locationMatches(ref, l, byPath.get(`${l.store}\0${l.path}`))) ??
          found.locations[0]!
        const record = byPath.get(`${asked.store}\0${asked.path}`)
        const model: StoredModel = found.store === "llmspell" || asked.path === found.path ? found : {
          ...found,
          name: asked.name,
          store: asked.store,
          path: asked.path,
          files: record?.parts ?? [asked.path]
        }
        return { model, record }
      })

    const find = (ref: string, given: StoreRoot) =>
      Effect.gen(function*() {
        const store = absoluteStore(given)
        for (const m of matchManifests(ref, yield* readManifests(store))) {
          if (yield* filesPresent(store, m)) return Option.some(yield* manifestModel(store, m))
        }
        const loose = yield* findLoose(ref, store)
        if (loose !== undefined) return Option.some(loose)
        return Option.map(Option.fromNullable(yield* matchForeign(ref, store)), (f) => f.model)
      }).pipe(provide, Effect.withSpan("ModelStore.find", { attributes: { ref } }))

    const findBlob = (sha256: string, given: StoreRoot) =>
      Effect.gen(function*() {
        const store = absoluteStore(given)
        const wanted = sha256.toLowerCase()
        for (const m of yield* readManifests(store)) {
          for (const f of m.files) {
            if (f.sha256 !== wanted) continue
            const location = fileLocation(store, f)
            const info = yield* scanFs.stat(location).pipe(Effect.option)
            // trusted as a pull trusts it: the size, and the mtime recorded with its sha256 (a changed file is not offered)
            if (Option.isSome(info) && info.value.kind === "file" && info.value.size === f.sizeBytes && sameMtime(info.value.mtimeMs, f.mtimeMs)) {
              return Option.some<StoredBlob>({ store: "llmspell", path: location, sizeBytes: f.sizeBytes })
            }
          }
        }
        const { hfDefaultRoot, roots: r } = yield* roots
        const foreign = yield* scanAll(r, hfDefaultRoot !== undefined ? { hfDefaultRoot } : {})
        const hit = foreign.models.find((m) => m.sha256 === wanted && m.parts === undefined)
        return hit === undefined ? Option.none() : Option.some<StoredBlob>({ store: hit.store, path: hit.path, sizeBytes: hit.sizeBytes })
      }).pipe(provide, Effect.withSpan("ModelStore.findBlob"))

    const remove = (ref: string, given: StoreRoot) =>
      Effect.gen(function*() {
        const store = absoluteStore(given)
        if (matchManifests(ref, yield* readManifests(store)).length > 0) return yield* StoreWrite.removeInstalled(ref, store)
        const loose = yield* findLoose(ref, store)
        if (loose !== undefined) {
          yield* fileSystem.remove(loose.path).pipe(
            Effect.mapError((e) =>
              new BackendError({ backend: "gguf", instance: store.instance, operation: "remove", reason: e.message, cause: e })
            )
          )
          return { model: ref, backend: "gguf" as const, instance: store.instance, removedFiles: [loose.path], freedBytes: loose.sizeBytes }
        }
        const foreign = yield* matchForeign(ref, store)
        if (foreign !== undefined && foreign.model.store !== "llmspell") {
          // another tool's store is never written: say whose it is, where it keeps it (a link's own path,
          // never its target) and how that tool removes it
          const where = foreign.record?.storePath ?? foreign.model.path
          const command = foreign.record?.removeCommand
          return yield* new BackendError({
            backend: "gguf",
            instance: store.instance,
            operation: "remove",
            reason: `${foreign.model.name} is in the ${foreign.model.store} store (${where}), which llmspell only reads`,
            suggestion: command !== undefined ? `remove it with its own tool: ${command}` : "remove it with the tool that downloaded it"
          })
        }
        // partial downloads of a model never finished, or nothing at all (ModelNotFound)
        return yield* StoreWrite.removeInstalled(ref, store)
      }).pipe(provide, Effect.withSpan("ModelStore.remove", { attributes: { ref } }))

    return {
      list,
      find,
      findBlob,
      verify: (own, ref) => StoreWrite.verify(absoluteStore(own), ref).pipe(provide, Effect.withSpan("ModelStore.verify")),
      remove,
      importFile: (file, own, options) => StoreWrite.importFile(file, absoluteStore(own), options).pipe(provide)
    }
  })

/** The live store over the configuration's `[stores]`, its file I/O through the FileSystem and ScanFs in context. */
export const layer: Layer.Layer<ModelStore, never, EffectiveConfig | FileSystem.FileSystem | ScanFs> = Layer.effect(
  ModelStore,
  Effect.flatMap(EffectiveConfig, (config) => make(config.stores))
)

/** A store that holds nothing: a GGUF backend given no store runs files by path only. */
export const empty: ModelStoreService = {
  list: () => Effect.succeed({ models: [], warnings: [] }),
  find: () => Effect.succeed(Option.none()),
  findBlob: () => Effect.succeed(Option.none()),
  verify: () => Effect.succeed({ ok: true, files: [] }),
  remove: (ref, own) => Effect.fail(new ModelNotFound({ model: ref, backend: "gguf", instance: own.instance })),
  importFile: (file, own) =>
    Effect.fail(new ModelNotFound({ model: file, backend: "gguf", instance: own.instance, detail: "this llmspell has no model store to import into" }))
}

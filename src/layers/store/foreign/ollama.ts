/**
 * Ollama's store (`domain/ForeignStores.ts` has the layout and its sources): every
 * `manifests/<host>/<namespace>/<model>/<tag>` with a GGUF layer, listed as its `blobs/sha256-<hex>`.
 * The manifest is read capped at 1 MiB; the blob is opened without following a link (Ollama's blobs
 * are never links, so one that is a link must stay inside the store) and its first bytes give the facts;
 * the config blob is read (capped) only when the header has no file type.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as posix from "node:path/posix"
import * as ForeignStores from "../../../domain/ForeignStores.js"
import type { ForeignModel } from "../../../domain/ForeignStores.js"
import type { ScanFs } from "../scanFs.js"
import {
  attempt,
  childDir,
  type Dir,
  forEachEntry,
  inside,
  listDir,
  makeContext,
  openRoot,
  resolveFile,
  resultOf,
  type ScanContext,
  type ScanOptions,
  type ScanResult,
  spend,
  warn
} from "./walk.js"

// A manifest is a few hundred bytes, a config blob under 1 KB; anything far larger is not one.
const MAX_MANIFEST_BYTES = 1024 * 1024
const MAX_CONFIG_BYTES = 64 * 1024

/** Lists the GGUF models of Ollama stores. */
export const scanOllama = (roots: ReadonlyArray<string>, options: ScanOptions = {}): Effect.Effect<ScanResult, never, ScanFs> =>
  Effect.gen(function*() {
    const ctx = yield* makeContext("ollama-store", options)
    const models: Array<ForeignModel> = []
    for (const path of roots) {
      const root = yield* openRoot(ctx, path)
      if (root === undefined) continue
      const manifests = yield* storeFolder(ctx, root, "manifests")
      if (manifests === undefined) continue
      // the blobs folder is where every path of this store ends: it must not lead out of it
      if ((yield* storeFolder(ctx, root, "blobs")) === undefined) continue
      models.push(...(yield* walkManifests(ctx, root, manifests, "", options.keep ?? (() => true))))
    }
    return resultOf(ctx, models)
  }).pipe(Effect.withSpan("ModelStore.scanOllama"))

/** A fixed folder of the layout (`manifests`, `blobs`) as a Dir, checked to be inside the store. */
const storeFolder = (ctx: ScanContext, root: Dir, name: string): Effect.Effect<Dir | undefined> =>
  Effect.gen(function*() {
    const path = posix.join(root.path, name)
    const stats = yield* attempt(ctx, path, ctx.fs.lstat(path), (code) => code === "ENOENT")
    if (stats === undefined) return undefined
    if (stats.kind === "directory") return { path, real: posix.join(root.real, name), store: root.store }
    if (stats.kind !== "symlink") return yield* warn(ctx, path, `not a directory`)
    const real = yield* attempt(ctx, path, ctx.fs.realPath(path))
    if (real === undefined) return undefined
    if (!inside(real, root.store)) return yield* warn(ctx, path, "a link to a folder outside the store: not followed")
    return { path, real, store: root.store }
  })

const walkManifests = (
  ctx: ScanContext,
  root: Dir,
  dir: Dir,
  relDir: string,
  keep: (relPath: string) => boolean
): Effect.Effect<ReadonlyArray<ForeignModel>> =>
  Effect.gen(function*() {
    const depth = relDir === "" ? 0 : relDir.split("/").length
    const found = yield* forEachEntry(yield* listDir(ctx, dir), (entry) =>
      Effect.gen(function*() {
        const relPath = relDir === "" ? entry.name : `${relDir}/${entry.name}`
        if (!keep(relPath.toLowerCase())) return []
        if (depth < 3) {
          const child = yield* childDir(ctx, dir, entry)
          return child === undefined ? [] : yield* walkManifests(ctx, root, child, relPath, keep)
        }
        if (entry.kind === "directory") return []
        const model = yield* ollamaModelAt(ctx, root, posix.join(dir.path, entry.name), relPath)
        return model === undefined ? [] : [model]
      }))
    return found.flat()
  })

const ollamaModelAt = (ctx: ScanContext, root: Dir, path: string, relPath: string): Effect.Effect<ForeignModel | undefined> =>
  Effect.gen(function*() {
    const name = ForeignStores.ollamaNameFromManifestPath(relPath)
    if (name === undefined) return yield* warn(ctx, path, "not an Ollama model name (host/namespace/model/tag)")
    const read = yield* attempt(ctx, path, ctx.fs.readText(path, MAX_MANIFEST_BYTES))
    if (read === undefined || !(yield* spend(ctx, "bytes", read.info.size, path))) return undefined
    const manifest = ForeignStores.decodeOllamaManifest(read.text)
    if (Either.isLeft(manifest)) return yield* warn(ctx, path, manifest.left)
    // A safetensors or cloud model has no GGUF layer: not ours to list, and nothing wrong with it.
    if (!manifest.right.layers.some((l) => l.mediaType === ForeignStores.OLLAMA_MODEL_MEDIA_TYPE)) return undefined
    const described = ForeignStores.ollamaManifestModel(name, manifest.right)
    if (Either.isLeft(described)) return yield* warn(ctx, path, described.left)
    const blobPath = posix.join(root.path, described.right.blob)
    const blob = yield* resolveFile(ctx, { storePath: blobPath, real: posix.join(root.real, described.right.blob) }, root.store, {
      outside: "refuse",
      peek: true,
      expectedSize: described.right.sizeBytes
    })
    if (blob === undefined) return undefined
    if (blob.sizeBytes !== described.right.sizeBytes) {
      return yield* warn(ctx, blobPath, `size ${blob.sizeBytes} differs from the manifest's ${described.right.sizeBytes}`)
    }
    // The header's file type is the quantization; the config blob (file_type) and the tag only stand in for it.
    let quantization = blob.facts?.quantization
    const configBlob = described.right.configBlob
    if (quantization === undefined && configBlob !== undefined && manifest.right.config.size <= MAX_CONFIG_BYTES) {
      const configPath = posix.join(root.path, configBlob)
      const config = yield* attempt(ctx, configPath, ctx.fs.readText(configPath, MAX_CONFIG_BYTES))
      quantization = ForeignStores.ollamaQuantization(
        name,
        config === undefined ? undefined : ForeignStores.decodeOllamaConfig(config.text)
      )
    }
    return ForeignStores.ollamaForeignModel({
      root: root.path,
      model: described.right,
      path: blob.path,
      sizeBytes: blob.sizeBytes,
      quantization: quantization ?? ForeignStores.ollamaQuantization(name, undefined),
      family: blob.facts?.family,
      capabilities: blob.facts?.capabilities,
      // as `ollama list` dates a model: by its manifest
      modifiedAt: new Date(read.info.mtimeMs).toISOString()
    })
  })

/** Whether an Ollama store holds the blob `sha256-<hex>`: one lstat per root, no manifest read. */
export const ollamaHasBlob = (roots: ReadonlyArray<string>, sha256: string): Effect.Effect<boolean, never, ScanFs> =>
  Effect.gen(function*() {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return false
    const fs = (yield* makeContext("ollama-store", {})).fs
    for (const root of roots) {
      const held = yield* fs.lstat(posix.join(root, "blobs", `sha256-${sha256}`)).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
      if (held) return true
    }
    return false
  })

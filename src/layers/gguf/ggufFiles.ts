/**
 * Which file a GGUF model name means, and whether a file is still the one it was. Local files
 * (`./x.gguf`, `~/x`, `file://…`, absolute paths) load directly; anything else is looked up in the
 * ModelStore (llmspell's store, then other tools' stores read in place; never the hub — only
 * `model pull` goes there). The name a path was resolved from (and the store's digest of it) is
 * remembered for errors and `ps`.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"
import { ModelNotFound } from "../../domain/Errors.js"
import * as HubRef from "../../domain/HubRef.js"
import { isFileReference } from "../../domain/ModelSpec.js"
import type { ModelLocation } from "../../domain/Types.js"
import type { GgufResolveError } from "../../services/GgufBackend.js"
import type { ModelStoreService, StoreRoot } from "../../services/ModelStore.js"

/** Absolute path of a local-file reference (`./x.gguf`, `~/x`, `file://…`, absolute). */
export const localPath = (reference: string, cwd: string = process.cwd(), home: string = os.homedir()): string =>
  reference.startsWith("file://")
    ? fileURLToPath(reference)
    : reference === "~" || reference.startsWith("~/")
    ? nodePath.join(home, reference.slice(1))
    : nodePath.resolve(cwd, reference)

/** A model name resolved to the file to load. */
export interface ResolvedFile {
  readonly name: string
  readonly path: string
  /** Installed through the downloader (vs. a local file or a loose file in the directory). */
  readonly installed: boolean
  /** The store it came from (absent for a local file given by path), and every store holding the same bytes. */
  readonly store?: ModelLocation["store"]
  readonly locations?: ReadonlyArray<ModelLocation>
  /** The store's identity of the model (Ollama's `digest`). */
  readonly digest?: string
}

/** What identifies the bytes behind a path: a rename over it or a rewrite changes one of these. */
export interface FileIdentity {
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
}

// node:fs, not the platform FileSystem: a missing file is an answer here (undefined), and its
// inode number is the point (`FileSystem.File.Info` has no `dev`)
/** The identity of the file at `path` now, or undefined when there is none. */
export const fileIdentity = (path: string): Effect.Effect<FileIdentity | undefined> =>
  Effect.promise(() =>
    fs.stat(path).then(
      (s) => ({ dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs }),
      () => undefined
    )
  )

/** Both known and the same bytes. */
export const sameFile = (a: FileIdentity | undefined, b: FileIdentity | undefined): boolean =>
  a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs

/** Resolves model names for one instance and remembers which name each path was given as. */
export const makeResolver = (instance: string, store: StoreRoot, modelStore: ModelStoreService) => {
  const names = new Map<string, string>()
  const digests = new Map<string, string>()

  const notFound = (model: string, detail?: string) =>
    new ModelNotFound({
      model,
      backend: "gguf",
      instance,
      // only a name `model pull` accepts (catalog alias, hub repo): a hint must name a command that works
      ...(Either.isRight(HubRef.parse(model)) ? { pullSpec: model } : {}),
      ...(detail !== undefined ? { detail } : {})
    })

  const resolve = (model: string): Effect.Effect<ResolvedFile, GgufResolveError> =>
    Effect.gen(function*() {
      if (isFileReference(model)) return { name: model, path: localPath(model), installed: false }
      const found = yield* modelStore.find(model, store)
      if (Option.isNone(found)) return yield* notFound(model)
      const m = found.value
      return { name: m.name, path: m.path, installed: m.installed, store: m.store, locations: m.locations, digest: m.digest }
    }).pipe(Effect.tap((r) =>
      Effect.sync(() => {
        names.set(r.path, r.name)
        if (r.digest !== undefined) digests.set(r.path, r.digest)
      })
    ))

  return {
    resolve,
    /** The name `path` was last resolved from (the path itself when never). */
    nameOf: (path: string) => names.get(path) ?? path,
    /** The store's digest of the model at `path`, when it was resolved through a store. */
    digestOf: (path: string) => digests.get(path)
  }
}

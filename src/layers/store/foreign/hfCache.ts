/**
 * The Hugging Face hub cache (`domain/ForeignStores.ts` has the layout and its sources):
 * `models--<org>--<repo>/snapshots/<commit>/…/*.gguf`, each a relative symlink into the repo's `blobs/`.
 * Those links are the cache's own and legitimate; anything else that leaves the cache (an absolute link,
 * a folder link out of it, a `blobs` folder that is itself a link elsewhere) is a warning, not followed.
 * A file present in several snapshots is listed once, from the snapshot `refs/main` names when it has it.
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
  CONCURRENCY,
  type Dir,
  forEachEntry,
  inside,
  listDir,
  makeContext,
  openRoot,
  type Resolve,
  resolveFile,
  resultOf,
  type ScanContext,
  type ScanOptions,
  type ScanResult,
  walkGguf,
  warn
} from "./walk.js"

const MAX_REF_BYTES = 4096
// Snapshot files may sit in sub-folders (`Q4_K_M/x-00001-of-00002.gguf`); a few levels is plenty.
const HF_MAX_DEPTH = 4

/** Lists the GGUF files of HF hub caches. */
export const scanHfCache = (roots: ReadonlyArray<string>, options: ScanOptions = {}): Effect.Effect<ScanResult, never, ScanFs> =>
  Effect.gen(function*() {
    const ctx = yield* makeContext("hf-cache", options)
    const models: Array<ForeignModel> = []
    for (const path of roots) {
      const root = yield* openRoot(ctx, path)
      if (root === undefined) continue
      const repos = (yield* listDir(ctx, root)).filter((e) => {
        const repo = ForeignStores.hfRepoFromFolder(e.name)
        return repo !== undefined && (options.keep?.(repo.toLowerCase()) ?? true)
      })
      const perRepo = yield* forEachEntry(repos, (entry) =>
        Effect.gen(function*() {
          const repoDir = yield* childDir(ctx, root, entry)
          if (repoDir === undefined) return []
          const files = yield* scanRepo(ctx, repoDir)
          const repo = ForeignStores.hfRepoFromFolder(entry.name)!
          return ForeignStores.hfForeignModels({ root: path, defaultRoot: options.hfDefaultRoot ?? path, repo, files })
        }))
      models.push(...perRepo.flat())
    }
    return resultOf(ctx, models)
  }).pipe(Effect.withSpan("ModelStore.scanHfCache"))

const scanRepo = (ctx: ScanContext, repoDir: Dir): Effect.Effect<ReadonlyArray<ForeignStores.HfSnapshotFile>> =>
  Effect.gen(function*() {
    // Every snapshot link ends in this folder: a `blobs` that is itself a link must stay in the cache.
    const blobsPath = posix.join(repoDir.path, "blobs")
    const blobs = yield* attempt(ctx, blobsPath, ctx.fs.lstat(blobsPath), (code) => code === "ENOENT")
    if (blobs?.kind === "symlink") {
      const real = yield* attempt(ctx, blobsPath, ctx.fs.realPath(blobsPath))
      if (real === undefined) return []
      if (!inside(real, repoDir.store)) return yield* Effect.as(warn(ctx, blobsPath, "a link to a folder outside the cache: not followed"), [])
    }
    const snapshotsPath = posix.join(repoDir.path, "snapshots")
    const snapshots: Dir = { path: snapshotsPath, real: posix.join(repoDir.real, "snapshots"), store: repoDir.store }
    const refPath = posix.join(repoDir.path, "refs", "main")
    const ref = yield* ctx.fs.readText(refPath, MAX_REF_BYTES).pipe(
      Effect.map((r) => r.text.trim()),
      // no refs/main is normal (a revision pulled by commit); a FIFO or a huge file there is worth a word
      Effect.catchAll((e) => e.code === "ENOENT" ? Effect.succeed(undefined) : warn(ctx, refPath, e.reason))
    )
    const commits = yield* listDir(ctx, snapshots)
    // The snapshot refs/main points at first, so its files win over older revisions of the same path.
    const ordered = [...commits.filter((c) => c.name === ref), ...commits.filter((c) => c.name !== ref)]
    const byFile = new Map<string, ForeignStores.HfSnapshotFile>()
    for (const commit of ordered) {
      const snapshot = yield* childDir(ctx, snapshots, commit)
      if (snapshot === undefined) continue
      for (const found of yield* walkGguf(ctx, snapshot, "", HF_MAX_DEPTH, snapshotResolve(ctx))) {
        if (byFile.has(found.relPath)) continue
        byFile.set(found.relPath, {
          file: found.relPath,
          revision: commit.name,
          path: found.first.path,
          sizeBytes: found.first.sizeBytes,
          sha256: found.first.sha256,
          facts: found.first.facts,
          modifiedAt: found.first.modifiedAt,
          ...(found.others.length > 0 ? { otherParts: found.others.map((o) => ({ path: o.path, sizeBytes: o.sizeBytes })) } : {})
        })
      }
    }
    return [...byFile.values()]
  })

/** A snapshot file: a relative link into the repo's `blobs/` (checked), or a plain file (no-symlink caches). */
const snapshotResolve = (ctx: ScanContext): Resolve => (relPath, dir, entry, first) =>
  Effect.gen(function*() {
    const absPath = posix.join(dir.path, entry.name)
    const options = { outside: "refuse", peek: first, fileName: relPath } as const
    // HF_HUB_DISABLE_SYMLINKS (or Windows without symlinks) stores the file in the snapshot itself.
    if (entry.kind !== "symlink") {
      return yield* resolveFile(ctx, { storePath: absPath, real: posix.join(dir.real, entry.name), kind: entry.kind }, dir.store, options)
    }
    const target = yield* attempt(ctx, absPath, ctx.fs.readLink(absPath))
    if (target === undefined) return undefined
    const blob = ForeignStores.hfBlobOfLink(relPath, target)
    if (Either.isLeft(blob)) return yield* warn(ctx, absPath, blob.left)
    // Relative to a folder with no symlinks in its real path, the link's target is plain path
    // arithmetic; opened without following a link, so the Xet form (the blob itself a link into the
    // cache's shared store) and anything odd on the way are resolved by the kernel and checked.
    const blobPath = posix.join(dir.real, target)
    const file = yield* resolveFile(ctx, { storePath: absPath, open: blobPath, real: blobPath }, dir.store, options)
    return file === undefined ? undefined : { ...file, sha256: blob.right.sha256 }
  })

/**
 * The repo ids (lower-cased) of HF cache repos holding a blob named `sha256`: one readdir per root and
 * one lstat per repo folder, no snapshot walked.
 */
export const hfReposWithBlob = (roots: ReadonlyArray<string>, sha256: string): Effect.Effect<ReadonlySet<string>, never, ScanFs> =>
  Effect.gen(function*() {
    const out = new Set<string>()
    if (!/^[0-9a-f]{64}$/.test(sha256)) return out
    const ctx = yield* makeContext("hf-cache", {})
    for (const root of roots) {
      const listing = yield* ctx.fs.readDirectory(root, ctx.limits.maxDirectoryEntries).pipe(
        Effect.orElseSucceed(() => ({ entries: [], truncated: false }))
      )
      yield* Effect.forEach(listing.entries, (entry) => {
        const repo = ForeignStores.hfRepoFromFolder(entry.name)
        if (repo === undefined) return Effect.void
        return ctx.fs.lstat(posix.join(root, entry.name, "blobs", sha256)).pipe(
          Effect.tap(() => Effect.sync(() => out.add(repo.toLowerCase()))),
          Effect.ignore
        )
      }, { concurrency: CONCURRENCY, discard: true })
    }
    return out
  })

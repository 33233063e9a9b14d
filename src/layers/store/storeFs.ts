/**
 * Failures of the store's file I/O (through `@effect/platform`'s FileSystem: every failure is a
 * PlatformError naming the path and the OS reason) turned into the store's typed errors — never a defect,
 * never "bug in llmspell" — and the free-space facts a full disk is reported with.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as Effect from "effect/Effect"
// node:fs for statfs and rmdir: FileSystem has no call for free space, and its remove() of a folder is
// recursive (it would delete what a concurrent pull just put there)
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Option from "effect/Option"
import { DiskFull, DownloadFailed, ModelStoreUnusable } from "../../domain/Errors.js"
import type { StoreRoot } from "../../services/ModelStore.js"

/** The OS error code (`ENOSPC`, `EACCES`…) of a PlatformError or a node error. */
export const osCode = (e: unknown): string | undefined => {
  if (typeof e !== "object" || e === null) return undefined
  const own = (e as { code?: unknown }).code
  if (typeof own === "string") return own
  const cause = (e as { cause?: { code?: unknown } }).cause?.code
  return typeof cause === "string" ? cause : undefined
}

/** A failed store operation as DownloadFailed: the operation, the path and the OS reason. */
export const storeIoError = (store: StoreRoot, operation: string) => (e: PlatformError) =>
  new DownloadFailed({
    reason: `${operation} in ${store.directory} failed: ${e.message}`,
    suggestion: "check that model_directory (LLMSPELL_MODELS_DIR) is writable"
  })

/** Why a directory is unusable, in words, from an OS error code. */
export const unusableReason = (code: string | undefined, fallback: string) =>
  (code === "ENOTDIR"
    ? "it (or a folder above it) is a file, not a directory"
    : code === "EROFS"
    ? "it is on a read-only file system"
    : code === "EACCES" || code === "EPERM"
    ? "permission denied"
    : code === "ENOENT"
    ? "it cannot be created there"
    : code === "ENOSPC"
    ? "the disk is full"
    : "it is not usable") + ` (${code ?? fallback})`

/** A store directory that refused a new file: ModelStoreUnusable naming it and the OS reason. */
export const unusable = (store: StoreRoot) => (e: PlatformError | NodeJS.ErrnoException) => {
  const code = osCode(e)
  // the directory exists (it was just checked): ENOENT here means it takes no new files (`/proc/self`)
  return new ModelStoreUnusable({
    directory: store.directory,
    reason: code === "ENOENT" ? `it refuses new files (${code})` : unusableReason(code, e.message)
  })
}

/** `stat`, with a missing path (or any path that cannot be inspected) as None. */
export const statOption = (file: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.stat(file)).pipe(Effect.option)

/** True for a regular file. */
export const isFile = (info: Option.Option<FileSystem.File.Info>): info is Option.Some<FileSystem.File.Info> =>
  Option.isSome(info) && info.value.type === "File"

/** Free bytes for an unprivileged writer on the disk holding `dir` (Infinity when unknown). */
export const freeBytes = (dir: string): Effect.Effect<number> =>
  Effect.promise(() => fs.statfs(dir).then((s) => s.bavail * s.bsize, () => Number.POSITIVE_INFINITY))

/** The typed failure of a write that hit ENOSPC: how much of `size` is still missing at `file`, and what is free. */
export const diskFull = (file: string, size: number): Effect.Effect<never, DiskFull, FileSystem.FileSystem> =>
  Effect.flatMap(
    Effect.all([
      Effect.map(statOption(file), (info) => (Option.isSome(info) ? Number(info.value.size) : 0)),
      freeBytes(path.dirname(file))
    ]),
    ([written, free]) => new DiskFull({ path: file, neededBytes: Math.max(0, size - written), availableBytes: free })
  )

/** Removes a folder only if it is empty (rmdir); false when it is not, or cannot be removed. */
export const removeEmptyDirectory = (dir: string): Effect.Effect<boolean> =>
  Effect.promise(() => fs.rmdir(dir).then(() => true, () => false))

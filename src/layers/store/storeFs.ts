/**
 * File I/O of llmspell's store through `@effect/platform`'s FileSystem: every failure is a PlatformError
 * naming the path and the OS reason, turned here into the store's typed errors (never a defect, never
 * "bug in llmspell"). `nodeFileSystem` is Node's implementation, for callers built without a layer.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { DownloadFailed, ModelStoreUnusable } from "../../domain/Errors.js"
import type { StoreRoot } from "../../services/ModelDownloader.js"

/** Node's FileSystem service, for code constructed without one in its context (`make` of a layer). */
export const nodeFileSystem: FileSystem.FileSystem = Effect.runSync(
  Effect.provide(FileSystem.FileSystem, NodeFileSystem.layer)
)

const osCode = (e: PlatformError): string | undefined =>
  e._tag === "SystemError" ? (e.cause as { code?: string } | undefined)?.code : undefined

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
export const unusable = (store: StoreRoot) => (e: PlatformError) => {
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

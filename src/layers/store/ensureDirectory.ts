/**
 * `mkdir -p` that always ends: Node's `fs.mkdir(dir, { recursive: true })` (and so FileSystem's
 * `makeDirectory({ recursive: true })`) loops forever when mkdir answers ENOENT for a directory whose
 * parent exists (`/proc/nope`: measured, it never returns and ignores SIGINT). This walks up to the first
 * existing ancestor and creates each missing directory once, so every failure is one OS error (ENOENT,
 * ENOTDIR, EACCES, EROFS…) naming the directory it happened in.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { type PlatformError, SystemError } from "@effect/platform/Error"
import * as Effect from "effect/Effect"
// node:fs for `ensureDirectory`, which runs inside proper-lockfile's promise callbacks (see there)
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** Creates `dir` and its missing parents through FileSystem; fails with the PlatformError of the first step that fails. */
export const makeDirectories = (dir: string): Effect.Effect<void, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fileSystem = yield* FileSystem.FileSystem
    const missing: Array<string> = []
    let current = path.resolve(dir)
    for (;;) {
      const info = yield* fileSystem.stat(current).pipe(Effect.either)
      if (info._tag === "Right") {
        if (info.right.type !== "Directory") {
          return yield* new SystemError({
            reason: "BadResource",
            module: "FileSystem",
            method: "makeDirectory",
            pathOrDescriptor: current,
            description: `ENOTDIR: ${current} is not a directory`,
            cause: Object.assign(new Error(`ENOTDIR: ${current} is not a directory`), { code: "ENOTDIR" })
          })
        }
        break
      }
      if (info.left._tag !== "SystemError" || info.left.reason !== "NotFound") return yield* info.left
      missing.push(current)
      const parent = path.dirname(current)
      if (parent === current) break
      current = parent
    }
    for (const d of missing.reverse()) {
      yield* fileSystem.makeDirectory(d).pipe(
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "AlreadyExists", () => Effect.void)
      )
    }
  })

/**
 * The same for code running inside a library's callbacks (proper-lockfile's): node:fs, since those
 * callbacks are plain promises; rejects with the OS error of the first step that fails.
 */
export const ensureDirectory = async (dir: string): Promise<void> => {
  const missing: Array<string> = []
  let current = path.resolve(dir)
  for (;;) {
    const stat = await fs.stat(current).catch((e: NodeJS.ErrnoException) => e)
    if (!(stat instanceof Error)) {
      if (!stat.isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: ${current} is not a directory`), { code: "ENOTDIR", path: current })
      }
      break
    }
    if (stat.code !== "ENOENT") throw stat
    missing.push(current)
    const parent = path.dirname(current)
    if (parent === current) break
    current = parent
  }
  for (const d of missing.reverse()) {
    await fs.mkdir(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e
    })
  }
}

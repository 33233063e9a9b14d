/**
 * `mkdir -p` that always ends: Node's `fs.mkdir(dir, { recursive: true })` loops forever when mkdir answers
 * ENOENT for a directory whose parent exists (`/proc/nope`: measured, it never returns and ignores SIGINT).
 * This walks up to the first existing ancestor and creates each missing directory once, so every failure is
 * one OS error (ENOENT, ENOTDIR, EACCES, EROFS…) naming the directory it happened in.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** Creates `dir` and its missing parents; rejects with the OS error of the first step that fails. */
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

/**
 * Builds dist/lib (tsc) if it is missing, for tests that use the package as an outside program
 * would; `npm test` builds it before vitest runs, so this only matters for a single test file run
 * in a fresh clone.
 */
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { root } from "./runCli.js"

export const ensureLibBuilt = () => {
  if (existsSync(join(root, "dist", "lib", "index.js"))) return
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"], {
    cwd: root,
    stdio: "ignore"
  })
}

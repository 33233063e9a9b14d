/**
 * What `npm install llmspell` gets: the Effect packages a program composes with are peer dependencies
 * (one `effect` shared by the program and llmspell), everything the built files import at run time is
 * a dependency or a peer, and the tarball carries the license and the JSON docs.
 */
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { ensureLibBuilt } from "./support/ensureLib.js"
import { ensureBuilt, root } from "./support/runCli.js"

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  files: Array<string>
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
  peerDependencies: Record<string, string>
}
const installed = (name: string) =>
  JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as {
    version: string
    peerDependencies?: Record<string, string>
  }

/** `1.2.3` satisfies `^a.b.c` (npm's caret: the left-most non-zero part is fixed). */
const satisfiesCaret = (version: string, range: string): boolean => {
  const m = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range)
  if (!m) throw new Error(`not a caret range: ${range}`)
  const want = m.slice(1).map(Number) as [number, number, number]
  const have = version.split(".").map(Number) as [number, number, number]
  const fixed = want[0] !== 0 ? 1 : want[1] !== 0 ? 2 : 3
  for (let i = 0; i < fixed; i++) if (have[i] !== want[i]) return false
  for (let i = 0; i < 3; i++) if (have[i] !== want[i]) return have[i]! > want[i]!
  return true
}

/** The package a bare specifier names (`effect/Effect` → `effect`, `@effect/ai/X` → `@effect/ai`). */
const packageOf = (specifier: string) =>
  specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]))

/** Every bare package a built JS file imports, statically or with import(). */
const importsOf = (file: string): Set<string> => {
  // Comment lines are not imports: bundled @effect packages keep JSDoc examples (`import { AiError } from "@effect/ai"`).
  const text = readFileSync(file, "utf8").replace(/^\s*(\*|\/\/|\/\*\*).*$/gm, "")
  const found = new Set<string>()
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)["']([^"'.][^"']*)["']/g)) {
    const spec = m[1]!
    if (!builtins.has(spec) && !builtins.has(spec.split("/")[0]!)) found.add(packageOf(spec))
  }
  return found
}

const jsFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith(".js") ? [join(dir, e.name)] : []
  )

beforeAll(() => {
  ensureBuilt()
  ensureLibBuilt()
})

describe("package.json", () => {
  // The store's FileSystem (@effect/platform, -node), the cloud backends' HttpClient and the server protocol (@effect/rpc) must share the program's effect instance: peers.
  it("effect, @effect/ai, @effect/platform(-node) and @effect/rpc are peer dependencies, with the dev copies in devDependencies", () => {
    for (const peer of ["effect", "@effect/ai", "@effect/platform", "@effect/platform-node", "@effect/rpc"]) {
      expect(pkg.peerDependencies[peer], peer).toBeDefined()
      expect(pkg.dependencies[peer], `${peer} must not also be a dependency (npm would install a second copy)`)
        .toBeUndefined()
      expect(pkg.devDependencies[peer], peer).toBe(pkg.peerDependencies[peer])
      expect(satisfiesCaret(installed(peer).version, pkg.peerDependencies[peer]!), peer).toBe(true)
    }
  })

  it("peer ranges are coherent: every Effect package we install accepts the lowest effect we accept", () => {
    const lowestEffect = pkg.peerDependencies["effect"]!.slice(1)
    for (const name of [...Object.keys(pkg.peerDependencies), ...Object.keys(pkg.devDependencies)]) {
      const wants = installed(name).peerDependencies?.["effect"]
      if (wants !== undefined) expect(satisfiesCaret(lowestEffect, wants), `${name} wants effect ${wants}`).toBe(true)
    }
  })

  it("everything the built library imports is a dependency or a peer dependency", () => {
    const runtime = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)])
    const missing = jsFiles(join(root, "dist", "lib")).flatMap((file) =>
      [...importsOf(file)].filter((p) => !runtime.has(p)).map((p) => `${file.slice(root.length)}: ${p}`)
    )
    expect(missing).toEqual([])
  })

  it("the CLI bundle imports at run time only dependencies (what it bundles may stay in devDependencies)", () => {
    const imports = [...importsOf(join(root, "dist", "cli.js"))]
    expect(imports.filter((p) => pkg.dependencies[p] === undefined)).toEqual([])
  })

  it("the tarball has the license, the JSON docs, the README and the build, and no sources or tests", () => {
    const [packed] = JSON.parse(
      execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" })
    ) as [{ files: Array<{ path: string }> }]
    const paths = packed.files.map((f) => f.path)
    expect(paths).toEqual(
      expect.arrayContaining(["LICENSE", "README.md", "docs/json.md", "package.json", "dist/cli.js", "dist/lib/index.js", "dist/ui/index.html"])
    )
    expect(paths.filter((p) => p.startsWith("src/") || p.startsWith("test/"))).toEqual([])
    expect(readFileSync(join(root, "LICENSE"), "utf8")).toMatch(/^MIT License\n\nCopyright \(c\) 2026 llmspell contributors\n/)
  })
})

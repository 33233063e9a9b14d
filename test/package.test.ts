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
import { runtimeLine } from "./support/summaryReporter.js"

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  engines: { node: string }
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

/** A version as three numbers. */
const versionOf = (text: string): [number, number, number] => {
  const m = /^v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/.exec(text.trim())
  if (!m) throw new Error(`not a version: ${text}`)
  const n = (s: string | undefined) => (s === undefined || s === "x" || s === "*" ? 0 : Number(s))
  return [n(m[1]), n(m[2]), n(m[3])]
}
const compare = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => (a[0]! - b[0]!) || (a[1]! - b[1]!) || (a[2]! - b[2]!)

/**
 * Whether a version satisfies an npm range of the forms engines fields use: `||` of space-separated
 * comparators (`>=`, `>`, `<=`, `<`, `=`, `^`, `~`, a bare or x-version, `*`). Anything else throws,
 * so a new form is noticed rather than misread.
 */
const satisfies = (version: string, range: string): boolean => {
  const v = versionOf(version)
  return range.split("||").some((alternative) =>
    alternative.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, "$1").split(/\s+/).filter((c) => c.length > 0).every((comparator) => {
      if (comparator === "*" || comparator === "x") return true
      const m = /^(>=|<=|>|<|=|\^|~)?(.+)$/.exec(comparator)!
      const op = m[1] ?? "="
      const parts = m[2]!.replace(/^v/, "").split(".")
      const w = versionOf(m[2]!)
      const c = compare(v, w)
      switch (op) {
        case ">=": return c >= 0
        case ">": return c > 0
        case "<=": return c <= 0
        case "<": return c < 0
        case "^": return c >= 0 && (w[0] !== 0 ? v[0] === w[0] : w[1] !== 0 ? v[0] === 0 && v[1] === w[1] : v[0] === 0 && v[1] === 0 && v[2] === w[2])
        case "~": return c >= 0 && v[0] === w[0] && v[1] === w[1]
        default:
          // `=1.2.3`, or an x-range (`20`, `20.x`): every part given must match
          return parts.every((p, i) => p === "x" || p === "*" || Number(p) === v[i])
      }
    })
  )
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
  // `__llmspellImport("…")`: the CLI bundle's import() of an external library (scripts/build.mjs)
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\b__llmspellImport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)["']([^"'.][^"']*)["']/g)) {
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
  // The README and engines say which Node runs llmspell and its tests; every package the lockfile
  // installs (dev tools included: `npm ci && npm test` is the README's promise) must accept each
  // Node release line's lowest version the engines admit, and the Node running this test.
  it("every installed package accepts every Node version package.json's engines admit (openai 7 wanted Node ≥ 22)", () => {
    const lowest = ["20.0.0", "20.19.0", "20.20.0", "22.0.0", "22.12.0", "24.0.0", "26.0.0"].filter((v) => satisfies(v, pkg.engines.node))
    expect(lowest.length).toBeGreaterThan(0)
    expect(satisfies(process.version, pkg.engines.node), `this Node (${process.version}) is one engines admits`).toBe(true)
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
      packages: Record<string, { version?: string; engines?: { node?: string } | Array<string> }>
    }
    const refusing: Array<string> = []
    for (const [path, entry] of Object.entries(lock.packages)) {
      const wants = Array.isArray(entry.engines) ? undefined : entry.engines?.node
      if (path === "" || wants === undefined) continue
      for (const node of [...lowest, process.version]) {
        if (!satisfies(node, wants)) refusing.push(`${path.replace(/^.*node_modules\//, "")}@${entry.version} wants node ${wants}, not ${node}`)
      }
    }
    expect(refusing).toEqual([])
  })

  it("npm test and .ci/run say which Node and npm they ran on", () => {
    expect(runtimeLine({ npm_config_user_agent: "npm/11.19.1 node/v20.20.2 linux x64 workspaces/false" }))
      .toBe(`node ${process.version}, npm 11.19.1, ${process.platform}-${process.arch}`)
    const ci = readFileSync(join(root, ".ci", "run"), "utf8")
    expect(ci).toMatch(/echo .*\$\(node --version\).*\$\(npm --version\)[\s\S]*npm ci\nnpm test\n/)
  })

  it("the range checker reads engines as npm does", () => {
    expect(satisfies("20.19.0", "^20.19.0 || >=22.12.0")).toBe(true)
    expect(satisfies("21.7.0", "^20.19.0 || >=22.12.0")).toBe(false)
    expect(satisfies("22.11.0", "^20.19.0 || >=22.12.0")).toBe(false)
    expect(satisfies("20.18.0", ">= 20.18.1")).toBe(false)
    expect(satisfies("v20.20.2", ">=14")).toBe(true)
    expect(satisfies("20.0.0", ">=22.0.0")).toBe(false)
    expect(satisfies("18.0.0", "16 || 18")).toBe(true)
    expect(satisfies("12.22.0", "^12.22.0 || ^14.17.0 || >=16.0.0")).toBe(true)
  })

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

  it("the CLI (the executable and its bundle) imports at run time only dependencies (what it bundles may stay in devDependencies)", () => {
    const imports = [...importsOf(join(root, "dist", "cli.js")), ...importsOf(join(root, "dist", "cli.cjs"))]
    // A bundled package's optional peers (ws tries bufferutil and utf-8-validate in a try/catch) are not needed.
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
      packages: Record<string, { peerDependenciesMeta?: Record<string, { optional?: boolean }> }>
    }
    const optionalPeers = new Set(
      Object.values(lock.packages).flatMap((p) => Object.entries(p.peerDependenciesMeta ?? {}).filter(([, m]) => m.optional).map(([n]) => n))
    )
    expect(imports.filter((p) => pkg.dependencies[p] === undefined && !optionalPeers.has(p))).toEqual([])
    // the libraries the bundle leaves out are imported, and they are dependencies
    expect(imports).toEqual(expect.arrayContaining(["node-llama-cpp", "ollama", "@huggingface/hub"]))
  })

  it("the tarball has the license, the JSON docs, the README and the build, and no sources or tests", () => {
    const [packed] = JSON.parse(
      execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" })
    ) as [{ files: Array<{ path: string }> }]
    const paths = packed.files.map((f) => f.path)
    expect(paths).toEqual(
      expect.arrayContaining([
        "LICENSE",
        "README.md",
        "docs/json.md",
        "package.json",
        "dist/cli.js",
        "dist/cli.cjs",
        "dist/cli.cache",
        "dist/help.json",
        "dist/lib/index.js",
        "dist/ui/index.html"
      ])
    )
    expect(paths.filter((p) => p.startsWith("src/") || p.startsWith("test/"))).toEqual([])
    expect(readFileSync(join(root, "LICENSE"), "utf8")).toMatch(/^MIT License\n\nCopyright \(c\) 2026 llmspell contributors\n/)
  })
})

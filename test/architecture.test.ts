/**
 * docs/architecture.md is the map of src/: every file and folder it names must exist, so the page
 * stays true as the code moves (a rename that forgets the map fails here).
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"

const root = join(import.meta.dirname, "..")
const page = readFileSync(join(root, "docs/architecture.md"), "utf8")

/** Every file under a folder, by its name alone. */
const namesUnder = (dir: string): Set<string> => {
  const names = new Set<string>()
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const full = join(d, entry)
      if (statSync(full).isDirectory()) walk(full)
      else names.add(entry)
    }
  }
  walk(join(root, dir))
  return names
}

describe("docs/architecture.md", () => {
  const quoted = [...page.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!)

  it("every path it names exists", () => {
    const paths = quoted.filter((q) => /^(src|test|scripts|docs|dist)\//.test(q) && !q.startsWith("dist/"))
    expect(paths.length).toBeGreaterThan(30)
    expect(paths.filter((p) => !existsSync(join(root, p.replace(/\/$/, ""))))).toEqual([])
  })

  it("every source file it names by its bare name exists under src/", () => {
    const names = namesUnder("src")
    const bare = quoted.filter((q) => /^[A-Za-z]+\.tsx?$/.test(q))
    expect(bare.length).toBeGreaterThan(30)
    expect(bare.filter((n) => !names.has(n))).toEqual([])
  })

  it("every folder of src/layers is on the map", () => {
    const folders = readdirSync(join(root, "src/layers")).filter((e) => statSync(join(root, "src/layers", e)).isDirectory())
    expect(folders.filter((f) => !page.includes(`layers/${f}/`))).toEqual([])
  })
})

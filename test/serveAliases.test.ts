/**
 * `[serve.aliases]`: the matching rules (exact first, then globs in the order written), the config
 * table (entries for `config show`, problems for a bad spec or shape, a warning for unknown keys
 * under `[serve]`), and `llmspell config show` listing the aliases with their file.
 */
import * as Either from "effect/Either"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type ConfigInput, resolveConfig } from "../src/domain/ConfigSchema.js"
import { findAlias, isGlob, type ModelAlias, resolveAlias } from "../src/domain/ModelAliases.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const FILE = "/etc/llmspell/test.toml"
const resolve = (text: string, extra: Partial<ConfigInput> = {}) =>
  resolveConfig({ home: "/home/tester", env: {}, file: { path: FILE, text }, ...extra })

describe("alias matching", () => {
  const aliases: ReadonlyArray<ModelAlias> = [
    { name: "claude-*", spec: "coder@gguf" },
    { name: "claude-haiku-?-5", spec: "small@gguf" },
    { name: "claude-haiku-4-5", spec: "exact@ollama" },
    { name: "gpt.4", spec: "dot@gguf" }
  ]

  it("an exact alias wins over globs listed before it; then the first glob that matches", () => {
    expect(resolveAlias(aliases, "claude-haiku-4-5")).toBe("exact@ollama")
    expect(resolveAlias(aliases, "claude-haiku-3-5")).toBe("coder@gguf")
    expect(resolveAlias(aliases, "claude-sonnet-4-6")).toBe("coder@gguf")
  })

  it("a glob matches the whole name; `?` is one character; other characters are literal", () => {
    const only: ReadonlyArray<ModelAlias> = [{ name: "claude-haiku-?-5", spec: "small@gguf" }, { name: "gpt.4", spec: "dot@gguf" }]
    expect(findAlias(only, "claude-haiku-3-5")?.spec).toBe("small@gguf")
    expect(findAlias(only, "claude-haiku-35-5")).toBeUndefined()
    expect(findAlias(only, "xclaude-haiku-3-5")).toBeUndefined()
    expect(findAlias(only, "gptx4")).toBeUndefined()
    expect(resolveAlias(only, "tiny.gguf@gguf")).toBe("tiny.gguf@gguf")
    expect(isGlob("a*")).toBe(true)
    expect(isGlob("a.b")).toBe(false)
  })
})

describe("[serve.aliases] in the config", () => {
  it("aliases in file order, each an entry of config show with its source", () => {
    const config = Either.getOrThrow(resolve(`
[serve.aliases]
"claude-*" = "qwen3-coder@gguf"
small-fast = "llama3.2:3b@ollama"
`))
    expect(config.serveAliases).toEqual([
      { name: "claude-*", spec: "qwen3-coder@gguf" },
      { name: "small-fast", spec: "llama3.2:3b@ollama" }
    ])
    expect(config.entries.find((e) => e.key === "serve.aliases.\"claude-*\"")).toMatchObject({ value: "qwen3-coder@gguf", source: FILE })
    expect(config.entries.find((e) => e.key === "serve.aliases.small-fast")).toMatchObject({ value: "llama3.2:3b@ollama", source: FILE })
  })

  it("no aliases: none, and no entry", () => {
    const config = Either.getOrThrow(resolve(""))
    expect(config.serveAliases).toBeUndefined()
    expect(config.entries.some((e) => e.key.startsWith("serve."))).toBe(false)
  })

  it("a target that is no spec, a value that is not a string, and a table of the wrong shape are problems naming the key", () => {
    const bad = resolve(`
[serve.aliases]
"claude-*" = ""
small = 3
wrong = "x@nowhere"
`)
    expect(Either.isLeft(bad)).toBe(true)
    const problems = Either.isLeft(bad) ? bad.left.problems : []
    expect(problems.some((p) => p.includes("serve.aliases.\"claude-*\""))).toBe(true)
    expect(problems.some((p) => p.includes("serve.aliases.small") && p.includes("got 3"))).toBe(true)
    expect(problems.some((p) => p.includes("serve.aliases.wrong"))).toBe(true)
    const notTable = resolve(`[serve]\naliases = "claude"\n`)
    expect(Either.isLeft(notTable) && notTable.left.problems.some((p) => p.includes("serve.aliases: must be a table"))).toBe(true)
  })

  it("an unknown key under [serve] is a warning, not an error", () => {
    const config = Either.getOrThrow(resolve(`[serve]\nport = 1234\n`))
    expect(config.warnings.some((w) => w.includes("serve.port: unknown key"))).toBe(true)
  })

  it("from an embedding object (code) as from a file", () => {
    const config = Either.getOrThrow(resolveConfig({
      home: "/home/tester",
      env: {},
      object: { value: { serve: { aliases: { "gpt-4o": "tiny@gguf" } } } }
    }))
    expect(config.serveAliases).toEqual([{ name: "gpt-4o", spec: "tiny@gguf" }])
  })
})

describe("llmspell config show", () => {
  let home: string
  beforeAll(() => {
    ensureBuilt()
    home = mkdtempSync(join(tmpdir(), "llmspell-aliases-"))
  })
  afterAll(() => rmSync(home, { recursive: true, force: true }))

  it("lists each alias with the file it came from", async () => {
    writeFileSync(join(home, "llmspell.toml"), `[serve.aliases]\n"claude-*" = "qwen3-coder@gguf"\n`)
    const shown = await runCli(["config", "show"], { cwd: home, env: isolatedEnv(home) })
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(/serve\.aliases\."claude-\*"\s+"?qwen3-coder@gguf"?\s+.*llmspell\.toml/)
  })
})

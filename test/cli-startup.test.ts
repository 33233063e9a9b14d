/**
 * How the executable starts (src/cli/launch.ts): `--help` from the text the build rendered, which
 * must be exactly what the CLI renders; everything else through the bundle and the code cache the
 * build wrote, which this Node must accept. Start-up time itself is a benchmark (bench:startup), not
 * a test.
 */
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { type CommandNode, commandTree } from "../src/cli/Cli.js"
import { renderHelp } from "../src/cli/Help.js"
import { compileBundle, helpColor, helpFor, type HelpTexts } from "../src/cli/launch.js"
import { unusedPort } from "./support/ports.js"
import { ensureBuilt, isolatedEnv, root, runCli } from "./support/runCli.js"

const dist = join(root, "dist")
/** A scratch HOME and working directory: nothing may be written into dist/. */
const home = mkdtempSync(join(tmpdir(), "llmspell-startup-"))
const paths: Array<ReadonlyArray<CommandNode>> = []
const collect = (path: ReadonlyArray<CommandNode>): void => {
  paths.push(path)
  for (const child of path[path.length - 1]!.children) collect([...path, child])
}
collect([commandTree])
const keyOf = (path: ReadonlyArray<CommandNode>) => path.slice(1).map((n) => n.name).join(" ")

let texts: HelpTexts
beforeAll(() => {
  ensureBuilt()
  texts = JSON.parse(readFileSync(join(dist, "help.json"), "utf8")) as HelpTexts
})

describe("--help without loading the CLI", () => {
  it("the build rendered every command path, plain and coloured, exactly as the CLI renders it", () => {
    expect(Object.keys(texts).sort()).toEqual(paths.map(keyOf).sort())
    for (const path of paths) {
      expect(texts[keyOf(path)]!.plain, keyOf(path)).toBe(renderHelp(path, { color: false }))
      expect(texts[keyOf(path)]!.color, keyOf(path)).toBe(renderHelp(path, { color: true }))
    }
  })

  it("helpFor answers only a command path followed by one help flag; anything else is the CLI's", () => {
    const fake: HelpTexts = { "": { plain: "root", color: "ROOT" }, "model list": { plain: "list", color: "LIST" } }
    expect(helpFor(["--help"], fake, false)).toBe("root")
    expect(helpFor(["-h"], fake, true)).toBe("ROOT")
    expect(helpFor(["model", "list", "--help"], fake, false)).toBe("list")
    for (const args of [[], ["model", "list"], ["--json", "--help"], ["model", "lsit", "--help"], ["model", "list", "-m", "x", "--help"], ["--help", "model"]]) {
      expect(helpFor(args, fake, false), args.join(" ")).toBeUndefined()
    }
    expect(helpColor(true, {})).toBe(true)
    expect(helpColor(true, { NO_COLOR: "1" })).toBe(false)
    expect(helpColor(true, { TERM: "dumb" })).toBe(false)
    expect(helpColor(false, {})).toBe(false)
  })

  it("dist/cli.js prints it, and a help request it does not answer itself gets the same text from the CLI", async () => {
    const env = isolatedEnv(home)
    for (const args of [["--help"], ["model", "-h"], ["model", "list", "--help"], ["serve", "--help"]]) {
      const result = await runCli(args, { cwd: home, env })
      expect(result.code, args.join(" ")).toBe(0)
      expect(result.stdout, args.join(" ")).toBe(texts[args.slice(0, -1).join(" ")]!.plain)
      expect(result.stderr).toBe("")
    }
    // global flags first: the CLI itself answers, with the same text
    const full = await runCli(["--json", "model", "list", "--help"], { cwd: home, env })
    expect(full.code).toBe(0)
    expect(full.stdout).toBe(texts["model list"]!.plain)
  }, 60_000)
})

describe("the bundle and its code cache", () => {
  it("this Node accepts the code cache the build wrote (a rejected one would cost every start a full compile)", () => {
    const compiled = compileBundle(join(dist, "cli.cjs"), join(dist, "cli.cache"))
    expect(compiled.cacheRejected).toBe(false)
  })

  it("a command that imports an external library works from the cached bundle, with nothing extra on stderr", async () => {
    // `model status` imports ollama and node-llama-cpp with import(), which a cached script lacks in Node 20
    const result = await runCli(["model", "status", "--json"], {
      cwd: home,
      env: isolatedEnv(home, { OLLAMA_HOST: `127.0.0.1:${await unusedPort()}`, LLMSPELL_MODELS_DIR: join(home, "models") })
    })
    expect(result.code, result.stderr).toBe(0)
    const status = JSON.parse(result.stdout) as { backends: Array<{ instance: string; available: boolean; error?: { message: string } }> }
    const ollama = status.backends.find((b) => b.instance === "ollama")!
    expect(ollama.error?.message).not.toContain("could not be loaded")
    expect(status.backends.find((b) => b.instance === "gguf")!.available).toBe(true)
    expect(result.stderr).toBe("")
  }, 60_000)
})

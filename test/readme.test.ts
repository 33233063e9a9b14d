/**
 * The README's code blocks run here, so they cannot rot. Every ts/js/sh block has a tag on the line
 * above its fence, `<!-- readme-test: … -->`:
 *
 * - `run <name> [<file>]`: a program. It is written to a scratch project whose node_modules has
 *   `llmspell` as a symlink to this repository (so `import … from "llmspell"` goes through
 *   package.json's `exports` to the built dist/lib) and the peer dependencies a user installs, then
 *   run with the env pointing at the fake servers: `.js` with plain `node` (so the syntax is what
 *   Node 20 runs), `.ts` with `node --import tsx`. It must exit 0 and pass CHECKS[name]. With
 *   `<file>`, the block must also be that file (minus its leading comment), which `npm test`
 *   typechecks.
 * - `vitest <name>`: a test file, run by vitest in the scratch project; it must pass.
 * - `commands <name>`: a shell block. Every `llmspell`/`npx llmspell` command runs as written through
 *   the package's bin (node_modules/.bin/llmspell → dist/cli.js) against the fakes and must exit 0;
 *   npm commands are checked against package.json and the lockfile instead of run (see npmCheck):
 *   `npm ci` against the lockfile, `npm pack` and every tarball installed against the name npm pack
 *   gives, `npm install` of a peer against its declared range; `npm install llmspell` fails the
 *   test while the package is not on the registry.
 * - `illustrative: <reason>`: not run; the reason is required.
 *
 * An untagged ts/js/sh block, an unknown tag, a command the test cannot place, a CHECKS entry that
 * no block uses: each fails. toml blocks must parse, json blocks must parse (whole or per line).
 *
 * Model names: no block is rewritten. The fakes serve every model the README names under the
 * README's name (SERVED below): the fake hub's repos hold the suite's tiny llama GGUF (written by
 * test/fixtures/ggufWriter.ts) under the file names the real repos use, and the fake Ollama can
 * pull `qwen2.5:0.5b`. Blocks run in README order, in one environment, as a reader would run them:
 * a model pulled by one block is there for the next.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { parse as parseToml } from "smol-toml"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeHub, startFakeHub } from "./fixtures/fakeHub.js"
import { fakeLayer, fakeModel, type FakeOllama, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { ensureLibBuilt } from "./support/ensureLib.js"
import { type CodeBlock, codeBlocks, type ShellCommand, shellCommands } from "./support/readmeBlocks.js"
import { type CliResult, ensureBuilt, isolatedEnv, root, runCli } from "./support/runCli.js"

const readme = readFileSync(join(root, "README.md"), "utf8")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  name: string
  version: string
  engines: { node: string }
  bin: Record<string, string>
  scripts: Record<string, string>
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
  peerDependencies: Record<string, string>
}
const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
  lockfileVersion: number
  packages: Record<string, { version?: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string>; peerDependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }>
}

/** What the fakes serve for each model name the README uses (README name → what stands behind it). */
const SERVED = {
  hub: {
    // `bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M` in Quick start
    "bartowski/Llama-3.2-1B-Instruct-GGUF": "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
    // the catalog alias `qwen2.5:0.5b` (default backend gguf) resolves to this repo's Q4_K_M file
    "bartowski/Qwen2.5-0.5B-Instruct-GGUF": "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"
  },
  // `qwen2.5:0.5b@ollama`: pullable from the fake Ollama, which answers every chat with this text
  ollama: { pullable: "qwen2.5:0.5b", answer: "Hello from the fake Ollama" }
} as const

/** Output of the commands of a `commands` block that ran (npm commands are checked, not run). */
type Ran = ReadonlyArray<{ readonly command: ShellCommand; readonly result: CliResult }>

const ran = (results: Ran, args: string) => {
  const found = results.find((r) => r.command.argv.join(" ").endsWith(args))
  if (!found) throw new Error(`no command ending in "${args}" ran`)
  return found.result
}

/** Block-specific assertions, keyed by the tag's name; `run` and `vitest` blocks must have one. */
const CHECKS: Record<string, (result: CliResult, ran: Ran) => void> = {
  "quick-start-clone": (_, results) => {
    const status = ran(results, "model status")
    expect(status.stdout).toMatch(/ollama/)
    expect(status.stdout).toMatch(/gguf/)
  },
  "quick-start": (_, results) => {
    expect(ollama.state.models.map((m) => m.name)).toContain("qwen2.5:0.5b")
    expect(ran(results, "Say hello").stdout.length).toBeGreaterThan(0)
    const list = ran(results, "model list").stdout
    expect(list).toMatch(/qwen2\.5:0\.5b/)
    expect(list).toMatch(/Llama-3\.2-1B-Instruct/)
    expect(ran(results, "config show").stdout).toMatch(/env OLLAMA_HOST/)
  },
  "library-status": (result) => {
    // Every backend's status line, then the streamed answer (ModelNotFound would only be printed).
    expect(result.stdout).toContain(`ollama ollama ${ollama.url}`)
    expect(result.stdout).toMatch(/^gguf gguf .* true$/m)
    expect(result.stdout).toContain(SERVED.ollama.answer)
  },
  "language-model": (result) => {
    // The tiny model's words are noise; that generateText answered, through the gguf store, is the point.
    expect(result.stdout.endsWith("\n")).toBe(true)
    expect(result.stderr).toBe("")
  },
  "testing": (result) => {
    expect(result.stdout).toMatch(/1 passed/)
  },
  "agent": (result) => {
    expect(result.stdout).toMatch(/1 passed/)
  },
  "promise": (result) => {
    expect(result.stderr).toMatch(/^done /m)
    expect(result.stdout).toMatch(/completionTokens: [1-9]/)
  }
}

let ollama: FakeOllama
let hub: FakeHub
const work = mkdtempSync(join(tmpdir(), "llmspell-readme-"))
/** The scratch project a README reader would have: llmspell and its peers installed. */
const project = join(work, "project")

const env = (): Record<string, string> =>
  isolatedEnv(work, {
    OLLAMA_HOST: ollama.url,
    HF_ENDPOINT: hub.url,
    LLMSPELL_MODELS_DIR: join(work, "models"),
    LLMSPELL_GGUF_THREADS: "1"
  })

const link = (name: string, target: string) => {
  const at = join(project, "node_modules", name)
  mkdirSync(dirname(at), { recursive: true })
  symlinkSync(target, at)
}

const makeProject = () => {
  mkdirSync(project, { recursive: true })
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "readme-reader", private: true, type: "module" }))
  link("llmspell", root)
  // What the reader installs next to llmspell: its peers, and the tools the blocks use.
  for (const dep of [...Object.keys(pkg.peerDependencies), "@effect/vitest", "vitest", "tsx"]) {
    link(dep, join(root, "node_modules", dep))
  }
  for (const [name, path] of Object.entries(pkg.bin)) link(join(".bin", name), join("..", "llmspell", path))
}

let packed: string | undefined
/** The file name `npm pack` gives this package's tarball (asked once, without packing). */
const packedName = (): string => {
  if (packed === undefined) {
    const [info] = JSON.parse(
      execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" })
    ) as [{ filename: string }]
    packed = info.filename
  }
  return packed
}

/** Checks an npm/npx command against package.json and the lockfile; these are not run here. */
const npmCheck = (command: ShellCommand) => {
  const [tool, sub, ...rest] = command.argv
  if (tool === "npx") {
    // `npx vitest …` and the like: a bin the dev install provides.
    expect(readFileSync(join(root, "node_modules", ".bin", sub!)).length, command.text).toBeGreaterThan(0)
    return
  }
  expect(tool, command.text).toBe("npm")
  if (sub === "ci") {
    // npm ci fails when the lockfile and package.json disagree.
    expect(lock.lockfileVersion).toBeGreaterThanOrEqual(2)
    const rootEntry = lock.packages[""]!
    expect(rootEntry.dependencies).toEqual(pkg.dependencies)
    expect(rootEntry.devDependencies).toEqual(pkg.devDependencies)
    expect(rootEntry.peerDependencies).toEqual(pkg.peerDependencies)
  } else if (sub === "test") {
    expect(pkg.scripts["test"]).toBeDefined()
  } else if (sub === "pack") {
    // What `npm pack` writes is what the install blocks install (llmspell is not on the registry yet).
    expect(rest, command.text).toEqual([])
    expect(packedName()).toBe(`${pkg.name}-${pkg.version}.tgz`)
  } else if (sub === "run") {
    expect(pkg.scripts[rest[0]!], command.text).toBeDefined()
  } else if (sub === "install" || sub === "i") {
    for (const arg of rest) {
      if (arg === "-g") expect(pkg.bin["llmspell"]).toBeDefined()
      else if (arg === "--omit=optional") continue
      else if (arg === pkg.name) throw new Error(`${command.text}: ${pkg.name} is not on the registry: install the tarball npm pack writes`)
      else if (arg.endsWith(".tgz")) expect(arg.split("/").pop(), `${command.text}: the tarball npm pack writes`).toBe(packedName())
      else if (pkg.peerDependencies[arg.slice(0, arg.lastIndexOf("@"))] !== undefined) {
        // `<peer>@<range>`: exactly the range llmspell declares
        expect(arg.slice(arg.lastIndexOf("@") + 1), command.text).toBe(pkg.peerDependencies[arg.slice(0, arg.lastIndexOf("@"))])
      } else {
        // `<optional package of a dependency>@<version>`: it must exist at exactly that version in
        // the optionalDependencies of a dependency the lockfile has, so the advice keeps up with upgrades.
        const at = arg.lastIndexOf("@")
        const name = arg.slice(0, at)
        const version = arg.slice(at + 1)
        const owners = Object.keys(pkg.dependencies).filter((d) =>
          lock.packages[`node_modules/${d}`]?.optionalDependencies?.[name] === version
        )
        expect(owners, `${command.text}: ${arg} is no optional dependency of a dependency at that version`)
          .not.toEqual([])
      }
    }
  } else {
    throw new Error(`${command.text}: the test does not know this npm command`)
  }
}

const runCommands = async (block: CodeBlock): Promise<Ran> => {
  const results: Array<{ command: ShellCommand; result: CliResult }> = []
  for (const command of shellCommands(block.code)) {
    const argv = command.argv[0] === "npx" && command.argv[1] === "llmspell" ? command.argv.slice(1) : command.argv
    if (argv[0] !== "llmspell") {
      npmCheck(command)
      continue
    }
    const result = await runCli([], {
      cwd: project,
      env: { ...env(), ...command.env },
      command: join(project, "node_modules", ".bin", "llmspell"),
      argv: argv.slice(1)
    })
    expect(result.code, `${command.text}\n${result.stderr}`).toBe(0)
    results.push({ command, result })
  }
  return results
}

const runProgram = async (block: CodeBlock, name: string): Promise<CliResult> => {
  const js = block.lang === "js" || block.lang === "javascript"
  const file = join(project, `${name}.${js ? "mjs" : "mts"}`)
  writeFileSync(file, block.code)
  const argv = js ? [file] : ["--import", "tsx", file]
  return runCli([], { cwd: project, env: env(), argv })
}

const runVitest = async (block: CodeBlock, name: string): Promise<CliResult> => {
  writeFileSync(join(project, `${name}.test.ts`), block.code)
  return runCli([], {
    cwd: project,
    env: env(),
    // only this block's file: the scratch project holds every vitest block
    argv: [join(project, "node_modules", "vitest", "vitest.mjs"), "run", "--root", project, `${name}.test.ts`]
  })
}

/** A file's text without its leading `/** … *\/` comment. */
const withoutHeader = (text: string) => text.replace(/^\/\*\*[\s\S]*?\*\/\n/, "")

const blocks = codeBlocks(readme)
const runnable = new Set(["ts", "typescript", "js", "javascript", "sh", "bash", "shell", "console"])

beforeAll(async () => {
  ensureBuilt()
  ensureLibBuilt()
  const model = tinyLlamaGguf({ tensorType: "Q8_0", seed: 11 })
  ollama = await startFakeOllama({
    models: [fakeModel("llama3.2:latest")],
    pullable: { [SERVED.ollama.pullable]: [fakeLayer("readme", 4096)] },
    answer: () => SERVED.ollama.answer
  })
  hub = await startFakeHub()
  for (const [repo, file] of Object.entries(SERVED.hub)) {
    await hub.addRepo({ name: repo, files: [{ path: file, content: model }, { path: "README.md", content: "# tiny" }] })
  }
  makeProject()
})

afterAll(async () => {
  await ollama?.close()
  await hub?.close()
  rmSync(work, { recursive: true, force: true })
})

describe("README code blocks", () => {
  it("every runnable block is tagged, every tag is known, every check is used", () => {
    const problems: Array<string> = []
    for (const b of blocks) {
      if (!runnable.has(b.lang)) continue
      const where = `README.md:${b.line} (${b.section}, \`\`\`${b.lang})`
      if (b.tag === undefined) {
        problems.push(`${where}: untagged; add <!-- readme-test: run|vitest|commands <name> --> or illustrative: <reason>`)
        continue
      }
      const [kind, name] = b.tag.split(/\s+/)
      if (kind === "illustrative:") {
        if (b.tag.slice(kind.length).trim() === "") problems.push(`${where}: illustrative needs a reason`)
      } else if (kind !== "run" && kind !== "vitest" && kind !== "commands") {
        problems.push(`${where}: unknown tag "${b.tag}"`)
      } else if (name === undefined) {
        problems.push(`${where}: the tag needs a name`)
      } else if (kind !== "commands" && CHECKS[name] === undefined) {
        problems.push(`${where}: no CHECKS entry for "${name}"`)
      } else if ((kind === "commands") !== ["sh", "bash", "shell", "console"].includes(b.lang)) {
        problems.push(`${where}: "${kind}" does not fit a ${b.lang} block`)
      }
    }
    const names = blocks.flatMap((b) => (b.tag !== undefined && !b.tag.startsWith("illustrative:") ? [b.tag.split(/\s+/)[1]] : []))
    for (const check of Object.keys(CHECKS)) if (!names.includes(check)) problems.push(`CHECKS.${check}: no block uses it`)
    expect(new Set(names).size, "block names are unique").toBe(names.length)
    expect(problems).toEqual([])
  })

  it("the Install section names the Node versions package.json's engines admit", () => {
    const install = readme.slice(readme.indexOf("## Install"), readme.indexOf("## Quick start"))
    // each alternative's lowest version (`^20.19.0 || >=22.12.0` → 20.19, 22.12)
    const lowest = pkg.engines.node.split("||").map((r) => /(\d+)\.(\d+)\.\d+/.exec(r)!.slice(1, 3).join("."))
    for (const version of lowest) expect(install, `README's Install names Node ${version}`).toMatch(new RegExp(`\\b${version.replace(".", "\\.")}\\b`))
    expect(install).toContain("not on the npm registry yet")
  })

  it("toml and json blocks parse", () => {
    for (const b of blocks) {
      if (b.tag?.startsWith("illustrative:")) continue
      if (b.lang === "toml") expect(() => parseToml(b.code), `README.md:${b.line}`).not.toThrow()
      if (b.lang === "json") {
        const whole = (() => {
          try {
            return JSON.parse(b.code) as unknown
          } catch {
            return undefined
          }
        })()
        if (whole === undefined) {
          for (const line of b.code.split("\n").filter((l) => l.trim() !== "")) {
            expect(() => JSON.parse(line), `README.md:${b.line}: ${line}`).not.toThrow()
          }
        }
      }
    }
  })

  // One test per block, in README order: later blocks may use what earlier ones pulled.
  for (const block of blocks) {
    if (!runnable.has(block.lang) || block.tag === undefined || block.tag.startsWith("illustrative:")) continue
    const [kind, name, file] = block.tag.split(/\s+/) as [string, string, string | undefined]
    it(`README.md:${block.line} ${kind} ${name}`, { timeout: 180_000 }, async () => {
      if (file !== undefined) {
        expect(block.code, `the block is ${file}`).toBe(withoutHeader(readFileSync(join(root, file), "utf8")))
      }
      if (kind === "commands") {
        const results = await runCommands(block)
        CHECKS[name]?.({ code: 0, stdout: "", stderr: "" }, results)
      } else {
        const result = kind === "vitest" ? await runVitest(block, name) : await runProgram(block, name)
        expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0)
        CHECKS[name]!(result, [])
      }
    })
  }
})

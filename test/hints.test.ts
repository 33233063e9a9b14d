/**
 * Every hint names a command that works. The built CLI is driven into its error cases against the
 * fake Ollama server and the fake hub; each `llmspell …` command quoted in a `hint:` line is then run
 * against the same fakes and must not fail as a usage error (exit 2) — a hint that sends the user to
 * a command that cannot even start is a hint pointing nowhere. The four hints the issue found broken
 * are also checked for what they say.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { deterministicContent, type FakeHub, startFakeHub } from "./fixtures/fakeHub.js"
import { type FakeOllama, fakeLayer, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type CliResult, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let fake: FakeOllama
let hub: FakeHub

const run = (args: ReadonlyArray<string>) =>
  runCli(args, {
    cwd: dir,
    env: isolatedEnv(dir, {
      OLLAMA_HOST: `${fake.host}:${fake.port}`,
      HF_ENDPOINT: hub.url,
      LLMSPELL_MODELS_DIR: join(dir, "models")
    })
  })

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-hints-"))
  await mkdir(join(dir, "models"))
  // a real (tiny) model in the current directory, named without ./
  await writeFile(join(dir, "file.gguf"), tinyLlamaGguf())
  await writeFile(join(dir, "junk.gguf"), "not a model")
  fake = await startFakeOllama({
    models: [fakeModel("tiny")],
    pullable: { other: [fakeLayer("other", 100)] },
    answer: () => "ok"
  })
  hub = await startFakeHub()
  await hub.addRepo({ name: "org/repo", files: [{ path: "repo-Q4_K_M.gguf", content: deterministicContent("h")(0, 5000).slice() }] })
})

afterAll(async () => {
  await fake?.close()
  await hub?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

/** The `llmspell …` commands quoted in a run's `hint:` lines. */
const hintedCommands = (result: CliResult): Array<string> =>
  result.stderr
    .split("\n")
    .filter((line) => line.startsWith("hint: "))
    .flatMap((line) => [...line.matchAll(/`(llmspell [^`]+)`/g)].map((m) => m[1]!))

/** The hint line of a run. */
const hintOf = (result: CliResult) => result.stderr.split("\n").find((line) => line.startsWith("hint: ")) ?? ""

describe("hints name commands that work", () => {
  it("the four hints that pointed nowhere", async () => {
    // tiny is an Ollama model and the default backend is gguf: pulling `tiny` is not possible
    const onOllama = await run(["run", "-m", "tiny", "hi"])
    expect(onOllama.code).toBe(3)
    expect(hintOf(onOllama)).toContain("tiny is on ollama: use tiny@ollama")
    expect(hintOf(onOllama)).not.toContain("model pull")

    // a pull that found nothing must not suggest the very same pull
    const pull = await run(["model", "pull", "http404x@ollama"])
    expect(pull.code).toBe(3)
    expect(hintOf(pull)).toContain("check the name")
    expect(hintOf(pull)).not.toContain("model pull")

    // removing a missing model: nothing to pull, list what is there
    const remove = await run(["model", "remove", "x@ollama", "--yes"])
    expect(remove.code).toBe(3)
    expect(hintOf(remove)).toContain("`llmspell model list`")
    expect(hintOf(remove)).not.toContain("model pull")

    // a file in the current directory named without ./
    const bare = await run(["run", "-m", "file.gguf", "hi"])
    expect(bare.code).toBe(3)
    expect(hintOf(bare)).toContain("use ./file.gguf")
    expect(hintOf(bare)).not.toContain("model pull")
  }, 120_000)

  it("every command a hint quotes runs without a usage error", async () => {
    const errorCases: ReadonlyArray<ReadonlyArray<string>> = [
      ["run", "-m", "tiny", "hi"],
      ["model", "info", "tiny"],
      ["model", "pull", "http404x@ollama"],
      ["model", "remove", "x@ollama", "--yes"],
      ["model", "info", "x@ollama"],
      ["run", "-m", "file.gguf", "hi"],
      ["run", "-m", "nowhere-at-all", "hi"],
      ["model", "verify", "nowhere-at-all"],
      ["model", "info", "org/repo:Q4_K_M"],
      ["model", "info", "org/missing:Q4_K_M"],
      ["model", "pull", "org/missing:Q4_K_M"],
      ["model", "pull", "org/repo:Q5_K_M"],
      ["run", "-m", "tiny@ollama", "--max-tokens", "0", "hi"],
      ["run", "-m", "tiny@ollama", "--temperature", "-1", "hi"],
      ["run", "-m", "file://host/x.gguf", "hi"],
      ["model", "info", "./junk.gguf"],
      ["run", "-m", "./file.gguf@ollama", "hi"],
      ["run", "-m", "openai/gpt-4o", "hi"],
      ["run", "-m", "tiny@ollama"],
      ["--config", join(dir ?? "", "no-such-config.toml"), "model", "list"]
    ]
    const hinted = new Map<string, string>()
    for (const args of errorCases) {
      const result = await run(args)
      expect([1, 2, 3, 4], `${args.join(" ")}\n${result.stderr}`).toContain(result.code)
      for (const command of hintedCommands(result)) if (!hinted.has(command)) hinted.set(command, args.join(" "))
    }
    // the cases above quote these at least; a hint that lost its command would shrink the check
    expect([...hinted.keys()]).toEqual(expect.arrayContaining([
      "llmspell model info tiny@ollama",
      "llmspell model list",
      "llmspell model info ./file.gguf",
      "llmspell model pull org/repo:Q4_K_M",
      "llmspell run --help",
      "llmspell model verify"
    ]))

    const failures: Array<string> = []
    for (const [command, from] of hinted) {
      const result = await run(command.split(" ").slice(1))
      if (result.code === 2 || /bug in llmspell/.test(result.stderr)) {
        failures.push(`\`${command}\` (hinted by \`llmspell ${from}\`) → exit ${result.code}\n${result.stderr}`)
      }
    }
    expect(failures).toEqual([])
  }, 300_000)
})

/**
 * `llmspell rerank` through the built CLI, embedded and connected (test/support/bothModes.ts),
 * against an `openai_compatible` instance at the fake OpenAI server (its `/v1/rerank`): documents
 * as arguments, on stdin, or from a JSON Lines `--file`; the table sorted by score; `--top`;
 * `--json` (the `Reranking`); usage errors (nothing to rank, a bad JSONL line, --top 0) and
 * Ollama's refusal (exit code and a hint that names what can rank). Also: `rerank` is in help.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { deterministicRelevance } from "../src/testing/MockBackend.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"
import { CLI_MODES, modeRunner } from "./support/bothModes.js"
import { bin, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const DOCS = ["the cat sat on the mat", "a dog barks at night", "a cat and a dog play in the garden", "nothing relevant here"]
const MODEL = "llama/bge-reranker"

let dir: string
let upstream: FakeOpenAI
let ollama: FakeOllama

const env = () => isolatedEnv(dir, { LLMSPELL_CONFIG: join(dir, "config.toml"), OLLAMA_HOST: ollama.url })

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-rerank-"))
  upstream = await startFakeOpenAI({ models: ["bge-reranker"] })
})

afterAll(async () => {
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

beforeEach(async () => {
  ollama = await startFakeOllama({ models: [fakeModel("llama3.2")] })
  await writeFile(
    join(dir, "config.toml"),
    [
      "[providers.llama]",
      "provider_type = \"openai_compatible\"",
      `base_url = "${upstream.baseUrl}"`,
      "[providers.ollama]",
      "provider_type = \"ollama\"",
      `base_url = "${ollama.url}"`,
      ""
    ].join("\n")
  )
})

afterEach(async () => {
  await ollama.close()
})

describe.each(CLI_MODES)("%s", (mode) => {
  const { modeArgs, run } = modeRunner(mode, { env, cwd: () => dir })
  const runWithStdin = (args: ReadonlyArray<string>, input: string) =>
    run([], {
      env: { ...env(), INPUT: input },
      command: "/bin/sh",
      argv: ["-c", `printf '%s' "$INPUT" | "$0" "$@"`, process.execPath, bin, ...modeArgs(), ...args]
    })

  it("documents as arguments: a table best first; --top cuts it; --json is the Reranking", async () => {
    const shown = await run(["rerank", "-m", MODEL, "--query", "cat dog", ...DOCS])
    expect(shown).toMatchObject({ code: 0, stderr: "" })
    const lines = shown.stdout.trimEnd().split("\n")
    expect(lines[0]).toMatch(/^RANK\s+SCORE\s+INDEX\s+DOCUMENT$/)
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
      ["1", "1.0000", "2", DOCS[2]],
      ["2", "0.5000", "0", DOCS[0]],
      ["3", "0.5000", "1", DOCS[1]],
      ["4", "0.0000", "3", DOCS[3]]
    ])
    const top = await run(["rerank", "-m", MODEL, "--query", "cat dog", "--top", "2", ...DOCS, "--json"])
    expect(top.code).toBe(0)
    const out = JSON.parse(top.stdout)
    expect(out).toMatchObject({ model: "bge-reranker", backend: "cloud", instance: "llama" })
    expect(out.results).toEqual([
      { index: 2, relevanceScore: deterministicRelevance("cat dog", DOCS[2]!) },
      { index: 0, relevanceScore: 0.5 }
    ])
    expect(out.promptTokens).toBeGreaterThan(0)
  })

  it("documents one per stdin line, or from a JSONL --file (strings or {text})", async () => {
    const piped = await runWithStdin(["rerank", "-m", MODEL, "-q", "garden", "--json"], `${DOCS.join("\n")}\n\n`)
    expect(piped.code).toBe(0)
    expect(JSON.parse(piped.stdout).results.map((r: { index: number }) => r.index)).toEqual([2, 0, 1, 3])
    const file = join(dir, "docs.jsonl")
    await writeFile(file, [JSON.stringify(DOCS[0]), JSON.stringify({ text: DOCS[1], id: 7 }), "", JSON.stringify({ text: DOCS[2] })].join("\n"))
    const fromFile = await run(["rerank", "-m", MODEL, "-q", "dog", "--file", file, "--json"])
    expect(fromFile.code).toBe(0)
    expect(JSON.parse(fromFile.stdout).results.map((r: { index: number }) => r.index)).toEqual([1, 2, 0])
  })

  it("usage errors exit 2 before anything is sent; Ollama's refusal names what can rank", async () => {
    const sent = upstream.requests.length
    const bad = join(dir, "bad.jsonl")
    await writeFile(bad, "\"ok\"\n{\"title\": \"no text\"}\n")
    const cases = [
      [["rerank", "-m", MODEL, "-q", "x", "--file", bad], /line 2 is neither a JSON string nor an object/],
      [["rerank", "-m", MODEL, "-q", "x", "--file", join(dir, "missing.jsonl")], /cannot read .*missing\.jsonl \(ENOENT\)/],
      [["rerank", "-m", MODEL, "-q", "x", "--top", "0", "a"], /topN \(--top\) must be an integer ≥ 1/],
      [["rerank", "-m", MODEL, "-q", "x", "--file", bad, "a"], /not both/]
    ] as const
    for (const [args, message] of cases) {
      const r = await run(args)
      expect({ args, code: r.code }).toEqual({ args, code: 2 })
      expect(r.stderr).toMatch(message)
    }
    expect(upstream.requests.length).toBe(sent)
    const refused = await run(["rerank", "-m", "llama3.2@ollama", "-q", "x", "a", "b"])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/^error: the ollama backend does not support rerank: Ollama has no rerank API/m)
    expect(refused.stderr).toMatch(/^hint: rerank with a GGUF reranker model/m)
  })
})

describe("help", () => {
  it("rerank is listed in the root help and has its own", async () => {
    const root = await runCli(["--help"], { cwd: dir, env: env() })
    expect(root.stdout).toMatch(/^\s+rerank\s+order documents by relevance/m)
    const own = await runCli(["rerank", "--help"], { cwd: dir, env: env() })
    expect(own.code).toBe(0)
    for (const option of ["--query", "--top", "--file", "--json"]) expect(own.stdout).toContain(option)
  })
})

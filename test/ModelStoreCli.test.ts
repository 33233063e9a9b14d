/**
 * The inventory through the built CLI (dist/cli.js), with fixture stores laid out as Ollama, the HF
 * cache, LM Studio and node-llama-cpp write them under an isolated HOME. No Ollama server and no hub:
 * OLLAMA_HOST and HF_ENDPOINT point at a closed port, so anything that reached for them would fail.
 */
import * as Schema from "effect/Schema"
import { existsSync } from "node:fs"
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ModelList } from "../src/domain/Types.js"
import {
  commitId,
  fixtureRoots,
  hfCacheFile,
  lmstudioModel,
  loadableGguf,
  nodeLlamaCppModel,
  ollamaModel,
  sha256Hex,
  tinyGguf
} from "./fixtures/foreignStores.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"
import { unusedPort } from "./support/ports.js"

let home: string
let closedPort: number
let ollamaBlob: string
let hfOnlyBlob: string

const cli = (args: ReadonlyArray<string>) =>
  runCli(args, {
    cwd: home,
    env: isolatedEnv(home, {
      OLLAMA_HOST: `127.0.0.1:${closedPort}`,
      HF_ENDPOINT: `http://127.0.0.1:${closedPort}`
    })
  })

beforeAll(async () => {
  ensureBuilt()
  closedPort = await unusedPort()
  home = await mkdtemp(join(tmpdir(), "llmspell-storecli-"))
  const roots = fixtureRoots(home)
  const shared = loadableGguf(1)
  ollamaBlob = (await ollamaModel(roots.ollama, { model: "llama3.2", tag: "3b", gguf: shared })).blobPath
  await hfCacheFile(roots.hfCache, { repo: "org/Shared-GGUF", commit: commitId("s"), file: "Shared-Q4_K_M.gguf", bytes: shared })
  hfOnlyBlob = (await hfCacheFile(roots.hfCache, {
    repo: "org/Tiny-GGUF",
    commit: commitId("t"),
    file: "Tiny-Q8_0.gguf",
    bytes: loadableGguf(2)
  })).blobPath
  await lmstudioModel(roots.lmstudio, { publisher: "pub", repo: "Phi-GGUF", file: "Phi-Q8_0.gguf", bytes: tinyGguf("phi") })
  await nodeLlamaCppModel(roots.nodeLlamaCpp, "hf_user_Model.Q4_K_M.gguf", tinyGguf("nlc"))
  await ollamaModel(roots.ollama, { model: "doomed", gguf: tinyGguf("doomed") })
}, 120_000)
afterAll(() => rm(home, { recursive: true, force: true }))

describe("model list / info / run / remove over every store", () => {
  it("model list: every model once with its STORE; --json gives every location", async () => {
    const table = await cli(["model", "list", "--backend", "gguf"])
    expect(table.stderr).toBe("")
    expect(table.code).toBe(0)
    const lines = table.stdout.trim().split("\n")
    expect(lines[0]).toMatch(/^NAME\s+BACKEND\s+STORE\s+SIZE/)
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? ""
    expect(row("llama3.2:3b")).toContain("ollama-store (+1)")
    expect(row("hf.co/org/Tiny-GGUF:Q8_0")).toContain("hf-cache")
    expect(row("pub/Phi-GGUF/Phi-Q8_0.gguf")).toContain("lmstudio")
    expect(row("hf_user_Model.Q4_K_M.gguf")).toContain("node-llama-cpp")
    expect(lines.filter((l) => l.includes("Shared"))).toEqual([]) // merged into llama3.2:3b, not listed twice

    const json = await cli(["model", "list", "--backend", "gguf", "--json"])
    const list = Schema.decodeUnknownSync(ModelList)(JSON.parse(json.stdout))
    const shared = list.models.find((m) => m.name === "llama3.2:3b")!
    expect(shared.sha256).toBe(sha256Hex(loadableGguf(1)))
    expect(shared.locations?.map((l) => l.store)).toEqual(["ollama-store", "hf-cache"])
    expect(shared.locations?.[1]?.name).toBe("hf.co/org/Shared-GGUF:Q4_K_M")
  })

  it("runs an Ollama model in-process with no Ollama server, and an HF cache model with no hub", async () => {
    for (const spec of ["llama3.2:3b@gguf", "hf.co/org/Tiny-GGUF:Q8_0"]) {
      const result = await cli(["run", "--model", spec, "--max-tokens", "4", "--seed", "1", "hi"])
      expect(result.stderr, spec).not.toMatch(/bug in llmspell/)
      expect(result.code, `${spec}: ${result.stderr}`).toBe(0)
    }
  }, 120_000)

  it("model info says which store, and where else the bytes are", async () => {
    const info = await cli(["model", "info", "llama3.2:3b@gguf"])
    expect(info.code, info.stderr).toBe(0)
    expect(info.stdout).toMatch(/^store:\s+ollama-store$/m)
    expect(info.stdout).toMatch(/^also in:\s+hf-cache \(hf\.co\/org\/Shared-GGUF:Q4_K_M\)$/m)
    expect(info.stdout).toContain(ollamaBlob)
  }, 60_000)

  it("model remove of a foreign model refuses with the owner's command and leaves the file", async () => {
    const ollama = await cli(["model", "remove", "llama3.2:3b@gguf", "--yes"])
    expect(ollama.code).toBe(1)
    expect(ollama.stderr).toContain("ollama-store")
    expect(ollama.stderr).toMatch(/hint: .*ollama rm llama3\.2:3b/)
    expect(existsSync(ollamaBlob)).toBe(true)
    const hf = await cli(["model", "remove", "hf.co/org/Tiny-GGUF:Q8_0", "--yes"])
    expect(hf.code).toBe(1)
    expect(hf.stderr).toMatch(/hint: .*hf cache rm hf:\/\/models\/org\/Tiny-GGUF\/Tiny-Q8_0\.gguf/)
    expect(existsSync(hfOnlyBlob)).toBe(true)
  })

  it("a foreign blob its owner deleted after the listing is ModelNotFound (exit 3), never a crash", async () => {
    const listed = await cli(["model", "list", "--backend", "gguf"])
    expect(listed.stdout).toContain("doomed:latest")
    const manifest = join(fixtureRoots(home).ollama, "blobs", `sha256-${sha256Hex(tinyGguf("doomed"))}`)
    await unlink(manifest)
    const run = await cli(["run", "--model", "doomed@gguf", "hi"])
    expect(run.code).toBe(3)
    expect(run.stderr).toMatch(/^error: .*doomed/m)
    expect(run.stderr).not.toMatch(/bug in llmspell/)
  })

  it("model import makes a file a model of llmspell's store; config show lists [stores] with sources", async () => {
    const file = join(home, "downloaded.gguf")
    await writeFile(file, loadableGguf(3))
    const imported = await cli(["model", "import", file, "--name", "mine"])
    expect(imported.code, imported.stderr).toBe(0)
    const list = await cli(["model", "list", "--backend", "gguf"])
    expect(list.stdout.split("\n").find((l) => l.startsWith("mine "))).toContain("llmspell")
    const notGguf = join(home, "notes.gguf")
    await writeFile(notGguf, "hello")
    const refused = await cli(["model", "import", notGguf])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("not a valid GGUF")

    await writeFile(join(home, "llmspell.toml"), `[stores]\nlmstudio = false\nollama = "${join(home, "elsewhere")}"\n`)
    try {
      const shown = await cli(["config", "show"])
      expect(shown.stdout).toMatch(/stores\.lmstudio\s+false\s+.*llmspell\.toml/)
      expect(shown.stdout).toMatch(/stores\.hf_cache\s+"?auto"?\s+default/)
      const only = await cli(["model", "list", "--backend", "gguf"])
      expect(only.stdout).not.toContain("lmstudio")
      expect(only.stdout).not.toContain("ollama-store")
      expect(only.stdout).toContain("hf-cache")
    } finally {
      await rm(join(home, "llmspell.toml"))
    }
  }, 60_000)
})

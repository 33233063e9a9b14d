/**
 * Nothing but `pull` touches the hub: a model pulled earlier (a manifest and its file in llmspell's store,
 * written here as a pull leaves them) is listed, inspected and run through the built CLI while HF_ENDPOINT
 * points at a closed port and no server of any kind runs. Any hub call on these paths would fail them.
 */
import { createHash } from "node:crypto"
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { slugOf } from "../src/domain/HubRef.js"
import { loadableGguf } from "./fixtures/foreignStores.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"
import { unusedPort } from "./support/ports.js"

let home: string
let models: string
let closedPort: number

const cli = (args: ReadonlyArray<string>) =>
  runCli([...args], {
    cwd: home,
    env: isolatedEnv(home, {
      HF_ENDPOINT: `http://127.0.0.1:${closedPort}`,
      OLLAMA_HOST: `127.0.0.1:${closedPort}`,
      LLMSPELL_MODELS_DIR: models
    })
  })

beforeAll(async () => {
  ensureBuilt()
  closedPort = await unusedPort()
  home = await mkdtemp(join(tmpdir(), "llmspell-nohub-"))
  models = join(home, "models")
  // What `llmspell model pull org/Tiny-GGUF:Q8_0` leaves behind: the file under hub/ and its manifest.
  const bytes = loadableGguf(7)
  const relative = "hub/org/Tiny-GGUF/Tiny-Q8_0.gguf"
  const file = join(models, ...relative.split("/"))
  await mkdir(join(models, "hub", "org", "Tiny-GGUF"), { recursive: true })
  await writeFile(file, bytes)
  const manifest = {
    version: 1,
    name: "org/Tiny-GGUF:Q8_0",
    repo: "org/Tiny-GGUF",
    revision: "0123456789abcdef0123456789abcdef01234567",
    quantization: "Q8_0",
    files: [{
      path: relative,
      repoPath: "Tiny-Q8_0.gguf",
      sizeBytes: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      mtimeMs: (await stat(file)).mtimeMs,
      hubSha256: true
    }],
    pulledAt: "2026-12-01T00:00:00.000Z"
  }
  await mkdir(join(models, "manifests"), { recursive: true })
  await writeFile(join(models, "manifests", `${slugOf(manifest.name)}.json`), JSON.stringify(manifest))
}, 120_000)

afterAll(async () => {
  await rm(home, { recursive: true, force: true })
})

describe("list, info and generate never reach the hub", () => {
  it("model list, model info and run of a pulled model succeed with the hub unreachable", async () => {
    const list = await cli(["model", "list", "--backend", "gguf"])
    expect(list.code, list.stderr).toBe(0)
    expect(list.stdout).toContain("org/Tiny-GGUF:Q8_0")

    const info = await cli(["model", "info", "org/Tiny-GGUF:Q8_0@gguf"])
    expect(info.code, info.stderr).toBe(0)
    expect(info.stdout).toMatch(/^store:\s+llmspell$/m)

    const run = await cli(["run", "--model", "org/Tiny-GGUF:Q8_0@gguf", "--max-tokens", "4", "--seed", "1", "hi"])
    expect(run.stderr).not.toMatch(/bug in llmspell|cannot reach the hub/)
    expect(run.code, run.stderr).toBe(0)

    // The same pull, by contrast, does reach for the hub (when not already present): proof the port is closed.
    const pull = await cli(["model", "pull", "org/Other-GGUF:Q8_0"])
    expect(pull.code).not.toBe(0)
    expect(pull.stderr).toContain(`cannot reach the hub at http://127.0.0.1:${closedPort}`)
  }, 180_000)
})

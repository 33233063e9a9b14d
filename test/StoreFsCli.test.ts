/**
 * A store directory that refuses writes is a typed error naming it, through the built CLI, never
 * "bug in llmspell": the store's write check goes through @effect/platform's FileSystem. A directory made
 * read-only (chmod 0o500) does not stop root, so as root the test uses `/proc/self`: a real directory in
 * which no file can be created, which asserts the same thing.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let home: string
const asRoot = process.getuid?.() === 0

beforeAll(async () => {
  ensureBuilt()
  home = await mkdtemp(join(tmpdir(), "llmspell-storefs-"))
})
afterAll(async () => {
  await chmod(join(home, "readonly"), 0o700).catch(() => undefined)
  await rm(home, { recursive: true, force: true })
})

describe("a store that refuses writes", () => {
  it("model import: ModelStoreUnusable (exit 1) naming the directory and the OS reason", async () => {
    const file = join(home, "downloaded-Q8_0.gguf")
    await writeFile(file, tinyLlamaGguf({ seed: 5 }))
    let models = "/proc/self"
    if (!asRoot) {
      models = join(home, "readonly")
      await mkdir(models)
      await chmod(models, 0o500)
    }
    const result = await runCli(["model", "import", file, "--models-dir", models], { cwd: home, env: isolatedEnv(home) })
    expect(result.stderr).not.toMatch(/bug in llmspell/)
    expect(result.code, result.stderr).toBe(1)
    expect(result.stderr).toContain(models)
    expect(result.stderr).toMatch(asRoot ? /it refuses new files \(ENOENT\)/ : /permission denied \((EACCES|EPERM)\)/)
    expect(result.stderr).toMatch(/^hint: /m)
  })
})

/**
 * `llmspell model pull/verify/available/remove` (the built `dist/cli.js`) against the fake hub: NDJSON
 * progress that decodes as PullProgress with the result last, plain progress lines on a non-TTY stderr,
 * verify's exit code after corruption, and the catalog. Build first (`npm run build`).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Schema from "effect/Schema"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AvailableReport } from "../src/domain/Catalog.js"
import { PullProgress, VerifyReport } from "../src/domain/Types.js"
import { type FakeHub, ggufContent, startFakeHub } from "./fixtures/fakeHub.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const SIZE = 200_000
const bytes = ggufContent("cli", SIZE)

let dir: string
let hub: FakeHub

const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  runCli(args, {
    cwd: dir,
    env: isolatedEnv(dir, { HF_ENDPOINT: hub.url, LLMSPELL_MODELS_DIR: join(dir, "models"), ...env })
  })

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-hub-"))
  hub = await startFakeHub({ pageSize: 50 })
  await hub.addRepo({
    name: "org/repo",
    files: [
      { path: "repo-Q4_K_M.gguf", content: bytes },
      { path: "repo-Q8_0.gguf", content: ggufContent("cli8", 1000, 7) }
    ]
  })
})

afterAll(async () => {
  await hub.close()
  await rm(dir, { recursive: true, force: true })
})

const decode = Schema.decodeUnknownSync(PullProgress)

describe("llmspell model pull (gguf, hub)", () => {
  it("--json: NDJSON PullProgress events on stdout, the result last; then verify ok; corruption → exit 1", async () => {
    const pulled = await run(["model", "pull", "org/repo:Q4_K_M", "--json"])
    expect(pulled.stderr).toBe("")
    expect(pulled.code).toBe(0)
    const events = pulled.stdout.trim().split("\n").map((line) => decode(JSON.parse(line)))
    expect(events[0]!.phase).toBe("resolving")
    const last = events.at(-1)!
    expect(last).toMatchObject({ phase: "done", completedBytes: SIZE, totalBytes: SIZE })
    expect(last.result).toMatchObject({ model: "org/repo:Q4_K_M", backend: "gguf", alreadyPresent: false, downloadedBytes: SIZE })
    const file = last.result!.path!
    expect(file.startsWith(join(dir, "models"))).toBe(true)

    const verified = await run(["model", "verify", "org/repo:Q4_K_M", "--json"])
    expect(verified.code).toBe(0)
    expect(Schema.decodeUnknownSync(VerifyReport)(JSON.parse(verified.stdout))).toMatchObject({
      ok: true,
      files: [{ status: "ok", file }]
    })

    const again = await run(["model", "pull", "org/repo:Q4_K_M", "--json"])
    expect(decode(JSON.parse(again.stdout.trim().split("\n").at(-1)!)).result?.alreadyPresent).toBe(true)

    const content = await readFile(file)
    content[1234] ^= 0xff
    await writeFile(file, content)
    const corrupt = await run(["model", "verify", "--json"])
    expect(corrupt.code).toBe(1)
    expect(JSON.parse(corrupt.stdout)).toMatchObject({
      ok: false,
      files: [{ status: "corrupt", problem: expect.stringContaining("sha256"), repair: "llmspell model pull org/repo:Q4_K_M --force" }]
    })
    // Without --json, verify says what is wrong with each bad file and the command that repairs it.
    const told = await run(["model", "verify"])
    expect(told.code).toBe(1)
    expect(told.stdout + told.stderr).toContain("llmspell model pull org/repo:Q4_K_M --force")
    expect(told.stdout + told.stderr).toMatch(/sha256 is [0-9a-f]{64}, the hub published/)

    // A pull does not call a corrupt file "already present": its mtime changed, so it is hashed, and fetched again.
    hub.resetStats()
    const repaired = await run(["model", "pull", "org/repo:Q4_K_M", "--json"])
    expect(repaired.code).toBe(0)
    expect(decode(JSON.parse(repaired.stdout.trim().split("\n").at(-1)!)).result).toMatchObject({
      alreadyPresent: false,
      downloadedBytes: SIZE,
      verified: true
    })
    expect((await run(["model", "verify", "--json"])).code).toBe(0)
  })

  it("without --json on a pipe: plain progress lines on stderr, one summary line on stdout", async () => {
    const pulled = await run(["model", "pull", "gguf/org/repo", "--quantization", "Q8_0"])
    expect(pulled.code).toBe(0)
    expect(pulled.stdout).toMatch(/^pulled org\/repo:Q8_0 \(1000 B\) to .*repo-Q8_0\.gguf\n$/)
    expect(pulled.stderr).not.toContain("\r")
    expect(pulled.stderr).toContain("org/repo:Q8_0: done 100%")
  })

  it("a quantization the repo lacks: exit 3 and the list of what it has; HF_HUB_OFFLINE: no network", async () => {
    const missing = await run(["model", "pull", "org/repo:IQ4_XS"])
    expect(missing.code).toBe(3)
    expect(missing.stderr).toContain("it has Q4_K_M, Q8_0")
    hub.resetStats()
    const offline = await run(["model", "pull", "org/repo:Q4_K_M", "--json"], { HF_HUB_OFFLINE: "1" })
    expect(offline.code).toBe(0)
    expect(hub.requests).toEqual([])
  })

  it("model available --json decodes and lists the catalog", async () => {
    const listed = await run(["model", "available", "--json"])
    expect(listed.code).toBe(0)
    const report = Schema.decodeUnknownSync(AvailableReport)(JSON.parse(listed.stdout))
    expect(report.models.length).toBeGreaterThanOrEqual(12)
    expect(report.models.map((m) => m.alias)).toContain("qwen2.5:0.5b")
  })
})

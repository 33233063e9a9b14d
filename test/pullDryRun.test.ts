/**
 * `llmspell model pull --dry-run` (the built CLI) against the fake hub: the files and sizes of a
 * split and a single-file model from the listing, the first file's GGUF header read with ranged
 * requests (never the whole file; what `model info` then says of the downloaded file), nothing
 * written to the store; whether it fits the disk and the memory (a 1 PiB model fits neither); `--json`;
 * connected to a server too. A real pull of a model that does not fit in memory says so before it
 * starts, and one that does not fit on the disk is refused before any byte is fetched. An Ollama
 * model cannot be planned: said, and nothing is pulled.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Schema from "effect/Schema"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { PullResult } from "../src/domain/Types.js"
import { deterministicContent, type FakeHub, ggufContent, startFakeHub } from "./fixtures/fakeHub.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let hub: FakeHub
let ollama: FakeOllama
const parts = [ggufContent("part1", 30_000), ggufContent("part2", 20_000, 2), ggufContent("part3", 10_000, 3)]
const single = ggufContent("single", 50_000, 4)

const models = () => join(dir, "models")
const run = (args: ReadonlyArray<string>, mode?: { readonly host: string }) =>
  runCli(args, {
    cwd: dir,
    env: isolatedEnv(dir, { HF_ENDPOINT: hub.url, OLLAMA_HOST: ollama.url, LLMSPELL_MODELS_DIR: models() }),
    ...(mode !== undefined ? { mode } : {})
  })
const filesIn = (d: string): Array<string> =>
  existsSync(d) ? readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : []

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "llmspell-pull-dry-"))
  hub = await startFakeHub({ pageSize: 50 })
  ollama = await startFakeOllama({ models: [fakeModel("agent")] })
  await hub.addRepo({ name: "org/split", files: parts.map((content, i) => ({ path: `Q4_K_M/big-Q4_K_M-0000${i + 1}-of-00003.gguf`, content })) })
  await hub.addRepo({ name: "org/single", files: [{ path: "single-Q8_0.gguf", content: single }] })
  await hub.addRepo({ name: "org/huge", files: [{ path: "huge-Q4_K_M.gguf", size: 2 ** 50, generate: deterministicContent(1), sha256: "0".repeat(64) }] })
})
afterAll(async () => {
  await hub?.close()
  await ollama?.close()
  rmSync(dir, { recursive: true, force: true })
})
beforeEach(() => hub.resetStats())

const decode = Schema.decodeUnknownSync(PullResult)

describe("model pull --dry-run", () => {
  it("a split model: every part with its size, the total, disk and memory fit; its header read by range, nothing written", async () => {
    const out = await run(["model", "pull", "org/split:Q4_K_M", "--dry-run", "--json"])
    expect(out.stderr).toBe("")
    expect(out.code).toBe(0)
    const result = decode(JSON.parse(out.stdout))
    const total = parts.reduce((n, p) => n + p.length, 0)
    expect(result.plan).toMatchObject({
      files: parts.map((p, i) => ({ path: `Q4_K_M/big-Q4_K_M-0000${i + 1}-of-00003.gguf`, sizeBytes: p.length })),
      totalBytes: total,
      quantization: "Q4_K_M",
      disk: { fits: true },
      memory: { fits: true }
    })
    expect(result.plan!.memory.neededBytes).toBeGreaterThan(total)
    expect(result.downloadedBytes).toBe(0)
    // the first part's header, read with ranged requests: never the whole file
    expect(result.plan!.header).toMatchObject({ architecture: "test" })
    // (and the one byte of the library's size probe)
    expect(hub.bytesServed).toBe(result.plan!.header!.bytesRead + 1)
    expect(result.plan!.header!.bytesRead).toBeLessThanOrEqual(Math.min(1024 * 1024, parts[0]!.length))
    expect(filesIn(models())).toEqual([])
  }, 60_000)

  it("a single file, as text: its size and the verdicts", async () => {
    const out = await run(["model", "pull", "org/single:Q8_0", "--dry-run"])
    expect(out.code).toBe(0)
    expect(out.stdout).toMatch(/^org\/single:Q8_0 \(Q8_0\) would download 1 file, 48\.8 KiB:$/m)
    expect(out.stdout).toMatch(/^  single-Q8_0\.gguf\s+\S+/m)
    expect(out.stdout).toMatch(/^disk: .*: fits$/m)
    expect(out.stdout).toMatch(/^memory: .*: fits$/m)
    expect(out.stdout).toMatch(/^header:\s+test, Q4_1_SOME_F16 \(48\.8 KiB read\)$/m)
    expect(filesIn(models())).toEqual([])
  }, 60_000)

  it("a 1 PiB model fits neither disk nor memory (said, exit 0); a real pull warns of the memory and is refused for the disk before a byte", async () => {
    const planned = decode(JSON.parse((await run(["model", "pull", "org/huge:Q4_K_M", "--dry-run", "--json"])).stdout))
    expect(planned.plan).toMatchObject({ totalBytes: 2 ** 50, disk: { fits: false }, memory: { fits: false } })
    // its "header" is not a GGUF: the plan stands on the listing, and at most the first reads were fetched
    expect(planned.plan!.header).toBeUndefined()
    expect(hub.bytesServed).toBeLessThanOrEqual(41 * 1024 * 1024 * 2)
    const text = await run(["model", "pull", "org/huge:Q4_K_M", "--dry-run"])
    expect(text.stdout).toMatch(/^disk: .*does NOT fit$/m)
    expect(text.stdout).toMatch(/^memory: .*does NOT fit$/m)

    hub.resetStats()
    const real = await run(["model", "pull", "org/huge:Q4_K_M"])
    expect(real.code).not.toBe(0)
    expect(real.stderr).toMatch(/warning: org\/huge:Q4_K_M needs about .* of memory to run/)
    expect(real.stderr).toMatch(/disk|space/i)
    expect(hub.bytesServed).toBe(0)
    expect(filesIn(join(models(), "hub"))).toEqual([])
  }, 60_000)

  it("the header a dry run reads says what `model info` says of the downloaded file", async () => {
    const planned = decode(JSON.parse((await run(["model", "pull", "org/single:Q8_0", "--dry-run", "--json"])).stdout))
    expect((await run(["model", "pull", "org/single:Q8_0", "--json"])).code).toBe(0)
    const info = JSON.parse((await run(["model", "info", "org/single:Q8_0", "--json"])).stdout) as Record<string, unknown>
    expect(JSON.stringify(info)).toContain(`"architecture":"${planned.plan!.header!.architecture}"`)
    expect(JSON.stringify(info)).toContain(`"quantization":"${planned.plan!.header!.quantization}"`)
    await run(["model", "remove", "org/single:Q8_0", "--yes"])
  }, 60_000)

  it("an Ollama model cannot be planned: said, and nothing is pulled", async () => {
    const out = await run(["model", "pull", "other@ollama", "--dry-run"])
    expect(out.code).not.toBe(0)
    expect(out.stderr).toMatch(/dry run|dry-run/)
    expect(ollama.requests.filter((r) => r.path === "/api/pull")).toEqual([])
  }, 60_000)
})

describe("model pull --dry-run, connected", () => {
  let serve: ServeHarness
  beforeAll(async () => {
    serve = await startServe({ dir: join(dir, "server"), hubUrl: hub.url })
  })
  afterAll(async () => {
    await serve?.close()
  })

  it("the server plans it: the same files and sizes, nothing written to its store", async () => {
    const out = await run(["model", "pull", "org/split:Q4_K_M", "--dry-run", "--json"], { host: serve.url })
    expect(out.stderr).toBe("")
    expect(out.code).toBe(0)
    const result = decode(JSON.parse(out.stdout))
    expect(result.plan!.files.map((f) => f.sizeBytes)).toEqual(parts.map((p) => p.length))
    expect(result.plan!.disk.directory.startsWith(join(dir, "server"))).toBe(true)
    expect(hub.bytesServed).toBe(result.plan!.header!.bytesRead + 1)
    expect(filesIn(join(dir, "server", "models"))).toEqual([])
  }, 60_000)
})

/**
 * The cached inventory of the foreign stores (src/layers/store/foreign/inventoryCache.ts): a repeated listing
 * re-checks its witnesses instead of re-reading the stores, and every change a tool can make to its
 * store (a model added, removed, a manifest rewritten in place with a new blob, an HF snapshot link
 * retargeted, a file replaced, a store appearing) shows up in the next listing, exactly as a fresh scan
 * sees it. The fixtures are backdated (as a real store is: its files were written long before the
 * listing), so the cache is in play; a store touched in the last two seconds is never cached (racy).
 * Through the CLI too: `model list` twice, then a change, on the built binary.
 */
import { lstat, lutimes, mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, unlink, utimes, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import type { ForeignStoreRoots } from "../src/domain/ForeignStores.js"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import { cacheFileOf, scanAllCached } from "../src/layers/store/foreign/inventoryCache.js"
import * as Scan from "../src/layers/store/foreign/scan.js"
import * as ScanFsLive from "../src/layers/store/scanFs.js"
import { ScanFs, type ScanFsService } from "../src/layers/store/scanFs.js"
import {
  commitId,
  fixtureRoots,
  hfCacheFile,
  lmstudioModel,
  nodeLlamaCppModel,
  ollamaModel,
  sha256Hex,
  tinyGguf
} from "./fixtures/foreignStores.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let home: string
beforeEach(async () => {
  home = await realpath(await mkdtemp(join(tmpdir(), "llmspell-invcache-")))
})
afterEach(async () => {
  await rm(home, { recursive: true, force: true })
})

const LONG_AGO = new Date("2025-01-01T00:00:00Z")

/** Sets every mtime under `dir` (links themselves included) to long ago, as on a machine whose stores are old. */
const backdate = async (dir: string): Promise<void> => {
  const walk = async (d: string) => {
    for (const name of await readdir(d)) {
      const p = join(d, name)
      const s = await lstat(p)
      if (s.isDirectory()) await walk(p)
      await lutimes(p, LONG_AGO, LONG_AGO)
    }
  }
  await walk(dir)
  await utimes(dir, LONG_AGO, LONG_AGO)
}

/** The real fs, counting the calls that read a store (not the stats a cache check makes; the cache file itself aside). */
const countingFs = () => {
  const reads = { readdir: 0, readFile: 0, readlink: 0 }
  const real = ScanFsLive.make
  const count = (what: keyof typeof reads) => Effect.sync(() => void reads[what]++)
  const fs: ScanFsService = {
    ...real,
    readDirectory: (p, limit) => Effect.zipRight(count("readdir"), real.readDirectory(p, limit)),
    readText: (p, max) => Effect.zipRight(p === cacheFile() ? Effect.void : count("readFile"), real.readText(p, max)),
    readPrefix: (p, bytes, o) => Effect.zipRight(count("readFile"), real.readPrefix(p, bytes, o)),
    readLink: (p) => Effect.zipRight(count("readlink"), real.readLink(p))
  }
  return { fs, reads }
}

const rootsOf = (): ForeignStoreRoots => {
  const r = fixtureRoots(home)
  return { ollama: [r.ollama], hfCache: [r.hfCache], lmstudio: [r.lmstudio], nodeLlamaCpp: [r.nodeLlamaCpp] }
}

const cacheFile = () => cacheFileOf(join(home, "models"))

const listCached = (fs: ScanFsService = ScanFsLive.make) =>
  Effect.runPromise(
    scanAllCached(rootsOf(), { cacheFile: cacheFile() }).pipe(Effect.provideService(ScanFs, fs), Effect.provide(NodeFileSystem.layer))
  )

/** What a scan without any cache finds: the truth a cached listing must equal. */
const fresh = () => Effect.runPromise(Effect.provideService(Scan.scanAll(rootsOf()), ScanFs, ScanFsLive.make))

const names = (r: { readonly models: ReadonlyArray<{ readonly name: string }> }) => r.models.map((m) => m.name).sort()

/** One model per store, and a second HF file, all long ago. */
const machine = async () => {
  const roots = fixtureRoots(home)
  const llama = await ollamaModel(roots.ollama, { model: "llama3.2", tag: "3b", gguf: tinyGguf("llama") })
  const hf = await hfCacheFile(roots.hfCache, {
    repo: "org/Repo-GGUF",
    commit: commitId("r1"),
    file: "Repo-Q4_K_M.gguf",
    bytes: tinyGguf("hf-q4")
  })
  const hf8 = await hfCacheFile(roots.hfCache, {
    repo: "org/Repo-GGUF",
    commit: commitId("r1"),
    file: "Repo-Q8_0.gguf",
    bytes: tinyGguf("hf-q8")
  })
  const lms = await lmstudioModel(roots.lmstudio, { publisher: "pub", repo: "M-GGUF", file: "M-Q4_K_M.gguf", bytes: tinyGguf("lms") })
  const nlc = await nodeLlamaCppModel(roots.nodeLlamaCpp, "hf_user_M.Q8_0.gguf", tinyGguf("nlc"))
  await backdate(home)
  return { roots, llama, hf, hf8, lms, nlc }
}

/** Lists once to fill the cache, and checks the next listing is served from it. */
const primed = async () => {
  const first = await listCached()
  expect(first).toEqual(await fresh())
  const { fs, reads } = countingFs()
  expect(await listCached(fs)).toEqual(first)
  expect(reads).toEqual({ readdir: 0, readFile: 0, readlink: 0 })
  return first
}

/** After a change: the cached listing equals a fresh scan, and the change is in it. */
const expectFresh = async () => {
  const after = await listCached()
  expect(after).toEqual(await fresh())
  return after
}

describe("cached inventory", () => {
  it("a repeated listing reads one cache file and stats, not a single manifest, link or folder listing", async () => {
    await machine()
    const first = await primed()
    expect(names(first)).toEqual([
      "hf.co/org/Repo-GGUF:Q4_K_M",
      "hf.co/org/Repo-GGUF:Q8_0",
      "hf_user_M.Q8_0.gguf",
      "llama3.2:3b",
      "pub/M-GGUF/M-Q4_K_M.gguf"
    ])
    const cache = JSON.parse(await readFile(cacheFile(), "utf8")) as { version: number; entries: Array<unknown> }
    expect(cache.version).toBe(3)
    expect(cache.entries).toHaveLength(4)
  })

  it("a store changed in the last two seconds is not cached (a change in the same clock tick could hide)", async () => {
    const roots = fixtureRoots(home)
    await ollamaModel(roots.ollama, { model: "new", gguf: tinyGguf("new") })
    await listCached()
    const { fs, reads } = countingFs()
    expect(names(await listCached(fs))).toEqual(["new:latest"])
    expect(reads.readFile).toBeGreaterThan(0)
  })

  it("an Ollama model added or removed shows up in the next listing", async () => {
    const m = await machine()
    await primed()
    await ollamaModel(m.roots.ollama, { model: "qwen2.5", gguf: tinyGguf("qwen") })
    expect(names(await expectFresh())).toContain("qwen2.5:latest")
    await unlink(m.llama.manifestPath)
    expect(names(await expectFresh())).not.toContain("llama3.2:3b")
  })

  it("an Ollama manifest rewritten in place to name a new blob: the new bytes, not the cached ones", async () => {
    const m = await machine()
    await primed()
    // what `ollama pull` of a newer llama3.2:3b does: a new blob, the same manifest path rewritten
    const newer = tinyGguf("llama-newer")
    const other = await ollamaModel(join(home, "scratch"), { model: "llama3.2", tag: "3b", gguf: newer })
    await mkdir(join(m.roots.ollama, "blobs"), { recursive: true })
    await writeFile(join(m.roots.ollama, "blobs", `sha256-${other.sha256}`), newer)
    await writeFile(m.llama.manifestPath, await readFile(other.manifestPath))
    const after = await expectFresh()
    const llama = after.models.find((x) => x.name === "llama3.2:3b")!
    expect(llama.sha256).toBe(sha256Hex(newer))
    expect(llama.sha256).not.toBe(m.llama.sha256)
  })

  it("a manifest rewritten with its old mtime put back (cp -p, rsync -t) is still noticed, by its ctime", async () => {
    const m = await machine()
    await primed()
    const text = await readFile(m.llama.manifestPath, "utf8")
    // same length, other content: the model layer's media type no longer says GGUF
    await writeFile(m.llama.manifestPath, text.replace("vnd.ollama.image.model", "vnd.ollama.image.xxxxx"))
    await utimes(m.llama.manifestPath, LONG_AGO, LONG_AGO)
    expect(names(await expectFresh())).not.toContain("llama3.2:3b")
  })

  it("an HF snapshot symlink retargeted to another blob: the other blob's sha256", async () => {
    const m = await machine()
    const before = await primed()
    const q4 = before.models.find((x) => x.name === "hf.co/org/Repo-GGUF:Q4_K_M")!
    const bytes = tinyGguf("hf-q4-v2")
    const hex = sha256Hex(bytes)
    await writeFile(join(m.hf.repoDir, "blobs", hex), bytes)
    await unlink(m.hf.snapshotPath)
    await symlink(join("..", "..", "blobs", hex), m.hf.snapshotPath)
    const after = await expectFresh()
    const retargeted = after.models.find((x) => x.name === "hf.co/org/Repo-GGUF:Q4_K_M")!
    expect(retargeted.sha256).toBe(hex)
    expect(retargeted.sha256).not.toBe(q4.sha256)
  })

  it("an HF blob deleted under its link, and a new revision in refs/main", async () => {
    const m = await machine()
    await primed()
    await unlink(m.hf8.blobPath)
    const after = await expectFresh()
    expect(names(after)).not.toContain("hf.co/org/Repo-GGUF:Q8_0")
    expect(after.warnings.some((w) => w.reason.includes("broken symlink"))).toBe(true)
    await hfCacheFile(m.roots.hfCache, { repo: "org/Repo-GGUF", commit: commitId("r2"), file: "Repo-Q5_K_M.gguf", bytes: tinyGguf("q5") })
    expect(names(await expectFresh())).toContain("hf.co/org/Repo-GGUF:Q5_K_M")
  })

  it("an LM Studio file replaced by a larger one, and a node-llama-cpp file deleted", async () => {
    const m = await machine()
    await primed()
    await writeFile(m.lms, new Uint8Array([...tinyGguf("lms"), ...new Uint8Array(4096)]))
    const after = await expectFresh()
    expect(after.models.find((x) => x.store === "lmstudio")!.sizeBytes).toBe(tinyGguf("lms").length + 4096)
    await unlink(m.nlc)
    expect(names(await expectFresh())).not.toContain("hf_user_M.Q8_0.gguf")
  })

  it("a store that did not exist when the cache was written is listed once it appears", async () => {
    const roots = fixtureRoots(home)
    await ollamaModel(roots.ollama, { model: "llama3.2", gguf: tinyGguf("x") })
    await backdate(home)
    await primed()
    await nodeLlamaCppModel(roots.nodeLlamaCpp, "late.gguf", tinyGguf("late"))
    expect(names(await expectFresh())).toContain("late.gguf")
  })

  it("a corrupt or foreign-version cache is ignored and rebuilt, never an error", async () => {
    await machine()
    await mkdir(join(home, "models", ".cache"), { recursive: true })
    for (const junk of ["{not json", JSON.stringify({ version: 99, entries: [] }), JSON.stringify({ version: 1, entries: [{ key: 1 }] })]) {
      await writeFile(cacheFile(), junk)
      expect(await listCached()).toEqual(await fresh())
      expect(JSON.parse(await readFile(cacheFile(), "utf8")).version).toBe(3)
    }
  })

  it("a cache that cannot be written (the model directory is a file) leaves the listing as it was", async () => {
    await machine()
    await writeFile(join(home, "models"), "not a directory")
    expect(await listCached()).toEqual(await fresh())
    expect(await listCached()).toEqual(await fresh())
  })
})

describe("cached inventory through the CLI", () => {
  beforeAll(() => ensureBuilt())

  it("model list twice, then an Ollama model added: the second list is the first, the third has the new model", async () => {
    const m = await machine()
    const list = async () => {
      const r = await runCli(["model", "list", "--backend", "gguf", "--json"], { cwd: home, env: isolatedEnv(home) })
      expect(r.code).toBe(0)
      return (JSON.parse(r.stdout) as { models: Array<{ name: string; store: string }> }).models.map((x) => x.name).sort()
    }
    const first = await list()
    expect(first).toContain("llama3.2:3b")
    const cache = join(home, ".llmspell", "models", ".cache", "inventory.json")
    expect(JSON.parse(await readFile(cache, "utf8")).entries).toHaveLength(4)
    expect(await list()).toEqual(first)
    await ollamaModel(m.roots.ollama, { model: "qwen2.5", gguf: tinyGguf("qwen") })
    expect(await list()).toEqual([...first, "qwen2.5:latest"].sort())
  })
})

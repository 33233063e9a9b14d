/**
 * A pull whose bytes are already on this machine (an Ollama blob, an HF cache blob) costs no download:
 * the file is hard-linked into llmspell's store (or copied with `copy`), and the fake hub's request log
 * shows the listing only, never a file transfer.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestContext from "effect/TestContext"
import { stat, readFile, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createHash } from "node:crypto"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import type { StoresConfig } from "../src/domain/ConfigSchema.js"
import * as ModelStoreLive from "../src/layers/store/ModelStoreLive.js"
import { ModelStore } from "../src/services/ModelStore.js"
import { type FakeHub, ggufContent, startFakeHub } from "./fixtures/fakeHub.js"
import { commitId, fixtureRoots, hfCacheFile, ollamaModel } from "./fixtures/foreignStores.js"
import { downloader, dropStore, fileSystems, pullAll, tempStore } from "./support/downloaderHarness.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const bytes = ggufContent("reuse", 200_000)
const sha = createHash("sha256").update(bytes).digest("hex")
let hub: FakeHub
let home: string

beforeAll(async () => {
  hub = await startFakeHub({})
  await hub.addRepo({ name: "org/reuse", files: [{ path: "reuse-Q4_K_M.gguf", content: bytes }] })
})
afterAll(() => hub.close())
beforeEach(async () => {
  hub.resetStats()
  home = await mkdtemp(join(tmpdir(), "llmspell-reuse-"))
  return () => rm(home, { recursive: true, force: true })
})

const stores = (over: Partial<StoresConfig> = {}): StoresConfig => ({
  ollama: "auto",
  hfCache: "auto",
  lmstudio: false,
  nodeLlamaCpp: false,
  env: {},
  home,
  ...over
})

/** The downloader over a ModelStore that reads the foreign stores `config` names. */
const downloaderOver = (config: StoresConfig) =>
  downloader(hub, {}, {}, Layer.effect(ModelStore, ModelStoreLive.make(config)).pipe(Layer.provide(fileSystems)))

/** Runs a pull under the TestClock (moved only for the waits a pull announces). */
const runPull = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(Effect.provide(effect, TestContext.TestContext))

const fileDownloads = () => hub.requests.filter((r) => r.server === "cdn" || r.url.includes("/resolve/"))

describe("pull satisfied by bytes already on the machine", () => {
  it("hard-links an HF cache blob: 0 B downloaded, no file request, same inode", async () => {
    const hf = await hfCacheFile(fixtureRoots(home).hfCache, {
      repo: "someone/Other-GGUF",
      commit: commitId("x"),
      file: "other-Q4_K_M.gguf",
      bytes
    })
    const store = await tempStore()
    try {
      const { error, events } = await runPull(pullAll(downloaderOver(stores()), "org/reuse:Q4_K_M", store))
      expect(error).toBeUndefined()
      const done = events.at(-1)!
      expect(done.result).toMatchObject({ satisfiedFrom: "hf-cache", downloadedBytes: 0, sizeBytes: bytes.length })
      expect(done.message).toBe("already on this machine (hf-cache): 0 B downloaded")
      expect(fileDownloads()).toEqual([])
      expect(hub.requests.length).toBeGreaterThan(0) // the listing (it gives the sha256) was asked
      const [ours, theirs] = await Promise.all([stat(done.result!.path!), stat(hf.blobPath)])
      expect(ours.ino).toBe(theirs.ino)
      // a later pull trusts it like any verified file
      hub.resetStats()
      const again = await runPull(pullAll(downloaderOver(stores()), "org/reuse:Q4_K_M", store))
      expect(again.events.at(-1)!.result).toMatchObject({ alreadyPresent: true, downloadedBytes: 0 })
      expect(hub.requests).toEqual([])
    } finally {
      await dropStore(store)
    }
  })

  it("an Ollama blob with --copy: a real copy (another inode) with the same bytes, still no download", async () => {
    const ollama = await ollamaModel(fixtureRoots(home).ollama, { model: "reuse", gguf: bytes })
    const store = await tempStore()
    try {
      const { error, events } = await runPull(
        pullAll(downloaderOver(stores()), "org/reuse:Q4_K_M", store, { copy: true })
      )
      expect(error).toBeUndefined()
      const result = events.at(-1)!.result!
      expect(result).toMatchObject({ satisfiedFrom: "ollama-store", downloadedBytes: 0 })
      expect(fileDownloads()).toEqual([])
      expect((await stat(result.path!)).ino).not.toBe((await stat(ollama.blobPath)).ino)
      expect(createHash("sha256").update(await readFile(result.path!)).digest("hex")).toBe(sha)
    } finally {
      await dropStore(store)
    }
  })

  it("with the stores turned off ([stores] … = false) it downloads as before", async () => {
    await ollamaModel(fixtureRoots(home).ollama, { model: "reuse", gguf: bytes })
    const store = await tempStore()
    try {
      const { error, events } = await runPull(
        pullAll(downloaderOver(stores({ ollama: false, hfCache: false })), "org/reuse:Q4_K_M", store)
      )
      expect(error).toBeUndefined()
      expect(events.at(-1)!.result).toMatchObject({ downloadedBytes: bytes.length })
      expect(events.at(-1)!.result!.satisfiedFrom).toBeUndefined()
    } finally {
      await dropStore(store)
    }
  })

  it("through the CLI: model pull says where the bytes were and that nothing was downloaded", async () => {
    ensureBuilt()
    await hfCacheFile(fixtureRoots(home).hfCache, {
      repo: "someone/Other-GGUF",
      commit: commitId("y"),
      file: "other-Q4_K_M.gguf",
      bytes
    })
    const result = await runCli(["model", "pull", "org/reuse:Q4_K_M"], {
      cwd: home,
      env: isolatedEnv(home, { HF_ENDPOINT: hub.url })
    })
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toContain("org/reuse:Q4_K_M: already on this machine (hf-cache): 0 B downloaded")
    expect(fileDownloads()).toEqual([])
  }, 60_000)
})

/**
 * `find` on a foreign name looks only where that name can live (`scanForReference`): an Ollama name
 * reads its one manifest path, a hub reference walks its one HF cache repo, an LM Studio name its
 * `publisher/repo` folder; the same bytes elsewhere are found by their sha256 (blob names), so the
 * locations still come out merged. Checked with an fs that records every call, on the 4 × 10 model
 * machine of the bench, and against a full scan: whatever a full scan would match, the targeted one finds.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { mkdtemp, realpath, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { type ForeignStoreRoots, sameOllamaName } from "../src/domain/ForeignStores.js"
import * as Scan from "../src/layers/store/foreign/scan.js"
import type { ScanOptions, ScanResult } from "../src/layers/store/foreign/scan.js"
import * as ModelStoreLive from "../src/layers/store/ModelStoreLive.js"
import * as ScanFsLive from "../src/layers/store/scanFs.js"
import { ScanFs, type ScanFsService } from "../src/layers/store/scanFs.js"
import { layerFromObject } from "../src/layers/ConfigLive.js"
import { ModelStore } from "../src/services/ModelStore.js"
import { commitId, fixtureRoots, hfCacheFile, ollamaModel, populatedMachine, tinyGguf } from "./fixtures/foreignStores.js"

let home: string
beforeEach(async () => {
  home = await realpath(await mkdtemp(join(tmpdir(), "llmspell-find-")))
})
afterEach(async () => {
  await rm(home, { recursive: true, force: true })
})

/** The real fs, recording the paths it lists and reads (whole small files, and the first bytes of models). */
const recordingFs = () => {
  const calls = { readdir: [] as Array<string>, readFile: [] as Array<string>, readPrefix: [] as Array<string> }
  const real = ScanFsLive.make
  const fs: ScanFsService = {
    ...real,
    readDirectory: (p, limit) => Effect.zipRight(Effect.sync(() => calls.readdir.push(p)), real.readDirectory(p, limit)),
    readText: (p, max) => Effect.zipRight(Effect.sync(() => calls.readFile.push(p)), real.readText(p, max)),
    readPrefix: (p, bytes, o) => Effect.zipRight(Effect.sync(() => calls.readPrefix.push(p)), real.readPrefix(p, bytes, o))
  }
  return { fs, calls }
}

const scanForReference = (roots: ForeignStoreRoots, ref: string, options: ScanOptions & { readonly fs?: ScanFsService } = {}) =>
  Effect.runPromise(Effect.provideService(Scan.scanForReference(roots, ref, options), ScanFs, options.fs ?? ScanFsLive.make))
const scanAll = (roots: ForeignStoreRoots): Promise<ScanResult> =>
  Effect.runPromise(Effect.provideService(Scan.scanAll(roots), ScanFs, ScanFsLive.make))

const rootsOf = (): ForeignStoreRoots => {
  const r = fixtureRoots(home)
  return { ollama: [r.ollama], hfCache: [r.hfCache], lmstudio: [r.lmstudio], nodeLlamaCpp: [r.nodeLlamaCpp] }
}

const under = (dir: string) => (p: string) => p === dir || p.startsWith(`${dir}/`)

describe("targeted find", () => {
  it("an Ollama name reads its one manifest and config, lists no other model's folder and no other store's", async () => {
    await populatedMachine(home, 10)
    const r = fixtureRoots(home)
    const { calls, fs } = recordingFs()
    const found = await scanForReference(rootsOf(), "model3:3b", { fs })
    expect(found.models.map((m) => [m.store, m.name])).toEqual([["ollama-store", "model3:3b"]])
    const manifests = join(r.ollama, "manifests", "registry.ollama.ai", "library")
    expect(calls.readFile.filter(under(join(r.ollama, "manifests")))).toEqual([join(manifests, "model3", "3b")])
    // the manifest chain, the config blob; the HF root once (is the blob also there?) and the flat node-llama-cpp root
    expect(calls.readFile.filter((p) => !under(join(r.ollama, "manifests"))(p)).every(under(join(r.ollama, "blobs")))).toBe(true)
    expect(calls.readFile).toHaveLength(2)
    // and the first bytes of its one blob (its facts), nobody else's
    expect(calls.readPrefix.filter(under(r.ollama))).toHaveLength(1)
    expect(calls.readdir.filter(under(manifests))).toEqual([manifests, join(manifests, "model3")])
    expect(calls.readdir.filter(under(r.lmstudio))).toEqual([])
    expect(calls.readdir.filter(under(r.hfCache)).every((p) => p === r.hfCache)).toBe(true)
    expect(calls.readdir.filter(under(r.nodeLlamaCpp))).toEqual([r.nodeLlamaCpp])
  })

  it("a hub reference walks only its repo in the HF cache; an LM Studio name only its publisher/repo folder", async () => {
    await populatedMachine(home, 10)
    const r = fixtureRoots(home)
    const hf = recordingFs()
    const found = await scanForReference(rootsOf(), "hf.co/org1/Repo1-GGUF:Q8_0", { fs: hf.fs })
    // the whole repo: a file's name depends on its siblings (hf.co/<repo>:<Q> only when Q is unique there)
    expect(found.models.map((m) => m.name)).toContain("hf.co/org1/Repo1-GGUF:Q8_0")
    expect(found.models.every((m) => m.repo === "org1/Repo1-GGUF")).toBe(true)
    const repoDir = join(r.hfCache, "models--org1--Repo1-GGUF")
    expect(hf.calls.readdir.filter(under(r.hfCache)).every((p) => p === r.hfCache || under(repoDir)(p))).toBe(true)
    // it is also an Ollama name (hf.co/org1/Repo1-GGUF:Q8_0, as `ollama pull` names hub models): no such host folder here
    expect(hf.calls.readdir.filter(under(r.ollama))).toEqual([join(r.ollama, "manifests")])
    expect(hf.calls.readdir.filter(under(r.lmstudio))).toEqual([r.lmstudio])

    const lms = recordingFs()
    const model = await scanForReference(rootsOf(), "pub3/Model3-GGUF/Model3-Q8_0.gguf", { fs: lms.fs })
    expect(model.models.map((m) => [m.store, m.name])).toEqual([["lmstudio", "pub3/Model3-GGUF/Model3-Q8_0.gguf"]])
    expect(lms.calls.readdir.filter(under(r.lmstudio))).toEqual([
      r.lmstudio,
      join(r.lmstudio, "pub3"),
      join(r.lmstudio, "pub3", "Model3-GGUF")
    ])
    // a valid Ollama name too (host pub3): one look at manifests/ finds no such host
    expect(lms.calls.readdir.filter(under(r.ollama))).toEqual([join(r.ollama, "manifests")])
    expect(lms.calls.readdir.filter(under(r.hfCache)).every((p) => p === r.hfCache)).toBe(true)
  })

  it("whatever a full scan would match by name or hub reference, the targeted scan finds (any letter case)", async () => {
    const { names } = await populatedMachine(home, 10)
    const all = await scanAll(rootsOf())
    const refs = [
      ...Object.values(names).flat(),
      ...Object.values(names).flat().map((n) => n.toUpperCase()),
      "model3",
      "library/model4:4b",
      "registry.ollama.ai/library/model5:5b",
      "org1/Repo1-GGUF:Q8_0",
      "org1/Repo1-GGUF",
      "org0/Repo0-GGUF/Repo0-F16.gguf",
      "pub1/Model1-GGUF:Q5_K_M",
      "nothing-here"
    ]
    for (const ref of refs) {
      const full = all.models.filter((m) =>
        m.name.toLowerCase() === ref.toLowerCase() || (m.store === "ollama-store" && sameOllamaName(m.name, ref)) ||
        (m.repo !== undefined && ref.toLowerCase().startsWith(m.repo.toLowerCase()))
      )
      const targeted = await scanForReference(rootsOf(), ref)
      for (const m of full) expect(targeted.models.map((t) => t.path), ref).toContain(m.path)
    }
  })

  it("the same bytes under another name in another store come along, so find gives every location", async () => {
    const r = fixtureRoots(home)
    const shared = tinyGguf("shared")
    await ollamaModel(r.ollama, { model: "llama3.2", tag: "3b", gguf: shared })
    await ollamaModel(r.ollama, { model: "other", gguf: tinyGguf("other") })
    await hfCacheFile(r.hfCache, { repo: "bartowski/Llama-GGUF", commit: commitId("a"), file: "Llama-Q4_K_M.gguf", bytes: shared })
    await hfCacheFile(r.hfCache, { repo: "someone/Else-GGUF", commit: commitId("b"), file: "Else-Q8_0.gguf", bytes: tinyGguf("else") })
    const byOllama = await scanForReference(rootsOf(), "llama3.2:3b")
    expect(byOllama.models.map((m) => m.name)).toEqual(["llama3.2:3b", "hf.co/bartowski/Llama-GGUF:Q4_K_M"])
    const byHub = await scanForReference(rootsOf(), "bartowski/Llama-GGUF:Q4_K_M")
    expect(byHub.models.map((m) => m.name)).toEqual(expect.arrayContaining(["hf.co/bartowski/Llama-GGUF:Q4_K_M", "llama3.2:3b"]))
    expect(byHub.models.map((m) => m.name)).not.toContain("hf.co/someone/Else-GGUF:Q8_0")

    const store = ModelStoreLive.layer.pipe(
      Layer.provide(Layer.merge(NodeFileSystem.layer, ScanFsLive.layer)),
      Layer.provide(layerFromObject({}, { env: {}, home }))
    )
    const find = (ref: string) =>
      Effect.runPromise(Effect.provide(Effect.flatMap(ModelStore, (s) => s.find(ref, { directory: join(home, "own"), instance: "gguf" })), store))
    const viaHub = Option.getOrThrow(await find("bartowski/Llama-GGUF:Q4_K_M"))
    expect(viaHub.store).toBe("hf-cache")
    expect(viaHub.locations.map((l) => [l.store, l.name])).toEqual([
      ["ollama-store", "llama3.2:3b"],
      ["hf-cache", "hf.co/bartowski/Llama-GGUF:Q4_K_M"]
    ])
    expect(Option.getOrThrow(await find("LLAMA3.2:3B")).store).toBe("ollama-store")
    expect(Option.isNone(await find("someone/Else-GGUF:Q4_K_M"))).toBe(true)
  })
})

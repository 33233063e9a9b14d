/**
 * ModelStore: one inventory over llmspell's own store and the foreign stores (fixtures laid out as each
 * tool writes them, in temp dirs): every model once with its store, the same bytes in two stores merged
 * by sha256, names that reach foreign models, `[stores]` settings, and blobs found by sha256. No network.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as ModelStoreLive from "../src/layers/store/ModelStoreLive.js"
import * as ScanFsLive from "../src/layers/store/scanFs.js"
import { layerFromObject } from "../src/layers/ConfigLive.js"
import { ModelStore } from "../src/services/ModelStore.js"
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

let home: string
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "llmspell-modelstore-"))
})
afterEach(async () => {
  await rm(home, { recursive: true, force: true })
})

const storeLayer = (config: unknown = {}) =>
  ModelStoreLive.layer.pipe(Layer.provide(Layer.merge(NodeFileSystem.layer, ScanFsLive.layer)), Layer.provide(layerFromObject(config, { env: {}, home })))

const run = <A, E>(effect: Effect.Effect<A, E, ModelStore>, config?: unknown) =>
  Effect.runPromise(Effect.provide(effect, storeLayer(config)))

const own = () => ({ directory: join(home, "own"), instance: "gguf" })

/** One model in each foreign store, plus one GGUF present both in Ollama's store and in the HF cache. */
const machine = async () => {
  const roots = fixtureRoots(home)
  const shared = tinyGguf("shared")
  const ollama = await ollamaModel(roots.ollama, { model: "llama3.2", tag: "3b", gguf: shared })
  const hf = await hfCacheFile(roots.hfCache, {
    repo: "bartowski/Llama-3.2-3B-Instruct-GGUF",
    commit: commitId("a"),
    file: "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
    bytes: shared
  })
  const qwen = await ollamaModel(roots.ollama, { model: "qwen2.5", gguf: tinyGguf("qwen") })
  const lms = await lmstudioModel(roots.lmstudio, {
    publisher: "lmstudio-community",
    repo: "Phi-GGUF",
    file: "Phi-Q8_0.gguf",
    bytes: tinyGguf("phi")
  })
  const nlc = await nodeLlamaCppModel(roots.nodeLlamaCpp, "hf_user_Model.Q4_K_M.gguf", tinyGguf("nlc"))
  await mkdir(own().directory, { recursive: true })
  await writeFile(join(own().directory, "loose.gguf"), tinyGguf("loose"))
  return { roots, shared, ollama, hf, qwen, lms, nlc }
}

describe("ModelStore inventory", () => {
  it("lists every model once, with the store it lives in; the same bytes in two stores are one model", async () => {
    const m = await machine()
    const inventory = await run(Effect.flatMap(ModelStore, (s) => s.list(own())))
    const byName = new Map(inventory.models.map((x) => [x.name, x]))
    expect(inventory.models).toHaveLength(5)
    expect(byName.get("loose.gguf")?.store).toBe("llmspell")
    expect(byName.get("qwen2.5:latest")?.store).toBe("ollama-store")
    expect(byName.get("lmstudio-community/Phi-GGUF/Phi-Q8_0.gguf")?.store).toBe("lmstudio")
    expect(byName.get("hf_user_Model.Q4_K_M.gguf")?.store).toBe("node-llama-cpp")
    const shared = byName.get("llama3.2:3b")!
    expect(shared.store).toBe("ollama-store")
    expect(shared.sha256).toBe(sha256Hex(m.shared))
    expect(shared.locations.map((l) => [l.store, l.name])).toEqual([
      ["ollama-store", "llama3.2:3b"],
      ["hf-cache", "hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M"]
    ])
    expect(shared.locations[0]!.removeCommand).toBe("ollama rm llama3.2:3b")
    expect(shared.locations[1]!.removeCommand).toContain("hf cache rm")
    expect(inventory.warnings).toEqual([])
  })

  it("finds foreign models by the names their tools use, without a server or the hub", async () => {
    const m = await machine()
    const find = (ref: string) => run(Effect.flatMap(ModelStore, (s) => s.find(ref, own())))
    const ollama = await find("llama3.2:3b")
    expect(Option.getOrThrow(ollama)).toMatchObject({ store: "ollama-store", path: m.ollama.blobPath })
    expect(Option.getOrThrow(await find("qwen2.5"))).toMatchObject({ store: "ollama-store", path: m.qwen.blobPath })
    expect(Option.getOrThrow(await find("qwen2.5:latest")).store).toBe("ollama-store")
    // a hub reference is found in the HF cache (as the location asked for, with the merged locations)
    const hf = Option.getOrThrow(await find("hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M"))
    expect(hf.store).toBe("hf-cache")
    expect(hf.locations).toHaveLength(2)
    expect(Option.getOrThrow(await find("bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M")).store).toBe("hf-cache")
    expect(Option.getOrThrow(await find("lmstudio-community/Phi-GGUF/Phi-Q8_0.gguf")).path).toBe(m.lms)
    expect(Option.getOrThrow(await find("hf_user_Model.Q4_K_M.gguf")).path).toBe(m.nlc)
    expect(Option.getOrThrow(await find("loose")).store).toBe("llmspell")
    expect(Option.isNone(await find("llama3.2:70b"))).toBe(true)
    expect(Option.isNone(await find("bartowski/Llama-3.2-3B-Instruct-GGUF:Q8_0"))).toBe(true)
  })

  it("[stores]: false skips a store, a path replaces its default location", async () => {
    await machine()
    const elsewhere = join(home, "elsewhere")
    await ollamaModel(elsewhere, { model: "mistral", gguf: tinyGguf("mistral") })
    const inventory = await run(
      Effect.flatMap(ModelStore, (s) => s.list(own())),
      { stores: { ollama: elsewhere, hf_cache: false, lmstudio: false, node_llama_cpp: "auto" } }
    )
    expect(inventory.models.map((x) => [x.store, x.name]).sort()).toEqual([
      ["llmspell", "loose.gguf"],
      ["node-llama-cpp", "hf_user_Model.Q4_K_M.gguf"],
      ["ollama-store", "mistral:latest"]
    ])
  })

  it("finds a blob by sha256 in any store that records it", async () => {
    const m = await machine()
    const blob = await run(Effect.flatMap(ModelStore, (s) => s.findBlob(sha256Hex(m.shared), own())))
    expect(Option.getOrThrow(blob)).toMatchObject({ store: "ollama-store", path: m.ollama.blobPath })
    const none = await run(Effect.flatMap(ModelStore, (s) => s.findBlob("0".repeat(64), own())))
    expect(Option.isNone(none)).toBe(true)
    const hfOnly = await run(
      Effect.flatMap(ModelStore, (s) => s.findBlob(sha256Hex(m.shared), own())),
      { stores: { ollama: false } }
    )
    expect(Option.getOrThrow(hfOnly).store).toBe("hf-cache")
  })
})

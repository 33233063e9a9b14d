/**
 * The write side of llmspell's store through the ModelStore service: import, verify, remove, and the
 * lock remove shares with pull. No hub, no HTTP server at all: the store is local disk only.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { slugOf } from "../src/domain/HubRef.js"
import * as ModelStoreLive from "../src/layers/store/ModelStoreLive.js"
import * as ScanFsLive from "../src/layers/store/scanFs.js"
import { layerFromObject } from "../src/layers/ConfigLive.js"
import { ModelStore } from "../src/services/ModelStore.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { storeFiles, writeLock } from "./support/downloaderHarness.js"

let home: string
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "llmspell-storewrite-"))
})
afterEach(async () => {
  await rm(home, { recursive: true, force: true })
})

const noForeign = { stores: { ollama: false, hf_cache: false, lmstudio: false, node_llama_cpp: false } }
const run = <A, E>(effect: Effect.Effect<A, E, ModelStore>) =>
  Effect.runPromise(Effect.provide(effect, ModelStoreLive.layer.pipe(Layer.provide(Layer.merge(NodeFileSystem.layer, ScanFsLive.layer)), Layer.provide(layerFromObject(noForeign, { env: {}, home })))))
const runEither = <A, E>(effect: Effect.Effect<A, E, ModelStore>) => run(Effect.either(effect))
const own = () => ({ directory: join(home, "models"), instance: "gguf" })

describe("ModelStore: import, verify, remove", () => {
  it("imports a GGUF, verifies it, reports a corrupt copy with its repair command, removes it", async () => {
    const source = join(home, "downloaded-Q4_K_M.gguf")
    await writeFile(source, tinyLlamaGguf({ seed: 1 }))
    const installed = await run(Effect.flatMap(ModelStore, (s) => s.importFile(source, own(), { name: "mine" })))
    expect(installed.name).toBe("mine")
    // one file per name: `imported/<slug of the name>.gguf`
    expect(installed.primaryPath).toBe(join(own().directory, "imported", `${slugOf("mine")}.gguf`))

    const ok = await run(Effect.flatMap(ModelStore, (s) => s.verify(own())))
    expect(ok.ok).toBe(true)
    expect(ok.files.map((f) => f.status)).toEqual(["ok"])

    // a new file by the same name (the import was a hard link: replacing, not writing, keeps the source intact)
    await rm(installed.primaryPath)
    await writeFile(installed.primaryPath, tinyLlamaGguf({ seed: 2 }))
    const bad = await run(Effect.flatMap(ModelStore, (s) => s.verify(own(), "mine")))
    expect(bad.ok).toBe(false)
    expect(bad.files[0]).toMatchObject({ status: "corrupt", expectedFrom: "import", repair: `llmspell model import ${source} --name mine` })

    const removed = await run(Effect.flatMap(ModelStore, (s) => s.remove("mine", own())))
    expect(removed.removedFiles).toEqual([installed.primaryPath])
    expect(await storeFiles(own())).toEqual([])
    expect((await run(Effect.flatMap(ModelStore, (s) => s.list(own())))).models).toEqual([])
  })

  it("remove refuses with ModelBusy while a pull holds the file's lock; a missing model is ModelNotFound", async () => {
    const source = join(home, "busy.gguf")
    await writeFile(source, tinyLlamaGguf({ seed: 3 }))
    await run(Effect.flatMap(ModelStore, (s) => s.importFile(source, own())))
    await writeLock(join(own().directory, "locks", `${slugOf(`imported/${slugOf("busy")}.gguf`)}.lock`), {
      pid: process.pid,
      host: hostname(),
      startedAt: "x"
    })
    const busy = await runEither(Effect.flatMap(ModelStore, (s) => s.remove("busy", own())))
    expect(busy._tag === "Left" && busy.left._tag).toBe("ModelBusy")
    const missing = await runEither(Effect.flatMap(ModelStore, (s) => s.remove("nope", own())))
    expect(missing._tag === "Left" && missing.left._tag).toBe("ModelNotFound")
  })
})

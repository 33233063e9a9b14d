/**
 * The ModelStore service through the package entry point, as an outside program would use it: the tag,
 * its live layer, and the store-directory type (`StoreRoot`, formerly a second `ModelStore` that clashed).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ModelStore, ModelStoreLive, type ModelStoreService, type StoreRoot } from "llmspell"

describe("ModelStore in the public API", () => {
  it("exports the tag and its live layer", () => {
    expect(ModelStore.key).toBe("llmspell/ModelStore")
    expect(Layer.isLayer(ModelStoreLive.layer)).toBe(true)
  })

  it.effect("a program asks the ModelStore tag for a StoreRoot's inventory", () => {
    const root: StoreRoot = { directory: "/nowhere", instance: "gguf" }
    const fake: ModelStoreService = {
      list: (own) => Effect.succeed({ models: [], warnings: [{ store: "lmstudio", path: own.directory, reason: "test" }] }),
      find: () => Effect.die("unused"),
      findBlob: () => Effect.die("unused"),
      verify: () => Effect.die("unused"),
      remove: () => Effect.die("unused"),
      importFile: () => Effect.die("unused")
    }
    return Effect.flatMap(ModelStore, (store) => store.list(root)).pipe(
      Effect.provide(Layer.succeed(ModelStore, fake)),
      Effect.map((inventory) => expect(inventory.warnings[0]?.path).toBe("/nowhere"))
    )
  })
})

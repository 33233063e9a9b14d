/**
 * node-llama-cpp's models folder (`domain/ForeignStores.ts` has the layout and its source): the `*.gguf`
 * files directly in it. A file link may leave the folder only to a regular file that starts like a GGUF.
 */
import * as Effect from "effect/Effect"
import * as ForeignStores from "../../../domain/ForeignStores.js"
import type { ForeignModel } from "../../../domain/ForeignStores.js"
import type { ScanFs } from "../scanFs.js"
import { makeContext, openRoot, plainResolve, resultOf, type ScanOptions, type ScanResult, walkGguf } from "./walk.js"

/** Lists node-llama-cpp's models in each root. */
export const scanNodeLlamaCpp = (roots: ReadonlyArray<string>, options: ScanOptions = {}): Effect.Effect<ScanResult, never, ScanFs> =>
  Effect.gen(function*() {
    const ctx = yield* makeContext("node-llama-cpp", options)
    const models: Array<ForeignModel> = []
    for (const path of roots) {
      const root = yield* openRoot(ctx, path)
      if (root === undefined) continue
      for (const found of yield* walkGguf(ctx, root, "", 1, plainResolve(ctx), options.keep)) {
        const model = ForeignStores.nodeLlamaCppForeignModel(path, { relPath: found.relPath, ...found.first, otherParts: found.others })
        if (model !== undefined) models.push(model)
      }
    }
    return resultOf(ctx, models)
  }).pipe(Effect.withSpan("ModelStore.scanNodeLlamaCpp"))

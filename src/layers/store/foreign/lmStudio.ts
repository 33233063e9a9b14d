/**
 * LM Studio's models folders (`domain/ForeignStores.ts` has the layout and its sources):
 * `<publisher>/<repo>/…/*.gguf`. `lms import -l` makes a model a symlink to a file anywhere, so a file
 * link may leave the store, but only to a regular file that starts like a GGUF; a folder link must stay
 * inside it (`pub/root -> /` is a warning, not a walk of the disk).
 */
import * as Effect from "effect/Effect"
import * as ForeignStores from "../../../domain/ForeignStores.js"
import type { ForeignModel } from "../../../domain/ForeignStores.js"
import type { ScanFs } from "../scanFs.js"
import { makeContext, openRoot, plainResolve, resultOf, type ScanOptions, type ScanResult, walkGguf } from "./walk.js"

/** Lists LM Studio models under each root. */
export const scanLmStudio = (roots: ReadonlyArray<string>, options: ScanOptions = {}): Effect.Effect<ScanResult, never, ScanFs> =>
  Effect.gen(function*() {
    const ctx = yield* makeContext("lmstudio", options)
    const models: Array<ForeignModel> = []
    for (const path of roots) {
      const root = yield* openRoot(ctx, path)
      if (root === undefined) continue
      for (const found of yield* walkGguf(ctx, root, "", ForeignStores.LMSTUDIO_MAX_DEPTH, plainResolve(ctx), options.keep)) {
        const model = ForeignStores.lmstudioForeignModel(path, { relPath: found.relPath, ...found.first, otherParts: found.others })
        if (model !== undefined) models.push(model)
      }
    }
    return resultOf(ctx, models)
  }).pipe(Effect.withSpan("ModelStore.scanLmStudio"))

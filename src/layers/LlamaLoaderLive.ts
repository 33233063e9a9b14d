/**
 * The live LlamaLoader: node-llama-cpp's prebuilt llama.cpp, by default in a supervised worker
 * process per loaded model (`internal/ggufWorkerLoader.ts`), so a model file that makes llama.cpp
 * abort fails one request with `BackendCrashed` instead of ending this process; with
 * `isolation = "none"` in this process (`internal/llama.ts`), created on first use.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { LlamaLoader, type LlamaLoaderService } from "../services/LlamaLoader.js"
import { makeWorkerLoader, type WorkerLoaderOptions } from "./internal/ggufWorkerLoader.js"
import { makeLoader as makeInProcessLoader } from "./internal/llama.js"

export type { WorkerLoaderOptions } from "./internal/ggufWorkerLoader.js"

/** A loader that runs each load in a worker process, or in this process when `isolation = "none"`. */
export const make = (options: WorkerLoaderOptions = {}): LlamaLoaderService => {
  const worker = makeWorkerLoader(options)
  let inProcess: LlamaLoaderService | undefined
  const local = () => (inProcess ??= makeInProcessLoader())
  return {
    runtime: (device, isolation) => (isolation === "none" ? local().runtime(device) : worker.runtime(device)),
    load: (path, loadOptions) =>
      loadOptions.isolation === "none" ? local().load(path, loadOptions) : worker.load(path, loadOptions),
    memoryNeeds: (path, o) => (o.isolation === "none" ? local().memoryNeeds(path, o) : worker.memoryNeeds(path, o))
  }
}

/** The live loader with its default budgets (2 GiB worker heap, 30 s prompt preparation, 1 s to stop). */
export const layer: Layer.Layer<LlamaLoader> = Layer.effect(LlamaLoader, Effect.sync(() => make()))

/** The live loader with other budgets. */
export const layerWith = (options: WorkerLoaderOptions): Layer.Layer<LlamaLoader> =>
  Layer.effect(LlamaLoader, Effect.sync(() => make(options)))

/**
 * The live LlamaLoader: node-llama-cpp's prebuilt llama.cpp, by default in a supervised worker
 * process per loaded model (`workerLoader.ts`), so a model file that makes llama.cpp
 * abort fails one request with `BackendCrashed` instead of ending this process; with
 * `isolation = "none"` in this process (`llama.ts`), created on first use.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { LlamaLoader, type LlamaLoaderService } from "../../services/LlamaLoader.js"
import { makeWorkerLoaderWithSpare, type WorkerLoaderOptions } from "./workerLoader.js"
import { makeLoader as makeInProcessLoader } from "./llama.js"

export type { WorkerLoaderOptions } from "./workerLoader.js"

/**
 * A loader that runs each load in a worker process, or in this process when `isolation = "none"`.
 * With `spareWorker`, call `shutdown` when done (the layers do).
 */
export const makeWithShutdown = (options: WorkerLoaderOptions = {}): { readonly service: LlamaLoaderService; readonly shutdown: Effect.Effect<void> } => {
  const { service: worker, shutdown } = makeWorkerLoaderWithSpare(options)
  let inProcess: LlamaLoaderService | undefined
  const local = () => (inProcess ??= makeInProcessLoader())
  return { shutdown, service: {
    runtime: (device, isolation) => (isolation === "none" ? local().runtime(device) : worker.runtime(device)),
    load: (path, loadOptions) =>
      loadOptions.isolation === "none" ? local().load(path, loadOptions) : worker.load(path, loadOptions),
    memoryNeeds: (path, o) => (o.isolation === "none" ? local().memoryNeeds(path, o) : worker.memoryNeeds(path, o))
  } }
}

/** The loader without a spare worker (nothing to shut down). */
export const make = (options: Omit<WorkerLoaderOptions, "spareWorker"> = {}): LlamaLoaderService =>
  makeWithShutdown({ ...options, spareWorker: false }).service

/**
 * The live loader with other budgets, or a spare worker (`spareWorker: true`: for long-running
 * programs that load several models or reload them; the spare is killed when the layer closes).
 */
export const layerWith = (options: WorkerLoaderOptions): Layer.Layer<LlamaLoader> =>
  Layer.scoped(
    LlamaLoader,
    Effect.map(Effect.acquireRelease(Effect.sync(() => makeWithShutdown(options)), (l) => l.shutdown), (l) => l.service)
  )

/**
 * The live loader with its default budgets (2 GiB worker heap; 30 s for a prompt's preparation once
 * it has a sequence; 1 s of waiting for a cancelled request; a worker killed as stuck after 60 s
 * without answering a ping) and no spare worker: a command that loads one model would pay for
 * starting a second.
 */
export const layer: Layer.Layer<LlamaLoader> = layerWith({})

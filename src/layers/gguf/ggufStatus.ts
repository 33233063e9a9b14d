/**
 * What the GGUF backend says about itself and its models: `status` (the llama.cpp runtime, the
 * instance's settings, what is loaded) and `info` (a model's facts from its GGUF header, and the
 * memory it needs from node-llama-cpp's GgufInsights). Reads only; loads nothing.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as os from "node:os"
import * as nodePath from "node:path"
import type { GgufInstanceConfig } from "../../domain/ConfigSchema.js"
import { type BackendUnavailable, isLlmspellError, type LlmspellError, type ModelStoreUnusable } from "../../domain/Errors.js"
import { errorToJson } from "../../domain/Failure.js"
import * as Gguf from "../../domain/GgufReader.js"
import { factsOfFile } from "../../domain/ModelFacts.js"
import type { BackendStatus, LoadedModel, ModelInfo } from "../../domain/Types.js"
import type { GgufResolveError } from "../../services/GgufBackend.js"
import type { InvalidModelFile } from "../../domain/Errors.js"
import type { Isolation, LlamaLoaderService } from "../../services/LlamaLoader.js"
import type { Inventory } from "../../services/ModelStore.js"
import { readGgufFile } from "../store/readGgufFile.js"
import type { ResolvedFile } from "./ggufFiles.js"

/** `context_size = "auto"` never goes above this (per sequence): real models advertise 128k. */
export const CONTEXT_SIZE_CAP = 4096

const formatGiB = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`

const parameterSize = (count: number): string =>
  count >= 1e9 ? `${(count / 1e9).toFixed(1)}B` : count >= 1e6 ? `${(count / 1e6).toFixed(count >= 1e8 ? 0 : 1)}M` : `${(count / 1e3).toFixed(0)}K`

/** What the store scans skipped and why (unreadable, a FIFO, a link leaving a store…), at most 20 lines. */
const storeWarnings = (warnings: ReadonlyArray<{ readonly store: string; readonly path: string; readonly reason: string }>) => [
  ...warnings.slice(0, 20).map((w) => `${w.store}: ${w.path}: ${w.reason}`),
  ...(warnings.length > 20 ? [`… and ${warnings.length - 20} more skipped in other tools' stores`] : [])
]

const errorInfo = (e: LlmspellError | BackendUnavailable) =>
  isLlmspellError(e) ? errorToJson(e) : { _tag: "UnknownError", message: String(e) }

/** The instance's facts `status` and `info` report. */
export interface StatusContext {
  readonly instance: GgufInstanceConfig
  readonly isolation: Isolation
  readonly threads: number
  readonly cores: number
  readonly loader: LlamaLoaderService
}

/** A model's facts: its GGUF header, where it is, and what it needs in memory. */
export const info = (
  context: StatusContext,
  model: string,
  resolve: (model: string) => Effect.Effect<ResolvedFile, GgufResolveError>
): Effect.Effect<ModelInfo, GgufResolveError | InvalidModelFile> =>
  Effect.gen(function*() {
    const { instance, isolation, loader } = context
    const file = yield* resolve(model)
    const gguf = yield* readGgufFile(file.path, { model, instance: instance.name })
    const arch = gguf.architecture
    const num = (key: string) => Gguf.metadataNumber(gguf, `${arch}.${key}`)
    const count = Gguf.parameterCount(gguf)
    const trainContext = num("context_length")
    const defaultContext = instance.contextSize === "auto"
      ? Math.min(CONTEXT_SIZE_CAP, trainContext ?? CONTEXT_SIZE_CAP)
      : instance.contextSize
    const memory = yield* loader.memoryNeeds(file.path, {
      isolation,
      device: instance.device,
      gpuLayers: instance.gpuLayers,
      contextSize: defaultContext
    }).pipe(Effect.either)
    const generalName = Gguf.metadataString(gguf, "general.name")
    // the same facts every view gives (model list, /api/tags, /api/ps, /api/show)
    const modelFacts = factsOfFile(gguf, nodePath.basename(file.path))
    return {
      name: file.name,
      backend: "gguf",
      instance: instance.name,
      architecture: arch,
      parameterCount: count,
      parameterSize: parameterSize(count),
      ...(modelFacts.quantization !== undefined ? { quantization: modelFacts.quantization } : {}),
      ...(trainContext !== undefined ? { contextLength: trainContext } : {}),
      ...(num("embedding_length") !== undefined ? { embeddingLength: num("embedding_length")! } : {}),
      ...(num("block_count") !== undefined ? { layers: num("block_count")! } : {}),
      ...(num("attention.head_count") !== undefined ? { heads: num("attention.head_count")! } : {}),
      ...(num("attention.head_count_kv") !== undefined ? { headsKv: num("attention.head_count_kv")! } : {}),
      ...(gguf.vocabularySize !== undefined ? { vocabularySize: gguf.vocabularySize } : {}),
      chatTemplate: Gguf.metadataString(gguf, "tokenizer.chat_template") !== undefined,
      sizeBytes: gguf.fileSize,
      path: file.path,
      ...(file.store !== undefined ? { store: file.store } : {}),
      ...(file.locations !== undefined ? { locations: file.locations } : {}),
      ...(memory._tag === "Right" ? { memory: memory.right } : {}),
      capabilities: modelFacts.capabilities ?? ["completion"],
      details: {
        ggufVersion: gguf.version,
        tensors: gguf.tensorCount,
        ...(generalName !== undefined ? { generalName } : {}),
        ...(memory._tag === "Left" ? { memoryError: memory.left.message } : {})
      }
    } satisfies ModelInfo
  }).pipe(Effect.withSpan("GgufBackend.info", { attributes: { model } }))

/** The instance's health and settings, the llama.cpp runtime, and what is loaded; never fails. */
export const status = (
  context: StatusContext,
  loaded: Effect.Effect<ReadonlyArray<LoadedModel>>,
  inventory: Effect.Effect<Inventory, ModelStoreUnusable>
): Effect.Effect<BackendStatus> =>
  Effect.gen(function*() {
    const { cores, instance, isolation, loader, threads } = context
    const stores = yield* Effect.either(inventory)
    const models = Either.map(stores, (i) => i.models)
    const base = {
      "model directory": instance.modelDirectory,
      threads: instance.threads === "auto" ? `${threads} (auto: ${cores} cores available)` : threads,
      "context size": instance.contextSize === "auto" ? `auto (at most ${CONTEXT_SIZE_CAP})` : instance.contextSize,
      "gpu layers": instance.gpuLayers,
      parallel: instance.parallel,
      isolation,
      "max loaded models": instance.maxLoadedModels,
      "idle unload": `${instance.idleUnloadSeconds} s`,
      ram: `${formatGiB(os.freemem())} free of ${formatGiB(os.totalmem())}`
    }
    const runtime = yield* Effect.either(loader.runtime(instance.device, isolation))
    const common = {
      instance: instance.name,
      backend: "gguf" as const,
      endpoint: instance.modelDirectory,
      ...(models._tag === "Right" ? { modelsPresent: models.right.length } : {}),
      loaded: yield* loaded
    }
    const modelWarnings = stores._tag === "Left"
      ? [`cannot list the model store: ${stores.left.message}`]
      : storeWarnings(stores.right.warnings)
    if (runtime._tag === "Left") {
      return {
        ...common,
        available: false,
        error: errorInfo(runtime.left),
        details: { device: instance.device, ...base },
        warnings: modelWarnings
      }
    }
    const r = runtime.right
    return {
      ...common,
      available: true,
      ...(r.libraryVersion !== undefined ? { version: `node-llama-cpp ${r.libraryVersion}` } : {}),
      details: {
        binary: r.binary,
        ...(r.llamaCppRelease !== undefined ? { "llama.cpp": r.llamaCppRelease } : {}),
        device: `${r.device} (${r.reason})`,
        ...(r.gpuNames.length > 0 ? { gpu: r.gpuNames.join(", ") } : {}),
        ...(r.vramFreeBytes !== undefined && r.vramTotalBytes !== undefined && r.vramTotalBytes > 0
          ? { vram: `${formatGiB(r.vramFreeBytes)} free of ${formatGiB(r.vramTotalBytes)}` }
          : {}),
        ...base
      },
      warnings: [...r.warnings, ...modelWarnings]
    }
  })

/**
 * The in-process LlamaLoader: node-llama-cpp in this process (`isolation = "none"`, and inside
 * each GGUF worker process, `workerMain.ts`). Loading a validated file (see `readGgufFile.ts`)
 * makes its context and sequences; the jobs around it live beside it: the runtime and device
 * (`llamaRuntime.ts`), chat history (`chatHistory.ts`), grammars (`llamaGrammar.ts`), generation
 * (`llamaGenerate.ts`), embeddings (`llamaEmbed.ts`) and ranking (`llamaRank.ts`). Promises, aborts and library errors
 * become Effects with typed errors (`BackendError`, `DeviceUnavailable`) and spans named
 * `LlamaLoader.*`. llama.cpp aborts the process on some malformed files, which is why it normally
 * runs inside a worker process. All state (the Llama per device, recent llama.cpp log lines,
 * grammars) belongs to one `makeInProcessLoader()`.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { LlamaContext } from "node-llama-cpp"
import { BackendError, type ContextOverflow, type DeviceUnavailable } from "../../domain/Errors.js"
import type { GenerateRequest } from "../../domain/Types.js"
import type {
  EmbeddedInput,
  LlamaLoaderService,
  RankedDocument,
  LoadedModelHandle,
  LoadOptions,
  LoaderEvent,
  MemoryNeeds
} from "../../services/LlamaLoader.js"
import { embedOn, tokenizeWith } from "./llamaEmbed.js"
import { countPromptWith, type GenerateHooks, generateOn, type GenerationTarget, prefixCopier, type SequenceSlot } from "./llamaGenerate.js"
import { rankOn } from "./llamaRank.js"
import { makeGrammarCache } from "./llamaGrammar.js"
import { importLibrary, LogBuffer, makeRuntimes, toBackendError } from "./llamaRuntime.js"
import { prefixChooser } from "./sequenceChoice.js"
import * as SequenceQueue from "./sequenceQueue.js"

export { toHistory } from "./chatHistory.js"
export type { GenerateHooks } from "./llamaGenerate.js"
export { toBackendError } from "./llamaRuntime.js"

/** Hooks the worker process uses; the in-process loader needs none. */
export interface LoaderHooks {
  /** Every llama.cpp warning or error line, as it is logged. */
  readonly onLog?: (line: string) => void
}

/** A loaded model with the in-process extras the worker needs. */
export interface InProcessModel extends LoadedModelHandle {
  readonly generateWith: (request: GenerateRequest, hooks: GenerateHooks) => Stream.Stream<LoaderEvent, BackendError | ContextOverflow>
  readonly embed: (inputs: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<EmbeddedInput>, BackendError | ContextOverflow>
  readonly rank: (query: string, documents: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<RankedDocument>, BackendError | ContextOverflow>
  readonly tokenize: (text: string) => Effect.Effect<ReadonlyArray<number>, BackendError>
  readonly countPromptTokens: (request: GenerateRequest) => Effect.Effect<number, BackendError>
}

/** A loader over node-llama-cpp in this process, with its own Llamas, log buffer and grammars. */
export const makeInProcessLoader = (hooks: LoaderHooks = {}) => {
  const logs = new LogBuffer(hooks.onLog)
  const runtime = makeRuntimes(logs)
  const grammarFor = makeGrammarCache(logs)

  /** Loads a validated file and creates its context; the scope's end disposes both. */
  const load = (
    path: string,
    options: LoadOptions,
    loadHooks: { readonly onPreparing?: () => void } = {}
  ): Effect.Effect<InProcessModel, DeviceUnavailable | BackendError, Scope.Scope> =>
    Effect.gen(function*() {
      const lib = yield* Effect.promise(importLibrary)
      const { llama } = yield* runtime(options.device)
      const instance = options.instance
      const mark = logs.mark
      const model = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: (signal) =>
            llama.loadModel({
              modelPath: path,
              useMmap: true,
              gpuLayers: llama.gpu === false ? 0 : options.gpuLayers,
              loadSignal: signal
            }),
          catch: (e) => toBackendError("load model", instance, logs.since(mark))(e)
        }),
        (m) => Effect.promise(() => m.dispose())
      ).pipe(Effect.withSpan("LlamaLoader.loadModel", { attributes: { path } }))
      const names = { model: options.model ?? path, instance }
      const wrongCopy = (operation: string, loadedFor: string, needs: string) =>
        new BackendError({
          backend: "gguf",
          ...(instance !== undefined ? { instance } : {}),
          operation,
          reason: `this copy of the model was loaded for ${loadedFor}; ${needs}`
        })
      const noRank = () => Effect.fail(wrongCopy("rerank", options.purpose ?? "chat", "ranking needs a load with purpose \"ranking\""))
      // A pooled context (ranking, embedding) takes a whole input in one batch: non-causal (BERT)
      // models need it, llama.cpp asserts otherwise. Its size: the one asked for, or "auto" up to the cap.
      const requested = options.contextSize === "auto" ? Math.min(options.contextSizeCap, model.trainContextSize) : options.contextSize
      const pooled = { contextSize: options.contextSize === "auto" ? { max: requested } : requested, batchSize: requested, threads: options.threads }
      const acquireContext = <C extends { dispose(): Promise<void> }>(kind: "ranking" | "embedding", create: (signal: AbortSignal) => Promise<C>) =>
        Effect.acquireRelease(
          Effect.tryPromise({ try: create, catch: (e) => toBackendError(`create ${kind} context`, instance, logs.since(mark))(e) }),
          (c) => Effect.promise(() => c.dispose())
        ).pipe(Effect.withSpan(kind === "ranking" ? "LlamaLoader.createRankingContext" : "LlamaLoader.createEmbeddingContext", { attributes: { path } }))
      // a pooled copy does one thing (rank or embed); generating or counting a prompt needs a chat load
      const pooledModel = (
        loadedFor: string,
        contextSize: number,
        does: Pick<InProcessModel, "embed" | "rank">
      ): InProcessModel => {
        const refuse = Stream.fail(wrongCopy("generate", loadedFor, "generation needs a chat load"))
        return {
          path,
          sizeBytes: model.size,
          vramBytes: 0,
          contextSize,
          generate: () => refuse,
          generateWith: () => refuse,
          ...does,
          tokenize: tokenizeWith(model, instance),
          countPromptTokens: () => Effect.fail(wrongCopy("count tokens", loadedFor, "counting a prompt needs a chat load")),
          alive: Effect.succeed(true)
        }
      }
      if (options.purpose === "ranking") {
        // node-llama-cpp refuses a model that cannot rank here ("Computing rankings is not supported");
        // GgufBackend checks the header first, so a chat model is refused with the reason before a load
        const ranking = yield* acquireContext("ranking", (signal) => model.createRankingContext({ ...pooled, createSignal: signal }))
        const contextSize = ranking.contextSize
        return pooledModel("ranking", contextSize, {
          embed: () => Effect.fail(wrongCopy("embed", "ranking", "embeddings need a load with purpose \"embedding\"")),
          rank: (query, documents) => rankOn(ranking, contextSize, query, documents, names, logs)
        })
      }
      if (options.purpose === "embedding") {
        const embedding = yield* acquireContext("embedding", (signal) => model.createEmbeddingContext({ ...pooled, createSignal: signal }))
        // the size "auto" settled on is only on the underlying context
        const contextSize = (embedding as unknown as { readonly _llamaContext?: LlamaContext })._llamaContext?.contextSize ??
          requested
        return pooledModel("embeddings", contextSize, {
          embed: (inputs) => embedOn(model, embedding, contextSize, inputs, names, logs),
          rank: noRank
        })
      }
      const context = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            model.createContext({
              contextSize: options.contextSize === "auto"
                ? { max: Math.min(options.contextSizeCap, model.trainContextSize) }
                : options.contextSize,
              sequences: options.sequences,
              threads: options.threads
            }),
          catch: (e) => toBackendError("create context", instance, logs.since(mark))(e)
        }),
        (c) => Effect.promise(() => c.dispose())
      ).pipe(Effect.withSpan("LlamaLoader.createContext", { attributes: { path } }))
      // The chat wrapper is resolved once per model: `new LlamaChat()` with the default "auto" wrapper
      // re-resolves it from the Jinja template every time, which cost ~250 ms per request here.
      const { chatWrapper, slots } = yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            loadHooks.onPreparing?.()
            const chatWrapper = lib.resolveChatWrapper(model)
            const slots: Array<SequenceSlot> = []
            for (let i = 0; i < options.sequences; i++) {
              const sequence = context.getSequence()
              slots.push({
                sequence,
                chat: new lib.LlamaChat({ contextSequence: sequence, chatWrapper, autoDisposeSequence: false }),
                lastPromptTokens: 0
              })
            }
            return { chatWrapper, slots }
          },
          catch: toBackendError("create context sequences", instance)
        }),
        ({ slots }) => Effect.sync(() => slots.forEach((slot) => slot.chat.dispose()))
      )
      // a request gets the sequence whose KV cache holds the longest prefix of its prompt
      const sequences = yield* SequenceQueue.make(
        slots,
        prefixChooser((slot: SequenceSlot) => ({ tokens: slot.sequence.contextTokens, promptTokens: slot.lastPromptTokens }))
      )
      const target: GenerationTarget = {
        lib,
        model,
        context,
        chatWrapper,
        sequences,
        slots,
        copyPrefix: prefixCopier(slots[0]!.sequence),
        instance,
        modelName: names.model,
        logs,
        grammarFor
      }
      return {
        path,
        sizeBytes: model.size,
        vramBytes: 0,
        contextSize: context.contextSize,
        generate: (request) => generateOn(target, request, {}),
        generateWith: (request, hooks) => generateOn(target, request, hooks),
        sequences: Effect.map(sequences.counts, ({ busy, total }) => ({ busy, total })),
        embed: () =>
          Effect.fail(
            new BackendError({
              backend: "gguf",
              ...(instance !== undefined ? { instance } : {}),
              operation: "embed",
              reason: "this copy of the model was loaded for chat; embeddings need a load with purpose \"embedding\""
            })
          ),
        rank: noRank,
        tokenize: tokenizeWith(model, instance),
        countPromptTokens: countPromptWith(chatWrapper, model, instance),
        alive: Effect.succeed(true)
      } satisfies InProcessModel
    })

  /** RAM/VRAM needs from node-llama-cpp's GgufInsights (reads the header, loads nothing). */
  const memoryNeeds = (
    path: string,
    options: { readonly device: LoadOptions["device"]; readonly gpuLayers: "auto" | number; readonly contextSize: number }
  ): Effect.Effect<MemoryNeeds, DeviceUnavailable | BackendError> =>
    Effect.gen(function*() {
      const lib = yield* Effect.promise(importLibrary)
      const { llama } = yield* runtime(options.device)
      return yield* Effect.tryPromise({
        try: async () => {
          const info = await lib.readGgufFileInfo(path, { readTensorInfo: true })
          const insights = await lib.GgufInsights.from(info, llama)
          const gpuLayers = llama.gpu === false ? 0 : options.gpuLayers === "auto" ? insights.totalLayers : options.gpuLayers
          const contextSize = Math.min(options.contextSize, insights.trainContextSize ?? options.contextSize)
          const m = insights.estimateModelResourceRequirements({ gpuLayers })
          const c = insights.estimateContextResourceRequirements({ contextSize, modelGpuLayers: gpuLayers, sequences: 1 })
          return { contextSize, ramBytes: m.cpuRam + c.cpuRam, vramBytes: m.gpuVram + c.gpuVram }
        },
        catch: toBackendError("estimate memory")
      })
    }).pipe(Effect.withSpan("LlamaLoader.memoryNeeds", { attributes: { path } }))

  const service: LlamaLoaderService = {
    runtime: (device) => Effect.map(runtime(device), (r) => r.info),
    load: (path, options) => load(path, options),
    memoryNeeds
  }
  return { service, load, runtime, memoryNeeds }
}

/** The in-process loader (`isolation = "none"`). */
export const makeLoader = (): LlamaLoaderService => makeInProcessLoader().service

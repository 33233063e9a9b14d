/**
 * The live GgufBackend: one instance per configured gguf provider, assembled from its parts —
 * names resolved to files (`ggufFiles.ts`: local paths directly, anything else through the
 * ModelStore, never the hub), the loaded models (`loadedModels.ts`: the pool over the LlamaLoader,
 * each model in a worker process of its own unless `isolation = "none"`, with `parallel` context
 * sequences; requests beyond them wait for one), answers with their checks and timings
 * (`answers.ts`), and status and model facts (`ggufStatus.ts`). This file wires them into the
 * `Backend` operations and the layer.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as nodePath from "node:path"
import type { GgufInstanceConfig } from "../../domain/ConfigSchema.js"
import { GGUF_NO_VISION, hasImages } from "../../domain/Images.js"
import { BackendError, ContextOverflow, UnsupportedOperation } from "../../domain/Errors.js"
import { embeddingRefusal, factsOfFile } from "../../domain/ModelFacts.js"
import { isFileReference } from "../../domain/ModelSpec.js"
import { rankingSupport, RERANK_SERVICES } from "../../domain/Rerank.js"
import type { Embeddings, GenerateRequest, LocalModel, Reranking } from "../../domain/Types.js"
import { type GgufBackend, GgufBackendFactory } from "../../services/GgufBackend.js"
import { LlamaLoader, type LlamaLoaderService, type LoadOptions } from "../../services/LlamaLoader.js"
import { ModelDownloader, type ModelDownloaderService } from "../../services/ModelDownloader.js"
import { ModelStore, type ModelStoreService, type StoreRoot } from "../../services/ModelStore.js"
import * as ModelStoreLive from "../store/ModelStoreLive.js"
import { readGgufFile } from "../store/readGgufFile.js"
import { answerClock, makeAnswer } from "./answers.js"
import { autoThreads, availableCores } from "./cpu.js"
import { makeResolver } from "./ggufFiles.js"
import { CONTEXT_SIZE_CAP, info, status } from "./ggufStatus.js"
import { generationPlan } from "./JsonSchemaGrammar.js"
import * as LlamaLoaderLive from "./LlamaLoaderLive.js"
import * as LoadedModels from "./loadedModels.js"

const isOverflow = (e: { readonly _tag: string }): e is ContextOverflow => e._tag === "ContextOverflow"

export { CONTEXT_SIZE_CAP } from "./ggufStatus.js"
export { localPath } from "./ggufFiles.js"

/**
 * Builds one backend instance: names resolve through `modelStore` (every GGUF on the machine);
 * without one (tests, benchmarks calling this directly), only files given by path run.
 */
export const makeBackend = (
  instance: GgufInstanceConfig,
  loader: LlamaLoaderService,
  downloader: ModelDownloaderService,
  modelStore: ModelStoreService = ModelStoreLive.empty
) =>
  Effect.gen(function*() {
    const store: StoreRoot = { directory: instance.modelDirectory, instance: instance.name }
    const cores = availableCores()
    const threads = instance.threads === "auto" ? autoThreads(cores) : instance.threads
    const isolation = instance.isolation ?? "process"
    const loadOptions: LoadOptions = {
      isolation,
      instance: instance.name,
      device: instance.device,
      threads,
      contextSize: instance.contextSize,
      contextSizeCap: CONTEXT_SIZE_CAP,
      gpuLayers: instance.gpuLayers,
      sequences: instance.parallel,
      ...(instance.prepareTimeoutSeconds !== undefined ? { prepareTimeoutMs: instance.prepareTimeoutSeconds * 1000 } : {}),
      ...(instance.workerMaxHeapMb !== undefined ? { maxHeapMb: instance.workerMaxHeapMb } : {})
    }
    const { digestOf, nameOf, resolve } = makeResolver(instance.name, store, modelStore)
    const models = yield* LoadedModels.make({
      instance: instance.name,
      loader,
      loadOptions,
      capacity: instance.maxLoadedModels,
      idleUnloadSeconds: instance.idleUnloadSeconds,
      nameOf,
      digestOf
    })
    const statusContext = { instance, isolation, threads, cores, loader }

    // images are refused before anything is loaded: no model here can see them (a count of a
    // prompt with images is refused as its generation is)
    const refuseImages = (request: GenerateRequest): Effect.Effect<void, UnsupportedOperation> =>
      hasImages(request.messages)
        ? new UnsupportedOperation({
          backend: "gguf",
          operation: "images",
          reason: GGUF_NO_VISION,
          suggestion: "use an Ollama vision model (`llmspell model list --backend ollama`) or a cloud spec (openai/gpt-4o-mini)"
        })
        : Effect.void

    const generate: GgufBackend["generate"] = (model, request) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const start = yield* answerClock
        yield* refuseImages(request)
        // a schema the grammar cannot enforce is refused before anything is loaded
        const plan = yield* generationPlan(request)
        const file = yield* resolve(model)
        // the handle has `parallel` sequences; requests beyond them wait inside `generate` for a free one
        const lease = yield* models.acquire(file.path, "chat")
        const answer = makeAnswer({
          name: file.name,
          instance: instance.name,
          request,
          plan,
          start,
          generationStart: yield* answerClock,
          loadMs: lease.loadMs
        })
        return lease.handle.generate(request).pipe(
          // the worker is gone (crashed, or stopped as stuck): the next request loads the model again
          Stream.tapError(() => lease.forgetIfDead),
          Stream.mapChunksEffect(answer)
        )
      })).pipe(Stream.withSpan("GgufBackend.generate", { attributes: { model, instance: instance.name } }))

    // A pooled context's overflow (from the worker, which knows only the file) said with the model's
    // name, this instance and the operation; the document index of a rerank kept
    const namedOverflow = (model: string, operation: "embed" | "rerank") => <E extends { readonly _tag: string }>(e: E): E | ContextOverflow =>
      isOverflow(e)
        ? new ContextOverflow({
          model,
          backend: "gguf",
          instance: instance.name,
          operation,
          ...(e.document !== undefined ? { document: e.document } : {}),
          ...(e.promptTokens !== undefined ? { promptTokens: e.promptTokens } : {}),
          ...(e.contextSize !== undefined ? { contextSize: e.contextSize } : {})
        })
        : e

    // Embeddings run on an embedding context of their own (node-llama-cpp's createEmbeddingContext),
    // the model's second context; a batch is one request to the worker, vectors in input order.
    const embed: GgufBackend["embed"] = (model, inputs) =>
      Effect.scoped(Effect.gen(function*() {
        const file = yield* resolve(model)
        // a reranker (rank pooling) gives scores, not vectors: refused from its header before anything is loaded
        if (!(yield* models.isLoaded(file.path, "embedding"))) {
          const gguf = yield* readGgufFile(file.path, { model: file.name, instance: instance.name })
          const refusal = embeddingRefusal(factsOfFile(gguf, nodePath.basename(file.path)).capabilities)
          if (refusal !== undefined) {
            return yield* new UnsupportedOperation({
              backend: instance.name,
              operation: "embeddings",
              reason: `${file.name} ${refusal}`,
              suggestion: `rank with it instead (\`llmspell rerank -m ${model}\`), or embed with an embedding GGUF ` +
                `(nomic-embed-text, bge-m3; \`llmspell model info\` lists embedding among its capabilities)`
            })
          }
        }
        const base = { model: file.name, backend: "gguf" as const, instance: instance.name }
        if (inputs.length === 0) return { ...base, dimensions: 0, vectors: [], promptTokens: 0 } satisfies Embeddings
        const lease = yield* models.acquire(file.path, "embedding")
        const embedWith = lease.handle.embed
        if (embedWith === undefined) {
          return yield* new UnsupportedOperation({ backend: "gguf", operation: "embeddings", reason: "this loader cannot embed" })
        }
        const results = yield* embedWith(inputs).pipe(
          Effect.tapError(() => lease.forgetIfDead),
          Effect.mapError(namedOverflow(file.name, "embed"))
        )
        return {
          ...base,
          dimensions: results[0]?.vector.length ?? 0,
          vectors: results.map((r) => r.vector),
          promptTokens: results.reduce((n, r) => n + r.tokens, 0)
        } satisfies Embeddings
      })).pipe(Effect.withSpan("GgufBackend.embed", { attributes: { model, inputs: inputs.length, instance: instance.name } }))

    // Rerank runs on a ranking context of its own (node-llama-cpp's createRankingContext), the model's
    // third context. Whether the model can rank is read from its header before the first load (a
    // chat model has no classifier head): refused with the reason, nothing loaded. A batch is one
    // request to the worker, one score per document in input order; LocalLLM sorts and cuts.
    const rerank: GgufBackend["rerank"] = (model, request) =>
      Effect.scoped(Effect.gen(function*() {
        const file = yield* resolve(model)
        if (!(yield* models.isLoaded(file.path, "ranking"))) {
          const support = rankingSupport(yield* readGgufFile(file.path, { model: file.name, instance: instance.name }))
          if (!support.ok) {
            return yield* new UnsupportedOperation({
              backend: instance.name,
              operation: "rerank",
              reason: `${file.name} cannot rank: ${support.reason}`,
              suggestion: `use a reranker GGUF (bge-reranker, jina-reranker, Qwen3-Reranker; \`llmspell model info\` lists rerank ` +
                `among its capabilities), ${RERANK_SERVICES}`
            })
          }
        }
        const base = { model: file.name, backend: "gguf" as const, instance: instance.name }
        if (request.documents.length === 0) return { ...base, results: [], promptTokens: 0 } satisfies Reranking
        const lease = yield* models.acquire(file.path, "ranking")
        const rankWith = lease.handle.rank
        if (rankWith === undefined) {
          return yield* new UnsupportedOperation({ backend: "gguf", operation: "rerank", reason: "this loader cannot rank" })
        }
        const results = yield* rankWith(request.query, request.documents).pipe(
          Effect.tapError(() => lease.forgetIfDead),
          Effect.mapError(namedOverflow(file.name, "rerank"))
        )
        return {
          ...base,
          results: results.map((r, index) => ({ index, relevanceScore: r.score })),
          promptTokens: results.reduce((n, r) => n + r.tokens, 0)
        } satisfies Reranking
      })).pipe(Effect.withSpan("GgufBackend.rerank", { attributes: { model, documents: request.documents.length, instance: instance.name } }))

    // Through whichever context of the model is loaded (the chat one when neither is): one tokenizer.
    const tokenize: GgufBackend["tokenize"] = (model, text) =>
      Effect.scoped(Effect.gen(function*() {
        const file = yield* resolve(model)
        const lease = yield* models.acquire(file.path, yield* models.loadedPurpose(file.path))
        const tokenizeWith = lease.handle.tokenize
        if (tokenizeWith === undefined) {
          return yield* new UnsupportedOperation({ backend: "gguf", operation: "tokenize", reason: "this loader cannot tokenize" })
        }
        return yield* tokenizeWith(text).pipe(Effect.tapError(() => lease.forgetIfDead))
      })).pipe(Effect.withSpan("GgufBackend.tokenize", { attributes: { model, instance: instance.name } }))

    // On the chat model (loaded if it is not): the count is its chat template's, like a generation's prompt.
    const countTokens: GgufBackend["countTokens"] = (model, request) =>
      Effect.scoped(Effect.gen(function*() {
        yield* refuseImages(request)
        yield* generationPlan(request)
        const file = yield* resolve(model)
        const lease = yield* models.acquire(file.path, "chat")
        const count = lease.handle.countPromptTokens
        if (count === undefined) {
          return yield* new UnsupportedOperation({ backend: "gguf", operation: "count tokens", reason: "this loader cannot count a prompt" })
        }
        return yield* count(request).pipe(Effect.tapError(() => lease.forgetIfDead))
      })).pipe(Effect.withSpan("GgufBackend.countTokens", { attributes: { model, instance: instance.name } }))

    const list: GgufBackend["list"] = Effect.map(
      modelStore.list(store),
      (inventory) =>
        inventory.models.map((m): LocalModel => ({
          name: m.name,
          backend: "gguf",
          instance: instance.name,
          sizeBytes: m.sizeBytes,
          ...(m.modifiedAt !== undefined ? { modifiedAt: m.modifiedAt } : {}),
          format: "gguf",
          path: m.path,
          files: m.files,
          ...(m.quantization !== undefined ? { quantization: m.quantization } : {}),
          ...(m.family !== undefined ? { family: m.family } : {}),
          ...(m.capabilities !== undefined ? { capabilities: m.capabilities } : {}),
          digest: m.digest,
          store: m.store,
          ...(m.sha256 !== undefined ? { sha256: m.sha256 } : {}),
          locations: m.locations
        }))
    )

    const remove: GgufBackend["remove"] = (model) =>
      Effect.gen(function*() {
        if (isFileReference(model)) {
          return yield* new BackendError({
            backend: "gguf",
            instance: instance.name,
            operation: "remove",
            reason: `${model} is a file outside the model store; llmspell only deletes what it pulled`,
            suggestion: "delete the file yourself"
          })
        }
        // the store removes (and refuses another tool's model, naming its own command); the backend only
        // unloads first: the file stays valid under its mmap (deleting is safe, truncating is not)
        const found = yield* modelStore.find(model, store)
        if (Option.isSome(found) && found.value.store === "llmspell") yield* models.unload(found.value.path)
        return yield* modelStore.remove(model, store)
      })

    const ttl = (seconds: number) => (seconds < 0 ? "forever" as const : seconds * 1000)

    const backend: GgufBackend = {
      name: instance.name,
      type: "gguf",
      status: status(statusContext, models.ps, modelStore.list(store)),
      list,
      info: (model) => info(statusContext, model, resolve),
      pull: (model, options) =>
        isFileReference(model)
          ? Stream.fail(
            new BackendError({
              backend: "gguf",
              instance: instance.name,
              operation: "pull",
              reason: `${model} is a local file; there is nothing to pull`,
              suggestion: `use it directly: llmspell run --model ${model} "…"`
            })
          )
          : downloader.pull(model, store, options),
      remove,
      ps: models.ps,
      // the whole model: its chat, embedding and ranking contexts
      keepAlive: (model, seconds) => Effect.flatMap(resolve(model), (file) => models.setTimeToLive(file.path, ttl(seconds))),
      // A lease taken and given back: the model is loaded and its idle time starts now.
      load: (model, seconds) =>
        Effect.gen(function*() {
          const file = yield* resolve(model)
          yield* Effect.scoped(models.acquire(file.path, "chat"))
          if (seconds !== undefined) yield* models.setTimeToLive(file.path, ttl(seconds))
        }).pipe(Effect.withSpan("GgufBackend.load", { attributes: { model, instance: instance.name } })),
      verify: (model) => modelStore.verify(store, model),
      generate,
      embed,
      rerank,
      tokenize,
      countTokens
    }
    return backend
  })

/** The GGUF backend factory over a loader, the model store (names, list, verify, remove) and the downloader (pull). */
export const layerWithoutLoader: Layer.Layer<GgufBackendFactory, never, LlamaLoader | ModelDownloader | ModelStore> = Layer.effect(
  GgufBackendFactory,
  Effect.gen(function*() {
    const loader = yield* LlamaLoader
    const downloader = yield* ModelDownloader
    const modelStore = yield* ModelStore
    return {
      type: "gguf",
      make: (instance) => makeBackend(instance, loader, downloader, modelStore)
    }
  })
)

/** The live GGUF backend factory (node-llama-cpp loader); needs the ModelStore and the ModelDownloader. */
export const layer: Layer.Layer<GgufBackendFactory, never, ModelDownloader | ModelStore> = layerWithoutLoader.pipe(
  Layer.provide(LlamaLoaderLive.layer)
)

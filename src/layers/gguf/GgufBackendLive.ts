/**
 * The live GgufBackend. Per instance it keeps a pool of loaded models (`modelPool.ts`:
 * lazy, shared, idle unload, LRU eviction), each loaded by the LlamaLoader — in a worker process
 * of its own unless `isolation = "none"` — with `parallel` context sequences (requests beyond them
 * wait for one), and resolves model names: local files load directly, anything else through the
 * ModelStore (llmspell's store, then other tools' stores read in place; never the hub). Every file
 * is validated by our GGUF reader before llama.cpp sees it, and checked to be the same file after the load; a model whose worker died is loaded again on the
 * next request, except a file that crashed twice in a row while loading.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"
import type { GgufInstanceConfig } from "../../domain/ConfigSchema.js"
import { BackendCrashed, BackendError, ContextOverflow, type DeviceUnavailable, type BackendUnavailable, InvalidModelFile, isLlmspellError, type LlmspellError, ModelNotFound, SchemaViolation, UnsupportedOperation } from "../../domain/Errors.js"
import { checkJsonSchema } from "../../domain/JsonSchemaCheck.js"
import { constrainedOutcome, generationPlan } from "./JsonSchemaGrammar.js"
import { errorToJson } from "../../domain/Failure.js"
import * as Gguf from "../../domain/GgufReader.js"
import * as HubRef from "../../domain/HubRef.js"
import { factsOfFile, identityDigest, type ModelFacts } from "../../domain/ModelFacts.js"
import { isFileReference } from "../../domain/ModelSpec.js"
import type {
  BackendStatus,
  Completion,
  Embeddings,
  GenerateEvent,
  GenerateRequest,
  LoadedModel,
  LocalModel,
  ModelInfo,
  ModelLocation,
  ToolCall
} from "../../domain/Types.js"
import {
  type Backend,
  BackendEmbedError,
  BackendGenerateError,
  BackendInfoError,
  BackendKeepAliveError,
  BackendListError,
  BackendTokenizeError
} from "../../services/Backend.js"
import { GgufBackendFactory } from "../../services/GgufBackend.js"
import { type LoadedModelHandle, LlamaLoader, type LlamaLoaderService, type LoadOptions } from "../../services/LlamaLoader.js"
import { ModelDownloader, type ModelDownloaderService } from "../../services/ModelDownloader.js"
import { ModelStore as ModelStoreTag, type ModelStoreService, type StoreRoot } from "../../services/ModelStore.js"
import { autoThreads, availableCores } from "./cpu.js"
import * as ModelPool from "./modelPool.js"
import { readGgufFile } from "../store/readGgufFile.js"
import * as LlamaLoaderLive from "./LlamaLoaderLive.js"
import * as ModelStoreLive from "../store/ModelStoreLive.js"

/** `context_size = "auto"` never goes above this (per sequence): real models advertise 128k. */
export const CONTEXT_SIZE_CAP = 4096

type LoadError = InvalidModelFile | ModelNotFound | BackendError | BackendCrashed | DeviceUnavailable

/** A model name resolved to the file to load. */
interface ResolvedFile {
  readonly name: string
  readonly path: string
  /** Installed through the downloader (vs. a local file or a loose file in the directory). */
  readonly installed: boolean
  /** The store it came from (absent for a local file given by path), and every store holding the same bytes. */
  readonly store?: ModelLocation["store"]
  readonly locations?: ReadonlyArray<ModelLocation>
  /** The store's identity of the model (Ollama's `digest`). */
  readonly digest?: string
}

/** What identifies the bytes behind a path: a rename over it or a rewrite changes one of these. */
interface FileIdentity {
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
}

const fileIdentity = (path: string): Effect.Effect<FileIdentity | undefined> =>
  Effect.promise(() =>
    fs.stat(path).then(
      (s) => ({ dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs }),
      () => undefined
    )
  )

const sameFile = (a: FileIdentity | undefined, b: FileIdentity | undefined) =>
  a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs

/**
 * Pool keys: a model's chat context is keyed by its path, its embedding context by the path and
 * this suffix (NUL never occurs in a path). The two are separate entries of one pool: each is
 * loaded on first use, unloaded when idle and counted against `max_loaded_models`.
 */
const EMBEDDING_KEY = "\u0000embedding"
const embeddingKey = (path: string) => `${path}${EMBEDDING_KEY}`
const parseKey = (key: string): { readonly path: string; readonly purpose: "chat" | "embedding" } =>
  key.endsWith(EMBEDDING_KEY)
    ? { path: key.slice(0, -EMBEDDING_KEY.length), purpose: "embedding" }
    : { path: key, purpose: "chat" }

const nowMs = Effect.map(Clock.currentTimeNanos, (n) => Number(n) / 1e6)

/** Absolute path of a local-file reference (`./x.gguf`, `~/x`, `file://…`, absolute). */
export const localPath = (reference: string, cwd: string = process.cwd(), home: string = os.homedir()): string =>
  reference.startsWith("file://")
    ? fileURLToPath(reference)
    : reference === "~" || reference.startsWith("~/")
    ? nodePath.join(home, reference.slice(1))
    : nodePath.resolve(cwd, reference)

const parameterSize = (count: number): string =>
  count >= 1e9 ? `${(count / 1e9).toFixed(1)}B` : count >= 1e6 ? `${(count / 1e6).toFixed(count >= 1e8 ? 0 : 1)}M` : `${(count / 1e3).toFixed(0)}K`

/** Builds one backend instance: names resolve through the model store (without one, only files by path run). */
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
    const names = new Map<string, string>()
    // what every view says of a loaded file (ps): the store's digest, the header's family and quantization
    const facts = new Map<string, ModelFacts & { readonly digest?: string }>()

    // Files whose worker crashed while loading them, with the file as it was: a file that crashed
    // twice in a row is not loaded again until it changes (no reload loop on a bad file).
    const loadCrashes = new Map<string, { readonly file: FileIdentity | undefined; count: number; last: BackendCrashed }>()

    const changed = (path: string) =>
      new InvalidModelFile({
        path,
        reason: "the file changed while it was being validated or loaded (replaced or rewritten); nothing was kept"
      })

    const pool = yield* ModelPool.make<LoadedModelHandle, LoadError>({
      capacity: instance.maxLoadedModels,
      idleTimeToLive: Duration.seconds(instance.idleUnloadSeconds),
      // validated here, on every (re)load: llama.cpp only ever sees a file our reader accepted, and
      // the file it loaded is that file (same inode, size and mtime before and after)
      load: (key) =>
        Effect.gen(function*() {
          const { path, purpose } = parseKey(key)
          const model = names.get(path) ?? path
          const before = yield* fileIdentity(path)
          const crashes = loadCrashes.get(path)
          if (crashes !== undefined && crashes.count >= 2 && sameFile(crashes.file, before)) {
            const last = crashes.last
            return yield* new BackendCrashed({
              model: last.model,
              ...(last.instance !== undefined ? { instance: last.instance } : {}),
              operation: last.operation,
              ...(last.signal !== undefined ? { signal: last.signal } : {}),
              ...(last.exitCode !== undefined ? { exitCode: last.exitCode } : {}),
              logs: last.logs,
              refused: true
            })
          }
          const header = yield* readGgufFile(path, { model, instance: instance.name })
          facts.set(path, {
            ...factsOfFile(header, nodePath.basename(path)),
            digest: facts.get(path)?.digest ??
              identityDigest(path, header.fileSize, before !== undefined ? new Date(before.mtimeMs).toISOString() : undefined)
          })
          if (!sameFile(before, yield* fileIdentity(path))) return yield* changed(path)
          const handle = yield* loader.load(path, { ...loadOptions, model, ...(purpose === "embedding" ? { purpose } : {}) }).pipe(
            Effect.tapError((e) =>
              Effect.sync(() => {
                if (e._tag !== "BackendCrashed") return
                const previous = loadCrashes.get(path)
                loadCrashes.set(path, {
                  file: before,
                  count: previous !== undefined && sameFile(previous.file, before) ? previous.count + 1 : 1,
                  last: e
                })
              })
            )
          )
          loadCrashes.delete(path)
          if (!sameFile(before, yield* fileIdentity(path))) return yield* changed(path)
          return handle
        }).pipe(Effect.withSpan("GgufBackend.load", { attributes: { key, isolation } }))
    })

    /** A lease on a live model (pool key): a model whose worker died is forgotten and loaded again, once. */
    const acquireLive = (key: string) =>
      Effect.gen(function*() {
        const lease = yield* pool.acquire(key)
        if (yield* lease.value.alive) return lease
        yield* pool.invalidate(key)
        return yield* pool.acquire(key)
      })

    /** Unloads both contexts of a file (chat and embedding), waiting for their users. */
    const unloadFile = (path: string) => Effect.zipRight(pool.unload(path), pool.unload(embeddingKey(path)))

    const notFound = (model: string, detail?: string) =>
      new ModelNotFound({
        model,
        backend: "gguf",
        instance: instance.name,
        // only a name `model pull` accepts (catalog alias, hub repo): a hint must name a command that works
        ...(Either.isRight(HubRef.parse(model)) ? { pullSpec: model } : {}),
        ...(detail !== undefined ? { detail } : {})
      })

    // What resolving a name can fail with is the least of what every operation that resolves one may.
    const resolve = (model: string): Effect.Effect<ResolvedFile, BackendKeepAliveError> =>
      Effect.gen(function*() {
        if (isFileReference(model)) return { name: model, path: localPath(model), installed: false }
        // llmspell's store first, then every foreign store read in place; never the hub (only `pull` goes there)
        const found = yield* modelStore.find(model, store)
        if (Option.isNone(found)) return yield* notFound(model)
        const m = found.value
        return { name: m.name, path: m.path, installed: m.installed, store: m.store, locations: m.locations, digest: m.digest }
      }).pipe(
        Effect.tap((r) =>
          Effect.sync(() => {
            names.set(r.path, r.name)
            if (r.digest !== undefined) facts.set(r.path, { ...facts.get(r.path), digest: r.digest })
          })
        )
      )

    const generate = (model: string, request: GenerateRequest): Stream.Stream<GenerateEvent, BackendGenerateError> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const start = yield* nowMs
        // a schema the grammar cannot enforce is refused before anything is loaded
        const plan = yield* generationPlan(request)
        const file = yield* resolve(model)
        const lease = yield* acquireLive(file.path)
        // The handle has `parallel` sequences; requests beyond them wait inside `generate` for a free one.
        const handle = lease.value
        const generationStart = yield* nowMs
        let firstAt: number | undefined
        let reasoning = ""
        const toolCalls: Array<ToolCall> = []
        return handle.generate(request).pipe(
          // the worker is gone (crashed, or stopped for a stuck request): the next request loads the model again
          Stream.tapError(() => Effect.flatMap(handle.alive, (alive) => (alive ? Effect.void : pool.invalidate(file.path)))),
          Stream.mapEffect((event): Effect.Effect<GenerateEvent, SchemaViolation> =>
            Effect.flatMap(nowMs, (now): Effect.Effect<GenerateEvent, SchemaViolation> => {
              if (event._tag === "Text") {
                firstAt ??= now
                return Effect.succeed({ _tag: "TextDelta", text: event.text })
              }
              if (event._tag === "Reasoning") {
                firstAt ??= now
                reasoning += event.text
                return Effect.succeed({ _tag: "ReasoningDelta", text: event.text })
              }
              if (event._tag === "ToolCall") {
                // not a first token: a forced call arrives whole at the end, so it gives no TTFT or tokens/s
                // what the grammar could not enforce (numeric bounds, pattern, …) is checked here
                const tool = request.tools?.find((t) => t.name === event.call.name)
                const problem = tool === undefined
                  ? `it called ${JSON.stringify(event.call.name)}, which is not among the tools`
                  : checkJsonSchema(tool.parameters, event.call.params)
                if (problem !== undefined) {
                  return Effect.fail(
                    new SchemaViolation({
                      model: file.name,
                      problem: `the parameters of its call to ${event.call.name}: ${problem}`,
                      answer: JSON.stringify(event.call.params).slice(0, 400)
                    })
                  )
                }
                toolCalls.push(event.call)
                return Effect.succeed({ _tag: "ToolCall", call: event.call })
              }
              const first = firstAt ?? now
              const generating = (now - first) / 1000
              const prefill = (first - generationStart) / 1000
              const completion: Completion = {
                model: file.name,
                backend: "gguf",
                instance: instance.name,
                text: event.text,
                ...(reasoning.length > 0 ? { reasoning } : {}),
                ...(toolCalls.length > 0 ? { toolCalls } : {}),
                finishReason: toolCalls.length > 0 ? "tool-calls" : event.finishReason,
                ...(event.maxTokensCapped !== undefined ? { maxTokensCapped: event.maxTokensCapped } : {}),
                usage: {
                  promptTokens: event.promptTokens,
                  ...(event.cachedPromptTokens !== undefined ? { cachedPromptTokens: event.cachedPromptTokens } : {}),
                  completionTokens: event.completionTokens,
                  totalTokens: event.promptTokens + event.completionTokens
                },
                timings: {
                  loadMs: lease.loadMs,
                  ...(firstAt !== undefined ? { timeToFirstTokenMs: firstAt - start } : {}),
                  totalMs: now - start,
                  ...(event.completionTokens > 1 && generating > 0
                    ? { tokensPerSecond: (event.completionTokens - 1) / generating }
                    : {}),
                  // the tokens evaluated, not those the sequence's cache already held
                  ...(firstAt !== undefined && prefill > 0
                    ? { promptTokensPerSecond: (event.promptTokens - (event.cachedPromptTokens ?? 0)) / prefill }
                    : {})
                }
              }
              return Effect.map(constrainedOutcome(file.name, plan, request, completion), (checked) => ({ _tag: "Finish", completion: checked } as const))
            })
          )
        )
      })).pipe(Stream.withSpan("GgufBackend.generate", { attributes: { model, instance: instance.name } }))

    /** A worker that died under a request is forgotten: the next request loads the model again. */
    const forgetIfDead = (key: string, handle: LoadedModelHandle) =>
      Effect.flatMap(handle.alive, (alive) => (alive ? Effect.void : pool.invalidate(key)))

    // Embeddings run on an embedding context of their own (node-llama-cpp's createEmbeddingContext),
    // a pool entry beside the chat one; a batch is one request to the worker, vectors in input order.
    const embed = (model: string, inputs: ReadonlyArray<string>): Effect.Effect<Embeddings, BackendEmbedError> =>
      Effect.scoped(Effect.gen(function*() {
        const file = yield* resolve(model)
        const base = { model: file.name, backend: "gguf" as const, instance: instance.name }
        if (inputs.length === 0) return { ...base, dimensions: 0, vectors: [], promptTokens: 0 }
        const key = embeddingKey(file.path)
        const handle = (yield* acquireLive(key)).value
        if (handle.embed === undefined) {
          return yield* new UnsupportedOperation({ backend: "gguf", operation: "embeddings", reason: "this loader cannot embed" })
        }
        const results = yield* handle.embed(inputs).pipe(
          Effect.tapError(() => forgetIfDead(key, handle)),
          Effect.mapError((e) =>
            e._tag === "ContextOverflow"
              ? new ContextOverflow({
                model: file.name,
                backend: "gguf",
                instance: instance.name,
                operation: "embed",
                ...(e.promptTokens !== undefined ? { promptTokens: e.promptTokens } : {}),
                ...(e.contextSize !== undefined ? { contextSize: e.contextSize } : {})
              })
              : e
          )
        )
        return {
          ...base,
          dimensions: results[0]?.vector.length ?? 0,
          vectors: results.map((r) => r.vector),
          promptTokens: results.reduce((n, r) => n + r.tokens, 0)
        }
      })).pipe(Effect.withSpan("GgufBackend.embed", { attributes: { model, inputs: inputs.length, instance: instance.name } }))

    // Through whichever context of the model is loaded (the chat one when neither is): one tokenizer.
    const tokenize = (model: string, text: string): Effect.Effect<ReadonlyArray<number>, BackendTokenizeError> =>
      Effect.scoped(Effect.gen(function*() {
        const file = yield* resolve(model)
        const loaded = yield* pool.entries
        const key = loaded.some((e) => e.key === embeddingKey(file.path)) && !loaded.some((e) => e.key === file.path)
          ? embeddingKey(file.path)
          : file.path
        const handle = (yield* acquireLive(key)).value
        if (handle.tokenize === undefined) {
          return yield* new UnsupportedOperation({ backend: "gguf", operation: "tokenize", reason: "this loader cannot tokenize" })
        }
        return yield* handle.tokenize(text).pipe(Effect.tapError(() => forgetIfDead(key, handle)))
      })).pipe(Effect.withSpan("GgufBackend.tokenize", { attributes: { model, instance: instance.name } }))

    const info = (model: string): Effect.Effect<ModelInfo, BackendInfoError> =>
      Effect.gen(function*() {
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

    const list: Effect.Effect<ReadonlyArray<LocalModel>, BackendListError> = Effect.map(
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
          digest: m.digest,
          store: m.store,
          ...(m.sha256 !== undefined ? { sha256: m.sha256 } : {}),
          locations: m.locations
        }))
    )

    const remove = (model: string) =>
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
        if (Option.isSome(found) && found.value.store === "llmspell") yield* unloadFile(found.value.path)
        return yield* modelStore.remove(model, store)
      })

    const loadedFacts = (path: string) => {
      const known = facts.get(path)
      return {
        ...(known?.digest !== undefined ? { digest: known.digest } : {}),
        ...(known?.family !== undefined ? { family: known.family } : {}),
        ...(known?.quantization !== undefined ? { quantization: known.quantization } : {})
      }
    }

    // a model whose worker died (and nobody asked for since) is not loaded
    const loadedNow = Effect.flatMap(
      Effect.flatMap(pool.entries, (entries) =>
        Effect.filter(entries, (e) => (e.value === undefined ? Effect.succeed(false) : e.value.alive))),
      (entries) =>
      Effect.forEach(entries, (e) =>
        // a worker that died since the check above has no sequences to report, and one busy in a long
        // synchronous step (a chat template) cannot answer: the record goes without, ps does not wait
        Effect.map(Effect.option(Effect.timeout(e.value!.sequences ?? Effect.fail(undefined), "1 second")), (sequences): LoadedModel => ({
        name: names.get(parseKey(e.key).path) ?? parseKey(e.key).path,
        ...loadedFacts(parseKey(e.key).path),
        ...(parseKey(e.key).purpose === "embedding" ? { purpose: "embedding" as const } : {}),
        sizeBytes: e.value!.sizeBytes,
        ...(e.value!.vramBytes > 0 ? { vramBytes: e.value!.vramBytes } : {}),
        activeRequests: e.users,
        ...(sequences._tag === "Some" ? { sequences: sequences.value } : {}),
        contextLength: e.value!.contextSize,
        device: e.value!.vramBytes > 0 ? "gpu" : "cpu",
        // an expiry past what a Date holds (±8.64e15 ms: a library caller's keep-alive of 1e300 s) is "never"
        ...(e.expiresAtMillis !== undefined && Math.abs(e.expiresAtMillis) <= 8.64e15 ? { expiresAt: new Date(e.expiresAtMillis).toISOString() } : {})
      })))
    )

    const status: Effect.Effect<BackendStatus> = Effect.gen(function*() {
      const loaded = yield* loadedNow
      const inventory = yield* Effect.either(modelStore.list(store))
      const models = Either.map(inventory, (i) => i.models)
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
        loaded
      }
      const modelWarnings = inventory._tag === "Left"
        ? [`cannot list the model store: ${inventory.left.message}`]
        : storeWarnings(inventory.right.warnings)
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

    const backend: Backend = {
      name: instance.name,
      type: "gguf",
      status,
      list,
      info,
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
      ps: loadedNow,
      keepAlive: (model, seconds) =>
        Effect.flatMap(resolve(model), (file) => pool.setTimeToLive(file.path, seconds < 0 ? "forever" : seconds * 1000)),
      // A lease taken and given back: the model is loaded and its idle time starts now.
      load: (model, seconds) =>
        Effect.gen(function*() {
          const file = yield* resolve(model)
          yield* Effect.scoped(acquireLive(file.path))
          if (seconds !== undefined) yield* pool.setTimeToLive(file.path, seconds < 0 ? "forever" : seconds * 1000)
        }).pipe(Effect.withSpan("GgufBackend.load", { attributes: { model, instance: instance.name } })),
      verify: (model) => modelStore.verify(store, model),
      generate,
      embed,
      tokenize
    }
    return backend
  })

const formatGiB = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`

/** What the store scans skipped and why (unreadable, a FIFO, a link leaving a store…), at most 20 lines. */
const storeWarnings = (warnings: ReadonlyArray<{ readonly store: string; readonly path: string; readonly reason: string }>) => [
  ...warnings.slice(0, 20).map((w) => `${w.store}: ${w.path}: ${w.reason}`),
  ...(warnings.length > 20 ? [`… and ${warnings.length - 20} more skipped in other tools' stores`] : [])
]

const errorInfo = (e: LlmspellError | BackendUnavailable) =>
  isLlmspellError(e) ? errorToJson(e) : { _tag: "UnknownError", message: String(e) }

/** The GGUF backend factory over a loader, the model store (names, list, verify, remove) and the downloader (pull). */
export const layerWithoutLoader: Layer.Layer<GgufBackendFactory, never, LlamaLoader | ModelDownloader | ModelStoreTag> = Layer.effect(
  GgufBackendFactory,
  Effect.gen(function*() {
    const loader = yield* LlamaLoader
    const downloader = yield* ModelDownloader
    const modelStore = yield* ModelStoreTag
    return {
      type: "gguf",
      make: (instance) => makeBackend(instance, loader, downloader, modelStore)
    }
  })
)

/** The live GGUF backend factory (node-llama-cpp loader); needs the ModelStore and the ModelDownloader. */
export const layer: Layer.Layer<GgufBackendFactory, never, ModelDownloader | ModelStoreTag> = layerWithoutLoader.pipe(
  Layer.provide(LlamaLoaderLive.layer)
)

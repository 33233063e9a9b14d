/**
 * The GGUF backend's loaded models: the pool (`modelPool.ts`: lazy, shared, idle unload, LRU) over
 * the LlamaLoader, with what a load must check and remember. A model has up to three contexts, each a
 * pool entry keyed by its path (chat) or its path and a suffix (embedding, node-llama-cpp's
 * embedding context; ranking, its ranking context for rerankers): each is loaded on first use,
 * unloaded when idle and counted against `max_loaded_models` (each costs its own memory). The
 * model as a whole is what users see: a keep-alive or an unload applies to all its contexts, and
 * `ps` shows one row per model with its contexts as detail.
 *
 * Every (re)load validates the file with our GGUF reader first, so llama.cpp only ever sees a file
 * it accepted, and checks that the file loaded is that file (same inode, size and mtime before and
 * after). A model whose worker died is forgotten and loaded again on the next request, except a
 * file that crashed twice in a row while loading, which is refused until it changes.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as nodePath from "node:path"
import type * as Scope from "effect/Scope"
import { BackendCrashed, InvalidModelFile } from "../../domain/Errors.js"
import * as Metrics from "../../domain/Metrics.js"
import { factsOfFile, identityDigest, type ModelFacts } from "../../domain/ModelFacts.js"
import type { LoadedModel } from "../../domain/Types.js"
import type { GgufLoadError } from "../../services/GgufBackend.js"
import type { LoadedModelHandle, LlamaLoaderService, LoadOptions } from "../../services/LlamaLoader.js"
import { readGgufFile } from "../store/readGgufFile.js"
import { fileIdentity, type FileIdentity, sameFile } from "./ggufFiles.js"
import * as ModelPool from "./modelPool.js"

/** What a model's context is for. */
export type Purpose = "chat" | "embedding" | "ranking"

/** The pool key of a model's context: the path for chat, else the path and `\0<purpose>` (NUL never occurs in a path). */
const keyOf = (path: string, purpose: Purpose) => (purpose === "chat" ? path : `${path}\u0000${purpose}`)
const parseKey = (key: string): { readonly path: string; readonly purpose: Purpose } => {
  const nul = key.indexOf("\u0000")
  return nul < 0 ? { path: key, purpose: "chat" } : { path: key.slice(0, nul), purpose: key.slice(nul + 1) as Purpose }
}
const PURPOSES: ReadonlyArray<Purpose> = ["chat", "embedding", "ranking"]

/** How the backend's models are loaded. */
export interface LoadedModelsOptions {
  readonly instance: string
  readonly loader: LlamaLoaderService
  readonly loadOptions: LoadOptions
  readonly capacity: number
  readonly idleUnloadSeconds: number
  /** The name a path was resolved from, for errors and `ps`. */
  readonly nameOf: (path: string) => string
  /** The store's digest of the model at a path (else one is derived from the file's identity). */
  readonly digestOf: (path: string) => string | undefined
}

/** A lease on one context of a model, for the life of the scope. */
export interface ContextLease {
  readonly handle: LoadedModelHandle
  /** 0 when it was already loaded. */
  readonly loadMs: number
  /** Forgets the context when its worker has died, so the next request loads it again. */
  readonly forgetIfDead: Effect.Effect<void>
}

/** The pool of one GGUF instance. */
export const make = (options: LoadedModelsOptions) =>
  Effect.gen(function*() {
    const { digestOf, instance, loader, loadOptions, nameOf } = options
    // what every view says of a loaded file (ps): the header's family and quantization, its digest
    const facts = new Map<string, ModelFacts & { readonly digest: string }>()
    // Files whose worker crashed while loading them, with the file as it was: a file that crashed
    // twice in a row is not loaded again until it changes (no reload loop on a bad file).
    const loadCrashes = new Map<string, { readonly file: FileIdentity | undefined; count: number; last: BackendCrashed }>()

    const changed = (path: string) =>
      new InvalidModelFile({
        path,
        reason: "the file changed while it was being validated or loaded (replaced or rewritten); nothing was kept"
      })

    const refuseAfterTwoCrashes = (last: BackendCrashed) =>
      new BackendCrashed({
        model: last.model,
        ...(last.instance !== undefined ? { instance: last.instance } : {}),
        operation: last.operation,
        ...(last.signal !== undefined ? { signal: last.signal } : {}),
        ...(last.exitCode !== undefined ? { exitCode: last.exitCode } : {}),
        logs: last.logs,
        ...(last.death !== undefined ? { death: last.death } : {}),
        refused: true
      })

    const remember = (path: string, before: FileIdentity | undefined) => (e: GgufLoadError) =>
      Effect.sync(() => {
        // what the file did (llama.cpp aborting on it, its template exhausting the heap) counts; a kill
        // from outside or by llmspell is not the file's doing
        if (e._tag !== "BackendCrashed" || (e.death !== undefined && e.death !== "abort" && e.death !== "heap")) return
        const previous = loadCrashes.get(path)
        loadCrashes.set(path, {
          file: before,
          count: previous !== undefined && sameFile(previous.file, before) ? previous.count + 1 : 1,
          last: e
        })
      })

    const load = (key: string): Effect.Effect<LoadedModelHandle, GgufLoadError, Scope.Scope> =>
      Effect.gen(function*() {
        const { path, purpose } = parseKey(key)
        const model = nameOf(path)
        const before = yield* fileIdentity(path)
        const crashes = loadCrashes.get(path)
        if (crashes !== undefined && crashes.count >= 2 && sameFile(crashes.file, before)) {
          return yield* refuseAfterTwoCrashes(crashes.last)
        }
        const header = yield* readGgufFile(path, { model, instance })
        facts.set(path, {
          ...factsOfFile(header, nodePath.basename(path)),
          digest: identityDigest(path, header.fileSize, before !== undefined ? new Date(before.mtimeMs).toISOString() : undefined)
        })
        if (!sameFile(before, yield* fileIdentity(path))) return yield* changed(path)
        const loadStarted = yield* Clock.currentTimeNanos
        const handle = yield* loader.load(path, { ...loadOptions, model, ...(purpose !== "chat" ? { purpose } : {}) }).pipe(
          Effect.tapError(remember(path, before))
        )
        loadCrashes.delete(path)
        if (!sameFile(before, yield* fileIdentity(path))) return yield* changed(path)
        const loadEnded = yield* Clock.currentTimeNanos
        yield* Metric.increment(Metrics.labelled(Metrics.modelLoads, { backend: "gguf" }))
        yield* Metric.update(Metrics.labelled(Metrics.modelLoadDuration, { backend: "gguf" }), Number(loadEnded - loadStarted) / 1e9)
        // runs when the pool closes the entry's scope: idle, evicted, asked, or forgotten after a crash
        yield* Effect.addFinalizer(() => Metric.increment(Metrics.labelled(Metrics.modelUnloads, { backend: "gguf" })))
        return handle
      }).pipe(Effect.withSpan("GgufBackend.load", { attributes: { key, isolation: loadOptions.isolation ?? "process" } }))

    const pool = yield* ModelPool.make<LoadedModelHandle, GgufLoadError>({
      capacity: options.capacity,
      idleTimeToLive: Duration.seconds(options.idleUnloadSeconds),
      load
    })

    /** A lease on a live context: one whose worker died is forgotten and loaded again, once. */
    const acquire = (path: string, purpose: Purpose): Effect.Effect<ContextLease, GgufLoadError, Scope.Scope> =>
      Effect.gen(function*() {
        const key = keyOf(path, purpose)
        let lease = yield* pool.acquire(key)
        if (!(yield* lease.value.alive)) {
          yield* pool.invalidate(key)
          lease = yield* pool.acquire(key)
        }
        const handle = lease.value
        return {
          handle,
          loadMs: lease.loadMs,
          forgetIfDead: Effect.flatMap(handle.alive, (alive) => (alive ? Effect.void : pool.invalidate(key)))
        }
      })

    /** Which context of a loaded model a tokenizer question goes to: the loaded one (chat when both or neither). */
    const loadedPurpose = (path: string): Effect.Effect<Purpose> =>
      Effect.map(pool.entries, (entries) => PURPOSES.find((p) => entries.some((e) => e.key === keyOf(path, p))) ?? "chat")

    /** Whether one context of a model is in the pool now (loaded, or loading). */
    const isLoaded = (path: string, purpose: Purpose): Effect.Effect<boolean> =>
      Effect.map(pool.entries, (entries) => entries.some((e) => e.key === keyOf(path, purpose)))

    /** Unloads the whole model (both contexts), waiting for their users. */
    const unload = (path: string) => Effect.forEach(PURPOSES, (purpose) => pool.unload(keyOf(path, purpose)), { discard: true })

    /** How long the whole model stays loaded once idle (ms; 0 unloads it now, once idle). */
    const setTimeToLive = (path: string, ttl: number | "forever") =>
      Effect.forEach(PURPOSES, (purpose) => pool.setTimeToLive(keyOf(path, purpose), ttl), { discard: true })

    /** One row per loaded model, its contexts as detail; a context whose worker died is not loaded. */
    const ps: Effect.Effect<ReadonlyArray<LoadedModel>> = Effect.gen(function*() {
      const entries = yield* pool.entries
      const live = yield* Effect.filter(entries, (e) => (e.value === undefined ? Effect.succeed(false) : e.value.alive))
      const contexts = yield* Effect.forEach(live, (e) =>
        // a worker that died since the check above has no sequences to report: the row goes without.
        // One busy in a synchronous step (a chat template) answers when the step ends: no deadline of
        // our own, which a busy machine would trip into a row without its counts; a worker that never
        // answers is the supervisor's (its liveness ping kills it, and the question then fails)
        Effect.map(Effect.option(e.value!.sequences ?? Effect.fail(undefined)), (sequences) => {
          const { path, purpose } = parseKey(e.key)
          const handle = e.value!
          return {
            path,
            handle,
            context: {
              purpose,
              sizeBytes: handle.sizeBytes,
              ...(handle.vramBytes > 0 ? { vramBytes: handle.vramBytes } : {}),
              contextLength: handle.contextSize,
              activeRequests: e.users,
              ...(Option.isSome(sequences) ? { sequences: sequences.value } : {}),
              // an expiry past what a Date holds (±8.64e15 ms: a library caller's keep-alive of 1e300 s) is "never"
              ...(e.expiresAtMillis !== undefined && Math.abs(e.expiresAtMillis) <= 8.64e15
                ? { expiresAt: new Date(e.expiresAtMillis).toISOString() }
                : {})
            } satisfies ModelContext
          }
        }))
      const byPath = new Map<string, Array<(typeof contexts)[number]>>()
      for (const c of contexts) byPath.set(c.path, [...(byPath.get(c.path) ?? []), c])
      return [...byPath.entries()].map(([path, parts]): LoadedModel => {
        const ordered = PURPOSES.flatMap((p) => parts.filter((c) => c.context.purpose === p))
        const chat = ordered.find((c) => c.context.purpose === "chat")?.context
        const first = ordered[0]!.context
        const expiries = ordered.map((c) => c.context.expiresAt)
        const vram = ordered.reduce((n, c) => n + c.handle.vramBytes, 0)
        const known = facts.get(path)
        const digest = digestOf(path) ?? known?.digest
        return {
          name: nameOf(path),
          ...(digest !== undefined ? { digest } : {}),
          ...(known?.family !== undefined ? { family: known.family } : {}),
          ...(known?.quantization !== undefined ? { quantization: known.quantization } : {}),
          ...(chat === undefined ? { purpose: first.purpose } : {}),
          sizeBytes: ordered.reduce((n, c) => n + c.handle.sizeBytes, 0),
          ...(vram > 0 ? { vramBytes: vram } : {}),
          activeRequests: ordered.reduce((n, c) => n + c.context.activeRequests, 0),
          ...(chat?.sequences !== undefined ? { sequences: chat.sequences } : {}),
          contextLength: (chat ?? first).contextLength,
          device: vram > 0 ? "gpu" : "cpu",
          // the model is gone when its last context goes; while one is in use or kept, it has no date
          ...(expiries.every((x) => x !== undefined) ? { expiresAt: expiries.reduce((a, b) => (b! > a! ? b : a))! } : {}),
          contexts: ordered.map((c) => c.context)
        }
      })
    })

    return { acquire, loadedPurpose, isLoaded, unload, setTimeToLive, ps }
  })

/** One context of a loaded model, as `ps` shows it. */
type ModelContext = NonNullable<LoadedModel["contexts"]>[number]

/**
 * The worker-backed LlamaLoader (`isolation = "process"`): each loaded model is a worker process
 * (`workerProcess.ts`) running the in-process loader. The host keeps only the handle: when
 * the worker dies, every request on it fails with `BackendCrashed` (signal or code, llama.cpp's
 * last log lines) and `alive` turns false so the pool loads it again on the next request.
 * Cancelling a generation asks the worker to stop and kills it if it has not within
 * `cancelGraceMs` (a request stuck in a chat template or a tokenizer cannot be stopped any other
 * way); a prompt whose template + tokenizing take longer than `prepareTimeoutMs` is a typed error.
 * These two budgets are real time (not the Effect Clock): they bound a real process.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { GGUF_WORKER_DEFAULTS } from "../../domain/ConfigSchema.js"
import { BackendCrashed, BackendError, type ContextOverflow, type DeviceUnavailable } from "../../domain/Errors.js"
import type { GenerateRequest } from "../../domain/Types.js"
import type {
  LlamaLoaderService,
  LoadedModelHandle,
  LoaderEvent,
  LoadOptions,
  MemoryNeeds,
  RuntimeInfo
} from "../../services/LlamaLoader.js"
import type { FromWorker, ToWorker } from "./workerProtocol.js"
import { spawnWorker, type WorkerExit, type WorkerProcess } from "./workerProcess.js"

/** Budgets and limits of the worker loader. */
export interface WorkerLoaderOptions {
  /** V8 heap cap of each worker, MiB (default 2048): a template bomb dies of it fast. */
  readonly maxHeapMb?: number | undefined
  /** Chat template + tokenizing of one request (default 30 000 ms). */
  readonly prepareTimeoutMs?: number | undefined
  /** How long a cancelled request may take to stop before its worker is killed (default 1000 ms). */
  readonly cancelGraceMs?: number | undefined
  /**
   * Keep one started worker with llama.cpp initialised for the next load (default false; call
   * `shutdown` to kill it): starting a process and llama.cpp costs far more than loading a small
   * model (BENCHMARKS.md), which a long-running program that switches or reloads models pays each time.
   */
  readonly spareWorker?: boolean | undefined
}

/** A worker loader and what ends it. */
export interface WorkerLoader {
  readonly service: LlamaLoaderService
  /** Kills the spare worker, if any; loads after this start their own workers. */
  readonly shutdown: Effect.Effect<void>
}

/** Defaults of `WorkerLoaderOptions`. */
export const WORKER_DEFAULTS = {
  maxHeapMb: GGUF_WORKER_DEFAULTS.workerMaxHeapMb,
  prepareTimeoutMs: GGUF_WORKER_DEFAULTS.prepareTimeoutSeconds * 1000,
  cancelGraceMs: 1000
} as const

/** Drops the stack traces Node prints on an abort or a fatal OOM: the assert is what matters. */
const meaningful = (lines: ReadonlyArray<string>) =>
  lines.filter((l) => !/^\d+: |^-{3,}|^=+$|^at |^\s*$|^Security context:|^<--- /.test(l))

const crashed = (worker: WorkerProcess, exit: WorkerExit, model: string, instance: string | undefined, operation: string) =>
  new BackendCrashed({
    model,
    ...(instance !== undefined ? { instance } : {}),
    operation,
    ...(exit.signal !== null ? { signal: exit.signal } : {}),
    ...(exit.code !== null ? { exitCode: exit.code } : {}),
    logs: [
      ...meaningful(worker.logs()).slice(-12),
      ...(exit.killedBecause !== undefined ? [`llmspell stopped the worker: ${exit.killedBecause}`] : [])
    ]
  })

/** Sends `message` and waits for the answer `pick` recognises, a `Failed`, or the worker's end. */
const askRaw = <A>(
  worker: WorkerProcess,
  id: number,
  message: ToWorker,
  pick: (m: FromWorker) => A | undefined,
  onExit: (exit: WorkerExit) => BackendError | BackendCrashed
) =>
  Effect.async<A, BackendError | BackendCrashed | DeviceUnavailable | ContextOverflow>((resume) => {
    const stopListening = worker.listen(id, (m) => {
      if (m._tag === "Failed") {
        cleanup()
        return resume(Effect.fail(m.error))
      }
      const a = pick(m)
      if (a !== undefined) {
        cleanup()
        resume(Effect.succeed(a))
      }
    })
    const stopWaiting = worker.onExit((exit) => {
      cleanup()
      resume(Effect.fail(onExit(exit)))
    })
    const cleanup = () => {
      stopListening()
      stopWaiting()
    }
    worker.send(message)
    return Effect.sync(cleanup)
  })

/** `askRaw` for questions no prompt is measured in (load, runtime, memory): an overflow there is a plain BackendError. */
const ask = <A>(
  worker: WorkerProcess,
  id: number,
  message: ToWorker,
  pick: (m: FromWorker) => A | undefined,
  onExit: (exit: WorkerExit) => BackendError | BackendCrashed
): Effect.Effect<A, BackendError | BackendCrashed | DeviceUnavailable> =>
  askRaw(worker, id, message, pick, onExit).pipe(
    Effect.catchTag("ContextOverflow", (e) => Effect.fail(new BackendError({ backend: "gguf", operation: message._tag, reason: e.message })))
  )

/** Resolves after `ms` of real time with false, or with true when `settle` is called first. */
const settledWithin = (ms: number, register: (settle: () => void) => void) =>
  Effect.async<boolean>((resume) => {
    const timer = setTimeout(() => resume(Effect.succeed(false)), ms)
    register(() => {
      clearTimeout(timer)
      resume(Effect.succeed(true))
    })
    return Effect.sync(() => clearTimeout(timer))
  })

/** The worker-backed loader. */
export const makeWorkerLoader = (options: WorkerLoaderOptions = {}): LlamaLoaderService => makeWorkerLoaderWithSpare(options).service

/** The worker-backed loader with its shutdown (for the spare worker). */
export const makeWorkerLoaderWithSpare = (options: WorkerLoaderOptions = {}): WorkerLoader => {
  const maxHeapMb = options.maxHeapMb ?? WORKER_DEFAULTS.maxHeapMb
  const defaultPrepareTimeoutMs = options.prepareTimeoutMs ?? WORKER_DEFAULTS.prepareTimeoutMs
  const cancelGraceMs = options.cancelGraceMs ?? WORKER_DEFAULTS.cancelGraceMs
  const runtimes = new Map<string, RuntimeInfo>()

  const generateOn = (
    worker: WorkerProcess,
    ids: { next: number },
    model: string,
    instance: string | undefined,
    request: GenerateRequest,
    prepareTimeoutMs: number
  ): Stream.Stream<LoaderEvent, BackendError | BackendCrashed | ContextOverflow> =>
    Stream.asyncPush<LoaderEvent, BackendError | BackendCrashed | ContextOverflow>((emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const id = ids.next++
          const state = { finished: false, settle: undefined as (() => void) | undefined }
          let prepareTimer: ReturnType<typeof setTimeout> | undefined
          let stopListening = () => {}
          let stopWaiting = () => {}
          const finish = () => {
            state.finished = true
            clearTimeout(prepareTimer)
            stopListening()
            stopWaiting()
            state.settle?.()
          }
          prepareTimer = setTimeout(() => {
            if (state.finished) return
            finish()
            const seconds = prepareTimeoutMs / 1000
            const error = new BackendError({
                backend: "gguf",
                ...(instance !== undefined ? { instance } : {}),
                operation: "prepare the prompt",
                reason: `rendering the chat template and tokenizing took longer than ${seconds} s (the model's worker was stopped)`,
                suggestion: `shorten the prompt, or check the model's chat template with \`llmspell model info ${model}\``
            })
            // the worker is gone before the request fails, so the next one finds it dead and reloads
            Effect.runFork(Effect.tap(
              worker.kill(`preparing a prompt took longer than ${seconds} s`),
              () => Effect.sync(() => emit.fail(error))
            ))
          }, prepareTimeoutMs)
          stopListening = worker.listen(id, (m) => {
            switch (m._tag) {
              case "Prepared":
                clearTimeout(prepareTimer)
                return
              case "Text":
                return emit.single({ _tag: "Text", text: m.text })
              case "Reasoning":
                return emit.single({ _tag: "Reasoning", text: m.text })
              case "ToolCall":
                return emit.single({ _tag: "ToolCall", call: m.call })
              case "Done":
                finish()
                emit.single({
                  _tag: "Done",
                  text: m.text,
                  promptTokens: m.promptTokens,
                  ...(m.cachedPromptTokens !== undefined ? { cachedPromptTokens: m.cachedPromptTokens } : {}),
                  completionTokens: m.completionTokens,
                  finishReason: m.finishReason,
                  ...(m.maxTokensCapped !== undefined ? { maxTokensCapped: m.maxTokensCapped } : {})
                })
                return emit.end()
              case "Failed":
                finish()
                return emit.fail(m.error._tag !== "DeviceUnavailable" ? m.error : new BackendError({
                  backend: "gguf",
                  operation: "generate",
                  reason: m.error.message
                }))
              case "Stopped":
                finish()
                return emit.end()
            }
          })
          stopWaiting = worker.onExit((exit) => {
            if (state.finished) return
            finish()
            emit.fail(crashed(worker, exit, model, instance, "generate"))
          })
          worker.send({ _tag: "Generate", id, request })
          return { id, state }
        }),
        // ask the worker to stop; a worker that does not answer in time is stuck (template,
        // tokenizer, a long native call) and is killed: the request ends interrupted either way
        ({ id, state }) =>
          state.finished ? Effect.void : Effect.gen(function*() {
            worker.send({ _tag: "Cancel", id })
            const stopped = yield* settledWithin(cancelGraceMs, (settle) => {
              state.settle = settle
            })
            if (!stopped && !state.finished) {
              yield* worker.kill(`a cancelled request did not stop within ${cancelGraceMs} ms`)
            }
          })
      ), { bufferSize: "unbounded" }).pipe(Stream.withSpan("LlamaLoader.generate", { attributes: { worker: worker.pid } }))

  // the spare: a started worker whose llama.cpp is initialised for a device setting, kept in a scope of its own
  interface Spare {
    readonly device: LoadOptions["device"]
    readonly scope: Scope.CloseableScope
    readonly ready: Promise<WorkerProcess | undefined>
  }
  let spare: Spare | undefined
  let closed = false
  const startSpare = (device: LoadOptions["device"]) => {
    if (!options.spareWorker || closed || spare !== undefined) return
    const scope = Effect.runSync(Scope.make())
    const ready = Effect.runPromise(
      Effect.gen(function*() {
        const worker = yield* Scope.extend(spawnWorker({ maxHeapMb }), scope)
        yield* ask(worker, 0, { _tag: "Runtime", id: 0, device }, (m) => (m._tag === "RuntimeInfo" ? m : undefined), () =>
          new BackendError({ backend: "gguf", operation: "start a spare worker", reason: "it died" }))
        return worker
      }).pipe(Effect.catchAll(() => Effect.as(Scope.close(scope, Exit.void), undefined)))
    )
    spare = { device, scope, ready }
  }
  /** The spare when it is ready, alive and for this device (then it is handed over with its scope); else a new worker. */
  const takeWorker = (
    device: LoadOptions["device"],
    heapMb: number
  ): Effect.Effect<WorkerProcess, BackendError, Scope.Scope> =>
    Effect.gen(function*() {
      const candidate = spare
      // the spare was started with the loader's heap cap: an instance with another cap starts its own
      if (candidate !== undefined && candidate.device === device && heapMb === maxHeapMb) {
        spare = undefined
        const worker = yield* Effect.promise(() => candidate.ready)
        if (worker !== undefined && worker.isAlive()) {
          yield* Effect.addFinalizer(() => Scope.close(candidate.scope, Exit.void))
          return worker
        }
        yield* Scope.close(candidate.scope, Exit.void)
      }
      return yield* spawnWorker({ maxHeapMb: heapMb })
    })
  const shutdown = Effect.suspend(() => {
    closed = true
    const candidate = spare
    spare = undefined
    return candidate === undefined ? Effect.void : Scope.close(candidate.scope, Exit.void)
  })

  const load = (path: string, loadOptions: LoadOptions) =>
    Effect.gen(function*() {
      const model = loadOptions.model ?? path
      const instance = loadOptions.instance
      const prepareTimeoutMs = loadOptions.prepareTimeoutMs ?? defaultPrepareTimeoutMs
      const worker = yield* takeWorker(loadOptions.device, loadOptions.maxHeapMb ?? maxHeapMb)
      // the next load (another model, a reload after idle unload or a crash) finds a worker ready
      startSpare(loadOptions.device)
      // the weights are in; the chat template is rendered next (to pick the chat format), and a
      // template that never ends must not hold the load forever
      let templateTimer: ReturnType<typeof setTimeout> | undefined
      let templateTimedOut = false
      const stopListening = worker.listen(-1, (m) => {
        if (m._tag !== "Preparing") return
        templateTimer = setTimeout(() => {
          templateTimedOut = true
          Effect.runFork(worker.kill(`its chat template ran longer than ${prepareTimeoutMs / 1000} s`))
        }, prepareTimeoutMs)
      })
      const loaded = yield* ask(
        worker,
        -1,
        { _tag: "Load", path, options: loadOptions },
        (m) => (m._tag === "Loaded" ? m : undefined),
        (exit) =>
          templateTimedOut
            ? new BackendError({
              backend: "gguf",
              ...(instance !== undefined ? { instance } : {}),
              operation: "prepare the chat template",
              reason: `rendering the model's chat template took longer than ${prepareTimeoutMs / 1000} s (the model's worker was stopped)`,
              suggestion: `the file's tokenizer.chat_template is broken or hostile: check it with \`llmspell model info ${model}\``
            })
            : crashed(worker, exit, model, instance, "load model")
      ).pipe(Effect.ensuring(Effect.sync(() => {
        clearTimeout(templateTimer)
        stopListening()
      })))
      const ids = { next: 0 }
      // a question with one answer (embed, tokenize); the worker has no DeviceUnavailable to give after the load
      const question = <A>(operation: string, message: (id: number) => ToWorker, pick: (m: FromWorker) => A | undefined) =>
        Effect.suspend(() => {
          const id = ids.next++
          return askRaw(worker, id, message(id), pick, (exit) => crashed(worker, exit, model, instance, operation))
        }).pipe(
          Effect.catchTag("DeviceUnavailable", (e) =>
            Effect.fail(new BackendError({ backend: "gguf", operation, reason: e.message })))
        )
      return {
        path,
        sizeBytes: loaded.sizeBytes,
        vramBytes: loaded.vramBytes,
        contextSize: loaded.contextSize,
        alive: Effect.sync(worker.isAlive),
        generate: (request) => generateOn(worker, ids, model, instance, request, prepareTimeoutMs),
        embed: (inputs) =>
          question("embed", (id) => ({ _tag: "Embed", id, inputs }), (m) => (m._tag === "Embedded" ? m.results : undefined)).pipe(
            Effect.withSpan("LlamaLoader.embed", { attributes: { worker: worker.pid, inputs: inputs.length } })
          ),
        tokenize: (text) =>
          question("tokenize", (id) => ({ _tag: "Tokenize", id, text }), (m) => (m._tag === "Tokens" ? m.tokens : undefined)).pipe(
            Effect.catchTag("ContextOverflow", (e) => Effect.fail(new BackendError({ backend: "gguf", operation: "tokenize", reason: e.message })))
          ),
        // the worker's own queue of sequences, not a count kept here: a sequence it failed to give back shows
        ...(loadOptions.purpose === "embedding" ? {} : {
          sequences: question("sequences", (id) => ({ _tag: "Sequences", id }), (m) =>
            m._tag === "SequenceCounts" ? { total: m.total, busy: m.busy } : undefined).pipe(
              Effect.catchTag("ContextOverflow", (e) => Effect.fail(new BackendError({ backend: "gguf", operation: "sequences", reason: e.message })))
            )
        })
      } satisfies LoadedModelHandle
    }).pipe(Effect.withSpan("LlamaLoader.load", { attributes: { path, isolation: "process" } }))

  /** A short-lived worker for one question (runtime, memory needs). */
  const oneShot = <A>(message: ToWorker & { readonly id: number }, pick: (m: FromWorker) => A | undefined, what: string) =>
    Effect.scoped(Effect.gen(function*() {
      const worker = yield* spawnWorker({ maxHeapMb })
      return yield* ask(worker, message.id, message, pick, (exit) =>
        new BackendError({
          backend: "gguf",
          operation: what,
          reason: `the worker process died (${exit.signal ?? `code ${exit.code}`}): ${worker.logs().slice(-3).join("; ")}`
        }))
    })).pipe(
      Effect.mapError((e) =>
        e._tag === "BackendCrashed" ? new BackendError({ backend: "gguf", operation: what, reason: e.message }) : e
      )
    )

  const service: LlamaLoaderService = {
    runtime: (device) =>
      Effect.suspend(() => {
        const known = runtimes.get(device)
        if (known !== undefined) return Effect.succeed(known)
        return oneShot(
          { _tag: "Runtime", id: 0, device },
          (m) => (m._tag === "RuntimeInfo" ? m.info : undefined),
          "start llama.cpp"
        ).pipe(Effect.tap((info) => Effect.sync(() => runtimes.set(device, info))))
      }).pipe(Effect.withSpan("LlamaLoader.runtime", { attributes: { device, isolation: "process" } })),
    load,
    memoryNeeds: (path, o) =>
      oneShot(
        { _tag: "MemoryNeeds", id: 0, path, device: o.device, gpuLayers: o.gpuLayers, contextSize: o.contextSize },
        (m): MemoryNeeds | undefined =>
          m._tag === "MemoryNeedsInfo" ? { contextSize: m.contextSize, ramBytes: m.ramBytes, vramBytes: m.vramBytes } : undefined,
        "estimate memory"
      ).pipe(Effect.withSpan("LlamaLoader.memoryNeeds", { attributes: { path, isolation: "process" } }))
  }
  return { service, shutdown }
}

/**
 * The worker-backed LlamaLoader (`isolation = "process"`): each loaded model is a worker process
 * (`workerProcess.ts`) running the in-process loader, watched by a supervisor
 * (`workerSupervisor.ts`). The host keeps only the handle: when the worker dies, every request on
 * it fails with `BackendCrashed` (what the supervisor saw: its own kill, a heap exhaustion, an
 * outside signal, a llama.cpp abort) and `alive` turns false so the pool loads it again.
 *
 * Budgets, all on the Effect Clock and each failing only what it bounds:
 * - a prompt's preparation (chat template + tokenizing), counted from the moment the worker starts
 *   on it (`Started`, until `Prepared`; the wait for a sequence comes after and never counts): past
 *   it, that request fails and is cancelled; the worker lives on;
 * - a cancelled request gets `cancelGraceMs` to stop before its interruption completes; a slower
 *   one is waited for in the background (its sequence comes back when it stops), never killed;
 * - the chat template rendered while loading: past the preparation budget the load fails (nothing
 *   else runs in that worker yet, so it is killed);
 * - the worker as a whole: killed only when its event loop answers no liveness ping for
 *   `stuckAfterMs` while requests wait on it (the supervisor).
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { GGUF_WORKER_DEFAULTS } from "../../domain/ConfigSchema.js"
import { type BackendCrashed, BackendError, ContextOverflow, type DeviceUnavailable } from "../../domain/Errors.js"
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
import { spawnWorker, type WorkerExit, type WorkerProcess, type WorkerReply } from "./workerProcess.js"
import * as Supervisor from "./workerSupervisor.js"

/** Something the host saw a worker do, for logs and tests (the budgets start counting at these). */
export type WorkerEvent =
  /** The worker's chat template is being rendered at load: the load's template budget counts from here. */
  | { readonly _tag: "TemplateRendering"; readonly pid: number }
  /** The worker started on generation `id`: its preparation budget counts from here. */
  | { readonly _tag: "Preparing"; readonly pid: number; readonly id: number }
  /** Generation `id` ended early and was asked to stop: its interruption waits `cancelGraceMs` from here. */
  | { readonly _tag: "Stopping"; readonly pid: number; readonly id: number }
  /** The supervisor pinged the worker: it is killed as stuck if no answer comes within `stuckAfterMs` from here. */
  | { readonly _tag: "Pinged"; readonly pid: number }

/** Budgets and limits of the worker loader. */
export interface WorkerLoaderOptions {
  /** V8 heap cap of each worker, MiB (default 2048): a template bomb dies of it fast. */
  readonly maxHeapMb?: number | undefined
  /** Chat template + tokenizing of one request, from the moment the worker starts on it (default 30 000 ms). */
  readonly prepareTimeoutMs?: number | undefined
  /** How long the interruption of a request waits for the worker to stop it (default 1000 ms); it is never killed for it. */
  readonly cancelGraceMs?: number | undefined
  /** How often a worker with outstanding requests is pinged (default 5000 ms). */
  readonly livenessIntervalMs?: number | undefined
  /**
   * How long a worker may leave a ping unanswered (its event loop blocked) before it is killed as
   * stuck (default: 60 s, or twice the preparation budget when that is longer).
   */
  readonly stuckAfterMs?: number | undefined
  /**
   * Keep one started worker with llama.cpp initialised for the next load (default false; call
   * `shutdown` to kill it): starting a process and llama.cpp costs far more than loading a small
   * model (BENCHMARKS.md), which a long-running program that switches or reloads models pays each time.
   */
  readonly spareWorker?: boolean | undefined
  /** Called with what the host sees a worker do (tests wait on these instead of on time). */
  readonly observe?: ((event: WorkerEvent) => Effect.Effect<void>) | undefined
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
  cancelGraceMs: 1000,
  livenessIntervalMs: 5000,
  stuckAfterMs: 60_000
} as const

const seconds = (ms: number) => `${ms / 1000} s`

/** A failure the worker reported for a request, as the loader's error (it has no device to be unavailable after the load). */
const reported = (error: BackendError | DeviceUnavailable | ContextOverflow, operation: string): BackendError | ContextOverflow =>
  error._tag === "DeviceUnavailable" ? new BackendError({ backend: "gguf", operation, reason: error.message }) : error

/** Reports an overflow as a plain BackendError where no prompt is measured (load, tokenize, ps). */
const overflowAsBackendError = (operation: string) => <A, E, R>(self: Effect.Effect<A, E | ContextOverflow, R>) =>
  Effect.catchIf(
    self,
    (e): e is ContextOverflow => e instanceof ContextOverflow,
    (e) => Effect.fail(new BackendError({ backend: "gguf", operation, reason: e.message }))
  )

/** Takes replies until `pick` recognises one; a `Failed` or the worker's end fails. */
const awaitReply = <A, X>(
  replies: Queue.Dequeue<WorkerReply>,
  pick: (m: FromWorker) => A | undefined,
  onExit: (exit: WorkerExit) => Effect.Effect<never, X>
): Effect.Effect<A, X | BackendError | DeviceUnavailable | ContextOverflow> =>
  Effect.gen(function*() {
    for (;;) {
      const reply = yield* Queue.take(replies)
      if (reply._tag === "Exited") return yield* onExit(reply.exit)
      if (reply._tag === "Failed") return yield* Effect.fail(reply.error)
      const a = pick(reply)
      if (a !== undefined) return a
    }
  })

/** The worker-backed loader. */
export const makeWorkerLoader = (options: WorkerLoaderOptions = {}): LlamaLoaderService => makeWorkerLoaderWithSpare(options).service

/** The worker-backed loader with its shutdown (for the spare worker). */
export const makeWorkerLoaderWithSpare = (options: WorkerLoaderOptions = {}): WorkerLoader => {
  const maxHeapMb = options.maxHeapMb ?? WORKER_DEFAULTS.maxHeapMb
  const defaultPrepareTimeoutMs = options.prepareTimeoutMs ?? WORKER_DEFAULTS.prepareTimeoutMs
  const cancelGraceMs = options.cancelGraceMs ?? WORKER_DEFAULTS.cancelGraceMs
  const livenessIntervalMs = options.livenessIntervalMs ?? WORKER_DEFAULTS.livenessIntervalMs
  const observe = options.observe ?? (() => Effect.void)
  const runtimes = new Map<string, RuntimeInfo>()

  /** One loaded model's worker and what its requests share. */
  interface Loaded {
    readonly worker: WorkerProcess
    readonly supervisor: Supervisor.Supervisor
    /** The load's scope: requests that outlive their caller (a slow cancel) are waited for in it. */
    readonly scope: Scope.Scope
    readonly crash: (exit: WorkerExit, operation: string) => Effect.Effect<never, BackendCrashed>
    readonly prepareTimeoutMs: number
    readonly instance: string | undefined
    readonly model: string
  }

  /** The worker's last word about a request it was asked to stop. */
  const lastWord = (replies: Queue.Dequeue<WorkerReply>) =>
    Effect.gen(function*() {
      for (;;) {
        const reply = yield* Queue.take(replies)
        if (reply._tag === "Stopped" || reply._tag === "Done" || reply._tag === "Failed" || reply._tag === "Exited") return
      }
    })

  const generateOn = (
    loaded: Loaded,
    request: GenerateRequest
  ): Stream.Stream<LoaderEvent, BackendError | BackendCrashed | ContextOverflow> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const { supervisor, worker } = loaded
      const id = yield* supervisor.nextId
      const { close, replies } = yield* worker.open(id)
      // the supervisor's record outlives this scope when a cancelled request is slow to stop
      const tracked = yield* Scope.extend(supervisor.track(id, "generate", "waiting for a sequence"), loaded.scope)
      let state: "running" | "finished" | "over budget" = "running"
      let preparedBy: number | undefined
      yield* Effect.addFinalizer(() => {
        const forget = Effect.zipRight(close, tracked.done)
        if (state === "finished") return forget
        return Effect.gen(function*() {
          yield* tracked.phase("stopping")
          const stopBy = (yield* Clock.currentTimeMillis) + cancelGraceMs
          yield* worker.send({ _tag: "Cancel", id })
          // a request ended early (interrupted, or its consumer stopped reading) waits a little for
          // its sequence to come back; one that went over its budget does not (the worker is busy):
          // either way a slower stop goes on in the background, and never ends the worker
          if (state === "running") yield* observe({ _tag: "Stopping", pid: worker.pid, id })
          // (finalizers are uninterruptible: the waits are made interruptible, or no timeout could end them)
          const waited = state === "running"
            ? yield* Supervisor.until(Effect.interruptible(lastWord(replies)), stopBy, () => "slow" as const).pipe(Effect.option)
            : Option.none()
          if (Option.isSome(waited)) return yield* forget
          yield* Effect.forkIn(Effect.interruptible(Effect.ensuring(lastWord(replies), forget)), loaded.scope)
        })
      })
      yield* worker.send({ _tag: "Generate", id, request })

      const overBudget = () => {
        state = "over budget"
        return new BackendError({
          backend: "gguf",
          ...(loaded.instance !== undefined ? { instance: loaded.instance } : {}),
          operation: "prepare the prompt",
          reason: `rendering the chat template and tokenizing took longer than ${seconds(loaded.prepareTimeoutMs)} ` +
            "(counted from when the worker started on it, not the wait for a sequence; the request was stopped)",
          suggestion: `shorten the prompt, or check the model's chat template with \`llmspell model info ${loaded.model}\`; ` +
            "prepare_timeout_seconds in the instance's config sets the budget"
        })
      }
      /** Everything the worker has said about this request so far (at least one message). */
      const next = Effect.gen(function*() {
        const take = Queue.takeBetween(replies, 1, Number.MAX_SAFE_INTEGER)
        return preparedBy === undefined ? yield* take : yield* Supervisor.until(take, preparedBy, () => Option.some(overBudget()))
      })
      const pull: Effect.Effect<ReadonlyArray<LoaderEvent>, Option.Option<BackendError | BackendCrashed | ContextOverflow>> = Effect.gen(
        function*() {
          if (state === "finished") return yield* Effect.fail(Option.none())
          const events: Array<LoaderEvent> = []
          for (const reply of yield* next) {
            switch (reply._tag) {
              case "Started": {
                preparedBy = (yield* Clock.currentTimeMillis) + loaded.prepareTimeoutMs
                yield* tracked.phase("preparing its prompt")
                yield* observe({ _tag: "Preparing", pid: worker.pid, id })
                break
              }
              case "Prepared":
                preparedBy = undefined
                yield* tracked.phase("generating")
                break
              case "Text":
                events.push({ _tag: "Text", text: reply.text })
                break
              case "Reasoning":
                events.push({ _tag: "Reasoning", text: reply.text })
                break
              case "ToolCall":
                events.push({ _tag: "ToolCall", call: reply.call })
                break
              case "Done":
                state = "finished"
                events.push({
                  _tag: "Done",
                  text: reply.text,
                  promptTokens: reply.promptTokens,
                  ...(reply.cachedPromptTokens !== undefined ? { cachedPromptTokens: reply.cachedPromptTokens } : {}),
                  completionTokens: reply.completionTokens,
                  finishReason: reply.finishReason,
                  ...(reply.maxTokensCapped !== undefined ? { maxTokensCapped: reply.maxTokensCapped } : {}),
                  ...(reply.stopSequence !== undefined ? { stopSequence: reply.stopSequence } : {})
                })
                return events
              case "Stopped":
                state = "finished"
                return events
              case "Failed":
                state = "finished"
                return yield* Effect.fail(Option.some(reported(reply.error, "generate")))
              case "Exited":
                state = "finished"
                return yield* Effect.mapError(loaded.crash(reply.exit, "generate"), Option.some)
            }
          }
          return events
        }
      )
      return Stream.repeatEffectChunkOption(Effect.map(pull, (events) => Chunk.unsafeFromArray(events)))
    })).pipe(Stream.withSpan("LlamaLoader.generate"))

  /** A question with one answer (embed, rank, tokenize, sequences), tracked by the supervisor. */
  const question = <A>(
    loaded: Loaded,
    operation: string,
    message: (id: number) => ToWorker,
    pick: (m: FromWorker) => A | undefined,
    /** The worker runs it by id (Rank): a question given up before its answer sends Cancel, so the work stops. */
    cancellable = false
  ): Effect.Effect<A, BackendError | BackendCrashed | ContextOverflow> =>
    Effect.scoped(Effect.gen(function*() {
      const id = yield* loaded.supervisor.nextId
      const { close, replies } = yield* loaded.worker.open(id)
      let answered = false
      yield* Effect.addFinalizer(() => (cancellable && !answered ? Effect.zipRight(loaded.worker.send({ _tag: "Cancel", id }), close) : close))
      yield* loaded.supervisor.track(id, operation, "answering")
      yield* loaded.worker.send(message(id))
      const answer = yield* awaitReply(replies, pick, (exit) => loaded.crash(exit, operation))
      answered = true
      return answer
    })).pipe(Effect.mapError((e) => (e._tag === "DeviceUnavailable" ? reported(e, operation) as BackendError : e)))

  // ---- the spare: a started worker whose llama.cpp is initialised for a device setting, in a scope of its own
  interface Spare {
    readonly device: LoadOptions["device"]
    readonly scope: Scope.CloseableScope
    readonly ready: Deferred.Deferred<WorkerProcess | undefined>
  }
  const spare = Ref.unsafeMake<Spare | undefined>(undefined)
  const closed = Ref.unsafeMake(false)

  const startSpare = (device: LoadOptions["device"]) =>
    Effect.gen(function*() {
      if (!options.spareWorker || (yield* Ref.get(closed)) || (yield* Ref.get(spare)) !== undefined) return
      const scope = yield* Scope.make()
      const ready = yield* Deferred.make<WorkerProcess | undefined>()
      yield* Ref.set(spare, { device, scope, ready })
      const start = Effect.gen(function*() {
        const worker = yield* Scope.extend(spawnWorker({ maxHeapMb }), scope)
        yield* Effect.scoped(Effect.gen(function*() {
          const { close, replies } = yield* worker.open(0)
          yield* Effect.addFinalizer(() => close)
          yield* worker.send({ _tag: "Runtime", id: 0, device })
          yield* awaitReply(replies, (m) => (m._tag === "RuntimeInfo" ? m : undefined), () =>
            Effect.fail(new BackendError({ backend: "gguf", operation: "start a spare worker", reason: "it died" })))
        }))
        return worker
      }).pipe(
        Effect.catchAll(() => Effect.as(Scope.close(scope, Exit.void), undefined)),
        Effect.flatMap((worker) => Deferred.succeed(ready, worker))
      )
      // in the spare's own scope: closing it (shutdown, or a failed start) stops the start too
      yield* Effect.forkIn(Effect.interruptible(start), scope)
    })

  /** The spare when it is ready, alive and for this device (handed over with its scope); else a new worker. */
  const takeWorker = (device: LoadOptions["device"], heapMb: number): Effect.Effect<WorkerProcess, BackendError, Scope.Scope> =>
    Effect.gen(function*() {
      const candidate = yield* Ref.get(spare)
      // the spare was started with the loader's heap cap: an instance with another cap starts its own
      if (candidate !== undefined && candidate.device === device && heapMb === maxHeapMb) {
        yield* Ref.set(spare, undefined)
        const worker = yield* Deferred.await(candidate.ready)
        if (worker !== undefined && (yield* worker.isAlive)) {
          yield* Effect.addFinalizer(() => Scope.close(candidate.scope, Exit.void))
          return worker
        }
        yield* Scope.close(candidate.scope, Exit.void)
      }
      return yield* spawnWorker({ maxHeapMb: heapMb })
    })

  const shutdown = Effect.gen(function*() {
    yield* Ref.set(closed, true)
    const candidate = yield* Ref.getAndSet(spare, undefined)
    if (candidate !== undefined) yield* Scope.close(candidate.scope, Exit.void)
  })

  /** Waits for `Loaded`; once the chat template is being rendered, within the preparation budget. */
  const awaitLoaded = (
    worker: WorkerProcess,
    replies: Queue.Dequeue<WorkerReply>,
    prepareTimeoutMs: number,
    fail: {
      readonly crash: (exit: WorkerExit) => Effect.Effect<never, BackendCrashed>
      readonly template: () => BackendError
    }
  ) =>
    Effect.gen(function*() {
      let renderedBy: number | undefined
      for (;;) {
        const take = Queue.take(replies)
        const reply = renderedBy === undefined
          ? yield* take
          : yield* Supervisor.until(take, renderedBy, () => "late" as const).pipe(Effect.option, Effect.map(Option.getOrUndefined))
        if (reply === undefined) {
          // nothing else runs in this worker yet: a template that never ends is only stopped by killing it
          yield* worker.kill(`its chat template ran longer than ${seconds(prepareTimeoutMs)} while loading`)
          return yield* Effect.fail(fail.template())
        }
        switch (reply._tag) {
          case "Preparing":
            renderedBy = (yield* Clock.currentTimeMillis) + prepareTimeoutMs
            yield* observe({ _tag: "TemplateRendering", pid: worker.pid })
            break
          case "Loaded":
            return reply
          case "Failed":
            return yield* Effect.fail(reply.error)
          case "Exited":
            return yield* fail.crash(reply.exit)
        }
      }
    })

  const load = (path: string, loadOptions: LoadOptions) =>
    Effect.gen(function*() {
      const model = loadOptions.model ?? path
      const instance = loadOptions.instance
      const prepareTimeoutMs = loadOptions.prepareTimeoutMs ?? defaultPrepareTimeoutMs
      const heapMb = loadOptions.maxHeapMb ?? maxHeapMb
      const worker = yield* takeWorker(loadOptions.device, heapMb)
      // the next load (another model, a reload after idle unload or a crash) finds a worker ready
      yield* startSpare(loadOptions.device)
      const crash = (exit: WorkerExit, operation: string) =>
        Effect.flatMap(worker.logs, (logs) => Effect.fail(Supervisor.crashReport(exit, logs, { model, instance, operation, heapMb })))
      const loadedInfo = yield* Effect.scoped(Effect.gen(function*() {
        const { close, replies } = yield* worker.open(-1)
        yield* Effect.addFinalizer(() => close)
        yield* worker.send({ _tag: "Load", path, options: loadOptions })
        return yield* awaitLoaded(worker, replies, prepareTimeoutMs, {
          crash: (exit) => crash(exit, "load model"),
          template: () =>
            new BackendError({
              backend: "gguf",
              ...(instance !== undefined ? { instance } : {}),
              operation: "prepare the chat template",
              reason: `rendering the model's chat template took longer than ${seconds(prepareTimeoutMs)} (the model's worker was stopped)`,
              suggestion: `the file's tokenizer.chat_template is broken or hostile: check it with \`llmspell model info ${model}\``
            })
        })
      })).pipe(
        Effect.catchTag("ContextOverflow", (e) => Effect.fail(new BackendError({ backend: "gguf", operation: "load model", reason: e.message })))
      )
      const supervisor = yield* Supervisor.make(worker, {
        livenessIntervalMs,
        stuckAfterMs: options.stuckAfterMs ?? Math.max(WORKER_DEFAULTS.stuckAfterMs, 2 * prepareTimeoutMs),
        onPing: () => observe({ _tag: "Pinged", pid: worker.pid })
      })
      const loaded: Loaded = { worker, supervisor, scope: yield* Effect.scope, crash, prepareTimeoutMs, instance, model }
      return {
        path,
        sizeBytes: loadedInfo.sizeBytes,
        vramBytes: loadedInfo.vramBytes,
        contextSize: loadedInfo.contextSize,
        alive: worker.isAlive,
        generate: (request) => generateOn(loaded, request),
        embed: (inputs) =>
          question(loaded, "embed", (id) => ({ _tag: "Embed", id, inputs }), (m) => (m._tag === "Embedded" ? m.results : undefined)).pipe(
            Effect.withSpan("LlamaLoader.embed", { attributes: { worker: worker.pid, inputs: inputs.length } })
          ),
        rank: (query, documents) =>
          question(loaded, "rerank", (id) => ({ _tag: "Rank", id, query, documents }), (m) => (m._tag === "Ranked" ? m.results : undefined), true).pipe(
            Effect.withSpan("LlamaLoader.rank", { attributes: { worker: worker.pid, documents: documents.length } })
          ),
        tokenize: (text) =>
          question(loaded, "tokenize", (id) => ({ _tag: "Tokenize", id, text }), (m) => (m._tag === "Tokens" ? m.tokens : undefined)).pipe(
            overflowAsBackendError("tokenize")
          ),
        countPromptTokens: (request) =>
          question(loaded, "count tokens", (id) => ({ _tag: "CountTokens", id, request }), (m) => (m._tag === "TokenCount" ? m.count : undefined)).pipe(
            overflowAsBackendError("count tokens")
          ),
        // the worker's own queue of sequences, not a count kept here: a sequence it failed to give back shows
        ...(loadOptions.purpose === "embedding" || loadOptions.purpose === "ranking" ? {} : {
          sequences: question(loaded, "sequences", (id) => ({ _tag: "Sequences", id }), (m) =>
            m._tag === "SequenceCounts" ? { total: m.total, busy: m.busy } : undefined).pipe(overflowAsBackendError("sequences"))
        })
      } satisfies LoadedModelHandle
    }).pipe(Effect.withSpan("LlamaLoader.load", { attributes: { path, isolation: "process" } }))

  /** A short-lived worker for one question (runtime, memory needs). */
  const oneShot = <A>(message: ToWorker & { readonly id: number }, pick: (m: FromWorker) => A | undefined, what: string) =>
    Effect.scoped(Effect.gen(function*() {
      const worker = yield* spawnWorker({ maxHeapMb })
      const { close, replies } = yield* worker.open(message.id)
      yield* Effect.addFinalizer(() => close)
      yield* worker.send(message)
      return yield* awaitReply(replies, pick, (exit) =>
        Effect.flatMap(worker.logs, (logs) =>
          Effect.fail(
            new BackendError({
              backend: "gguf",
              operation: what,
              reason: `the worker process died (${exit.signal ?? `code ${exit.code}`}): ${logs.slice(-3).join("; ")}`
            })
          )))
    })).pipe(
      Effect.catchTag("ContextOverflow", (e) => Effect.fail(new BackendError({ backend: "gguf", operation: what, reason: e.message })))
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

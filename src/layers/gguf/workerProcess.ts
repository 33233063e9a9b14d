/**
 * The link to one GGUF worker process (`workerMain.ts`): `child_process.fork` with an IPC channel
 * whose messages are Schema-encoded and checked (`workerProtocol.ts`), each request's answers in a
 * queue of its own, the tail of the worker's stderr (llama.cpp's last words before an assert, V8's
 * heap report), how it ended (exit code or signal) and a kill that waits until the process is
 * gone. Closing the scope it was started in kills it, so no worker outlives its model.
 *
 * Hand-made rather than `@effect/rpc` over `@effect/platform`'s Worker (evaluated for issue 20):
 * - a dead child reaches rpc as `WorkerError("exited with code N")` from the "exit" event: no
 *   signal, and before stderr is drained, so the assert text is lost; the requests in flight get
 *   `RpcClientError("Error in worker")`, and the client then re-runs its listener on the dead
 *   worker every second (it expects workers to live). A crash report needs the signal, the exit
 *   code and the stderr tail, and the pool must learn the worker is gone;
 * - interrupting a request is a message the worker's fibers must read: a worker blocked in a
 *   template or a tokenizer never reads it, so stopping a stuck worker (a liveness probe, then
 *   SIGKILL) sits outside the protocol anyway, and its close waits up to 5 s for the child;
 * - streams wait for an acknowledgement per chunk, a round trip per chunk of tokens.
 * What rpc would give (typed requests, interruption) is a few lines here: a queue per request id.
 *
 * The boundary with Node's callbacks (`message`, `close`, stderr `data`) is in `supervise`: they
 * only offer to queues and complete a Deferred (`unsafeOffer`, `unsafeDone`), never run Effects.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { type ChildProcess, fork } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { BackendError } from "../../domain/Errors.js"
import * as Metrics from "../../domain/Metrics.js"
import { decodeFromWorkerBatch, encodeToWorker, type FromWorker, type ToWorker } from "./workerProtocol.js"

/** How a worker ended. */
export interface WorkerExit {
  readonly code: number | null
  readonly signal: string | null
  /** Set when the host killed it on purpose, and why. */
  readonly killedBecause: string | undefined
}

/** What a request's queue receives: the worker's answers to it, then `Exited` if the worker ends first. */
export type WorkerReply = FromWorker | { readonly _tag: "Exited"; readonly exit: WorkerExit }

/** A running worker process. */
export interface WorkerProcess {
  readonly pid: number
  readonly send: (message: ToWorker) => Effect.Effect<void>
  /**
   * A queue of the worker's messages about request `id` (`-1`: the load's, and `Ready`), open until
   * `close`; it receives `Exited` when the worker ends (at once if it already has).
   */
  readonly open: (id: number) => Effect.Effect<{ readonly replies: Queue.Dequeue<WorkerReply>; readonly close: Effect.Effect<void> }>
  /** Completes when the process has ended and its output is drained. */
  readonly exit: Effect.Effect<WorkerExit>
  readonly isAlive: Effect.Effect<boolean>
  /** The last lines the worker wrote to stderr (llama.cpp's log, an assert, a V8 OOM report). */
  readonly logs: Effect.Effect<ReadonlyArray<string>>
  /** SIGKILL (the first reason given is kept), then waits until the process is gone. */
  readonly kill: (because: string) => Effect.Effect<WorkerExit>
}

/** How a worker is started. */
export interface WorkerSpawnOptions {
  /** V8 heap cap of the worker (`--max-old-space-size`), in MiB. */
  readonly maxHeapMb: number
}

const LOG_LINES = 200

/**
 * Which file to run and how: next to the CLI bundle (`dist/gguf-worker.js`), next to this module
 * in the library build (`dist/lib/layers/gguf/workerMain.js`), or the TypeScript source
 * through tsx (tests, benchmarks). `LLMSPELL_GGUF_WORKER` overrides it (a built worker for benchmarks).
 */
export const workerEntry = (): { readonly path: string; readonly execArgv: ReadonlyArray<string> } => {
  const override = process.env.LLMSPELL_GGUF_WORKER
  if (override !== undefined && override.length > 0) {
    return { path: override, execArgv: override.endsWith(".ts") ? ["--import", "tsx"] : [] }
  }
  if (process.env.LLMSPELL_BUNDLED === "1") {
    return { path: fileURLToPath(new URL("./gguf-worker.js", import.meta.url)), execArgv: [] }
  }
  const here = dirname(fileURLToPath(import.meta.url))
  const js = join(here, "workerMain.js")
  if (existsSync(js)) {
    // the library build (dist/lib/layers/gguf/): the bundled worker next to the CLI starts faster
    const bundled = join(here, "..", "..", "..", "gguf-worker.js")
    return { path: existsSync(bundled) ? bundled : js, execArgv: [] }
  }
  return { path: join(here, "workerMain.ts"), execArgv: ["--import", "tsx"] }
}

const startFailed = (reason: string, logs: ReadonlyArray<string>) =>
  new BackendError({
    backend: "gguf",
    operation: "start the worker process",
    reason: logs.length > 0 ? `${reason} (${logs.slice(-3).join("; ")})` : reason,
    suggestion: "reinstall llmspell, or set isolation = \"none\" for this gguf instance to run llama.cpp in-process"
  })

/** The reason given when the host kills a worker because its model unloads (not a crash). */
const UNLOADED = "unloaded"

/** Starts a worker and waits until it listens; closing the scope kills it. */
export const spawnWorker = (options: WorkerSpawnOptions): Effect.Effect<WorkerProcess, BackendError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const entry = workerEntry()
      try {
        return Effect.succeed(supervise(fork(entry.path, [], {
          execArgv: [...entry.execArgv, `--max-old-space-size=${Math.max(16, Math.floor(options.maxHeapMb))}`],
          stdio: ["ignore", "pipe", "pipe", "ipc"],
          serialization: "json"
        })))
      } catch (e) {
        return Effect.fail(startFailed(String(e), []))
      }
    }),
    (worker) => Effect.asVoid(worker.kill(UNLOADED))
  ).pipe(
    // a worker that ends while its scope is open ended unasked: by itself (an assert, a signal, out
    // of memory) or stopped stuck; one killed because its model unloads is not counted
    Effect.tap((worker) =>
      Effect.forkScoped(Effect.flatMap(worker.exit, (exit) =>
        exit.killedBecause === UNLOADED
          ? Effect.void
          : Metric.increment(Metrics.labelled(Metrics.workerCrashes, { backend: "gguf", cause: exit.killedBecause === undefined ? "crash" : "watchdog" }))))
    ),
    Effect.tap((worker) =>
      Effect.scoped(Effect.gen(function*() {
        const { close, replies } = yield* worker.open(-1)
        yield* Effect.addFinalizer(() => close)
        for (;;) {
          const reply = yield* Queue.take(replies)
          if (reply._tag === "Ready") return
          if (reply._tag === "Exited") {
            return yield* startFailed(`the worker exited at start (${reply.exit.signal ?? `code ${reply.exit.code}`})`, yield* worker.logs)
          }
        }
      }))
    ),
    Effect.withSpan("LlamaLoader.spawnWorker")
  )

const supervise = (child: ChildProcess): WorkerProcess => {
  const lines: Array<string> = []
  const note = (line: string) => {
    lines.push(line.length > 500 ? `${line.slice(0, 500)}…` : line)
    if (lines.length > LOG_LINES) lines.shift()
  }
  const collect = (stream: NodeJS.ReadableStream | null) => {
    let partial = ""
    stream?.setEncoding("utf8")
    stream?.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n")
      partial = parts.pop() ?? ""
      if (partial.length > 4096) partial = partial.slice(-4096)
      for (const line of parts) {
        const trimmed = line.trim()
        if (trimmed.length > 0) note(trimmed)
      }
    })
    stream?.on("end", () => {
      if (partial.trim().length > 0) note(partial.trim())
      partial = ""
    })
  }
  collect(child.stdout)
  collect(child.stderr)

  const routes = new Map<number, Queue.Queue<WorkerReply>>()
  const exited = Deferred.unsafeMake<WorkerExit>(FiberId.none)
  let ended: WorkerExit | undefined
  let killedBecause: string | undefined

  child.on("message", (raw) => {
    const decoded = decodeFromWorkerBatch(raw)
    if (Either.isLeft(decoded)) return note(`llmspell: malformed message from the worker: ${String(decoded.left).slice(0, 300)}`)
    for (const message of decoded.right) {
      const id = "id" in message && message.id !== undefined ? message.id : -1
      const route = routes.get(id)
      if (route !== undefined) Queue.unsafeOffer(route, message)
    }
  })
  // "close" (not "exit"): by then stdout and stderr are drained, so the assert text is in `lines`
  child.on("close", (code, signal) => {
    if (ended !== undefined) return
    ended = { code, signal, killedBecause }
    Deferred.unsafeDone(exited, Effect.succeed(ended))
    for (const route of routes.values()) Queue.unsafeOffer(route, { _tag: "Exited", exit: ended })
  })
  child.on("error", (e) => note(`llmspell: worker process error: ${String(e)}`))

  return {
    pid: child.pid ?? -1,
    send: (message) =>
      Effect.sync(() => {
        if (ended !== undefined || !child.connected) return
        child.send(encodeToWorker(message), (e) => {
          if (e) note(`llmspell: cannot send to the worker: ${String(e)}`)
        })
      }),
    open: (id) =>
      Effect.map(Queue.unbounded<WorkerReply>(), (replies) => {
        routes.set(id, replies)
        if (ended !== undefined) Queue.unsafeOffer(replies, { _tag: "Exited", exit: ended })
        return {
          replies,
          close: Effect.suspend(() => {
            if (routes.get(id) === replies) routes.delete(id)
            return Queue.shutdown(replies)
          })
        }
      }),
    exit: Deferred.await(exited),
    isAlive: Effect.sync(() => ended === undefined),
    logs: Effect.sync(() => [...lines]),
    kill: (because) =>
      Effect.suspend(() => {
        if (ended === undefined) {
          killedBecause ??= because
          child.kill("SIGKILL")
        }
        return Deferred.await(exited)
      })
  }
}

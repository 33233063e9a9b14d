/**
 * The one helper that starts and supervises a GGUF worker process (`workerMain.ts`):
 * `child_process.fork` with an IPC channel whose messages are Schema-encoded and checked
 * (`workerProtocol.ts`), the tail of its stderr (llama.cpp's last words before an assert),
 * how it ended (exit code or signal), and a kill that waits until the process is gone. Closing
 * the scope it was started in kills it, so no worker outlives its model.
 *
 * Not `@effect/platform`'s Worker (which can drive a child process): it reports a dead child as
 * "exited with code N" without the signal, has no per-request kill deadline, and its close waits
 * up to 5 s for the child; a crash report needs the signal and the stderr tail, and cancelling a
 * request stuck in a template must kill within 1 s.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import { type ChildProcess, fork } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { BackendError } from "../../domain/Errors.js"
import * as Metrics from "../../domain/Metrics.js"
import { decodeFromWorker, encodeToWorker, type FromWorker, type ToWorker } from "./workerProtocol.js"

/** How a worker ended. */
export interface WorkerExit {
  readonly code: number | null
  readonly signal: string | null
  /** Set when the host killed it on purpose (a stuck request), and why. */
  readonly killedBecause: string | undefined
}

/** A running worker process. */
export interface WorkerProcess {
  readonly pid: number
  readonly send: (message: ToWorker) => void
  /** Calls `handler` with every message about request `id` (and, for `id = -1`, the load's); returns the unsubscribe. */
  readonly listen: (id: number, handler: (message: FromWorker) => void) => () => void
  /** Calls `handler` once when the process ends (at once if it already has); returns the unsubscribe. */
  readonly onExit: (handler: (exit: WorkerExit) => void) => () => void
  readonly exit: Effect.Effect<WorkerExit>
  readonly isAlive: () => boolean
  /** The last lines the worker wrote to stderr (llama.cpp's log, an assert, a V8 OOM report). */
  readonly logs: () => ReadonlyArray<string>
  /** SIGKILL, then waits until the process is gone. */
  readonly kill: (because: string) => Effect.Effect<WorkerExit>
}

/** How a worker is started. */
export interface WorkerSpawnOptions {
  /** V8 heap cap of the worker (`--max-old-space-size`), in MiB. */
  readonly maxHeapMb: number
}

const LOG_LINES = 200

/** The reason given when the host kills a worker because its model is unloaded (not a crash). */
const UNLOADED = "unloaded"

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

/** Starts a worker and waits until it listens; closing the scope kills it. */
export const spawnWorker = (options: WorkerSpawnOptions): Effect.Effect<WorkerProcess, BackendError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const entry = workerEntry()
      let child: ChildProcess
      try {
        child = fork(entry.path, [], {
          execArgv: [...entry.execArgv, `--max-old-space-size=${Math.max(16, Math.floor(options.maxHeapMb))}`],
          stdio: ["ignore", "pipe", "pipe", "ipc"],
          serialization: "json"
        })
      } catch (e) {
        return Effect.fail(startFailed(String(e), []))
      }
      return Effect.succeed(supervise(child))
    }),
    (worker) => Effect.asVoid(worker.kill(UNLOADED))
  ).pipe(
    Effect.tap((worker) =>
      Effect.async<void, BackendError>((resume) => {
        const stopListening = worker.listen(-1, (m) => {
          if (m._tag === "Ready") {
            cleanup()
            resume(Effect.void)
          }
        })
        const stopWaiting = worker.onExit((exit) => {
          cleanup()
          resume(Effect.fail(startFailed(`the worker exited at start (${exit.signal ?? `code ${exit.code}`})`, worker.logs())))
        })
        const cleanup = () => {
          stopListening()
          stopWaiting()
        }
        return Effect.sync(cleanup)
      })
    ),
    Effect.withSpan("LlamaLoader.spawnWorker")
  )

const supervise = (child: ChildProcess): WorkerProcess => {
  const lines: Array<string> = []
  const collect = (stream: NodeJS.ReadableStream | null) => {
    let partial = ""
    stream?.setEncoding("utf8")
    stream?.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n")
      partial = parts.pop() ?? ""
      if (partial.length > 4096) partial = partial.slice(-4096)
      for (const line of parts) {
        const trimmed = line.trim()
        if (trimmed.length === 0) continue
        lines.push(trimmed.length > 500 ? `${trimmed.slice(0, 500)}…` : trimmed)
        if (lines.length > LOG_LINES) lines.shift()
      }
    })
    stream?.on("end", () => {
      if (partial.trim().length > 0) lines.push(partial.trim().slice(0, 500))
      partial = ""
    })
  }
  collect(child.stdout)
  collect(child.stderr)

  const handlers = new Map<number, Set<(message: FromWorker) => void>>()
  const exitHandlers = new Set<(exit: WorkerExit) => void>()
  const exited = Deferred.unsafeMake<WorkerExit>(FiberId.none)
  let ended: WorkerExit | undefined
  let killedBecause: string | undefined

  child.on("message", (raw) => {
    const decoded = decodeFromWorker(raw)
    if (Either.isLeft(decoded)) {
      lines.push(`llmspell: malformed message from the worker: ${String(decoded.left).slice(0, 300)}`)
      return
    }
    const message = decoded.right
    const id = "id" in message && message.id !== undefined ? message.id : -1
    for (const handler of [...(handlers.get(id) ?? [])]) handler(message)
  })
  // "close" (not "exit"): by then stdout and stderr are drained, so the assert text is in `lines`
  child.on("close", (code, signal) => {
    if (ended !== undefined) return
    ended = { code, signal, killedBecause }
    // a worker ends asked (unloaded) or not: by itself (an assert, a signal, out of memory) or stopped stuck
    if (killedBecause !== UNLOADED) {
      Effect.runSync(Metric.increment(Metrics.labelled(Metrics.workerCrashes, { backend: "gguf", cause: killedBecause === undefined ? "crash" : "watchdog" })))
    }
    Deferred.unsafeDone(exited, Effect.succeed(ended))
    for (const handler of [...exitHandlers]) handler(ended)
    exitHandlers.clear()
  })
  child.on("error", (e) => {
    lines.push(`llmspell: worker process error: ${String(e)}`)
  })

  const worker: WorkerProcess = {
    pid: child.pid ?? -1,
    send: (message) => {
      if (ended !== undefined || !child.connected) return
      child.send(encodeToWorker(message), (e) => {
        if (e) lines.push(`llmspell: cannot send to the worker: ${String(e)}`)
      })
    },
    listen: (id, handler) => {
      let set = handlers.get(id)
      if (set === undefined) handlers.set(id, set = new Set())
      set.add(handler)
      return () => {
        set.delete(handler)
        if (set.size === 0) handlers.delete(id)
      }
    },
    onExit: (handler) => {
      if (ended !== undefined) {
        handler(ended)
        return () => {}
      }
      exitHandlers.add(handler)
      return () => exitHandlers.delete(handler)
    },
    exit: Deferred.await(exited),
    isAlive: () => ended === undefined,
    logs: () => [...lines],
    kill: (because) =>
      Effect.suspend(() => {
        if (ended === undefined) {
          killedBecause ??= because
          child.kill("SIGKILL")
        }
        return Deferred.await(exited)
      })
  }
  return worker
}

/**
 * What the host knows about a GGUF worker's health, and the one place that decides to kill it.
 *
 * Each request on a worker is tracked with its phase (waiting for a sequence, preparing its
 * prompt, generating, stopping, answering) from the moment it is sent until the worker's last word
 * about it. A request's own budget (its prompt's preparation, counted from the moment it has a
 * sequence) fails that request alone; a cancelled request that is slow to stop is waited for in
 * the background. The worker is killed only when it is stuck as a whole: while any request is
 * outstanding, a liveness ping goes every `livenessIntervalMs`, and a worker whose event loop
 * answers none within `stuckAfterMs` is killed, with a reason that says what was seen (how long it
 * was silent, which requests waited on it and in what phase) — not a guess. Everything runs on
 * the Effect Clock: generous real-time budgets in production, the TestClock in tests.
 *
 * `crashReport` turns a worker's end into `BackendCrashed` with the cause the supervisor can see
 * (its own kill, a heap exhaustion in stderr, an outside signal, a llama.cpp abort) so the message
 * blames the model file only when llama.cpp aborted while loading it.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { BackendCrashed } from "../../domain/Errors.js"
import type { WorkerExit, WorkerProcess } from "./workerProcess.js"

/** Where a tracked request is. */
export type RequestPhase = "waiting for a sequence" | "preparing its prompt" | "generating" | "stopping" | "answering"

/** A request the supervisor tracks until `done`. */
export interface Tracked {
  readonly phase: (phase: RequestPhase) => Effect.Effect<void>
  readonly done: Effect.Effect<void>
}

/** Liveness settings of one worker. */
export interface SupervisorOptions {
  /** How often a worker with outstanding requests is pinged. */
  readonly livenessIntervalMs: number
  /** How long a ping may go unanswered before the worker is killed as stuck. */
  readonly stuckAfterMs: number
  /** Called once a ping is out (its deadline set): tests advance the clock from there. */
  readonly onPing?: (() => Effect.Effect<void>) | undefined
}

/**
 * Runs `effect` until the Clock reads `deadline` (ms): `onTimeout`'s error after. The deadline is
 * fixed before anyone is told a wait began, so a TestClock moved past it in between still ends it.
 */
export const until = <A, E, E2>(effect: Effect.Effect<A, E>, deadline: number, onTimeout: () => E2): Effect.Effect<A, E | E2> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    deadline <= now ? Effect.fail(onTimeout()) : Effect.timeoutFail(effect, { duration: deadline - now, onTimeout }))

/** The supervisor of one worker. */
export interface Supervisor {
  /** Tracks request `id` in `phase` from now until `done` (or the scope's end, whichever is first). */
  readonly track: (id: number, what: string, phase: RequestPhase) => Effect.Effect<Tracked, never, Scope.Scope>
  /** A request id of the worker's own sequence (shared with the pings). */
  readonly nextId: Effect.Effect<number>
}

interface Entry {
  readonly id: number
  readonly what: string
  phase: RequestPhase
  since: number
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`

/**
 * Starts supervising `worker` for the life of the scope. The probe runs in a fiber of that scope;
 * it ends when the worker does.
 */
export const make = (worker: WorkerProcess, options: SupervisorOptions): Effect.Effect<Supervisor, never, Scope.Scope> =>
  Effect.gen(function*() {
    const outstanding = new Map<number, Entry>()
    let ids = 0
    const nextId = Effect.sync(() => ids++)

    /** What the supervisor saw, for the kill's reason: the oldest outstanding requests first. */
    const describe = (now: number) => {
      const entries = [...outstanding.values()].sort((a, b) => a.since - b.since)
      const listed = entries.slice(0, 3).map((e) => `#${e.id} (${e.what}) ${e.phase} for ${seconds(now - e.since)}`)
      const more = entries.length > 3 ? `, and ${entries.length - 3} more` : ""
      return `its event loop answered no liveness ping for ${seconds(options.stuckAfterMs)} while ` +
        `${entries.length} request${entries.length === 1 ? "" : "s"} waited on it: ${listed.join("; ")}${more}`
    }

    /** Pings once: answered (true), the worker ended first (false), or no answer by the deadline (none). */
    const ping = Effect.scoped(Effect.gen(function*() {
      const id = yield* nextId
      const { close, replies } = yield* worker.open(id)
      yield* Effect.addFinalizer(() => close)
      const deadline = (yield* Clock.currentTimeMillis) + options.stuckAfterMs
      yield* worker.send({ _tag: "Ping", id })
      if (options.onPing !== undefined) yield* options.onPing()
      const answer = Effect.gen(function*() {
        for (;;) {
          const reply = yield* Queue.take(replies)
          if (reply._tag === "Pong") return true
          if (reply._tag === "Exited") return false
        }
      })
      return yield* until(answer, deadline, () => "silent" as const).pipe(Effect.option)
    }))

    const probe: Effect.Effect<void> = Effect.gen(function*() {
      for (;;) {
        yield* Effect.sleep(options.livenessIntervalMs)
        if (!(yield* worker.isAlive)) return
        if (outstanding.size === 0) continue
        const answered = yield* ping
        if (Option.isSome(answered)) {
          if (!answered.value) return
          continue
        }
        yield* worker.kill(describe(yield* Clock.currentTimeMillis))
        return
      }
    })
    yield* Effect.forkScoped(Effect.interruptible(probe))

    const track = (id: number, what: string, phase: RequestPhase) =>
      Effect.gen(function*() {
        const entry: Entry = { id, what, phase, since: yield* Clock.currentTimeMillis }
        outstanding.set(id, entry)
        const done = Effect.sync(() => {
          if (outstanding.get(id) === entry) outstanding.delete(id)
        })
        yield* Effect.addFinalizer(() => done)
        return {
          phase: (next: RequestPhase) =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              entry.phase = next
              entry.since = now
            }),
          done
        } satisfies Tracked
      })

    return { track, nextId }
  })

/** Drops the stack traces Node prints on an abort or a fatal OOM: the assert is what matters. */
const meaningful = (lines: ReadonlyArray<string>) =>
  lines.filter((l) => !/^\d+: |^-{3,}|^=+$|^at |^\s*$|^Security context:|^<--- /.test(l))

const HEAP_EXHAUSTED = /JavaScript heap out of memory|Reached heap limit|Ineffective mark-compacts near heap limit/
const ABORT_SIGNALS = new Set(["SIGABRT", "SIGSEGV", "SIGILL", "SIGFPE", "SIGTRAP", "SIGSYS"])

/** Where a crash happened, for its report. */
export interface CrashContext {
  readonly model: string
  readonly instance: string | undefined
  readonly operation: string
  /** The worker's heap cap, MiB. */
  readonly heapMb: number
}

/** The worker's end as `BackendCrashed`, with what the supervisor saw as its cause. */
export const crashReport = (exit: WorkerExit, logs: ReadonlyArray<string>, context: CrashContext): BackendCrashed => {
  const lines = meaningful(logs)
  const death = exit.killedBecause !== undefined
    ? "stopped" as const
    : lines.some((l) => HEAP_EXHAUSTED.test(l))
    ? "heap" as const
    : exit.signal === "SIGBUS"
    ? "file-changed" as const
    : exit.signal !== null && ABORT_SIGNALS.has(exit.signal)
    ? "abort" as const
    : exit.signal !== null
    ? "signal" as const
    : "exit" as const
  return new BackendCrashed({
    model: context.model,
    ...(context.instance !== undefined ? { instance: context.instance } : {}),
    operation: context.operation,
    ...(exit.signal !== null ? { signal: exit.signal } : {}),
    ...(exit.code !== null ? { exitCode: exit.code } : {}),
    logs: lines.slice(-12),
    death,
    ...(exit.killedBecause !== undefined ? { stoppedBecause: exit.killedBecause } : {}),
    ...(death === "heap" ? { heapMb: context.heapMb } : {})
  })
}

/**
 * The GGUF backend's pool of loaded models: each model is a scoped resource, loaded on first use
 * and shared by every concurrent user (N callers, one load), unloaded `idleTimeToLive` after its
 * last user is done, and, when loading one more would exceed `capacity`, the least recently used
 * idle model is unloaded first. A model in use is never unloaded; when nothing can be unloaded the
 * new user waits for a release instead of failing.
 *
 * Not RcMap: its `capacity` fails instead of evicting, and it exposes neither reference counts
 * nor last use. Timing runs on the Clock, so TestClock drives idle unloads in tests.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"

/** One loaded (or loading) model as the pool reports it. */
export interface PoolEntryInfo<V> {
  readonly key: string
  /** Undefined while loading. */
  readonly value: V | undefined
  readonly users: number
  readonly lastUsedMillis: number
  /** When it will be unloaded if nobody uses it again (idle entries only). */
  readonly expiresAtMillis: number | undefined
}

/** A lease on a pooled value; `loadMs` is 0 when it was already loaded. */
export interface Lease<V> {
  readonly value: V
  readonly loadMs: number
}

/** The pool. */
export interface ModelPool<V, E> {
  /** Leases the value for `key` for the life of the scope, loading it (or waiting for room) first. */
  readonly acquire: (key: string) => Effect.Effect<Lease<V>, E, Scope.Scope>
  /** What is loaded now. */
  readonly entries: Effect.Effect<ReadonlyArray<PoolEntryInfo<V>>>
  /** Unloads `key` once nobody uses it (waits for current users); no-op when not loaded. */
  readonly unload: (key: string) => Effect.Effect<void>
  /**
   * Forgets `key` now (its value is dead, e.g. its worker process crashed): the next acquire loads
   * it again; current users keep their lease, and the old entry closes when the last one leaves.
   */
  readonly invalidate: (key: string) => Effect.Effect<void>
  /**
   * Sets how long `key` stays loaded once idle (a request's keep-alive, as Ollama's `keep_alive`):
   * milliseconds, 0 to unload as soon as its last user leaves, `"forever"` to never unload it for
   * idleness. No-op when not loaded; an idle model's countdown starts again from now.
   */
  readonly setTimeToLive: (key: string, ttl: number | "forever") => Effect.Effect<void>
}

interface Entry<V, E> {
  readonly key: string
  readonly scope: Scope.CloseableScope
  readonly ready: Deferred.Deferred<V, E>
  value: V | undefined
  users: number
  lastUsed: number
  /** Bumped on every acquire, so a stale idle timer does nothing. */
  generation: number
  closed: boolean
  timer: Fiber.RuntimeFiber<void> | undefined
  /** A keep-alive of its own (ms; Infinity: never idle-unloaded), else the pool's. */
  ttl: number | undefined
}

/** Builds a pool; `load` runs in the entry's own scope, which is closed to unload. */
export const make = <V, E>(options: {
  readonly load: (key: string) => Effect.Effect<V, E, Scope.Scope>
  readonly capacity: number
  readonly idleTimeToLive: Duration.DurationInput
}): Effect.Effect<ModelPool<V, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const poolScope = yield* Effect.scope
    const ttl = Duration.toMillis(Duration.decode(options.idleTimeToLive))
    const capacity = Math.max(1, options.capacity)
    const entries = new Map<string, Entry<V, E>>()
    const lock = yield* Effect.makeSemaphore(1)
    // completed (and replaced) whenever a user leaves or an entry goes: waiters for room re-check
    let changed = yield* Deferred.make<void>()
    const signal = Effect.suspend(() => {
      const previous = changed
      return Deferred.make<void>().pipe(
        Effect.tap((next) => {
          changed = next
        }),
        Effect.zipRight(Deferred.succeed(previous, undefined))
      )
    })

    const close = (entry: Entry<V, E>) =>
      Effect.suspend(() => {
        if (entries.get(entry.key) === entry) entries.delete(entry.key)
        if (entry.closed) return Effect.void
        entry.closed = true
        const timer = entry.timer
        entry.timer = undefined
        return Effect.zipRight(
          timer !== undefined ? Fiber.interrupt(timer) : Effect.void,
          Scope.close(entry.scope, Exit.void)
        ).pipe(Effect.zipRight(signal))
      })

    // Loads in a fiber of the pool, not of the first caller: its interruption must not fail the others.
    // Forked fibers inherit uninterruptibility (we fork from acquire/release regions): make them interruptible
    // again, or closing the pool would wait for every idle timer to run out.
    const startLoad = (entry: Entry<V, E>) =>
      options.load(entry.key).pipe(
        Scope.extend(entry.scope),
        Effect.exit,
        Effect.flatMap((exit) =>
          Exit.isSuccess(exit)
            ? Effect.sync(() => {
              entry.value = exit.value
            }).pipe(Effect.zipRight(Deferred.succeed(entry.ready, exit.value)))
            : lock.withPermits(1)(close(entry)).pipe(Effect.zipRight(Deferred.failCause(entry.ready, exit.cause)))
        ),
        Effect.interruptible,
        Effect.forkIn(poolScope)
      )

    type Reserved = { readonly _tag: "Entry"; readonly entry: Entry<V, E>; readonly fresh: boolean } | {
      readonly _tag: "Wait"
      readonly latch: Deferred.Deferred<void>
    }

    const reserve = (key: string): Effect.Effect<Reserved> =>
      lock.withPermits(1)(Effect.gen(function*() {
        const existing = entries.get(key)
        if (existing !== undefined) {
          existing.users++
          existing.generation++
          if (existing.timer !== undefined) {
            yield* Fiber.interrupt(existing.timer)
            existing.timer = undefined
          }
          return { _tag: "Entry", entry: existing, fresh: false } as const
        }
        while (entries.size >= capacity) {
          const idle = [...entries.values()].filter((e) => e.users === 0 && e.value !== undefined)
          if (idle.length === 0) return { _tag: "Wait", latch: changed } as const
          const victim = idle.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a))
          yield* close(victim)
        }
        const entry: Entry<V, E> = {
          key,
          scope: yield* Scope.make(),
          ready: yield* Deferred.make<V, E>(),
          value: undefined,
          users: 1,
          lastUsed: yield* Clock.currentTimeMillis,
          generation: 0,
          closed: false,
          timer: undefined,
          ttl: undefined
        }
        entries.set(key, entry)
        return { _tag: "Entry", entry, fresh: true } as const
      }))

    const reserveOrWait = (key: string): Effect.Effect<{ entry: Entry<V, E>; fresh: boolean }> =>
      Effect.flatMap(reserve(key), (r) =>
        r._tag === "Entry"
          ? Effect.succeed(r)
          : Effect.zipRight(Deferred.await(r.latch), reserveOrWait(key)))

    const release = (entry: Entry<V, E>) =>
      lock.withPermits(1)(Effect.gen(function*() {
        entry.users--
        entry.lastUsed = yield* Clock.currentTimeMillis
        if (entry.users > 0) return
        // invalidated while in use: its last user closes it
        if (entries.get(entry.key) !== entry) return yield* close(entry)
        yield* startIdleTimer(entry)
        yield* signal
      }))

    // Under the lock: counts the idle time of an entry nobody uses from now (none for "forever").
    const startIdleTimer = (entry: Entry<V, E>): Effect.Effect<void> =>
      Effect.gen(function*() {
        const entryTtl = entry.ttl ?? ttl
        if (!Number.isFinite(entryTtl)) return
        const generation = entry.generation
        entry.timer = yield* Effect.sleep(entryTtl).pipe(
          Effect.zipRight(lock.withPermits(1)(Effect.suspend(() =>
            entry.users === 0 && entry.generation === generation && entries.get(entry.key) === entry
              ? Effect.sync(() => {
                entry.timer = undefined // this fiber is the timer: do not interrupt itself
              }).pipe(Effect.zipRight(close(entry)))
              : Effect.void
          ))),
          Effect.interruptible,
          Effect.forkIn(poolScope)
        )
      })

    const acquire = (key: string): Effect.Effect<Lease<V>, E, Scope.Scope> =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        // the reservation and its release are one acquireRelease: an interrupted waiter still lets go
        const { entry, fresh } = yield* Effect.acquireRelease(
          Effect.tap(reserveOrWait(key), ({ entry, fresh }) => (fresh ? startLoad(entry) : Effect.void)),
          ({ entry }) => release(entry)
        )
        const alreadyLoaded = !fresh && entry.value !== undefined
        const value = yield* Deferred.await(entry.ready)
        const loadMs = alreadyLoaded ? 0 : (yield* Clock.currentTimeMillis) - start
        return { value, loadMs }
      })

    yield* Effect.addFinalizer(() =>
      lock.withPermits(1)(Effect.forEach([...entries.values()], close, { discard: true }))
    )

    return {
      acquire,
      entries: lock.withPermits(1)(Effect.sync(() =>
        [...entries.values()].map((e) => ({
          key: e.key,
          value: e.value,
          users: e.users,
          lastUsedMillis: e.lastUsed,
          expiresAtMillis: e.users === 0 && Number.isFinite(e.ttl ?? ttl) ? e.lastUsed + (e.ttl ?? ttl) : undefined
        }))
      )),
      unload: (key) => {
        const attempt: Effect.Effect<void> = lock.withPermits(1)(Effect.suspend(() => {
          const entry = entries.get(key)
          if (entry === undefined) return Effect.succeed(Option.none<Deferred.Deferred<void>>())
          if (entry.users > 0 || entry.value === undefined) return Effect.succeed(Option.some(changed))
          return Effect.as(close(entry), Option.none<Deferred.Deferred<void>>())
        })).pipe(
          Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: (latch) => Effect.zipRight(Deferred.await(latch), attempt) }))
        )
        return attempt
      },
      setTimeToLive: (key, value) =>
        lock.withPermits(1)(Effect.gen(function*() {
          const entry = entries.get(key)
          if (entry === undefined) return
          entry.ttl = value === "forever" ? Infinity : Math.max(0, value)
          if (entry.users > 0 || entry.value === undefined) return
          // idle: count again from now with the new keep-alive
          entry.generation++
          if (entry.timer !== undefined) {
            yield* Fiber.interrupt(entry.timer)
            entry.timer = undefined
          }
          entry.lastUsed = yield* Clock.currentTimeMillis
          if (entry.ttl === 0) return yield* close(entry)
          yield* startIdleTimer(entry)
        })),
      invalidate: (key) =>
        lock.withPermits(1)(Effect.suspend(() => {
          const entry = entries.get(key)
          if (entry === undefined) return Effect.void
          entries.delete(key)
          return entry.users === 0 ? close(entry) : signal
        }))
    }
  })

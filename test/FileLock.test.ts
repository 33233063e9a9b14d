/**
 * The store's cross-process lock (src/layers/store/fileLock.ts, over proper-lockfile): stale locks
 * (old mtime, dead pid, the format before proper-lockfile) are taken over, a live one is waited for on the
 * TestClock and the wait ends when it is released, the wait is interruptible and leaves nothing, and the
 * non-waiting try reports the holder. Real files in a temp directory; no wall-clock waits.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { existsSync } from "node:fs"
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { acquireFileLock, type LockHolder, readHolder, tryFileLock } from "../src/layers/store/fileLock.js"
import { writeLock } from "./support/downloaderHarness.js"

const withDir = <A, E>(body: (dir: string) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "llmspell-lock-"))),
    body,
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

const live = (): LockHolder => ({ pid: process.pid, host: hostname(), startedAt: "held by a test" })

describe("acquireFileLock", () => {
  it.effect("takes a free lock, records this process as holder, removes it when the scope closes", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const lock = join(dir, "locks", "a.lock")
        yield* Effect.scoped(Effect.gen(function*() {
          yield* acquireFileLock(lock)
          const holder = yield* Effect.promise(() => readHolder(lock))
          expect(holder?.pid).toBe(process.pid)
          expect(holder?.host).toBe(hostname())
        }))
        expect(yield* Effect.promise(() => readdir(join(dir, "locks")))).toEqual([])
      })
    ))

  it.effect("a live lock is waited for on the TestClock; the wait ends at the first poll after its release", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const lock = join(dir, "b.lock")
        yield* Effect.promise(() => writeLock(lock, live()))
        const waiting = yield* Deferred.make<LockHolder | undefined>()
        const acquired = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(Effect.scoped(
          acquireFileLock(lock, {
            pollInterval: "2 seconds",
            onWait: (holder) => Deferred.succeed(waiting, holder)
          }).pipe(Effect.zipRight(Deferred.succeed(acquired, undefined)), Effect.zipRight(Effect.never))
        ))
        expect(yield* Deferred.await(waiting)).toEqual(live())
        // Released by its holder, but nobody looks until the Clock says so.
        yield* Effect.promise(() => rm(lock, { recursive: true }))
        yield* TestClock.adjust("1999 millis")
        expect(yield* Deferred.poll(acquired)).toEqual(Option.none())
        yield* TestClock.adjust("1 millis")
        yield* Deferred.await(acquired)
        expect((yield* Effect.promise(() => readHolder(lock)))?.pid).toBe(process.pid)
        yield* Fiber.interrupt(fiber)
        expect(existsSync(lock)).toBe(false)
      })
    ))

  it.effect("interrupting the wait ends it at once and leaves the holder's lock exactly as it was", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const lock = join(dir, "c.lock")
        const { owner, text } = yield* Effect.promise(() => writeLock(lock, live()))
        const waiting = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(
          Effect.scoped(acquireFileLock(lock, { onWait: () => Deferred.succeed(waiting, undefined) }))
        )
        yield* Deferred.await(waiting)
        // The clock is never advanced: interruption must not wait for a poll.
        const exit = yield* Fiber.interrupt(fiber)
        expect(Exit.isInterrupted(exit)).toBe(true)
        expect(yield* Effect.promise(() => readFile(owner, "utf8"))).toBe(text)
        expect(yield* Effect.promise(() => readdir(dir))).toEqual(["c.lock"])
        expect(yield* Effect.promise(() => readdir(lock))).toEqual(["owner.json"])
      })
    ))

  it.effect("a lock not refreshed for longer than staleMs (a holder that died, here or on another host) is taken over at once", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const lock = join(dir, "d.lock")
        yield* Effect.promise(async () => {
          await writeLock(lock, { pid: 1, host: "another-host.example", startedAt: "long ago" })
          const old = new Date(Date.now() - 60_000)
          await utimes(lock, old, old)
        })
        const waited = yield* Deferred.make<void>()
        yield* Effect.scoped(Effect.gen(function*() {
          yield* acquireFileLock(lock, { staleMs: 30_000, onWait: () => Deferred.succeed(waited, undefined) })
          expect((yield* Effect.promise(() => readHolder(lock)))?.pid).toBe(process.pid)
        }))
        expect(yield* Deferred.isDone(waited)).toBe(false)
        expect(existsSync(lock)).toBe(false)
      })
    ))

  it.effect("a fresh lock of another host is waited for (its process may live); one of a dead pid on this host is not", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const other = join(dir, "e.lock")
        yield* Effect.promise(() => writeLock(other, { pid: 1, host: "another-host.example", startedAt: "now" }))
        const refused = yield* Effect.scoped(tryFileLock(other))
        expect(refused).toEqual({ holder: { pid: 1, host: "another-host.example", startedAt: "now" } })

        const dead = join(dir, "f.lock")
        yield* Effect.promise(() => writeLock(dead, { pid: 2 ** 22 + 12345, host: hostname(), startedAt: "x" }))
        const taken = yield* Effect.scoped(tryFileLock(dead))
        expect(taken).toBeUndefined()
        expect(existsSync(dead)).toBe(false)
      })
    ))

  it.effect("a stale lock file of the format before proper-lockfile (a JSON file) is replaced", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const lock = join(dir, "g.lock")
        yield* Effect.promise(async () => {
          await writeFile(lock, JSON.stringify({ pid: 1, host: "another-host.example", startedAt: "x", token: "t" }))
          const old = new Date(Date.now() - 120_000)
          await utimes(lock, old, old)
        })
        yield* Effect.scoped(Effect.gen(function*() {
          expect(yield* tryFileLock(lock)).toBeUndefined()
          expect(yield* Effect.promise(() => readdir(lock))).toEqual(["owner.json"])
        }))
        expect(existsSync(lock)).toBe(false)
      })
    ))
})

describe("tryFileLock", () => {
  it.effect("reports the holder without waiting while held; in one process, two scopes cannot both hold it", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const lock = join(dir, "h.lock")
        const scope = yield* Scope.make()
        expect(yield* Scope.extend(tryFileLock(lock), scope)).toBeUndefined()
        const second = yield* Effect.scoped(tryFileLock(lock))
        expect(second?.holder?.pid).toBe(process.pid)
        yield* Scope.close(scope, Exit.void)
        expect(yield* Effect.scoped(tryFileLock(lock))).toBeUndefined()
        expect(yield* Effect.promise(() => readdir(dir))).toEqual([])
      })
    ))

  it.effect("a folder that cannot hold the lock is a FileLockError naming the lock", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        yield* Effect.promise(() => writeFile(join(dir, "file"), "x"))
        const lock = join(dir, "file", "i.lock")
        const error = yield* Effect.flip(Effect.scoped(tryFileLock(lock)))
        expect(error._tag).toBe("FileLockError")
        expect(error.path).toBe(lock)
        expect(error.reason).toContain("ENOTDIR")
      })
    ))
})

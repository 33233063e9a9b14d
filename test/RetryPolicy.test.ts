/**
 * The hub retry policy (src/layers/hub/retryPolicy.ts) as an Effect Schedule: backoff and
 * Retry-After waits elapse only when the TestClock is moved, a Retry-After over 60 s is RateLimited at
 * once, progress restarts the count, the no-progress deadline ends it, other errors are not retried.
 * No network, no wall-clock waits: attempts are counted and the clock is moved on purpose.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { type LlmspellError, ModelNotFound } from "../src/domain/Errors.js"
import { Retryable, withRetries } from "../src/layers/hub/retryPolicy.js"

/** An attempt that fails with the given errors in turn, then succeeds; counts its runs. */
const scripted = (failures: ReadonlyArray<LlmspellError | Retryable>) => {
  let runs = 0
  const once = () =>
    Effect.suspend(() => {
      const e = failures[runs++]
      return e === undefined ? Effect.succeed("ok") : Effect.fail(e)
    })
  return { once, runs: () => runs }
}

const options = { maxRetries: 3, hubUrl: "http://127.0.0.1:9" }

describe("withRetries", () => {
  it.effect("backs off 1 s, 2 s on the Clock, reporting each wait before it, then succeeds", () =>
    Effect.gen(function*() {
      const { once, runs } = scripted([new Retryable({ reason: "HTTP 503" }), new Retryable({ reason: "HTTP 503" })])
      const reports: Array<string> = []
      const fiber = yield* Effect.fork(withRetries(once, (m) => Effect.sync(() => reports.push(m)), options))
      yield* TestClock.adjust("999 millis")
      expect(runs()).toBe(1)
      expect(reports).toEqual(["HTTP 503; retry 1/3 in 1s"])
      yield* TestClock.adjust("1 millis")
      expect(runs()).toBe(2)
      yield* TestClock.adjust("1999 millis")
      expect(runs()).toBe(2)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toBe("ok")
      expect(runs()).toBe(3)
      expect(reports).toEqual(["HTTP 503; retry 1/3 in 1s", "HTTP 503; retry 2/3 in 2s"])
    }))

  it.effect("waits the server's Retry-After; over 60 s it is RateLimited at once, saying when", () =>
    Effect.gen(function*() {
      const told = scripted([new Retryable({ reason: "HTTP 429", retryAfterMs: 7_000 })])
      const fiber = yield* Effect.fork(withRetries(told.once, () => Effect.void, options))
      yield* TestClock.adjust("6999 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toBe("ok")

      const tooLong = scripted([new Retryable({ reason: "HTTP 429", retryAfterMs: 120_000, url: "http://127.0.0.1:9/x" })])
      const error = yield* Effect.flip(withRetries(tooLong.once, () => Effect.void, options))
      expect(error._tag).toBe("RateLimited")
      expect(error).toMatchObject({ retryAfterSeconds: 120, retryAt: new Date(7_000 + 120_000).toISOString() })
      expect(tooLong.runs()).toBe(1)
    }))

  it.effect("gives up after maxRetries failures in a row with DownloadFailed; progress starts the count again", () =>
    Effect.gen(function*() {
      const fail = new Retryable({ reason: "terminated" })
      const moved = new Retryable({ reason: "terminated", progressed: true })
      // 3 failures, then one that got further (it counts as failure 1 of a new run), then 2 more: 6 in all.
      const { once, runs } = scripted([fail, fail, fail, moved, fail, fail])
      const fiber = yield* Effect.fork(withRetries(once, () => Effect.void, { ...options, file: "m.gguf" }))
      yield* TestClock.adjust("10 minutes")
      expect(yield* Fiber.join(fiber)).toBe("ok")
      expect(runs()).toBe(7)

      const stuck = scripted([fail, fail, fail, fail, fail])
      const lost = yield* Effect.fork(Effect.flip(withRetries(stuck.once, () => Effect.void, { ...options, file: "m.gguf" })))
      yield* TestClock.adjust("10 minutes")
      const error = yield* Fiber.join(lost)
      expect(error._tag).toBe("DownloadFailed")
      expect(error.message).toContain("gave up after 3 retries")
      expect(stuck.runs()).toBe(4)
    }))

  it.effect("however the count is reset, ten minutes without progress give up", () =>
    Effect.gen(function*() {
      // Each failure claims progress but waits 59 s (Retry-After): the count never grows, the deadline does.
      const slow = new Retryable({ reason: "HTTP 429", retryAfterMs: 59_000 })
      const { once, runs } = scripted(Array.from({ length: 100 }, () => slow))
      const fiber = yield* Effect.fork(Effect.flip(withRetries(once, () => Effect.void, { ...options, maxRetries: 1000 })))
      yield* TestClock.adjust("20 minutes")
      const error = yield* Fiber.join(fiber)
      expect(error.message).toContain("no progress for 10m")
      expect(runs()).toBe(11) // 10 waits of 59 s fit in 10 minutes, the 11th would not
    }))

  it.effect("an unreachable hub while resolving fails at once; a typed error is never retried", () =>
    Effect.gen(function*() {
      const offline = scripted([new Retryable({ reason: "fetch failed (ECONNREFUSED)", unreachable: true })])
      const error = yield* Effect.flip(withRetries(offline.once, () => Effect.void, { ...options, failFastWhenUnreachable: true }))
      expect(error.message).toContain("cannot reach the hub at http://127.0.0.1:9")
      expect(offline.runs()).toBe(1)

      const missing = scripted([new ModelNotFound({ model: "org/x", backend: "gguf" })])
      expect((yield* Effect.flip(withRetries(missing.once, () => Effect.void, options)))._tag).toBe("ModelNotFound")
      expect(missing.runs()).toBe(1)
    }))
})

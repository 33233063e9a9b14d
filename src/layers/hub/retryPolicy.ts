/**
 * When a hub call is tried again, in one place: an Effect `Schedule` over the failures of a call (so its
 * waits run on Effect's Clock, and tests drive them with the TestClock). A `Retryable` failure waits the
 * server's `Retry-After` (up to 60 s; longer is RateLimited at once, saying when to come back) or an
 * exponential backoff (1, 2, 4 … 30 s); `maxRetries` failures in a row give up, and an attempt that got
 * meaningfully further than any before it (see `Retryable.progressed`) starts the count again, but however
 * the failures are counted, 10 minutes without progress give up too. Any other failure ends at once.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Interval from "effect/ScheduleInterval"
import { DownloadFailed, RateLimited } from "../../domain/Errors.js"

/** A failure worth another attempt (network, stall, 5xx, 429); becomes DownloadFailed when retries run out. */
export class Retryable extends Data.TaggedError("Retryable")<{
  readonly reason: string
  readonly retryAfterMs?: number | undefined
  readonly url?: string | undefined
  /** No connection could be made at all (DNS, refused): while resolving, that means offline. */
  readonly unreachable?: boolean | undefined
  /** The attempt got further than any before it: the failure count starts again. */
  readonly progressed?: boolean | undefined
}> {}

/** Longest `Retry-After` waited unattended; a longer one fails with RateLimited, saying when to come back. */
export const MAX_RETRY_AFTER_MS = 60_000
/** An attempt that got at least this much further than any before it starts the failure count again. */
export const MEANINGFUL_PROGRESS_BYTES = 64 * 1024
/** However the failures are counted, a pull gives up after this long without meaningful progress. */
export const NO_PROGRESS_DEADLINE = Duration.minutes(10)

/** The wait before retry number `failures` (1-based): 1, 2, 4, 8, 16, 30, 30 … seconds. */
export const backoff = (failures: number) => Duration.seconds(Math.min(30, 2 ** Math.max(0, failures - 1)))

/** What the policy decided about one failure: wait and retry, or end with an error (E: the call's own failures). */
export type RetryVerdict<E = never> =
  | { readonly _tag: "Retry"; readonly message: string; readonly wait: Duration.Duration }
  | { readonly _tag: "GiveUp"; readonly error: E | DownloadFailed | RateLimited }

/** Settings of one retried call. */
export interface RetryOptions {
  readonly maxRetries: number
  /** The hub, named when it cannot be reached. */
  readonly hubUrl: string
  /** The repo file being downloaded, for the final DownloadFailed. */
  readonly file?: string | undefined
  /** A hub no connection can be made to gives up at once (while resolving: that is being offline). */
  readonly failFastWhenUnreachable?: boolean | undefined
}

interface RetryState {
  readonly failures: number
  /** When the call last made progress (its start, at first). */
  readonly progressAt: number | undefined
}

const giveUp = (e: Retryable, options: RetryOptions, overdue: boolean): DownloadFailed =>
  new DownloadFailed({
    ...(e.url !== undefined ? { url: e.url } : {}),
    ...(options.file !== undefined ? { file: options.file } : {}),
    reason: e.unreachable === true
      ? `cannot reach the hub at ${options.hubUrl}: ${e.reason}`
      : overdue
      ? `${e.reason} (gave up: no progress for ${Duration.format(NO_PROGRESS_DEADLINE)})`
      : `${e.reason} (gave up after ${options.maxRetries} retries)`,
    suggestion: e.unreachable === true
      ? `check the network or HF_ENDPOINT; models already in the store work offline (HF_HUB_OFFLINE=1)`
      : "run the same pull again: it resumes where it stopped"
  })

/**
 * The retry policy as a Schedule over a call's failures, its clock started at `startedAt`: its output says
 * whether (and how long) to wait, or the error to end with.
 */
export const retrySchedule = <E extends { readonly _tag: string }>(
  startedAt: number,
  options: RetryOptions
): Schedule.Schedule<RetryVerdict<E>, E | Retryable> =>
  Schedule.makeWithState<RetryState, E | Retryable, RetryVerdict<E>>(
    { failures: 0, progressAt: undefined },
    (now, e, state) => {
      const stop = (error: E | DownloadFailed | RateLimited) =>
        Effect.succeed([state, { _tag: "GiveUp", error } as RetryVerdict<E>, ScheduleDecision.done] as const)
      if (!(e instanceof Retryable)) return stop(e)
      const failures = e.progressed === true ? 1 : state.failures + 1
      const progressAt = e.progressed === true ? now : state.progressAt ?? startedAt
      if (e.retryAfterMs !== undefined && e.retryAfterMs > MAX_RETRY_AFTER_MS) {
        const seconds = Math.ceil(e.retryAfterMs / 1000)
        return stop(
          new RateLimited({
            retryAfterSeconds: seconds,
            retryAt: new Date(now + seconds * 1000).toISOString(),
            ...(e.url !== undefined ? { url: e.url } : {})
          })
        )
      }
      const wait = e.retryAfterMs !== undefined ? Duration.millis(e.retryAfterMs) : backoff(failures)
      const overdue = now + Duration.toMillis(wait) - progressAt > Duration.toMillis(NO_PROGRESS_DEADLINE)
      if (failures > options.maxRetries || overdue || (e.unreachable === true && options.failFastWhenUnreachable === true)) {
        return stop(giveUp(e, options, overdue))
      }
      const why = e.retryAfterMs !== undefined ? "rate limited" : e.reason
      const verdict: RetryVerdict<E> = {
        _tag: "Retry",
        wait,
        message: `${why}; retry ${failures}/${options.maxRetries} in ${Duration.format(wait)}`
      }
      return Effect.succeed(
        [
          { failures, progressAt },
          verdict,
          ScheduleDecision.continueWith(Interval.after(now + Duration.toMillis(wait)))
        ] as const
      )
    }
  )

/**
 * Runs `once` (a fresh attempt each time) under the retry policy, reporting each wait before it starts;
 * ends with the attempt's result or the policy's error.
 */
export const withRetries = <A, E extends { readonly _tag: string }, R>(
  once: () => Effect.Effect<A, E | Retryable, R>,
  report: (message: string) => Effect.Effect<void>,
  options: RetryOptions
): Effect.Effect<A, Exclude<E, Retryable> | DownloadFailed | RateLimited, R> =>
  Effect.flatMap(Effect.clockWith((clock) => clock.currentTimeMillis), (startedAt) =>
    Effect.retryOrElse(
      Effect.suspend(once),
      retrySchedule<E>(startedAt, options).pipe(
        Schedule.tapOutput((verdict) => (verdict._tag === "Retry" ? report(verdict.message) : Effect.void))
      ),
      (e, verdict) =>
        Effect.fail(
          (verdict._tag === "GiveUp" ? verdict.error : giveUp(e as Retryable, options, false)) as Exclude<E, Retryable> | DownloadFailed | RateLimited
        )
    ))

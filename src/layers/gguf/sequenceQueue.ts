/**
 * The context sequences of a loaded chat model and the requests waiting for one. A request takes a
 * sequence for the life of its scope and gives it back when the scope closes (the answer ended,
 * failed or was interrupted); a waiter that is interrupted leaves the line and takes nothing.
 * Waiters are served in arrival order; which free sequence a request gets (waiter or not) is `choose`'s decision —
 * the least recently used one today. The chooser sees the request and every free sequence with its
 * last use, so a choice by shared prompt prefix (issue 21: the sequence whose KV cache already
 * holds the longest prefix of this prompt, the least recently used on ties and misses) drops in
 * here without touching the callers.
 *
 * Not `Queue`: a queue hands out its head, and the choice needs to look at all of them. Pure
 * Effect state on the one JS thread: every change is a synchronous step.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { GenerateRequest } from "../../domain/Types.js"

/** A free sequence and when it was last given back (a counter: larger is more recent). */
export interface FreeSequence<S> {
  readonly sequence: S
  readonly lastUsed: number
}

/** Picks the sequence a request gets among the free ones (never called with none free). */
export type ChooseSequence<S> = (free: ReadonlyArray<FreeSequence<S>>, request: GenerateRequest) => FreeSequence<S>

/** The free sequence given back longest ago. */
export const leastRecentlyUsed = <S>(free: ReadonlyArray<FreeSequence<S>>): FreeSequence<S> =>
  free.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a))

/** How many sequences there are, how many answers hold one now, and how many requests wait for one. */
export interface SequenceQueueCounts {
  readonly total: number
  readonly busy: number
  readonly waiting: number
}

/** A model's sequences, handed to one request at a time. */
export interface SequenceQueue<S> {
  /** A sequence for `request`, waiting in line while none is free; given back when the scope closes. */
  readonly take: (request: GenerateRequest) => Effect.Effect<S, never, Scope.Scope>
  readonly counts: Effect.Effect<SequenceQueueCounts>
}

interface Waiter<S> {
  readonly request: GenerateRequest
  readonly handed: Deferred.Deferred<S>
}

/** A queue over `sequences` (all free at first). */
export const make = <S>(
  sequences: ReadonlyArray<S>,
  choose: ChooseSequence<S> = leastRecentlyUsed
): Effect.Effect<SequenceQueue<S>> =>
  Effect.sync(() => {
    let uses = 0
    const free: Array<FreeSequence<S>> = sequences.map((sequence) => ({ sequence, lastUsed: uses++ }))
    const waiters: Array<Waiter<S>> = []

    const takeFree = (request: GenerateRequest): S => {
      const chosen = choose(free, request)
      free.splice(free.indexOf(chosen), 1)
      return chosen.sequence
    }

    // free again; the first waiter (if any) is served at once, through the chooser like everyone else
    const giveBack = (sequence: S) =>
      Effect.suspend(() => {
        free.push({ sequence, lastUsed: uses++ })
        const next = waiters.shift()
        return next === undefined ? Effect.void : Deferred.succeed(next.handed, takeFree(next.request))
      })

    const take = (request: GenerateRequest): Effect.Effect<S, never, Scope.Scope> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const sequence = free.length > 0 && waiters.length === 0
            ? takeFree(request)
            : yield* Effect.gen(function*() {
              const waiter: Waiter<S> = { request, handed: yield* Deferred.make<S>() }
              waiters.push(waiter)
              return yield* restore(Deferred.await(waiter.handed)).pipe(
                Effect.onInterrupt(() =>
                  Effect.gen(function*() {
                    const at = waiters.indexOf(waiter)
                    if (at >= 0) return void waiters.splice(at, 1)
                    // handed a sequence just as it was interrupted: pass it on
                    const handed = yield* Deferred.poll(waiter.handed)
                    if (handed._tag === "Some") yield* giveBack(yield* handed.value)
                  })
                )
              )
            })
          yield* Effect.addFinalizer(() => giveBack(sequence))
          return sequence
        })
      )

    return {
      take,
      counts: Effect.sync(() => ({ total: sequences.length, busy: sequences.length - free.length, waiting: waiters.length }))
    }
  })

/**
 * The context sequences of a loaded chat model and the requests waiting for one. A request takes a
 * sequence for the life of its scope and gives it back when the scope closes (the answer ended,
 * failed or was interrupted); a waiter that is interrupted leaves the line and takes nothing.
 * Waiters are served in arrival order; which free sequence a request gets (waiter or not) is `choose`'s decision:
 * it sees what the request says of itself (`R`: the GGUF loader passes the prompt's tokens, and
 * chooses by shared prompt prefix, `sequenceChoice.ts`) and every free sequence with its last use;
 * the default is the least recently used.
 *
 * Not `Queue`: a queue hands out its head, and the choice needs to look at all of them. Pure
 * Effect state on the one JS thread: every change is a synchronous step.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { GenerateRequest } from "../../domain/Types.js"

/** A free sequence and when it was last given back (a counter: larger is more recent). */
export interface FreeSequence<S> {
  readonly sequence: S
  readonly lastUsed: number
}

/** Picks the sequence a request gets among the free ones (never called with none free). */
export type ChooseSequence<S, R = GenerateRequest> = (free: ReadonlyArray<FreeSequence<S>>, request: R) => FreeSequence<S>

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
export interface SequenceQueue<S, R = GenerateRequest> {
  /** A sequence for `request`, waiting in line while none is free; given back when the scope closes. */
  readonly take: (request: R) => Effect.Effect<S, never, Scope.Scope>
  /**
   * Runs `use` with `sequence` held as if taken (another request's prompt prefix copied from it,
   * say), when it is free now; Option.none() when it is not. It comes back unchanged in its order
   * of use (lending is not a use), and a request waiting meanwhile gets it then.
   */
  readonly lend: <A>(sequence: S, use: Effect.Effect<A>) => Effect.Effect<Option.Option<A>>
  readonly counts: Effect.Effect<SequenceQueueCounts>
}

interface Waiter<S, R> {
  readonly request: R
  readonly handed: Deferred.Deferred<S>
}

/** A queue over `sequences` (all free at first). */
export const make = <S, R = GenerateRequest>(
  sequences: ReadonlyArray<S>,
  choose: ChooseSequence<S, R> = leastRecentlyUsed
): Effect.Effect<SequenceQueue<S, R>> =>
  Effect.sync(() => {
    let uses = 0
    const free: Array<FreeSequence<S>> = sequences.map((sequence) => ({ sequence, lastUsed: uses++ }))
    const waiters: Array<Waiter<S, R>> = []

    const takeFree = (request: R): S => {
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

    const lend = <A>(sequence: S, use: Effect.Effect<A>): Effect.Effect<Option.Option<A>> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const at = free.findIndex((f) => f.sequence === sequence)
          if (at < 0) return Effect.succeed(Option.none())
          const [lent] = free.splice(at, 1)
          return restore(use).pipe(
            Effect.map(Option.some),
            Effect.ensuring(Effect.suspend(() => {
              free.push(lent!)
              const next = waiters.shift()
              return next === undefined ? Effect.void : Deferred.succeed(next.handed, takeFree(next.request))
            }))
          )
        })
      )

    const take = (request: R): Effect.Effect<S, never, Scope.Scope> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const sequence = free.length > 0 && waiters.length === 0
            ? takeFree(request)
            : yield* Effect.gen(function*() {
              const waiter: Waiter<S, R> = { request, handed: yield* Deferred.make<S>() }
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
      lend,
      counts: Effect.sync(() => ({ total: sequences.length, busy: sequences.length - free.length, waiting: waiters.length }))
    }
  })

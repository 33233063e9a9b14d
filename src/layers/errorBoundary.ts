/**
 * Where a layer with an exact contract calls a service whose type still names every llmspell error
 * (ModelStore and ModelDownloader, until their signatures list what each method fails with), it
 * narrows what comes back here: the errors a Schema lists pass through, checked at run time, and
 * anything else is a defect — the contract says it cannot happen, so it is a bug, not a failure to
 * hand a caller as if it were expected. Once those services name their errors, the types meet by
 * construction and each use of this module can go.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

/** An effect that fails only with what `errors` lists; any other failure becomes a defect. */
export const failingWith = <L, I>(errors: Schema.Schema<L, I>) => {
  const listed = Schema.is(errors)
  return <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E & L, R> =>
    Effect.catchAll(effect, (e) => (listed(e) ? Effect.fail(e) : Effect.die(e)))
}

/** A stream that fails only with what `errors` lists; any other failure becomes a defect. */
export const streamFailingWith = <L, I>(errors: Schema.Schema<L, I>) => {
  const listed = Schema.is(errors)
  return <A, E, R>(stream: Stream.Stream<A, E, R>): Stream.Stream<A, E & L, R> =>
    Stream.catchAll(stream, (e) => (listed(e) ? Stream.fail(e) : Stream.die(e)))
}

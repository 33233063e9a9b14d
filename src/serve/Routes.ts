/**
 * What the two compatibility APIs share beyond HTTP: the server's settings a route needs, the
 * per-request record the access log prints, admission (requests beyond the running ones queue
 * up to a bound, then 503), the spec checks (a file path only with `--allow-paths`), the name a
 * listed model is served under, and starting a generation so that a failure before its first
 * event still gets a real status code. Everything goes through `LocalLLM`: the routes translate,
 * they never generate or load anything themselves.
 */
import type { ServeImageFetch } from "./ImageFetch.js"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ModelAlias } from "../domain/ModelAliases.js"
import type { BackendType } from "../domain/Types.js"
import type { LocalLLMService } from "../services/LocalLLM.js"
import { type BodyLimits, HttpFailure } from "./Http.js"
import * as Policy from "./Policy.js"

/** The per-request facts the access log prints; routes fill in what they learn. */
export interface RequestNote {
  model: string | undefined
  tokens: number | undefined
}

/** The note of the request being served. */
export class CurrentRequest extends Context.Tag("llmspell/serve/CurrentRequest")<CurrentRequest, RequestNote>() {}

/** Records the model a request named (for the access log). */
export const noteModel = (model: string) =>
  Effect.serviceOption(CurrentRequest).pipe(Effect.map(Option.map((n) => void (n.model = model))))

/** Records the tokens a request took (prompt + completion, or the prompt of an embedding). */
export const noteTokens = (tokens: number) =>
  Effect.serviceOption(CurrentRequest).pipe(Effect.map(Option.map((n) => void (n.tokens = tokens))))

/** A slot for one generation: taken before it starts, released when its response ends. */
export interface Admission {
  /** Takes a slot for the life of the scope, waiting in the queue; 503 with Retry-After when the queue is full. */
  readonly enter: Effect.Effect<void, HttpFailure, Scope.Scope>
}

/** What a route needs from the server. */
export interface RouteContext extends BodyLimits, Pick<Policy.Policy, "readOnly" | "allowPaths"> {
  readonly llm: LocalLLMService
  readonly admission: Admission
  /** llmspell's version, reported by `/api/version` beside the Ollama API level (`llmspell`). */
  readonly version: string
  /** `[serve.aliases]` (already applied by `llm`), for the listings. */
  readonly aliases?: ReadonlyArray<ModelAlias> | undefined
  /** `--allow-image-urls`: http(s) image URLs in requests are fetched by the server (ImageFetch). */
  readonly allowImageUrls?: boolean | undefined
  /**
   * Where those fetches may go (`public` addresses only, the default; `private` with
   * `--allow-private-image-urls`) and how they are bounded (defaults: IMAGE_LIMITS.bytes, 30 s,
   * 5 redirects, 4 URLs of a request at once).
   */
  readonly imageFetch?: ServeImageFetch | undefined
}

/** The request's `HttpServerRequest`, scope and note: what every route handler runs with. */
export type RouteEnv = HttpServerRequest.HttpServerRequest | Scope.Scope

/**
 * Checks a model spec from a request: present, and not a file path unless `--allow-paths` (a
 * request must not make the server read an arbitrary local file; the rule is Policy.checkSpec).
 */
export const checkSpec = (ctx: RouteContext, spec: string | undefined): Effect.Effect<string, HttpFailure> =>
  Effect.gen(function*() {
    if (spec === undefined || spec.trim() === "") return yield* new HttpFailure(400, "model is required")
    yield* noteModel(spec)
    if (Option.isSome(Policy.checkSpec(ctx, "serve", spec))) {
      return yield* new HttpFailure(
        403,
        `${JSON.stringify(spec)} is a file path; this server only serves models by name (start it with \`llmspell serve --allow-paths\` to allow paths)`,
        "permission_error"
      )
    }
    return spec
  })

/** Refuses a request that changes the model store when the server is read-only (Policy.checkWrite). */
export const checkWritable = (ctx: RouteContext, what: string): Effect.Effect<void, HttpFailure> =>
  Option.isSome(Policy.checkWrite(ctx, what))
    ? Effect.fail(new HttpFailure(403, `this server is read-only (--read-only): ${what} is refused`, "permission_error"))
    : Effect.void

/**
 * The spec a listed model is served under, which routes back to the same instance: `name@type`
 * for the instance named after its type (the usual `ollama` and `gguf`), else `instance/name`.
 */
export const servedName = (model: { readonly name: string; readonly backend?: BackendType | undefined; readonly instance?: string | undefined }) =>
  model.instance === undefined || model.backend === undefined
    ? model.name
    : model.instance === model.backend
    ? `${model.name}@${model.backend}`
    : `${model.instance}/${model.name}`

/**
 * Starts a stream and waits for its first chunk before anything is sent: an unknown model, a bad
 * request or a model that fails to load fails here, with its status code, instead of inside a
 * 200 stream. The rest is pulled from the request's scope, so a client that goes away
 * interrupts it (and so the generation).
 */
export const started = <A, E>(stream: Stream.Stream<A, E>): Effect.Effect<Stream.Stream<A, E>, E, Scope.Scope> =>
  Effect.gen(function*() {
    const pull = yield* Stream.toPull(stream)
    // the first chunk that holds an event: a backend may hand over empty chunks (a worker's message
    // that carried no event) before the one that fails, and that failure must still be a status
    const next: Effect.Effect<Option.Option<Chunk.Chunk<A>>, E> = pull.pipe(
      Effect.map(Option.some),
      Effect.catchAll(Option.match({ onNone: () => Effect.succeed(Option.none<Chunk.Chunk<A>>()), onSome: Effect.fail }))
    )
    const first = yield* Effect.iterate(yield* next, {
      while: (chunk) => Option.isSome(chunk) && Chunk.isEmpty(chunk.value),
      body: () => next
    })
    if (Option.isNone(first)) return Stream.empty
    return Stream.concat(Stream.fromChunk(first.value), Stream.repeatEffectChunkOption(pull))
  })

/**
 * Ollama's `keep_alive`: seconds as a number, or a Go duration ("5m", "1h30m", "10s", "-1");
 * a bare number in a string is seconds. Undefined when absent; a failure when malformed, NaN-ish
 * or longer than Policy.MAX_KEEP_ALIVE_SECONDS (where Go's own parser fails too); any negative
 * value (keep it loaded) becomes -1.
 */
export const keepAliveSeconds = (value: unknown): Either.Either<number | undefined, string> => {
  if (value === undefined || value === null) return Either.right(undefined)
  if (typeof value === "number") return Number.isFinite(value) ? Policy.boundKeepAlive(value) : Either.left("keep_alive must be finite")
  if (typeof value !== "string") return Either.left("keep_alive must be a duration string or a number of seconds")
  const text = value.trim()
  if (/^-?\d+(\.\d+)?$/.test(text)) return Policy.boundKeepAlive(Number(text))
  const match = /^(-?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(text)
  if (match === null) return Either.left(`keep_alive ${JSON.stringify(value)} is not a duration (e.g. "5m", "30s", "-1")`)
  const units: Record<string, number> = { ns: 1e-9, us: 1e-6, "µs": 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }
  const seconds = [...match[2]!.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)].reduce((sum, part) => sum + Number(part[1]) * units[part[2]!]!, 0)
  return Policy.boundKeepAlive(match[1] === "-" ? -seconds : seconds)
}

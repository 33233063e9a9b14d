/**
 * The one place where HTTP to a cloud provider becomes typed llmspell errors: JSON requests and SSE
 * streams over the instance's configured `HttpClient` (base URL, auth header, `anthropic-version`),
 * the status → error table (401/403 → MissingCredentials, 404 → ModelNotFound, 429 → RateLimited,
 * 5xx and connection failures → BackendUnavailable), and the bounded `Retry-After` retry. The key
 * is scrubbed from every provider message before it can reach an error: some proxies echo it.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { CloudInstanceConfig } from "../../domain/ConfigSchema.js"
import { BackendError, BackendUnavailable, MissingCredentials, ModelNotFound, RateLimited } from "../../domain/Errors.js"
import { retryAfterMillis } from "../../domain/RetryAfter.js"
import { redactUrlsIn } from "../../domain/ServerUrl.js"

/**
 * What a request to a provider can fail with: a refused key (401/403), a rate limit beyond what
 * llmspell waits, the provider down or unreachable (5xx, refused), or any other failure of the
 * request or its answer.
 */
export type CloudRequestError = MissingCredentials | RateLimited | BackendUnavailable | BackendError
/** What a request about one model can fail with: also a model the provider does not offer (404). */
export type CloudModelRequestError = CloudRequestError | ModelNotFound

/** What every request to one instance shares: its config and its configured client. */
export interface CloudContext {
  readonly instance: CloudInstanceConfig
  readonly http: HttpClient.HttpClient
}

/** Longest `Retry-After` llmspell waits unattended; a longer one fails at once with RateLimited. */
export const MAX_RETRY_AFTER_SECONDS = 60
/** Retries of one request the provider rate limited. */
export const MAX_RATE_LIMIT_RETRIES = 3

/** The key as the provider would echo it, replaced in any text; URLs in it shown redacted (`redactUrl`). */
export const scrub = (instance: CloudInstanceConfig, text: string): string => {
  const key = instance.apiKey === undefined ? "" : Redacted.value(instance.apiKey)
  return redactUrlsIn(key.length === 0 ? text : text.split(key).join("<redacted>"))
}

/** The provider's own words from an error body (`{ error: { message } }` for OpenAI and Anthropic alike), scrubbed and cut short. */
const providerMessage = (instance: CloudInstanceConfig, body: unknown): string | undefined => {
  const error = (body as { error?: unknown } | undefined)?.error
  // OpenAI and Anthropic nest it (`{ error: { message } }`); vLLM, Cohere and FastAPI servers put it at the top (`message`, `detail`)
  const top = body as { message?: unknown; detail?: unknown } | undefined
  const message = typeof error === "object" && error !== null
    ? (error as { message?: unknown }).message
    : typeof error === "string"
    ? error
    : typeof top?.message === "string"
    ? top.message
    : typeof top?.detail === "string"
    ? top.detail
    : undefined
  if (typeof message !== "string" || message.length === 0) return undefined
  const clean = scrub(instance, message)
  return clean.length > 300 ? `${clean.slice(0, 300)}…` : clean
}

/** Seconds from a `Retry-After` (seconds or an HTTP date) or `retry-after-ms` header; undefined when absent. */
export const retryAfterSeconds = (headers: Readonly<Record<string, string | undefined>>, now: number): number | undefined => {
  const ms = retryAfterMillis({ retryAfter: headers["retry-after"], retryAfterMs: headers["retry-after-ms"] }, now)
  return ms === undefined ? undefined : ms / 1000
}

/** Which operation a request served: errors say it. */
export interface RequestPurpose {
  readonly operation: string
}

/** A request about one model: a 404 means the provider does not offer it. */
export interface ModelPurpose extends RequestPurpose {
  readonly model: string
}

/** The error a non-2xx answer to a request about `purpose.model` means. */
export const errorForModelStatus = (
  instance: CloudInstanceConfig,
  purpose: ModelPurpose,
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  body: unknown,
  now: number
): CloudModelRequestError => {
  if (status !== 404) return errorForStatus(instance, purpose, status, headers, body, now)
  const said = providerMessage(instance, body)
  return new ModelNotFound({
    model: purpose.model,
    backend: "cloud",
    instance: instance.name,
    operation: purpose.operation,
    ...(said !== undefined ? { detail: said } : {}),
    suggestion: `check the name; \`llmspell model list --backend cloud\` lists the models ${instance.name} offers`
  })
}

/** The error a non-2xx answer means. */
export const errorForStatus = (
  instance: CloudInstanceConfig,
  purpose: RequestPurpose,
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  body: unknown,
  now: number
): CloudRequestError => {
  const said = providerMessage(instance, body)
  const their = said !== undefined ? `: ${said}` : ""
  if (status === 401 || status === 403) {
    return new MissingCredentials({
      provider: instance.name,
      ...(instance.keyVariable !== undefined ? { variable: instance.keyVariable } : {}),
      reason: status === 401
        ? `the provider refused the key (HTTP 401${their})`
        : `the key is not allowed to do this (HTTP 403${their})`
    })
  }
  if (status === 429) {
    const seconds = retryAfterSeconds(headers, now) ?? 1
    return new RateLimited({
      provider: instance.name,
      retryAfterSeconds: seconds,
      retryAt: new Date(now + seconds * 1000).toISOString(),
      ...(instance.baseUrl !== undefined ? { url: instance.baseUrl } : {})
    })
  }
  if (status >= 500) {
    return new BackendUnavailable({
      backend: "cloud",
      instance: instance.name,
      ...(instance.baseUrl !== undefined ? { url: instance.baseUrl } : {}),
      reason: `the provider answered HTTP ${status}${their}`,
      suggestion: `try again later; \`llmspell model status --backend cloud\` checks ${instance.name}`
    })
  }
  return new BackendError({
    backend: "cloud",
    instance: instance.name,
    operation: purpose.operation,
    reason: `the provider answered HTTP ${status}${their}`,
    suggestion: `\`llmspell model status --backend cloud\` checks ${instance.name}`
  })
}

/** A request that never got an answer (refused, DNS, TLS, reset before headers). */
const unreachable = (instance: CloudInstanceConfig, error: HttpClientError.RequestError): BackendUnavailable =>
  new BackendUnavailable({
    backend: "cloud",
    instance: instance.name,
    ...(instance.baseUrl !== undefined ? { url: instance.baseUrl } : {}),
    reason: `cannot connect (${scrub(instance, String((error.cause as Error | undefined)?.cause ?? error.cause ?? error.reason))})`,
    suggestion: `check base_url of [providers.${instance.name}] and the network; \`llmspell model status --backend cloud\` checks it`
  })

/** A body that broke off after the answer started. */
export const dropped = (instance: CloudInstanceConfig, purpose: RequestPurpose, what: string): BackendError =>
  new BackendError({
    backend: "cloud",
    instance: instance.name,
    operation: purpose.operation,
    reason: what,
    suggestion: "run it again; if it keeps happening, `llmspell model status --backend cloud` checks the provider"
  })

const headersOf = (response: { readonly headers: Readonly<Record<string, string>> }) => response.headers as Readonly<Record<string, string | undefined>>

/** Sends a request and hands back the 2xx response; anything else becomes its typed error (`statusError` for a non-2xx answer). */
const send = <E>(
  ctx: CloudContext,
  request: HttpClientRequest.HttpClientRequest,
  purpose: RequestPurpose,
  statusError: (status: number, headers: Readonly<Record<string, string | undefined>>, body: unknown, now: number) => E
) =>
  ctx.http.execute(request).pipe(
    Effect.catchTag("RequestError", (e) => Effect.fail(unreachable(ctx.instance, e))),
    Effect.catchTag("ResponseError", (e) => Effect.fail(dropped(ctx.instance, purpose, `unreadable answer (${e.reason})`))),
    Effect.flatMap((response) =>
      response.status >= 200 && response.status < 300
        ? Effect.succeed(response)
        : Effect.flatMap(
          Effect.orElseSucceed(response.json, () => undefined),
          (body) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.fail(statusError(response.status, headersOf(response), body, now)))
        )
    )
  )

const jsonOf = <E>(ctx: CloudContext, purpose: RequestPurpose, sent: Effect.Effect<HttpClientResponse.HttpClientResponse, E, Scope.Scope>) =>
  Effect.scoped(
    Effect.flatMap(sent, (response) => Effect.mapError(response.json, () => dropped(ctx.instance, purpose, "the answer is not JSON")))
  ).pipe(retryRateLimited)

/** A JSON request: the decoded body of a 2xx answer. */
export const requestJson = (
  ctx: CloudContext,
  request: HttpClientRequest.HttpClientRequest,
  purpose: RequestPurpose
): Effect.Effect<unknown, CloudRequestError> =>
  jsonOf(ctx, purpose, send(ctx, request, purpose, (...answer) => errorForStatus(ctx.instance, purpose, ...answer)))

/**
 * A JSON request whose non-2xx answers the caller maps itself (`statusError` gets the status, the
 * headers, the body and the provider's own words, scrubbed): the decoded body of a 2xx answer.
 */
export const requestJsonWith = <E>(
  ctx: CloudContext,
  request: HttpClientRequest.HttpClientRequest,
  purpose: RequestPurpose,
  statusError: (status: number, headers: Readonly<Record<string, string | undefined>>, body: unknown, now: number, said: string | undefined) => E
): Effect.Effect<unknown, CloudRequestError | E> =>
  jsonOf(ctx, purpose, send(ctx, request, purpose, (status, headers, body, now) => statusError(status, headers, body, now, providerMessage(ctx.instance, body))))

/** A JSON request about one model (a 404 is ModelNotFound): the decoded body of a 2xx answer. */
export const requestModelJson = (
  ctx: CloudContext,
  request: HttpClientRequest.HttpClientRequest,
  purpose: ModelPurpose
): Effect.Effect<unknown, CloudModelRequestError> =>
  jsonOf(ctx, purpose, send(ctx, request, purpose, (...answer) => errorForModelStatus(ctx.instance, purpose, ...answer)))

/** One server-sent event: its `event:` name (empty when absent) and its `data:` lines joined. */
export interface SseEvent {
  readonly event: string
  readonly data: string
}

/**
 * A small incremental SSE parser (the WHATWG event-stream format: `field: value` lines, an empty
 * line ends an event, `:` lines are comments). Hand-written instead of @effect/experimental's Sse
 * channel: that one costs a mailbox round trip per network chunk, and at thousands of tokens per
 * second (one event per chunk) that overhead is what limits a streamed completion (bench:cloud).
 */
export const makeSseParser = () => {
  let buffer = ""
  let event = ""
  let data: Array<string> = []
  return (text: string): Array<SseEvent> => {
    buffer = buffer.length === 0 ? text : buffer + text
    const out: Array<SseEvent> = []
    let start = 0
    for (;;) {
      const nl = buffer.indexOf("\n", start)
      if (nl < 0) break
      const end = nl > start && buffer.charCodeAt(nl - 1) === 13 ? nl - 1 : nl
      const line = buffer.slice(start, end)
      start = nl + 1
      if (line.length === 0) {
        if (data.length > 0 || event.length > 0) out.push({ event, data: data.join("\n") })
        event = ""
        data = []
        continue
      }
      if (line.charCodeAt(0) === 58) continue // ':' comment
      const colon = line.indexOf(":")
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? "" : line.charCodeAt(colon + 1) === 32 ? line.slice(colon + 2) : line.slice(colon + 1)
      if (field === "data") data.push(value)
      else if (field === "event") event = value
    }
    buffer = start >= buffer.length ? "" : buffer.slice(start)
    return out
  }
}

/** Longest event llmspell buffers (a larger one is a broken or hostile stream). */
const MAX_EVENT_CHARS = 16 * 1024 * 1024

/**
 * An SSE request: `onEvents` turns the events of each network read into output elements, in one
 * step per read (not per event: at thousands of tokens per second that difference is the
 * throughput). A 429 retries the request before any event; the request is aborted when the
 * stream's consumer stops or is interrupted (FetchHttpClient ties the fetch's signal to the scope).
 */
export const requestSse = <A, E>(
  ctx: CloudContext,
  request: HttpClientRequest.HttpClientRequest,
  purpose: ModelPurpose,
  onEvents: (events: ReadonlyArray<SseEvent>) => Effect.Effect<Chunk.Chunk<A>, E>,
  /** True once the answer is complete (`[DONE]`, `message_stop`): the stream ends after that read. */
  isDone: () => boolean = () => false
): Stream.Stream<A, CloudModelRequestError | E> =>
  retryRateLimited(send(ctx, request, purpose, (...answer) => errorForModelStatus(ctx.instance, purpose, ...answer))).pipe(
    Effect.map((response) => {
      const parse = makeSseParser()
      const decoder = new TextDecoder()
      let pending = 0
      return response.stream.pipe(
        Stream.mapError(() => dropped(ctx.instance, purpose, "the connection dropped in the middle of the answer")),
        Stream.mapEffect((bytes): Effect.Effect<Chunk.Chunk<A>, BackendError | E> => {
          const text = decoder.decode(bytes, { stream: true })
          pending += text.length
          const events = parse(text)
          if (events.length > 0) pending = 0
          if (pending > MAX_EVENT_CHARS) return Effect.fail(dropped(ctx.instance, purpose, "an event of the answer is too large"))
          return events.length === 0 ? Effect.succeed(Chunk.empty<A>()) : onEvents(events)
        }),
        // Decided per read, after its events are folded: the read that completes the answer is kept whole.
        Stream.takeUntil(isDone),
        Stream.flattenChunks
      )
    }),
    Stream.unwrapScoped
  )

/**
 * The retry policy of a rate-limited request: wait what `Retry-After` says (on the Clock, so a
 * TestClock drives it), at most MAX_RATE_LIMIT_RETRIES times, and never longer than
 * MAX_RETRY_AFTER_SECONDS at once; every other error fails at once. Only a request is retried,
 * never a stream that already produced events: a 429 comes before the first event.
 */
export const rateLimitSchedule: Schedule.Schedule<unknown, unknown> = Schedule.identity<unknown>().pipe(
  Schedule.whileInput((e) => e instanceof RateLimited && e.retryAfterSeconds <= MAX_RETRY_AFTER_SECONDS),
  Schedule.addDelay((e) => Duration.seconds(e instanceof RateLimited ? e.retryAfterSeconds : 0)),
  Schedule.intersect(Schedule.recurs(MAX_RATE_LIMIT_RETRIES))
)

/** Retries an effect the provider rate limited, per `rateLimitSchedule`. */
export const retryRateLimited = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(effect, rateLimitSchedule)

/** Retries a stream the provider rate limited, per `rateLimitSchedule`. */
export const retryRateLimitedStream = <A, E, R>(stream: Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
  Stream.retry(stream, rateLimitSchedule)

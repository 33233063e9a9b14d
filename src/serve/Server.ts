/**
 * `llmspell serve`'s HTTP server: Ollama's API, OpenAI's API and llmspell's own protocol (`/rpc`),
 * on `@effect/platform`'s Node HTTP server, in front of the LocalLLM service.
 *
 * Every request passes, in order: the drain (while stopping, 503 with Retry-After), the Policy
 * (src/serve/Policy.ts: the Host check on a loopback bind, CORS, the API key), then its route.
 * Refusals and errors before a route are worded in the shape of the API the path belongs to.
 * Generations go through admission: as many run as `concurrency`, up to `maxQueue` more wait, the
 * next gets 503 with Retry-After. One access-log entry per request (method, path, model, status,
 * tokens, ms), written when its response has been sent; the key is never logged.
 *
 * `GET /metrics` (src/serve/MetricsApi.ts) answers the Prometheus exposition behind the same checks;
 * every request counts in `llmspell_http_requests_total` by the route of the table (never the path
 * as sent) and its status class, and each wait for a slot in `llmspell_request_queue_time_seconds`.
 *
 * `start` reads what a caller leaves out the same way for the CLI and for library callers: the
 * key from `LLMSPELL_API_KEY` (through Effect's ConfigProvider), the concurrency from the
 * configured instances (EffectiveConfig). It returns when the server listens; closing its scope
 * drains: idle connections are closed at once, new requests get 503, requests in flight may
 * finish within `drainTimeoutMs`; then every connection is closed (src/serve/Connections.ts says
 * why nothing below a request may hold that up).
 *
 * The seam for another protocol: pass `rpc` (an HttpApp) and it is mounted at `/rpc` instead of
 * llmspell's own, behind the same checks.
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { ServeFailed, type UsageError } from "../domain/Errors.js"
import * as Metrics from "../domain/Metrics.js"
import type { ModelAlias } from "../domain/ModelAliases.js"
import { EffectiveConfig } from "../services/EffectiveConfig.js"
import { LocalLLM } from "../services/LocalLLM.js"
import { withAliases } from "./Aliases.js"
import * as AnthropicApi from "./AnthropicApi.js"
import * as Connections from "./Connections.js"
import { concurrencyFor, DEFAULTS } from "./Defaults.js"
import { errorResponse as apiErrorResponse, HttpFailure } from "./Http.js"
import * as MetricsApi from "./MetricsApi.js"
import * as OllamaApi from "./OllamaApi.js"
import * as OpenAiApi from "./OpenAiApi.js"
import * as RerankApi from "./RerankApi.js"
import * as Policy from "./Policy.js"
import * as UiApi from "./UiApi.js"
import { ASSET_PREFIX, type UiPage } from "./UiAssets.js"
import { type Admission, CurrentRequest, type RequestNote, type RouteContext } from "./Routes.js"
import * as Rpc from "./rpc.js"
import type { ImageFetchOptions, ImageUrlAccess } from "../layers/ImageFetch.js"

/** One access-log entry. */
export interface AccessLogEntry {
  readonly time: string
  readonly method: string
  readonly path: string
  readonly model?: string
  readonly status: number
  readonly tokens?: number
  readonly ms: number
}

/** How the server runs. */
export interface ServeOptions {
  /** Address to listen on; default 127.0.0.1. Anything but loopback needs an API key. */
  readonly host?: string
  /** Port; default 11435; 0 picks a free one. */
  readonly port?: number
  /** Every request must carry `Authorization: Bearer <key>`; default: `LLMSPELL_API_KEY`, if set. A blank key is refused. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Browser origins allowed (CORS); none by default. `*` allows any. */
  readonly corsOrigins?: ReadonlyArray<string>
  /** Refuse pull and delete. */
  readonly readOnly?: boolean
  /** Serve specs that are file paths. */
  readonly allowPaths?: boolean
  /**
   * Fetch http(s) image URLs in requests, from public addresses only (off: they are refused, and
   * images must be data: URLs). Over the protocol too: a connected client's `{ url }` images.
   */
  readonly allowImageUrls?: boolean
  /**
   * Fetch them from any address, loopback and private networks included (implies allowImageUrls):
   * for a server on a trusted network whose images live there.
   */
  readonly allowPrivateImageUrls?: boolean
  /** Further bounds of those fetches (concurrency, bytes, redirects; `resolve` for tests). */
  readonly imageFetch?: ImageFetchOptions
  /** How long one image URL's fetch may take (default 30 s); it counts the fetch only. */
  readonly imageUrlTimeoutMs?: number
  /** Generations that may wait for a slot before the next gets 503 (default 64). */
  readonly maxQueue?: number
  /** Generations running at once (default: each GGUF instance's `parallel` plus 4 per Ollama instance). */
  readonly concurrency?: number
  /** Largest request body (default 16 MiB). */
  readonly maxBodyBytes?: number
  /** How long requests in flight may take to finish when the server stops (default 10 s). */
  readonly drainTimeoutMs?: number
  /** Where access-log entries go (default: nowhere). */
  readonly log?: (entry: AccessLogEntry) => Effect.Effect<void>
  /** Another protocol at `/rpc` instead of llmspell's own (see the module comment). */
  readonly rpc?: HttpApp.Default<never, HttpServerRequest.HttpServerRequest | Scope.Scope>
  /** llmspell's version, reported by `/api/version` beside the Ollama API level (`llmspell`). */
  readonly version?: string
  /** `[serve.aliases]`: model names clients send → specs, for every API (default: the config's). */
  readonly aliases?: ReadonlyArray<ModelAlias>
  /** The web page (`UiAssets.load`), served at `/` to browsers with its JSON routes at `/ui/api/`; none: no page. */
  readonly ui?: UiPage | undefined
}

/** Load figures: generations running and waiting, requests in flight. */
export interface ServerLoad {
  readonly running: number
  readonly queued: number
  readonly inFlight: number
}

/** A listening server. */
export interface RunningServer {
  /** `http://host:port` as clients reach it. */
  readonly url: string
  readonly host: string
  readonly port: number
  /** True when requests need the API key (given, or from LLMSPELL_API_KEY); the key itself is not here. */
  readonly keyRequired: boolean
  /** Load, as it changes (tests wait on it instead of sleeping). */
  readonly load: SubscriptionRef.SubscriptionRef<ServerLoad>
}

/** Defaults of the options. */
export { DEFAULTS }

/** True for an address or Host name that is this machine's loopback. */
export const isLoopbackName = Policy.isLoopbackName

/** Refuses a bind that would expose the server without a key. */
export const checkBind = (host: string, apiKey: Redacted.Redacted<string> | undefined): Effect.Effect<void, UsageError> =>
  Policy.checkBind(host, Option.fromNullable(apiKey))

const unavailable = (reason: string, retryAfter: number) =>
  new HttpFailure(503, reason, "server_error", { "retry-after": String(retryAfter) })

/**
 * Admission of generations: `concurrency` run, `maxQueue` wait, the next is refused. (A request
 * that arrived before the server began stopping is in flight and is admitted as before: the drain
 * lets it finish.)
 */
const makeAdmission = (
  load: SubscriptionRef.SubscriptionRef<ServerLoad>,
  limits: { readonly concurrency: number; readonly maxQueue: number }
): Effect.Effect<Admission> =>
  Effect.map(Effect.makeSemaphore(limits.concurrency), (slots) => {
    const change = (f: (l: ServerLoad) => ServerLoad) => SubscriptionRef.update(load, f)
    return {
      // uninterruptible but for the wait itself: a request interrupted anywhere else still leaves the counts right
      enter: Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          // decided and counted in one step, so two requests cannot both take the last place in the queue
          const full = yield* SubscriptionRef.modify(load, (l): [ServerLoad | undefined, ServerLoad] =>
            l.running >= limits.concurrency && l.queued >= limits.maxQueue ? [l, l] : [undefined, { ...l, queued: l.queued + 1 }]
          )
          if (full !== undefined) {
            return yield* unavailable(
              `the server is busy: ${full.running} generations running and ${full.queued} waiting (--max-queue ${limits.maxQueue})`,
              1
            )
          }
          const queuedAt = yield* Clock.currentTimeNanos
          yield* Effect.acquireRelease(
            restore(slots.take(1)).pipe(
              Effect.ensuring(change((l) => ({ ...l, queued: l.queued - 1 }))),
              Effect.zipLeft(Effect.flatMap(Clock.currentTimeNanos, (now) => Metric.update(Metrics.requestQueueTime, Number(now - queuedAt) / 1e9))),
              Effect.zipRight(change((l) => ({ ...l, running: l.running + 1 })))
            ),
            () => slots.release(1).pipe(Effect.zipRight(change((l) => ({ ...l, running: l.running - 1 }))))
          )
        })
      )
    }
  })

/** The path of a request target (`/api/tags?x` → `/api/tags`); a target that is not a URL path is itself. */
const pathOf = (target: string): string => {
  try {
    return new URL(target, "http://localhost").pathname
  } catch {
    return target
  }
}

/** Every Host header of a request, from Node's raw list (its `headers.host` keeps only the first). */
const hostHeaders = (raw: ReadonlyArray<string>): Array<string> =>
  raw.flatMap((name, i) => (i % 2 === 0 && name.toLowerCase() === "host" ? [raw[i + 1] ?? ""] : []))

/**
 * An answer given before any route (a refusal, no such route, shutting down) in the shape of the
 * API of its path: Anthropic's under `/v1/messages`, else OpenAI's or Ollama's (Http.errorResponse).
 */
const errorResponse = (path: string, failure: HttpFailure, code: string | null = null) =>
  AnthropicApi.isAnthropicPath(path) ? AnthropicApi.failureResponse(failure) : apiErrorResponse(path, failure, code)

/** A Policy refusal of a request, in the shape of the API of its path. */
const refusalResponse = (path: string, refusal: Policy.RequestRefusal) => {
  switch (refusal._tag) {
    case "Unauthorized":
      if (AnthropicApi.isAnthropicPath(path)) return AnthropicApi.unauthorized()
      return errorResponse(
        path,
        new HttpFailure(401, "unauthorized: send Authorization: Bearer <the server's API key>", "invalid_request_error", {
          "www-authenticate": "Bearer"
        }),
        "invalid_api_key"
      )
    case "HostRefused":
      return errorResponse(path, new HttpFailure(403, `refused: Host ${JSON.stringify(refusal.host)}: ${refusal.reason}`, "permission_error"))
    case "OriginRefused":
      return errorResponse(
        path,
        new HttpFailure(403, `refused: origin ${refusal.origin} is not allowed (the server allows browser origins it was started with)`, "permission_error")
      )
  }
}

/** Starts the server in the current scope; it stops (draining) when the scope closes. */
export const start = (
  options: ServeOptions = {}
): Effect.Effect<RunningServer, UsageError | ServeFailed, LocalLLM | EffectiveConfig | Scope.Scope> =>
  Effect.gen(function*() {
    const host = options.host ?? DEFAULTS.host
    const port = options.port ?? DEFAULTS.port
    const maxQueue = Math.max(0, options.maxQueue ?? DEFAULTS.maxQueue)
    const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes
    const drainTimeout = Duration.millis(options.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs)
    const fromEnvironment = yield* Config.option(Config.redacted("LLMSPELL_API_KEY")).pipe(
      Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
    )
    const apiKey = yield* Policy.apiKeyFrom(Option.fromNullable(options.apiKey), fromEnvironment)
    yield* Policy.checkBind(host, apiKey)
    const config = yield* EffectiveConfig
    const concurrency = Math.max(1, options.concurrency ?? concurrencyFor(config))
    const aliases = options.aliases ?? config.serveAliases ?? []
    const policy: Policy.Policy = {
      apiKey,
      loopbackOnly: Policy.isLoopbackName(host),
      corsOrigins: options.corsOrigins ?? [],
      readOnly: options.readOnly ?? false,
      allowPaths: options.allowPaths ?? false
    }

    const imageAccess: ImageUrlAccess = options.allowPrivateImageUrls === true
      ? "private"
      : options.allowImageUrls === true
      ? "public"
      : "off"
    const llm = withAliases(yield* LocalLLM, aliases)
    const load = yield* SubscriptionRef.make<ServerLoad>({ running: 0, queued: 0, inFlight: 0 })
    const stopping = yield* Deferred.make<void>()
    const ctx: RouteContext = {
      llm,
      readOnly: policy.readOnly,
      allowPaths: policy.allowPaths,
      allowImageUrls: imageAccess !== "off",
      imageFetch: {
        ...options.imageFetch,
        access: imageAccess === "private" ? "private" : "public",
        ...(options.imageUrlTimeoutMs !== undefined ? { timeoutMs: options.imageUrlTimeoutMs } : {})
      },
      admission: yield* makeAdmission(load, { concurrency, maxQueue }),
      maxBodyBytes,
      version: options.version ?? "0.0.0",
      aliases
    }
    const rpc = options.rpc ?? (yield* Rpc.makeHttpApp({
      readOnly: policy.readOnly,
      allowPaths: policy.allowPaths,
      // a connected client's `{ url }` images: this server's setting, whatever the client's
      imageUrls: {
        ...ctx.imageFetch,
        access: imageAccess,
        enableWith: "the server allows it (llmspell serve --allow-image-urls)"
      }
    }))
    const apis = HttpRouter.concatAll(
      OllamaApi.routes(ctx),
      OpenAiApi.routes(ctx),
      AnthropicApi.routes(ctx),
      RerankApi.routes(ctx),
      MetricsApi.routes(ctx, { load: SubscriptionRef.get(load), concurrency, maxQueue })
    )
    const withUi = options.ui !== undefined
      ? HttpRouter.concat(apis, UiApi.routes(ctx, { load: SubscriptionRef.get(load), concurrency, maxQueue }))
      : apis
    const routes = withUi.pipe(HttpRouter.mountApp(Rpc.RPC_PATH, rpc))
    const routeLabel = MetricsApi.routeLabeller(withUi, { rpcPath: Rpc.RPC_PATH, assetPrefix: ASSET_PREFIX })
    const routed = Effect.catchTag(routes, "RouteNotFound", (e) =>
      Effect.succeed(errorResponse(pathOf(e.request.url), new HttpFailure(404, `no route for ${e.request.method} ${pathOf(e.request.url)}`))))

    const corsHeaders = (origin: string): Record<string, string> => ({
      "access-control-allow-origin": policy.corsOrigins.includes("*") ? "*" : origin,
      vary: "Origin"
    })

    /** The drain's refusal, the Policy, the route; the answer written by Connections.send. */
    const handler = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = pathOf(request.url)
      const response = yield* Effect.gen(function*() {
        if (yield* Deferred.isDone(stopping)) {
          return errorResponse(path, unavailable("the server is shutting down", 5))
        }
        const origin = request.headers["origin"]
        const facts: Policy.RequestFacts = {
          hosts: hostHeaders(NodeHttpServerRequest.toIncomingMessage(request).rawHeaders),
          target: request.url,
          origin,
          authorization: request.headers["authorization"],
          apiKeyHeader: request.headers["x-api-key"]
        }
        const preflight = request.method === "OPTIONS" && origin !== undefined
        // the page's files hold no data: a browser gets them without the key, then the page asks for it
        const page = options.ui !== undefined && !preflight ? options.ui.answer(request) : Option.none()
        const refusal = Policy.checkRequest(policy, facts, { preflight, public: Option.isSome(page) })
        if (Option.isSome(refusal)) {
          const refused = refusalResponse(path, refusal.value)
          return origin !== undefined && refusal.value._tag === "Unauthorized" ? HttpServerResponse.setHeaders(refused, corsHeaders(origin)) : refused
        }
        if (preflight) {
          return HttpServerResponse.empty({
            status: 204,
            headers: {
              ...corsHeaders(origin),
              "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
              "access-control-allow-headers": request.headers["access-control-request-headers"] ?? "authorization, content-type",
              "access-control-max-age": "600"
            }
          })
        }
        if (Option.isSome(page)) return page.value
        const answer = yield* routed
        return origin !== undefined ? HttpServerResponse.setHeaders(answer, corsHeaders(origin)) : answer
      })
      // once stopping, a connection is not kept for another request
      const closing = yield* Deferred.isDone(stopping)
      return yield* Connections.send(request, closing ? HttpServerResponse.setHeader(response, "connection", "close") : response)
    })

    /** Counts the request in flight for the drain, and logs it once its response is sent. */
    const track = <E, R>(handled: HttpApp.Default<E, R>): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const note: RequestNote = { model: undefined, tokens: undefined }
        const began = yield* Clock.currentTimeMillis
        const beganNanos = yield* Clock.currentTimeNanos
        yield* SubscriptionRef.update(load, (l) => ({ ...l, inFlight: l.inFlight + 1 }))
        return yield* Effect.provideService(handled, CurrentRequest, note).pipe(
          Effect.onExit((exit) =>
            Effect.gen(function*() {
              yield* SubscriptionRef.update(load, (l) => ({ ...l, inFlight: l.inFlight - 1 }))
              const status = Exit.match(exit, {
                onSuccess: (response) => response.status,
                onFailure: (cause) => (Cause.isInterruptedOnly(cause) ? 499 : 500)
              })
              // the route of the table, never the path as sent: a label set a client cannot grow
              const labels = { route: routeLabel(pathOf(request.url)), status_class: Metrics.statusClass(status) }
              yield* Metric.increment(Metrics.labelled(Metrics.httpRequests, labels))
              const endedNanos = yield* Clock.currentTimeNanos
              yield* Metric.update(Metrics.labelled(Metrics.httpRequestDuration, labels), Number(endedNanos - beganNanos) / 1e9)
              if (options.log === undefined) return
              const ended = yield* Clock.currentTimeMillis
              yield* options.log({
                time: new Date(began).toISOString(),
                method: request.method,
                path: pathOf(request.url),
                ...(note.model !== undefined ? { model: note.model } : {}),
                status,
                ...(note.tokens !== undefined ? { tokens: note.tokens } : {}),
                ms: ended - began
              })
            })
          )
        )
      })

    const connections = Connections.make()
    const server = yield* NodeHttpServer.make(() => connections.server, { host, port }).pipe(
      Effect.mapError((e) =>
        new ServeFailed({ address: `${host}:${port}`, reason: e.cause instanceof Error ? e.cause.message : String(e.cause) })
      )
    )
    yield* HttpServer.serveEffect(handler, track).pipe(Effect.provideService(HttpServer.HttpServer, server))

    // Added after serveEffect, so it runs first (finalizers run in reverse): requests are answered
    // (503) while it drains. The wait is interruptible: a finalizer is not, and a timeout could
    // otherwise never cut it.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Deferred.succeed(stopping, undefined)
        yield* connections.closeIdle
        if ((yield* SubscriptionRef.get(load)).inFlight > 0) {
          yield* load.changes.pipe(
            Stream.takeUntil((l) => l.inFlight === 0),
            Stream.runDrain,
            Effect.interruptible,
            Effect.timeoutOption(drainTimeout)
          )
        }
        // what is left is cut: each request fiber is interrupted as its connection closes
        yield* connections.closeAll
      })
    )

    const address = server.address
    const boundPort = address._tag === "TcpAddress" ? address.port : port
    const urlHost = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host
    return { url: `http://${urlHost}:${boundPort}`, host, port: boundPort, keyRequired: Option.isSome(apiKey), load }
  })

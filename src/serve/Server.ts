/**
 * `llmspell serve`'s HTTP server: Ollama's API, OpenAI's API and (mounted by the caller) llmspell's
 * own protocol, on `@effect/platform`'s Node HTTP server, in front of the LocalLLM service.
 *
 * Every request passes, in order: the Host check (on a loopback bind, a Host that is not a
 * loopback name is refused: DNS rebinding, Ollama's CVE-2024-28224), CORS (off unless origins are
 * listed; a request from any other browser origin is refused), the API key (constant-time compare
 * of digests), then its route. Generations go through admission: as many run as `concurrency`,
 * up to `maxQueue` more wait, the next gets 503 with Retry-After. One access-log entry per request
 * (method, path, model, status, tokens, ms), written when its response has been sent; the key is
 * never logged. `start` returns when the server listens; closing its scope drains: new requests
 * get 503, requests in flight may finish within `drainTimeoutMs`, then the rest are interrupted.
 *
 * The seam for llmspell's own protocol: pass `rpc` (an HttpApp, e.g. from `RpcServer.toHttpApp`)
 * and it is mounted at `/rpc` behind the same Host/CORS/key checks.
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { createHash, timingSafeEqual } from "node:crypto"
import * as Http from "node:http"
import { ServeFailed, UsageError } from "../domain/Errors.js"
import type { ModelAlias } from "../domain/ModelAliases.js"
import { LocalLLM } from "../services/LocalLLM.js"
import { withAliases } from "./Aliases.js"
import * as AnthropicApi from "./AnthropicApi.js"
import { HttpFailure, json } from "./Http.js"
import * as OllamaApi from "./OllamaApi.js"
import * as OpenAiApi from "./OpenAiApi.js"
import { type Admission, CurrentRequest, type RequestNote, type RouteContext } from "./Routes.js"
import { DEFAULTS } from "./Defaults.js"

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
  /** Address to bind; default 127.0.0.1. Anything but loopback needs `apiKey`. */
  readonly host?: string
  /** Port; default 11435; 0 picks a free one. */
  readonly port?: number
  /** Every request must carry `Authorization: Bearer <key>`. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Browser origins allowed (CORS); none by default. `*` allows any. */
  readonly corsOrigins?: ReadonlyArray<string>
  /** Refuse pull and delete. */
  readonly readOnly?: boolean
  /** Serve specs that are file paths. */
  readonly allowPaths?: boolean
  /** Generations that may wait for a slot before the next gets 503 (default 64). */
  readonly maxQueue?: number
  /** Generations running at once (default 4: the GGUF runtime's `parallel`). */
  readonly concurrency?: number
  /** Largest request body (default 16 MiB). */
  readonly maxBodyBytes?: number
  /** How long requests in flight may take to finish when the server stops (default 10 s). */
  readonly drainTimeoutMs?: number
  /** Where access-log entries go (default: nowhere). */
  readonly log?: (entry: AccessLogEntry) => Effect.Effect<void>
  /** llmspell's own protocol, mounted at `/rpc` (see the module comment). */
  readonly rpc?: HttpApp.Default<unknown, HttpServerRequest.HttpServerRequest | Scope.Scope>
  /** llmspell's version, reported by `/api/version` beside the Ollama API level (`llmspell`). */
  readonly version?: string
  /** `[serve.aliases]`: model names clients send → specs, for every API. */
  readonly aliases?: ReadonlyArray<ModelAlias>
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
  /** Load, as it changes (tests wait on it instead of sleeping). */
  readonly load: SubscriptionRef.SubscriptionRef<ServerLoad>
}

/** Defaults of the options. */
export { DEFAULTS }

/** True for an address or Host name that is this machine's loopback. */
export const isLoopbackName = (name: string): boolean => {
  const host = name.toLowerCase().replace(/^\[(.*)\]$/, "$1")
  return host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host) ||
    host === "::ffff:127.0.0.1"
}

/** The host part of a Host header (`[::1]:11435` → `[::1]`, `localhost:80` → `localhost`). */
const hostOfHeader = (header: string): string => {
  const value = header.trim()
  if (value.startsWith("[")) return value.slice(0, value.indexOf("]") + 1)
  const colon = value.lastIndexOf(":")
  return colon >= 0 ? value.slice(0, colon) : value
}

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/** Constant-time check of a bearer token against the key (equal-length digests, so no length leak). */
export const bearerMatches = (header: string | undefined, key: Redacted.Redacted<string>): boolean => {
  const match = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? "")
  const given = match?.[1]?.trim() ?? ""
  return timingSafeEqual(digest(given), digest(Redacted.value(key))) && given.length > 0
}

/** Refuses a bind that would expose the server without a key. */
export const checkBind = (host: string, apiKey: Redacted.Redacted<string> | undefined): Effect.Effect<void, UsageError> =>
  isLoopbackName(host) || apiKey !== undefined
    ? Effect.void
    : Effect.fail(
      new UsageError({
        reason: `refusing to listen on ${host} without an API key: anyone who can reach it could run and delete models`,
        suggestion: `add --api-key <key> (clients then send "Authorization: Bearer <key>"), or bind loopback: llmspell serve --host 127.0.0.1`
      })
    )

/** Starts the server in the current scope; it stops (draining) when the scope closes. */
export const start = (options: ServeOptions = {}): Effect.Effect<RunningServer, UsageError | ServeFailed, LocalLLM | Scope.Scope> =>
  Effect.gen(function*() {
    const host = options.host ?? DEFAULTS.host
    const port = options.port ?? DEFAULTS.port
    const maxQueue = Math.max(0, options.maxQueue ?? DEFAULTS.maxQueue)
    const concurrency = Math.max(1, options.concurrency ?? DEFAULTS.concurrency)
    const maxBodyBytes = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes
    const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs
    const corsOrigins = options.corsOrigins ?? []
    const loopback = isLoopbackName(host)
    yield* checkBind(host, options.apiKey)

    const llm = withAliases(yield* LocalLLM, options.aliases ?? [])
    const load = yield* SubscriptionRef.make<ServerLoad>({ running: 0, queued: 0, inFlight: 0 })
    const change = (f: (l: ServerLoad) => ServerLoad) => SubscriptionRef.update(load, f)
    const slots = yield* Effect.makeSemaphore(concurrency)
    let draining = false
    const requests = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    let idle = yield* Deferred.make<void>()
    yield* Deferred.succeed(idle, undefined)

    const unavailable = (reason: string, retryAfter: number) =>
      new HttpFailure(503, reason, "server_error", { "retry-after": String(retryAfter) })

    const admission: Admission = {
      // uninterruptible but for the wait itself: a request interrupted anywhere else still leaves the counts right
      enter: Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          if (draining) return yield* unavailable("the server is shutting down", 5)
          // decided and counted in one step, so two requests cannot both take the last place in the queue
          const full = yield* SubscriptionRef.modify(load, (l): [ServerLoad | undefined, ServerLoad] =>
            l.running >= concurrency && l.queued >= maxQueue ? [l, l] : [undefined, { ...l, queued: l.queued + 1 }]
          )
          if (full !== undefined) {
            return yield* unavailable(
              `the server is busy: ${full.running} generations running and ${full.queued} waiting (--max-queue ${maxQueue})`,
              1
            )
          }
          yield* Effect.acquireRelease(
            restore(slots.take(1)).pipe(
              Effect.ensuring(change((l) => ({ ...l, queued: l.queued - 1 }))),
              Effect.zipRight(change((l) => ({ ...l, running: l.running + 1 })))
            ),
            () => slots.release(1).pipe(Effect.zipRight(change((l) => ({ ...l, running: l.running - 1 }))))
          )
        })
      )
    }

    const ctx: RouteContext = {
      llm,
      readOnly: options.readOnly ?? false,
      allowPaths: options.allowPaths ?? false,
      admission,
      maxBodyBytes,
      version: options.version ?? "0.0.0",
      aliases: options.aliases ?? []
    }

    let router = HttpRouter.concat(HttpRouter.concat(OllamaApi.routes(ctx), OpenAiApi.routes(ctx)), AnthropicApi.routes(ctx))
    if (options.rpc !== undefined) router = HttpRouter.mountApp(router, "/rpc", options.rpc as HttpApp.Default<never, never>) as typeof router
    const app = router.pipe(
      Effect.catchTag("RouteNotFound", (e) =>
        Effect.succeed(json({ error: `no route for ${e.request.method} ${new URL(e.request.url, "http://x").pathname}` }, 404)))
    )

    const corsHeaders = (origin: string): Record<string, string> => ({
      "access-control-allow-origin": corsOrigins.includes("*") ? "*" : origin,
      vary: "Origin"
    })
    const originAllowed = (origin: string) => corsOrigins.includes("*") || corsOrigins.includes(origin)

    /** The checks that come before any route, and the access log after the response. */
    const guard = (inner: HttpApp.Default<unknown, never>): HttpApp.Default<unknown, HttpServerRequest.HttpServerRequest> =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const origin = request.headers["origin"]
        if (loopback) {
          const hostHeader = request.headers["host"]
          if (hostHeader === undefined || !isLoopbackName(hostOfHeader(hostHeader))) {
            return json({ error: `refused: Host ${JSON.stringify(hostHeader ?? "")} is not a loopback name (this server only answers localhost)` }, 403)
          }
        }
        if (origin !== undefined && !originAllowed(origin)) {
          return json({ error: `refused: origin ${origin} is not allowed (start the server with --cors-origin ${origin} to allow it)` }, 403)
        }
        if (request.method === "OPTIONS" && origin !== undefined) {
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
        // Anthropic's clients send the key as x-api-key
        const xApiKey = request.headers["x-api-key"]
        if (
          options.apiKey !== undefined && !bearerMatches(request.headers["authorization"], options.apiKey) &&
          !(typeof xApiKey === "string" && bearerMatches(`Bearer ${xApiKey}`, options.apiKey))
        ) {
          const response = AnthropicApi.isAnthropicPath(new URL(request.url, "http://x").pathname)
            ? AnthropicApi.unauthorized()
            : json({ error: "unauthorized: send Authorization: Bearer <the server's --api-key>" }, 401, { "www-authenticate": "Bearer" })
          return origin !== undefined ? HttpServerResponse.setHeaders(response, corsHeaders(origin)) : response
        }
        const response = yield* inner
        return origin !== undefined ? HttpServerResponse.setHeaders(response, corsHeaders(origin)) : response
      })

    /** Counts the request in flight for the drain, and logs it once its response is sent. */
    const track = (handled: HttpApp.Default<unknown, HttpServerRequest.HttpServerRequest>) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const note: RequestNote = { model: undefined, tokens: undefined }
        const began = Date.now()
        const fiber = yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((f) => Effect.succeed(f))
        if (requests.size === 0) idle = yield* Deferred.make<void>()
        requests.add(fiber)
        yield* change((l) => ({ ...l, inFlight: l.inFlight + 1 }))
        let status = 500
        return yield* Effect.provideService(handled, CurrentRequest, note).pipe(
          Effect.tap((response) => void (status = response.status)),
          Effect.onExit((exit) =>
            Effect.gen(function*() {
              requests.delete(fiber)
              yield* change((l) => ({ ...l, inFlight: l.inFlight - 1 }))
              if (requests.size === 0) yield* Deferred.succeed(idle, undefined)
              if (exit._tag === "Failure") status = 499
              if (options.log === undefined) return
              const path = new URL(request.url, "http://x").pathname
              yield* options.log({
                time: new Date(began).toISOString(),
                method: request.method,
                path,
                ...(note.model !== undefined ? { model: note.model } : {}),
                status,
                ...(note.tokens !== undefined ? { tokens: note.tokens } : {}),
                ms: Date.now() - began
              })
            })
          )
        )
      })

    // While draining, a new request is refused before it reaches a route.
    const refuseWhileDraining = (handled: HttpApp.Default<unknown, HttpServerRequest.HttpServerRequest>) =>
      Effect.suspend(() =>
        draining ? Effect.succeed(json({ error: "the server is shutting down" }, 503, { "retry-after": "5", connection: "close" })) : handled
      )

    let nodeServer: Http.Server | undefined
    const server = yield* NodeHttpServer.make(() => {
      nodeServer = Http.createServer()
      // slow-loris bounds: headers must arrive within 30 s; bodies are bounded by maxBodyBytes
      nodeServer.headersTimeout = 30_000
      nodeServer.requestTimeout = 0
      return nodeServer
    }, { host, port }).pipe(
      Effect.mapError((e) =>
        new ServeFailed({ address: `${host}:${port}`, reason: e.cause instanceof Error ? e.cause.message : String(e.cause) })
      )
    )

    // The drain runs before the listener closes (finalizers run in reverse): refuse new requests,
    // let those in flight finish within the bound, then interrupt what is left.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        draining = true
        nodeServer?.closeIdleConnections()
        const finished = yield* Deferred.await(idle).pipe(Effect.timeout(Duration.millis(drainTimeoutMs)), Effect.option)
        // what is left is interrupted, its sockets closed; not awaited: a response stuck writing to a
        // dead socket must not hold the shutdown
        if (Option.isNone(finished)) yield* Effect.forEach([...requests], Fiber.interruptFork, { discard: true })
        nodeServer?.closeAllConnections()
      })
    )

    yield* HttpServer.serveEffect(
      (guard(app as unknown as HttpApp.Default<unknown, never>)),
      ((handled: HttpApp.Default<unknown, HttpServerRequest.HttpServerRequest>) => track(refuseWhileDraining(handled))) as never
    ).pipe(Effect.provideService(HttpServer.HttpServer, server)) as Effect.Effect<void, never, Scope.Scope>

    const address = server.address
    const boundPort = address._tag === "TcpAddress" ? address.port : port
    const urlHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host
    return { url: `http://${urlHost}:${boundPort}`, host, port: boundPort, load }
  })

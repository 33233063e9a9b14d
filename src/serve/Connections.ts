/**
 * What happens below the requests of `llmspell serve`: the Node HTTP server, its sockets and how
 * a response reaches one. Three Node facts shape it (Node 20, verified with raw sockets):
 *
 * - `res.end(body, callback)` never calls back once the socket is gone, and
 *   `@effect/platform-node` writes every non-stream body that way, inside the uninterruptible part
 *   of a request fiber. A client that disconnects (or sends junk that makes Node destroy the
 *   socket) between the response being made and being flushed left that fiber waiting forever —
 *   and a drain waiting for it. So `send` writes such responses itself and waits for `finish` *or*
 *   `close`; the platform then finds the response ended and writes nothing.
 * - A parse error on a keep-alive connection (pipelined junk, a body without Content-Length read
 *   as the next request) makes Node's default `clientError` handler write a 400 over the answer to
 *   the request before it and destroy the socket. Here a request received whole is answered
 *   first, then the 400 is sent and the connection closed; a request cut inside its body (the
 *   client went away mid-upload) is aborted at once.
 * - `server.close()` waits for every connection; a connection mid-request holds it for good. The
 *   drain (Server.ts) closes idle connections at once and every other one at its deadline.
 *
 * May touch: the Node server and its sockets; nothing else.
 */
import * as Cookies from "@effect/platform/Cookies"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Effect from "effect/Effect"
import * as Http from "node:http"
import type * as Net from "node:net"

/** The Node server and the connection-level operations the drain needs. */
export interface Connections {
  readonly server: Http.Server
  /** Closes the connections that have no request in progress (idle keep-alive ones). */
  readonly closeIdle: Effect.Effect<void>
  /** Stops listening and destroys every connection, whatever it is doing. */
  readonly closeAll: Effect.Effect<void>
}

/** How long a client may take to send its headers (slow-loris), and its whole request. */
const HEADERS_TIMEOUT_MS = 30_000
const REQUEST_TIMEOUT_MS = 300_000

const STATUS_OF_PARSE_ERROR: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408
}

/**
 * A new Node HTTP server (not listening yet). A request must send its headers within 30 s and
 * all of itself within 5 min (Node's own default for the latter); the time its answer takes is
 * not bounded here.
 */
export const make = (): Connections => {
  const server = Http.createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS })
  // The request a connection is answering, so a parse error after it waits for its answer.
  const answering = new WeakMap<Net.Socket, { readonly request: Http.IncomingMessage; readonly response: Http.ServerResponse }>()
  server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => answering.set(request.socket, { request, response }))
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Net.Socket) => {
    const refuse = () => {
      if (!socket.writable) return void socket.destroy()
      const status = STATUS_OF_PARSE_ERROR[error.code ?? ""] ?? 400
      socket.end(`HTTP/1.1 ${status} ${Http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy())
    }
    if (error.code === "ECONNRESET") return void socket.destroy()
    const current = answering.get(socket)
    // a request cut inside its own body is the broken one: destroying the socket aborts it
    if (current !== undefined && !current.request.complete) return void socket.destroy()
    const pending = current?.response
    if (pending === undefined || pending.writableFinished || pending.destroyed) return refuse()
    const onFinish = () => {
      pending.off("close", onClose)
      refuse()
    }
    const onClose = () => {
      pending.off("finish", onFinish)
      socket.destroy()
    }
    pending.once("finish", onFinish)
    pending.once("close", onClose)
  })
  return {
    server,
    closeIdle: Effect.sync(() => server.closeIdleConnections()),
    closeAll: Effect.sync(() => {
      // close() first: no connection is accepted after the sweep
      if (server.listening) server.close()
      server.closeAllConnections()
    })
  }
}

/**
 * Writes a response whose body is not a stream (and any answer to HEAD) on the Node response, then
 * waits until it is flushed or the connection is gone — never longer. Streams are left to the
 * platform: it writes them interruptibly. Returns the response unchanged.
 */
export const send = (
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.suspend(() => {
    const head = request.method === "HEAD"
    const body = response.body
    const bytes = body._tag === "Uint8Array"
      ? body.body
      : body._tag === "Raw" && (typeof body.body === "string" || body.body instanceof Uint8Array)
      ? body.body
      : body._tag === "Empty"
      ? undefined
      : null
    if ((bytes === null && !head) || !Cookies.isEmpty(response.cookies)) return Effect.succeed(response)
    const node = NodeHttpServerRequest.toServerResponse(request)
    if (node.writableEnded || node.destroyed) return Effect.succeed(response)
    node.writeHead(response.status, response.headers)
    if (head || bytes === null || bytes === undefined) node.end()
    else node.end(bytes)
    return Effect.as(flushedOrGone(node), response)
  })

const flushedOrGone = (node: Http.ServerResponse): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (node.writableFinished || node.destroyed) return resume(Effect.void)
    const done = () => {
      node.off("finish", done)
      node.off("close", done)
      resume(Effect.void)
    }
    node.on("finish", done)
    node.on("close", done)
    return Effect.sync(() => {
      node.off("finish", done)
      node.off("close", done)
    })
  })

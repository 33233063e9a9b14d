/**
 * What every route of `llmspell serve` shares: reading a JSON body under the size limit, decoding
 * it with a Schema (a 400 carrying the decode error), the HTTP status of each llmspell error, and
 * the two streaming framings (NDJSON for Ollama's API, server-sent events for OpenAI's). A stream
 * that fails after its headers went out cannot change its status: the error travels in-band, in
 * the framing's own error shape, and the stream ends.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { isLlmspellError, type LlmspellError } from "../domain/Errors.js"

/** A request the server answers with an error status before anything ran. */
export class HttpFailure extends Data.Error<{
  readonly status: number
  readonly message: string
  /** OpenAI's error `type` (`invalid_request_error`, …). */
  readonly type: string
  readonly headers: Record<string, string>
}> {
  constructor(status: number, message: string, type?: string, headers: Record<string, string> = {}) {
    super({ status, message, type: type ?? (status >= 500 ? "server_error" : "invalid_request_error"), headers })
  }
}

/** The HTTP status that fits an llmspell error (Ollama's and OpenAI's conventions agree on these). */
export const statusFor = (error: LlmspellError): number => {
  switch (error._tag) {
    case "ModelNotFound":
      return 404
    case "InvalidModelSpec":
    case "UsageError":
    case "InvalidRequest":
    case "UnsupportedSchema":
    case "UnsupportedOperation":
    case "ContextOverflow":
    case "ToolChoiceViolated":
    case "SchemaViolation":
      return 400
    case "ProviderNotAvailable":
      return 400
    case "ModelBusy":
      return 409
    case "RateLimited":
      return 429
    case "BackendUnavailable":
    case "DeviceUnavailable":
      return 503
    case "InvalidModelFile":
      return 422
    case "MissingCredentials":
      // the server's key for a cloud provider is missing or refused upstream: the client's request
      // was fine, the gateway's own credentials were not (a 500 would say the server broke)
      return 502
    default:
      return 500
  }
}

/**
 * An llmspell error (or anything else) as an HttpFailure; an unknown defect becomes a 500 without
 * its details. The message only: an error's hint names llmspell commands and CLI options, which
 * mean nothing to an HTTP client (ApiTerms says what to change in each API's own fields).
 */
export const toHttpFailure = (error: unknown): HttpFailure => {
  if (error instanceof HttpFailure) return error
  if (isLlmspellError(error)) return new HttpFailure(statusFor(error), error.message)
  return new HttpFailure(500, "internal error")
}

/** The server's limits that body reading needs. */
export interface BodyLimits {
  readonly maxBodyBytes: number
}

const tooLarge = (limit: number) => new HttpFailure(413, `request body larger than ${limit} bytes`, "invalid_request_error", { connection: "close" })

/**
 * The request body as JSON. A declared `Content-Length` over the limit is refused before a byte is
 * read; a chunked body is counted as it arrives and refused as soon as it passes the limit (the
 * rest is left to Node, which discards it, and the connection closes after the 413: the socket
 * is not destroyed under the response).
 */
export const readJson = (limits: BodyLimits): Effect.Effect<unknown, HttpFailure, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"] ?? "NaN")
    if (Number.isFinite(declared) && declared > limits.maxBodyBytes) return yield* tooLarge(limits.maxBodyBytes)
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    const text = yield* Effect.async<string, HttpFailure>((resume) => {
      const chunks: Array<Buffer> = []
      let size = 0
      const cleanup = () => {
        source.off("data", onData)
        source.off("end", onEnd)
        source.off("error", onError)
        source.off("close", onClose)
      }
      const onData = (chunk: Buffer) => {
        size += chunk.length
        if (size > limits.maxBodyBytes) {
          cleanup()
          resume(Effect.fail(tooLarge(limits.maxBodyBytes)))
        } else chunks.push(chunk)
      }
      const onEnd = () => {
        cleanup()
        resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
      }
      const onError = (e: Error) => {
        cleanup()
        resume(Effect.fail(new HttpFailure(400, `could not read the request body: ${e.message}`)))
      }
      const onClose = () => {
        cleanup()
        if (!source.complete) resume(Effect.fail(new HttpFailure(400, "the client closed the connection before sending the whole body")))
      }
      if (source.readableEnded) return resume(Effect.succeed(""))
      source.on("data", onData)
      source.on("end", onEnd)
      source.on("error", onError)
      source.on("close", onClose)
      return Effect.sync(cleanup)
    })
    if (text.trim() === "") return yield* new HttpFailure(400, "the request body is empty; send a JSON object")
    return yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new HttpFailure(400, `the request body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`)
    })
  })

/** A path in a body as a reader writes it: `messages[0].role`. */
const pathText = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((text, key) => typeof key === "number" ? `${text}[${key}]` : text === "" ? String(key) : `${text}.${String(key)}`, "")

/** "Expected <type>, actual <value>" with a type of a whole struct (hundreds of characters) named by its kind, and a long value cut. */
const shorten = (message: string): string => {
  const m = /^Expected ([\s\S]*), actual ([\s\S]*)$/.exec(message)
  if (m === null) return message.length > 200 ? `${message.slice(0, 200)}…` : message
  const [, expected, actual] = m as unknown as [string, string, string]
  const kind = expected.length <= 80
    ? expected
    : expected.startsWith("{")
    ? "an object"
    : /^(Readonly)?Array</.test(expected)
    ? "an array"
    : `${expected.slice(0, 80)}…`
  return `Expected ${kind}, actual ${actual.length > 80 ? `${actual.slice(0, 80)}…` : actual}`
}

/**
 * A decode error as a few lines a client can act on: each wrong field's path and what was wrong, at
 * most 5. A union's members are merged into one "Expected a | b" and the "Expected undefined"
 * and "Expected null" branches of optional and nullable fields are dropped. (Effect's tree formatter would print the whole
 * request type, thousands of characters.)
 */
const describeParseError = (error: ParseResult.ParseError): string => {
  try {
    const all = ParseResult.ArrayFormatter.formatErrorSync(error)
    const useful = all.filter((issue) => !/^Expected (undefined|null),/.test(issue.message))
    const byPath = new Map<string, { expected: Array<string>; actual: string | undefined; other: Array<string> }>()
    for (const issue of useful.length > 0 ? useful : all) {
      const key = pathText(issue.path)
      const entry = byPath.get(key) ?? { expected: [], actual: undefined, other: [] }
      const m = /^Expected ([\s\S]*), actual ([\s\S]*)$/.exec(issue.message)
      if (m !== null && (entry.actual === undefined || entry.actual === m[2])) {
        entry.expected.push(m[1]!)
        entry.actual = m[2]
      } else {
        entry.other.push(issue.message)
      }
      byPath.set(key, entry)
    }
    const lines = [...byPath].map(([path, entry]) => {
      const message = entry.expected.length > 0
        ? shorten(`Expected ${[...new Set(entry.expected)].join(" | ")}, actual ${entry.actual}`)
        : shorten(entry.other[0]!)
      return path === "" ? message : `${path}: ${message}`
    })
    return lines.length <= 5 ? lines.join("; ") : `${lines.slice(0, 5).join("; ")}; and ${lines.length - 5} more`
  } catch {
    // The formatter recurses into the value it quotes: a deeply nested body overflows the stack there.
    return "the body does not have the expected shape (too deeply nested to describe)"
  }
}

/** Decodes a body with a Schema; a mismatch is a 400 whose message is the decode error. */
export const decodeBody = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })
  return (body: unknown): Effect.Effect<A, HttpFailure> => {
    const result = decode(body)
    return result._tag === "Right"
      ? Effect.succeed(result.right)
      : Effect.fail(new HttpFailure(400, `invalid request: ${describeParseError(result.left)}`))
  }
}

/** A JSON response. */
export const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

/** True for a path of OpenAI's API (`/v1/…`), or llama-server's `/rerank` (which answers errors in OpenAI's shape). */
const isOpenAiPath = (path: string) => path === "/v1" || path.startsWith("/v1/") || path === "/rerank"

/**
 * An answer the server gives before any route (a refusal, no such route, shutting down), in the
 * shape of the API the path belongs to: OpenAI's `{"error":{"message","type","param","code"}}`
 * under `/v1`, else Ollama's `{"error":"…"}` (which llmspell's own `/rpc` clients read too).
 */
export const errorResponse = (path: string, failure: HttpFailure, code: string | null = null) =>
  json(
    isOpenAiPath(path) ? { error: { message: failure.message, type: failure.type, param: null, code } } : { error: failure.message },
    failure.status,
    failure.headers
  )

const encoder = new TextEncoder()

/**
 * NDJSON: one JSON object a line. A failure after the first line is sent as `{"error": …}` (what
 * Ollama does in a 200 stream), then the stream ends.
 */
export const ndjson = <E>(records: Stream.Stream<unknown, E>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(
    records.pipe(
      Stream.map((r) => encoder.encode(`${JSON.stringify(r)}\n`)),
      Stream.catchAll((e) => Stream.succeed(encoder.encode(`${JSON.stringify({ error: toHttpFailure(e).message })}\n`)))
    ),
    { contentType: "application/x-ndjson" }
  )

/**
 * Server-sent events as OpenAI streams them: `data: <json>` events, a failure as an
 * `{"error":{…}}` event, and `data: [DONE]` at the end of a successful stream.
 */
export const sse = <E>(events: Stream.Stream<unknown, E>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(
    events.pipe(
      Stream.map((e) => encoder.encode(`data: ${JSON.stringify(e)}\n\n`)),
      Stream.concat(Stream.succeed(encoder.encode("data: [DONE]\n\n"))),
      Stream.catchAll((e) => {
        const failure = toHttpFailure(e)
        return Stream.succeed(
          encoder.encode(`data: ${JSON.stringify({ error: { message: failure.message, type: failure.type, code: null } })}\n\n`)
        )
      })
    ),
    { contentType: "text/event-stream", headers: { "cache-control": "no-cache" } }
  )

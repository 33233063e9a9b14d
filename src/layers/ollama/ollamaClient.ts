/**
 * The one place where the `ollama` npm client is called. Every promise, abort and client error
 * becomes a typed llmspell error here, each call runs in a span named after its operation, and
 * nothing the client prints reaches stdout. Only `layers/OllamaBackendLive.ts` uses this module.
 *
 * Why a custom `fetch`: the client takes no per-call signal for non-streaming calls and has no
 * timeout, so the fetch we give it adds the calling fiber's signal (found through an
 * AsyncLocalStorage set around each call) and a timeout on the response headers. It also turns a
 * non-JSON error body into a JSON one before the client sees it: the client would otherwise
 * `console.log("Getting text from response")` to stdout (ollama-js 0.6.4 `checkOk`). And it checks
 * each line of a streamed (NDJSON) body before the client parses it: the client prints a line that
 * is not JSON to stderr raw (escape sequences and all) and skips it; we fail the stream with a
 * typed error instead, and refuse a "line" that grows past MAX_LINE_BYTES without a newline.
 *
 * Credentials written in base_url (`http://user:pw@host`) arrive here as `instance.authorization`
 * and are sent as the `Authorization` header of every request; the URL itself never has them.
 */
import { AsyncLocalStorage } from "node:async_hooks"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type { AbortableAsyncIterator, Ollama } from "ollama"
import type { OllamaInstanceConfig } from "../../domain/ConfigSchema.js"
import type { OllamaModelError } from "../../services/OllamaBackend.js"
import { BackendError, BackendUnavailable, ModelNotFound } from "../../domain/Errors.js"

/** What a call can fail with: the server is down (BackendUnavailable) or failed it (BackendError). */
export type OllamaCallError = BackendUnavailable | BackendError
/** What a call about one model can fail with: also ModelNotFound, when the server does not have it. */
export type OllamaModelCallError = OllamaModelError

/** What one call tells the fetch wrapper, and what the wrapper saw. */
interface CallContext {
  readonly signal: AbortSignal
  readonly timeoutMs: number
  /** Set when the response headers did not arrive in time. */
  timedOut: boolean
  /** Set when the server answered an error with a body that is not JSON. */
  nonJson?: { readonly status: number; readonly text: string }
}

const calls = new AsyncLocalStorage<CallContext>()

/** Options of one call. */
export interface CallOptions {
  /** Overrides the instance's timeout (e.g. a shorter one for status probes). */
  readonly timeoutMs?: number
}

/** Options of a call about one model: a 404 then means ModelNotFound for it. */
export interface ModelCallOptions extends CallOptions {
  readonly model: string
}

/** The wrapped client of one Ollama instance. */
export interface OllamaClient {
  readonly instance: OllamaInstanceConfig
  /** A non-streaming call about no model in particular: interruption and the timeout abort its HTTP request. */
  readonly call: <A>(
    operation: string,
    run: (client: Ollama) => Promise<A>,
    options?: CallOptions
  ) => Effect.Effect<A, OllamaCallError>
  /** A non-streaming call about one model, as `call`. */
  readonly callModel: <A>(
    operation: string,
    run: (client: Ollama) => Promise<A>,
    options: ModelCallOptions
  ) => Effect.Effect<A, OllamaModelCallError>
  /**
   * A streaming call. Records are pulled with `next()` one at a time (NOTES: never
   * `Stream.fromAsyncIterable`, whose release waits behind a pending `next()`); the finalizer
   * aborts the request, so interrupting a stalled stream closes its connection at once. Each
   * record must arrive within the timeout.
   */
  readonly stream: <A extends object>(
    operation: string,
    open: (client: Ollama) => Promise<AbortableAsyncIterator<A>>,
    options: ModelCallOptions
  ) => Stream.Stream<A, OllamaModelCallError>
}

/** Creates the client of one instance; `ollama` is imported here, on first use, to keep the CLI's start fast. */
export const make = (instance: OllamaInstanceConfig): Effect.Effect<OllamaClient, BackendUnavailable> =>
  Effect.gen(function*() {
    const { Ollama } = yield* Effect.tryPromise({
      try: () => import("ollama"),
      catch: (cause) =>
        new BackendUnavailable({
          backend: "ollama",
          instance: instance.name,
          url: instance.baseUrl,
          reason: "the ollama npm package could not be loaded",
          suggestion: "reinstall llmspell (`npm install llmspell`)",
          cause
        })
    })
    const timeoutMs = Math.round(instance.timeoutSeconds * 1000)
    const client = new Ollama({
      host: instance.baseUrl,
      fetch: guardedFetch,
      ...(instance.authorization !== undefined
        ? { headers: { Authorization: Redacted.value(instance.authorization) } }
        : {})
    })

    const errorContext = (operation: string, options: CallOptions | undefined, context: CallContext | undefined): ErrorContext => ({
      instance,
      operation,
      timeoutMs: context?.timeoutMs ?? options?.timeoutMs ?? timeoutMs,
      timedOut: context?.timedOut ?? false,
      nonJson: context?.nonJson
    })
    const callError = (operation: string, options: CallOptions | undefined, context: CallContext | undefined) =>
    (error: unknown): OllamaCallError => toCallError(error, errorContext(operation, options, context))
    const modelCallError = (operation: string, options: ModelCallOptions, context: CallContext | undefined) =>
    (error: unknown): OllamaModelCallError =>
      toLlmspellError(error, { ...errorContext(operation, options, context), model: options.model })

    const timeoutError = (operation: string, ms: number) =>
      new BackendError({
        backend: "ollama",
        instance: instance.name,
        operation,
        reason: `no answer from ${instance.baseUrl} within ${formatSeconds(ms)} (timeout_seconds)`,
        suggestion: "the server is busy or stuck; raise timeout_seconds for this instance in the config if it is just slow"
      })

    // Runs `run` with a CallContext the fetch wrapper can see; interruption aborts `signal`.
    const withContext = <A, E>(
      operation: string,
      run: (client: Ollama) => Promise<A>,
      options: CallOptions | undefined,
      toError: (context: CallContext | undefined) => (error: unknown) => E
    ) => {
      const ms = options?.timeoutMs ?? timeoutMs
      let context: CallContext | undefined
      return Effect.tryPromise({
        try: (signal) => {
          context = { signal, timeoutMs: ms, timedOut: false }
          return calls.run(context, () => run(client))
        },
        catch: (error) => toError(context)(error)
      }).pipe(
        Effect.timeoutFail({ duration: Duration.millis(ms), onTimeout: () => timeoutError(operation, ms) })
      )
    }

    const call: OllamaClient["call"] = (operation, run, options) =>
      withContext(operation, run, options, (context) => callError(operation, options, context)).pipe(
        Effect.withSpan(`OllamaBackend.${operation}`, { attributes: { instance: instance.name, url: instance.baseUrl } })
      )

    const callModel: OllamaClient["callModel"] = (operation, run, options) =>
      withContext(operation, run, options, (context) => modelCallError(operation, options, context)).pipe(
        Effect.withSpan(`OllamaBackend.${operation}`, {
          attributes: { instance: instance.name, url: instance.baseUrl, model: options.model }
        })
      )

    const stream: OllamaClient["stream"] = <A extends object>(
      operation: string,
      open: (client: Ollama) => Promise<AbortableAsyncIterator<A>>,
      options: ModelCallOptions
    ) =>
      Stream.unwrapScoped(
        Effect.gen(function*() {
          const ms = options?.timeoutMs ?? timeoutMs
          // The acquire waits for the response headers, which a hung server may never send: it
          // must stay interruptible (acquireRelease makes its acquire uninterruptible, so Ctrl-C
          // waited for timeout_seconds). Interruption aborts the fetch through the call's signal;
          // once the iterator exists, its release is registered without a gap.
          const iterable = yield* Effect.uninterruptibleMask((restore) =>
            Effect.acquireRelease(
              restore(withContext(operation, open, options, (context) => modelCallError(operation, options, context))),
              (it) => Effect.sync(() => it.abort())
            )
          )
          const iterator = iterable[Symbol.asyncIterator]()
          const next = Effect.tryPromise({
            try: () => iterator.next(),
            catch: modelCallError(operation, options, undefined)
          }).pipe(
            Effect.timeoutFail({ duration: Duration.millis(ms), onTimeout: () => timeoutError(operation, ms) }),
            Effect.mapError(Option.some),
            Effect.flatMap((r) => (r.done === true ? Effect.fail(Option.none()) : Effect.succeed(r.value)))
          )
          return Stream.repeatEffectOption(next)
        }).pipe(
          Effect.withSpan(`OllamaBackend.${operation}`, {
            attributes: { instance: instance.name, url: instance.baseUrl, model: options.model }
          })
        )
      )

    return { instance, call, callModel, stream }
  })

const formatSeconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`

/** The fetch handed to the client: the call's signal, a headers timeout, and non-JSON error bodies made JSON. */
const guardedFetch: typeof fetch = async (input, init) => {
  const context = calls.getStore()
  const timeout = new AbortController()
  const timer = context !== undefined
    ? setTimeout(() => {
      context.timedOut = true
      timeout.abort()
    }, context.timeoutMs)
    : undefined
  const signals = [init?.signal, context?.signal, timeout.signal].filter((s): s is AbortSignal => s != null)
  try {
    const response = await fetch(input, { ...init, signal: AbortSignal.any(signals) })
    const contentType = response.headers.get("content-type") ?? ""
    if (response.ok && contentType.includes("ndjson") && response.body !== null) {
      return new Response(response.body.pipeThrough(checkedLines()), {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers
      })
    }
    if (response.ok || contentType.includes("application/json")) return response
    const text = await response.text().catch(() => "")
    if (context !== undefined) context.nonJson = { status: response.status, text }
    return new Response(JSON.stringify({ error: text.trim() || `HTTP ${response.status}` }), {
      status: response.status,
      statusText: response.statusText,
      headers: { "content-type": "application/json" }
    })
  } finally {
    clearTimeout(timer)
  }
}

/** A streamed line longer than this (no newline yet) ends the stream: a record is a few hundred bytes. */
export const MAX_LINE_BYTES = 1024 * 1024

/** A streamed reply line that is not a JSON object, or too long to be one. */
export class MalformedLine extends Error {
  constructor(readonly line: string, readonly tooLong: boolean = false) {
    super(tooLong ? "the server sent a line over 1 MiB" : "the server sent a line that is not a JSON object")
    this.name = "MalformedLine"
  }
}

/** Passes an NDJSON body through unchanged, failing it at the first line that is not a JSON object. */
const checkedLines = (): TransformStream<Uint8Array, Uint8Array> => {
  const decoder = new TextDecoder("utf-8")
  const encoder = new TextEncoder()
  let buffer = ""
  const check = (line: string, controller: TransformStreamDefaultController<Uint8Array>) => {
    if (line.trim().length === 0) return
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      value = undefined
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new MalformedLine(line)
    }
    controller.enqueue(encoder.encode(`${line}\n`))
  }
  return new TransformStream({
    transform: (chunk, controller) => {
      buffer += decoder.decode(chunk, { stream: true })
      const lines = buffer.split("\n")
      buffer = lines.pop() ?? ""
      for (const line of lines) check(line, controller)
      if (buffer.length > MAX_LINE_BYTES) throw new MalformedLine(buffer.slice(0, 200), true)
    },
    flush: (controller) => {
      buffer += decoder.decode()
      check(buffer, controller)
    }
  })
}

/** A short, printable excerpt of what a server sent: control characters escaped, at most 120 characters. */
export const excerpt = (text: string): string => {
  const cut = text.length > 120 ? `${text.slice(0, 120)}…` : text
  return JSON.stringify(cut)
}

/** What an error is judged by. */
export interface ErrorContext {
  readonly instance: OllamaInstanceConfig
  readonly operation: string
  readonly timeoutMs: number
  readonly timedOut: boolean
  readonly nonJson?: { readonly status: number; readonly text: string } | undefined
}

const CONNECT_FAILURES: Record<string, string> = {
  ECONNREFUSED: "connection refused (is the server running?)",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out"
}

/** The spec that pulls `model` onto this instance. */
export const pullSpecFor = (instance: OllamaInstanceConfig, model: string) =>
  instance.name === "ollama" ? `${model}@ollama` : `${instance.name}/${model}`

/** Turns whatever the client threw during a call about `model` into a typed error saying what happened. */
export const toLlmspellError = (error: unknown, ctx: ErrorContext & { readonly model: string }): OllamaModelCallError =>
  modelNotFound(error, ctx) ?? toCallError(error, ctx)

/** The server does not have the model: a 404 (JSON) for it, or a pull whose manifest does not exist. */
const modelNotFound = (error: unknown, ctx: ErrorContext & { readonly model: string }): ModelNotFound | undefined => {
  const { instance, model, operation } = ctx
  const e = error as { name?: unknown; message?: unknown; status_code?: unknown }
  if (e?.name === "ResponseError" && e.status_code === 404 && ctx.nonJson === undefined) {
    return new ModelNotFound({
      model,
      backend: "ollama",
      instance: instance.name,
      // a pull that found nothing must not hint the same pull
      ...(operation === "pull" ? { operation } : { pullSpec: pullSpecFor(instance, model) })
    })
  }
  // A pull of a name the registry does not have fails inside the 200 stream, not with a 404.
  const message = typeof e?.message === "string" ? e.message : ""
  if (operation === "pull" && /^pull model manifest: (file does not exist|.*not found)/.test(message)) {
    return new ModelNotFound({ model, backend: "ollama", instance: instance.name, detail: message, operation: "pull" })
  }
  return undefined
}

/** Turns whatever the client threw into a typed error saying what happened (the server is down, or failed). */
export const toCallError = (error: unknown, ctx: ErrorContext): OllamaCallError => {
  const { instance, operation } = ctx
  const backendError = (reason: string, suggestion?: string) =>
    new BackendError({
      backend: "ollama",
      instance: instance.name,
      operation,
      reason,
      ...(suggestion !== undefined ? { suggestion } : {}),
      cause: error
    })
  const e = error as { name?: unknown; message?: unknown; status_code?: unknown; cause?: { code?: unknown } }
  const name = typeof e?.name === "string" ? e.name : ""
  const message = typeof e?.message === "string" ? e.message : String(error)
  const causeCode = typeof e?.cause?.code === "string" ? e.cause.code : undefined

  if (name === "ResponseError" && typeof e.status_code === "number") {
    const status = e.status_code
    if (ctx.nonJson !== undefined) {
      const body = ctx.nonJson.text.trim().slice(0, 200)
      return backendError(
        `the server answered HTTP ${status} with a non-JSON body${body ? `: ${JSON.stringify(body)}` : ""}`,
        status === 404
          ? `${instance.baseUrl} does not look like an Ollama server, or it is too old for this request`
          : "check the server's log"
      )
    }
    return backendError(`HTTP ${status}: ${message}`)
  }
  if (error instanceof MalformedLine) {
    return backendError(
      error.tooLong
        ? `the server sent a reply line over 1 MiB without a newline (${excerpt(error.line)}…); this is not an Ollama server's output`
        : `the server sent a line that is not a JSON record: ${excerpt(error.line)}`,
      `check that ${instance.baseUrl} is an Ollama server (and any proxy in front of it passes its replies through)`
    )
  }
  if (error instanceof SyntaxError) {
    return backendError(
      `the server's reply is not JSON (${message})`,
      `check that ${instance.baseUrl} is an Ollama server (and any proxy in front of it passes its replies through)`
    )
  }
  if (name === "AbortError" || name === "TimeoutError") {
    return ctx.timedOut
      ? backendError(
        `no answer from ${instance.baseUrl} within ${formatSeconds(ctx.timeoutMs)} (timeout_seconds)`,
        "the server is busy or stuck; raise timeout_seconds for this instance in the config if it is just slow"
      )
      : backendError("the request was aborted")
  }
  if (error instanceof TypeError && message === "fetch failed") {
    const connect = causeCode !== undefined ? CONNECT_FAILURES[causeCode] : undefined
    if (connect !== undefined) {
      return new BackendUnavailable({ backend: "ollama", instance: instance.name, url: instance.baseUrl, reason: connect })
    }
    if (causeCode === "UND_ERR_SOCKET" || causeCode === "ECONNRESET") {
      return backendError("the server closed the connection before answering")
    }
    return backendError(`the request failed: ${describeCause(e.cause) ?? message}`)
  }
  if (error instanceof TypeError && message === "terminated") {
    return backendError("the connection dropped in the middle of the response stream", "run it again; check the server's log if it keeps happening")
  }
  if (message === "Did not receive done or success response in stream.") {
    return backendError("the response stream ended without its final done/success record (the server stopped early)")
  }
  if (message === "Missing body") return backendError("the server sent an empty response")
  if (error instanceof Error && error.constructor === Error) {
    // An `{"error": …}` record inside a 200 stream: the server started, then failed.
    return backendError(`the server reported an error: ${message}`)
  }
  return backendError(message)
}

const describeCause = (cause: unknown): string | undefined =>
  cause instanceof Error ? cause.message : cause !== undefined ? String(cause) : undefined

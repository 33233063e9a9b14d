/**
 * The Hugging Face hub client: the one place where @huggingface/hub's promises, aborts and errors become
 * typed errors (or a `Retryable`, see retryPolicy.ts). `FetchProbe` is the `fetch` handed to the library:
 * it records every response of an attempt (status, headers: the library hides them), keeps the token off
 * any other origin (@huggingface/hub forwards it to a CDN by itself) and aborts on interruption or a stall.
 * Only `pull` reaches this module; nothing that lists, inspects or runs a model constructs it.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { DownloadFailed, HubAuthRequired, isLlmspellError, ModelNotFound } from "../../domain/Errors.js"
import { retryAfterMillis } from "../../domain/RetryAfter.js"
import { Retryable } from "./retryPolicy.js"

export type HubModule = typeof import("@huggingface/hub")

// ---------------------------------------------------------------------------------------------
// The hub: one place where promises, aborts and library errors become typed errors
// ---------------------------------------------------------------------------------------------

const UNREACHABLE = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH"])

/** Observes every response of one download attempt, strips the token off foreign origins, aborts on demand. */
export class FetchProbe {
  readonly controller = new AbortController()
  readonly responses: Array<{ status: number; url: string; headers: Headers }> = []
  retryAfterMs: number | undefined
  constructor(private readonly hubOrigin: string) {}

  readonly fetch: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
    // @huggingface/hub forwards Authorization to a CDN that answers `X-Cache: … cloudfront`: never let it leave the hub.
    if (url.origin !== this.hubOrigin) headers.delete("authorization")
    const signal = init?.signal ? AbortSignal.any([init.signal, this.controller.signal]) : this.controller.signal
    const response = await fetch(input instanceof Request ? url.href : input, { ...init, headers, signal })
    this.responses.push({ status: response.status, url: response.url || url.href, headers: response.headers })
    if (response.status === 429 || response.status === 503) {
      this.retryAfterMs = retryAfterMillis(
        { retryAfter: response.headers.get("retry-after"), retryAfterMs: response.headers.get("retry-after-ms") },
        Date.now()
      )
    }
    return response
  }

  get last() {
    return this.responses.at(-1)
  }
}

export interface CallContext {
  readonly repo: string
  readonly file?: string | undefined
  readonly tokenProvided: boolean
  /** Removes the token from any text that reaches an error. */
  readonly scrub: (text: string) => string
  readonly stallTimeout: Duration.Duration
}

export const describeRaw = (e: unknown): string => {
  if (typeof e === "string") return e
  if (e instanceof Error) {
    const code = (e.cause as { code?: string } | undefined)?.code
    return code !== undefined ? `${e.message} (${code})` : e.message
  }
  return String(e)
}

/** What a hub call fails with: the hub's refusals, a final failure, or a failure worth another attempt. */
export type HubCallError = ModelNotFound | HubAuthRequired | DownloadFailed | Retryable

/** Maps whatever the hub library or fetch threw to a typed error or a Retryable. */
export const classify = (e: unknown, ctx: CallContext, probe: FetchProbe): HubCallError => {
  if (e instanceof Retryable) return e
  // our own code inside a call throws only these
  if (isLlmspellError(e) && (e._tag === "ModelNotFound" || e._tag === "HubAuthRequired" || e._tag === "DownloadFailed")) return e
  // blob.stream() rejects with a bare string when its request fails: the status is in what our fetch saw.
  const lastStatus = probe.last?.status ?? 0
  const status = (e as { statusCode?: unknown })?.statusCode ?? (typeof e === "string" && lastStatus >= 400 ? lastStatus : undefined)
  const url = typeof (e as { url?: unknown })?.url === "string" ? ctx.scrub((e as { url: string }).url) : undefined
  const errorCode = probe.last?.headers.get("x-error-code") ?? undefined
  if (typeof status === "number") {
    // The hub answers an unknown repo with 401 + RepoNotFound to anonymous callers: that is a typo far more
    // often than a private repo, so it is ModelNotFound; 401 without that code stays the gated case.
    if (errorCode === "RepoNotFound" || errorCode === "RepositoryNotFound") {
      return new ModelNotFound({
        model: ctx.repo,
        backend: "gguf",
        detail: `the hub has no repo ${ctx.repo} (or it is private)`,
        suggestion: "check the name; `llmspell model available` lists the catalog's models" +
          (ctx.tokenProvided ? "" : ", and a private repo needs HF_TOKEN")
      })
    }
    if (status === 404 || errorCode === "EntryNotFound" || errorCode === "RevisionNotFound") {
      return new ModelNotFound({
        model: ctx.file !== undefined ? `${ctx.repo}/${ctx.file}` : ctx.repo,
        backend: "gguf",
        detail: errorCode === "EntryNotFound" ? "the file is not in the repo" : "no such repo on the hub (or it is private)",
        suggestion: "check the name; `llmspell model available` lists the catalog's models"
      })
    }
    if (status === 401 || status === 403) {
      return new HubAuthRequired({ repo: ctx.repo, status, tokenProvided: ctx.tokenProvided })
    }
    if (status === 429 || status === 408 || status >= 500) {
      return new Retryable({ reason: `HTTP ${status}`, retryAfterMs: probe.retryAfterMs, url })
    }
    return new DownloadFailed({
      ...(url !== undefined ? { url } : {}),
      ...(ctx.file !== undefined ? { file: ctx.file } : {}),
      reason: `the hub answered HTTP ${status}: ${ctx.scrub(describeRaw(e))}`
    })
  }
  // Network failures (refused, reset, "terminated"), the library's string rejections, aborts: all transient.
  const code = (e as { cause?: { code?: unknown } })?.cause?.code
  const unreachable = typeof code === "string" && UNREACHABLE.has(code)
  return new Retryable({ reason: ctx.scrub(describeRaw(e)), url, unreachable })
}

/** Runs one hub promise: interruption and stalls abort it through the probe; every failure is typed. */
export const hubCall = <A>(
  ctx: CallContext,
  probe: FetchProbe,
  what: string,
  f: () => Promise<A>
): Effect.Effect<A, HubCallError> =>
  Effect.tryPromise({ try: f, catch: (e) => classify(e, ctx, probe) }).pipe(
    Effect.timeoutFail({
      duration: ctx.stallTimeout,
      onTimeout: () => new Retryable({ reason: `${what}: no answer for ${Duration.format(ctx.stallTimeout)}` })
    }),
    Effect.onInterrupt(() => Effect.sync(() => probe.controller.abort())),
    Effect.withSpan(`ModelDownloader.${what}`)
  )

/**
 * A Promise facade for JavaScript users without Effect: `createLocalLLM()` returns plain async
 * methods over the same LocalLLM service the CLI uses. Pull progress comes as an async iterator
 * or a callback, tokens as an async iterator, errors as `LlmspellFailure` (an Error carrying the
 * same `_tag`, `hint` and `exitCode` as the CLI). `close()` / `await using` releases models.
 * Agent options (`tools`, `toolChoice`, `responseFormat`, `reasoning`) pass through to the request;
 * `run` with a `json` or `{ schema }` format also returns the checked value as `object`.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { describeCause, ExitCode } from "./domain/Failure.js"
import { validateGenerateRequest } from "./domain/Protocol.js"
import {
  type BackendStatus,
  type ChatMessage,
  type Completion,
  type Embeddings,
  type Reranking,
  type GenerateEvent,
  type ModelInfo,
  type ModelList,
  promptRequest,
  type PromptOptions,
  type PullProgress,
  type PullResult,
  type RunResult,
  type RemoveResult,
  type VerifyReport
} from "./domain/Types.js"
import type { ConfigLoadOptions } from "./layers/ConfigLive.js"
import * as LlmspellLive from "./layers/LlmspellLive.js"
import * as LlmspellRemote from "./layers/LlmspellRemote.js"
import { type ImageUrlAccess, type ImageUrlPolicy, ImageUrls } from "./layers/ImageFetch.js"
import { type BackendFilter, LocalLLM, pullResult } from "./services/LocalLLM.js"

/** Every failure of the facade: the llmspell error's tag, message, hint and CLI exit code. */
export class LlmspellFailure extends Error {
  override readonly name = "LlmspellFailure"
  constructor(
    readonly _tag: string,
    message: string,
    readonly hint: string | undefined,
    readonly exitCode: number,
    options?: { cause?: unknown }
  ) {
    super(message, options)
  }
}

const toFailure = (cause: Cause.Cause<unknown>): LlmspellFailure => {
  const { error, exitCode, original } = describeCause(cause)
  return new LlmspellFailure(error._tag, error.message, error.hint, exitCode, { cause: original })
}

/** Options of `createLocalLLM`. */
export interface CreateLocalLLMOptions extends ConfigLoadOptions {
  /** A TOML-shaped config object; when given no file is read. */
  readonly config?: unknown
  /** Use this layer instead of the live one (e.g. `LlmspellMock.make().layer` from llmspell/testing). */
  readonly layer?: Layer.Layer<LocalLLM, unknown>
  /** Connect to a running `llmspell serve` at this URL (e.g. `http://127.0.0.1:11435`) instead of embedding. */
  readonly url?: string
  /** The server's API key (sent as a bearer token, never printed). */
  readonly apiKey?: string
  /**
   * Whether `{ url }` images of chat messages are fetched (embedded only: a server applies its own
   * `--allow-image-urls`): `"off"` (the default: refused with InvalidRequest), `"public"` (public
   * addresses only), `"private"` (any address; trusted networks only), or a policy with limits.
   */
  readonly imageUrls?: ImageUrlAccess | ImageUrlPolicy
}

/** Sampling, prompt and agent options (tools, toolChoice, responseFormat, reasoning) of `run` and `stream`. */
export interface RunOptions extends PromptOptions {
  readonly signal?: AbortSignal
}


/** A pull in progress: await it for the result, or iterate it for progress events. */
export interface PullOperation extends PromiseLike<PullResult>, AsyncIterable<PullProgress> {}

/** A token stream: iterate it for text; `completion` resolves at the end with usage and timings. */
export interface TokenStream extends AsyncIterable<string> {
  readonly completion: Promise<Completion>
}

/** The facade. */
export interface LocalLLMClient extends AsyncDisposable {
  readonly status: (backend?: BackendFilter) => Promise<ReadonlyArray<BackendStatus>>
  readonly list: (backend?: BackendFilter) => Promise<ModelList>
  readonly info: (spec: string) => Promise<ModelInfo>
  readonly pull: (
    spec: string,
    options?: {
      readonly quantization?: string
      readonly force?: boolean
      /** Copy bytes already in another store (Ollama, HF cache) instead of hard-linking them. */
      readonly copy?: boolean
      readonly onProgress?: (event: PullProgress) => void
      readonly signal?: AbortSignal
    }
  ) => PullOperation
  readonly remove: (spec: string) => Promise<RemoveResult>
  readonly verify: (spec?: string) => Promise<VerifyReport>
  /**
   * Runs a prompt (or a message list) to completion. With `responseFormat` `json` or `{ schema }`
   * the answer is parsed and checked (`object`); one that does not conform rejects with
   * `SchemaViolation`.
   */
  readonly run: (spec: string, prompt: string | ReadonlyArray<ChatMessage>, options?: RunOptions) => Promise<RunResult>
  /** Streams a prompt's answer token by token. */
  readonly stream: (spec: string, prompt: string | ReadonlyArray<ChatMessage>, options?: RunOptions) => TokenStream
  /** Embeds texts: one vector per input, in order, with the prompt tokens they took. */
  readonly embed: (spec: string, inputs: string | ReadonlyArray<string>, options?: { readonly signal?: AbortSignal }) => Promise<Embeddings>
  /** Orders documents by relevance to a query: indexes and scores, best first, cut to `topN`. */
  readonly rerank: (
    spec: string,
    query: string,
    documents: ReadonlyArray<string>,
    options?: { readonly topN?: number; readonly signal?: AbortSignal }
  ) => Promise<Reranking>
  /** Unloads models and closes connections. */
  readonly close: () => Promise<void>
}

/** Creates a client; nothing is loaded or contacted until a method is called. */
export const createLocalLLM = (options: CreateLocalLLMOptions = {}): LocalLLMClient => {
  const layer: Layer.Layer<LocalLLM, unknown> = options.layer ??
    (options.url !== undefined
      ? LlmspellRemote.layer({
        url: options.url,
        ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {}),
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {})
      })
      : options.config !== undefined
      ? LlmspellLive.layerFromObject(options.config, {
        ...(options.env !== undefined ? { env: options.env } : {}),
        ...(options.home !== undefined ? { home: options.home } : {})
      })
      : LlmspellLive.layer(options))
  // Warnings (a malformed entry in a server's model list, …) go to stderr: the default logger
  // writes to stdout, which is where a script prints its own results.
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      layer,
      Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.stringLogger)),
      Layer.succeed(ImageUrls, typeof options.imageUrls === "object" ? options.imageUrls : { access: options.imageUrls ?? "off" })
    )
  )
  let closed = false

  const run = <A>(effect: Effect.Effect<A, unknown, LocalLLM>, signal?: AbortSignal): Promise<A> => {
    if (closed) return Promise.reject(new LlmspellFailure("Closed", "this client was closed", undefined, ExitCode.Failure))
    return runtime.runPromiseExit(effect, signal !== undefined ? { signal } : undefined).then((exit) =>
      Exit.isSuccess(exit) ? exit.value : Promise.reject(toFailure(exit.cause))
    )
  }

  /** Iterates a stream through the runtime; breaking out of the loop interrupts it. */
  const iterate = <A>(stream: Stream.Stream<A, unknown, LocalLLM>, signal?: AbortSignal): AsyncIterable<A> => ({
    [Symbol.asyncIterator]: () => {
      const inner = runtime.runtimeEffect.pipe(
        Effect.map((rt) =>
          Stream.toAsyncIterableRuntime(rt)(stream.pipe(Stream.catchAllCause((c) => Stream.die(toFailure(c))))) as AsyncIterable<A>
        )
      )
      let iterator: AsyncIterator<A> | undefined
      const get = async () => (iterator ??= (await Effect.runPromise(inner))[Symbol.asyncIterator]())
      const onAbort = () => void iterator?.return?.()
      signal?.addEventListener("abort", onAbort, { once: true })
      return {
        next: async (): Promise<IteratorResult<A>> => {
          if (signal?.aborted) {
            await iterator?.return?.()
            throw toFailure(Cause.interrupt(undefined as never))
          }
          try {
            return await (await get()).next()
          } catch (e) {
            // Stream.die wraps our failure; unwrap it so callers see LlmspellFailure.
            throw e instanceof LlmspellFailure ? e : (e as { cause?: unknown }).cause instanceof LlmspellFailure
              ? (e as { cause: LlmspellFailure }).cause
              : e
          }
        },
        return: async (value?: unknown): Promise<IteratorResult<A>> => {
          signal?.removeEventListener("abort", onAbort)
          await iterator?.return?.(value)
          return { done: true, value: undefined }
        }
      }
    }
  })

  const withLLM = <A, E>(f: (llm: typeof LocalLLM.Service) => Effect.Effect<A, E>) => Effect.flatMap(LocalLLM, f)
  const streamOf = <A, E>(f: (llm: typeof LocalLLM.Service) => Stream.Stream<A, E>) =>
    Stream.unwrap(Effect.map(LocalLLM, f))

  // Checked here too, so a custom `layer` cannot let an out-of-range value through: the same check,
  // the same InvalidRequest as the CLI and the Effect API.
  // Checked here too, so a caller-supplied layer (a mock) cannot be handed an out-of-range request.
  const request = (prompt: string | ReadonlyArray<ChatMessage>, runOptions: RunOptions | undefined) =>
    Either.match(validateGenerateRequest(promptRequest(prompt, runOptions)), { onLeft: Effect.fail, onRight: Effect.succeed })
  const generation = (spec: string, prompt: string | ReadonlyArray<ChatMessage>, runOptions: RunOptions | undefined) =>
    Stream.unwrap(Effect.flatMap(request(prompt, runOptions), (r) => Effect.map(LocalLLM, (llm) => llm.generate(spec, r))))

  const client: LocalLLMClient = {
    status: (backend) => run(withLLM((llm) => llm.status(backend))),
    list: (backend) => run(withLLM((llm) => llm.list(backend))),
    info: (spec) => run(withLLM((llm) => llm.info(spec))),
    remove: (spec) => run(withLLM((llm) => llm.remove(spec))),
    verify: (spec) => run(withLLM((llm) => llm.verify(spec))),
    pull: (spec, pullOptions = {}) => {
      const events = streamOf((llm) =>
        llm.pull(spec, {
          ...(pullOptions.quantization !== undefined ? { quantization: pullOptions.quantization } : {}),
          ...(pullOptions.force !== undefined ? { force: pullOptions.force } : {}),
          ...(pullOptions.copy !== undefined ? { copy: pullOptions.copy } : {})
        })
      )
      let promise: Promise<PullResult> | undefined
      const result = () =>
        (promise ??= run(pullResult(events, (e) => pullOptions.onProgress?.(e)), pullOptions.signal))
      return {
        then: (onFulfilled, onRejected) => result().then(onFulfilled, onRejected),
        [Symbol.asyncIterator]: () =>
          iterate(
            events.pipe(Stream.tap((e) => Effect.sync(() => pullOptions.onProgress?.(e)))),
            pullOptions.signal
          )[Symbol.asyncIterator]()
      }
    },
    run: (spec, prompt, runOptions) =>
      run(Effect.flatMap(request(prompt, runOptions), (r) => withLLM((llm) => llm.run(spec, r))), runOptions?.signal),
    embed: (spec, inputs, embedOptions) =>
      run(withLLM((llm) => llm.embed(spec, typeof inputs === "string" ? [inputs] : inputs)), embedOptions?.signal),
    rerank: (spec, query, documents, rerankOptions) =>
      run(
        withLLM((llm) => llm.rerank(spec, { query, documents, ...(rerankOptions?.topN !== undefined ? { topN: rerankOptions.topN } : {}) })),
        rerankOptions?.signal
      ),
    stream: (spec, prompt, runOptions) => {
      let resolve!: (c: Completion) => void
      let reject!: (e: unknown) => void
      const completion = new Promise<Completion>((res, rej) => {
        resolve = res
        reject = rej
      })
      // Nobody may await `completion`; an unhandled rejection would crash their process.
      completion.catch(() => {})
      let finished = false
      const events = generation(spec, prompt, runOptions).pipe(
        Stream.tap((e: GenerateEvent) =>
          Effect.sync(() => {
            if (e._tag === "Finish") {
              finished = true
              resolve(e.completion)
            }
          })
        ),
        Stream.filterMap((e) => (e._tag === "TextDelta" ? Option.some(e.text) : Option.none())),
        Stream.onDone(() => Effect.sync(() => !finished && reject(new LlmspellFailure("Interrupted", "the stream ended early", undefined, ExitCode.Interrupted))))
      )
      const iterable = iterate(events, runOptions?.signal)
      return {
        completion,
        [Symbol.asyncIterator]: () => {
          const it = iterable[Symbol.asyncIterator]()
          return {
            next: () => it.next().catch((e) => {
              reject(e)
              throw e
            }),
            return: (v?: unknown) => {
              if (!finished) reject(new LlmspellFailure("Interrupted", "the stream was stopped", undefined, ExitCode.Interrupted))
              return it.return!(v)
            }
          }
        }
      }
    },
    close: async () => {
      if (closed) return
      closed = true
      await runtime.dispose()
    },
    [Symbol.asyncDispose]: () => client.close()
  }
  return client
}

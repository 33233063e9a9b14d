/**
 * LlmspellRemote: `LocalLLM` backed by a running `llmspell serve` — the `LlmspellRpcs` client over
 * streaming HTTP (NDJSON) at `<url>/rpc`. A program (and the `@effect/ai` models below) composes
 * against a remote kernel exactly as against the embedded one: the same operations, the same typed
 * errors (a `ModelNotFound` on the server is a `ModelNotFound` here, hint included). Interrupting a
 * call aborts its HTTP request, which interrupts it on the server (a generation frees its sequence).
 * A server that is down is a `BackendUnavailable` naming the URL (exit 4), found by a bounded TCP
 * connect before the first call: never a hang; one that refuses the key is `MissingCredentials` (2). The API key is sent as a bearer token, never shown.
 */
import type * as EmbeddingModel from "@effect/ai/EmbeddingModel"
import type * as LanguageModel from "@effect/ai/LanguageModel"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as RpcClient from "@effect/rpc/RpcClient"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Http from "node:http"
import type * as Https from "node:https"
import * as net from "node:net"
import * as nodePath from "node:path"
import { BackendUnavailable, MissingCredentials, UnsupportedOperation } from "../domain/Errors.js"
import { isFileReference } from "../domain/ModelSpec.js"
import { LlmspellRpcs, validateGenerateRequest } from "../domain/Protocol.js"
import { validateRerankRequest } from "../domain/Rerank.js"
import { LLMSPELL_DEFAULT_PORT, parseServerUrl, redactUrl, redactUrlsIn, urlProblem } from "../domain/ServerUrl.js"
import { LocalLLM, type LocalLLMService } from "../services/LocalLLM.js"
import {
  type EmbedSource,
  type GenerateDefaults,
  type GenerateSource
} from "./LanguageModelAdapter.js"

/** Where the server is and how to authenticate. */
export interface RemoteOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:11435` (the protocol is at `/rpc`). */
  readonly url: string
  /** The server's `--api-key`, sent as `Authorization: Bearer …`. */
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
  /** How long connecting may take before the server counts as down (default 3 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Relative file specs (`./x.gguf`) are made absolute against this directory (default: the process's). */
  readonly cwd?: string | undefined
}

const HINT = "start it with `llmspell serve`, or run without a server with --local"

/** The base URL in any form `--host` takes (`host:port`, `:port`, a URL), without a trailing slash. */
const baseOf = (url: string) => parseServerUrl(url, LLMSPELL_DEFAULT_PORT).replace(/\/+$/, "")

/** Opens and closes one TCP connection to the server, within the timeout. */
const probe = (url: string, timeout: Duration.DurationInput): Effect.Effect<void, BackendUnavailable> =>
  Effect.gen(function*() {
    const problem = urlProblem(url)
    if (problem !== undefined) {
      return yield* new BackendUnavailable({
        backend: "llmspell",
        url: redactUrl(url),
        reason: `not a server address: it ${problem}`,
        suggestion: "give it as host:port or http://host:port (`llmspell serve` prints its address when it starts)"
      })
    }
    const parsed = new URL(url)
    const port = Number(parsed.port || (parsed.protocol === "https:" ? 443 : 80))
    const host = parsed.hostname.replace(/^\[|\]$/g, "")
    yield* Effect.async<void, BackendUnavailable>((resume) => {
      const socket = net.connect({ host, port })
      socket.once("connect", () => {
        socket.destroy()
        resume(Effect.void)
      })
      socket.once("error", (e: NodeJS.ErrnoException) => {
        socket.destroy()
        resume(Effect.fail(new BackendUnavailable({ backend: "llmspell", url: redactUrl(url), reason: `no server answers (${e.code ?? e.message})`, suggestion: HINT })))
      })
      return Effect.sync(() => socket.destroy())
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new BackendUnavailable({
            backend: "llmspell",
            url: redactUrl(url),
            reason: `no connection within ${Duration.format(Duration.decode(timeout))}`,
            suggestion: HINT
          })
      })
    )
  })

/**
 * The server stopped answering mid-way (a BackendUnavailable naming it), or refused the key: a
 * server started with `--api-key` answers 401 to a request without the right one, which is a
 * credentials problem (MissingCredentials, exit 2), not a server that is down.
 */
/**
 * A call that did not get its answer: the server is gone, answered an error status, or refused
 * the API key (401/403: said so, with the variable to set; the key itself never shown).
 */
const unavailable = (url: string, keyGiven: boolean) => (error: RpcClientError): BackendUnavailable => {
  const status = statusOf(error)
  const refusedKey = status === 401 || status === 403
  return new BackendUnavailable({
    backend: "llmspell",
    url: redactUrl(url),
    reason: refusedKey
      ? keyRefusedReason(status, keyGiven)
      : status !== undefined && status >= 200 && status < 300
      // the answer had begun: its body broke off (the server stopped, crashed or was killed)
      ? "the connection dropped in the middle of the answer (did the server stop?)"
      : status !== undefined
      ? `the server answered HTTP ${status}`
      : `the connection failed (${redactUrlsIn(causeOf(error)?.reason ?? error.message)})`,
    suggestion: refusedKey ? KEY_HINT : HINT,
    cause: error
  })
}

const causeOf = (error: RpcClientError) =>
  error.cause as { _tag?: string; reason?: string; response?: { status?: number } } | undefined
const statusOf = (error: RpcClientError) => causeOf(error)?.response?.status
const KEY_HINT = "set LLMSPELL_API_KEY to the key the server was started with (`llmspell serve --api-key`, or its LLMSPELL_API_KEY)"
const keyRefusedReason = (status: number, keyGiven: boolean) =>
  keyGiven
    ? `the server refused the API key (HTTP ${status}): it is not the one the server was started with`
    : `the server wants an API key (HTTP ${status}) and none was given`

/**
 * At connection time a refused key is a credentials problem (MissingCredentials, exit 2), not a
 * server that is down; later calls report it as BackendUnavailable, which every operation lists.
 */
const keyRefused = (url: string, keyGiven: boolean, error: BackendUnavailable): MissingCredentials | BackendUnavailable => {
  const status = error.cause instanceof RpcClientError ? statusOf(error.cause) : undefined
  return status === 401 || status === 403
    ? new MissingCredentials({
      provider: `llmspell serve at ${redactUrl(url)}`,
      variable: "LLMSPELL_API_KEY",
      reason: keyRefusedReason(status, keyGiven),
      suggestion: KEY_HINT
    })
    : error
}

/**
 * Node's own HTTP client: `fetch` would load undici and web streams, a fifth of what a connected
 * CLI command costs (bench:startup). The https agent is made only for an https:// server, so a
 * server on loopback never loads TLS.
 */
const nodeHttpClient = NodeHttpClient.layerWithoutAgent.pipe(
  Layer.provide(Layer.scoped(
    NodeHttpClient.HttpAgent,
    Effect.acquireRelease(
      Effect.sync(() => {
        const http = new Http.Agent({ keepAlive: true })
        let https: Https.Agent | undefined
        return {
          [NodeHttpClient.HttpAgentTypeId]: NodeHttpClient.HttpAgentTypeId,
          http,
          get https() {
            return (https ??= new (process.getBuiltinModule("node:https").Agent)({ keepAlive: true }))
          },
          destroy: () => {
            http.destroy()
            https?.destroy()
          }
        }
      }),
      (agents) => Effect.sync(agents.destroy)
    )
  ))
)

/** The LocalLLM of a server, built in a scope (its connections close with it). */
export const make = (
  options: RemoteOptions
): Effect.Effect<LocalLLMService, BackendUnavailable | MissingCredentials, import("effect/Scope").Scope> =>
  Effect.gen(function*() {
    const url = baseOf(options.url)
    yield* probe(url, options.connectTimeout ?? "3 seconds")
    const apiKey = options.apiKey === undefined
      ? undefined
      : Redacted.isRedacted(options.apiKey)
      ? options.apiKey
      : Redacted.make(options.apiKey)
    const http = Layer.effect(
      HttpClient.HttpClient,
      Effect.map(HttpClient.HttpClient, (client) =>
        client.pipe(
          apiKey !== undefined ? HttpClient.mapRequest(HttpClientRequest.bearerToken(Redacted.value(apiKey))) : (c) => c,
          // A 401 (or any error status) carries no NDJSON: fail on it rather than wait for answers.
          HttpClient.filterStatusOk
        ))
    ).pipe(Layer.provide(nodeHttpClient))
    const protocol = RpcClient.layerProtocolHttp({ url: `${url}/rpc` }).pipe(
      Layer.provide(Layer.merge(http, RpcSerialization.layerNdjson))
    )
    // Built in this scope (not with Effect.provide, whose scope would close once `make` returns).
    const client = yield* RpcClient.make(LlmspellRpcs).pipe(Effect.provide(yield* Layer.build(protocol)))
    const lost = unavailable(url, apiKey !== undefined)
    // Each call fails with its operation's errors (the protocol's, the same as LocalLLM's), or a lost connection.
    const call = <A, E>(effect: Effect.Effect<A, E | RpcClientError>): Effect.Effect<A, E | BackendUnavailable> =>
      Effect.catchIf(effect, (e): e is RpcClientError => e instanceof RpcClientError, (e) => Effect.fail(lost(e)))
    const stream = <A, E>(s: Stream.Stream<A, E | RpcClientError>): Stream.Stream<A, E | BackendUnavailable> =>
      Stream.catchAll(s, (e) => Stream.fail(e instanceof RpcClientError ? lost(e) : e))
    // A relative path means the caller's directory, not the server's: it is sent absolute, and
    // the answer names it as the caller wrote it, as the embedded LocalLLM does.
    const specOf = (spec: string) =>
      isFileReference(spec) && (spec.startsWith("./") || spec.startsWith("../") || spec.startsWith(".\\"))
        ? nodePath.resolve(options.cwd ?? process.cwd(), spec)
        : spec
    const asWritten = (spec: string) => {
      const sent = specOf(spec)
      // Only where the spec is echoed as a name (`name`, `model`); paths stay absolute, as embedded.
      const restore = (value: unknown): unknown =>
        Array.isArray(value)
          ? value.map(restore)
          : value !== null && typeof value === "object"
          ? Object.fromEntries(
            Object.entries(value).map(([k, v]) => [k, (k === "name" || k === "model") && v === sent ? spec : restore(v)])
          )
          : value
      return <A>(value: A): A => (sent === spec ? value : restore(value) as A)
    }
    // One round trip before the first call: a wrong API key, or something else listening on the
    // port, is a clear error now rather than a defect of a call that cannot fail (status, list).
    yield* call(client.Instances({ backend: "all" })).pipe(
      Effect.timeoutFail({
        duration: options.connectTimeout ?? "10 seconds",
        onTimeout: () => new BackendUnavailable({ backend: "llmspell", url: redactUrl(url), reason: "the server does not answer", suggestion: HINT })
      }),
      Effect.catchAll((e) =>
        Effect.fail(
          e instanceof BackendUnavailable
            ? keyRefused(url, apiKey !== undefined, e)
            : new BackendUnavailable({ backend: "llmspell", url: redactUrl(url), reason: `the server failed to answer (${e.message})`, suggestion: HINT })
        )
      )
    )
    const valid = (request: unknown) =>
      Either.match(validateGenerateRequest(request), { onLeft: Effect.fail, onRight: Effect.succeed })
    // `status`/`list`/`instances` never fail on the server; a lost connection has nowhere to go but a defect.
    const orDie = <A, E>(effect: Effect.Effect<A, E | RpcClientError>) => Effect.orDieWith(call(effect), (e) => e)

    const service: LocalLLMService = {
      status: (backend = "all") => orDie(client.Status({ backend })),
      list: (backend = "all") => orDie(client.List({ backend })),
      instances: (backend = "all") => orDie(client.Instances({ backend })),
      resolve: (spec) =>
        Effect.fail(
          new UnsupportedOperation({
            backend: "llmspell",
            operation: "resolve",
            reason: `a connection to ${url} hands out results, not backend instances: use info, generate or embed`
          })
        ),
      info: (spec) => Effect.map(call(client.Info({ spec: specOf(spec) })), asWritten(spec)),
      pull: (spec, pullOptions = {}) =>
        stream(client.Pull({
          spec: specOf(spec),
          force: pullOptions.force ?? false,
          ...(pullOptions.quantization !== undefined ? { quantization: pullOptions.quantization } : {}),
          ...(pullOptions.copy !== undefined ? { copy: pullOptions.copy } : {}),
          ...(pullOptions.dryRun !== undefined ? { dryRun: pullOptions.dryRun } : {})
        })),
      remove: (spec) => call(client.Remove({ spec: specOf(spec) })),
      planRemoval: (spec) => call(client.PlanRemoval({ spec: specOf(spec) })),
      verify: (spec) => call(client.Verify(spec !== undefined ? { spec: specOf(spec) } : {})),
      generate: (spec, request) =>
        Stream.unwrap(Effect.map(valid(request), (request) => stream(client.Generate({ spec: specOf(spec), request })))).pipe(
          Stream.map(asWritten(spec))
        ),
      run: (spec, request) =>
        Effect.flatMap(valid(request), (request) => call(client.Run({ spec: specOf(spec), request }))).pipe(
          Effect.map(asWritten(spec))
        ),
      embed: (spec, inputs) => call(client.Embed({ spec: specOf(spec), inputs })),
      // checked here as embedded: a bad request fails as InvalidRequest, not as a protocol error
      rerank: (spec, request) =>
        Effect.flatMap(
          Either.match(validateRerankRequest(request), { onLeft: Effect.fail, onRight: Effect.succeed }),
          (request) => call(client.Rerank({ spec: specOf(spec), request }))
        ).pipe(Effect.map(asWritten(spec))),
      available: (availableOptions = {}) => call(client.Available({ recommendedOnly: availableOptions.recommendedOnly ?? false })),
      importFile: (file, importOptions = {}) =>
        Effect.map(call(client.Import({
          file: nodePath.resolve(options.cwd ?? process.cwd(), file),
          ...(importOptions.name !== undefined ? { name: importOptions.name } : {}),
          ...(importOptions.copy !== undefined ? { copy: importOptions.copy } : {})
        })), (result) => ({ ...result, source: file })),
      planOllamaInstall: (flags) => call(client.PlanOllamaInstall(flags)),
      installOllama: (flags) => call(client.InstallOllama(flags)),
      ps: (backend = "all") => orDie(client.Ps({ backend })),
      unload: (spec) => call(client.Unload({ spec: specOf(spec) })),
      keepAlive: (spec, seconds) => call(client.KeepAlive({ spec: specOf(spec), seconds })),
      load: (spec, keepAliveSeconds) =>
        call(client.Load({ spec: specOf(spec), ...(keepAliveSeconds !== undefined ? { keepAliveSeconds } : {}) }))
    }
    return service
  })

/** `LocalLLM` served by the llmspell server at `url`. */
export const layer = (options: RemoteOptions): Layer.Layer<LocalLLM, BackendUnavailable | MissingCredentials> =>
  Layer.scoped(LocalLLM, make(options))

/** One model spec of a LocalLLM as what the `@effect/ai` adapters call. */
const backendOf = (llm: LocalLLMService, spec: string): GenerateSource & EmbedSource => ({
  generate: (_, request) => llm.generate(spec, request),
  // a LocalLLM fetches `{ url }` images as its setting allows, or carries them to its server
  handlesImageUrls: true,
  embed: (_, inputs) => llm.embed(spec, inputs)
})

// The @effect/ai models are imported when one is built: a CLI command against a server uses none.
const adapters = Effect.promise(() =>
  Promise.all([import("@effect/ai/LanguageModel"), import("@effect/ai/EmbeddingModel"), import("./LanguageModelAdapter.js")])
)

/** A model spec as an `@effect/ai` LanguageModel over the LocalLLM in context (remote or embedded). */
export const languageModel = (
  spec: string,
  defaults: GenerateDefaults = {}
): Layer.Layer<LanguageModel.LanguageModel, never, LocalLLM> =>
  Layer.unwrapEffect(Effect.map(adapters, ([LanguageModelTag, , Adapter]) =>
    Layer.effect(
      LanguageModelTag.LanguageModel,
      Effect.flatMap(LocalLLM, (llm) => Adapter.fromBackend(backendOf(llm, spec), spec, defaults))
    )
  ))

/** A model spec as an `@effect/ai` EmbeddingModel over the LocalLLM in context (remote or embedded). */
export const embeddingModel = (
  spec: string,
  options: { readonly maxBatchSize?: number } = {}
): Layer.Layer<EmbeddingModel.EmbeddingModel, never, LocalLLM> =>
  Layer.unwrapEffect(Effect.map(adapters, ([, EmbeddingModelTag, Adapter]) =>
    Layer.effect(
      EmbeddingModelTag.EmbeddingModel,
      Effect.flatMap(LocalLLM, (llm) => Adapter.embeddingModelFromBackend(backendOf(llm, spec), spec, options))
    )
  ))

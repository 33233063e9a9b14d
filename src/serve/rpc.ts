/**
 * llmspell's own protocol served: the `LlmspellRpcs` group (domain/Protocol.ts) implemented with
 * the LocalLLM service, as an `@effect/platform` HttpApp to mount at `/rpc` (NDJSON over streaming
 * HTTP: one POST per call, streams as they come). A client that goes away interrupts its call on
 * the server (the request's scope closes), so an abandoned generation frees its context sequence.
 * The rules (paths, read-only, keep-alive bounds, the bearer check) are Policy's; an optional API
 * key is checked on every request when the protocol is served on its own.
 * May touch: LocalLLM, the HTTP request; nothing else.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import * as Option from "effect/Option"
import { InvalidRequest, ServerRefused } from "../domain/Errors.js"
import { LlmspellRpcs } from "../domain/Protocol.js"
import { LocalLLM, type LocalLLMService } from "../services/LocalLLM.js"
import * as Policy from "./Policy.js"
import { ImageUrls, type ImageUrlPolicy } from "../layers/ImageFetch.js"

/** Where the protocol is mounted on a `llmspell serve` server. */
export const RPC_PATH = "/rpc"

/** Every operation of the group, served by a LocalLLM. */
export const handlers = (llm: LocalLLMService) =>
  LlmspellRpcs.of({
    Status: ({ backend }) => llm.status(backend),
    List: ({ backend }) => llm.list(backend),
    Instances: ({ backend }) => llm.instances(backend),
    Info: ({ spec }) => llm.info(spec),
    Pull: ({ copy, dryRun, force, quantization, spec }) =>
      llm.pull(spec, {
        force,
        ...(copy !== undefined ? { copy } : {}),
        ...(dryRun !== undefined ? { dryRun } : {}),
        ...(quantization !== undefined ? { quantization } : {})
      }),
    Remove: ({ spec }) => llm.remove(spec),
    PlanRemoval: ({ spec }) => llm.planRemoval(spec),
    Verify: ({ spec }) => llm.verify(spec),
    Generate: ({ request, spec }) => llm.generate(spec, request),
    Run: ({ request, spec }) => llm.run(spec, request),
    Embed: ({ inputs, spec }) => llm.embed(spec, inputs),
    Rerank: ({ request, spec }) => llm.rerank(spec, request),
    Available: ({ recommendedOnly }) => llm.available({ recommendedOnly }),
    Import: ({ copy, file, name }) =>
      llm.importFile(file, { ...(name !== undefined ? { name } : {}), ...(copy !== undefined ? { copy } : {}) }),
    PlanOllamaInstall: (flags) => llm.planOllamaInstall(flags),
    InstallOllama: (flags) => llm.installOllama(flags),
    Ps: ({ backend }) => llm.ps(backend),
    Unload: ({ spec }) => llm.unload(spec),
    KeepAlive: ({ seconds, spec }) => llm.keepAlive(spec, seconds),
    Load: ({ keepAliveSeconds, spec }) => llm.load(spec, keepAliveSeconds)
  })

/** What a server allows callers of the protocol (the same Policy as its Ollama and OpenAI routes). */
export interface RpcPolicy {
  /** `--read-only`: pull, remove, import and installing Ollama are refused. */
  readonly readOnly?: boolean | undefined
  /** `--allow-paths`: specs that are file paths (and imports, which name a file) are served. */
  readonly allowPaths?: boolean | undefined
  /**
   * `--allow-image-urls`: whether a caller's `{ url }` images are fetched (the server's setting,
   * never the caller's; default: refused).
   */
  readonly imageUrls?: ImageUrlPolicy | undefined
}

/** A Policy refusal in the protocol's terms: a typed error the client shows with its hint. */
const refused = (refusal: Policy.PathRefused | Policy.ReadOnly): ServerRefused =>
  refusal._tag === "ReadOnly"
    ? new ServerRefused({ operation: refusal.operation, reason: "it is read-only (--read-only)", option: "--read-only" })
    : new ServerRefused({ operation: refusal.operation, reason: `${JSON.stringify(refusal.spec)} is a file path on the server's machine`, option: "--allow-paths" })

/** A keep-alive outside Policy.boundKeepAlive, as the protocol's typed error. */
const keepAliveBounded = (field: "seconds" | "keepAliveSeconds", seconds: number): Effect.Effect<number, InvalidRequest> =>
  Either.match(Policy.boundKeepAlive(seconds), {
    onRight: Effect.succeed,
    onLeft: () =>
      Effect.fail(
        new InvalidRequest({
          field,
          allowed: `a number of seconds from 0 to ${Policy.MAX_KEEP_ALIVE_SECONDS}, or negative to keep the model loaded`,
          value: String(seconds)
        })
      )
  })

/**
 * The LocalLLM a protocol caller gets: a request must not make the server read an arbitrary local
 * file unless it was started with `--allow-paths`, nor change its store when it is `--read-only`,
 * nor set a keep-alive no view could show.
 */
export const guarded = (llm: LocalLLMService, policy: RpcPolicy): LocalLLMService => {
  const rules = { allowPaths: policy.allowPaths ?? false, readOnly: policy.readOnly ?? false }
  const imageUrls: ImageUrlPolicy = policy.imageUrls ?? {
    access: "off",
    enableWith: "the server allows it (llmspell serve --allow-image-urls)"
  }
  const spec = <A, E, R>(operation: string, s: string, effect: () => Effect.Effect<A, E, R>) =>
    Option.match(Policy.checkSpec(rules, operation, s), { onNone: effect, onSome: (r) => Effect.fail(refused(r)) })
  const specStream = <A, E, R>(operation: string, s: string, stream: () => Stream.Stream<A, E, R>) =>
    Option.match(Policy.checkSpec(rules, operation, s), { onNone: stream, onSome: (r) => Stream.fail(refused(r)) })
  const writing = <A, E, R>(operation: string, effect: () => Effect.Effect<A, E, R>) =>
    Option.match(Policy.checkWrite(rules, operation), { onNone: effect, onSome: (r) => Effect.fail(refused(r)) })
  return {
    ...llm,
    resolve: (s) => spec("resolve", s, () => llm.resolve(s)),
    info: (s) => spec("info", s, () => llm.info(s)),
    pull: (s, o) =>
      Option.match(Policy.checkWrite(rules, "pull"), {
        onNone: () => specStream("pull", s, () => llm.pull(s, o)),
        onSome: (r) => Stream.fail(refused(r))
      }),
    remove: (s) => writing("remove", () => spec("remove", s, () => llm.remove(s))),
    planRemoval: (s) => spec("remove", s, () => llm.planRemoval(s)),
    verify: (s) => (s === undefined ? llm.verify() : spec("verify", s, () => llm.verify(s))),
    generate: (s, r) => specStream("generate", s, () => Stream.provideService(llm.generate(s, r), ImageUrls, imageUrls)),
    run: (s, r) => spec("run", s, () => Effect.provideService(llm.run(s, r), ImageUrls, imageUrls)),
    embed: (s, i) => spec("embed", s, () => llm.embed(s, i)),
    rerank: (s, r) => spec("rerank", s, () => llm.rerank(s, r)),
    // an import always names a file on the server's machine
    importFile: (file, o) =>
      writing("import", () =>
        rules.allowPaths ? llm.importFile(file, o) : Effect.fail(refused({ _tag: "PathRefused", operation: "import", spec: file }))),
    installOllama: (flags) => (flags.dryRun ? llm.installOllama(flags) : writing("installing Ollama", () => llm.installOllama(flags))),
    unload: (s) => spec("stop", s, () => llm.unload(s)),
    keepAlive: (s, seconds) => spec("keep-alive", s, () => Effect.flatMap(keepAliveBounded("seconds", seconds), (bounded) => llm.keepAlive(s, bounded))),
    load: (s, seconds) =>
      spec("load", s, () =>
        seconds === undefined ? llm.load(s) : Effect.flatMap(keepAliveBounded("keepAliveSeconds", seconds), (bounded) => llm.load(s, bounded)))
  }
}

/** The group's handlers over the LocalLLM in context. */
export const layerHandlers = LlmspellRpcs.toLayer(Effect.map(LocalLLM, handlers))

const layerGuardedHandlers = (policy: RpcPolicy) =>
  LlmspellRpcs.toLayer(Effect.map(LocalLLM, (llm) => handlers(guarded(llm, policy))))

/** Options of the HTTP app. */
export interface RpcHttpOptions extends RpcPolicy {
  /** When set, every request needs `Authorization: Bearer <apiKey>`; others get 401. */
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
  /** A further check of each request (e.g. the server's Host-header rule); false answers 401. */
  readonly authorize?: ((request: HttpServerRequest.HttpServerRequest) => Effect.Effect<boolean>) | undefined
}

/** True when the request carries the key as a bearer token (Policy.bearerMatches: constant time). */
export const hasBearer = (request: HttpServerRequest.HttpServerRequest, apiKey: Redacted.Redacted<string>): boolean =>
  Policy.bearerMatches(request.headers["authorization"], apiKey)

const unauthorized = HttpServerResponse.unsafeJson(
  { error: "unauthorized: send the server's API key as `Authorization: Bearer <key>`" },
  { status: 401, headers: { "www-authenticate": "Bearer" } }
)

/**
 * The protocol as an HttpApp (mount it at `RPC_PATH` with POST). Its server runs in the given
 * scope: close it to stop serving.
 */
export const makeHttpApp = (
  options: RpcHttpOptions = {}
): Effect.Effect<HttpApp.Default<never, Scope.Scope>, never, Scope.Scope | LocalLLM> =>
  Effect.gen(function*() {
    const app = yield* RpcServer.toHttpApp(LlmspellRpcs, { disableFatalDefects: true }).pipe(
      Effect.provide(Layer.merge(layerGuardedHandlers(options), RpcSerialization.layerNdjson))
    )
    const apiKey = options.apiKey === undefined
      ? undefined
      : Redacted.isRedacted(options.apiKey)
      ? options.apiKey
      : Redacted.make(options.apiKey)
    if (apiKey === undefined && options.authorize === undefined) return app
    return Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (apiKey !== undefined && !hasBearer(request, apiKey)) return unauthorized
      if (options.authorize !== undefined && !(yield* options.authorize(request))) return unauthorized
      return yield* app
    })
  })

/** A router with the protocol at `POST /rpc`, for a server of one's own (tests, embedding). */
export const makeRouter = (options: RpcHttpOptions = {}) =>
  Effect.map(makeHttpApp(options), (app) => HttpRouter.empty.pipe(HttpRouter.post(RPC_PATH, app)))

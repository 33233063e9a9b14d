/**
 * llmspell's own protocol served: the `LlmspellRpcs` group (domain/Protocol.ts) implemented with
 * the LocalLLM service, as an `@effect/platform` HttpApp to mount at `/rpc` (NDJSON over streaming
 * HTTP: one POST per call, streams as they come). A client that goes away interrupts its call on
 * the server (the request's scope closes), so an abandoned generation frees its context sequence.
 * An optional API key is checked on every request (bearer token, constant-time compare).
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
import { createHash, timingSafeEqual } from "node:crypto"
import { LlmspellRpcs } from "../domain/Protocol.js"
import { LocalLLM, type LocalLLMService } from "../services/LocalLLM.js"

/** Where the protocol is mounted on a `llmspell serve` server. */
export const RPC_PATH = "/rpc"

/** Every operation of the group, served by a LocalLLM. */
export const handlers = (llm: LocalLLMService) =>
  LlmspellRpcs.of({
    Status: ({ backend }) => llm.status(backend),
    List: ({ backend }) => llm.list(backend),
    Instances: ({ backend }) => llm.instances(backend),
    Info: ({ spec }) => llm.info(spec),
    Pull: ({ copy, force, quantization, spec }) =>
      llm.pull(spec, {
        force,
        ...(copy !== undefined ? { copy } : {}),
        ...(quantization !== undefined ? { quantization } : {})
      }),
    Remove: ({ spec }) => llm.remove(spec),
    PlanRemoval: ({ spec }) => llm.planRemoval(spec),
    Verify: ({ spec }) => llm.verify(spec),
    Generate: ({ request, spec }) => llm.generate(spec, request),
    Run: ({ request, spec }) => llm.run(spec, request),
    Embed: ({ inputs, spec }) => llm.embed(spec, inputs),
    Available: ({ recommendedOnly }) => llm.available({ recommendedOnly }),
    Import: ({ copy, file, name }) =>
      llm.importFile(file, { ...(name !== undefined ? { name } : {}), ...(copy !== undefined ? { copy } : {}) }),
    PlanOllamaInstall: (flags) => llm.planOllamaInstall(flags),
    InstallOllama: (flags) => llm.installOllama(flags)
  })

/** The group's handlers over the LocalLLM in context. */
export const layerHandlers = LlmspellRpcs.toLayer(Effect.map(LocalLLM, handlers))

/** Options of the HTTP app. */
export interface RpcHttpOptions {
  /** When set, every request needs `Authorization: Bearer <apiKey>`; others get 401. */
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
  /** A further check of each request (e.g. the server's Host-header rule); false answers 401. */
  readonly authorize?: ((request: HttpServerRequest.HttpServerRequest) => Effect.Effect<boolean>) | undefined
}

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/** True when the request carries the key as a bearer token (compared in constant time). */
export const hasBearer = (request: HttpServerRequest.HttpServerRequest, apiKey: Redacted.Redacted<string>): boolean => {
  const header = request.headers["authorization"] ?? ""
  const match = /^Bearer\s+(.+)$/i.exec(header)
  // Hashes of equal length, so the compare takes the same time whatever the lengths.
  return timingSafeEqual(digest(match?.[1]?.trim() ?? ""), digest(Redacted.value(apiKey))) && match !== null
}

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
      Effect.provide(Layer.merge(layerHandlers, RpcSerialization.layerNdjson))
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

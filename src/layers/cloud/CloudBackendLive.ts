/**
 * CloudBackendLive: the `Backend` contract over hosted APIs, on @effect/platform's fetch
 * `HttpClient` configured as @effect/ai-openai's and @effect/ai-anthropic's clients configure theirs
 * (see `makeClient` for why those packages are not imported). OpenAI and every OpenAI-compatible
 * server speak chat completions (`/chat/completions`, `/models`, `/embeddings`): @effect/ai-openai's
 * `OpenAiLanguageModel` speaks the Responses API, which vLLM, llama-server, groq and the rest do
 * not offer, so one chat-completions mapping (`cloudOpenAi.ts`) serves them all. Anthropic speaks its messages API
 * (`cloudAnthropic.ts`). Status codes become typed errors in `cloudHttp.ts`.
 *
 * A key that is needed but absent is `MissingCredentials` before any request is sent; `status`
 * reports whether a key is present, never the key. `pull`, `remove` and `verify` are not
 * applicable: the provider hosts its models.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { CloudInstanceConfig } from "../../domain/ConfigSchema.js"
import { ContextOverflow, type BackendError, MissingCredentials, ModelNotFound, ProviderNotAvailable, UnsupportedOperation } from "../../domain/Errors.js"
import { type CloudCapability, cloudCapabilities, lacking } from "../../domain/CloudCapabilities.js"
import { OPENAI_COMPATIBLE_RERANK } from "../../domain/CloudPresets.js"
import { hasImages, unfetchedImageReason, unfetchedImageUrl } from "../../domain/Images.js"
import { RERANK_ALTERNATIVES } from "../../domain/Rerank.js"
import { errorToJson } from "../../domain/Failure.js"
import type {
  BackendStatus,
  Completion,
  Embeddings,
  GenerateEvent,
  GenerateRequest,
  LocalModel,
  ModelInfo,
  Reranking,
  RerankRequest
} from "../../domain/Types.js"
import type { Backend, BackendFactory } from "../../services/Backend.js"
import { CloudBackendFactory } from "../../services/CloudBackend.js"
import * as Anthropic from "./cloudAnthropic.js"
import {
  type CloudContext,
  type CloudModelRequestError,
  dropped,
  type ModelPurpose,
  errorForModelStatus,
  requestJson,
  requestJsonWith,
  requestModelJson,
  requestSse,
  scrub,
  type SseEvent
} from "./cloudHttp.js"
import * as OpenAi from "./cloudOpenAi.js"

/** How long a models listing is reused (`model list` twice in a row asks once). */
export const MODELS_CACHE_TTL = Duration.seconds(60)
/** How long `status` waits for the models endpoint. */
const STATUS_TIMEOUT = Duration.seconds(10)

/** Whether this instance cannot work without a key: every built-in provider, and an entry whose `api_key` names an unset variable. */
const needsKey = (instance: CloudInstanceConfig) => instance.type !== "openai_compatible" || instance.keyVariable !== undefined

const missingKey = (instance: CloudInstanceConfig) =>
  new MissingCredentials({
    provider: instance.name,
    ...(instance.keyVariable !== undefined ? { variable: instance.keyVariable } : {}),
    reason: instance.keyVariable !== undefined ? `no API key: ${instance.keyVariable} is not set` : "no API key is configured"
  })

/** Fails with MissingCredentials when a needed key is absent, before anything is sent. */
const requireKey = (instance: CloudInstanceConfig): Effect.Effect<void, MissingCredentials> =>
  needsKey(instance) && instance.apiKey === undefined ? Effect.fail(missingKey(instance)) : Effect.void

const keyState = (instance: CloudInstanceConfig): string =>
  instance.apiKey !== undefined
    ? instance.keyVariable !== undefined ? `present (${instance.keyVariable})` : "present (config api_key)"
    : needsKey(instance)
    ? `missing${instance.keyVariable !== undefined ? ` (set ${instance.keyVariable})` : ""}`
    : "none (not needed)"

/**
 * The instance's HTTP client: base URL, key header and JSON accept, set up as @effect/ai-openai's
 * `OpenAiClient` and @effect/ai-anthropic's `AnthropicClient` do (bearer token; `x-api-key` plus
 * `anthropic-version: 2023-06-01`; both key headers in Effect's redacted header names). Those
 * packages are not imported: their generated API schemas, built when the module loads, made every
 * CLI command start 2–3× slower, and only this much of them was used.
 */
const makeClient = (instance: CloudInstanceConfig) =>
  Effect.gen(function*() {
    yield* Effect.locallyScopedWith(Headers.currentRedactedNames, (names) => [...names, "x-api-key"])
    const client = yield* HttpClient.HttpClient
    const key = instance.apiKey
    return client.pipe(
      HttpClient.mapRequest((request) =>
        request.pipe(
          // an absolute URL stays as it is (Cohere's rerank lives beside its base URL, not under it)
          /^https?:\/\//i.test(request.url) ? identity : HttpClientRequest.prependUrl(instance.baseUrl!),
          key === undefined
            ? identity
            : instance.protocol === "anthropic"
            ? HttpClientRequest.setHeader("x-api-key", Redacted.value(key))
            : HttpClientRequest.bearerToken(key),
          instance.protocol === "anthropic" ? HttpClientRequest.setHeader("anthropic-version", "2023-06-01") : identity,
          HttpClientRequest.acceptJson
        )
      )
    )
  }).pipe(Effect.provide(FetchHttpClient.layer))

/** Builds one cloud backend instance. */
export const make = (instance: CloudInstanceConfig): Effect.Effect<Backend, ProviderNotAvailable, Scope.Scope> =>
  Effect.gen(function*() {
    if (instance.protocol === undefined || instance.baseUrl === undefined) {
      return yield* Effect.fail(
        new ProviderNotAvailable({
          provider: instance.name,
          reason: `llmspell has no client for ${instance.type}; if it offers an OpenAI-compatible API, configure it with provider_type = "openai_compatible" and base_url`
        })
      )
    }
    const ctx: CloudContext = { instance, http: yield* makeClient(instance) }
    const anthropic = instance.protocol === "anthropic"
    const modelsPath = anthropic ? "/v1/models?limit=1000" : "/models"

    const fetchModels = Effect.gen(function*() {
      yield* requireKey(instance)
      const body = yield* requestJson(ctx, HttpClientRequest.get(modelsPath), { operation: "list" })
      const data = (body as { data?: unknown }).data
      if (!Array.isArray(data)) return yield* Effect.fail(dropped(instance, { operation: "list" }, "the models listing has no `data` array"))
      return data.flatMap((m) => (typeof m?.id === "string" ? [m.id as string] : []))
    })
    // Cached briefly; a failure is not kept, so the next call asks again.
    const [cachedModels, invalidate] = yield* Effect.cachedInvalidateWithTTL(fetchModels, MODELS_CACHE_TTL)
    const modelNames = instance.models !== undefined
      ? Effect.succeed(instance.models)
      : Effect.zipRight(requireKey(instance), Effect.tapError(cachedModels, () => invalidate))

    // what the provider's models can do, from the preset's rules (domain/CloudCapabilities.ts):
    // left out where unknown, never guessed
    const capabilitiesOf = (model: string) => cloudCapabilities(instance.type, model)
    const withCapabilities = (model: string) => {
      const capabilities = capabilitiesOf(model)
      return capabilities !== undefined ? { capabilities } : {}
    }
    const toLocal = (name: string): LocalModel => ({
      name,
      backend: "cloud",
      instance: instance.name,
      sizeBytes: 0,
      format: instance.type,
      ...withCapabilities(name)
    })

    /**
     * A request needing what the model is known to lack is refused before anything is sent (or a
     * key is asked for): only where the preset's list is sure; an unknown model is sent.
     */
    const refuseLacking = (
      model: string,
      /** Each capability the request needs, with the operation that needs it (named in the error). */
      needs: ReadonlyArray<readonly [CloudCapability, string]>
    ): Effect.Effect<void, UnsupportedOperation> => {
      const capabilities = capabilitiesOf(model)
      const missing = lacking(capabilities, needs.map(([c]) => c))
      if (missing === undefined) return Effect.void
      const operation = needs.find(([c]) => c === missing)![1]
      const fitting = missing === "embedding"
        ? "an embedding model"
        : missing === "rerank"
        ? "a rerank model"
        : missing === "completion"
        ? "a chat model"
        : `a model whose capabilities include ${missing}`
      return Effect.fail(
        new UnsupportedOperation({
          backend: instance.name,
          operation,
          reason: `${model} lacks the "${missing}" capability (by ${instance.type}'s documentation it does ${capabilities!.join(", ")})`,
          suggestion: `use ${fitting} (\`llmspell model info ${instance.name}/<model>\` shows a model's capabilities)`
        })
      )
    }

    const status: Effect.Effect<BackendStatus> = Effect.gen(function*() {
      const base = {
        instance: instance.name,
        backend: "cloud" as const,
        endpoint: instance.baseUrl!,
        loaded: [],
        details: { provider: instance.type, protocol: instance.protocol!, apiKey: keyState(instance) },
        warnings: [] as Array<string>
      }
      if (needsKey(instance) && instance.apiKey === undefined) {
        return { ...base, available: false, error: errorToJson(missingKey(instance)) }
      }
      const listed = yield* Effect.either(
        fetchModels.pipe(
          Effect.timeoutFail({
            duration: STATUS_TIMEOUT,
            onTimeout: () => dropped(instance, { operation: "status" }, `no answer within ${Duration.format(STATUS_TIMEOUT)}`)
          })
        )
      )
      return Either.isLeft(listed)
        ? { ...base, available: false, error: errorToJson(listed.left) }
        : { ...base, available: true, modelsPresent: listed.right.length }
    })

    const notApplicable = (operation: string) =>
      new UnsupportedOperation({
        backend: instance.name,
        operation,
        reason: `it is not applicable to ${instance.type}, which hosts its models itself`,
        suggestion: `run a model where it is: \`llmspell run -m ${instance.name}/<model> "…"\`; \`llmspell model status --backend cloud\` checks ${instance.name}`
      })

    const finish = (model: string, startedAt: number, firstAt: number | undefined, parts: Omit<Completion, "model" | "backend" | "instance" | "timings">) =>
      Effect.map(Clock.currentTimeMillis, (now): GenerateEvent => {
        const totalMs = now - startedAt
        const genMs = firstAt !== undefined ? now - firstAt : totalMs
        return {
          _tag: "Finish",
          completion: {
            model,
            backend: "cloud",
            instance: instance.name,
            ...parts,
            timings: {
              loadMs: 0,
              ...(firstAt !== undefined ? { timeToFirstTokenMs: firstAt - startedAt } : {}),
              totalMs,
              ...(genMs > 0 && parts.usage.completionTokens > 0 ? { tokensPerSecond: (parts.usage.completionTokens * 1000) / genMs } : {})
            }
          }
        }
      })

    /**
     * Our events from a streamed request: `step` folds one SSE event (pushing what to emit, or
     * returning an error); the first text or reasoning is timed; the stream ends when `isDone`.
     */
    const eventsOf = (
      request: HttpClientRequest.HttpClientRequest,
      purpose: ModelPurpose,
      step: (event: SseEvent, out: Array<GenerateEvent>) => BackendError | undefined,
      onFirstToken: (at: number) => void,
      isDone: () => boolean
    ): Stream.Stream<GenerateEvent, CloudModelRequestError> => {
      let first = true
      return requestSse(ctx, request, purpose, (events) => {
        const out: Array<GenerateEvent> = []
        for (const event of events) {
          if (isDone()) break
          const error = step(event, out)
          if (error !== undefined) return Effect.fail(error)
        }
        if (first && out.some((e) => e._tag === "TextDelta" || e._tag === "ReasoningDelta")) {
          first = false
          return Effect.map(Clock.currentTimeMillis, (now) => (onFirstToken(now), Chunk.unsafeFromArray(out)))
        }
        return Effect.succeed(Chunk.unsafeFromArray(out))
      }, isDone)
    }

    const generateOpenAi = (model: string, request: GenerateRequest, purpose: ModelPurpose, startedAt: number) => {
      const acc = OpenAi.emptyAccumulator()
      let firstAt: number | undefined
      let done = false
      const body = OpenAi.toChatCompletionRequest(instance, model, request, true)
      const request_ = HttpClientRequest.post("/chat/completions").pipe(HttpClientRequest.bodyUnsafeJson(body))
      const deltas = eventsOf(request_, purpose, (event, out) => {
        if (event.data.trim() === "[DONE]") {
          done = true
          return undefined
        }
        let chunk: unknown
        try {
          chunk = JSON.parse(event.data)
        } catch {
          return undefined
        }
        if (typeof chunk === "object" && chunk !== null && "error" in chunk) {
          return dropped(instance, purpose, `the provider reported an error in the stream: ${scrub(instance, String((chunk as any).error?.message ?? ""))}`)
        }
        const d = OpenAi.foldChunk(acc, chunk)
        if (d.reasoning !== undefined && request.reasoning !== false) out.push({ _tag: "ReasoningDelta", text: d.reasoning })
        if (d.text !== undefined) out.push({ _tag: "TextDelta", text: d.text })
        return undefined
      }, (at) => void (firstAt = at), () => done)
      const end = Stream.fromEffect(Effect.gen(function*() {
        if (acc.finishReason === undefined) {
          return yield* Effect.fail(dropped(instance, purpose, "the answer ended before the provider said it was complete"))
        }
        const { bad, calls } = OpenAi.finishedCalls(acc)
        if (bad !== undefined) return yield* Effect.fail(dropped(instance, purpose, bad))
        const finished = yield* finish(model, startedAt, firstAt, {
          text: acc.text,
          ...(acc.reasoning.length > 0 && request.reasoning !== false ? { reasoning: acc.reasoning } : {}),
          ...(calls.length > 0 ? { toolCalls: calls } : {}),
          finishReason: calls.length > 0 ? "tool-calls" : OpenAi.finishReasonOf(acc.finishReason),
          usage: OpenAi.usageOf(acc)
        })
        return [...calls.map((call): GenerateEvent => ({ _tag: "ToolCall", call })), finished]
      })).pipe(Stream.flattenIterables)
      return Stream.concat(deltas, end)
    }

    const generateAnthropic = (model: string, request: GenerateRequest, purpose: ModelPurpose, startedAt: number) => {
      const acc = Anthropic.emptyMessage()
      let firstAt: number | undefined
      const body = Anthropic.toMessagesRequest(model, request)
      const request_ = HttpClientRequest.post("/v1/messages").pipe(HttpClientRequest.bodyUnsafeJson(body))
      const deltas = eventsOf(request_, purpose, (event, out) => {
        let data: unknown
        try {
          data = JSON.parse(event.data)
        } catch {
          return undefined
        }
        const d = Anthropic.foldEvent(acc, data)
        if (d.error !== undefined) {
          return dropped(instance, purpose, `the provider reported ${d.error.type} in the stream: ${scrub(instance, d.error.message)}`)
        }
        if (d.reasoning !== undefined) out.push({ _tag: "ReasoningDelta", text: d.reasoning })
        if (d.text !== undefined) out.push({ _tag: "TextDelta", text: d.text })
        if (d.call !== undefined) out.push({ _tag: "ToolCall", call: d.call })
        return undefined
      }, (at) => void (firstAt = at), () => acc.stopped)
      const end = Stream.fromEffect(Effect.gen(function*() {
        if (acc.bad !== undefined) return yield* Effect.fail(dropped(instance, purpose, acc.bad))
        if (!acc.stopped) return yield* Effect.fail(dropped(instance, purpose, "the answer ended before the provider said it was complete"))
        return yield* finish(model, startedAt, firstAt, {
          text: acc.text,
          ...(acc.reasoning.length > 0 ? { reasoning: acc.reasoning } : {}),
          ...(acc.calls.length > 0 ? { toolCalls: acc.calls } : {}),
          finishReason: Anthropic.stopReasonOf(acc),
          ...(acc.stopSequence !== undefined ? { stopSequence: acc.stopSequence } : {}),
          usage: Anthropic.usageOf(acc)
        })
      }))
      return Stream.concat(deltas, end)
    }

    const generate = (model: string, request: GenerateRequest): Stream.Stream<GenerateEvent, CloudModelRequestError | UnsupportedOperation> =>
      Stream.unwrap(Effect.gen(function*() {
        const images = hasImages(request.messages)
        const tools = request.tools !== undefined && request.tools.length > 0 && request.toolChoice !== "none"
        yield* refuseLacking(model, [
          ["completion", "generate"],
          ...(images ? [["vision", "images"] as const] : []),
          ...(tools ? [["tools", "tools"] as const] : []),
          // Anthropic turns `reasoning: true` into extended thinking, which a model without it refuses
          // (chat completions send nothing for it: nothing to refuse there)
          ...(anthropic && request.reasoning === true ? [["thinking", "reasoning"] as const] : [])
        ])
        const url = unfetchedImageUrl(request.messages)
        if (url !== undefined) {
          return yield* new UnsupportedOperation({ backend: instance.name, operation: "images", reason: unfetchedImageReason(url) })
        }
        yield* requireKey(instance)
        const unsupported = anthropic ? Anthropic.unsupportedField(request) : OpenAi.unsupportedField(instance, request)
        if (unsupported !== undefined) {
          return yield* new UnsupportedOperation({ backend: instance.name, operation: unsupported.field, reason: unsupported.reason })
        }
        const startedAt = yield* Clock.currentTimeMillis
        const purpose = { operation: "generate", model }
        return anthropic ? generateAnthropic(model, request, purpose, startedAt) : generateOpenAi(model, request, purpose, startedAt)
      })).pipe(Stream.withSpan("CloudBackend.generate", { attributes: { instance: instance.name, model } }))

    const embed = (model: string, inputs: ReadonlyArray<string>): Effect.Effect<Embeddings, CloudModelRequestError | UnsupportedOperation> =>
      Effect.gen(function*() {
        if (anthropic || instance.embeddings === false) {
          return yield* Effect.fail(
            new UnsupportedOperation({ backend: instance.name, operation: "embeddings", reason: `${instance.type} offers no embeddings endpoint` })
          )
        }
        yield* refuseLacking(model, [["embedding", "embed"]])
        yield* requireKey(instance)
        const purpose = { operation: "embed", model }
        const body = yield* requestModelJson(
          ctx,
          HttpClientRequest.post("/embeddings").pipe(HttpClientRequest.bodyUnsafeJson({ model, input: [...inputs] })),
          purpose
        )
        const data = (body as { data?: Array<{ index?: number; embedding?: unknown }> }).data
        if (!Array.isArray(data) || data.length !== inputs.length || data.some((d) => !Array.isArray(d?.embedding))) {
          return yield* Effect.fail(dropped(instance, purpose, "the embeddings answer does not hold one vector per input"))
        }
        const vectors = [...data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((d) => d.embedding as Array<number>)
        const usage = (body as { usage?: { prompt_tokens?: number } }).usage
        return {
          model,
          backend: "cloud" as const,
          instance: instance.name,
          dimensions: vectors[0]?.length ?? 0,
          vectors,
          promptTokens: usage?.prompt_tokens ?? 0
        }
      }).pipe(Effect.withSpan("CloudBackend.embed", { attributes: { instance: instance.name, model } }))

    const noRerank = (reason: string) =>
      new UnsupportedOperation({ backend: instance.name, operation: "rerank", reason, suggestion: RERANK_ALTERNATIVES })

    // llama-server, vLLM, Jina and Cohere share one shape: `{ model, query, documents, top_n }` →
    // `results: [{ index, relevance_score }]`; usage is `usage.{prompt,total}_tokens` (llama-server,
    // Jina, vLLM) or `meta.tokens.input_tokens` (Cohere, which bills search units).
    const rerank = (model: string, request: RerankRequest): Effect.Effect<Reranking, CloudModelRequestError | UnsupportedOperation | ContextOverflow> =>
      Effect.gen(function*() {
        const endpoint = anthropic || instance.rerank === false ? undefined : instance.rerank ?? OPENAI_COMPATIBLE_RERANK
        if (endpoint === undefined) return yield* noRerank(`${instance.type} offers no rerank API`)
        yield* refuseLacking(model, [["rerank", "rerank"]])
        yield* requireKey(instance)
        const purpose = { operation: "rerank", model }
        const url = endpoint.fromOrigin === true ? new URL(endpoint.path, instance.baseUrl!).href : endpoint.path
        const answer = yield* requestJsonWith(
          ctx,
          HttpClientRequest.post(url).pipe(HttpClientRequest.bodyUnsafeJson({
            model,
            query: request.query,
            documents: [...request.documents],
            ...(request.topN !== undefined ? { top_n: request.topN } : {})
          })),
          purpose,
          (status, headers, body, now, said): CloudModelRequestError | UnsupportedOperation | ContextOverflow => {
            // llama-server started without --reranking answers 501; a server without the route 404/405
            // (llama-server "File Not Found", FastAPI "Not Found"): a 404 that does not name the model is no missing model
            if (status === 501 || status === 405 || (status === 404 && !(said ?? "").includes(model))) {
              return noRerank(`the server at ${instance.baseUrl} has no rerank API (HTTP ${status} on POST ${url.startsWith("http") ? new URL(url).pathname : url}${said !== undefined ? `: ${said}` : ""})`)
            }
            // llama-server: "input (N tokens) is too large to process. increase the physical batch size"
            if (status === 400 && said !== undefined && /too large to process|context length|maximum context/i.test(said)) {
              return new ContextOverflow({ model, backend: "cloud", instance: instance.name, operation: "rerank" })
            }
            return errorForModelStatus(instance, purpose, status, headers, body, now)
          }
        )
        const results = (answer as { results?: unknown }).results
        if (!Array.isArray(results)) return yield* Effect.fail(dropped(instance, purpose, "the rerank answer has no `results` array"))
        const scored: Array<{ index: number; relevanceScore: number }> = []
        for (const r of results) {
          const index = (r as { index?: unknown } | null)?.index
          const score = (r as { relevance_score?: unknown; score?: unknown } | null)?.relevance_score ?? (r as { score?: unknown } | null)?.score
          if (typeof index !== "number" || typeof score !== "number") {
            return yield* Effect.fail(dropped(instance, purpose, "a rerank result lacks a numeric `index` or `relevance_score`"))
          }
          scored.push({ index, relevanceScore: score })
        }
        const usage = (answer as { usage?: { prompt_tokens?: unknown; total_tokens?: unknown } }).usage
        const meta = (answer as { meta?: { tokens?: { input_tokens?: unknown } } }).meta
        const tokens = [usage?.prompt_tokens, usage?.total_tokens, meta?.tokens?.input_tokens].find((n): n is number => typeof n === "number")
        return { model, backend: "cloud" as const, instance: instance.name, results: scored, promptTokens: tokens ?? 0 }
      }).pipe(Effect.withSpan("CloudBackend.rerank", { attributes: { instance: instance.name, model, documents: request.documents.length } }))

    // What is known of a model: that the provider offers it (its models listing, or the config's
    // `models`) and what it can do (the preset's rules). Without a key, or with the provider out of
    // reach, the listing cannot be asked: what the rules know is shown all the same, and `listed`
    // says it was not checked.
    const info = (model: string): Effect.Effect<ModelInfo, CloudModelRequestError> =>
      Effect.gen(function*() {
        const known = (listed: string): ModelInfo => ({
          name: model,
          backend: "cloud" as const,
          instance: instance.name,
          chatTemplate: false,
          ...withCapabilities(model),
          details: { provider: instance.type, endpoint: instance.baseUrl!, listed }
        })
        if (instance.models === undefined && needsKey(instance) && instance.apiKey === undefined) {
          return known(`not checked (no API key${instance.keyVariable !== undefined ? `: set ${instance.keyVariable}` : ""})`)
        }
        const names = yield* Effect.either(modelNames)
        if (Either.isLeft(names)) {
          if (names.left._tag === "BackendUnavailable") return known(`not checked (${names.left.message})`)
          return yield* Effect.fail(names.left)
        }
        if (!names.right.includes(model)) {
          return yield* Effect.fail(
            new ModelNotFound({
              model,
              backend: "cloud",
              instance: instance.name,
              operation: "info",
              suggestion: `check the name; \`llmspell model list --backend cloud\` lists the models ${instance.name} offers`
            })
          )
        }
        return known("yes")
      })

    return {
      name: instance.name,
      type: "cloud",
      status: status.pipe(Effect.withSpan("CloudBackend.status", { attributes: { instance: instance.name } })),
      list: Effect.map(modelNames, (names) => names.map(toLocal)),
      info,
      pull: (_model) => Stream.fail(notApplicable("pull")),
      remove: (_model) => Effect.fail(notApplicable("remove")),
      verify: (_model) => Effect.fail(notApplicable("verify")),
      generate,
      embed,
      rerank
    } satisfies Backend
  })

/** The cloud backend factory. */
export const factory: BackendFactory<CloudInstanceConfig> = { type: "cloud", make }

/** CloudBackend over the HTTP clients of @effect/ai-openai and @effect/ai-anthropic. */
export const layer: Layer.Layer<CloudBackendFactory> = Layer.succeed(CloudBackendFactory, factory)

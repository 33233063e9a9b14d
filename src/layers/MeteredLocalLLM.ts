/**
 * The LocalLLM facade with its figures kept: every generation (`generate`, `run`) and pull that
 * passes through it updates the metrics of `domain/Metrics.ts` (time to first token, time per
 * output token, end-to-end time, tokens, outcomes, pull bytes), and `ps` reports per loaded model
 * what this facade saw it serve: requests, the tokens/s of its last answers, its prompt-cache hit
 * rate. The server and the embedded CLI both use it (LocalLLMLive wraps its facade in it), so a
 * connected `llmspell ps` shows the server's figures.
 *
 * Labels are the spec of the model that answered (from the completion, so `tiny` and `tiny@gguf`
 * are one series) and its backend. A generation that fails before it answers is labelled with
 * the spec it was asked for only if that spec has answered before, else `unknown`: a request
 * naming models that do not exist cannot grow the label set.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Cause from "effect/Cause"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as M from "../domain/Metrics.js"
import type { BackendType, Completion, GenerateEvent, GenerateRequest, LoadedModel, PullProgress, Usage } from "../domain/Types.js"
import type { LocalLLMService } from "../services/LocalLLM.js"

/** Answers whose rate `ps` averages. */
export const RECENT_ANSWERS = 8

/** What the facade saw one model serve. */
interface ModelStats {
  requests: number
  /** Output tokens/s of the last RECENT_ANSWERS answers, oldest first. */
  readonly rates: Array<number>
  promptTokens: number
  cachedPromptTokens: number
  /** True once the backend reported cached tokens at all (else the hit rate is unknown, not 0). */
  cacheReported: boolean
}

/** The cached part of a prompt, where the backend reports it (a field newer Usage types carry). */
export const cachedTokensOf = (usage: Usage): number | undefined => {
  const cached = (usage as { readonly cachedPromptTokens?: unknown }).cachedPromptTokens
  return typeof cached === "number" && Number.isFinite(cached) && cached >= 0 ? cached : undefined
}

const nowSeconds = Effect.map(Clock.currentTimeNanos, (n) => Number(n) / 1e9)

const isOutput = (event: GenerateEvent) => event._tag === "TextDelta" || event._tag === "ReasoningDelta" || event._tag === "ToolCall"

/** How the facade is watched. */
export interface MeteredOptions {
  /** Prompt and answer text in the spans (the user's opt-in: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT). */
  readonly captureContent?: boolean
}

/** The GenAI semantic conventions' attributes of a request (no content). */
const requestAttributes = (operation: "chat" | "embeddings", spec: string, request?: GenerateRequest) => ({
  "gen_ai.operation.name": operation,
  "gen_ai.request.model": spec,
  ...(request?.maxTokens !== undefined ? { "gen_ai.request.max_tokens": request.maxTokens } : {}),
  ...(request?.temperature !== undefined ? { "gen_ai.request.temperature": request.temperature } : {}),
  ...(request?.topP !== undefined ? { "gen_ai.request.top_p": request.topP } : {}),
  ...(request?.seed !== undefined ? { "gen_ai.request.seed": request.seed } : {})
})

/** What a finished completion adds to its span. */
const completionAttributes = (completion: Completion, captureContent: boolean) => ({
  "gen_ai.response.model": completion.model,
  "gen_ai.provider.name": completion.backend === "cloud" ? completion.instance : completion.backend,
  "gen_ai.usage.input_tokens": completion.usage.promptTokens,
  "gen_ai.usage.output_tokens": completion.usage.completionTokens,
  "gen_ai.response.finish_reasons": [completion.finishReason],
  ...(cachedTokensOf(completion.usage) !== undefined ? { "gen_ai.usage.cache_read.input_tokens": cachedTokensOf(completion.usage)! } : {}),
  ...(captureContent
    ? { "gen_ai.output.messages": JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: completion.text }], finish_reason: completion.finishReason }]) }
    : {})
})

const inputMessages = (request: GenerateRequest) =>
  JSON.stringify(request.messages.map((m) => ({ role: m.role, parts: [{ type: "text", content: m.content }] })))

/** Wraps a facade; the per-model figures live as long as the result. */
export const make = (llm: LocalLLMService, options: MeteredOptions = {}): LocalLLMService => {
  const captureContent = options.captureContent === true
  const stats = new Map<string, ModelStats>()
  // the spec a request named → the spec of the model that answered it (for labelling failures)
  const answeredAs = new Map<string, string>()

  const statsOf = (spec: string): ModelStats => {
    let s = stats.get(spec)
    if (s === undefined) {
      s = { requests: 0, rates: [], promptTokens: 0, cachedPromptTokens: 0, cacheReported: false }
      stats.set(spec, s)
    }
    return s
  }

  const labelsFor = (asked: string, backend?: BackendType) => {
    const spec = answeredAs.get(asked)
    return { model: spec !== undefined ? M.modelLabel(spec) : "unknown", backend: backend ?? (spec !== undefined ? backendOf(spec) : "unknown") }
  }
  const backends = new Map<string, BackendType>()
  const backendOf = (spec: string) => backends.get(spec) ?? "unknown"

  /** Records a finished completion: tokens, outcome, the per-model figures; its labels. */
  const finished = (asked: string, completion: Completion, firstAt: number | undefined, startedAt: number, endedAt: number) =>
    Effect.suspend(() => {
      const spec = M.specOf({ name: completion.model, backend: completion.backend, instance: completion.instance })
      answeredAs.set(asked, spec)
      backends.set(spec, completion.backend)
      const labels = { model: M.modelLabel(spec), backend: completion.backend }
      const { promptTokens, completionTokens } = completion.usage
      const cached = cachedTokensOf(completion.usage)
      const s = statsOf(spec)
      s.requests += 1
      s.promptTokens += promptTokens
      if (cached !== undefined) {
        s.cacheReported = true
        s.cachedPromptTokens += cached
      }
      const decodeSeconds = firstAt !== undefined ? endedAt - firstAt : undefined
      const rate = completion.timings.tokensPerSecond ??
        (decodeSeconds !== undefined && decodeSeconds > 0 && completionTokens > 1 ? (completionTokens - 1) / decodeSeconds : undefined)
      if (rate !== undefined && Number.isFinite(rate) && rate > 0) {
        s.rates.push(rate)
        if (s.rates.length > RECENT_ANSWERS) s.rates.shift()
      }
      const ttft = firstAt !== undefined
        ? firstAt - startedAt
        : completion.timings.timeToFirstTokenMs !== undefined
        ? completion.timings.timeToFirstTokenMs / 1000
        : undefined
      return Effect.all([
        Metric.increment(M.labelled(M.generations, { ...labels, outcome: completion.finishReason })),
        Metric.incrementBy(M.labelled(M.promptTokens, labels), promptTokens),
        Metric.incrementBy(M.labelled(M.completionTokens, labels), completionTokens),
        cached !== undefined ? Metric.incrementBy(M.labelled(M.cachedPromptTokens, labels), cached) : Effect.void,
        Metric.update(M.labelled(M.e2eRequestLatency, labels), endedAt - startedAt),
        ttft !== undefined ? Metric.update(M.labelled(M.timeToFirstToken, labels), ttft) : Effect.void,
        decodeSeconds !== undefined && completionTokens > 1
          ? Metric.update(M.labelled(M.timePerOutputToken, labels), decodeSeconds / (completionTokens - 1))
          : Effect.void
      ], { discard: true })
    })

  /** Records a generation that ended without its completion: failed, or the caller went away. */
  const unfinished = (asked: string, cause: Cause.Cause<unknown> | undefined, startedAt: number, endedAt: number) =>
    Effect.suspend(() => {
      const labels = labelsFor(asked)
      const outcome = cause === undefined || Cause.isInterruptedOnly(cause) ? "cancelled" : "error"
      return Effect.zipRight(
        Metric.increment(M.labelled(M.generations, { ...labels, outcome })),
        Metric.update(M.labelled(M.e2eRequestLatency, labels), endedAt - startedAt)
      )
    })

  // The finish is recorded as its event passes (before a client can see the answer end); a stream
  // that ends without one is recorded by its finalizer (which runs before the server frees the slot).
  const generate: LocalLLMService["generate"] = (spec, request) =>
    Stream.unwrap(Effect.map(nowSeconds, (startedAt) => {
      let firstAt: number | undefined
      let done = false
      return llm.generate(spec, request).pipe(
        Stream.tap((event) =>
          Effect.gen(function*() {
            if (firstAt === undefined && isOutput(event)) firstAt = yield* nowSeconds
            if (event._tag === "Finish" && !done) {
              done = true
              yield* finished(spec, event.completion, firstAt, startedAt, yield* nowSeconds)
              yield* Effect.annotateCurrentSpan(completionAttributes(event.completion, captureContent))
            }
          })
        ),
        Stream.ensuringWith((exit) =>
          done
            ? Effect.void
            : Effect.flatMap(nowSeconds, (endedAt) => unfinished(spec, Exit.isFailure(exit) ? exit.cause : undefined, startedAt, endedAt))
        )
      )
    })).pipe(
      Stream.withSpan(`chat ${spec}`, {
        kind: "client",
        attributes: { ...requestAttributes("chat", spec, request), ...(captureContent ? { "gen_ai.input.messages": inputMessages(request) } : {}) }
      })
    )

  const answeredBroken = (cause: Cause.Cause<{ readonly _tag: string }>) => {
    const failure = Cause.failureOption(cause)
    return failure._tag === "Some" && (failure.value._tag === "SchemaViolation" || failure.value._tag === "IncompleteAnswer")
  }

  const run: LocalLLMService["run"] = (spec, request) =>
    Effect.flatMap(nowSeconds, (startedAt) =>
      llm.run(spec, request).pipe(
        Effect.tap((completion) => Effect.annotateCurrentSpan(completionAttributes(completion, captureContent))),
        Effect.onExit((exit) =>
          Effect.flatMap(nowSeconds, (endedAt) =>
            Exit.isSuccess(exit)
              ? finished(spec, exit.value, undefined, startedAt, endedAt)
              : answeredBroken(exit.cause)
              // an answer that came but broke its schema was still generated; its tokens are not known here
              ? Metric.increment(M.labelled(M.generations, { ...labelsFor(spec), outcome: "error" }))
              : unfinished(spec, exit.cause, startedAt, endedAt)
          )
        )
      )).pipe(
        Effect.withSpan(`chat ${spec}`, {
          kind: "client",
          attributes: { ...requestAttributes("chat", spec, request), ...(captureContent ? { "gen_ai.input.messages": inputMessages(request) } : {}) }
        })
      )

  const embed: LocalLLMService["embed"] = (spec, inputs) =>
    llm.embed(spec, inputs).pipe(
      Effect.tap((result) =>
        Effect.annotateCurrentSpan({
          "gen_ai.response.model": result.model,
          "gen_ai.usage.input_tokens": result.promptTokens,
          "gen_ai.embeddings.dimension.count": result.dimensions
        })
      ),
      Effect.withSpan(`embeddings ${spec}`, { kind: "client", attributes: requestAttributes("embeddings", spec) })
    )

  const pull: LocalLLMService["pull"] = (spec, options) =>
    // a dry run transfers nothing and is no pull
    options?.dryRun === true ? llm.pull(spec, options) : Stream.suspend(() => {
      let last: PullProgress | undefined
      let verifyFailed = false
      return llm.pull(spec, options).pipe(
        Stream.tap((event) =>
          Effect.suspend(() => {
            const previous = last
            last = event
            // bytes already there when the pull (re)started are not transferred now
            const delta = previous === undefined ? 0 : event.completedBytes - previous.completedBytes
            return delta > 0 ? Metric.incrementBy(M.labelled(M.pullBytes, { backend: event.backend }), delta) : Effect.void
          })
        ),
        Stream.tapError((e) =>
          Effect.sync(() => {
            verifyFailed = (e as { readonly _tag?: string })._tag === "ChecksumMismatch"
          })
        ),
        Stream.ensuringWith((exit) =>
          Effect.suspend(() => {
            const backend = last?.backend ?? "unknown"
            const outcome = Exit.isSuccess(exit)
              ? last?.result !== undefined ? "success" : "cancelled"
              : verifyFailed
              ? "verify_failed"
              : Cause.isInterruptedOnly(exit.cause)
              ? "cancelled"
              : "error"
            return Effect.zipRight(
              Metric.increment(M.labelled(M.pulls, { backend, outcome })),
              verifyFailed ? Metric.increment(M.labelled(M.pullVerifyFailures, { backend })) : Effect.void
            )
          })
        )
      )
    })

  /** A loaded model with what this facade saw it serve (nothing added for a model it never served). */
  const withFigures = (model: LoadedModel): LoadedModel => {
    const s = stats.get(M.specOf(model))
    if (s === undefined || model.purpose === "embedding") return model
    const rate = s.rates.length > 0 ? s.rates.reduce((a, b) => a + b, 0) / s.rates.length : undefined
    return {
      ...model,
      requests: s.requests,
      ...(rate !== undefined ? { tokensPerSecond: Math.round(rate * 10) / 10 } : {}),
      ...(s.cacheReported && s.promptTokens > 0 ? { cacheHitRate: s.cachedPromptTokens / s.promptTokens } : {})
    }
  }

  return {
    ...llm,
    generate,
    run,
    embed,
    pull,
    ps: (filter) => Effect.map(llm.ps(filter), (models) => models.map(withFigures))
  }
}

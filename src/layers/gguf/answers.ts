/**
 * A GGUF answer as the backend reports it: the loader's events (text, thinking, tool calls, done)
 * become `GenerateEvent`s, the final `Completion` gets its usage and timings (load, time to first
 * token, tokens/s, prompt tokens/s, all on the Clock), and what the grammar could not enforce is
 * checked before the answer counts as one: a tool call's parameters against its schema, a JSON
 * answer breaking a keyword the grammar does not enforce (`pattern`, numeric bounds, …) is a
 * `SchemaViolation`; one cut off by `maxTokens` finishes with `length` and `incomplete`
 * (`constrainedOutcome`), never half a document reported as a whole one.
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { SchemaViolation } from "../../domain/Errors.js"
import { checkJsonSchema } from "../../domain/JsonSchemaCheck.js"
import type { Completion, GenerateEvent, GenerateRequest, ToolCall } from "../../domain/Types.js"
import type { LoaderEvent } from "../../services/LlamaLoader.js"
import { constrainedOutcome, type GenerationPlan } from "./JsonSchemaGrammar.js"

const nowMs = Effect.map(Clock.currentTimeNanos, (n) => Number(n) / 1e6)

/** A tool call whose name is not among the tools, or whose parameters break its schema. */
const checkToolCall = (name: string, request: GenerateRequest, call: ToolCall): SchemaViolation | undefined => {
  const tool = request.tools?.find((t) => t.name === call.name)
  const problem = tool === undefined
    ? `it called ${JSON.stringify(call.name)}, which is not among the tools`
    : checkJsonSchema(tool.parameters, call.params)
  return problem === undefined ? undefined : new SchemaViolation({
    model: name,
    problem: `the parameters of its call to ${call.name}: ${problem}`,
    answer: JSON.stringify(call.params).slice(0, 400)
  })
}

/** What the answer is measured against. */
export interface AnswerContext {
  /** The model's name as resolved, and where it runs. */
  readonly name: string
  readonly instance: string
  readonly request: GenerateRequest
  readonly plan: GenerationPlan
  /** Clock ms when the request arrived, and when generation began (the model loaded). */
  readonly start: number
  readonly generationStart: number
  readonly loadMs: number
}

/**
 * The mapping of one answer's events, a chunk at a time, with its state (first token, thinking,
 * tool calls). A forced tool call arrives whole at the end: it is no first token, so it gives no
 * TTFT or tokens/s.
 */
export const makeAnswer = (context: AnswerContext) => {
  const { name, plan, request } = context
  let firstAt: number | undefined
  let reasoning = ""
  const toolCalls: Array<ToolCall> = []

  const finish = (event: Extract<LoaderEvent, { _tag: "Done" }>, now: number): Completion => {
    const first = firstAt ?? now
    const generating = (now - first) / 1000
    const prefill = (first - context.generationStart) / 1000
    return {
      model: name,
      backend: "gguf",
      instance: context.instance,
      text: event.text,
      ...(reasoning.length > 0 ? { reasoning } : {}),
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      finishReason: toolCalls.length > 0 ? "tool-calls" : event.finishReason,
      ...(event.maxTokensCapped !== undefined ? { maxTokensCapped: event.maxTokensCapped } : {}),
      ...(event.stopSequence !== undefined && toolCalls.length === 0 ? { stopSequence: event.stopSequence } : {}),
      usage: {
        promptTokens: event.promptTokens,
        ...(event.cachedPromptTokens !== undefined ? { cachedPromptTokens: event.cachedPromptTokens } : {}),
        completionTokens: event.completionTokens,
        totalTokens: event.promptTokens + event.completionTokens
      },
      timings: {
        loadMs: context.loadMs,
        ...(firstAt !== undefined ? { timeToFirstTokenMs: firstAt - context.start } : {}),
        totalMs: now - context.start,
        ...(event.completionTokens > 1 && generating > 0 ? { tokensPerSecond: (event.completionTokens - 1) / generating } : {}),
        // the tokens evaluated, not those the sequence's cache already held
        ...(firstAt !== undefined && prefill > 0
          ? { promptTokensPerSecond: (event.promptTokens - (event.cachedPromptTokens ?? 0)) / prefill }
          : {})
      }
    }
  }

  const one = (event: LoaderEvent, now: number): Either.Either<GenerateEvent, SchemaViolation> => {
    switch (event._tag) {
      case "Text":
        firstAt ??= now
        return Either.right({ _tag: "TextDelta", text: event.text })
      case "Reasoning":
        firstAt ??= now
        reasoning += event.text
        return Either.right({ _tag: "ReasoningDelta", text: event.text })
      case "ToolCall": {
        const problem = checkToolCall(name, request, event.call)
        if (problem !== undefined) return Either.left(problem)
        toolCalls.push(event.call)
        return Either.right({ _tag: "ToolCall", call: event.call })
      }
      case "Done": {
        // cut by maxTokens is an outcome (finishReason length, `incomplete`), not an error
        return Either.map(constrainedOutcome(name, plan, request, finish(event, now)), (completion) => ({ _tag: "Finish", completion }) as const)
      }
    }
  }

  // a chunk at a time (what arrived from the loader together), one Clock read for all of it: the
  // per-element Effect of a mapEffect cost more host CPU than the link itself (BENCHMARKS.md)
  return (events: Chunk.Chunk<LoaderEvent>): Effect.Effect<Chunk.Chunk<GenerateEvent>, SchemaViolation> =>
    Effect.flatMap(nowMs, (now) => {
      const out: Array<GenerateEvent> = []
      for (const event of events) {
        const mapped = one(event, now)
        if (Either.isLeft(mapped)) return Effect.fail(mapped.left)
        out.push(mapped.right)
      }
      return Effect.succeed(Chunk.unsafeFromArray(out))
    })
}

/** Clock ms now (for `AnswerContext`). */
export const answerClock = nowMs

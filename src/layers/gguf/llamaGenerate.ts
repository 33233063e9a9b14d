/**
 * One generation on a model loaded in this process (`llama.ts`): a free context sequence taken
 * from the model's queue, the request's plan (`JsonSchemaGrammar.generationPlan`: free text,
 * node-llama-cpp's function calling, or a JSON-schema grammar), the prompt measured against the
 * context before anything runs, and node-llama-cpp's `LlamaChat.generateResponse` streamed as
 * `LoaderEvent`s (text coalesced, a grammar-forced tool call parsed at the end).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import type {
  ChatHistoryItem,
  ChatModelFunctions,
  LlamaChat,
  LlamaChatResponse,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
  LLamaContextualRepeatPenalty,
  Token,
  TokenBias
} from "node-llama-cpp"
import { BackendError, ContextOverflow } from "../../domain/Errors.js"
import type { FinishReason, GenerateRequest, ToolCall } from "../../domain/Types.js"
import type { LoaderEvent } from "../../services/LlamaLoader.js"
import { toHistory } from "./chatHistory.js"
import { type GenerationPlan, generationPlan } from "./JsonSchemaGrammar.js"
import { grammarBannedTokens, grammarBias } from "./llamaGrammar.js"
import { type LogBuffer, type NodeLlamaCpp, toBackendError } from "./llamaRuntime.js"
import { copySource } from "./sequenceChoice.js"
import type * as SequenceQueue from "./sequenceQueue.js"

/**
 * Which of the request's stop strings ended the answer: node-llama-cpp reports the trigger it
 * matched (`customStopTrigger`, its parts as text or tokens); the string given back is the request's own.
 */
const stopSequenceOf = (response: LlamaChatResponse, stop: ReadonlyArray<string> | undefined): string | undefined => {
  if (response.metadata.stopReason !== "customStopTrigger" || stop === undefined) return undefined
  const text = response.metadata.customStopTrigger.filter((p): p is string => typeof p === "string").join("")
  return stop.find((s) => s === text) ?? (stop.length === 1 ? stop[0] : undefined)
}

/**
 * The prompt's tokens as the model sees them: the chat template applied to the history, with the
 * functions node-llama-cpp describes in it. One count for a generation's prompt and for
 * `countPromptTokens`, so a count and the usage of the same request agree.
 */
const promptTokensOf = (
  chatWrapper: LlamaChat["chatWrapper"],
  model: LlamaModel,
  history: ReadonlyArray<ChatHistoryItem>,
  plan: GenerationPlan
): Array<Token> =>
  chatWrapper.generateContextState({
    chatHistory: [...history],
    ...(plan._tag === "Functions" ? { availableFunctions: plan.functions as ChatModelFunctions } : {})
  }).contextText.tokenize(model.tokenizer)

const promptTokenCount = (...args: Parameters<typeof promptTokensOf>): number => promptTokensOf(...args).length

/** Counts a request's prompt without generating (no sequence is taken). */
export const countPromptWith = (chatWrapper: LlamaChat["chatWrapper"], model: LlamaModel, instance: string | undefined) =>
(request: GenerateRequest): Effect.Effect<number, BackendError> =>
  Effect.gen(function*() {
    const plan = yield* Either.mapLeft(
      generationPlan(request),
      (e) => new BackendError({ backend: "gguf", operation: "count tokens", reason: e.message, suggestion: e.hint })
    )
    return yield* Effect.try({
      try: () => promptTokenCount(chatWrapper, model, toHistory(request, plan._tag === "Grammar" ? plan.instructions : undefined), plan),
      catch: toBackendError("count tokens", instance)
    })
  }).pipe(Effect.withSpan("LlamaLoader.countPromptTokens"))

const finishReason = (response: LlamaChatResponse): FinishReason => {
  switch (response.metadata.stopReason) {
    case "maxTokens":
      return "length"
    case "abort":
      return "abort"
    case "eogToken":
    case "stopGenerationTrigger":
    case "customStopTrigger":
      return "stop"
    case "functionCalls":
      return "tool-calls"
    default:
      return "unknown"
  }
}

/**
 * Text reaches the stream through a buffer flushed by a timer, at most every `TEXT_FLUSH_MS` (the
 * first chunk goes at once, so time to first token stays exact). Generation is a loop on the JS
 * thread: llama.cpp decodes a token, node-llama-cpp samples it and calls onTextChunk, then queues
 * the next decode. An emit per token into `Stream.asyncScoped` (a fiber and a promise each) and
 * the consumer's fiber, both run as microtasks inside that loop, doubled the JS time between two
 * decodes (0.29 → 0.55 ms) and cost ~10% of the tokens/s of a 60M model (BENCHMARKS.md). A timer
 * callback runs in a later event-loop turn, while llama.cpp decodes the next token (a
 * `setImmediate` flush would run before node-llama-cpp's own `setImmediate` dispatch with
 * parallel > 1), and every element through the Effect stream costs ~0.2 ms of CPU, so several
 * tokens are sent as one chunk: on a shared 2-core machine that CPU is taken from llama.cpp.
 */
const TEXT_FLUSH_MS = 25

const makeTextBuffer = (emitText: (text: string, kind: "text" | "reasoning") => void) => {
  let pending = ""
  let pendingKind: "text" | "reasoning" = "text"
  let first = true
  let timer: ReturnType<typeof setTimeout> | undefined
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    if (pending.length === 0) return
    const text = pending
    pending = ""
    emitText(text, pendingKind)
  }
  return {
    /** Main-response text (the hot path: a string append, a timer at most every TEXT_FLUSH_MS). */
    push: (text: string) => {
      if (text.length === 0) return
      if (pendingKind !== "text") {
        flush()
        pendingKind = "text"
      }
      if (first) {
        first = false
        emitText(text, "text")
        return
      }
      pending += text
      timer ??= setTimeout(flush, TEXT_FLUSH_MS)
    },
    /** Thinking text: coalesced the same way, never mixed into one chunk with main text. */
    pushReasoning: (text: string) => {
      if (text.length === 0) return
      if (pendingKind !== "reasoning") {
        flush()
        pendingKind = "reasoning"
      }
      pending += text
      timer ??= setTimeout(flush, TEXT_FLUSH_MS)
    },
    /** Emits what is buffered now (before the end of the stream). */
    flush,
    /** Drops what is buffered (the stream is gone). */
    cancel: () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      pending = ""
    }
  }
}

/** The answer inside a cut-off `{"answer": …` alternative (grammar JSON is compact), or "" for a cut-off tool call. */
const partialAnswer = (text: string): string => {
  const prefix = /^\{"answer":/.exec(text)
  return prefix === null ? "" : text.slice(prefix[0].length)
}

/** The JSON a grammar-forced tool call (or its `{ answer }` alternative) ends with, or undefined when it is cut off. */
const parseForced = (text: string): { readonly name: string; readonly arguments: unknown } | { readonly answer: unknown } | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value === "object" && value !== null && "name" in value && typeof value.name === "string") {
      return { name: value.name, arguments: "arguments" in value ? value.arguments : {} }
    }
    if (typeof value === "object" && value !== null && "answer" in value) return { answer: value.answer }
    return undefined
  } catch {
    return undefined
  }
}

/**
 * The request's penalties as node-llama-cpp's `repeatPenalty` (llama.cpp's penalties sampler):
 * absent when the request sets none, so node-llama-cpp's defaults stay; `repeatLastN` 0 turns
 * every penalty off, -1 looks back over the whole context.
 */
const repeatPenaltyOf = (request: GenerateRequest, contextSize: number): { readonly repeatPenalty?: LLamaContextualRepeatPenalty | false } => {
  const { frequencyPenalty, presencePenalty, repeatLastN, repeatPenalty } = request
  if (frequencyPenalty === undefined && presencePenalty === undefined && repeatPenalty === undefined && repeatLastN === undefined) return {}
  if (repeatLastN === 0) return { repeatPenalty: false }
  return {
    repeatPenalty: {
      ...(repeatPenalty !== undefined ? { penalty: repeatPenalty } : {}),
      ...(frequencyPenalty !== undefined ? { frequencyPenalty } : {}),
      ...(presencePenalty !== undefined ? { presencePenalty } : {}),
      ...(repeatLastN !== undefined ? { lastTokens: repeatLastN === -1 ? contextSize : repeatLastN } : {})
    }
  }
}

/**
 * The token bias of one generation: the tokens a grammar bans (per model, `llamaGrammar.ts`),
 * and the request's `logitBias` (OpenAI's: added to the logits, by token id) on top; none
 * when neither applies.
 */
const tokenBiasFor = (
  lib: NodeLlamaCpp,
  model: LlamaModel,
  constrained: boolean,
  logitBias: Readonly<Record<string, number>> | undefined
): TokenBias | undefined => {
  const banned = constrained ? grammarBias(lib, model) : undefined
  if (logitBias === undefined || Object.keys(logitBias).length === 0) return banned
  const bias = new lib.TokenBias(model.tokenizer)
  for (const token of constrained ? grammarBannedTokens(model) : []) bias.set(token, "never")
  // an id beyond the vocabulary would index past llama.cpp's logits: it names no token, so it is left out
  const vocabulary = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: { length?: unknown } } } }).tokenizer?.ggml?.tokens?.length
  for (const [id, logit] of Object.entries(logitBias)) {
    const token = Number(id)
    if (typeof vocabulary === "number" && token < vocabulary) bias.set(token as Token, { logit })
  }
  return bias
}

/** A context sequence and the LlamaChat bound to it, handed to one request at a time. */
export interface SequenceSlot {
  readonly sequence: LlamaContextSequence
  readonly chat: LlamaChat
  /** The prompt length of the last request that ran on it (0: none yet): what of its cache is prompt, what answer. */
  lastPromptTokens: number
}

/** node-llama-cpp's own (internal) copy of one sequence's KV state into another (`llama_memory_seq_cp`). */
type CopyingSequence = LlamaContextSequence & {
  readonly _copyStateFromOtherSequence?: (source: LlamaContextSequence, upToTokenIndex: number) => Promise<boolean>
}

/**
 * Copies the first `upTo` tokens of one sequence's KV cache into another, or undefined where that
 * cannot be done: node-llama-cpp without the (internal) method, or a model whose cache needs
 * checkpoints to reuse a prefix (recurrent, hybrid, sliding-window). It is a buffer copy in
 * llama.cpp (about a millisecond here), not an evaluation; a copy that did not land whole leaves
 * the target empty, never holding tokens its cache lacks.
 */
export const prefixCopier = (sample: LlamaContextSequence) => {
  if (typeof (sample as CopyingSequence)._copyStateFromOtherSequence !== "function" || sample.needsCheckpoints) return undefined
  return async (target: SequenceSlot, source: SequenceSlot, upTo: number): Promise<void> => {
    try {
      const copied = await (target.sequence as CopyingSequence)._copyStateFromOtherSequence!(source.sequence, upTo)
      if (!copied) await target.sequence.clearHistory()
    } catch {
      await target.sequence.clearHistory().catch(() => undefined)
    }
  }
}

/** Extra callbacks for one generation. */
export interface GenerateHooks {
  /** Work on the request starts: its prompt is rendered (chat template) and tokenized next. */
  readonly onStart?: () => void
  /**
   * The prompt is rendered and tokenized; a sequence is chosen for it next (by what each one's
   * cache holds), waiting while none is free, then generation proper starts.
   */
  readonly onPrepared?: (promptTokens: number) => void
  /** After each text chunk (the worker's test-only crash hook). */
  readonly onText?: () => void
}

/** What a generation runs on: one loaded chat model of one loader. */
export interface GenerationTarget {
  readonly lib: NodeLlamaCpp
  readonly model: LlamaModel
  readonly context: LlamaContext
  /** The model's chat wrapper (resolved once; every slot's LlamaChat uses it): the prompt is rendered before a sequence is chosen. */
  readonly chatWrapper: LlamaChat["chatWrapper"]
  /**
   * The sequences; a request takes one for its life and gives it back. It is chosen by the
   * prompt's tokens: the one whose KV cache holds the longest prefix of it (`sequenceChoice.ts`).
   */
  readonly sequences: SequenceQueue.SequenceQueue<SequenceSlot, ReadonlyArray<number>>
  /** Every sequence of the model (a prefix is copied from a free one into the chosen one). */
  readonly slots: ReadonlyArray<SequenceSlot>
  /** Copies a prefix between sequences (`prefixCopier`); absent where the model's cache cannot. */
  readonly copyPrefix: ((target: SequenceSlot, source: SequenceSlot, upTo: number) => Promise<void>) | undefined
  readonly instance: string | undefined
  /** The model's name, for errors. */
  readonly modelName: string
  readonly logs: LogBuffer
  /** The loader's grammar cache. */
  readonly grammarFor: (model: LlamaModel, plan: GenerationPlan) => Effect.Effect<LlamaGrammar | undefined, BackendError>
}

/** Streams one generation on a loaded chat model. */
export const generateOn = (
  target: GenerationTarget,
  request: GenerateRequest,
  hooks: GenerateHooks
): Stream.Stream<LoaderEvent, BackendError | ContextOverflow> => {
  const { chatWrapper, context, copyPrefix, grammarFor, instance, lib, logs, model, modelName, sequences, slots } = target
  return Stream.asyncPush<LoaderEvent, BackendError | ContextOverflow>((emit) =>
    Effect.gen(function*() {
      // the host has already refused a schema the grammar cannot take (same pure function)
      const plan = yield* Either.mapLeft(
        generationPlan(request),
        (e) => new BackendError({ backend: "gguf", operation: "generate", reason: e.message, suggestion: e.hint })
      )
      const grammar = yield* grammarFor(model, plan)
      const bias = tokenBiasFor(lib, model, grammar !== undefined, request.logitBias)
      // a forced tool call is one JSON document, parsed at the end: no text is streamed for it
      const forced = plan._tag === "Grammar" && plan.output !== "answer"
      const showReasoning = request.reasoning !== false
      // The prompt's tokens as LlamaChat will evaluate them (the same wrapper and history), before a
      // sequence is chosen: the choice compares them with what each sequence's KV cache holds.
      hooks.onStart?.()
      const history = toHistory(request, plan._tag === "Grammar" ? plan.instructions : undefined)
      const prompt = yield* Effect.try({
        try: () => promptTokensOf(chatWrapper, model, history, plan),
        catch: toBackendError("generate", instance)
      })
      const promptTokens = prompt.length
      hooks.onPrepared?.(promptTokens)
      // LlamaChat silently drops earlier messages when the prompt and one free token do not fit,
      // and shifts the context (erasing tokens) when it fills while generating: refuse the first
      // here (before waiting for a sequence), and cap maxTokens to what is left so the second cannot happen
      const overflow = () =>
        new ContextOverflow({
          model: modelName,
          backend: "gguf",
          ...(instance !== undefined ? { instance } : {}),
          promptTokens,
          contextSize: context.contextSize
        })
      const room = context.contextSize - promptTokens - 1
      if (room < 1) return yield* overflow()
      // A disposed sequence frees its slot asynchronously (an immediate getSequence() can still
      // throw "No sequences left"), so sequences are created once and handed round, each keeping
      // its KV cache: a conversation's next turn gets the one holding its history.
      const slot = yield* sequences.take(prompt)
      const { chat } = slot
      // A prefix another sequence holds (an agent's system prompt and tools, another conversation's
      // history after an edit) is copied in rather than evaluated again, while that one is lent
      // (uninterruptible: a copy is a buffer copy, and must not land under the next request).
      if (copyPrefix !== undefined) {
        const others = slots.flatMap((other, id) =>
          other === slot ? [] : [{ id, tokens: other.sequence.contextTokens, promptTokens: other.lastPromptTokens, lastUsed: 0 }]
        )
        const source = copySource(chat.sequence.contextTokens, others, prompt)
        if (source !== undefined) {
          yield* sequences.lend(slots[source.id]!, Effect.uninterruptible(Effect.promise(() => copyPrefix(slot, slots[source.id]!, source.upTo))))
        }
      }
      // what LlamaChat will not evaluate again: the prompt's prefix already in this sequence's KV
      // cache, less the last token (always evaluated, for the first answer token's logits)
      const cachedPromptTokens = Math.max(0, Math.min(chat.sequence.compareContextTokens(prompt).firstDifferentIndex, promptTokens - 1))
      // from here the sequence holds this prompt (whole, or as far as it was evaluated if the answer is interrupted)
      slot.lastPromptTokens = promptTokens
      return yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            const controller = new AbortController()
            const maxTokens = Math.min(request.maxTokens ?? room, room)
            const maxTokensCapped = request.maxTokens !== undefined && request.maxTokens > room
              ? { requested: request.maxTokens, used: maxTokens }
              : undefined
            let shifted = false
            // generated tokens, from the sequence's meter: LlamaChat's onToken misses tokens it holds
            // back (a partial stop trigger, an unfinished character) when maxTokens ends the answer
            const meter = chat.sequence.tokenMeter
            const outputBefore = meter.usedOutputTokens
            const buffer = makeTextBuffer((text, kind) => {
              emit.single(kind === "text" ? { _tag: "Text", text } : { _tag: "Reasoning", text })
              hooks.onText?.()
            })
            const mark = logs.mark
            const common = {
              signal: controller.signal,
              stopOnAbortSignal: true,
              maxTokens,
              // never reached after the checks above; if it is (a count that differs), stop rather than drop history
              contextShift: {
                strategy: ({ chatHistory }: { readonly chatHistory: ReadonlyArray<ChatHistoryItem> }) => {
                  shifted = true
                  controller.abort()
                  return { chatHistory: [...chatHistory] }
                }
              },
              ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
              ...(request.topP !== undefined ? { topP: request.topP } : {}),
              ...(request.topK !== undefined ? { topK: request.topK } : {}),
              ...(request.seed !== undefined ? { seed: request.seed } : {}),
              ...(request.minP !== undefined ? { minP: request.minP } : {}),
              ...repeatPenaltyOf(request, context.contextSize),
              ...(request.stop !== undefined && request.stop.length > 0 ? { customStopTriggers: request.stop } : {}),
              // reasoning: false spends no tokens thinking (the wrapper closes the thought at once)
              ...(request.reasoning === false
                ? { budgets: { thoughtTokens: 0 } }
                : request.reasoningBudget !== undefined
                ? { budgets: { thoughtTokens: request.reasoningBudget } }
                : {}),
              ...(bias !== undefined ? { tokenBias: bias } : {}),
              ...(forced ? {} : { onTextChunk: buffer.push }),
              // only for wrappers with thought segments: no per-token call on the plain text path
              ...(showReasoning && chat.chatWrapper.settings.segments?.thought !== undefined
                ? {
                  onResponseChunk: (chunk: { readonly type?: string | undefined; readonly segmentType?: string | undefined; readonly text: string }) => {
                    if (chunk.type === "segment" && chunk.segmentType === "thought") buffer.pushReasoning(chunk.text)
                  }
                }
                : {})
            }
            const generation: Promise<LlamaChatResponse<ChatModelFunctions | undefined>> = plan._tag === "Functions"
              ? chat.generateResponse(history, {
                ...common,
                functions: plan.functions as ChatModelFunctions,
                ...(request.parallelToolCalls === false ? { maxParallelFunctionCalls: 1 } : {})
              })
              : chat.generateResponse(history, { ...common, ...(grammar !== undefined ? { grammar } : {}) })
            let callCount = 0
            const nextId = () => `call_${++callCount}`
            const promise = generation.then(
              (response) => {
                buffer.flush()
                if (shifted) return emit.fail(overflow())
                let text = response.response
                let reason = finishReason(response)
                const stopSequence = stopSequenceOf(response, request.stop)
                for (const call of response.functionCalls ?? []) {
                  emit.single({ _tag: "ToolCall", call: { id: nextId(), name: call.functionName, params: call.params ?? {} } })
                  reason = "tool-calls"
                }
                if (forced && reason !== "abort") {
                  const parsed = parseForced(text)
                  if (parsed === undefined) {
                    // cut off (maxTokens): what was made of an `{ answer }` is the partial answer,
                    // a partial `{ name, arguments }` is no call and no text (the host marks it
                    // incomplete); anything else is not the grammar's JSON, which the host reports
                    if (reason === "length") {
                      text = partialAnswer(text)
                      if (text.length > 0) emit.single({ _tag: "Text", text })
                    } else reason = reason === "stop" ? "unknown" : reason
                  } else if ("name" in parsed) {
                    const call: ToolCall = { id: nextId(), name: parsed.name, params: parsed.arguments }
                    emit.single({ _tag: "ToolCall", call })
                    text = ""
                    reason = "tool-calls"
                  } else {
                    text = JSON.stringify(parsed.answer)
                    emit.single({ _tag: "Text", text })
                    reason = "stop"
                  }
                }
                emit.single({
                  _tag: "Done",
                  text,
                  promptTokens,
                  cachedPromptTokens,
                  completionTokens: meter.usedOutputTokens - outputBefore,
                  finishReason: reason,
                  ...(maxTokensCapped !== undefined ? { maxTokensCapped } : {}),
                  ...(reason === "stop" && stopSequence !== undefined ? { stopSequence } : {})
                })
                emit.end()
              },
              (e) => {
                buffer.flush()
                emit.fail(toBackendError("generate", instance, logs.since(mark))(e))
              }
            )
            return { controller, promise, buffer }
          },
          catch: (e) => (e instanceof ContextOverflow ? e : toBackendError("generate", instance)(e))
        }),
        // stopOnAbortSignal ends generation after the current token; then the sequence goes back to the queue
        ({ controller, promise, buffer }) =>
          Effect.promise(async () => {
            controller.abort()
            await promise
            buffer.cancel()
          })
      )
    }), { bufferSize: "unbounded" }).pipe(Stream.withSpan("LlamaLoader.generate"))
}

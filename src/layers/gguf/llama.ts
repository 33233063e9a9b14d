/**
 * The one place node-llama-cpp is called: its promises, abort signals and errors become Effects
 * with typed errors (`BackendError`, `DeviceUnavailable`) and spans named `LlamaLoader.*`. The
 * library is imported with `import()` on first use only, so `llmspell --help` never loads it.
 * Callers hand it validated files only (see `readGgufFile.ts`): llama.cpp aborts the process on
 * some malformed ones, which is why it normally runs inside a worker process (`ggufWorker*.ts`).
 * All state (the Llama per device, recent llama.cpp log lines) belongs to one `makeInProcessLoader()`.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Either from "effect/Either"
import type {
  ChatHistoryItem,
  ChatModelFunctionCall,
  ChatModelFunctions,
  ChatModelResponse,
  Llama,
  LlamaChat,
  LlamaChatResponse,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaGpuType,
  LlamaGrammar,
  LlamaModel,
  Token,
  TokenBias
} from "node-llama-cpp"
import { BackendError, ContextOverflow, DeviceUnavailable } from "../../domain/Errors.js"
import { type GenerationPlan, generationPlan } from "./JsonSchemaGrammar.js"
import * as SequenceQueue from "./sequenceQueue.js"
import type { FinishReason, GenerateRequest, ToolCall } from "../../domain/Types.js"
import type {
  Device,
  EmbeddedInput,
  LlamaLoaderService,
  LoadedModelHandle,
  LoadOptions,
  LoaderEvent,
  MemoryNeeds,
  RuntimeInfo
} from "../../services/LlamaLoader.js"

type NodeLlamaCpp = typeof import("node-llama-cpp")

const importLibrary = (): Promise<NodeLlamaCpp> => import("node-llama-cpp")

/** Recent llama.cpp warnings and errors: "Failed to load model" carries its real reason only here. */
class LogBuffer {
  private readonly lines: Array<string> = []
  private count = 0
  constructor(private readonly onLine?: (line: string) => void) {}
  remember(message: string) {
    const line = message.trim()
    if (line.length === 0) return
    this.onLine?.(line)
    this.lines.push(line)
    this.count++
    if (this.lines.length > 20) this.lines.shift()
  }
  /** A position to read new lines from. */
  get mark() {
    return this.count
  }
  since(mark: number) {
    return this.lines.slice(Math.max(0, this.lines.length - (this.count - mark)))
  }
}

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** Maps anything node-llama-cpp throws to a BackendError that says what to do. */
export const toBackendError = (operation: string, instance?: string, logs: ReadonlyArray<string> = []) => (e: unknown) => {
  const name = e instanceof Error ? e.name : ""
  const detail = logs.length > 0 ? ` (llama.cpp: ${logs.slice(-3).join("; ")})` : ""
  const suggestion = name === "InsufficientMemoryError"
    ? "lower context_size, gpu_layers or parallel in the config, or unload other models"
    : name === "DisposedError"
    ? "the model was unloaded while in use; run the request again"
    : name === "NoBinaryFoundError" || /NoBinaryFound/.test(describe(e))
    ? "node-llama-cpp has no llama.cpp build for this machine: install its prebuilt package " +
      "(`npm install @node-llama-cpp/linux-x64` on Linux x64), or build one with `npx --no node-llama-cpp source download`; " +
      "`llmspell model status` shows the GGUF backend's state"
    : undefined
  return new BackendError({
    backend: "gguf",
    ...(instance !== undefined ? { instance } : {}),
    operation,
    reason: `${describe(e)}${detail}`,
    ...(suggestion !== undefined ? { suggestion } : {}),
    cause: e
  })
}

// ---------------------------------------------------------------------------------------------
// The runtime: one Llama per device setting, created on first use
// ---------------------------------------------------------------------------------------------

interface Runtime {
  readonly llama: Llama
  readonly info: RuntimeInfo
}

const GPU_ORDER: ReadonlyArray<Exclude<Device, "cpu">> = ["cuda", "metal", "vulkan"]
const NAMES: Record<Device, string> = { cuda: "CUDA", metal: "Metal", vulkan: "Vulkan", cpu: "CPU" }

const describeRuntime = async (llama: Llama, device: Device, reason: string, warnings: Array<string>): Promise<RuntimeInfo> => {
  const lib = await importLibrary()
  const gpu = device !== "cpu"
  const vram = gpu ? await llama.getVramState().catch(() => undefined) : undefined
  return {
    device,
    reason,
    binary: llama.buildType === "prebuilt" ? "prebuilt" : "local build",
    libraryVersion: await lib.getModuleVersion().catch(() => undefined),
    llamaCppRelease: `${llama.llamaCppRelease.repo} ${llama.llamaCppRelease.release}`,
    gpuNames: gpu ? await llama.getGpuDeviceNames().catch(() => []) : [],
    vramTotalBytes: vram?.total,
    vramFreeBytes: vram?.free,
    warnings
  }
}

// ---------------------------------------------------------------------------------------------
// Chat history, finish reasons, text buffering
// ---------------------------------------------------------------------------------------------

const parseResult = (content: string): unknown => {
  try {
    return JSON.parse(content)
  } catch {
    return content
  }
}

/**
 * Our messages as node-llama-cpp's chat history. An assistant turn's tool calls and the `tool`
 * messages answering them (joined by call id) become its single `functionCall` items (name,
 * params and result together: node-llama-cpp has no call ids); a later assistant turn continues
 * that model response. `instructions` (the tools, for a grammar-forced call) go in the system prompt.
 */
export const toHistory = (request: GenerateRequest, instructions?: string): Array<ChatHistoryItem> => {
  const history: Array<ChatHistoryItem> = []
  const calls = new Map<string, ChatModelFunctionCall>()
  let lastModel: ChatModelResponse | undefined
  for (const m of request.messages) {
    if (m.role === "system") {
      history.push({ type: "system", text: m.content })
      lastModel = undefined
    } else if (m.role === "user") {
      history.push({ type: "user", text: m.content })
      lastModel = undefined
    } else if (m.role === "assistant") {
      // after tool results, the model's next words continue the same response
      const continues = lastModel !== undefined && lastModel.response.some((r) => typeof r === "object" && r.type === "functionCall")
      const item: ChatModelResponse = continues ? lastModel! : { type: "model", response: [] }
      if (m.content.length > 0) item.response.push(m.content)
      for (const call of m.toolCalls ?? []) {
        const functionCall: ChatModelFunctionCall = { type: "functionCall", name: call.name, params: call.params, result: undefined }
        calls.set(call.id, functionCall)
        item.response.push(functionCall)
      }
      if (!continues) history.push(item)
      lastModel = item
    } else {
      const call = m.toolCallId !== undefined ? calls.get(m.toolCallId) : undefined
      if (call !== undefined) {
        call.result = parseResult(m.content)
      } else {
        // a result without its call in this history: keep it as a call with unknown params
        const item: ChatModelResponse = lastModel ?? { type: "model", response: [] }
        item.response.push({ type: "functionCall", name: m.toolName ?? "tool", params: undefined, result: parseResult(m.content) })
        if (lastModel === undefined) history.push(item)
        lastModel = item
      }
    }
  }
  if (instructions !== undefined) {
    const system = history.findIndex((h) => h.type === "system")
    if (system >= 0) {
      const item = history[system] as { type: "system"; text: string }
      history[system] = { type: "system", text: `${item.text}\n\n${instructions}` }
    } else history.unshift({ type: "system", text: instructions })
  }
  // an empty model turn asks for a new answer; a trailing assistant turn (or tool results) is continued instead
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] })
  return history
}

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

/** Grammars by schema, per loader: creating one parses the schema and builds the GBNF text each time. */
const GRAMMAR_CACHE_SIZE = 32

/**
 * node-llama-cpp's JSON string character rule, narrowed to the Basic Multilingual Plane without
 * surrogates: a code point above U+FFFF is one character to the grammar and to JSON Schema but two
 * to JavaScript's `length`, which Effect's `maxLength`/`length` filters count, so a bounded string
 * could pass the grammar and fail decoding. Such characters can still be written as `\u` escape pairs.
 */
const STRING_CHAR_RULE = String.raw`string-char-rule ::= [^"\\\x7F\x00-\x1F\uD800-\uDFFF\U00010000-\U0010FFFF] | "\\" ["\\/bfnrt] | "\\u" [0-9a-fA-F]{4}`

/**
 * The unbounded string rule: after `JsonSchemaGrammar` bounded every string value, node-llama-cpp
 * still uses it for the keys of free-form objects (records, `additionalProperties`), which a weak
 * model could otherwise keep writing until `maxTokens`.
 */
const KEY_RULE = String.raw`string-rule ::= "\"" ( string-char-rule ){0,64} "\""`

/**
 * llama.cpp's grammar decodes byte-fallback tokens (`<0xC1>`, …) one byte at a time and checks
 * continuation bytes, but not overlong forms: `<0xC1><0x81>` is "A" to the grammar and two
 * replacement characters once detokenized, so a string could break its length bound. Under a
 * grammar, SentencePiece byte tokens that only start overlong or never-valid sequences are banned:
 * C0, C1, F5–FF (never valid), E0 and F0 (their overlong forms; what they start validly — U+0800–
 * U+0FFF, and the astral plane the string rule excludes — comes from merged tokens or escapes).
 * Byte-level BPE vocabularies have no such tokens; anything left is caught by the answer check.
 */
const OVERLONG_LEAD_BYTES = [0xc0, 0xc1, 0xe0, ...Array.from({ length: 16 }, (_, i) => 0xf0 + i)]
const bannedTokens = new WeakMap<LlamaModel, ReadonlyArray<Token>>()
/**
 * Tokens a grammar-constrained generation must not produce: the byte tokens above, and special
 * tokens other than end-of-generation. The grammar matches a control token by its text (`<s>` is
 * three characters to it) but the detokenized answer drops it, so a 3-character string could come
 * out empty. Computed once per model (one pass over the vocabulary, at the first constrained request).
 */
/** The banned tokens as one TokenBias per model (built once, not per request). */
const biases = new WeakMap<LlamaModel, TokenBias | undefined>()
const grammarBias = (lib: NodeLlamaCpp, model: LlamaModel): TokenBias | undefined => {
  if (!biases.has(model)) {
    const banned = grammarBannedTokens(model)
    biases.set(model, banned.length > 0 ? new lib.TokenBias(model.tokenizer).set([...banned], "never") : undefined)
  }
  return biases.get(model)
}

const grammarBannedTokens = (model: LlamaModel): ReadonlyArray<Token> => {
  let tokens = bannedTokens.get(model)
  if (tokens === undefined) {
    const vocabulary = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens
    const bytes = Array.isArray(vocabulary)
      ? OVERLONG_LEAD_BYTES.map((b) => vocabulary.indexOf(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`)).filter((id) => id >= 0)
      : []
    const special: Array<Token> = []
    for (const token of model.iterateAllTokens()) {
      if (model.isSpecialToken(token) && !model.isEogToken(token)) special.push(token)
    }
    tokens = [...(bytes as Array<Token>), ...special]
    bannedTokens.set(model, tokens)
  }
  return tokens
}

/** A context sequence and the LlamaChat bound to it, handed to one request at a time. */
interface SequenceSlot {
  readonly sequence: LlamaContextSequence
  readonly chat: LlamaChat
}

/** Hooks the worker process uses; the in-process loader needs none. */
export interface LoaderHooks {
  /** Every llama.cpp warning or error line, as it is logged. */
  readonly onLog?: (line: string) => void
}

/** Extra callbacks for one generation. */
export interface GenerateHooks {
  /** The request has its context sequence (it may have waited for one): its prompt is prepared next. */
  readonly onSequence?: () => void
  /** The prompt is rendered (chat template) and tokenized: generation proper starts. */
  readonly onPrepared?: (promptTokens: number) => void
  /** After each text chunk (the worker's test-only crash hook). */
  readonly onText?: () => void
}

/** A loaded model with the in-process extras the worker needs. */
export interface InProcessModel extends LoadedModelHandle {
  readonly generateWith: (request: GenerateRequest, hooks: GenerateHooks) => Stream.Stream<LoaderEvent, BackendError | ContextOverflow>
  readonly embed: (inputs: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<EmbeddedInput>, BackendError | ContextOverflow>
  readonly tokenize: (text: string) => Effect.Effect<ReadonlyArray<number>, BackendError>
}

/** The model's tokens for a text, without the BOS a prompt gets. */
const tokenizeWith = (model: LlamaModel, instance: string | undefined) => (text: string) =>
  Effect.try({ try: (): ReadonlyArray<number> => Array.from(model.tokenize(text)), catch: toBackendError("tokenize", instance) })

/**
 * Embeds inputs one after the other on the embedding context's single sequence (node-llama-cpp
 * erases it before each input, so a vector never depends on the previous input: a batch gives
 * the vectors of one-by-one requests). Every input is measured first: one that does not fit is
 * `ContextOverflow` before any vector is computed (node-llama-cpp would throw a plain Error, and
 * Ollama's default is to truncate). A model without a pooling type (a chat model) embeds with
 * its last token's hidden state, as llama.cpp does.
 */
const embedOn = (
  model: LlamaModel,
  embedding: LlamaEmbeddingContext,
  contextSize: number,
  inputs: ReadonlyArray<string>,
  names: { readonly model: string; readonly instance: string | undefined },
  logs: LogBuffer
): Effect.Effect<ReadonlyArray<EmbeddedInput>, BackendError | ContextOverflow> =>
  Effect.gen(function*() {
    // an empty text has no tokens, for which node-llama-cpp returns an empty vector: embed the BOS alone
    const bos = model.tokens.bos
    const prepared = inputs.map((text) => (text.length === 0 && bos !== null ? [bos] : text))
    const lengths = yield* Effect.try({
      try: () => prepared.map((input) => embedding.calculateInputLength(input)),
      catch: toBackendError("embed", names.instance)
    })
    const over = lengths.findIndex((n) => n >= contextSize)
    if (over >= 0) {
      return yield* new ContextOverflow({
        model: names.model,
        backend: "gguf",
        ...(names.instance !== undefined ? { instance: names.instance } : {}),
        promptTokens: lengths[over]!,
        contextSize,
        operation: "embed"
      })
    }
    const mark = logs.mark
    return yield* Effect.tryPromise({
      try: async (signal) => {
        const out: Array<EmbeddedInput> = []
        for (let i = 0; i < prepared.length; i++) {
          if (signal.aborted) throw signal.reason
          const { vector } = await embedding.getEmbeddingFor(prepared[i]!)
          if (vector.length === 0) throw new Error(`the model returned no embedding for input ${i}`)
          out.push({ vector: Array.from(vector), tokens: lengths[i]! })
        }
        return out
      },
      catch: (e) => toBackendError("embed", names.instance, logs.since(mark))(e)
    })
  }).pipe(Effect.withSpan("LlamaLoader.embed", { attributes: { inputs: inputs.length } }))

/** A loader over node-llama-cpp in this process, with its own Llamas and log buffer. */
export const makeInProcessLoader = (hooks: LoaderHooks = {}) => {
  const logs = new LogBuffer(hooks.onLog)
  // keyed by the device setting; "auto" and the device it resolves to end up sharing one Llama
  const runtimes = new Map<string, Promise<Runtime>>()
  const llamas = new Map<LlamaGpuType, Promise<Llama>>()

  const llamaFor = (lib: NodeLlamaCpp, gpu: LlamaGpuType): Promise<Llama> => {
    let p = llamas.get(gpu)
    if (p === undefined) {
      p = lib.getLlama({
        gpu,
        build: "never",
        progressLogs: false,
        logLevel: lib.LlamaLogLevel.warn,
        logger: (level, message) => {
          if (level === lib.LlamaLogLevel.error || level === lib.LlamaLogLevel.warn || level === lib.LlamaLogLevel.fatal) {
            logs.remember(message)
          }
        }
      })
      llamas.set(gpu, p)
      p.catch(() => llamas.delete(gpu))
    }
    return p
  }

  const resolveRuntime = async (setting: LoadOptions["device"]): Promise<Runtime> => {
    const lib = await importLibrary()
    const supported = (await lib.getLlamaGpuTypes("supported")).map((g): Device => (g === false ? "cpu" : g))
    const available = GPU_ORDER.filter((d) => supported.includes(d))
    if (setting === "cpu") {
      const llama = await llamaFor(lib, false)
      return { llama, info: await describeRuntime(llama, "cpu", "device = cpu in the config", []) }
    }
    if (setting !== "auto") {
      if (!available.includes(setting)) {
        throw new DeviceUnavailable({
          device: setting,
          reason: `no ${NAMES[setting]} driver or library found on this machine`,
          available: [...available, "cpu"]
        })
      }
      const llama = await llamaFor(lib, setting).catch((e) => {
        throw new DeviceUnavailable({ device: setting, reason: describe(e), available: [...available, "cpu"] })
      })
      if (llama.gpu !== setting) {
        throw new DeviceUnavailable({ device: setting, reason: `llama.cpp started on ${String(llama.gpu)}`, available: [...available, "cpu"] })
      }
      return { llama, info: await describeRuntime(llama, setting, `device = ${setting} in the config`, []) }
    }
    // auto: CUDA, then Metal, then Vulkan, then the CPU; only devices whose drivers exist are tried
    // (trying one that is absent costs ~1 s and prints a warning)
    const warnings: Array<string> = []
    for (const device of available) {
      try {
        const llama = await llamaFor(lib, device)
        if (llama.gpu === device) {
          return { llama, info: await describeRuntime(llama, device, `auto: ${NAMES[device]} is the best device found`, warnings) }
        }
      } catch (e) {
        warnings.push(`${NAMES[device]} drivers are present but llama.cpp could not use them: ${describe(e)}`)
      }
    }
    const llama = await llamaFor(lib, false)
    warnings.push("no usable GPU (CUDA, Metal or Vulkan) found: running on the CPU, which is much slower for large models")
    return {
      llama,
      info: await describeRuntime(
        llama,
        "cpu",
        available.length === 0 ? "auto: no GPU driver found, so the CPU" : "auto: every GPU failed, so the CPU",
        warnings
      )
    }
  }

  /** The runtime for a device setting, created once per loader. */
  const runtime = (setting: LoadOptions["device"]): Effect.Effect<Runtime, DeviceUnavailable | BackendError> =>
    Effect.tryPromise({
      try: () => {
        let p = runtimes.get(setting)
        if (p === undefined) {
          p = resolveRuntime(setting)
          runtimes.set(setting, p)
          p.catch(() => runtimes.delete(setting))
        }
        return p
      },
      catch: (e) => (e instanceof DeviceUnavailable ? e : toBackendError("start llama.cpp")(e))
    }).pipe(Effect.withSpan("LlamaLoader.runtime", { attributes: { device: setting } }))

  const grammars = new Map<string, Promise<LlamaGrammar>>()
  /** The grammar of a plan (cached by schema), or none for free text and node-llama-cpp's own function calling. */
  const grammarFor = (model: LlamaModel, plan: GenerationPlan): Effect.Effect<LlamaGrammar | undefined, BackendError> => {
    if (plan._tag !== "Grammar") return Effect.succeed(undefined)
    return Effect.tryPromise({
      try: () => {
        const key = JSON.stringify(plan.schema)
        let p = grammars.get(key)
        if (p === undefined) {
          p = (async () => {
            const json = await model.llama.createGrammarForJsonSchema(plan.schema as never) as LlamaGrammar
            const narrowed = json.grammar
              .replace(/^string-char-rule ::= .*$/m, STRING_CHAR_RULE)
              .replace(/^string-rule ::= .*$/m, KEY_RULE)
            return narrowed === json.grammar ? json : model.llama.createGrammar({
              grammar: narrowed,
              stopGenerationTriggers: json.stopGenerationTriggers,
              trimWhitespaceSuffix: json.trimWhitespaceSuffix
            })
          })()
          p.catch(() => grammars.delete(key))
          if (grammars.size >= GRAMMAR_CACHE_SIZE) grammars.delete(grammars.keys().next().value!)
        } else grammars.delete(key) // re-inserted below: most recently used last
        grammars.set(key, p)
        return p
      },
      catch: toBackendError("create the JSON schema grammar")
    })
  }

  const generateOn = (
    lib: NodeLlamaCpp,
    model: LlamaModel,
    context: LlamaContext,
    sequences: SequenceQueue.SequenceQueue<SequenceSlot>,
    request: GenerateRequest,
    instance: string | undefined,
    hooks: GenerateHooks,
    modelName: string
  ): Stream.Stream<LoaderEvent, BackendError | ContextOverflow> =>
    Stream.asyncPush<LoaderEvent, BackendError | ContextOverflow>((emit) =>
      Effect.gen(function*() {
        // the host has already refused a schema the grammar cannot take (same pure function)
        const plan = yield* Either.mapLeft(
          generationPlan(request),
          (e) => new BackendError({ backend: "gguf", operation: "generate", reason: e.message, suggestion: e.hint })
        )
        const grammar = yield* grammarFor(model, plan)
        const bias = grammar !== undefined ? grammarBias(lib, model) : undefined
        // A disposed sequence frees its slot asynchronously (an immediate getSequence() can still
        // throw "No sequences left"), so sequences are created once and handed round; LlamaChat also
        // reuses the prompt prefix a sequence already holds.
        const { chat } = yield* sequences.take(request)
        hooks.onSequence?.()
        // a forced tool call is one JSON document, parsed at the end: no text is streamed for it
        const forced = plan._tag === "Grammar" && plan.output !== "answer"
        const showReasoning = request.reasoning !== false
        return yield* Effect.acquireRelease(
          Effect.try({
            try: () => {
              const controller = new AbortController()
              const history = toHistory(request, plan._tag === "Grammar" ? plan.instructions : undefined)
              const promptTokens = chat.chatWrapper.generateContextState({
                chatHistory: history,
                ...(plan._tag === "Functions" ? { availableFunctions: plan.functions as ChatModelFunctions } : {})
              }).contextText.tokenize(model.tokenizer).length
              hooks.onPrepared?.(promptTokens)
              const overflow = () =>
                new ContextOverflow({
                  model: modelName,
                  backend: "gguf",
                  ...(instance !== undefined ? { instance } : {}),
                  promptTokens,
                  contextSize: context.contextSize
                })
              // LlamaChat silently drops earlier messages when the prompt and one free token do not
              // fit, and shifts the context (erasing tokens) when it fills while generating: refuse
              // the first here, and cap maxTokens to what is left so the second cannot happen
              const room = context.contextSize - promptTokens - 1
              if (room < 1) throw overflow()
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
                ? chat.generateResponse(history, { ...common, functions: plan.functions as ChatModelFunctions })
                : chat.generateResponse(history, { ...common, ...(grammar !== undefined ? { grammar } : {}) })
              let callCount = 0
              const nextId = () => `call_${++callCount}`
              const promise = generation.then(
                (response) => {
                  buffer.flush()
                  if (shifted) return emit.fail(overflow())
                  let text = response.response
                  let reason = finishReason(response)
                  for (const call of response.functionCalls ?? []) {
                    emit.single({ _tag: "ToolCall", call: { id: nextId(), name: call.functionName, params: call.params ?? {} } })
                    reason = "tool-calls"
                  }
                  if (forced && reason !== "abort") {
                    const parsed = parseForced(text)
                    if (parsed === undefined) {
                      // cut off (maxTokens) or not the grammar's JSON: the host reports it, typed
                      reason = reason === "stop" ? "unknown" : reason
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
                    completionTokens: meter.usedOutputTokens - outputBefore,
                    finishReason: reason,
                    ...(maxTokensCapped !== undefined ? { maxTokensCapped } : {})
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

  /** Loads a validated file and creates its context; the scope's end disposes both. */
  const load = (
    path: string,
    options: LoadOptions,
    loadHooks: { readonly onPreparing?: () => void } = {}
  ): Effect.Effect<InProcessModel, DeviceUnavailable | BackendError, Scope.Scope> =>
    Effect.gen(function*() {
      const lib = yield* Effect.promise(importLibrary)
      const { llama } = yield* runtime(options.device)
      const instance = options.instance
      const mark = logs.mark
      const model = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: (signal) =>
            llama.loadModel({
              modelPath: path,
              useMmap: true,
              gpuLayers: llama.gpu === false ? 0 : options.gpuLayers,
              loadSignal: signal
            }),
          catch: (e) => toBackendError("load model", instance, logs.since(mark))(e)
        }),
        (m) => Effect.promise(() => m.dispose())
      ).pipe(Effect.withSpan("LlamaLoader.loadModel", { attributes: { path } }))
      const names = { model: options.model ?? path, instance }
      if (options.purpose === "embedding") {
        const requested = options.contextSize === "auto"
          ? Math.min(options.contextSizeCap, model.trainContextSize)
          : options.contextSize
        const embedding = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: (signal) =>
              model.createEmbeddingContext({
                contextSize: options.contextSize === "auto" ? { max: requested } : requested,
                // a whole input in one batch: pooled (non-causal) models need it, llama.cpp asserts otherwise
                batchSize: requested,
                threads: options.threads,
                createSignal: signal
              }),
            catch: (e) => toBackendError("create embedding context", instance, logs.since(mark))(e)
          }),
          (c) => Effect.promise(() => c.dispose())
        ).pipe(Effect.withSpan("LlamaLoader.createEmbeddingContext", { attributes: { path } }))
        // the size "auto" settled on is only on the underlying context
        const contextSize = (embedding as unknown as { readonly _llamaContext?: LlamaContext })._llamaContext?.contextSize ??
          requested
        const refuse = Stream.fail(
          new BackendError({
            backend: "gguf",
            ...(instance !== undefined ? { instance } : {}),
            operation: "generate",
            reason: "this copy of the model was loaded for embeddings only"
          })
        )
        return {
          path,
          sizeBytes: model.size,
          vramBytes: 0,
          contextSize,
          generate: () => refuse,
          generateWith: () => refuse,
          embed: (inputs) => embedOn(model, embedding, contextSize, inputs, names, logs),
          tokenize: tokenizeWith(model, instance),
          alive: Effect.succeed(true)
        } satisfies InProcessModel
      }
      const context = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            model.createContext({
              contextSize: options.contextSize === "auto"
                ? { max: Math.min(options.contextSizeCap, model.trainContextSize) }
                : options.contextSize,
              sequences: options.sequences,
              threads: options.threads
            }),
          catch: (e) => toBackendError("create context", instance, logs.since(mark))(e)
        }),
        (c) => Effect.promise(() => c.dispose())
      ).pipe(Effect.withSpan("LlamaLoader.createContext", { attributes: { path } }))
      // The chat wrapper is resolved once per model: `new LlamaChat()` with the default "auto" wrapper
      // re-resolves it from the Jinja template every time, which cost ~250 ms per request here.
      const slots = yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            loadHooks.onPreparing?.()
            const chatWrapper = lib.resolveChatWrapper(model)
            const slots: Array<SequenceSlot> = []
            for (let i = 0; i < options.sequences; i++) {
              const sequence = context.getSequence()
              slots.push({ sequence, chat: new lib.LlamaChat({ contextSequence: sequence, chatWrapper, autoDisposeSequence: false }) })
            }
            return slots
          },
          catch: toBackendError("create context sequences", instance)
        }),
        (slots) => Effect.sync(() => slots.forEach((slot) => slot.chat.dispose()))
      )
      const sequences = yield* SequenceQueue.make(slots)
      return {
        path,
        sizeBytes: model.size,
        vramBytes: 0,
        contextSize: context.contextSize,
        generate: (request) => generateOn(lib, model, context, sequences, request, instance, {}, names.model),
        generateWith: (request, hooks) => generateOn(lib, model, context, sequences, request, instance, hooks, names.model),
        sequences: Effect.map(sequences.counts, ({ busy, total }) => ({ busy, total })),
        embed: () =>
          Effect.fail(
            new BackendError({
              backend: "gguf",
              ...(instance !== undefined ? { instance } : {}),
              operation: "embed",
              reason: "this copy of the model was loaded for chat; embeddings need a load with purpose \"embedding\""
            })
          ),
        tokenize: tokenizeWith(model, instance),
        alive: Effect.succeed(true)
      } satisfies InProcessModel
    })

  /** RAM/VRAM needs from node-llama-cpp's GgufInsights (reads the header, loads nothing). */
  const memoryNeeds = (
    path: string,
    options: { readonly device: LoadOptions["device"]; readonly gpuLayers: "auto" | number; readonly contextSize: number }
  ): Effect.Effect<MemoryNeeds, DeviceUnavailable | BackendError> =>
    Effect.gen(function*() {
      const lib = yield* Effect.promise(importLibrary)
      const { llama } = yield* runtime(options.device)
      return yield* Effect.tryPromise({
        try: async () => {
          const info = await lib.readGgufFileInfo(path, { readTensorInfo: true })
          const insights = await lib.GgufInsights.from(info, llama)
          const gpuLayers = llama.gpu === false ? 0 : options.gpuLayers === "auto" ? insights.totalLayers : options.gpuLayers
          const contextSize = Math.min(options.contextSize, insights.trainContextSize ?? options.contextSize)
          const m = insights.estimateModelResourceRequirements({ gpuLayers })
          const c = insights.estimateContextResourceRequirements({ contextSize, modelGpuLayers: gpuLayers, sequences: 1 })
          return { contextSize, ramBytes: m.cpuRam + c.cpuRam, vramBytes: m.gpuVram + c.gpuVram }
        },
        catch: toBackendError("estimate memory")
      })
    }).pipe(Effect.withSpan("LlamaLoader.memoryNeeds", { attributes: { path } }))

  const service: LlamaLoaderService = {
    runtime: (device) => Effect.map(runtime(device), (r) => r.info),
    load: (path, options) => load(path, options),
    memoryNeeds
  }
  return { service, load, runtime, memoryNeeds }
}

/** The in-process loader (`isolation = "none"`). */
export const makeLoader = (): LlamaLoaderService => makeInProcessLoader().service

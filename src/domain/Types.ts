/**
 * The one set of data types every backend returns and every front end prints, defined with Schema
 * so the CLI's `--json` output is exactly these types encoded. Pure: no I/O.
 */
import * as Schema from "effect/Schema"

/** The backends llmspell runs: local ones, and `cloud` for hosted and OpenAI-compatible APIs reached over HTTP. */
export const BackendType = Schema.Literal("ollama", "gguf", "cloud")
/** The backends llmspell runs. */
export type BackendType = typeof BackendType.Type

/** An error as it appears inside a result (e.g. one backend of several was unavailable). */
export const ErrorInfo = Schema.Struct({
  _tag: Schema.String,
  message: Schema.String,
  hint: Schema.optional(Schema.String)
})
/** An error as it appears inside a result. */
export type ErrorInfo = typeof ErrorInfo.Type

/** A model loaded in memory right now. */
export const LoadedModel = Schema.Struct({
  name: Schema.String,
  sizeBytes: Schema.optional(Schema.Number),
  vramBytes: Schema.optional(Schema.Number),
  /** When it will be unloaded if unused (ISO date), when the backend says. */
  expiresAt: Schema.optional(Schema.String),
  /** Requests using it right now, when the backend knows. */
  activeRequests: Schema.optional(Schema.Number),
  /**
   * A GGUF chat model's context sequences: how many it has, and how many a generation holds right
   * now (requests waiting for one hold none). Read from the loader's own queue of sequences.
   */
  sequences: Schema.optional(Schema.Struct({ total: Schema.Number, busy: Schema.Number })),
  /** Its context size (per sequence), when the backend says. */
  contextLength: Schema.optional(Schema.Number),
  /** Where it runs (cpu, cuda, metal, vulkan), when the backend says. */
  device: Schema.optional(Schema.String),
  /** The backend and instance holding it (set by `LocalLLM.ps`). */
  backend: Schema.optional(BackendType),
  instance: Schema.optional(Schema.String),
  /**
   * `embedding` (or `ranking`) for a GGUF model loaded only with an embedding (or ranking) context:
   * no chat context loaded.
   */
  purpose: Schema.optional(Schema.Literal("chat", "embedding", "ranking")),
  /**
   * A GGUF model's contexts, each loaded (and idle-unloaded) on its own: the chat context
   * (sequences), the embedding one and the ranking one (a reranker's). The row's size and active requests are their sums; it
   * unloads when its last context does (`expiresAt`, absent while one is in use or kept loaded).
   */
  contexts: Schema.optional(Schema.Array(Schema.Struct({
    purpose: Schema.Literal("chat", "embedding", "ranking"),
    sizeBytes: Schema.Number,
    vramBytes: Schema.optional(Schema.Number),
    contextLength: Schema.Number,
    activeRequests: Schema.Number,
    sequences: Schema.optional(Schema.Struct({ total: Schema.Number, busy: Schema.Number })),
    expiresAt: Schema.optional(Schema.String)
  }))),
  /** The same facts `list` gives of the model (GGUF): its digest, family (architecture) and quantization. */
  digest: Schema.optional(Schema.String),
  family: Schema.optional(Schema.String),
  quantization: Schema.optional(Schema.String),
  /** Generations it finished for the process that reports it (the server's, when connected), when that process served any. */
  requests: Schema.optional(Schema.Number),
  /** Output tokens per second, the mean of its last answers there. */
  tokensPerSecond: Schema.optional(Schema.Number),
  /** The part of its prompt tokens read from the prompt cache (0–1), when the backend reports cached tokens. */
  cacheHitRate: Schema.optional(Schema.Number)
})
/** A model loaded in memory right now. */
export type LoadedModel = typeof LoadedModel.Type

/** Health and configuration of one backend instance. */
export const BackendStatus = Schema.Struct({
  instance: Schema.String,
  backend: BackendType,
  /** URL of the server, or the model directory. */
  endpoint: Schema.String,
  available: Schema.Boolean,
  version: Schema.optional(Schema.String),
  error: Schema.optional(ErrorInfo),
  modelsPresent: Schema.optional(Schema.Number),
  loaded: Schema.Array(LoadedModel),
  /** Backend-specific facts (device, threads, RAM, binary type, …), printed as key/value lines. */
  details: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  warnings: Schema.Array(Schema.String)
})
/** Health and configuration of one backend instance. */
export type BackendStatus = typeof BackendStatus.Type

/** A model present on a backend. */
/** Where a model's bytes live: llmspell's own store or another tool's (read in place, never written). */
export const StoreKind = Schema.Literal("llmspell", "ollama-store", "hf-cache", "lmstudio", "node-llama-cpp")
/** Where a model's bytes live. */
export type StoreKind = typeof StoreKind.Type

/** One place a model is stored; the same bytes (same sha256) in two stores are one model with two locations. */
export const ModelLocation = Schema.Struct({
  store: StoreKind,
  /** How that store names it (`llama3.2:3b`, `hf.co/org/repo:Q4_K_M`, `org/repo:Q4_K_M`, a file name). */
  name: Schema.String,
  /** The GGUF file (the first part of a split model). */
  path: Schema.String,
  /** The owning tool's command that removes it, for a foreign store (llmspell never deletes those). */
  removeCommand: Schema.optional(Schema.String)
})
/** One place a model is stored. */
export type ModelLocation = typeof ModelLocation.Type

export const LocalModel = Schema.Struct({
  name: Schema.String,
  backend: BackendType,
  instance: Schema.String,
  sizeBytes: Schema.Number,
  digest: Schema.optional(Schema.String),
  modifiedAt: Schema.optional(Schema.String),
  family: Schema.optional(Schema.String),
  parameterSize: Schema.optional(Schema.String),
  quantization: Schema.optional(Schema.String),
  format: Schema.optional(Schema.String),
  /** For file-backed models: the main file. */
  path: Schema.optional(Schema.String),
  files: Schema.optional(Schema.Array(Schema.String)),
  /** GGUF models: the store it is used from (the first of `locations`). */
  store: Schema.optional(StoreKind),
  /** GGUF models: lower-case hex sha256 of the file, when a store records it. */
  sha256: Schema.optional(Schema.String),
  /** GGUF models: every store holding these bytes. */
  locations: Schema.optional(Schema.Array(ModelLocation)),
  /**
   * What the model can do (completion, tools, vision, embedding, thinking, rerank) as its backend
   * knows it: Ollama's /api/show (asked once per model and digest), the GGUF header, a cloud
   * preset's table. Left out where unknown: unknown is not "none".
   */
  capabilities: Schema.optional(Schema.Array(Schema.String))
})
/** A model present on a backend. */
export type LocalModel = typeof LocalModel.Type

/** Memory a model needs at a given context size. */
export const MemoryEstimate = Schema.Struct({
  contextSize: Schema.Number,
  ramBytes: Schema.Number,
  vramBytes: Schema.Number
})

/** What is known about one model. */
export const ModelInfo = Schema.Struct({
  name: Schema.String,
  backend: BackendType,
  instance: Schema.String,
  architecture: Schema.optional(Schema.String),
  parameterCount: Schema.optional(Schema.Number),
  parameterSize: Schema.optional(Schema.String),
  quantization: Schema.optional(Schema.String),
  contextLength: Schema.optional(Schema.Number),
  embeddingLength: Schema.optional(Schema.Number),
  layers: Schema.optional(Schema.Number),
  heads: Schema.optional(Schema.Number),
  headsKv: Schema.optional(Schema.Number),
  vocabularySize: Schema.optional(Schema.Number),
  chatTemplate: Schema.Boolean,
  sizeBytes: Schema.optional(Schema.Number),
  path: Schema.optional(Schema.String),
  /** GGUF models: the store it is used from, and every store holding the same bytes. */
  store: Schema.optional(StoreKind),
  locations: Schema.optional(Schema.Array(ModelLocation)),
  memory: Schema.optional(MemoryEstimate),
  capabilities: Schema.optional(Schema.Array(Schema.String)),
  /** Backend-specific extras (Ollama's template, parameters, …). */
  details: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
/** What is known about one model. */
export type ModelInfo = typeof ModelInfo.Type

/** Phases of a pull, the same for every backend. */
export const PullPhase = Schema.Literal("resolving", "waiting", "downloading", "verifying", "done")
/** Phases of a pull. */
export type PullPhase = typeof PullPhase.Type

/** Progress of one file (a hub file or an Ollama layer). */
export const PullFileProgress = Schema.Struct({
  name: Schema.String,
  completedBytes: Schema.Number,
  /** Undefined while the size is not known yet. */
  totalBytes: Schema.optional(Schema.Number),
  status: Schema.Literal("pending", "downloading", "verifying", "done")
})
/** Progress of one file. */
export type PullFileProgress = typeof PullFileProgress.Type

/**
 * What a pull would download and whether it fits this machine, known before a byte is written
 * (`model pull --dry-run`): the files and their sizes from the hub's listing, the free space of
 * the store's disk, and the memory the model needs to run (the estimate `model available` uses:
 * weights, a KV cache, the runtime) against this machine's.
 */
export const PullPlan = Schema.Struct({
  files: Schema.Array(Schema.Struct({ path: Schema.String, sizeBytes: Schema.Number })),
  /** All the files' bytes. */
  totalBytes: Schema.Number,
  quantization: Schema.optional(Schema.String),
  /**
   * What the first file's GGUF header says, read from the hub with ranged requests (at most a few
   * MiB): absent when it could not be read (the plan still stands on the listing's sizes).
   */
  header: Schema.optional(Schema.Struct({
    architecture: Schema.String,
    quantization: Schema.optional(Schema.String),
    contextLength: Schema.optional(Schema.Number),
    parameters: Schema.optional(Schema.Number),
    /** Bytes of the file fetched to read it. */
    bytesRead: Schema.Number
  })),
  disk: Schema.Struct({ directory: Schema.String, freeBytes: Schema.Number, fits: Schema.Boolean }),
  memory: Schema.Struct({ neededBytes: Schema.Number, totalBytes: Schema.Number, availableBytes: Schema.Number, fits: Schema.Boolean })
})
/** What a pull would download and whether it fits. */
export type PullPlan = typeof PullPlan.Type

/** What a finished pull produced. */
export const PullResult = Schema.Struct({
  model: Schema.String,
  backend: BackendType,
  instance: Schema.String,
  /** True when nothing had to be downloaded. */
  alreadyPresent: Schema.Boolean,
  sizeBytes: Schema.optional(Schema.Number),
  path: Schema.optional(Schema.String),
  files: Schema.Array(Schema.String),
  /** Bytes that crossed the network in this pull (resumes make it smaller than the size). */
  downloadedBytes: Schema.Number,
  /** False when some file could not be checked against a sha256 from the hub (its computed hash is recorded). */
  verified: Schema.optional(Schema.Boolean),
  /** Set when the bytes were already on this machine in another store (no download): which store. */
  satisfiedFrom: Schema.optional(StoreKind),
  /** A dry run's answer (nothing was downloaded or written): what the pull would fetch and whether it fits. */
  plan: Schema.optional(PullPlan)
})
/** What a finished pull produced. */
export type PullResult = typeof PullResult.Type

/** One progress event of a pull; the last one of a successful pull has phase `done` and a `result`. */
export const PullProgress = Schema.Struct({
  phase: PullPhase,
  model: Schema.String,
  backend: BackendType,
  instance: Schema.String,
  message: Schema.optional(Schema.String),
  files: Schema.Array(PullFileProgress),
  completedBytes: Schema.Number,
  totalBytes: Schema.optional(Schema.Number),
  bytesPerSecond: Schema.optional(Schema.Number),
  etaSeconds: Schema.optional(Schema.Number),
  result: Schema.optional(PullResult)
})
/** One progress event of a pull. */
export type PullProgress = typeof PullProgress.Type

/** Options of a pull. */
export interface PullOptions {
  readonly quantization?: string
  readonly force?: boolean
  /** Copy bytes already on this machine in another store instead of hard-linking or referencing them. */
  readonly copy?: boolean
  /** Say what would be downloaded and whether it fits (disk, memory), and download nothing (the last event's `result.plan`). */
  readonly dryRun?: boolean
}

/** What `model import` made: a GGUF file recorded as a model of llmspell's store. */
export const ImportResult = Schema.Struct({
  model: Schema.String,
  backend: BackendType,
  instance: Schema.String,
  /** The file in the store (a hard link to the original when on the same filesystem, else a copy). */
  path: Schema.String,
  /** The file that was imported (left as it was). */
  source: Schema.String,
  sizeBytes: Schema.Number,
  sha256: Schema.String
})
/** What `model import` made. */
export type ImportResult = typeof ImportResult.Type

/** What a remove did. */
export const RemoveResult = Schema.Struct({
  model: Schema.String,
  backend: BackendType,
  instance: Schema.String,
  removedFiles: Schema.Array(Schema.String),
  freedBytes: Schema.optional(Schema.Number)
})
/** What a remove did. */
export type RemoveResult = typeof RemoveResult.Type

/** The state of one installed file checked against its manifest. */
export const VerifyFile = Schema.Struct({
  model: Schema.String,
  file: Schema.String,
  status: Schema.Literal("ok", "missing", "corrupt"),
  expectedSha256: Schema.optional(Schema.String),
  /**
   * Where `expectedSha256` came from: the hub's listing, the download itself (the hub published none), or
   * the file an import was made from.
   */
  expectedFrom: Schema.optional(Schema.Literal("hub", "download", "import")),
  actualSha256: Schema.optional(Schema.String),
  sizeBytes: Schema.optional(Schema.Number),
  /** What is wrong with a file that is not ok. */
  problem: Schema.optional(Schema.String),
  /** The command that repairs it. */
  repair: Schema.optional(Schema.String),
  /**
   * True when the hub published no sha256 for the file: it matches the hash computed while it was
   * downloaded, which shows it has not changed since, not that the download was intact.
   */
  unverified: Schema.optional(Schema.Boolean)
})
/** The state of one installed file. */
export type VerifyFile = typeof VerifyFile.Type

/** A verify run over one or more models. */
export const VerifyReport = Schema.Struct({
  ok: Schema.Boolean,
  files: Schema.Array(VerifyFile)
})
/** A verify run over one or more models. */
export type VerifyReport = typeof VerifyReport.Type

/** A JSON Schema (an object), as tools' parameters and structured output take it. */
export const JsonSchemaObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })
/** A JSON Schema (an object). */
export type JsonSchemaObject = typeof JsonSchemaObject.Type

/** A tool the model may call: its name, what it does, and its parameters as a JSON Schema. */
export const ToolDefinition = Schema.Struct({
  name: Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9_.-]{1,64}$/, { message: () => "a tool name is 1–64 letters, digits, `_`, `.` or `-`" })
  ),
  description: Schema.optional(Schema.String),
  parameters: JsonSchemaObject
})
/** A tool the model may call. */
export type ToolDefinition = typeof ToolDefinition.Type

/**
 * Whether the model must call a tool: `auto` (it decides), `none` (it must not: no tool is sent),
 * `required` (it must call one), or `{ tool }` (it must call that one).
 */
export const ToolChoice = Schema.Union(
  Schema.Literal("auto", "none", "required"),
  Schema.Struct({ tool: Schema.String })
)
/** Whether the model must call a tool. */
export type ToolChoice = typeof ToolChoice.Type

/** How the answer is shaped: free `text`, any `json` object, or JSON that follows `{ schema }`. */
export const ResponseFormat = Schema.Union(
  Schema.Literal("text", "json"),
  Schema.Struct({ schema: JsonSchemaObject, name: Schema.optional(Schema.String) })
)
/** How the answer is shaped. */
export type ResponseFormat = typeof ResponseFormat.Type

/** A tool call the model made: an id (the backend's, or generated), the tool, and its decoded JSON parameters. */
export const ToolCall = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  params: Schema.Unknown
})
/** A tool call the model made. */
export type ToolCall = typeof ToolCall.Type

/**
 * An image a user message carries: its media type (`image/png`, `image/jpeg`, …) and its bytes as
 * base64. It reaches the backends that see (Ollama's vision models, cloud providers) unchanged; a
 * GGUF model refuses it (node-llama-cpp 3.x runs no vision model). Limits: `IMAGE_LIMITS`.
 */
export const ImageInput = Schema.Struct({
  mediaType: Schema.String.pipe(Schema.pattern(/^image\/[a-z0-9.+-]+$/i, { message: () => "mediaType must be an image/* media type" })),
  data: Schema.String
})
/** An image a user message carries. */
export type ImageInput = typeof ImageInput.Type

/**
 * An image a user message names by its http(s) URL. LocalLLM fetches it (and sends the bytes on as
 * an `ImageInput`) only when the caller's `ImageUrls` setting allows it (layers/ImageFetch): by
 * default it is refused with InvalidRequest. Over the protocol it travels to `llmspell serve`,
 * which applies its own `--allow-image-urls`. A backend is only ever given `ImageInput`s.
 */
export const ImageUrl = Schema.Struct({
  url: Schema.String.pipe(
    Schema.pattern(/^https?:\/\/[^\s]+$/i, { message: () => "an image url must be an http(s) URL" }),
    Schema.maxLength(8192, { message: () => "an image url is at most 8192 characters" })
  )
})
/** An image named by its URL. */
export type ImageUrl = typeof ImageUrl.Type

/** An image of a chat message: its bytes, or (fetched only when allowed) its URL. */
export const ImageSource = Schema.Union(ImageInput, ImageUrl)
/** An image of a chat message. */
export type ImageSource = typeof ImageSource.Type

/**
 * One chat message. A user message may carry images (`images`). An assistant turn may carry the tool calls it made (`toolCalls`); a `tool`
 * message is the result of one call, joined to it by `toolCallId` (and `toolName`), with the
 * result as text (JSON for structured results).
 */
export const ChatMessage = Schema.Struct({
  role: Schema.Literal("system", "user", "assistant", "tool"),
  content: Schema.String,
  toolCalls: Schema.optional(Schema.Array(ToolCall)),
  toolCallId: Schema.optional(Schema.String),
  toolName: Schema.optional(Schema.String),
  images: Schema.optional(Schema.Array(ImageSource))
}).pipe(
  Schema.filter((m) =>
    m.role === "tool" && m.toolCallId === undefined
      ? "a tool message needs the toolCallId of the call it answers"
      : m.role !== "assistant" && m.toolCalls !== undefined
      ? "only an assistant message carries toolCalls"
      : m.role !== "user" && m.images !== undefined && m.images.length > 0
      ? "only a user message carries images"
      : undefined
  )
)
/** One chat message. */
export type ChatMessage = typeof ChatMessage.Type

/**
 * The range of each numeric field of a request, with the CLI option that sets it. One table, so the
 * schema, the library, the Promise facade and the CLI refuse exactly the same values (`option` is
 * undefined where `llmspell run` has no option for the field). A `maxTokens`
 * of 0 or less used to mean "no limit" to llama.cpp (it ran on past the context), so it is refused.
 */
export const REQUEST_LIMITS = {
  maxTokens: { option: "--max-tokens", allowed: "an integer ≥ 1", check: (n: number) => Number.isSafeInteger(n) && n >= 1 },
  temperature: { option: "--temperature", allowed: "a finite number ≥ 0", check: (n: number) => Number.isFinite(n) && n >= 0 },
  topP: { option: undefined, allowed: "a number in (0, 1]", check: (n: number) => n > 0 && n <= 1 },
  topK: { option: undefined, allowed: "an integer ≥ 0 (0: no limit)", check: (n: number) => Number.isSafeInteger(n) && n >= 0 },
  seed: { option: "--seed", allowed: "an integer", check: (n: number) => Number.isSafeInteger(n) },
  reasoningBudget: { option: undefined, allowed: "an integer ≥ 0", check: (n: number) => Number.isSafeInteger(n) && n >= 0 },
  contextSize: { option: undefined, allowed: "an integer ≥ 32", check: (n: number) => Number.isSafeInteger(n) && n >= 32 },
  minP: { option: undefined, allowed: "a number in [0, 1]", check: (n: number) => n >= 0 && n <= 1 },
  frequencyPenalty: { option: undefined, allowed: "a number in [-2, 2]", check: (n: number) => n >= -2 && n <= 2 },
  presencePenalty: { option: undefined, allowed: "a number in [-2, 2]", check: (n: number) => n >= -2 && n <= 2 },
  repeatPenalty: { option: undefined, allowed: "a number in (0, 10] (1: off)", check: (n: number) => n > 0 && n <= 10 },
  repeatLastN: {
    option: undefined,
    allowed: "an integer ≥ -1 (0: off, -1: the whole context)",
    check: (n: number) => Number.isSafeInteger(n) && n >= -1
  }
} as const

/** The request fields with a range. */
export type LimitedField = keyof typeof REQUEST_LIMITS

const limited = (field: LimitedField) =>
  Schema.optional(
    Schema.Number.pipe(
      Schema.filter(REQUEST_LIMITS[field].check, {
        identifier: field,
        message: (issue) => `${field} must be ${REQUEST_LIMITS[field].allowed}; got ${String(issue.actual)}`
      })
    )
  )

/** A generation request, the same for every backend; decoding it checks every field's range. */
export const GenerateRequest = Schema.Struct({
  messages: Schema.Array(ChatMessage),
  maxTokens: limited("maxTokens"),
  temperature: limited("temperature"),
  topP: limited("topP"),
  topK: limited("topK"),
  seed: limited("seed"),
  /** Tokens less likely than this share of the most likely one are not sampled (0: off). */
  minP: limited("minP"),
  /**
   * Penalties on tokens already in the answer (llama.cpp's, as OpenAI and Ollama define them):
   * `frequencyPenalty` lowers a token's logit by this much per time it occurred, `presencePenalty`
   * once if it occurred at all; `repeatPenalty` divides a repeated token's logit (1: off); all look
   * at the last `repeatLastN` tokens (0: none, -1: the whole context; the backend's default, 64 for
   * GGUF and Ollama, when absent).
   */
  frequencyPenalty: limited("frequencyPenalty"),
  presencePenalty: limited("presencePenalty"),
  repeatPenalty: limited("repeatPenalty"),
  repeatLastN: limited("repeatLastN"),
  /**
   * Biases added to the logits of tokens, by token id of the model's own vocabulary (OpenAI's
   * `logit_bias`: -100 bans a token, 100 all but forces it). GGUF models and OpenAI-compatible
   * providers honour it; Ollama and Anthropic have none, and refuse it.
   */
  logitBias: Schema.optional(
    Schema.Record({ key: Schema.String, value: Schema.Number }).pipe(
      Schema.filter((bias) => {
        const bad = Object.entries(bias).find(([k, v]) => !/^(0|[1-9][0-9]{0,8})$/.test(k) || !(v >= -100 && v <= 100))
        return bad === undefined
          ? undefined
          : `logitBias maps token ids (integers ≥ 0) to numbers in [-100, 100]; got ${JSON.stringify(bad[0])}: ${String(bad[1])}`
      }),
      Schema.filter((bias) => (Object.keys(bias).length <= 1024 ? undefined : "logitBias holds at most 1024 tokens"))
    )
  ),
  stop: Schema.optional(Schema.Array(Schema.String.pipe(Schema.minLength(1, { message: () => "a stop string cannot be empty" })))),
  /** Tools the model may call (their names unique). */
  tools: Schema.optional(Schema.Array(ToolDefinition)),
  /** Whether it must call one (default `auto`); a named tool must be among `tools`. */
  toolChoice: Schema.optional(ToolChoice),
  /**
   * `false`: at most one tool call per answer (OpenAI's `parallel_tool_calls`). GGUF models and
   * OpenAI-compatible and Anthropic providers honour it; Ollama cannot enforce it, so its answer is
   * checked (a second call is a ToolChoiceViolated).
   */
  parallelToolCalls: Schema.optional(Schema.Boolean),
  /** Free text (default), any JSON object, or JSON following a schema. */
  responseFormat: Schema.optional(ResponseFormat),
  /** Ask a reasoning model to think (true) or not (false); its thinking streams as `ReasoningDelta`. */
  reasoning: Schema.optional(Schema.Boolean),
  /**
   * Most tokens a reasoning model may spend thinking before it must answer (GGUF: node-llama-cpp's
   * thought budget, where the model's chat wrapper has thought segments; Ollama has no such limit).
   */
  reasoningBudget: limited("reasoningBudget"),
  /**
   * The context, in tokens, to run the model with where a backend sizes it per request (Ollama's
   * `num_ctx`: the model is reloaded with it). GGUF models run in their instance's `context_size`
   * and cloud models in the provider's; there a prompt beyond it is a ContextOverflow, never cut.
   */
  contextSize: limited("contextSize")
}).pipe(
  Schema.filter((r) => {
    const names = (r.tools ?? []).map((t) => t.name)
    const duplicate = names.find((name, i) => names.indexOf(name) !== i)
    if (duplicate !== undefined) return { path: ["tools"], message: `two tools are named ${JSON.stringify(duplicate)}` }
    if (typeof r.toolChoice === "object" && !names.includes(r.toolChoice.tool)) {
      return { path: ["toolChoice"], message: `toolChoice names ${JSON.stringify(r.toolChoice.tool)}, which is not among the tools` }
    }
    if (r.toolChoice === "required" && names.length === 0) {
      return { path: ["toolChoice"], message: "toolChoice `required` needs at least one tool" }
    }
    return undefined
  })
)
/** A generation request. */
export type GenerateRequest = typeof GenerateRequest.Type

/** A system prompt and sampling settings, as every front end takes them. */
export interface PromptOptions {
  readonly system?: string | undefined
  readonly maxTokens?: number | undefined
  readonly temperature?: number | undefined
  readonly topP?: number | undefined
  readonly topK?: number | undefined
  readonly seed?: number | undefined
  readonly minP?: number | undefined
  readonly frequencyPenalty?: number | undefined
  readonly presencePenalty?: number | undefined
  readonly repeatPenalty?: number | undefined
  readonly repeatLastN?: number | undefined
  readonly logitBias?: Readonly<Record<string, number>> | undefined
  readonly stop?: ReadonlyArray<string> | undefined
  readonly tools?: ReadonlyArray<ToolDefinition> | undefined
  readonly toolChoice?: ToolChoice | undefined
  readonly parallelToolCalls?: boolean | undefined
  readonly responseFormat?: ResponseFormat | undefined
  readonly reasoning?: boolean | undefined
  readonly reasoningBudget?: number | undefined
  readonly contextSize?: number | undefined
}

/** A request from a prompt (or a message list) and options; the system prompt comes first. */
export const promptRequest = (prompt: string | ReadonlyArray<ChatMessage>, options: PromptOptions = {}): GenerateRequest => {
  const sampling = (["maxTokens", "temperature", "topP", "topK", "seed", "minP", "frequencyPenalty", "presencePenalty", "repeatPenalty", "repeatLastN", "logitBias", "stop", "tools", "toolChoice", "parallelToolCalls", "responseFormat", "reasoning", "reasoningBudget", "contextSize"] as const).flatMap((key) =>
    options[key] !== undefined ? [[key, options[key]] as const] : []
  )
  return {
    messages: [
      ...(options.system !== undefined ? [{ role: "system" as const, content: options.system }] : []),
      ...(typeof prompt === "string" ? [{ role: "user" as const, content: prompt }] : prompt)
    ],
    ...Object.fromEntries(sampling)
  }
}

/** Token counts of a completion. */
export const Usage = Schema.Struct({
  /** The whole prompt, its cached part included. */
  promptTokens: Schema.Number,
  completionTokens: Schema.Number,
  totalTokens: Schema.Number,
  /**
   * The part of `promptTokens` read from a cache instead of evaluated again: the model's KV cache (a
   * GGUF model's context sequence), or the provider's prompt cache (Ollama's
   * `prompt_eval_cached_count`, OpenAI's `cached_tokens`, Anthropic's `cache_read_input_tokens`),
   * where the backend reports it; absent: not reported.
   */
  cachedPromptTokens: Schema.optional(Schema.Number)
})
/** Token counts of a completion. */
export type Usage = typeof Usage.Type

/**
 * A cached-token count a server reported, as a count within the prompt: a non-negative integer
 * (one beyond the prompt is capped at it), or undefined when it sent none or something else.
 */
export const reportedCachedTokens = (reported: unknown, promptTokens: number): number | undefined =>
  typeof reported === "number" && Number.isSafeInteger(reported) && reported >= 0 ? Math.min(reported, promptTokens) : undefined

/** Timings of a completion, in milliseconds (tokens per second for the rate). */
export const Timings = Schema.Struct({
  /** 0 when the model was already loaded. */
  loadMs: Schema.Number,
  timeToFirstTokenMs: Schema.optional(Schema.Number),
  totalMs: Schema.Number,
  tokensPerSecond: Schema.optional(Schema.Number),
  promptTokensPerSecond: Schema.optional(Schema.Number)
})
/** Timings of a completion. */
export type Timings = typeof Timings.Type

/** Why generation stopped. */
export const FinishReason = Schema.Literal("stop", "length", "tool-calls", "abort", "error", "unknown")
/** Why generation stopped. */
export type FinishReason = typeof FinishReason.Type

/** A finished completion: what `run --json` prints. */
export const Completion = Schema.Struct({
  model: Schema.String,
  backend: BackendType,
  instance: Schema.String,
  text: Schema.String,
  /** The model's thinking, when it reasoned (and `reasoning` was not false). */
  reasoning: Schema.optional(Schema.String),
  /** The tools it called (then `finishReason` is `tool-calls`). */
  toolCalls: Schema.optional(Schema.Array(ToolCall)),
  finishReason: FinishReason,
  usage: Usage,
  timings: Timings,
  /**
   * `maxTokens` asked for more than the context had left after the prompt: generation was capped
   * at `used` tokens (then a `length` finish means the context, not the request, ran out).
   */
  maxTokensCapped: Schema.optional(Schema.Struct({ requested: Schema.Number, used: Schema.Number })),
  /** The request's stop string that ended the answer (`finishReason` `stop`), where the backend says which. */
  stopSequence: Schema.optional(Schema.String),
  /**
   * Set when the token limit (`finishReason` `length`) cut what the request asked for in a shape:
   * `answer`, a structured answer (`responseFormat` json or a schema) whose JSON is unfinished
   * (`text` holds it as far as it got); `tool-call`, a call `toolChoice` forced (`required` or a
   * named tool), which was not made. Running out of tokens is no broken schema: `generate` ends
   * normally with it, and `run`, which promises a checked `object`, fails with `IncompleteAnswer`.
   */
  incomplete: Schema.optional(Schema.Literal("answer", "tool-call"))
})
/** A finished completion. */
export type Completion = typeof Completion.Type

/**
 * Events of a streamed generation: text and reasoning deltas and whole tool calls (their params
 * decoded JSON), then one `Finish` with the completion (which repeats the calls and the reasoning).
 */
export const GenerateEvent = Schema.Union(
  Schema.TaggedStruct("TextDelta", { text: Schema.String }),
  Schema.TaggedStruct("ReasoningDelta", { text: Schema.String }),
  Schema.TaggedStruct("ToolCall", { call: ToolCall }),
  Schema.TaggedStruct("Finish", { completion: Completion })
)
/** Events of a streamed generation. */
export type GenerateEvent = typeof GenerateEvent.Type

/** What `embed` returns: one vector per input, in order, with the prompt tokens they took. */
export const Embeddings = Schema.Struct({
  model: Schema.String,
  backend: BackendType,
  instance: Schema.String,
  /** The length of each vector. */
  dimensions: Schema.Number,
  vectors: Schema.Array(Schema.Array(Schema.Number)),
  promptTokens: Schema.Number
})
/** What `embed` returns. */
export type Embeddings = typeof Embeddings.Type

/** One line of `llmspell embed --ndjson`: the vector of the input at `index`. */
export const EmbeddingLine = Schema.Struct({
  index: Schema.Number,
  model: Schema.String,
  dimensions: Schema.Number,
  vector: Schema.Array(Schema.Number),
  promptTokens: Schema.Number
})
/** One line of `llmspell embed --ndjson`. */
export type EmbeddingLine = typeof EmbeddingLine.Type

/** How many documents one rerank request may carry (Cohere's and Jina's hosted limits are 1,000 and 2,048). */
export const MAX_RERANK_DOCUMENTS = 10_000

/**
 * A rerank request: a query and the documents to order by relevance to it; `topN` keeps only the
 * best N (all when absent or larger than the list).
 */
export const RerankRequest = Schema.Struct({
  query: Schema.String,
  documents: Schema.Array(Schema.String).pipe(
    Schema.maxItems(MAX_RERANK_DOCUMENTS, { message: () => `at most ${MAX_RERANK_DOCUMENTS} documents` })
  ),
  topN: Schema.optional(
    Schema.Number.pipe(
      Schema.filter((n) => Number.isSafeInteger(n) && n >= 1, { message: (issue) => `topN must be an integer ≥ 1; got ${String(issue.actual)}` })
    )
  )
})
/** A rerank request. */
export type RerankRequest = typeof RerankRequest.Type

/** One document's place in a reranking: its index in the request, and its relevance score (higher: more relevant). */
export const RerankResult = Schema.Struct({ index: Schema.Number, relevanceScore: Schema.Number })
/** One document's place in a reranking. */
export type RerankResult = typeof RerankResult.Type

/**
 * What `rerank` returns: the documents' indexes sorted by relevance score, best first (ties keep
 * the request's order), cut to `topN`; `promptTokens` counts every query + document pair the
 * model read (0 where the provider does not say).
 */
export const Reranking = Schema.Struct({
  model: Schema.String,
  backend: BackendType,
  instance: Schema.String,
  results: Schema.Array(RerankResult),
  promptTokens: Schema.Number
})
/** What `rerank` returns. */
export type Reranking = typeof Reranking.Type

/** `model list` output: models of every instance asked for, and the instances that could not answer. */
export const ModelList = Schema.Struct({
  models: Schema.Array(LocalModel),
  unavailable: Schema.Array(Schema.Struct({ instance: Schema.String, backend: BackendType, error: ErrorInfo }))
})
/** `model list` output. */
export type ModelList = typeof ModelList.Type

/** `llmspell ps` output: the models loaded now, on every backend. */
export const PsReport = Schema.Struct({ models: Schema.Array(LoadedModel) })
/** `llmspell ps` output. */
export type PsReport = typeof PsReport.Type

/** `model status` output. */
export const StatusReport = Schema.Struct({ backends: Schema.Array(BackendStatus) })
/** `model status` output. */
export type StatusReport = typeof StatusReport.Type

/** `config show` output: each effective value with its source. */
export const ConfigReport = Schema.Struct({
  file: Schema.NullOr(Schema.String),
  entries: Schema.Array(Schema.Struct({ key: Schema.String, value: Schema.Unknown, source: Schema.String })),
  warnings: Schema.Array(Schema.String)
})
/** `config show` output. */
export type ConfigReport = typeof ConfigReport.Type

/** `config path` output. */
export const ConfigPathReport = Schema.Struct({
  file: Schema.NullOr(Schema.String),
  searched: Schema.Array(Schema.String)
})
/** `config path` output. */
export type ConfigPathReport = typeof ConfigPathReport.Type

/** The `--json` record that ends an interrupted pull. */
export const PullInterrupted = Schema.Struct({
  interrupted: Schema.Literal(true),
  model: Schema.optional(Schema.String),
  phase: Schema.optional(Schema.String),
  completedBytes: Schema.optional(Schema.Number),
  totalBytes: Schema.optional(Schema.Number)
})

/** What running a completion to its end gives: the completion, and for a `json`/`{ schema }` format the checked value. */
export type RunResult = Completion & { readonly object?: unknown }

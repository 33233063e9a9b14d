/**
 * The messages between the host and a GGUF worker process (`workerMain.ts`), as Schemas: every
 * message is encoded before `process.send` and decoded (and checked) on arrival, on both sides.
 * One worker holds at most one model; requests on it carry an `id`. The worker sends what it has
 * as one batch per event-loop turn (`FromWorkerBatch`: one encode, one IPC write, one decode),
 * with the text of a request coalesced; the host sends single messages (a few per request).
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { BackendError, ContextOverflow, DeviceUnavailable } from "../../domain/Errors.js"
import { FinishReason, GenerateRequest, ToolCall } from "../../domain/Types.js"

const Device = Schema.Literal("auto", "cuda", "metal", "vulkan", "cpu")
const AutoOrNumber = Schema.Union(Schema.Literal("auto"), Schema.Number)

/** `LoadOptions` on the wire. */
export const WireLoadOptions = Schema.Struct({
  device: Device,
  threads: Schema.Number,
  contextSize: AutoOrNumber,
  contextSizeCap: Schema.Number,
  gpuLayers: AutoOrNumber,
  sequences: Schema.Number,
  instance: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  purpose: Schema.optional(Schema.Literal("chat", "embedding", "ranking"))
})

/** Host → worker. */
export const ToWorker = Schema.Union(
  Schema.TaggedStruct("Load", { path: Schema.String, options: WireLoadOptions }),
  Schema.TaggedStruct("Generate", { id: Schema.Number, request: GenerateRequest }),
  /** Stop generation `id`; the worker answers `Stopped` (or the request's `Done`/`Failed`). */
  Schema.TaggedStruct("Cancel", { id: Schema.Number }),
  Schema.TaggedStruct("Runtime", { id: Schema.Number, device: Device }),
  Schema.TaggedStruct("MemoryNeeds", {
    id: Schema.Number,
    path: Schema.String,
    device: Device,
    gpuLayers: AutoOrNumber,
    contextSize: Schema.Number
  }),
  /** Embed each input in order (a model loaded with purpose "embedding"); answered by `Embedded`. */
  Schema.TaggedStruct("Embed", { id: Schema.Number, inputs: Schema.Array(Schema.String) }),
  /** Score each document against the query, in order (a model loaded with purpose "ranking"); answered by `Ranked`. */
  Schema.TaggedStruct("Rank", { id: Schema.Number, query: Schema.String, documents: Schema.Array(Schema.String) }),
  /** The model's token ids for a text; answered by `Tokens`. */
  Schema.TaggedStruct("Tokenize", { id: Schema.Number, text: Schema.String }),
  /** How many tokens a request's prompt is (template and tools included); answered by `TokenCount`. */
  Schema.TaggedStruct("CountTokens", { id: Schema.Number, request: GenerateRequest }),
  /** How many context sequences the chat model has and how many are busy; answered by `SequenceCounts`. */
  Schema.TaggedStruct("Sequences", { id: Schema.Number }),
  /** The supervisor's liveness probe: answered by `Pong` from the worker's event loop, whatever else it does. */
  Schema.TaggedStruct("Ping", { id: Schema.Number })
)
/** Host → worker. */
export type ToWorker = typeof ToWorker.Type

const WorkerError = Schema.Union(BackendError, DeviceUnavailable, ContextOverflow)

const RuntimeInfo = Schema.Struct({
  device: Schema.Literal("cuda", "metal", "vulkan", "cpu"),
  reason: Schema.String,
  binary: Schema.Literal("prebuilt", "local build"),
  libraryVersion: Schema.optional(Schema.String),
  llamaCppRelease: Schema.optional(Schema.String),
  gpuNames: Schema.Array(Schema.String),
  vramTotalBytes: Schema.optional(Schema.Number),
  vramFreeBytes: Schema.optional(Schema.Number),
  warnings: Schema.Array(Schema.String)
})

/** Worker → host. */
export const FromWorker = Schema.Union(
  /** The worker is listening (sent once, first). */
  Schema.TaggedStruct("Ready", {}),
  /** The weights and context are loaded; the chat template is rendered next (its budget starts). */
  Schema.TaggedStruct("Preparing", {}),
  Schema.TaggedStruct("Loaded", { sizeBytes: Schema.Number, vramBytes: Schema.Number, contextSize: Schema.Number }),
  /**
   * The worker starts on generation `id`: its prompt is rendered and tokenized next (before a
   * context sequence is chosen for it, by what each one's cache holds), and its preparation budget
   * starts counting (time spent waiting, in the worker's inbox or for a sequence, never counts).
   */
  Schema.TaggedStruct("Started", { id: Schema.Number }),
  /** The prompt of `id` is rendered and tokenized: its preparation budget stops counting. */
  Schema.TaggedStruct("Prepared", { id: Schema.Number, promptTokens: Schema.Number }),
  Schema.TaggedStruct("Text", { id: Schema.Number, text: Schema.String }),
  /** Thinking text of `id` (a thought segment). */
  Schema.TaggedStruct("Reasoning", { id: Schema.Number, text: Schema.String }),
  /** A whole tool call of `id`, before its `Done`. */
  Schema.TaggedStruct("ToolCall", { id: Schema.Number, call: ToolCall }),
  Schema.TaggedStruct("Done", {
    id: Schema.Number,
    text: Schema.String,
    promptTokens: Schema.Number,
    /** The part of the prompt already in the sequence's KV cache. */
    cachedPromptTokens: Schema.optional(Schema.Number),
    completionTokens: Schema.Number,
    finishReason: FinishReason,
    maxTokensCapped: Schema.optional(Schema.Struct({ requested: Schema.Number, used: Schema.Number })),
    stopSequence: Schema.optional(Schema.String)
  }),
  Schema.TaggedStruct("Stopped", { id: Schema.Number }),
  /** `id` absent: the load failed. */
  Schema.TaggedStruct("Failed", { id: Schema.optional(Schema.Number), error: WorkerError }),
  Schema.TaggedStruct("RuntimeInfo", { id: Schema.Number, info: RuntimeInfo }),
  Schema.TaggedStruct("MemoryNeedsInfo", {
    id: Schema.Number,
    contextSize: Schema.Number,
    ramBytes: Schema.Number,
    vramBytes: Schema.Number
  }),
  /** One vector per input of `Embed`, in order, with the tokens each took. */
  Schema.TaggedStruct("Embedded", {
    id: Schema.Number,
    results: Schema.Array(Schema.Struct({ vector: Schema.Array(Schema.Number), tokens: Schema.Number }))
  }),
  /** One score per document of `Rank`, in order, with the tokens each pair took. */
  Schema.TaggedStruct("Ranked", {
    id: Schema.Number,
    results: Schema.Array(Schema.Struct({ score: Schema.Number, tokens: Schema.Number }))
  }),
  Schema.TaggedStruct("Tokens", { id: Schema.Number, tokens: Schema.Array(Schema.Number) }),
  Schema.TaggedStruct("TokenCount", { id: Schema.Number, count: Schema.Number }),
  Schema.TaggedStruct("SequenceCounts", { id: Schema.Number, total: Schema.Number, busy: Schema.Number }),
  Schema.TaggedStruct("Pong", { id: Schema.Number })
)
/** Worker → host. */
export type FromWorker = typeof FromWorker.Type

/** What one IPC message from the worker carries: everything it had to say in one event-loop turn, in order. */
export const FromWorkerBatch = Schema.Array(FromWorker)

/** Encodes for `process.send` (JSON-serializable). */
export const encodeToWorker = Schema.encodeSync(ToWorker)
/** Decodes what the host sent. */
export const decodeToWorker = Schema.decodeUnknownEither(ToWorker)
const encodeFromWorker = Schema.encodeSync(FromWorker)
const decodeFromWorker = Schema.decodeUnknownEither(FromWorker)

/** A text or thinking chunk: most of what crosses the link, and already its own encoding. */
const isChunk = (m: unknown): m is Extract<FromWorker, { readonly _tag: "Text" | "Reasoning" }> =>
  typeof m === "object" && m !== null && "_tag" in m && (m._tag === "Text" || m._tag === "Reasoning") &&
  "id" in m && typeof m.id === "number" && "text" in m && typeof m.text === "string" && Object.keys(m).length === 3

// Text chunks are checked by hand on both sides, everything else by the Schema: a chunk arrives
// every few tokens, rarely enough that the Schema's parser never gets hot (measured ~1 ms of host
// CPU per message, against a few µs in a tight loop; BENCHMARKS.md, the worker link).

/** Encodes a batch for `process.send` (JSON-serializable). */
export const encodeFromWorkerBatch = (batch: ReadonlyArray<FromWorker>): ReadonlyArray<unknown> =>
  batch.map((m) => (isChunk(m) ? m : encodeFromWorker(m)))
/** Decodes (and checks) a batch the worker sent: the messages, or what was wrong with it. */
export const decodeFromWorkerBatch = (raw: unknown): Either.Either<ReadonlyArray<FromWorker>, string> => {
  if (!Array.isArray(raw)) return Either.left("not a batch (an array of messages)")
  const out: Array<FromWorker> = []
  for (const m of raw) {
    if (isChunk(m)) {
      out.push(m)
      continue
    }
    const decoded = decodeFromWorker(m)
    if (Either.isLeft(decoded)) return Either.left(String(decoded.left))
    out.push(decoded.right)
  }
  return Either.right(out)
}

/**
 * Test-only hooks of the worker, a comma-separated list of `phase:match`. For files whose path
 * contains `match`: `load` / `generate` call `process.abort()` while loading / after the first
 * text; `stall-load` / `stall-template` block the worker's thread for good while loading / once the
 * chat template is being rendered at load. For generations whose
 * last message contains `match`: `stall-prepare` blocks the worker's thread once the request has
 * its sequence (its preparation, as a runaway template or tokenizer would) until the file named by
 * `TEST_RELEASE_ENV` exists; `stall-cancel` does the same when that request is cancelled. Read from
 * the worker's environment only; nothing sets it outside the test suite.
 */
export const TEST_ABORT_ENV = "LLMSPELL_TEST_WORKER_ABORT"

/** Test-only: a file the worker appends `<pid> load <path>` / `<pid> preparing` / `<pid> generate <id>` / `<pid> prepare <id>` / `<pid> cancel <id>` to, so tests know where it is. */
export const TEST_TRACE_ENV = "LLMSPELL_TEST_WORKER_TRACE"

/** Test-only: the file whose existence ends a `stall-prepare` / `stall-cancel` hook (absent: the stall lasts for good). */
export const TEST_RELEASE_ENV = "LLMSPELL_TEST_WORKER_RELEASE"

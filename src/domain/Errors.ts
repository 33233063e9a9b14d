/**
 * Every error llmspell can fail with, defined once: `Schema.TaggedError` classes whose `message`
 * says what happened and whose `hint` (always a non-empty string) says what to do next — a command
 * that works, or the setting, variable or option to change — and `LlmspellError`, the one Schema
 * union of them from which the type, the tag list, the type guard and the protocol's failure
 * schemas derive. What each operation can fail with is a smaller union beside its service
 * (`services/LocalLLM.ts`, `services/Backend.ts`); callers match them with `Effect.catchTags`.
 * What a failure means for a front end (exit code, JSON shape) is `Failure.ts`. Pure: no I/O.
 * Never put a secret (token, key) in a field.
 */
import * as Schema from "effect/Schema"
import { formatBytes, truncate } from "./Format.js"

/** The grammar shown whenever a spec is rejected. */
export const MODEL_SPEC_GRAMMAR =
  "[provider/]model[@backend], e.g. qwen2.5:0.5b, local/llama3.1:8b@ollama, workstation/qwen2.5:7b, " +
  "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M, ./models/x.gguf"

/** The status command that checks one backend type (`model status --backend gguf`), or all of them. */
const statusCommand = (backend: string): string =>
  backend === "ollama" || backend === "gguf" || backend === "cloud"
    ? `llmspell model status --backend ${backend}`
    : "llmspell model status"

/** A model spec that does not follow the grammar. */
export class InvalidModelSpec extends Schema.TaggedError<InvalidModelSpec>("llmspell/InvalidModelSpec")(
  "InvalidModelSpec",
  { spec: Schema.String, reason: Schema.String }
) {
  override get message() {
    return `invalid model spec ${JSON.stringify(truncate(this.spec, 80))}: ${this.reason}`
  }
  get hint(): string {
    return `a model spec is ${MODEL_SPEC_GRAMMAR}; \`llmspell model list\` shows the models present`
  }
}

/** The configuration (file, environment or flags) has problems; `problems` lists every one. */
export class ConfigError extends Schema.TaggedError<ConfigError>("llmspell/ConfigError")("ConfigError", {
  file: Schema.optional(Schema.String),
  problems: Schema.Array(Schema.String)
}) {
  override get message() {
    return this.problems.length === 1
      ? `invalid configuration: ${this.problems[0]}`
      : `invalid configuration (${this.problems.length} problems):\n  ${this.problems.join("\n  ")}`
  }
  /**
   * Names what to fix from where the problems come from (each problem starts with its source: the
   * file, `env NAME` or `flag --name`), and a command that works while the config is invalid
   * (`config show` would fail with this same error).
   */
  get hint(): string {
    const variables = new Set<string>()
    const flags = new Set<string>()
    let other = false
    for (const problem of this.problems) {
      const source = /^(env ([A-Za-z_][A-Za-z0-9_]*)|flag (--[a-z-]+)):/.exec(problem)
      if (source?.[2] !== undefined) variables.add(source[2])
      else if (source?.[3] !== undefined) flags.add(source[3])
      else other = true
    }
    const fixes = [
      ...(other ? [this.file !== undefined ? `fix ${this.file} (it was not changed)` : "fix the configuration given in code"] : []),
      ...(variables.size > 0 ? [`fix or unset ${[...variables].join(", ")}`] : []),
      ...(flags.size > 0 ? [`fix ${[...flags].join(", ")}`] : [])
    ]
    return `${fixes.join("; ")}; \`llmspell config path\` shows which config file is read`
  }
}

/** A provider or backend that exists in the grammar but cannot serve this request. */
export class ProviderNotAvailable extends Schema.TaggedError<ProviderNotAvailable>("llmspell/ProviderNotAvailable")(
  "ProviderNotAvailable",
  { provider: Schema.String, reason: Schema.String, spec: Schema.optional(Schema.String) }
) {
  override get message() {
    return `provider ${this.provider} is not available: ${this.reason}`
  }
  get hint(): string {
    return "local providers are `local`, `ollama`, `gguf` and the instances in your config (`llmspell config show`)"
  }
}

/** The model is not present on the backend that the spec routes to. */
export class ModelNotFound extends Schema.TaggedError<ModelNotFound>("llmspell/ModelNotFound")("ModelNotFound", {
  model: Schema.String,
  backend: Schema.String,
  instance: Schema.optional(Schema.String),
  /** What the user can pass to `llmspell model pull` to get it, when pulling can help. */
  pullSpec: Schema.optional(Schema.String),
  detail: Schema.optional(Schema.String),
  /** Replaces the default hint when pulling cannot help (a hub repo that does not exist). */
  suggestion: Schema.optional(Schema.String),
  /** What was being done (`pull`, `remove`, …): the hint depends on it. */
  operation: Schema.optional(Schema.String),
  /** A spec under which the same name exists on another configured backend (`tiny@ollama`). */
  elsewhere: Schema.optional(Schema.Struct({ spec: Schema.String, instance: Schema.String })),
  /** A spec that names a local file the user probably meant (`./x.gguf` for `x.gguf`). */
  localFile: Schema.optional(Schema.String)
}) {
  override get message() {
    const where = this.instance !== undefined && this.instance !== this.backend
      ? `${this.backend} (${this.instance})`
      : this.backend
    return `model ${this.model} not found on ${where}${this.detail ? `: ${this.detail}` : ""}`
  }
  // Every hint names a command that works: pulling what a pull just failed to find, or pulling a model
  // in order to remove it, would send the user in a circle.
  get hint(): string {
    if (this.suggestion !== undefined) return this.suggestion
    if (this.elsewhere !== undefined) {
      return `${this.model} is on ${this.elsewhere.instance}: use ${this.elsewhere.spec} ` +
        `(\`llmspell model info ${this.elsewhere.spec}\` shows it)`
    }
    if (this.localFile !== undefined) {
      return `a local file needs a path: use ${this.localFile} (\`llmspell model info ${this.localFile}\`)`
    }
    switch (this.operation) {
      case "pull":
        // pullSpec here is another name that exists (e.g. the quantization the repo has), never the one that failed
        if (this.pullSpec !== undefined) return `run \`llmspell model pull ${this.pullSpec}\``
        return this.backend === "ollama"
          ? "check the name: Ollama's library has no such model (see https://ollama.com/library); " +
            "`llmspell model list` shows the models present"
          : "check the name; `llmspell model available` lists the catalog aliases"
      case "remove":
        return "nothing to remove; `llmspell model list` shows the models present"
    }
    return this.pullSpec !== undefined
      ? `run \`llmspell model pull ${this.pullSpec}\``
      : "`llmspell model list` shows the models present"
  }
}

/** A backend (server or runtime) cannot be reached or started. */
export class BackendUnavailable extends Schema.TaggedError<BackendUnavailable>("llmspell/BackendUnavailable")(
  "BackendUnavailable",
  {
    backend: Schema.String,
    instance: Schema.optional(Schema.String),
    url: Schema.optional(Schema.String),
    reason: Schema.String,
    suggestion: Schema.optional(Schema.String),
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message() {
    return `${this.instance ?? this.backend} is unavailable${this.url ? ` at ${this.url}` : ""}: ${this.reason}`
  }
  get hint(): string {
    if (this.suggestion !== undefined) return this.suggestion
    switch (this.backend) {
      case "ollama":
        return "start it with `ollama serve`, point OLLAMA_HOST (or base_url in the config) at a running server, " +
          "or install it with `llmspell model install-ollama`"
      case "llmspell":
        return "start it with `llmspell serve`, or run without a server with --local"
    }
    return `\`${statusCommand(this.backend)}\` shows how ${this.instance ?? this.backend} is configured and whether it answers`
  }
}

/** A backend answered, but the operation failed (bad reply, dropped connection, timeout, …). */
export class BackendError extends Schema.TaggedError<BackendError>("llmspell/BackendError")("BackendError", {
  backend: Schema.String,
  instance: Schema.optional(Schema.String),
  operation: Schema.String,
  reason: Schema.String,
  suggestion: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `${this.instance ?? this.backend}: ${this.operation} failed: ${this.reason}`
  }
  // Without a suggestion the cause is unknown: no guess, only where to look.
  get hint(): string {
    return this.suggestion ??
      `run it again; if it keeps failing, \`${statusCommand(this.backend)}\` checks ${this.instance ?? this.backend} ` +
        "(add --verbose for details)"
  }
}

/** A GGUF file that is malformed; llama.cpp never sees it. */
export class InvalidModelFile extends Schema.TaggedError<InvalidModelFile>("llmspell/InvalidModelFile")(
  "InvalidModelFile",
  {
    path: Schema.String,
    reason: Schema.String,
    offset: Schema.optional(Schema.Number),
    key: Schema.optional(Schema.String)
  }
) {
  override get message() {
    const where = this.key !== undefined ? ` (key ${this.key})` : this.offset !== undefined ? ` (at byte ${this.offset})` : ""
    return `${this.path} is not a valid GGUF model: ${this.reason}${where}`
  }
  get hint(): string {
    return "the file is damaged or not a GGUF model; `llmspell model verify` checks the pulled models " +
      "(pull a damaged one again with `model pull <name> --force`)"
  }
}

/** A downloaded file whose sha256 differs from the one the hub published. */
export class ChecksumMismatch extends Schema.TaggedError<ChecksumMismatch>("llmspell/ChecksumMismatch")(
  "ChecksumMismatch",
  { file: Schema.String, expected: Schema.String, actual: Schema.String }
) {
  override get message() {
    return `checksum mismatch for ${this.file}: expected sha256 ${this.expected}, got ${this.actual}; the download was discarded`
  }
  get hint(): string {
    return "run the same pull again (`llmspell model pull <model>`); if it keeps failing, the mirror or a proxy is corrupting " +
      "data (hub.endpoint or HF_ENDPOINT names the mirror)"
  }
}

/** A download that failed after its retries (network, server errors, stalls). */
export class DownloadFailed extends Schema.TaggedError<DownloadFailed>("llmspell/DownloadFailed")("DownloadFailed", {
  url: Schema.optional(Schema.String),
  file: Schema.optional(Schema.String),
  reason: Schema.String,
  suggestion: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `download failed${this.file ? ` for ${this.file}` : ""}: ${this.reason}`
  }
  get hint(): string {
    return this.suggestion ?? "run the same pull again (`llmspell model pull <model>`): it resumes where it stopped"
  }
}

/** Not enough free disk space for a download. */
export class InsufficientDiskSpace extends Schema.TaggedError<InsufficientDiskSpace>("llmspell/InsufficientDiskSpace")(
  "InsufficientDiskSpace",
  { directory: Schema.String, neededBytes: Schema.Number, availableBytes: Schema.Number }
) {
  override get message() {
    return `not enough disk space in ${this.directory}: ${formatBytes(this.neededBytes)} needed, ` +
      `${formatBytes(this.availableBytes)} free`
  }
  get hint(): string {
    return "free some space (`llmspell model remove …`) or set model_directory / LLMSPELL_MODELS_DIR to a larger disk"
  }
}

/** The hub refused access (gated or private repo, missing or wrong token). Never carries the token. */
export class HubAuthRequired extends Schema.TaggedError<HubAuthRequired>("llmspell/HubAuthRequired")(
  "HubAuthRequired",
  { repo: Schema.String, status: Schema.Number, tokenProvided: Schema.Boolean }
) {
  override get message() {
    return `the hub refused access to ${this.repo} (HTTP ${this.status})`
  }
  get hint(): string {
    return this.tokenProvided
      ? "your token has no access to this repo: accept its license on the hub, or set HF_TOKEN (or hub.token) to a token with access"
      : "the repo is gated or private: set HF_TOKEN (or hub.token in the config) to a token with access"
  }
}

/** A device asked for explicitly (cuda, metal, vulkan) that this machine cannot use. */
export class DeviceUnavailable extends Schema.TaggedError<DeviceUnavailable>("llmspell/DeviceUnavailable")(
  "DeviceUnavailable",
  { device: Schema.String, reason: Schema.String, available: Schema.Array(Schema.String) }
) {
  override get message() {
    return `device ${this.device} is not available: ${this.reason}`
  }
  get hint(): string {
    return `available here: ${this.available.join(", ") || "none"}; set device = "auto" in the gguf instance's section of the ` +
      "config to pick the best one (`llmspell config path` shows the file)"
  }
}

/** A command line that cannot be carried out (missing prompt, conflicting options). */
export class UsageError extends Schema.TaggedError<UsageError>("llmspell/UsageError")("UsageError", {
  reason: Schema.String,
  suggestion: Schema.optional(Schema.String)
}) {
  override get message() {
    return this.reason
  }
  get hint(): string {
    return this.suggestion ?? "see `llmspell --help`"
  }
}

/** The model directory cannot hold a download (missing parent in /proc, a file, read-only). */
export class ModelStoreUnusable extends Schema.TaggedError<ModelStoreUnusable>("llmspell/ModelStoreUnusable")(
  "ModelStoreUnusable",
  { directory: Schema.String, reason: Schema.String }
) {
  override get message() {
    return `cannot use ${this.directory} as the model directory: ${this.reason}`
  }
  get hint(): string {
    return "pass a writable directory with --models-dir (or LLMSPELL_MODELS_DIR / model_directory); " +
      "`llmspell config show` prints the one in use"
  }
}

/** The disk filled up during a download; the partial file is kept for a resume. */
export class DiskFull extends Schema.TaggedError<DiskFull>("llmspell/DiskFull")("DiskFull", {
  path: Schema.String,
  neededBytes: Schema.Number,
  availableBytes: Schema.Number
}) {
  override get message() {
    return `the disk is full writing ${this.path}: ${formatBytes(this.neededBytes)} more needed, ` +
      `${formatBytes(this.availableBytes)} free`
  }
  get hint(): string {
    return "free some space (`llmspell model list` shows what the store holds, `llmspell model remove <model>` deletes one), " +
      "then run the same pull again: it resumes from the partial file"
  }
}

/** The hub asked us to wait longer than llmspell waits unattended. */
export class RateLimited extends Schema.TaggedError<RateLimited>("llmspell/RateLimited")("RateLimited", {
  retryAfterSeconds: Schema.Number,
  retryAt: Schema.String,
  url: Schema.optional(Schema.String),
  /** Set when a cloud provider (not the hub) is the one rate limiting. */
  provider: Schema.optional(Schema.String)
}) {
  override get message() {
    return this.provider !== undefined
      ? `${this.provider} is rate limiting requests and asked to wait ${this.retryAfterSeconds} s (until ${this.retryAt}); llmspell retried as long as it waits unattended`
      : `the hub is rate limiting downloads and asked to wait ${this.retryAfterSeconds} s (until ${this.retryAt})`
  }
  get hint(): string {
    return this.provider !== undefined
      ? `run the same command again after ${this.retryAt}; \`llmspell model status --backend cloud\` checks the provider`
      : `run the same pull again after ${this.retryAt} (\`llmspell model pull <model>\`); it resumes where it stopped`
  }
}

/** A model that another process is pulling right now. */
export class ModelBusy extends Schema.TaggedError<ModelBusy>("llmspell/ModelBusy")("ModelBusy", {
  model: Schema.String,
  holder: Schema.String
}) {
  override get message() {
    return `${this.model} is being pulled by ${this.holder}; it was not removed`
  }
  get hint(): string {
    return `wait for that pull to finish (or stop it), then run \`llmspell model remove ${this.model} --yes\` again`
  }
}

/** A generation request with a value out of range (max tokens, temperature, …); nothing was run. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>("llmspell/InvalidRequest")("InvalidRequest", {
  /** The request field (`maxTokens`). */
  field: Schema.String,
  /** The CLI option that sets it (`--max-tokens`), when there is one. */
  option: Schema.optional(Schema.String),
  /** What is allowed (`an integer ≥ 1`). */
  allowed: Schema.String,
  /** The rejected value, as text. */
  value: Schema.String
}) {
  override get message() {
    return `invalid request: ${this.field}${this.option !== undefined ? ` (${this.option})` : ""} must be ${this.allowed}; ` +
      `got ${this.value}`
  }
  get hint(): string {
    return `pass ${this.option ?? this.field} as ${this.allowed}, or leave it out; \`llmspell run --help\` lists the options`
  }
}

/**
 * The process running a GGUF model died (a llama.cpp assert, an abort, out of memory, a kill):
 * every request on it fails with this; the host process lives on. `logs` are the last lines
 * llama.cpp wrote before it died (the `GGML_ASSERT … failed` text is the useful one). `death`
 * says what the supervisor saw, and decides what the message blames: the file only when llama.cpp
 * aborted while loading it.
 */
export class BackendCrashed extends Schema.TaggedError<BackendCrashed>("llmspell/BackendCrashed")("BackendCrashed", {
  model: Schema.String,
  instance: Schema.optional(Schema.String),
  /** What the worker was doing: "load model", "generate", … */
  operation: Schema.String,
  signal: Schema.optional(Schema.String),
  exitCode: Schema.optional(Schema.Number),
  logs: Schema.Array(Schema.String),
  /** Loading was refused: the model crashed while loading twice in a row and its file has not changed. */
  refused: Schema.optional(Schema.Boolean),
  /**
   * How it died, as the supervisor saw it: `abort` (llama.cpp or the native code aborted: an
   * assert, a segfault), `heap` (the worker's JavaScript heap cap), `stopped` (llmspell killed it:
   * `stoppedBecause`), `signal` (a signal from outside llmspell: kill -9, the system's OOM killer),
   * `file-changed` (SIGBUS: the mmap'd file was truncated or rewritten in place), `exit` (it exited
   * with a code). Absent in reports from before it was recorded.
   */
  death: Schema.optional(Schema.Literal("abort", "heap", "stopped", "signal", "file-changed", "exit")),
  /** Why llmspell stopped it (`death: "stopped"`): what the supervisor saw. */
  stoppedBecause: Schema.optional(Schema.String),
  /** The worker's heap cap in MiB (`death: "heap"`). */
  heapMb: Schema.optional(Schema.Number)
}) {
  override get message() {
    const how = this.signal !== undefined ? `signal ${this.signal}` : `exit code ${this.exitCode ?? "unknown"}`
    const assert = this.logs.filter((l) => /GGML_ASSERT|failed|error|terminate|out of memory/i.test(l)).at(-1) ??
      this.logs.at(-1)
    const last = assert !== undefined ? `: ${assert}` : ""
    const where = `${this.instance !== undefined ? `${this.instance}: ` : ""}${this.model}`
    if (this.refused === true) return `${where}: not loaded again: its process died twice in a row while loading it (${how})${last}`
    switch (this.death) {
      case "stopped":
        return `${where}: llmspell stopped the process running llama.cpp during ${this.operation}: ${this.stoppedBecause ?? "it was stuck"}`
      case "heap":
        return `${where}: the process running llama.cpp ran out of its JavaScript heap during ${this.operation} ` +
          `(JavaScript heap out of memory${this.heapMb !== undefined ? `, a cap of ${this.heapMb} MiB` : ""})`
      case "signal":
        return `${where}: the process running llama.cpp was killed from outside llmspell (${how}) during ${this.operation}`
      case "file-changed":
        return `${where}: the process running llama.cpp died during ${this.operation} (${how}): the model file changed under it (truncated or rewritten in place)`
      default:
        return `${where}: the process running llama.cpp died during ${this.operation} (${how})${last}`
    }
  }
  get hint(): string {
    const file = `check it with \`llmspell model info ${this.model}\` or \`llmspell model verify\`, or use another file`
    if (this.refused === true) return `the model file is probably malformed or unsupported by this llama.cpp: ${file}`
    switch (this.death) {
      case "stopped":
        return "run the request again (the model loads again); if it happens again, a prompt or the model's chat template " +
          `keeps llama.cpp busy too long: prepare_timeout_seconds bounds a prompt's preparation, \`llmspell model info ${this.model}\` shows the template`
      case "heap":
        return "raise worker_max_heap_mb in the gguf instance's config, or send a shorter prompt; a chat template that builds " +
          `huge strings needs another file (\`llmspell model info ${this.model}\`)`
      case "signal":
        return "something outside llmspell ended it (kill, a service manager, or the system's out-of-memory killer: see `dmesg`); " +
          "run the request again, the model loads again (`llmspell ps` shows what is loaded and its memory)"
      case "file-changed":
        return "replace a loaded model file by renaming a new file over it, never by rewriting it in place; " +
          `\`llmspell model verify ${this.model}\` checks the file as it is now, then run the request again`
      case "exit":
        return "run the request again (the model loads again); if it happens again, run with --verbose and report the log lines above"
      case "abort":
        return this.operation === "load model"
          ? `the model file is probably malformed or unsupported by this llama.cpp: ${file}`
          : `llama.cpp aborted while running this model: run the request again; if it happens again with this model, the file may be unsupported by this llama.cpp: ${file}`
      default:
        return `the model file is probably malformed or unsupported by this llama.cpp: ${file}`
    }
  }
}

/**
 * A prompt that does not fit the model's context: refused rather than silently truncated (Ollama
 * cuts the start of a prompt that is too long and answers anyway; llmspell reports it instead).
 */
export class ContextOverflow extends Schema.TaggedError<ContextOverflow>("llmspell/ContextOverflow")("ContextOverflow", {
  model: Schema.String,
  backend: Schema.String,
  instance: Schema.optional(Schema.String),
  /** Prompt tokens the backend counted (for a truncated Ollama prompt: what it kept); absent when it does not say. */
  promptTokens: Schema.optional(Schema.Number),
  /** The context size, when known. */
  contextSize: Schema.optional(Schema.Number),
  /**
   * `embed` when an input to embed was too long, `rerank` when a query + document pair was (the
   * default is a generation's prompt).
   */
  operation: Schema.optional(Schema.Literal("generate", "embed", "rerank")),
  /** For `rerank`: the index of the document that does not fit with the query. */
  document: Schema.optional(Schema.Number)
}) {
  override get message() {
    const context = `${this.model}'s context${this.contextSize !== undefined ? ` of ${this.contextSize} tokens` : ""}`
    if (this.operation === "embed") return `an input to embed is longer than ${context}; nothing was truncated`
    if (this.operation === "rerank") {
      const pair = this.document !== undefined ? `the query with document ${this.document}` : "the query with one of the documents"
      return `${pair}${this.promptTokens !== undefined ? ` (${this.promptTokens} tokens)` : ""} is longer than ${context}; nothing was truncated`
    }
    return `the prompt does not fit ${context}` +
      (this.promptTokens !== undefined
        ? ` (${this.promptTokens} prompt tokens${this.backend === "ollama" ? " after the server truncated it" : ""})`
        : "")
  }
  get hint(): string {
    const spec = this.instance !== undefined && this.instance !== this.backend
      ? `${this.instance}/${this.model}`
      : `${this.model}@${this.backend}`
    if (this.operation === "rerank") {
      return `shorten or split ${this.document !== undefined ? `document ${this.document}` : "the longest documents"} (or the query), or raise context_size in the ` +
        `[providers.${this.instance ?? this.backend}] section of the config; \`llmspell model info ${spec}\` shows the model's trained context length`
    }
    return this.backend === "ollama"
      ? `${this.operation === "embed" ? "split the input" : "shorten the prompt or drop earlier messages"}, ` +
        "or give the model a larger context (`PARAMETER num_ctx` in a Modelfile, or OLLAMA_CONTEXT_LENGTH on the server); " +
        `\`llmspell model info ${spec}\` shows its context length`
      : `${this.operation === "embed" ? "split the input" : "shorten the prompt or drop earlier messages"}, ` +
        `or raise context_size in the [providers.${this.instance ?? this.backend}] section of the config ` +
        `(\`llmspell config path\` shows the file); \`llmspell model info ${spec}\` shows the model's trained context length`
  }
}

/** A JSON Schema (for structured output or tool parameters) that the backend cannot enforce. */
export class UnsupportedSchema extends Schema.TaggedError<UnsupportedSchema>("llmspell/UnsupportedSchema")(
  "UnsupportedSchema",
  { backend: Schema.String, keyword: Schema.String, path: Schema.String, reason: Schema.String }
) {
  override get message() {
    return `the ${this.backend} backend cannot enforce the schema keyword \`${this.keyword}\` at ${this.path || "/"}: ${this.reason}`
  }
  get hint(): string {
    return `remove \`${this.keyword}\` from the schema (check it after decoding instead), or ask for free JSON ` +
      "(`--format json` on `llmspell run`, `responseFormat: \"json\"` in the library)"
  }
}

/** `toolChoice` asked for a tool call and the model answered without one (Ollama does not enforce it). */
export class ToolChoiceViolated extends Schema.TaggedError<ToolChoiceViolated>("llmspell/ToolChoiceViolated")(
  "ToolChoiceViolated",
  { model: Schema.String, backend: Schema.String, toolChoice: Schema.String, answered: Schema.String }
) {
  override get message() {
    return `${this.model} answered ${this.answered} although toolChoice was ${this.toolChoice} ` +
      `(the ${this.backend} backend cannot enforce it; llmspell checks the answer)`
  }
  get hint(): string {
    return "retry, make the prompt ask for the tool, or use a model trained for tool calls " +
      `(\`llmspell model info ${this.model}@${this.backend}\` lists its capabilities)`
  }
}

/** An operation a backend does not offer (yet), e.g. embeddings on one that cannot embed. */
export class UnsupportedOperation extends Schema.TaggedError<UnsupportedOperation>("llmspell/UnsupportedOperation")(
  "UnsupportedOperation",
  {
    backend: Schema.String,
    operation: Schema.String,
    reason: Schema.String,
    /** Replaces the default hint (a cloud provider: what to do instead). */
    suggestion: Schema.optional(Schema.String)
  }
) {
  override get message() {
    return `the ${this.backend} backend does not support ${this.operation}: ${this.reason}`
  }
  get hint(): string {
    // Ollama has no tokenize route; everything else a GGUF model lacks, Ollama has
    return this.suggestion ?? (this.backend === "ollama"
      ? "use a GGUF model for it (`llmspell model list --backend gguf` lists them)"
      : "use an Ollama model for it (`llmspell model list --backend ollama` lists them)")
  }
}

/** A structured answer that is not JSON, or does not follow the schema it was asked for. */
export class SchemaViolation extends Schema.TaggedError<SchemaViolation>("llmspell/SchemaViolation")("SchemaViolation", {
  model: Schema.String,
  problem: Schema.String,
  /** The start of the answer, for the record. */
  answer: Schema.String
}) {
  override get message() {
    return `${this.model}'s answer does not follow the schema: ${this.problem} (answer: ${JSON.stringify(truncate(this.answer, 120))})`
  }
  get hint(): string {
    return "run it again (`--seed` picks another sample), raise `--max-tokens` if the answer was cut off, or simplify the schema"
  }
}

/**
 * The token limit cut a structured answer or a forced tool call before it was whole: what `run`
 * fails with where it promises a checked `object` (`generate` ends normally instead, with
 * `finishReason` `length` and `incomplete` set). Not a `SchemaViolation`: the model broke
 * nothing, the budget was too small for the answer.
 */
export class IncompleteAnswer extends Schema.TaggedError<IncompleteAnswer>("llmspell/IncompleteAnswer")("IncompleteAnswer", {
  model: Schema.String,
  /** What was cut: a structured answer, or the tool call `toolChoice` forced. */
  part: Schema.Literal("answer", "tool-call"),
  completionTokens: Schema.Number,
  /** The request's `maxTokens`, when it set one (else the context was what ran out). */
  maxTokens: Schema.optional(Schema.Number),
  /** The start of the answer as far as it got. */
  answer: Schema.String
}) {
  override get message() {
    const what = this.part === "answer" ? "structured answer" : "forced tool call"
    return `${this.model}'s ${what} was cut off by the token limit after ${this.completionTokens} tokens` +
      (this.maxTokens !== undefined ? ` (maxTokens ${this.maxTokens})` : " (the context was full)") +
      (this.part === "answer" ? `: its JSON is unfinished (${JSON.stringify(truncate(this.answer, 120))})` : ": no call was made")
  }
  get hint() {
    return "raise maxTokens (`--max-tokens` on `llmspell run`), or lower the schema's maxLength/maxItems so the answer fits"
  }
}

/** `llmspell serve` could not listen (the port is taken, the address is not this machine's, …). */
export class ServeFailed extends Schema.TaggedError<ServeFailed>("llmspell/ServeFailed")("ServeFailed", {
  address: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `cannot listen on ${this.address}: ${this.reason}`
  }
  get hint(): string {
    return "pick another port (`llmspell serve --port 0` takes a free one) or stop what is listening there"
  }
}

/** A cloud provider refused (or cannot be sent) the key: missing, wrong, or not allowed this model. */
export class MissingCredentials extends Schema.TaggedError<MissingCredentials>("llmspell/MissingCredentials")(
  "MissingCredentials",
  {
    provider: Schema.String,
    /** The variable the key is read from, when there is one (`OPENAI_API_KEY`, or the one `api_key` names). */
    variable: Schema.optional(Schema.String),
    /** What went wrong: no key at all, or the provider's answer (401, 403) without the key. */
    reason: Schema.String,
    /** What to do, when it is not a cloud provider's config entry (a `llmspell serve` that wants its key). */
    suggestion: Schema.optional(Schema.String)
  }
) {
  override get message() {
    return `${this.provider}: ${this.reason}`
  }
  get hint(): string {
    if (this.suggestion !== undefined) return this.suggestion
    return this.variable !== undefined
      ? `set ${this.variable} (or api_key under [providers.${this.provider}] in the config); \`llmspell model status --backend cloud\` shows whether a key is present`
      : `set api_key under [providers.${this.provider}] in the config; \`llmspell model status --backend cloud\` shows whether a key is present`
  }
}

/** `llmspell serve` refuses an operation by its policy (`--read-only`, no `--allow-paths`). */
export class ServerRefused extends Schema.TaggedError<ServerRefused>("llmspell/ServerRefused")("ServerRefused", {
  operation: Schema.String,
  reason: Schema.String,
  /** The server option behind the refusal: `--allow-paths` would allow it, `--read-only` forbids it. */
  option: Schema.String
}) {
  override get message() {
    return `the server refuses ${this.operation}: ${this.reason}`
  }
  get hint(): string {
    return this.option === "--read-only"
      ? "the server was started with --read-only; add --local to the command to run it in this process"
      : `start the server with \`llmspell serve ${this.option}\`, or add --local to the command to run it in this process`
  }
}

/** Every typed error of llmspell, as one Schema: the protocol's failure schema and the source of the type. */
export const LlmspellError = Schema.Union(
  InvalidModelSpec,
  ConfigError,
  ProviderNotAvailable,
  ModelNotFound,
  BackendUnavailable,
  BackendError,
  InvalidModelFile,
  ChecksumMismatch,
  DownloadFailed,
  InsufficientDiskSpace,
  HubAuthRequired,
  DeviceUnavailable,
  UsageError,
  ModelStoreUnusable,
  DiskFull,
  RateLimited,
  ModelBusy,
  InvalidRequest,
  BackendCrashed,
  ContextOverflow,
  UnsupportedSchema,
  ToolChoiceViolated,
  UnsupportedOperation,
  SchemaViolation,
  IncompleteAnswer,
  ServeFailed,
  MissingCredentials,
  ServerRefused
)

/** Every typed error of llmspell. */
export type LlmspellError = typeof LlmspellError.Type

/** The tag of every llmspell error. */
export type LlmspellErrorTag = LlmspellError["_tag"]

/** The tag of every llmspell error, in the union's order (derived from it: one list). */
export const LlmspellErrorTags: ReadonlyArray<LlmspellErrorTag> = LlmspellError.members.map((member) => member._tag)

const isMember = Schema.is(LlmspellError)

/** True for any llmspell error (an instance of one of the classes above). */
export const isLlmspellError = (u: unknown): u is LlmspellError => u instanceof Error && isMember(u)

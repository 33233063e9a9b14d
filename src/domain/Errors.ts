/**
 * Every error llmspell can fail with: `Schema.TaggedError` classes whose `message` says what
 * happened and whose `hint` says what to do next. Callers match them with `Effect.catchTag`.
 * The exit-code table for the CLI (and the Promise facade) lives here too, so there is one
 * mapping from error to code. Pure: no I/O. Never put a secret (token, key) in a field.
 */
import * as Cause from "effect/Cause"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/** Exit codes shared by the CLI and every other front end. */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  ModelNotFound: 3,
  BackendUnavailable: 4,
  Interrupted: 130
} as const

/** The grammar shown whenever a spec is rejected. */
export const MODEL_SPEC_GRAMMAR =
  "[provider/]model[@backend], e.g. qwen2.5:0.5b, local/llama3.1:8b@ollama, workstation/qwen2.5:7b, " +
  "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M, ./models/x.gguf"

/** A model spec that does not follow the grammar. */
export class InvalidModelSpec extends Schema.TaggedError<InvalidModelSpec>("llmspell/InvalidModelSpec")(
  "InvalidModelSpec",
  { spec: Schema.String, reason: Schema.String }
) {
  override get message() {
    return `invalid model spec ${JSON.stringify(truncate(this.spec, 80))}: ${this.reason}`
  }
  get hint() {
    return `a model spec is ${MODEL_SPEC_GRAMMAR}`
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
  get hint() {
    return this.file !== undefined
      ? `fix ${this.file} (it was not changed); \`llmspell config show\` prints the effective configuration`
      : "`llmspell config show` prints the effective configuration"
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
  get hint() {
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
  detail: Schema.optional(Schema.String)
}) {
  override get message() {
    const where = this.instance !== undefined && this.instance !== this.backend
      ? `${this.backend} (${this.instance})`
      : this.backend
    return `model ${this.model} not found on ${where}${this.detail ? `: ${this.detail}` : ""}`
  }
  get hint() {
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
  get hint() {
    if (this.suggestion !== undefined) return this.suggestion
    return this.backend === "ollama"
      ? "start it with `ollama serve`, point OLLAMA_HOST (or base_url in the config) at a running server, " +
        "or install it with `llmspell model install-ollama`"
      : undefined
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
  get hint() {
    return this.suggestion
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
  get hint() {
    return "the file is damaged or not a GGUF model; pull it again (`llmspell model pull … --force`) or check `llmspell model verify`"
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
  get hint() {
    return "run the pull again; if it keeps failing the mirror or a proxy is corrupting data"
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
  get hint() {
    return this.suggestion ?? "run the same pull again: it resumes where it stopped"
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
  get hint() {
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
  get hint() {
    return this.tokenProvided
      ? "your token has no access to this repo: accept its license on the hub or use a token with access"
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
  get hint() {
    return `available here: ${this.available.join(", ") || "none"}; set device = "auto" to pick the best one`
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
  get hint() {
    return this.suggestion ?? "see `llmspell --help`"
  }
}

/**
 * The process running a GGUF model died (a llama.cpp assert, an abort, out of memory, a kill):
 * every request on it fails with this; the host process lives on. `logs` are the last lines
 * llama.cpp wrote before it died (the `GGML_ASSERT … failed` text is the useful one).
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
  refused: Schema.optional(Schema.Boolean)
}) {
  override get message() {
    const how = this.signal !== undefined ? `signal ${this.signal}` : `exit code ${this.exitCode ?? "unknown"}`
    const assert = this.logs.filter((l) => /GGML_ASSERT|failed|error|terminate|out of memory/i.test(l)).at(-1) ??
      this.logs.at(-1)
    const where = `${this.instance !== undefined ? `${this.instance}: ` : ""}${this.model}`
    return this.refused === true
      ? `${where}: not loaded again: its process died twice in a row while loading it (${how})${assert !== undefined ? `: ${assert}` : ""}`
      : `${where}: the process running llama.cpp died during ${this.operation} (${how})${assert !== undefined ? `: ${assert}` : ""}`
  }
  get hint() {
    return `the model file is probably malformed or unsupported by this llama.cpp: check it with \`llmspell model info ${this.model}\` or \`llmspell model verify\`, or use another file`
  }
}

/** Every typed error of llmspell. */
export type LlmspellError =
  | InvalidModelSpec
  | ConfigError
  | ProviderNotAvailable
  | ModelNotFound
  | BackendUnavailable
  | BackendError
  | InvalidModelFile
  | ChecksumMismatch
  | DownloadFailed
  | InsufficientDiskSpace
  | HubAuthRequired
  | DeviceUnavailable
  | UsageError
  | BackendCrashed

const TAGS = new Set([
  "InvalidModelSpec",
  "ConfigError",
  "ProviderNotAvailable",
  "ModelNotFound",
  "BackendUnavailable",
  "BackendError",
  "InvalidModelFile",
  "ChecksumMismatch",
  "DownloadFailed",
  "InsufficientDiskSpace",
  "HubAuthRequired",
  "DeviceUnavailable",
  "UsageError",
  "BackendCrashed"
])

/** True for any llmspell error. */
export const isLlmspellError = (u: unknown): u is LlmspellError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && TAGS.has(u._tag) && u instanceof Error

/** The one error-to-exit-code table. */
export const exitCodeFor = (error: { readonly _tag: string }): number => {
  switch (error._tag) {
    case "InvalidModelSpec":
    case "ConfigError":
    case "ProviderNotAvailable":
    case "UsageError":
      return ExitCode.Usage
    case "ModelNotFound":
      return ExitCode.ModelNotFound
    case "BackendUnavailable":
      return ExitCode.BackendUnavailable
    default:
      return ExitCode.Failure
  }
}

/** The JSON shape of an error in `--json` output: `{ _tag, message, hint }`. */
export interface ErrorJson {
  readonly _tag: string
  readonly message: string
  readonly hint?: string
}

/** Turns any llmspell error into its `--json` shape. */
export const errorToJson = (error: LlmspellError): ErrorJson => {
  const hint = (error as { hint?: string | undefined }).hint
  return hint !== undefined ? { _tag: error._tag, message: error.message, hint } : { _tag: error._tag, message: error.message }
}

/** What a failed llmspell operation amounts to, for any front end (CLI, Promise facade). */
export interface FailureDescription {
  readonly error: ErrorJson
  readonly exitCode: number
  /** The typed error, the interruption, or the defect behind it. */
  readonly original: unknown
  /** False for defects: something llmspell did not expect (a bug). */
  readonly expected: boolean
}

/** Describes a failure cause with the one exit-code table: interrupted, a typed error, or a defect. */
export const describeCause = (cause: Cause.Cause<unknown>): FailureDescription => {
  if (Cause.isInterruptedOnly(cause)) {
    return {
      error: { _tag: "Interrupted", message: "the operation was interrupted" },
      exitCode: ExitCode.Interrupted,
      original: cause,
      expected: true
    }
  }
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some" && isLlmspellError(failure.value)) {
    return { error: errorToJson(failure.value), exitCode: exitCodeFor(failure.value), original: failure.value, expected: true }
  }
  const squashed = Cause.squash(cause)
  return {
    error: {
      _tag: "UnexpectedError",
      message: squashed instanceof Error ? squashed.message : String(squashed),
      hint: "this is a bug in llmspell"
    },
    exitCode: ExitCode.Failure,
    original: squashed,
    expected: false
  }
}

/** Human-readable byte counts (binary units), used in messages and tables. */
export const formatBytes = (bytes: number): string => {
  if (!Number.isFinite(bytes)) return "?"
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…` : s)

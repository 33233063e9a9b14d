/**
 * llmspell's own protocol: every LocalLLM operation as an `@effect/rpc` `Rpc` of one `RpcGroup`
 * (`LlmspellRpcs`), with its payload, success and failure — the operation's own error union from
 * `services/LocalLLM.ts` (`GenerateError`, …, each a part of the one `LlmspellError` union), so a
 * typed error on the server is the same typed error in the client program (hint included), and the
 * client's types are the service's. Pull progress and generation are streams. `llmspell serve`
 * mounts the group at `/rpc` (`serve/rpc.ts`); `LlmspellRemote` is its client. The CLI's `--json`
 * output is exactly these encoded types. Pure: schemas only, no I/O.
 */
import { IMAGE_LIMITS, imageProblem } from "./Images.js"
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { AvailableReport } from "./Catalog.js"
import * as LocalLLM from "../services/LocalLLM.js"
import { InvalidRequest, LlmspellError, UnsupportedSchema } from "./Errors.js"
import { JSON_LIMITS, nestedDeeperThan, type SchemaLimitProblem, schemaBeyondLimits } from "./JsonLimits.js"
import { InstallOllamaReport } from "./InstallOllama.js"
import {
  BackendStatus,
  BackendType,
  Completion,
  Embeddings,
  GenerateEvent,
  GenerateRequest,
  ImportResult,
  LoadedModel,
  type LimitedField,
  ModelInfo,
  ModelList,
  PullProgress,
  RemoveResult,
  RerankRequest,
  Reranking,
  REQUEST_LIMITS,
  VerifyReport
} from "./Types.js"
/** Every llmspell error as a schema: the union defined once in `Errors.ts` (each Rpc fails with a part of it). */
export const LlmspellErrorSchema = LlmspellError

/** Which backends a multi-backend request covers. */
export const BackendFilterSchema = Schema.Literal("all", "ollama", "gguf", "cloud")

/** One configured backend instance, as `LocalLLM.instances` lists it. */
export const InstanceSummary = Schema.Struct({ name: Schema.String, backend: BackendType })
/** One configured backend instance. */
export type InstanceSummary = typeof InstanceSummary.Type

/** One file a remove would delete, with its size; `sharedWith` names another model that keeps it. */
export const RemovalFile = Schema.Struct({
  path: Schema.String,
  sizeBytes: Schema.optional(Schema.Number),
  sharedWith: Schema.optional(Schema.String)
})

/** What `model remove` would delete (asked before deleting); `files` is empty when it cannot tell. */
export const RemovalPlan = Schema.Struct({
  /** The model's listed name (an alias resolves to its canonical name). */
  model: Schema.String,
  /** The instance it is removed from. */
  instance: Schema.String,
  files: Schema.Array(RemovalFile),
  sizeBytes: Schema.optional(Schema.Number)
})
/** What a remove would delete. */
export type RemovalPlan = typeof RemovalPlan.Type

/** `model install-ollama`'s flags. */
export const InstallOllamaFlags = Schema.Struct({ dryRun: Schema.Boolean, yes: Schema.Boolean })
/** `model install-ollama`'s flags. */
export type InstallOllamaFlags = typeof InstallOllamaFlags.Type

/** A completion run to its end, with the checked value of a `json`/`{ schema }` answer as `object`. */
export const RunResult = Schema.extend(Completion, Schema.Struct({ object: Schema.optional(Schema.Unknown) }))

const filter = { backend: Schema.optionalWith(BackendFilterSchema, { default: () => "all" as const }) }
const spec = { spec: Schema.String }
const pullPayload = {
  spec: Schema.String,
  quantization: Schema.optional(Schema.String),
  force: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  copy: Schema.optional(Schema.Boolean),
  dryRun: Schema.optional(Schema.Boolean)
}
const availablePayload = { recommendedOnly: Schema.optionalWith(Schema.Boolean, { default: () => false }) }

/** Health of every configured backend instance. */
export const Status = Rpc.make("Status", { payload: filter, success: Schema.Array(BackendStatus) })
/** Models present on every backend asked for. */
export const List = Rpc.make("List", { payload: filter, success: ModelList })
/** The configured backend instances. */
export const Instances = Rpc.make("Instances", { payload: filter, success: Schema.Array(InstanceSummary) })
/** What is known about one model. */
export const Info = Rpc.make("Info", { payload: spec, success: ModelInfo, error: LocalLLM.InfoError })
/** A pull: a stream of progress events, the last one (phase `done`) with the result. */
export const Pull = Rpc.make("Pull", {
  payload: pullPayload,
  success: PullProgress,
  error: LocalLLM.PullError,
  stream: true
})
/** Removes a model. */
export const Remove = Rpc.make("Remove", { payload: spec, success: RemoveResult, error: LocalLLM.RemoveError })
/** What a remove would delete. */
export const PlanRemoval = Rpc.make("PlanRemoval", { payload: spec, success: RemovalPlan, error: LocalLLM.PlanRemovalError })
/** Verifies one model or every pulled model. */
export const Verify = Rpc.make("Verify", {
  payload: { spec: Schema.optional(Schema.String) },
  success: VerifyReport,
  error: LocalLLM.VerifyError
})
/** A generation: a stream of events (deltas, tool calls), the last one `Finish`. */
export const Generate = Rpc.make("Generate", {
  payload: { spec: Schema.String, request: GenerateRequest },
  success: GenerateEvent,
  error: LocalLLM.GenerateError,
  stream: true
})
/** A generation run to its end (a structured answer checked). */
export const Run = Rpc.make("Run", {
  payload: { spec: Schema.String, request: GenerateRequest },
  success: RunResult,
  error: LocalLLM.RunError
})
/** Embeds texts: one vector per input, in order. */
export const Embed = Rpc.make("Embed", {
  payload: { spec: Schema.String, inputs: Schema.Array(Schema.String) },
  success: Embeddings,
  error: LocalLLM.EmbedError
})
/** Orders documents by relevance to a query: indexes and scores, best first, cut to `topN`. */
export const Rerank = Rpc.make("Rerank", {
  payload: { spec: Schema.String, request: RerankRequest },
  success: Reranking,
  error: LocalLLM.RerankError
})
/** The curated catalog marked with what fits the server's free memory and what is already on its disk. */
export const Available = Rpc.make("Available", {
  payload: availablePayload,
  success: AvailableReport,
  error: LocalLLM.AvailableError
})
/** Imports a GGUF file (a path on the server's machine) into the default GGUF store. */
export const Import = Rpc.make("Import", {
  payload: { file: Schema.String, name: Schema.optional(Schema.String), copy: Schema.optional(Schema.Boolean) },
  success: ImportResult,
  error: LocalLLM.ImportError
})
/** Whether Ollama is installed and running, and what installing it would run (nothing is run). */
export const PlanOllamaInstall = Rpc.make("PlanOllamaInstall", {
  payload: InstallOllamaFlags,
  success: InstallOllamaReport,
  error: LocalLLM.PlanOllamaInstallError
})
/** Plans and, with `yes` and without `dryRun`, runs the official Ollama installer. */
export const InstallOllama = Rpc.make("InstallOllama", {
  payload: InstallOllamaFlags,
  success: InstallOllamaReport,
  error: LocalLLM.InstallOllamaError
})

/** Models loaded in memory now (`llmspell ps`). */
export const Ps = Rpc.make("Ps", { payload: filter, success: Schema.Array(LoadedModel) })
/** Unloads a model now (`llmspell stop`). */
export const Unload = Rpc.make("Unload", { payload: spec, success: Schema.Void, error: LocalLLM.KeepAliveError })
/** How long an idle loaded model stays loaded, in seconds (0: unload when idle; negative: keep). */
export const KeepAlive = Rpc.make("KeepAlive", {
  payload: { spec: Schema.String, seconds: Schema.Number },
  success: Schema.Void,
  error: LocalLLM.KeepAliveError
})
/** Loads a model now, without generating; then it stays for `keepAliveSeconds` once idle. */
export const Load = Rpc.make("Load", {
  payload: { spec: Schema.String, keepAliveSeconds: Schema.optional(Schema.Number) },
  success: Schema.Void,
  error: LocalLLM.LoadError
})

/** Every LocalLLM operation but `resolve` (which hands out a live backend, not a result). */
export class LlmspellRpcs extends RpcGroup.make(
  Status,
  List,
  Instances,
  Info,
  Pull,
  Remove,
  PlanRemoval,
  Verify,
  Generate,
  Run,
  Embed,
  Rerank,
  Available,
  Import,
  PlanOllamaInstall,
  InstallOllama,
  Ps,
  Unload,
  KeepAlive,
  Load
) {}

const shown = (value: unknown): string =>
  typeof value === "number" || typeof value === "bigint" || typeof value === "boolean" || value == null
    ? String(value)
    : JSON.stringify(value)?.slice(0, 80) ?? typeof value

/**
 * Checks a generation request against its schema (every numeric field's range, message roles, stop
 * strings) and the bounds on the JSON it carries (`JsonLimits`: schemas, tool-call arguments)
 * before anything is loaded or sent: the one check behind `LocalLLM.generate`/`run`, the Promise
 * facade and `llmspell run`. The error names the field, its CLI option and what is allowed; a schema
 * beyond the bounds is an `UnsupportedSchema` naming the keyword, where, and the limit.
 */
export const validateGenerateRequest = (request: unknown): Either.Either<GenerateRequest, InvalidRequest | UnsupportedSchema> =>
  Either.flatMap(decodeGenerateRequest(request), checkJsonBounds)

const tooCostly = (prefix: string) => (problem: SchemaLimitProblem) =>
  new UnsupportedSchema({ backend: "llmspell", keyword: problem.keyword, path: `${prefix}${problem.path}`, reason: problem.reason })

/** The bounds on the untrusted JSON inside a decoded request (each walk is iterative). */
const checkJsonBounds = (request: GenerateRequest): Either.Either<GenerateRequest, InvalidRequest | UnsupportedSchema> => {
  const format = request.responseFormat
  if (typeof format === "object") {
    const problem = schemaBeyondLimits(format.schema)
    if (problem !== undefined) return Either.left(tooCostly("#/responseFormat/schema")(problem))
  }
  for (const tool of request.tools ?? []) {
    const problem = schemaBeyondLimits(tool.parameters)
    if (problem !== undefined) return Either.left(tooCostly(`#/tools/${tool.name}/parameters`)(problem))
  }
  let images = 0
  for (const [i, message] of request.messages.entries()) {
    for (const [j, image] of (message.images ?? []).entries()) {
      images++
      const problem = images > IMAGE_LIMITS.count
        ? `at most ${IMAGE_LIMITS.count} images in one request`
        : imageProblem(image, `messages.${i}.images.${j}`)
      if (problem !== undefined) {
        return Either.left(
          new InvalidRequest({
            field: `messages.${i}.images.${j}`,
            allowed: `base64 image data, at most ${IMAGE_LIMITS.bytes / 1024 / 1024} MiB per image and ${IMAGE_LIMITS.count} images per request`,
            value: problem
          })
        )
      }
    }
    for (const [j, call] of (message.toolCalls ?? []).entries()) {
      if (nestedDeeperThan(call.params, JSON_LIMITS.maxDepth)) {
        return Either.left(
          new InvalidRequest({
            field: `messages.${i}.toolCalls.${j}.params`,
            allowed: `JSON nested at most ${JSON_LIMITS.maxDepth} deep`,
            value: "a value nested deeper"
          })
        )
      }
    }
  }
  return Either.right(request)
}

const decodeGenerateRequest = (request: unknown): Either.Either<GenerateRequest, InvalidRequest> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(GenerateRequest, { errors: "first", onExcessProperty: "ignore" })(request),
    (error) => {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
      const path = issue?.path ?? []
      const key = path[0]
      if (typeof key === "string" && key in REQUEST_LIMITS) {
        const limit = REQUEST_LIMITS[key as LimitedField]
        return new InvalidRequest({
          field: key,
          ...(limit.option !== undefined ? { option: limit.option } : {}),
          allowed: limit.allowed,
          value: shown((request as Record<string, unknown>)[key])
        })
      }
      let value: unknown = request
      for (const step of path) value = (value as Record<PropertyKey, unknown> | undefined)?.[step]
      return new InvalidRequest({
        field: path.length > 0 ? path.map(String).join(".") : "request",
        allowed: `valid (${issue?.message ?? "malformed request"})`,
        value: shown(value)
      })
    }
  )

/** The `--json` error envelope (defined with the other failure shapes in `Failure.ts`). */
export { ErrorEnvelope } from "./Failure.js"

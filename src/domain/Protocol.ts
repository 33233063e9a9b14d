/**
 * The LocalLLM request/response protocol: each operation as a `Schema.TaggedRequest` with its
 * payload, success and failure schemas, so the same operations can be served over a connection
 * later and the CLI's `--json` output is exactly these encoded types. Pure: no I/O.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { InvalidRequest, LlmspellError } from "./Errors.js"
import {
  Embeddings,
  GenerateEvent,
  GenerateRequest,
  type LimitedField,
  ModelInfo,
  ModelList,
  PullProgress,
  RemoveResult,
  REQUEST_LIMITS,
  StatusReport,
  VerifyReport
} from "./Types.js"

/** Every llmspell error as a schema: the union defined once in `Errors.ts`. */
export const LlmspellErrorSchema = LlmspellError

/** Which backends a multi-backend request covers. */
export const BackendFilterSchema = Schema.Literal("all", "ollama", "gguf")

/** Health of every configured backend instance. */
export class Status extends Schema.TaggedRequest<Status>("llmspell/Status")("Status", {
  payload: { backend: Schema.optionalWith(BackendFilterSchema, { default: () => "all" as const }) },
  success: StatusReport,
  failure: LlmspellErrorSchema
}) {}

/** Models present on every backend asked for. */
export class List extends Schema.TaggedRequest<List>("llmspell/List")("List", {
  payload: { backend: Schema.optionalWith(BackendFilterSchema, { default: () => "all" as const }) },
  success: ModelList,
  failure: LlmspellErrorSchema
}) {}

/** A pull; served as a stream of progress events, the last one with the result. */
export class Pull extends Schema.TaggedRequest<Pull>("llmspell/Pull")("Pull", {
  payload: {
    spec: Schema.String,
    quantization: Schema.optional(Schema.String),
    force: Schema.optionalWith(Schema.Boolean, { default: () => false })
  },
  success: PullProgress,
  failure: LlmspellErrorSchema
}) {}

/** What is known about one model. */
export class Info extends Schema.TaggedRequest<Info>("llmspell/Info")("Info", {
  payload: { spec: Schema.String },
  success: ModelInfo,
  failure: LlmspellErrorSchema
}) {}

/** Removes a model. */
export class Remove extends Schema.TaggedRequest<Remove>("llmspell/Remove")("Remove", {
  payload: { spec: Schema.String },
  success: RemoveResult,
  failure: LlmspellErrorSchema
}) {}

/** Verifies one model or every pulled model. */
export class Verify extends Schema.TaggedRequest<Verify>("llmspell/Verify")("Verify", {
  payload: { spec: Schema.optional(Schema.String) },
  success: VerifyReport,
  failure: LlmspellErrorSchema
}) {}

/** A generation; served as a stream of events (deltas, tool calls), the last one `Finish`. */
export class Generate extends Schema.TaggedRequest<Generate>("llmspell/Generate")("Generate", {
  payload: { spec: Schema.String, request: GenerateRequest },
  success: GenerateEvent,
  failure: LlmspellErrorSchema
}) {}

/** Embeds texts: one vector per input, in order. */
export class Embed extends Schema.TaggedRequest<Embed>("llmspell/Embed")("Embed", {
  payload: { spec: Schema.String, inputs: Schema.Array(Schema.String) },
  success: Embeddings,
  failure: LlmspellErrorSchema
}) {}

const shown = (value: unknown): string =>
  typeof value === "number" || typeof value === "bigint" || typeof value === "boolean" || value == null
    ? String(value)
    : JSON.stringify(value)?.slice(0, 80) ?? typeof value

/**
 * Checks a generation request against its schema (every numeric field's range, message roles, stop
 * strings) before anything is loaded or sent: the one check behind `LocalLLM.generate`/`run`, the
 * Promise facade and `llmspell run`. The error names the field, its CLI option and what is allowed.
 */
export const validateGenerateRequest = (request: unknown): Either.Either<GenerateRequest, InvalidRequest> =>
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

/** Every request of the protocol. */
export const LocalLLMRequest = Schema.Union(Status, List, Pull, Info, Remove, Verify, Generate, Embed)
/** Every request of the protocol. */
export type LocalLLMRequest = typeof LocalLLMRequest.Type

/** The `--json` error envelope (defined with the other failure shapes in `Failure.ts`). */
export { ErrorEnvelope } from "./Failure.js"

/**
 * A generation's errors in each API's own terms: the request fields an error names (`max_tokens`,
 * `options.num_predict`) and what to do about it, said with the API's fields, never with a CLI
 * option or an `llmspell` command (those are the library's hints, for the library's users). The
 * errors a generation request can get from its own content are rewritten here; anything else
 * keeps the server's generic answer (`Http.toHttpFailure`).
 */
import { isLlmspellError } from "../domain/Errors.js"
import { GRAMMAR_OPERATION } from "../layers/gguf/llamaGrammar.js"
import { HttpFailure, statusFor, toHttpFailure } from "./Http.js"

/** How one API names what a generation request holds. */
export interface ApiTerms {
  /** `GenerateRequest` field → the API's name for it (`maxTokens` → `max_tokens`). */
  readonly fields: Readonly<Record<string, string>>
  /** Where the answer's schema sits (`response_format.json_schema.schema`). */
  readonly schema: string
  /** How to ask for free JSON instead (`response_format {"type":"json_object"}`). */
  readonly freeJson: string
}

/** A request field (a dotted path, `messages.2.content`) by the API's name. */
const fieldName = (terms: ApiTerms, field: string): string => {
  const [first, ...rest] = field.split(".")
  const named = terms.fields[first!] ?? first!
  return [named, ...rest].join(".")
}

/** A schema location (`#/responseFormat/schema/properties/a`) by the API's names. */
const schemaPath = (terms: ApiTerms, path: string): string => {
  const answer = /^#\/responseFormat\/schema(.*)$/.exec(path)
  if (answer !== null) return `${terms.schema}${answer[1] !== "" ? ` at ${answer[1]}` : ""}`
  const tool = /^#\/tools\/([^/]+)\/parameters(.*)$/.exec(path)
  if (tool !== null) return `the parameters of tool ${JSON.stringify(tool[1])}${tool[2] !== "" ? ` at ${tool[2]}` : ""}`
  return path === "" ? terms.schema : path
}

const limit = (terms: ApiTerms) => terms.fields["maxTokens"] ?? "maxTokens"

/** An error of a generation request as this API answers it. */
export const toApiFailure = (terms: ApiTerms) => (error: unknown): HttpFailure => {
  if (error instanceof HttpFailure || !isLlmspellError(error)) return toHttpFailure(error)
  const status = statusFor(error)
  switch (error._tag) {
    case "InvalidRequest":
      return new HttpFailure(status, `invalid request: ${fieldName(terms, error.field)} must be ${error.allowed}; got ${error.value}`)
    case "UnsupportedSchema":
      return new HttpFailure(
        status,
        `${schemaPath(terms, error.path)}: the schema keyword \`${error.keyword}\` cannot be enforced (${error.reason}); ` +
          `remove it (and check it on the answer yourself), or ask for free JSON with ${terms.freeJson}`
      )
    case "SchemaViolation":
      return new HttpFailure(
        status,
        `${error.message}; a retry (another seed) may follow it, or the schema can leave the keyword out`
      )
    case "IncompleteAnswer":
      return new HttpFailure(status, `${error.message}; raise ${limit(terms)}, or lower the schema's maxLength/maxItems`)
    case "ToolChoiceViolated":
      return new HttpFailure(status, `${error.message}; retry, or make the prompt ask for the tool`)
    case "UnsupportedOperation":
      // images sent to a model that cannot see them: said with the API's words, not the CLI's hint
      if (error.operation === "images") {
        return new HttpFailure(status, `this request's images cannot be read by the model (${error.backend} backend): ${error.reason}`)
      }
      // a request field the model's backend cannot honour (Ollama has no logit bias, …)
      return Object.hasOwn(terms.fields, error.operation)
        ? new HttpFailure(
          status,
          `${fieldName(terms, error.operation)} cannot be honoured by this model's backend (${error.backend}): ${error.reason}; leave it out, or use another model`
        )
        : toHttpFailure(error)
    case "BackendError":
      // llama.cpp refused the grammar built from a schema within llmspell's bounds (its own limits
      // add up across the schema): the schema's fault, said as such
      return error.operation === GRAMMAR_OPERATION
        ? new HttpFailure(400, `${terms.schema}: llama.cpp refused the grammar built from this schema (${error.reason}); lower its maxItems/maxLength or simplify it`)
        : toHttpFailure(error)
    case "ContextOverflow":
      return new HttpFailure(
        status,
        `${error.message}; shorten the prompt or drop earlier messages` +
          (error.backend !== "ollama"
            ? " (the server sets this model's context size)"
            : terms.fields["contextSize"] !== undefined
            ? `, or raise ${terms.fields["contextSize"]}`
            : "")
      )
    default:
      return toHttpFailure(error)
  }
}

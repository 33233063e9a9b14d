/**
 * A small JSON Schema checker for structured output: what `llmspell run --schema` and the Promise
 * facade use to check a model's answer after generation (a backend's grammar may not enforce every
 * keyword — Ollama's and llama.cpp's leave out `pattern` and bounds). It knows the keywords that
 * Effect's `JSONSchema.make` and hand-written schemas use; `unsupportedKeyword` names any other
 * keyword up front, so nothing in a schema is silently ignored. Annotations (`title`,
 * `description`, `format`, `default`, …) assert nothing and are accepted. Pure: no I/O.
 */
import * as Either from "effect/Either"
import { IncompleteAnswer, SchemaViolation, UnsupportedSchema } from "./Errors.js"
import type { Completion, GenerateRequest, ResponseFormat } from "./Types.js"

type JsonSchema = Readonly<Record<string, unknown>>

/** Keywords that assert nothing (accepted anywhere, checked nowhere). */
export const ANNOTATIONS: ReadonlySet<string> = new Set([
  "$schema",
  "$id",
  "$comment",
  "title",
  "description",
  "default",
  "examples",
  "format",
  "readOnly",
  "writeOnly",
  "deprecated"
])

/** The keywords this checker checks: any other assertion is refused up front. */
export const ASSERTIONS: ReadonlySet<string> = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "prefixItems",
  "minItems",
  "maxItems",
  "uniqueItems",
  "enum",
  "const",
  "anyOf",
  "oneOf",
  "allOf",
  "not",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minLength",
  "maxLength",
  "pattern",
  "minProperties",
  "maxProperties",
  "$ref",
  "$defs",
  "definitions",
  "nullable"
])

/** A JSON object (not null, not an array). */
export const isObject = (u: unknown): u is JsonSchema => typeof u === "object" && u !== null && !Array.isArray(u)

/** The node a local `$ref` (`#/…`, JSON-pointer escapes) names in `root`; undefined when it names none. */
export const resolveLocalRef = (root: unknown, ref: string): unknown => {
  if (!ref.startsWith("#")) return undefined
  let node: unknown = root
  for (const step of ref.slice(1).split("/").filter((s) => s.length > 0)) {
    node = isObject(node) ? node[step.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined
  }
  return node
}

/**
 * The first keyword of a schema (or a sub-schema) this checker does not know, with its path.
 * Iterative (an explicit stack): a schema from a file or a request may nest arbitrarily deep.
 */
export const unsupportedKeyword = (schema: unknown, path = ""): { readonly keyword: string; readonly path: string } | undefined => {
  const stack: Array<readonly [unknown, string]> = [[schema, path]]
  while (stack.length > 0) {
    const [node, at] = stack.shift()!
    if (typeof node === "boolean") continue
    if (!isObject(node)) return { keyword: "(not an object)", path: at }
    const nested: Array<readonly [unknown, string]> = []
    for (const [key, value] of Object.entries(node)) {
      if (ANNOTATIONS.has(key)) continue
      if (!ASSERTIONS.has(key)) return { keyword: key, path: at }
      if (key === "properties" || key === "$defs" || key === "definitions") {
        if (isObject(value)) for (const [k, v] of Object.entries(value)) nested.push([v, `${at}/${key}/${k}`])
      } else if (key === "anyOf" || key === "oneOf" || key === "allOf" || key === "prefixItems") {
        if (Array.isArray(value)) value.forEach((v, i) => nested.push([v, `${at}/${key}/${i}`]))
      } else if (key === "items" || key === "not" || (key === "additionalProperties" && isObject(value))) {
        nested.push([value, `${at}/${key}`])
      }
    }
    // depth first, in order: the first unknown keyword found is the one a reader meets first
    stack.unshift(...nested)
  }
  return undefined
}

const typeOf = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
    ? "array"
    : typeof value === "number"
    ? Number.isInteger(value) ? "integer" : "number"
    : typeof value

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/** Where the value breaks the schema (`/path: what`), or undefined when it follows it. */
export const checkJsonSchema = (schema: unknown, value: unknown): string | undefined => {
  const resolve = (ref: string): unknown => resolveLocalRef(schema, ref)
  const check = (s: unknown, v: unknown, path: string, depth: number): string | undefined => {
    if (depth > 64) return `${path || "/"}: the schema nests too deep (a $ref cycle?)`
    if (s === true || s === undefined) return undefined
    if (s === false) return `${path || "/"}: no value is allowed here`
    if (!isObject(s)) return undefined
    const at = path || "/"
    if (typeof s.$ref === "string") {
      const target = resolve(s.$ref)
      if (target === undefined) return `${at}: unresolvable $ref ${s.$ref}`
      const problem = check(target, v, path, depth + 1)
      if (problem !== undefined) return problem
    }
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? s.type : [s.type]
      const actual = typeOf(v)
      const ok = types.some((t) => t === actual || (t === "number" && actual === "integer")) ||
        (s.nullable === true && v === null)
      if (!ok) return `${at}: expected ${types.join(" or ")}, got ${actual}`
    }
    if (Array.isArray(s.enum) && !s.enum.some((e) => sameJson(e, v))) {
      return `${at}: expected one of ${JSON.stringify(s.enum)}`
    }
    if ("const" in s && !sameJson(s.const, v)) return `${at}: expected ${JSON.stringify(s.const)}`
    if (typeof v === "number") {
      if (typeof s.minimum === "number" && v < s.minimum) return `${at}: ${v} is below the minimum ${s.minimum}`
      if (typeof s.maximum === "number" && v > s.maximum) return `${at}: ${v} is above the maximum ${s.maximum}`
      if (typeof s.exclusiveMinimum === "number" && v <= s.exclusiveMinimum) return `${at}: ${v} is not above ${s.exclusiveMinimum}`
      if (typeof s.exclusiveMaximum === "number" && v >= s.exclusiveMaximum) return `${at}: ${v} is not below ${s.exclusiveMaximum}`
      if (typeof s.multipleOf === "number" && s.multipleOf > 0 && Math.abs(v / s.multipleOf - Math.round(v / s.multipleOf)) > 1e-9) {
        return `${at}: ${v} is not a multiple of ${s.multipleOf}`
      }
    }
    if (typeof v === "string") {
      const length = [...v].length
      if (typeof s.minLength === "number" && length < s.minLength) return `${at}: shorter than ${s.minLength} characters`
      if (typeof s.maxLength === "number" && length > s.maxLength) return `${at}: longer than ${s.maxLength} characters`
      if (typeof s.pattern === "string") {
        let matches = false
        try {
          matches = new RegExp(s.pattern, "u").test(v)
        } catch {
          return `${at}: the schema's pattern ${JSON.stringify(s.pattern)} is not a valid regular expression`
        }
        if (!matches) return `${at}: does not match ${JSON.stringify(s.pattern)}`
      }
    }
    if (Array.isArray(v)) {
      if (typeof s.minItems === "number" && v.length < s.minItems) return `${at}: fewer than ${s.minItems} items`
      if (typeof s.maxItems === "number" && v.length > s.maxItems) return `${at}: more than ${s.maxItems} items`
      if (s.uniqueItems === true && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) return `${at}: items are not unique`
      const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : []
      for (let i = 0; i < v.length; i++) {
        const problem = check(i < prefix.length ? prefix[i] : s.items, v[i], `${path}/${i}`, depth + 1)
        if (problem !== undefined) return problem
      }
    }
    if (isObject(v)) {
      const properties = isObject(s.properties) ? s.properties : {}
      for (const key of Array.isArray(s.required) ? s.required : []) {
        if (typeof key === "string" && !(key in v)) return `${at}: missing required property ${JSON.stringify(key)}`
      }
      const count = Object.keys(v).length
      if (typeof s.minProperties === "number" && count < s.minProperties) return `${at}: fewer than ${s.minProperties} properties`
      if (typeof s.maxProperties === "number" && count > s.maxProperties) return `${at}: more than ${s.maxProperties} properties`
      for (const [key, item] of Object.entries(v)) {
        const sub = key in properties ? properties[key] : s.additionalProperties
        if (sub === false) return `${at}: unexpected property ${JSON.stringify(key)}`
        const problem = check(sub, item, `${path}/${key}`, depth + 1)
        if (problem !== undefined) return problem
      }
    }
    if (Array.isArray(s.allOf)) {
      for (const sub of s.allOf) {
        const problem = check(sub, v, path, depth + 1)
        if (problem !== undefined) return problem
      }
    }
    if (Array.isArray(s.anyOf) && !s.anyOf.some((sub) => check(sub, v, path, depth + 1) === undefined)) {
      return `${at}: matches none of the anyOf alternatives`
    }
    if (Array.isArray(s.oneOf) && s.oneOf.filter((sub) => check(sub, v, path, depth + 1) === undefined).length !== 1) {
      return `${at}: does not match exactly one of the oneOf alternatives`
    }
    if (s.not !== undefined && check(s.not, v, path, depth + 1) === undefined) return `${at}: matches the schema under "not"`
    return undefined
  }
  return check(schema, value, "", 0)
}

/** Refuses a schema with a keyword the check does not know, naming it (nothing is silently ignored). */
export const supportedSchema = (schema: Readonly<Record<string, unknown>>): Either.Either<Readonly<Record<string, unknown>>, UnsupportedSchema> => {
  const found = unsupportedKeyword(schema)
  return found === undefined
    ? Either.right(schema)
    : Either.left(
      new UnsupportedSchema({
        backend: "llmspell",
        keyword: found.keyword,
        path: found.path,
        reason: "llmspell cannot check it in the answer"
      })
    )
}

/**
 * The JSON value of a structured answer: for `json`, any JSON; for `{ schema }`, JSON that follows
 * the schema. Free text (`text` or no format) is not parsed and gives undefined.
 */
export const structuredAnswer = (
  model: string,
  text: string,
  format: ResponseFormat | undefined
): Either.Either<unknown, SchemaViolation> => {
  if (format === undefined || format === "text") return Either.right(undefined)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return Either.left(
      new SchemaViolation({ model, problem: `the answer is not JSON (${(error as Error).message})`, answer: text.slice(0, 400) })
    )
  }
  if (format === "json") return Either.right(value)
  const problem = checkJsonSchema(format.schema, value)
  return problem === undefined ? Either.right(value) : Either.left(new SchemaViolation({ model, problem, answer: text.slice(0, 400) }))
}

const parses = (text: string): boolean => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/**
 * A completion with `incomplete` set where the token limit (`length`) cut what the request asked
 * for in a shape: a `json`/`{ schema }` answer whose JSON does not parse (`answer`), or no call
 * where `toolChoice` forced one (`tool-call`). Backend-neutral (Ollama, cloud and GGUF answers
 * alike); one already marked is left as it is.
 */
export const markIncomplete = (request: GenerateRequest, completion: Completion): Completion => {
  if (completion.finishReason !== "length" || completion.incomplete !== undefined) return completion
  const format = request.responseFormat
  if ((format === "json" || typeof format === "object") && !parses(completion.text)) return { ...completion, incomplete: "answer" }
  const forced = request.toolChoice === "required" || typeof request.toolChoice === "object"
  if (forced && (request.tools ?? []).length > 0 && (completion.toolCalls ?? []).length === 0) {
    return { ...completion, incomplete: "tool-call" }
  }
  return completion
}

/** The error `run` fails with for a completion the token limit left `incomplete`. */
export const incompleteAnswer = (completion: Completion, maxTokens: number | undefined): IncompleteAnswer | undefined =>
  completion.incomplete === undefined ? undefined : new IncompleteAnswer({
    model: completion.model,
    part: completion.incomplete,
    completionTokens: completion.usage.completionTokens,
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    answer: completion.text.slice(0, 400)
  })

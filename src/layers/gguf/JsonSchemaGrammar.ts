/**
 * JSON Schema → the schema subset node-llama-cpp turns into a grammar (`GbnfJsonSchema`, given to
 * `llama.createGrammarForJsonSchema`), and the plan of a GGUF generation with tools, `toolChoice`
 * and `responseFormat` (which node-llama-cpp cannot combine: `grammar` and `functions` are
 * mutually exclusive, and it has no `tool_choice`). Pure: no I/O, no node-llama-cpp import; the
 * host runs it to refuse a schema before loading anything, the worker runs it again to build the
 * grammar.
 *
 * Where each keyword goes (nothing is silently dropped; the answer is always checked against the
 * ORIGINAL schema afterwards with `JsonSchemaCheck.checkJsonSchema`, and so are a tool call's
 * params against its tool's parameters, so "checked after" keywords end in a typed
 * `SchemaViolation` when the model breaks them):
 *
 * | keyword | where | why |
 * |---|---|---|
 * | `type` (one or several), `properties`, `items`, `prefixItems`, `enum`/`const` (scalars) | grammar | node-llama-cpp has them |
 * | draft-07 tuples (`items: [..]`, `additionalItems`), as Effect emits them | grammar, as `prefixItems` | |
 * | `anyOf` | grammar, as `oneOf` | node-llama-cpp knows only `oneOf`; the grammar emits one alternative, which satisfies `anyOf` |
 * | `oneOf` | grammar + checked after | the grammar emits one alternative; "exactly one matches" is only checkable on the value |
 * | `$ref`/`$defs`/`definitions` | inlined (siblings of a `$ref` overlaid) | recursive refs are refused: an unbounded nesting cannot be bounded (termination) |
 * | `allOf` with one member | inlined | Effect emits it for a single refinement |
 * | `allOf` with several, `not`, `enum`/`const` of objects or arrays, `false` | refused (`UnsupportedSchema`) | no grammar for them |
 * | `required` | grammar (all properties are always written) | node-llama-cpp writes every listed property: a value with the optional ones present still follows the schema |
 * | `additionalProperties` | grammar; absent next to `properties` ⇒ none written | writing no extra property is always valid |
 * | `minLength`/`maxLength` | grammar; `maxLength` defaults to `limits.maxStringLength` | a weak model can keep a string going until `maxTokens` |
 * | `minItems`/`maxItems`, `minProperties`/`maxProperties` | grammar; `maxItems` (and `maxProperties` of free-form objects) get defaults | same: termination |
 * | integer `minimum`/`maximum`/`exclusive*` (+ `multipleOf`) with both ends and at most `limits.maxEnumeratedIntegers` (128) values | grammar, as an `enum` of the integers | node-llama-cpp has no numeric bounds |
 * | other numeric bounds, `multipleOf` | checked after | no grammar for them (numbers are bounded to 16 digits, integers take no exponent, a number's exponent at most two digits: `llamaGrammar.narrowJsonGrammar`) |
 * | `pattern`, `uniqueItems` | checked after | no grammar for them |
 * | `format` `date-time`/`date`/`time` | grammar | node-llama-cpp has them |
 * | other `format`s, `title`, `description`, `default`, `examples`, `$comment`, … | annotations (assert nothing, as in JSON Schema) | `description` is kept: function calling shows it to the model |
 * | `nullable` (OpenAPI) | grammar, as `oneOf [schema, null]` | |
 * | any other keyword | refused (`UnsupportedSchema`) | neither the grammar nor the checker knows it |
 * | bounds past `GrammarLimits` (items, lengths, alternatives, nesting, total repetitions) | refused, naming the limit | llama.cpp would refuse the grammar, or take minutes or all memory to build and run it |
 *
 * A value of any type (`{}` or `true`, and `responseFormat: "json"`) is a bounded "any JSON":
 * scalars, arrays and objects nested at most `limits.maxAnyDepth` deep, with the same string,
 * item and property bounds. Keys of free-form objects are the one thing node-llama-cpp does not
 * let us bound; a budget that still runs out is reported as a `SchemaViolation` by the caller.
 */
import * as Either from "effect/Either"
import { SchemaViolation, UnsupportedSchema } from "../../domain/Errors.js"
import { ANNOTATIONS, ASSERTIONS, isObject, resolveLocalRef, structuredAnswer } from "../../domain/JsonSchemaCheck.js"
import type { Completion, GenerateRequest, ToolDefinition } from "../../domain/Types.js"

/** A JSON object in node-llama-cpp's `GbnfJsonSchema` subset. */
export type GrammarSchema = { readonly [key: string]: unknown }

/** Bounds written into the grammar where the schema gives none, so constrained output terminates. */
export interface GrammarLimits {
  /** `maxLength` of a string without one. */
  readonly maxStringLength: number
  /** `maxItems` of an array without one. */
  readonly maxArrayItems: number
  /** `maxProperties` of a free-form object (one whose keys the schema does not list). */
  readonly maxObjectProperties: number
  /** How deep a value of any type may nest arrays and objects. */
  readonly maxAnyDepth: number
  /**
   * An integer range of at most this many values becomes an `enum` (so the grammar enforces it).
   * Kept small: node-llama-cpp shows a function's parameter schema to the model, enum and all.
   */
  readonly maxEnumeratedIntegers: number
  /** A schema that expands (after inlining `$ref`s) to more nodes than this is refused. */
  readonly maxNodes: number
  /** How deep sub-schemas may nest (after inlining `$ref`s). */
  readonly maxDepth: number
  /**
   * The largest `minItems`/`maxItems`/`minProperties`/`maxProperties` (and tuple length): llama.cpp
   * expands a repetition into rules and refuses a group repeated past its "sane defaults" (2,000
   * symbols): on node-llama-cpp 3.22's build a free-form object of 1,000 properties already fails,
   * 500 of anything passes (jsonSchemaGrammar.test.ts builds the grammars at these bounds).
   */
  readonly maxItemsBound: number
  /** The largest `minLength`: each required character is a copy in llama.cpp's rule, and 2,048 is refused. */
  readonly maxMinLength: number
  /** The largest `maxLength` (each optional character is a rule of llama.cpp's). */
  readonly maxMaxLength: number
  /** Alternatives of one `oneOf`/`anyOf`/`enum`: each is a parser stack checked against every token. */
  readonly maxAlternatives: number
  /** The repetitions of the whole grammar together (the sum of every string's and array's bounds). */
  readonly maxRepetitions: number
}

/**
 * The defaults: 256 characters per string, 32 items per array, 16 keys per free-form object; and
 * what a schema may cost before it is refused (`UnsupportedSchema` naming the limit) rather than
 * handed to llama.cpp, which would refuse it, or take minutes (a 100,000-value enum), or run out
 * of memory (`maxLength: 1e9`).
 */
export const DEFAULT_GRAMMAR_LIMITS: GrammarLimits = {
  maxStringLength: 256,
  maxArrayItems: 32,
  maxObjectProperties: 16,
  maxAnyDepth: 2,
  maxEnumeratedIntegers: 128,
  maxNodes: 4000,
  maxDepth: 32,
  maxItemsBound: 500,
  maxMinLength: 1000,
  maxMaxLength: 65_536,
  maxAlternatives: 1000,
  maxRepetitions: 262_144
}

/** A keyword the grammar does not enforce, checked on the answer instead. */
export interface CheckedAfter {
  readonly keyword: string
  readonly path: string
}

/** A schema as node-llama-cpp takes it, and what is left to check on the answer. */
export interface ConvertedSchema {
  readonly grammar: GrammarSchema
  readonly checkedAfter: ReadonlyArray<CheckedAfter>
}

type Json = Readonly<Record<string, unknown>>

// What a schema may hold: the checker's annotations and keywords (one list, JsonSchemaCheck.ts), and
// draft-07 tuples' `additionalItems`, which the conversion turns into `prefixItems`.
const HANDLED: ReadonlySet<string> = new Set([...ASSERTIONS, "additionalItems"])

const GRAMMAR_FORMATS = new Set(["date-time", "date", "time"])

const isScalar = (u: unknown) => u === null || ["string", "number", "boolean"].includes(typeof u)

class Refused {
  constructor(readonly keyword: string, readonly path: string, readonly reason: string) {}
}

const pointerStep = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1")

/** Converts a JSON Schema for the grammar, or refuses it naming the keyword and its JSON pointer. */
export const toGrammarSchema = (
  schema: unknown,
  limits: GrammarLimits = DEFAULT_GRAMMAR_LIMITS
): Either.Either<ConvertedSchema, UnsupportedSchema> => {
  const checkedAfter: Array<CheckedAfter> = []
  let nodes = 0
  const after = (keyword: string, path: string) => {
    if (!checkedAfter.some((c) => c.keyword === keyword && c.path === path)) checkedAfter.push({ keyword, path })
  }
  const resolve = (ref: string, path: string): unknown => {
    if (!ref.startsWith("#")) throw new Refused("$ref", path, `only local references (#/…) can be inlined, not ${ref}`)
    const node = resolveLocalRef(schema, ref)
    if (node === undefined) throw new Refused("$ref", path, `${ref} does not resolve`)
    return node
  }

  const anyValue = (depth: number): GrammarSchema => {
    const string = { type: "string", maxLength: limits.maxStringLength }
    const scalars: Array<GrammarSchema> = [string, { type: "number" }, { type: ["boolean", "null"] }]
    if (depth <= 0) return { oneOf: scalars }
    const inner = anyValue(depth - 1)
    return {
      oneOf: [
        ...scalars,
        { type: "array", items: inner, maxItems: limits.maxArrayItems },
        { type: "object", additionalProperties: inner, maxProperties: limits.maxObjectProperties }
      ]
    }
  }

  let repetitions = 0
  const repeat = (keyword: string, path: string, count: number) => {
    repetitions += count
    if (repetitions > limits.maxRepetitions) {
      throw new Refused(keyword, path, `the grammar's bounds add up to more than ${limits.maxRepetitions} repetitions; lower the schema's maxLength/maxItems`)
    }
  }
  const itemsBound = (keyword: string, path: string, bound: number) => {
    if (bound > limits.maxItemsBound) throw new Refused(keyword, path, `${bound} is more than the grammar can repeat (at most ${limits.maxItemsBound})`)
  }

  const convert = (s: unknown, path: string, refs: ReadonlyArray<string>, depth = 0): GrammarSchema => {
    if (++nodes > limits.maxNodes) {
      throw new Refused("$ref", path, `the schema expands to more than ${limits.maxNodes} nodes once its references are inlined`)
    }
    if (depth > limits.maxDepth) throw new Refused("(nesting)", path, `sub-schemas nest more than ${limits.maxDepth} deep`)
    const sub = (child: unknown, childPath: string, childRefs: ReadonlyArray<string> = refs) => convert(child, childPath, childRefs, depth + 1)
    if (s === true) return anyValue(limits.maxAnyDepth)
    if (s === false) throw new Refused("false", path, "no value is allowed here")
    if (!isObject(s)) throw new Refused("(not an object)", path, "a schema is an object or a boolean")
    for (const key of Object.keys(s)) {
      if (!ANNOTATIONS.has(key) && !HANDLED.has(key)) {
        throw new Refused(key, path, "neither the grammar nor llmspell's answer check knows this keyword")
      }
    }
    const description = typeof s.description === "string" ? { description: s.description } : {}

    if (typeof s.$ref === "string") {
      if (refs.includes(s.$ref)) {
        throw new Refused("$ref", path, `${s.$ref} refers to itself: a recursive schema has no bound on its nesting`)
      }
      const target = resolve(s.$ref, path)
      const { $ref: _ref, ...siblings } = s
      return sub(isObject(target) ? { ...target, ...siblings } : target, path, [...refs, s.$ref])
    }
    if (s.not !== undefined) throw new Refused("not", path, "a grammar cannot exclude a schema")
    if (Array.isArray(s.allOf)) {
      const { allOf, ...rest } = s
      if (allOf.length !== 1 || !isObject(allOf[0])) {
        throw new Refused("allOf", path, "only an allOf of one schema can be inlined; merge the schemas into one")
      }
      return sub({ ...allOf[0], ...rest }, path)
    }
    if (s.nullable === true) {
      const { nullable: _n, ...rest } = s
      return { oneOf: [sub(rest, path), { type: "null" }], ...description }
    }
    for (const keyword of ["anyOf", "oneOf"] as const) {
      const alternatives = s[keyword]
      if (!Array.isArray(alternatives)) continue
      if (alternatives.length === 0) throw new Refused(keyword, path, "no alternative is given")
      if (alternatives.length > limits.maxAlternatives) {
        throw new Refused(keyword, path, `${alternatives.length} alternatives; at most ${limits.maxAlternatives}`)
      }
      if (keyword === "oneOf") after("oneOf", path)
      const { anyOf: _a, oneOf: _o, ...siblings } = s
      const shared = Object.fromEntries(Object.entries(siblings).filter(([k]) => !ANNOTATIONS.has(k)))
      return {
        oneOf: alternatives.map((alternative, i) =>
          sub(isObject(alternative) ? { ...shared, ...alternative } : alternative, `${path}/${keyword}/${i}`)
        ),
        ...description
      }
    }
    if ("const" in s) {
      if (!isScalar(s.const)) throw new Refused("const", path, "the grammar has constants for strings, numbers, booleans and null only")
      return { const: s.const, ...description }
    }
    if (Array.isArray(s.enum)) {
      if (!s.enum.every(isScalar)) throw new Refused("enum", path, "the grammar has enums of strings, numbers, booleans and null only")
      if (s.enum.length === 0) throw new Refused("enum", path, "an empty enum allows no value")
      if (s.enum.length > limits.maxAlternatives) throw new Refused("enum", path, `${s.enum.length} values; at most ${limits.maxAlternatives}`)
      return { enum: s.enum, ...description }
    }

    const types: ReadonlyArray<unknown> = Array.isArray(s.type)
      ? s.type
      : s.type !== undefined
      ? [s.type]
      : s.properties !== undefined || s.additionalProperties !== undefined
      ? ["object"]
      : s.items !== undefined || s.prefixItems !== undefined
      ? ["array"]
      : []
    if (types.length === 0) return { ...anyValue(limits.maxAnyDepth), ...description }
    if (types.length > 1) return { oneOf: types.map((type) => sub({ ...s, type }, path)), ...description }
    const type = types[0]
    switch (type) {
      case "string": {
        if (s.pattern !== undefined) after("pattern", path)
        if (typeof s.format === "string" && GRAMMAR_FORMATS.has(s.format)) {
          if (s.minLength !== undefined || s.maxLength !== undefined) after("maxLength", path)
          return { type: "string", format: s.format, ...description }
        }
        const minLength = typeof s.minLength === "number" ? Math.max(0, Math.ceil(s.minLength)) : 0
        const maxLength = typeof s.maxLength === "number" ? Math.floor(s.maxLength) : Math.max(limits.maxStringLength, minLength)
        if (maxLength < minLength) throw new Refused("maxLength", path, `maxLength ${maxLength} is below minLength ${minLength}`)
        if (minLength > limits.maxMinLength) throw new Refused("minLength", path, `${minLength} is more than the grammar can require (at most ${limits.maxMinLength})`)
        if (maxLength > limits.maxMaxLength) throw new Refused("maxLength", path, `${maxLength} is more than the grammar can bound (at most ${limits.maxMaxLength})`)
        repeat("maxLength", path, maxLength)
        return { type: "string", ...(minLength > 0 ? { minLength } : {}), maxLength, ...description }
      }
      case "integer":
      case "number": {
        const lower = Math.max(
          typeof s.minimum === "number" ? s.minimum : -Infinity,
          typeof s.exclusiveMinimum === "number" ? s.exclusiveMinimum + (type === "integer" ? 1 : Number.EPSILON) : -Infinity
        )
        const upper = Math.min(
          typeof s.maximum === "number" ? s.maximum : Infinity,
          typeof s.exclusiveMaximum === "number" ? s.exclusiveMaximum - (type === "integer" ? 1 : Number.EPSILON) : Infinity
        )
        const bounded = Number.isFinite(lower) || Number.isFinite(upper) || s.multipleOf !== undefined
        if (type === "integer" && Number.isFinite(lower) && Number.isFinite(upper) && Math.floor(upper) - Math.ceil(lower) < limits.maxEnumeratedIntegers) {
          const values: Array<number> = []
          for (let n = Math.ceil(lower); n <= Math.floor(upper); n++) {
            if (typeof s.multipleOf !== "number" || s.multipleOf <= 0 || Number.isInteger(n / s.multipleOf)) values.push(n)
          }
          if (values.length === 0) throw new Refused("minimum", path, "no integer satisfies the bounds")
          return { enum: values, ...description }
        }
        for (const keyword of ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]) {
          if (bounded && s[keyword] !== undefined) after(keyword, path)
        }
        return { type, ...description }
      }
      case "boolean":
      case "null":
        return { type, ...description }
      case "object": {
        const properties = isObject(s.properties) ? s.properties : {}
        const converted = Object.fromEntries(
          Object.entries(properties).map(([key, value]) => [key, sub(value, `${path}/properties/${pointerStep(key)}`)])
        )
        const additional = s.additionalProperties
        const listed = Object.keys(properties).length
        // absent next to `properties`: writing no extra key is valid (and what node-llama-cpp does)
        const extra = additional === false || (additional === undefined && listed > 0)
          ? undefined
          : additional === true || additional === undefined
          ? anyValue(limits.maxAnyDepth - 1)
          : sub(additional, `${path}/additionalProperties`)
        const minProperties = typeof s.minProperties === "number" ? s.minProperties : undefined
        const maxProperties = typeof s.maxProperties === "number"
          ? s.maxProperties
          : extra !== undefined
          ? Math.max(listed + limits.maxObjectProperties, minProperties ?? 0)
          : undefined
        if (minProperties !== undefined) itemsBound("minProperties", path, minProperties)
        if (maxProperties !== undefined && extra !== undefined) {
          itemsBound("maxProperties", path, maxProperties)
          repeat("maxProperties", path, maxProperties)
        }
        if (maxProperties !== undefined && maxProperties < listed) {
          throw new Refused("maxProperties", path, `the grammar writes all ${listed} listed properties, more than maxProperties ${maxProperties}`)
        }
        return {
          type: "object",
          properties: converted,
          ...(extra !== undefined ? { additionalProperties: extra } : {}),
          ...(minProperties !== undefined && extra !== undefined ? { minProperties } : {}),
          ...(maxProperties !== undefined && extra !== undefined ? { maxProperties } : {}),
          ...description
        }
      }
      case "array": {
        if (s.uniqueItems === true) after("uniqueItems", path)
        // draft-07 tuples (what Effect emits): `items` as an array, the rest under `additionalItems`
        const tuple: ReadonlyArray<unknown> = Array.isArray(s.items) ? s.items : Array.isArray(s.prefixItems) ? s.prefixItems : []
        const tupleKeyword = Array.isArray(s.items) ? "items" : "prefixItems"
        const rest = Array.isArray(s.items) ? s.additionalItems : s.items
        itemsBound(tupleKeyword, path, tuple.length)
        const prefix = tuple.map((item, i) => sub(item, `${path}/${tupleKeyword}/${i}`))
        const items = rest === false
          ? undefined
          : rest === undefined || rest === true
          ? anyValue(limits.maxAnyDepth - 1)
          : sub(rest, `${path}/${Array.isArray(s.items) ? "additionalItems" : "items"}`)
        const minItems = typeof s.minItems === "number" ? Math.max(0, Math.ceil(s.minItems)) : 0
        const maxItems = items === undefined
          ? Math.min(prefix.length, typeof s.maxItems === "number" ? Math.floor(s.maxItems) : prefix.length)
          : typeof s.maxItems === "number"
          ? Math.floor(s.maxItems)
          : Math.max(limits.maxArrayItems, minItems, prefix.length)
        if (maxItems < minItems) throw new Refused("maxItems", path, `maxItems ${maxItems} is below minItems ${minItems}`)
        itemsBound("minItems", path, minItems)
        itemsBound("maxItems", path, maxItems)
        repeat("maxItems", path, maxItems)
        return {
          type: "array",
          ...(prefix.length > 0 ? { prefixItems: prefix } : {}),
          ...(items !== undefined ? { items } : {}),
          ...(minItems > 0 ? { minItems } : {}),
          maxItems,
          ...description
        }
      }
      default:
        throw new Refused("type", path, `unknown type ${JSON.stringify(type)}`)
    }
  }

  try {
    return Either.right({ grammar: convert(schema, "", []), checkedAfter })
  } catch (e) {
    if (e instanceof Refused) {
      return Either.left(new UnsupportedSchema({ backend: "gguf", keyword: e.keyword, path: e.path, reason: e.reason }))
    }
    throw e
  }
}

/** `responseFormat: "json"`: any JSON object, bounded like every other value. */
export const anyJsonObjectSchema = (limits: GrammarLimits = DEFAULT_GRAMMAR_LIMITS): GrammarSchema =>
  Either.getOrThrow(toGrammarSchema({ type: "object" }, limits)).grammar

// ---------------------------------------------------------------------------------------------
// The plan of one generation
// ---------------------------------------------------------------------------------------------

/** A function as node-llama-cpp's `ChatModelFunctions` takes it. */
export interface GrammarFunction {
  readonly description?: string
  readonly params?: GrammarSchema
}

/**
 * How a request runs on node-llama-cpp:
 * - `Text`: free text (no tools offered, or `toolChoice: "none"`, and no JSON format);
 * - `Functions`: node-llama-cpp's own function calling (`toolChoice: "auto"` and free text): the
 *   model decides, its wrapper's syntax and node-llama-cpp's parameter grammar do the rest;
 * - `Grammar`: generation under one JSON-Schema grammar. `output` says what the JSON is:
 *   `answer` (the structured answer itself), `tool` (`{ name, arguments }` of one of the allowed
 *   tools: `toolChoice` `required` or a named tool, which node-llama-cpp cannot force), or
 *   `toolOrAnswer` (tools with `toolChoice: "auto"` and a JSON answer format: either
 *   `{ name, arguments }` or `{ answer }`, since node-llama-cpp cannot give a grammar and
 *   functions together). `instructions` is appended to the system prompt so the model knows the tools.
 */
export type GenerationPlan =
  | { readonly _tag: "Text" }
  | { readonly _tag: "Functions"; readonly functions: Readonly<Record<string, GrammarFunction>> }
  | {
    readonly _tag: "Grammar"
    readonly schema: GrammarSchema
    readonly output: "answer" | "tool" | "toolOrAnswer"
    readonly instructions?: string
  }

const toolsOffered = (request: GenerateRequest): ReadonlyArray<ToolDefinition> => {
  const tools = request.tools ?? []
  const choice = request.toolChoice ?? "auto"
  if (choice === "none") return []
  if (typeof choice === "object") return tools.filter((t) => t.name === choice.tool)
  return tools
}

const at = (prefix: string) => (e: UnsupportedSchema) => new UnsupportedSchema({ ...e, path: `${prefix}${e.path}` })

const withoutDialect = (schema: Json): Json => {
  const { $schema: _dialect, ...rest } = schema
  return rest
}

const toolInstructions = (tools: ReadonlyArray<ToolDefinition>, answer: boolean) =>
  [
    answer
      ? "Either call one of these tools, answering with a JSON object {\"name\": <tool name>, \"arguments\": <its parameters>}, " +
        "or give your final answer as {\"answer\": <the answer>}."
      : "Call one of these tools: answer with a JSON object {\"name\": <tool name>, \"arguments\": <its parameters>}.",
    "Tools:",
    ...tools.map((t) =>
      `- ${t.name}${t.description !== undefined ? `: ${t.description}` : ""} (parameters: ${JSON.stringify(withoutDialect(t.parameters))})`
    )
  ].join("\n")

/** The plan of a request, or the `UnsupportedSchema` naming what cannot be enforced (a tool's parameters or the answer's schema). */
export const generationPlan = (
  request: GenerateRequest,
  limits: GrammarLimits = DEFAULT_GRAMMAR_LIMITS
): Either.Either<GenerationPlan, UnsupportedSchema> =>
  Either.gen(function*() {
    const format = request.responseFormat
    const answer = format === undefined || format === "text"
      ? undefined
      : format === "json"
      ? anyJsonObjectSchema(limits)
      : (yield* Either.mapLeft(toGrammarSchema(format.schema, limits), at("#/responseFormat/schema"))).grammar
    const tools = toolsOffered(request)
    const params: Array<readonly [ToolDefinition, GrammarSchema]> = []
    for (const tool of tools) {
      const converted = yield* Either.mapLeft(toGrammarSchema(tool.parameters, limits), at(`#/tools/${tool.name}/parameters`))
      params.push([tool, converted.grammar])
    }
    const choice = request.toolChoice ?? "auto"
    if (tools.length === 0) return answer === undefined ? { _tag: "Text" } : { _tag: "Grammar", schema: answer, output: "answer" }
    if (choice === "auto" && answer === undefined) {
      return {
        _tag: "Functions",
        functions: Object.fromEntries(params.map(([tool, schema]) => [
          tool.name,
          { ...(tool.description !== undefined ? { description: tool.description } : {}), params: schema }
        ]))
      }
    }
    const calls: Array<GrammarSchema> = params.map(([tool, schema]) => ({
      type: "object",
      properties: { name: { const: tool.name }, arguments: schema }
    }))
    const forced = choice !== "auto"
    const alternatives = forced || answer === undefined
      ? calls
      : [...calls, { type: "object", properties: { answer } }]
    return {
      _tag: "Grammar",
      schema: alternatives.length === 1 ? alternatives[0]! : { oneOf: alternatives },
      output: forced ? "tool" : "toolOrAnswer",
      instructions: toolInstructions(tools, !forced)
    }
  })

/**
 * The end of a constrained generation, checked: JSON breaking a keyword the grammar does not
 * enforce (`pattern`, numeric bounds, …), or text that is not the grammar's JSON, is a
 * `SchemaViolation`, never half a document reported as success. Running out of tokens is not
 * one: a `length` finish keeps its partial answer, marked `incomplete` (`answer`, or
 * `tool-call` for a call that was not made), unless the answer is whole anyway (cut right at its
 * end), which is a `stop`.
 */
export const constrainedOutcome = (
  model: string,
  plan: GenerationPlan,
  request: GenerateRequest,
  completion: Completion
): Either.Either<Completion, SchemaViolation> => {
  if (plan._tag !== "Grammar" || completion.finishReason === "abort" || completion.finishReason === "tool-calls") {
    return Either.right(completion)
  }
  if (completion.finishReason === "length") {
    if (plan.output === "answer") {
      return Either.isRight(structuredAnswer(model, completion.text, request.responseFormat))
        ? Either.right({ ...completion, finishReason: "stop" })
        : Either.right({ ...completion, incomplete: "answer" })
    }
    // the worker left the partial answer of an `{ answer }` alternative as text, and no text for a call
    return Either.right({ ...completion, incomplete: completion.text.length > 0 ? "answer" : "tool-call" })
  }
  if (completion.finishReason !== "stop") {
    return Either.left(
      new SchemaViolation({
        model,
        problem: `the ${plan.output === "tool" ? "forced tool call" : "JSON answer"} is not the JSON its grammar allows`,
        answer: completion.text.slice(0, 400)
      })
    )
  }
  return Either.map(structuredAnswer(model, completion.text, request.responseFormat), () => completion)
}

/**
 * The JSON Schema → node-llama-cpp grammar-schema converter (pure): what goes into the grammar,
 * what is checked after generation, what is refused with the keyword and its JSON pointer, and
 * the bounds that make constrained output terminate.
 */
import * as Either from "effect/Either"
import * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"
import { describe, expect, it } from "vitest"
import {
  DEFAULT_GRAMMAR_LIMITS,
  generationPlan,
  type GrammarSchema,
  toGrammarSchema
} from "../src/layers/gguf/JsonSchemaGrammar.js"
import { narrowJsonGrammar } from "../src/layers/gguf/llamaGrammar.js"
import { JSON_LIMITS, nestedDeeperThan, schemaBeyondLimits } from "../src/domain/JsonLimits.js"
import { unsupportedKeyword } from "../src/domain/JsonSchemaCheck.js"
import type { GenerateRequest } from "../src/domain/Types.js"

const ok = (schema: unknown) => {
  const result = toGrammarSchema(schema)
  if (Either.isLeft(result)) throw new Error(`refused: ${result.left.message}`)
  return result.right
}
const refused = (schema: unknown) => {
  const result = toGrammarSchema(schema)
  if (Either.isRight(result)) throw new Error(`accepted: ${JSON.stringify(result.right.grammar)}`)
  return result.left
}

/** Every string and array in a grammar schema has an upper bound (the termination guarantee). */
const assertBounded = (g: unknown, path = ""): void => {
  if (Array.isArray(g)) return g.forEach((x, i) => assertBounded(x, `${path}/${i}`))
  if (typeof g !== "object" || g === null) return
  const s = g as GrammarSchema
  const types = Array.isArray(s.type) ? s.type : [s.type]
  if (types.includes("string") && s.format === undefined) expect(s.maxLength, `${path}: string without maxLength`).toBeTypeOf("number")
  if (types.includes("array")) expect(s.maxItems, `${path}: array without maxItems`).toBeTypeOf("number")
  if (types.includes("object") && s.additionalProperties !== undefined && s.additionalProperties !== false) {
    expect(s.maxProperties, `${path}: free-form object without maxProperties`).toBeTypeOf("number")
  }
  expect(s.$ref, `${path}: $ref left in`).toBeUndefined()
  expect(s.anyOf, `${path}: anyOf left in`).toBeUndefined()
  for (const [k, v] of Object.entries(s)) assertBounded(v, `${path}/${k}`)
}

describe("toGrammarSchema", () => {
  it("bounds a plain string with the default maxLength, and keeps a given one", () => {
    expect(ok({ type: "string" }).grammar).toEqual({ type: "string", maxLength: DEFAULT_GRAMMAR_LIMITS.maxStringLength })
    expect(ok({ type: "string", minLength: 2, maxLength: 5 }).grammar).toEqual({ type: "string", minLength: 2, maxLength: 5 })
    expect(toGrammarSchema({ type: "string" }, { ...DEFAULT_GRAMMAR_LIMITS, maxStringLength: 12 }).pipe(Either.getOrThrow).grammar)
      .toEqual({ type: "string", maxLength: 12 })
  })

  it("converts an Effect Schema.Struct (JSONSchema.make): $ref inlined with its siblings, anyOf → oneOf, bounded int → enum", () => {
    const Person = Schema.Struct({
      name: Schema.String,
      age: Schema.optional(Schema.Int.pipe(Schema.between(0, 3))),
      kind: Schema.Literal("a", "b"),
      nick: Schema.NullOr(Schema.String),
      tags: Schema.Array(Schema.String)
    }).annotations({ identifier: "Person" })
    const converted = ok(JSONSchema.make(Person))
    assertBounded(converted.grammar)
    const props = converted.grammar.properties as Record<string, GrammarSchema>
    expect(props.age).toMatchObject({ enum: [0, 1, 2, 3] })
    expect(props.kind).toEqual({ enum: ["a", "b"] })
    expect(props.nick).toEqual({ oneOf: [{ type: "string", maxLength: 256 }, { type: "null" }] })
    expect(props.tags).toEqual({ type: "array", items: { type: "string", maxLength: 256 }, maxItems: 32 })
    expect(converted.checkedAfter).toEqual([])
  })

  it("refuses a recursive $ref, naming $ref and where it is", () => {
    interface Tree {
      readonly v: number
      readonly kids: ReadonlyArray<Tree>
    }
    const Tree: Schema.Schema<Tree> = Schema.Struct({
      v: Schema.Number,
      kids: Schema.Array(Schema.suspend((): Schema.Schema<Tree> => Tree))
    }).annotations({ identifier: "Tree" })
    const e = refused(JSONSchema.make(Tree))
    expect(e._tag).toBe("UnsupportedSchema")
    expect(e.keyword).toBe("$ref")
    expect(e.path).toBe("/properties/kids/items")
    expect(e.message).toContain("$ref")
  })

  it("moves keywords the grammar cannot enforce to the answer check (pattern, one-sided bounds, multipleOf, uniqueItems, oneOf)", () => {
    const converted = ok({
      type: "object",
      properties: {
        id: { type: "string", pattern: "^[a-z]+$" },
        n: { type: "integer", minimum: 0 },
        x: { type: "number", minimum: 0, maximum: 1, multipleOf: 0.5 },
        set: { type: "array", items: { type: "integer" }, uniqueItems: true },
        either: { oneOf: [{ type: "string" }, { type: "boolean" }] }
      },
      required: ["id"],
      additionalProperties: false
    })
    expect(converted.checkedAfter).toEqual(expect.arrayContaining([
      { keyword: "pattern", path: "/properties/id" },
      { keyword: "minimum", path: "/properties/n" },
      { keyword: "minimum", path: "/properties/x" },
      { keyword: "maximum", path: "/properties/x" },
      { keyword: "multipleOf", path: "/properties/x" },
      { keyword: "uniqueItems", path: "/properties/set" },
      { keyword: "oneOf", path: "/properties/either" }
    ]))
    assertBounded(converted.grammar)
  })

  it("refuses keywords neither the grammar nor the check knows, with their JSON pointer", () => {
    const e = refused({ type: "object", properties: { a: { type: "object", patternProperties: { "^x": { type: "string" } } } } })
    expect([e.keyword, e.path]).toEqual(["patternProperties", "/properties/a"])
    expect(refused({ not: { type: "string" } }).keyword).toBe("not")
    expect(refused({ allOf: [{ type: "string" }, { maxLength: 3 }] }).keyword).toBe("allOf")
    expect(refused({ type: "array", items: { enum: [{ a: 1 }] } })).toMatchObject({ keyword: "enum", path: "/items" })
    expect(refused({ type: "object", properties: { "a/b": false } })).toMatchObject({ keyword: "false", path: "/properties/a~1b" })
    expect(refused({ $ref: "https://example.com/schema.json" }).keyword).toBe("$ref")
  })

  it("turns Effect's draft-07 tuples (items as an array, additionalItems) into prefixItems", () => {
    const fixed = ok(JSONSchema.make(Schema.Tuple(Schema.String, Schema.Int))).grammar
    expect(fixed).toMatchObject({ type: "array", prefixItems: [{ type: "string" }, { type: "integer" }], minItems: 2, maxItems: 2 })
    expect(fixed.items).toBeUndefined()
    const rest = ok(JSONSchema.make(Schema.Tuple([Schema.String], Schema.Boolean))).grammar
    expect(rest).toMatchObject({ prefixItems: [{ type: "string" }], items: { type: "boolean" }, minItems: 1, maxItems: 32 })
  })

  it("inlines an allOf of one schema (what Effect emits for a single refinement)", () => {
    expect(ok({ allOf: [{ type: "string" }], maxLength: 4 }).grammar).toEqual({ type: "string", maxLength: 4 })
  })

  it("splits a type list into oneOf, each bounded", () => {
    const g = ok({ type: ["string", "array"], items: { type: "number" } }).grammar
    expect(g.oneOf).toHaveLength(2)
    assertBounded(g)
  })

  it("gives free-form objects and values of any type a bounded any-JSON grammar", () => {
    for (const schema of [{}, true, { type: "object" }, { type: "array" }, { type: "object", additionalProperties: true }]) {
      assertBounded(ok(schema).grammar)
    }
    const g = ok({ type: "object", properties: { a: { type: "string" } }, additionalProperties: { type: "integer" } }).grammar
    expect(g).toMatchObject({ additionalProperties: { type: "integer" }, maxProperties: 1 + DEFAULT_GRAMMAR_LIMITS.maxObjectProperties })
  })

  it("keeps the date formats node-llama-cpp has, treats other formats as annotations", () => {
    expect(ok({ type: "string", format: "date-time" }).grammar).toEqual({ type: "string", format: "date-time" })
    expect(ok({ type: "string", format: "email" }).grammar).toEqual({ type: "string", maxLength: 256 })
  })

  it("turns integer ranges into enums, respecting exclusive bounds and multipleOf, and refuses an empty range", () => {
    expect(ok({ type: "integer", exclusiveMinimum: 0, maximum: 10, multipleOf: 5 }).grammar).toEqual({ enum: [5, 10] })
    expect(ok({ type: "integer", minimum: 0, maximum: 1000 }).checkedAfter.map((c) => c.keyword)).toEqual(["minimum", "maximum"])
    expect(refused({ type: "integer", minimum: 3, maximum: 2 }).keyword).toBe("minimum")
  })

  it("refuses a bound contradicting itself or the listed properties", () => {
    expect(refused({ type: "string", minLength: 5, maxLength: 2 }).keyword).toBe("maxLength")
    expect(refused({ type: "array", minItems: 5, maxItems: 2 }).keyword).toBe("maxItems")
    expect(refused({ type: "object", properties: { a: {}, b: {} }, additionalProperties: true, maxProperties: 1 }).keyword)
      .toBe("maxProperties")
  })

  it("refuses a schema that expands past the node limit (a $ref DAG)", () => {
    const $defs: Record<string, unknown> = { d0: { type: "string" } }
    for (let i = 1; i <= 14; i++) $defs[`d${i}`] = { type: "array", prefixItems: [{ $ref: `#/$defs/d${i - 1}` }, { $ref: `#/$defs/d${i - 1}` }] }
    // whichever bound the expansion passes first: the node count, or the repetitions of its strings together
    expect(refused({ $defs, $ref: "#/$defs/d14" }).reason).toMatch(/more than 4000 nodes|more than 262144 repetitions/)
  })
})

describe("generationPlan", () => {
  const weather = { name: "weather", description: "the weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }
  const time = { name: "time", parameters: { type: "object", properties: { zone: { enum: ["utc", "local"] } } } }
  const base: GenerateRequest = { messages: [{ role: "user", content: "hi" }] }
  const plan = (r: Partial<GenerateRequest>) => Either.getOrThrow(generationPlan({ ...base, ...r }))

  it("free text without tools or format; node-llama-cpp functions for tools with toolChoice auto", () => {
    expect(plan({})._tag).toBe("Text")
    expect(plan({ tools: [weather], toolChoice: "none" })._tag).toBe("Text")
    const p = plan({ tools: [weather, time] })
    expect(p._tag).toBe("Functions")
    if (p._tag === "Functions") {
      expect(Object.keys(p.functions)).toEqual(["weather", "time"])
      expect(p.functions.weather!.description).toBe("the weather in a city")
    }
  })

  it("a grammar over { name, arguments } of the allowed tools for required and a named tool", () => {
    const required = plan({ tools: [weather, time], toolChoice: "required" })
    expect(required).toMatchObject({ _tag: "Grammar", output: "tool" })
    if (required._tag === "Grammar") expect((required.schema.oneOf as Array<unknown>).length).toBe(2)
    const named = plan({ tools: [weather, time], toolChoice: { tool: "time" } })
    expect(named).toMatchObject({
      _tag: "Grammar",
      output: "tool",
      schema: { type: "object", properties: { name: { const: "time" } } }
    })
  })

  it("tools (auto) with a schema: one grammar, a tool call or { answer }", () => {
    const p = plan({ tools: [weather], responseFormat: { schema: { type: "object", properties: { ok: { type: "boolean" } } } } })
    expect(p).toMatchObject({ _tag: "Grammar", output: "toolOrAnswer" })
    if (p._tag === "Grammar") {
      expect(p.schema.oneOf).toContainEqual({ type: "object", properties: { answer: { type: "object", properties: { ok: { type: "boolean" } } } } })
      expect(p.instructions).toContain("weather")
    }
  })

  it("names where an unenforceable schema sits: the answer's or a tool's parameters", () => {
    const answer = generationPlan({ ...base, responseFormat: { schema: { type: "object", properties: { a: { not: {} } } } } })
    expect(Either.isLeft(answer) && answer.left.path).toBe("#/responseFormat/schema/properties/a")
    const tool = generationPlan({ ...base, tools: [{ name: "t", parameters: { type: "object", properties: { a: { if: {} } } } }] })
    expect(Either.isLeft(tool) && [tool.left.keyword, tool.left.path]).toEqual(["if", "#/tools/t/parameters/properties/a"])
    // a refused tool is irrelevant when toolChoice is none
    expect(Either.isRight(generationPlan({ ...base, toolChoice: "none", tools: [{ name: "t", parameters: { not: {} } }] }))).toBe(true)
  })
})

describe("narrowJsonGrammar over node-llama-cpp's own JSON grammar", () => {
  it("leaves no free whitespace, no exponent on integers, a bounded exponent on numbers, and no trailing newlines", async () => {
    const { getLlama } = await import("node-llama-cpp")
    const llama = await getLlama({ gpu: false, build: "never", progressLogs: false })
    const schema = ok({
      type: "object",
      properties: {
        n: { type: "integer" },
        xs: { type: "array", items: { type: "number" } },
        inner: { type: "object", properties: { s: { type: "string" } } },
        free: { type: "object", additionalProperties: true },
        any: {}
      }
    }).grammar
    const original = (await llama.createGrammarForJsonSchema(schema as never)).grammar
    // node-llama-cpp's rule names this depends on (a renamed rule would leave whitespace in)
    for (const name of ["integer-number-rule", "fractional-number-rule", "string-char-rule", "string-rule"]) {
      expect(original).toMatch(new RegExp(`^${name} ::= `, "m"))
    }
    expect(original).toMatch(/^whitespace-[a-z0-9-]+-rule ::= .*\[\\n\]/m)
    expect(original).toContain("[ ]?")
    const narrowed = narrowJsonGrammar(original)
    expect(narrowed).not.toContain("[ ]?")
    expect(narrowed).not.toContain("[\\n]")
    expect(narrowed).not.toMatch(/"\\t"|"    "|" "\{/)
    expect(narrowed).toMatch(/^integer-number-rule ::= "-"\? \("0" \| \[1-9\] \[0-9\]\{0,15\}\)$/m)
    expect(narrowed).toMatch(/^fractional-number-rule ::= .*\[eE\] \[-\+\]\? \[1-9\] \[0-9\]\?\)\?$/m)
    expect(narrowed.split("\n").find((l) => l.startsWith("root ::= "))).not.toContain("\\n")
    // llama.cpp parses it
    await llama.createGrammar({ grammar: narrowed })
  }, 30_000)
})

describe("what a schema may cost (issue 19 items 18 and 19)", () => {
  it("refuses bounds llama.cpp cannot take or would take forever, naming the keyword, where and the limit", () => {
    const cases: ReadonlyArray<readonly [unknown, string, string]> = [
      [{ type: "array", items: { type: "integer" }, maxItems: 501 }, "maxItems", "at most 500"],
      [{ type: "array", items: { type: "integer" }, minItems: 1e9 }, "minItems", "at most 500"],
      [{ type: "array", items: { type: "integer" }, minItems: 5, maxItems: 2 }, "maxItems", "below minItems"],
      [{ type: "array", items: { type: "integer" }, minItems: 501, maxItems: 600 }, "minItems", "at most 500"],
      [{ type: "object", additionalProperties: { type: "integer" }, maxProperties: 1e9 }, "maxProperties", "at most 500"],
      [{ type: "object", properties: { s: { type: "string", minLength: 1e9 } } }, "minLength", "at most 1000"],
      [{ type: "object", properties: { s: { type: "string", maxLength: 1e9 } } }, "maxLength", "at most 65536"],
      [{ enum: Array.from({ length: 1001 }, (_, i) => i) }, "enum", "at most 1000"],
      [{ oneOf: Array.from({ length: 1001 }, () => ({ type: "integer" })) }, "oneOf", "at most 1000"],
      [JSON.parse(`${'{"type":"array","items":'.repeat(40)}{"type":"integer"}${"}".repeat(40)}`), "(nesting)", "more than 32 deep"],
      [{ type: "object", properties: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`s${i}`, { type: "string", maxLength: 65_536 }])) }, "maxLength", "262144 repetitions"]
    ]
    for (const [schema, keyword, reason] of cases) {
      const error = refused(schema)
      expect(error.keyword, JSON.stringify(schema).slice(0, 80)).toBe(keyword)
      expect(error.reason).toContain(reason)
    }
  })

  it("the grammars at the bounds are ones llama.cpp builds", async () => {
    const { getLlama } = await import("node-llama-cpp")
    const llama = await getLlama({ gpu: false, build: "never", progressLogs: false })
    const L = DEFAULT_GRAMMAR_LIMITS
    const atBounds: ReadonlyArray<unknown> = [
      { type: "array", maxItems: L.maxItemsBound, items: { type: "array", maxItems: L.maxItemsBound, items: { type: "integer" } } },
      { type: "array", minItems: L.maxItemsBound, maxItems: L.maxItemsBound, items: { type: "object", properties: { a: { type: "integer" } } } },
      { type: "object", properties: { x: { type: "integer" } }, additionalProperties: { type: "string" }, maxProperties: L.maxItemsBound },
      { type: "object", properties: { s: { type: "string", minLength: L.maxMinLength, maxLength: L.maxMaxLength } } },
      { enum: Array.from({ length: L.maxAlternatives }, (_, i) => `value-${i}`) },
      JSON.parse(`${'{"type":"array","maxItems":2,"items":'.repeat(L.maxDepth)}{"type":"integer"}${"}".repeat(L.maxDepth)}`)
    ]
    for (const schema of atBounds) {
      const json = await llama.createGrammarForJsonSchema(ok(schema).grammar as never)
      await expect(llama.createGrammar({ grammar: narrowJsonGrammar(json.grammar) }), JSON.stringify(schema).slice(0, 120)).resolves.toBeDefined()
    }
  }, 60_000)
})

describe("JsonLimits: iterative walks over untrusted JSON", () => {
  it("measures a value 100,000 deep without recursion, and refuses schemas by depth, enum size, literal bytes and absurd minima", () => {
    const deep: unknown = JSON.parse(`${"[".repeat(100_000)}${"]".repeat(100_000)}`)
    expect(nestedDeeperThan(deep, JSON_LIMITS.maxDepth)).toBe(true)
    expect(nestedDeeperThan({ a: [{ b: 1 }] }, 3)).toBe(false)
    expect(nestedDeeperThan({ a: [{ b: {} }] }, 3)).toBe(true)
    expect(schemaBeyondLimits(deep)).toMatchObject({ keyword: "(nesting)" })
    expect(schemaBeyondLimits({ type: "object", properties: { a: { enum: Array.from({ length: 100_000 }, (_, i) => `v${i}`) } } }))
      .toMatchObject({ keyword: "enum", path: "/properties/a" })
    expect(schemaBeyondLimits({ anyOf: Array.from({ length: 100 }, (_, i) => ({ const: "x".repeat(1000) + i })) }))
      .toMatchObject({ keyword: "const" })
    expect(schemaBeyondLimits({ type: "array", minItems: 1e9 })).toMatchObject({ keyword: "minItems", path: "" })
    expect(schemaBeyondLimits({ type: "object", properties: { enum: { type: "string" }, minLength: { type: "integer" } } })).toBeUndefined()
  })

  it("the other walks over a schema are bounded too: the CLI's keyword check and the grammar converter on 10,000 levels", () => {
    const deep: unknown = JSON.parse(`${'{"type":"array","items":'.repeat(10_000)}{"type":"integer","bad":1}${"}".repeat(10_000)}`)
    expect(unsupportedKeyword(deep)).toMatchObject({ keyword: "bad" })
    expect(refused(deep)).toMatchObject({ keyword: "(nesting)" })
  })
})

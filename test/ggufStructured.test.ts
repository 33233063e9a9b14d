/**
 * Structured output and forced tool calls on a random-weights GGUF model (real node-llama-cpp, in
 * the worker process): the grammar alone must make every answer decode with the Schema it was
 * asked for, whatever the weights. A dozen schemas × 20 seeds; `toolChoice` `required` and a named
 * tool always give a `ToolCall` whose params decode; `none` never does; a budget that runs out
 * inside the JSON is a `length` finish marked `incomplete`, never reported as a whole answer nor
 * as an error; integers and numbers come out sane and compact; @effect/ai's generateObject and
 * a toolkit with toolChoice "required" on the same model. One model, loaded once, for the file.
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as Tool from "@effect/ai/Tool"
import * as Toolkit from "@effect/ai/Toolkit"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { LlmspellError } from "../src/domain/Errors.js"
import type { Completion, GenerateEvent, GenerateRequest, ToolCall } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import { fromBackend } from "../src/layers/LanguageModelAdapter.js"
import * as LlamaLoaderLive from "../src/layers/gguf/LlamaLoaderLive.js"
import { ModelDownloaderMock } from "../src/testing.js"
import { ggufInstance } from "./fixtures/ggufBackendFakes.js"
import "./fixtures/ggufWorkerBundle.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"

const dir = mkdtempSync(join(tmpdir(), "llmspell-gguf-structured-"))
const MODEL = join(dir, "random.gguf")
writeFileSync(MODEL, tinyLlamaGguf({ vocabSize: 400, seed: 7, contextLength: 4096 }))

const jsonSchemaOf = (schema: Schema.Schema<any, any>) => JSONSchema.make(schema) as unknown as Record<string, unknown>

const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1)

// one backend (one worker, one loaded model) for the whole file
const scope = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
const backend = await Effect.runPromise(
  Scope.extend(
    makeBackend(
      ggufInstance({ modelDirectory: dir, contextSize: 4096, threads: 1, parallel: 1, isolation: "process" }),
      LlamaLoaderLive.make(),
      ModelDownloaderMock().service
    ),
    scope
  )
)

const ask = (overrides: Partial<GenerateRequest>): GenerateRequest => ({
  messages: [{ role: "system", content: "Answer in JSON." }, { role: "user", content: "Fill in the form." }],
  maxTokens: 400,
  temperature: 1,
  ...overrides
})

const run = (request: GenerateRequest) =>
  Effect.map(Stream.runCollect(backend.generate(MODEL, request) as Stream.Stream<GenerateEvent, LlmspellError>), (c) => {
    const events = Chunk.toReadonlyArray(c)
    const finish = events.at(-1)
    if (finish?._tag !== "Finish") throw new Error("no Finish event")
    return {
      completion: finish.completion as Completion,
      calls: events.flatMap((e) => (e._tag === "ToolCall" ? [e.call as ToolCall] : [])),
      text: events.flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join("")
    }
  })

const Short = Schema.String.pipe(Schema.maxLength(10))
const Small = Schema.Int.pipe(Schema.between(-5, 5))
const Point = Schema.Struct({ x: Small, y: Small }).annotations({ identifier: "Point" })

const SCHEMAS: ReadonlyArray<readonly [string, Schema.Schema<any, any>]> = [
  ["a flat Struct (string, bounded int)", Schema.Struct({ name: Short, age: Schema.Int.pipe(Schema.between(0, 120)) })],
  [
    "nested objects",
    Schema.Struct({ user: Schema.Struct({ id: Schema.Int.pipe(Schema.between(1, 50)), admin: Schema.Boolean }), note: Short })
  ],
  ["an array of objects", Schema.Array(Schema.Struct({ x: Small })).pipe(Schema.maxItems(4))],
  ["an enum", Schema.Literal("red", "green", "blue")],
  [
    "a tagged union",
    Schema.Union(
      Schema.Struct({ kind: Schema.Literal("circle"), r: Schema.Int.pipe(Schema.between(1, 9)) }),
      Schema.Struct({ kind: Schema.Literal("square"), side: Schema.Int.pipe(Schema.between(1, 9)) })
    )
  ],
  [
    "optional and nullable fields",
    Schema.Struct({ a: Schema.optional(Short), b: Schema.optional(Schema.Boolean), c: Schema.NullOr(Small) })
  ],
  ["numbers with bounds", Schema.Struct({ pct: Schema.Int.pipe(Schema.between(0, 100)), off: Schema.Int.pipe(Schema.greaterThan(-3), Schema.lessThan(3)), any: Schema.Number })],
  ["shared $defs (identified sub-schemas)", Schema.Struct({ from: Point, to: Point })],
  ["a record over literal keys", Schema.Record({ key: Schema.Literal("a", "b", "c"), value: Small })],
  ["a tuple", Schema.Tuple(Short, Small, Schema.Boolean)],
  ["nested arrays", Schema.Array(Schema.Array(Schema.Literal(0, 1)).pipe(Schema.maxItems(3))).pipe(Schema.maxItems(3))],
  [
    "string lengths",
    Schema.Struct({ code: Schema.String.pipe(Schema.length(3)), word: Schema.NonEmptyString.pipe(Schema.maxLength(6)) })
  ]
]

describe("structured output on a random-weights GGUF model (grammar only)", () => {
  for (const [label, schema] of SCHEMAS) {
    it.effect(`${label}: every answer of 20 seeds decodes with the Schema`, () =>
      Effect.gen(function*() {
        const jsonSchema = jsonSchemaOf(schema)
        for (const seed of SEEDS) {
          const { completion, text } = yield* run(ask({ seed, responseFormat: { schema: jsonSchema } }))
          expect(completion.finishReason, `seed ${seed}: ${completion.text}`).toBe("stop")
          expect(text).toBe(completion.text)
          expect(() => Schema.decodeUnknownSync(schema)(JSON.parse(completion.text)), `seed ${seed}: ${completion.text}`)
            .not.toThrow()
        }
      }), 120_000)
  }

  it.effect("responseFormat json: any JSON object, or a length finish marked incomplete when it does not fit maxTokens", () =>
    Effect.gen(function*() {
      for (const seed of SEEDS.slice(0, 5)) {
        const { completion } = yield* run(ask({ seed, responseFormat: "json", maxTokens: 200 }))
        if (completion.finishReason === "stop") {
          const value: unknown = JSON.parse(completion.text)
          expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true)
        } else {
          expect(completion).toMatchObject({ finishReason: "length", incomplete: "answer" })
        }
      }
    }), 60_000)

  it.effect("a budget that runs out inside the JSON is a length finish with the partial answer, marked incomplete — not an error", () =>
    Effect.gen(function*() {
      const schema = { type: "object", properties: { story: { type: "string", minLength: 200 } }, required: ["story"] }
      const { completion, text } = yield* run(ask({ seed: 1, maxTokens: 12, responseFormat: { schema } }))
      expect(completion.finishReason).toBe("length")
      expect(completion.incomplete).toBe("answer")
      expect(completion.usage.completionTokens).toBe(12)
      // compact: the key comes first, with no whitespace spent before it
      expect(completion.text.startsWith('{"story":"')).toBe(true)
      expect(text).toBe(completion.text)
    }), 60_000)

  it.effect("a forced tool call the budget cuts is a length finish marked incomplete: no call, no text, no error", () =>
    Effect.gen(function*() {
      for (const toolChoice of ["required", { tool: "convert" }] as const) {
        const { calls, completion } = yield* run(ask({ seed: 2, maxTokens: 3, tools, toolChoice }))
        expect(calls).toEqual([])
        expect(completion).toMatchObject({ finishReason: "length", incomplete: "tool-call", text: "" })
        expect(completion.toolCalls).toBeUndefined()
      }
    }), 60_000)

  it.effect("a keyword the grammar cannot enforce is checked on the answer: pattern → SchemaViolation", () =>
    Effect.gen(function*() {
      // a random model cannot guess a 12-digit pattern; the grammar bounds the string, the check catches it
      const schema = { type: "object", properties: { id: { type: "string", maxLength: 12, pattern: "^[0-9]{12}$" } } }
      const error = yield* Effect.flip(run(ask({ seed: 3, responseFormat: { schema } })))
      expect(error._tag).toBe("SchemaViolation")
      expect(error.message).toContain("does not match")
    }), 60_000)

  it.effect("a schema the grammar cannot take is refused before anything runs, naming the keyword and where", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run(ask({ responseFormat: { schema: { type: "object", properties: { a: { not: { type: "string" } } } } } })))
      expect(error).toMatchObject({ _tag: "UnsupportedSchema", keyword: "not", path: "#/responseFormat/schema/properties/a" })
    }))
})

const Weather = Schema.Struct({ city: Short, days: Schema.Int.pipe(Schema.between(1, 7)) })
const Convert = Schema.Struct({ amount: Schema.Int.pipe(Schema.between(0, 99)), to: Schema.Literal("eur", "usd") })
const tools = [
  { name: "weather", description: "the forecast for a city", parameters: jsonSchemaOf(Weather) },
  { name: "convert", description: "convert money", parameters: jsonSchemaOf(Convert) }
]
const paramsOf: Record<string, Schema.Schema<any, any>> = { weather: Weather, convert: Convert }

/** The text outside JSON strings: what the grammar writes between values (whitespace, numbers, punctuation). */
const outsideStrings = (text: string) => text.replace(/"(?:[^"\\]|\\.)*"/g, "\"\"")

describe("numbers and layout of grammar-constrained JSON (random seeds)", () => {
  // issue 19 item 7: `0E9949494997497990` is valid JSON, read as 0.0 by Python, for an "integer"
  const Numbers = {
    type: "object",
    properties: {
      count: { type: "integer" },
      counts: { type: "array", items: { type: "integer" }, maxItems: 6 },
      ratio: { type: "number" },
      ratios: { type: "array", items: { type: "number" }, maxItems: 6 }
    },
    required: ["count", "counts", "ratio", "ratios"]
  }
  const INTEGER = /^-?(0|[1-9][0-9]*)$/
  // a fraction, and an exponent of at most two digits without leading zeros: finite in every reader
  const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[1-9][0-9]?)?$/
  const SEEDS_60 = Array.from({ length: 60 }, (_, i) => i + 1)

  it.effect("integers never carry an exponent, a fraction or leading zeros; numbers stay finite (60 seeds)", () =>
    Effect.gen(function*() {
      for (const seed of SEEDS_60) {
        const { completion } = yield* run(ask({ seed, maxTokens: 600, responseFormat: { schema: Numbers } }))
        expect(completion.finishReason, `seed ${seed}: ${completion.text}`).toBe("stop")
        const tokens = outsideStrings(completion.text).match(/-?[0-9][0-9.eE+-]*/g) ?? []
        const value = JSON.parse(completion.text) as { count: number; counts: Array<number>; ratio: number; ratios: Array<number> }
        for (const n of [value.count, ...value.counts, value.ratio, ...value.ratios]) expect(Number.isFinite(n), `seed ${seed}`).toBe(true)
        // the literal text of each integer, in order: count first, then counts
        const integers = tokens.slice(0, 1 + value.counts.length)
        for (const t of integers) expect(t, `seed ${seed}: ${completion.text}`).toMatch(INTEGER)
        for (const t of tokens) expect(t, `seed ${seed}: ${completion.text}`).toMatch(NUMBER)
      }
    }), 180_000)

  it.effect("grammar-forced JSON is compact: no whitespace between tokens (20 seeds)", () =>
    Effect.gen(function*() {
      const Form = { type: "object", properties: { name: { type: "string", maxLength: 8 }, tags: { type: "array", items: { type: "integer" }, maxItems: 3 }, inner: { type: "object", properties: { ok: { type: "boolean" } } } } }
      for (const seed of SEEDS) {
        const answer = yield* run(ask({ seed, responseFormat: { schema: Form } }))
        expect(outsideStrings(answer.completion.text), `seed ${seed}: ${JSON.stringify(answer.completion.text)}`).not.toMatch(/\s/)
      }
    }), 120_000)
})

describe("toolChoice on a random-weights GGUF model", () => {
  it.effect("required: always one ToolCall of an offered tool, params decoding with its schema, finish tool-calls", () =>
    Effect.gen(function*() {
      const names = new Set<string>()
      for (const seed of SEEDS) {
        const { calls, completion } = yield* run(ask({ seed, tools, toolChoice: "required" }))
        expect(calls, `seed ${seed}`).toHaveLength(1)
        const call = calls[0]!
        names.add(call.name)
        expect(call.id).toBe("call_1")
        expect(() => Schema.decodeUnknownSync(paramsOf[call.name]!)(call.params), JSON.stringify(call)).not.toThrow()
        expect(completion.finishReason).toBe("tool-calls")
        expect(completion.toolCalls).toEqual(calls)
      }
      expect([...names].every((n) => n in paramsOf)).toBe(true)
    }), 120_000)

  it.effect("a named tool: always a call of that tool", () =>
    Effect.gen(function*() {
      for (const seed of SEEDS) {
        const { calls } = yield* run(ask({ seed, tools, toolChoice: { tool: "convert" } }))
        expect(calls.map((c) => c.name), `seed ${seed}`).toEqual(["convert"])
        expect(() => Schema.decodeUnknownSync(Convert)(calls[0]!.params)).not.toThrow()
      }
    }), 120_000)

  it.effect("none: never a tool call", () =>
    Effect.gen(function*() {
      for (const seed of SEEDS) {
        const { calls, completion } = yield* run(ask({ seed, tools, toolChoice: "none", maxTokens: 16 }))
        expect(calls).toEqual([])
        expect(completion.finishReason).not.toBe("tool-calls")
      }
    }), 120_000)

  it.effect("tools (auto) with a schema: either a tool call or an answer that decodes with the schema", () =>
    Effect.gen(function*() {
      const Answer = Schema.Struct({ ok: Schema.Boolean, score: Small })
      for (const seed of SEEDS) {
        const { calls, completion } = yield* run(
          ask({ seed, tools, responseFormat: { schema: jsonSchemaOf(Answer) } })
        )
        if (calls.length > 0) {
          expect(completion.finishReason).toBe("tool-calls")
          expect(() => Schema.decodeUnknownSync(paramsOf[calls[0]!.name]!)(calls[0]!.params)).not.toThrow()
        } else {
          expect(() => Schema.decodeUnknownSync(Answer)(JSON.parse(completion.text)), completion.text).not.toThrow()
        }
      }
    }), 120_000)

  it.effect("a tool call and its result in the history are sent as node-llama-cpp's functionCall item", () =>
    Effect.gen(function*() {
      const { completion } = yield* run(ask({
        seed: 1,
        maxTokens: 8,
        tools,
        messages: [
          { role: "user", content: "weather in Oslo?" },
          { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "weather", params: { city: "Oslo", days: 1 } }] },
          { role: "tool", content: "{\"temp\":3}", toolCallId: "call_1", toolName: "weather" }
        ]
      }))
      expect(completion.usage.promptTokens).toBeGreaterThan(10)
    }), 60_000)
})

describe("through @effect/ai on the GGUF model", () => {
  const model = Effect.map(fromBackend(backend, MODEL, { maxTokens: 400, temperature: 1, seed: 5 }), (lm) => Effect.provideService(LanguageModel.LanguageModel, lm))

  it.effect("generateObject({ schema }) decodes", () =>
    Effect.gen(function*() {
      const Person = Schema.Struct({ name: Short, age: Schema.Int.pipe(Schema.between(0, 120)) })
      const response = yield* LanguageModel.generateObject({ prompt: "Describe a person.", schema: Person })
      expect(Schema.is(Person)(response.value)).toBe(true)
    }).pipe((self) => Effect.flatMap(model, (provide) => provide(self))), 60_000)

  it.effect("generateText with toolChoice required and too small a budget: finish reason length, no call, no error", () =>
    Effect.gen(function*() {
      const WeatherTool = Tool.make("weather", { description: "the forecast for a city", parameters: Weather.fields, success: Schema.String })
      const kit = Toolkit.make(WeatherTool)
      const layer = kit.toLayer({ weather: () => Effect.succeed("sunny") })
      const lm = yield* fromBackend(backend, MODEL, { maxTokens: 3, temperature: 1, seed: 5 })
      const response = yield* LanguageModel.generateText({ prompt: "Weather?", toolkit: kit, toolChoice: "required" }).pipe(
        Effect.provide(layer),
        Effect.provideService(LanguageModel.LanguageModel, lm)
      )
      expect(response.finishReason).toBe("length")
      expect(response.toolCalls).toEqual([])
    }), 60_000)

  it.effect("generateText with a toolkit and toolChoice required: the toolkit handles the call", () =>
    Effect.gen(function*() {
      const handled: Array<unknown> = []
      const WeatherTool = Tool.make("weather", { description: "the forecast for a city", parameters: Weather.fields, success: Schema.String })
      const kit = Toolkit.make(WeatherTool)
      const layer = kit.toLayer({ weather: (params) => Effect.sync(() => (handled.push(params), "sunny")) })
      const response = yield* LanguageModel.generateText({ prompt: "Weather?", toolkit: kit, toolChoice: "required" }).pipe(
        Effect.provide(layer)
      )
      expect(response.toolCalls.map((c) => c.name)).toEqual(["weather"])
      expect(handled).toHaveLength(1)
      expect(response.toolResults.map((r) => r.result)).toEqual(["sunny"])
    }).pipe((self) => Effect.flatMap(model, (provide) => provide(self))), 60_000)
})

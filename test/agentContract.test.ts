/**
 * The agent half of the backend contract, below any backend: the request validation of tools,
 * toolChoice and tool messages; the JSON Schema check behind `--schema` and the Promise facade;
 * the scriptable backend honouring `toolChoice: none`; and the GGUF backend refusing (with a typed
 * error) what it cannot do yet instead of answering as if the tools or the schema were not there.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { InvalidRequest } from "../src/domain/Errors.js"
import { checkJsonSchema, structuredAnswer, supportedSchema, unsupportedKeyword } from "../src/domain/JsonSchemaCheck.js"
import * as Protocol from "../src/domain/Protocol.js"
import { validateGenerateRequest } from "../src/domain/Protocol.js"
import { Embeddings, GenerateEvent, type GenerateRequest } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import * as RpcServe from "../src/serve/rpc.js"
import * as RpcTest from "@effect/rpc/RpcTest"
import { installedModel, LlamaLoaderMock, LlmspellMock, makeMockBackend, ModelDownloaderMock } from "../src/testing.js"
import { ggufInstance } from "./fixtures/ggufBackendFakes.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"

const tool = (name: string) => ({ name, parameters: { type: "object" } })
const user = { role: "user" as const, content: "hi" }
const invalid = (request: unknown) =>
  Either.getLeft(validateGenerateRequest(request)).pipe((o) => (o._tag === "Some" ? o.value as InvalidRequest : undefined))

describe("request validation", () => {
  it("accepts tools, a named choice among them, formats, reasoning, tool calls and results", () => {
    const request: GenerateRequest = {
      messages: [
        user,
        { role: "assistant", content: "", toolCalls: [{ id: "c1", name: "a", params: { x: 1 } }] },
        { role: "tool", content: "42", toolCallId: "c1", toolName: "a" }
      ],
      tools: [tool("a"), tool("b")],
      toolChoice: { tool: "b" },
      responseFormat: { schema: { type: "object" } },
      reasoning: false
    }
    expect(Either.isRight(validateGenerateRequest(request))).toBe(true)
  })

  it("refuses a named tool that is not offered, `required` without tools, duplicate names, bad names", () => {
    expect(invalid({ messages: [user], tools: [tool("a")], toolChoice: { tool: "b" } })?.message).toContain("not among the tools")
    expect(invalid({ messages: [user], toolChoice: "required" })?.message).toContain("needs at least one tool")
    expect(invalid({ messages: [user], tools: [tool("a"), tool("a")] })?.message).toContain("two tools are named")
    expect(invalid({ messages: [user], tools: [tool("no spaces allowed")] })?.field).toBe("tools.0.name")
  })

  it("refuses a tool message without its call id, and tool calls outside an assistant message", () => {
    expect(invalid({ messages: [{ role: "tool", content: "42" }] })?.message).toContain("toolCallId")
    expect(invalid({ messages: [{ role: "user", content: "x", toolCalls: [] }] })?.message).toContain("only an assistant")
  })
})

describe("JSON Schema check", () => {
  const schema = {
    type: "object",
    properties: {
      name: { type: "string", minLength: 1, pattern: "^[A-Z]" },
      tags: { type: "array", items: { enum: ["a", "b"] }, maxItems: 2 },
      pet: { anyOf: [{ type: "null" }, { $ref: "#/$defs/Pet" }] }
    },
    required: ["name"],
    additionalProperties: false,
    $defs: { Pet: { type: "object", properties: { legs: { type: "integer", minimum: 0 } }, required: ["legs"] } }
  }

  it("passes conforming values and names where others break it", () => {
    expect(checkJsonSchema(schema, { name: "Ada", tags: ["a"], pet: { legs: 4 } })).toBeUndefined()
    expect(checkJsonSchema(schema, { name: "Ada", pet: null })).toBeUndefined()
    expect(checkJsonSchema(schema, {})).toBe('/: missing required property "name"')
    expect(checkJsonSchema(schema, { name: "ada" })).toBe('/name: does not match "^[A-Z]"')
    expect(checkJsonSchema(schema, { name: "Ada", tags: ["c"] })).toBe('/tags/0: expected one of ["a","b"]')
    expect(checkJsonSchema(schema, { name: "Ada", pet: { legs: -1 } })).toBe("/pet: matches none of the anyOf alternatives")
    expect(checkJsonSchema(schema, { name: "Ada", extra: 1 })).toBe('/: unexpected property "extra"')
    expect(checkJsonSchema(schema, { name: "Ada", pet: { legs: 1.5 } })).toContain("anyOf")
  })

  it("names a keyword it does not know, nested or not; annotations are fine", () => {
    expect(unsupportedKeyword(schema)).toBeUndefined()
    expect(unsupportedKeyword({ title: "x", description: "y", format: "date", type: "string" })).toBeUndefined()
    expect(unsupportedKeyword({ properties: { a: { if: {} } } })).toEqual({ keyword: "if", path: "/properties/a" })
    const refused = supportedSchema({ type: "object", patternProperties: {} })
    expect(Either.isLeft(refused) && refused.left._tag).toBe("UnsupportedSchema")
  })

  it("structuredAnswer: json parses any JSON, a schema checks it, text is not parsed", () => {
    expect(structuredAnswer("m", "[1]", "json")).toEqual(Either.right([1]))
    expect(structuredAnswer("m", "plain", "text")).toEqual(Either.right(undefined))
    const notJson = structuredAnswer("m", "{oops", "json")
    expect(Either.isLeft(notJson) && notJson.left.message).toContain("not JSON")
    const broken = structuredAnswer("m", '{"n":"x"}', { schema: { properties: { n: { type: "number" } } } })
    expect(Either.isLeft(broken) && broken.left.problem).toBe("/n: expected number, got string")
  })
})

describe("backends and the agent options", () => {
  it.scoped("the scriptable backend makes no scripted tool call under toolChoice none", () =>
    Effect.gen(function*() {
      const mock = makeMockBackend("gguf", {
        models: [{ name: "m", turns: [{ toolCalls: [{ name: "a", params: {} }], tokens: ["ok"] }] }]
      })
      const backend = yield* mock.factory.make(ggufInstance({}) as never)
      const events = yield* Stream.runCollect(backend.generate("m", { messages: [user], tools: [tool("a")], toolChoice: "none" }))
      expect([...events].map((e) => e._tag)).toEqual(["TextDelta", "Finish"])
    }))

  it.scoped("GGUF: a schema its grammar cannot enforce is refused with UnsupportedSchema before loading", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "llmspell-agent-"))
      const file = join(dir, "a.gguf")
      writeFileSync(file, tinyLlamaGguf())
      const loader = LlamaLoaderMock({ defaultTokens: ["he", "llo"] })
      const downloader = ModelDownloaderMock({ installed: [installedModel("org/repo:Q8_0", file)] })
      const backend = yield* makeBackend(ggufInstance({ modelDirectory: dir }), loader.service, downloader.service, downloader.store)
      const badTool = { name: "a", parameters: { type: "object", properties: { q: { not: { type: "string" } } } } }
      const withTools = yield* Effect.flip(Stream.runDrain(backend.generate(file, { messages: [user], tools: [badTool] })))
      expect(withTools).toMatchObject({ _tag: "UnsupportedSchema", keyword: "not", path: "#/tools/a/parameters/properties/q" })
      const withSchema = yield* Effect.flip(
        Stream.runDrain(backend.generate(file, { messages: [user], responseFormat: { schema: { allOf: [{}, {}] } } }))
      )
      expect(withSchema).toMatchObject({ _tag: "UnsupportedSchema", keyword: "allOf" })
      expect(loader.log.events).toEqual([])
      // toolChoice none: no tool is needed, the request runs
      const plain = yield* Stream.runCollect(backend.generate(file, { messages: [user], tools: [tool("a")], toolChoice: "none" }))
      expect([...plain].at(-1)?._tag).toBe("Finish")
    }))
})

describe("protocol: Generate and Embed", () => {
  it.effect("are served through the RpcGroup: events (a tool call) and vectors that encode with their schemas", () => {
    const mock = LlmspellMock.make({
      gguf: { models: [{ name: "m", turns: [{ tokens: ["ok"], toolCalls: [{ id: "c", name: "a", params: { q: 1 } }] }] }] }
    })
    return Effect.gen(function*() {
      const client = yield* RpcTest.makeClient(Protocol.LlmspellRpcs)
      const events = yield* Stream.runCollect(
        client.Generate({ spec: "m", request: { messages: [user], tools: [tool("a")], toolChoice: "required" } })
      )
      const encoded = [...events].map((e) => Schema.encodeUnknownSync(GenerateEvent)(e) as { _tag: string })
      expect(encoded.map((e) => e._tag)).toEqual(["TextDelta", "ToolCall", "Finish"])
      const vectors = yield* client.Embed({ spec: "m", inputs: ["x", "y"] })
      expect(Schema.is(Embeddings)(vectors)).toBe(true)
      const decode = Schema.decodeUnknownSync(Protocol.Generate.payloadSchema)
      expect(() => decode({ spec: "m", request: { messages: [], toolChoice: { tool: "zzz" } } })).toThrow()
    }).pipe(Effect.scoped, Effect.provide(RpcServe.layerHandlers), Effect.provide(mock.layer))
  })
})

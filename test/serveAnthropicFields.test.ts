/**
 * `llmspell serve`'s Anthropic routes hold to the server's rules like the other APIs: every field
 * of `/v1/messages` and `/v1/messages/count_tokens` is honoured, has no effect, takes its default
 * only, or is refused by name (RequestFields' two Anthropic tables, one row each, walked here; an
 * unknown field is refused, never dropped); errors in the Messages API's own terms (its field
 * names, its error shape, even for refusals made before any route: the Host check, a wrong key);
 * the key as `x-api-key` on every route; `disable_parallel_tool_use` reaching each backend as it
 * can take it; and the cache fields of a second turn when the backend reports cached tokens.
 * Through the real `@anthropic-ai/sdk` where it can send the request, raw JSON where a field is
 * one the SDK would not send. The fake Ollama and the fake Anthropic stand behind the server.
 */
import Anthropic from "@anthropic-ai/sdk"
import * as Redacted from "effect/Redacted"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { request as httpRequest } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type * as Wire from "../src/domain/AnthropicWire.js"
import { ANTHROPIC_COUNT_TOKENS_FIELDS, ANTHROPIC_MESSAGES_FIELDS, type FieldTable } from "../src/serve/RequestFields.js"
import { type FakeAnthropic, startFakeAnthropic } from "./fixtures/fakeAnthropic.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe, weatherAgent } from "./fixtures/serveHarness.js"

let dir: string
let fake: FakeOllama
let cloud: FakeAnthropic
let serve: ServeHarness
let client: Anthropic

const KEY = "sk-llmspell-fields-key"
const AGENT = "agent@ollama"
const TINY = "tiny.gguf@gguf"
const CLOUD = "anthropic/claude-3-5-haiku-latest"

const weather = {
  name: "get_weather",
  description: "the weather in a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}
const answerSchema = { type: "object", properties: { city: { type: "string" }, temperature: { type: "number" } }, required: ["city"] }

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-anthropic-fields-"))
  fake = await startFakeOllama({ models: [fakeModel("agent")], answer: weatherAgent })
  cloud = await startFakeAnthropic({ apiKey: "sk-ant-upstream" })
  serve = await startServe(
    {
      dir,
      ollamaUrl: fake.url,
      providers: { anthropic: { provider_type: "anthropic", base_url: cloud.baseUrl, api_key: "sk-ant-upstream" } }
    },
    { apiKey: Redacted.make(KEY) }
  )
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 300 }))
  client = new Anthropic({ baseURL: serve.url, apiKey: KEY, maxRetries: 0 })
})

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  await cloud?.close()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

/** A raw JSON body to a route of the server, with the key as Anthropic's clients send it. */
const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
  const response = await fetch(`${serve.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": KEY, "anthropic-version": "2023-06-01", ...headers },
    body: JSON.stringify(body)
  })
  return { status: response.status, text: await response.text(), headers: response.headers }
}

const at = (body: unknown, path: string): unknown => path.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], body)
const lastChat = () => [...fake.requests].reverse().find((r) => r.path === "/api/chat")?.body

interface Row {
  readonly value: unknown
  /** For `default only` rows: a value that is not the default (refused). */
  readonly other?: unknown
  /** For honoured rows: the path in the body the fake Ollama received, and its value there. */
  readonly reaches?: readonly [path: string, expected: unknown]
}

const PROMPT_ROWS: Record<string, Row> = {
  model: { value: AGENT },
  messages: { value: [{ role: "user", content: "hi" }] },
  system: { value: "Be brief.", reaches: ["messages.0.content", "Be brief."] },
  tools: { value: [weather], reaches: ["tools.0.function.name", "get_weather"] },
  tool_choice: { value: { type: "auto" } },
  thinking: { value: { type: "disabled" }, reaches: ["think", false] },
  output_config: { value: { format: { type: "json_schema", schema: answerSchema } }, reaches: ["format", answerSchema] },
  output_format: { value: { type: "json_schema", schema: answerSchema }, reaches: ["format", answerSchema] },
  cache_control: { value: { type: "ephemeral" } },
  speed: { value: "fast" },
  // what Claude Code sends with every request
  context_management: { value: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] } },
  mcp_servers: { value: [], other: [{ type: "url", url: "https://mcp.example.com/sse", name: "example" }] },
  billing_policy: { value: { bill_to: "self" } }
}

const MESSAGES_ROWS: Record<string, Row> = {
  ...PROMPT_ROWS,
  max_tokens: { value: 5, reaches: ["options.num_predict", 5] },
  stream: { value: false },
  stop_sequences: { value: ["zz"], reaches: ["options.stop", ["zz"]] },
  temperature: { value: 0.5, reaches: ["options.temperature", 0.5] },
  top_p: { value: 0.9, reaches: ["options.top_p", 0.9] },
  top_k: { value: 5, reaches: ["options.top_k", 5] },
  metadata: { value: { user_id: "user_abc" } },
  service_tier: { value: "auto" },
  inference_geo: { value: "us" },
  diagnostics: { value: { previous_message_id: "msg_1" } },
  fallbacks: { value: "default" },
  fallback_credit_token: { value: "tok" },
  container: { value: "container_1" },
  compaction: { value: { type: "auto" } },
  thread: { value: { type: "create" } }
}

const COUNT_ROWS: Record<string, Row> = {
  ...PROMPT_ROWS,
  // an Ollama server applies a format as a grammar, not as prompt text: a count evaluates the prompt without it
  output_config: { value: PROMPT_ROWS["output_config"]!.value },
  output_format: { value: PROMPT_ROWS["output_format"]!.value },
  compaction: { value: { type: "auto" } }
}

/** Walks one table: every row through the route, checked by its kind, answers in Anthropic's shape. */
const walk = async (table: FieldTable, rows: Record<string, Row>, send: (field: string, value: unknown) => ReturnType<typeof post>) => {
  expect(Object.keys(rows).sort(), "every row of the table has an example, and no example is for a field the table lacks").toEqual(Object.keys(table).sort())
  const refusedAs = (answer: { status: number; text: string }, field: string, label: string) => {
    expect(answer.status, label).toBe(400)
    const error = JSON.parse(answer.text) as Wire.ErrorResponse
    expect(error.type, label).toBe("error")
    expect(error.error.type, label).toBe("invalid_request_error")
    expect(error.error.message, label).toContain(field)
    expect(error.error.message, label).not.toMatch(/llmspell (model|run|pull|serve --)|--[a-z]/)
  }
  for (const [field, rule] of Object.entries(table)) {
    const row = rows[field]!
    const label = `${field} (${rule.kind})`
    const answer = await send(field, row.value)
    if (rule.kind === "refused") {
      refusedAs(answer, field, label)
      continue
    }
    expect(answer.status, `${label}: ${answer.text}`).toBe(200)
    if (rule.kind === "default only") refusedAs(await send(field, row.other), field, `${label} with ${JSON.stringify(row.other)}`)
    if (row.reaches !== undefined) {
      const [path, expected] = row.reaches
      expect(at(lastChat(), path), `${label} reaches the backend as ${path}`).toEqual(expected)
    }
  }
  // a field in no table is refused by name, never ignored
  refusedAs(await send("not_a_field", 1), "not_a_field", "an unknown field")
}

describe("every field is honoured, has no effect, takes its default only, or is refused by name", () => {
  it("POST /v1/messages", async () => {
    await walk(ANTHROPIC_MESSAGES_FIELDS, MESSAGES_ROWS, (field, value) =>
      post("/v1/messages", { model: AGENT, max_tokens: 4, messages: [{ role: "user", content: "hi" }], [field]: value }))
  })

  it("POST /v1/messages/count_tokens (max_tokens is no field of a count, as on Anthropic's API)", async () => {
    await walk(ANTHROPIC_COUNT_TOKENS_FIELDS, COUNT_ROWS, (field, value) =>
      post("/v1/messages/count_tokens", { model: AGENT, messages: [{ role: "user", content: "hi" }], [field]: value }))
    const withMax = await post("/v1/messages/count_tokens", { model: AGENT, max_tokens: 4, messages: [{ role: "user", content: "hi" }] })
    expect(withMax.status).toBe(400)
    expect(withMax.text).toContain("max_tokens")
  })

  it("through the real SDK: a beta request with context_management and output_format is served, not refused", async () => {
    const message = await client.beta.messages.create({
      model: AGENT,
      max_tokens: 64,
      betas: ["context-management-2025-06-27", "structured-outputs-2025-11-13"],
      context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
      output_format: { type: "json_schema", schema: answerSchema },
      messages: [{ role: "user", content: "hi" }]
    } as never) as Anthropic.Beta.BetaMessage
    expect(message.type).toBe("message")
    expect(at(lastChat(), "format")).toEqual(answerSchema)
  })
})

describe("errors in the Messages API's own terms", () => {
  it("a schema keyword the GGUF grammar cannot enforce names output_config.format.schema, never a CLI option", async () => {
    const error = await client.messages.create({
      model: TINY,
      max_tokens: 8,
      output_config: { format: { type: "json_schema", schema: { type: "object", not: { required: ["a"] } } } },
      messages: [{ role: "user", content: "hi" }]
    }).catch((e) => e)
    expect(error).toBeInstanceOf(Anthropic.BadRequestError)
    expect(error.error.error.type).toBe("invalid_request_error")
    expect(error.error.error.message).toContain("output_config.format.schema")
    expect(error.error.error.message).toContain("`not`")
    expect(error.error.error.message).not.toMatch(/responseFormat|llmspell (model|run)|--[a-z]/)
  })

  it("refusals before any route answer in Anthropic's shape under /v1/messages: a foreign Host (403 permission_error), no key (401)", async () => {
    const raw = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL(`${serve.url}/v1/messages`)
      const req = httpRequest({
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        headers: { host: "evil.example", "content-type": "application/json", "x-api-key": KEY }
      }, (res) => {
        let body = ""
        res.on("data", (c: Buffer) => void (body += c.toString()))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on("error", reject)
      req.end(JSON.stringify({ model: AGENT, max_tokens: 4, messages: [{ role: "user", content: "hi" }] }))
    })
    expect(raw.status).toBe(403)
    expect(JSON.parse(raw.body)).toMatchObject({ type: "error", error: { type: "permission_error" } })
    const nokey = await fetch(`${serve.url}/v1/messages/count_tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: AGENT, messages: [{ role: "user", content: "hi" }] })
    })
    expect(nokey.status).toBe(401)
    expect(await nokey.json()).toMatchObject({ type: "error", error: { type: "authentication_error" } })
    // the other APIs keep their own shapes
    const openai = await fetch(`${serve.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
    expect(openai.status).toBe(401)
    expect(await openai.json()).toMatchObject({ error: { code: "invalid_api_key" } })
  })

  it("the key as x-api-key opens every route, not only Anthropic's; a wrong one or a repeated header opens none", async () => {
    const models = await fetch(`${serve.url}/v1/models`, { headers: { "x-api-key": KEY } })
    expect(models.status).toBe(200)
    const tags = await fetch(`${serve.url}/api/tags`, { headers: { "x-api-key": KEY } })
    expect(tags.status).toBe(200)
    const wrong = await fetch(`${serve.url}/api/tags`, { headers: { "x-api-key": `${KEY}x` } })
    expect(wrong.status).toBe(401)
    const twice = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${serve.url}/api/tags`)
      const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, headers: ["host", url.host, "x-api-key", KEY, "x-api-key", KEY] as never }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on("error", reject)
      req.end()
    })
    expect(twice).toBe(401)
  })
})

describe("disable_parallel_tool_use reaches each backend as it can take it", () => {
  it("the cloud model: Anthropic's own field upstream; the Ollama model: served (Ollama cannot hold a model to one call), one tool_use block kept", async () => {
    await client.messages.create({
      model: CLOUD,
      max_tokens: 32,
      tools: [weather] as Array<Anthropic.Tool>,
      tool_choice: { type: "any", disable_parallel_tool_use: true },
      messages: [{ role: "user", content: "weather?" }]
    })
    expect((cloud.requests.at(-1)!.body as { tool_choice: unknown }).tool_choice).toEqual({ type: "any", disable_parallel_tool_use: true })
    fake.state.answer = () => ({ content: "", toolCalls: [{ name: "get_weather", arguments: { city: "Oslo" } }, { name: "get_weather", arguments: { city: "Rome" } }] })
    try {
      const one = await client.messages.create({
        model: AGENT,
        max_tokens: 32,
        tools: [weather] as Array<Anthropic.Tool>,
        tool_choice: { type: "auto", disable_parallel_tool_use: true },
        messages: [{ role: "user", content: "two cities" }]
      })
      expect(one.content.filter((b) => b.type === "tool_use").map((b) => (b as Anthropic.ToolUseBlock).input)).toEqual([{ city: "Oslo" }])
      expect(one.stop_reason).toBe("tool_use")
    } finally {
      fake.state.answer = weatherAgent
    }
  })
})

describe("tool_choice none", () => {
  it("the tools are not offered to the model (an Ollama model would call one), the answer is text with stop_reason end_turn", async () => {
    const message = await client.messages.create({
      model: AGENT,
      max_tokens: 32,
      tools: [weather] as Array<Anthropic.Tool>,
      tool_choice: { type: "none" },
      messages: [{ role: "user", content: "weather?" }]
    })
    expect(message.stop_reason).toBe("end_turn")
    expect(message.content.map((b) => b.type)).toEqual(["text"])
    expect(at(lastChat(), "tools")).toBeUndefined()
    const offered = await client.messages.create({ model: AGENT, max_tokens: 32, tools: [weather] as Array<Anthropic.Tool>, messages: [{ role: "user", content: "weather?" }] })
    expect(offered.stop_reason).toBe("tool_use")
  })
})

describe("usage on the second turn of a conversation", () => {
  it("cached prompt tokens the backend reports are cache_read_input_tokens; input_tokens is the rest (create and stream)", async () => {
    const first = await client.messages.create({ model: CLOUD, max_tokens: 32, messages: [{ role: "user", content: "hi there" }] })
    expect(first.usage.cache_read_input_tokens).toBe(0)
    const total = first.usage.input_tokens
    const turn2: Array<Anthropic.MessageParam> = [
      { role: "user", content: "hi there" },
      { role: "assistant", content: first.content.flatMap((b) => (b.type === "text" ? [{ type: "text" as const, text: b.text }] : [])) },
      { role: "user", content: "and again" }
    ]
    cloud.setAnswer((r) => ({ content: `Hello from ${r.model}.`, cacheReadInputTokens: total }))
    try {
      const second = await client.messages.create({ model: CLOUD, max_tokens: 32, messages: turn2 })
      expect(second.usage.cache_read_input_tokens).toBe(total)
      expect(second.usage.cache_creation_input_tokens).toBe(0)
      expect(second.usage.input_tokens).toBeGreaterThan(0)
      const streamed = await client.messages.stream({ model: CLOUD, max_tokens: 32, messages: turn2 }).finalMessage()
      expect(streamed.usage.cache_read_input_tokens).toBe(total)
      expect(streamed.usage.input_tokens).toBe(second.usage.input_tokens)
    } finally {
      cloud.setAnswer((r) => ({ content: `Hello from ${r.model}.` }))
    }
  })
})

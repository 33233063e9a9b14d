/**
 * What a generation request through `llmspell serve` can ask for and how its outcome is answered,
 * with the real `openai` and `ollama` clients against a server started here: running out of
 * tokens is a `length` finish in each protocol's terms (never the caller's error), hints speak
 * the API's own field names (never a CLI option), every request field is honoured, passed
 * through or refused by name, and hostile schemas and payloads (huge enums, deep nesting, absurd
 * bounds) are refused with a 400 naming the limit before any work reaches a model.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Ollama } from "ollama"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe, weatherAgent } from "./fixtures/serveHarness.js"
import {
  type FieldTable,
  OLLAMA_FIELDS,
  OLLAMA_OPTIONS,
  OPENAI_CHAT_FIELDS,
  OPENAI_RESPONSES_FIELDS
} from "../src/serve/RequestFields.js"

let dir: string
let fake: FakeOllama
let serve: ServeHarness
let openai: OpenAI
let ollama: Ollama

const TINY = "tiny.gguf@gguf"
const AGENT = "agent@ollama"

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "the weather in a city",
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 20 } }, required: ["city"] }
  }
}
const storySchema = { type: "object", properties: { story: { type: "string", minLength: 100, maxLength: 200 } }, required: ["story"] }

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-generation-"))
  fake = await startFakeOllama({ models: [fakeModel("agent", { capabilities: ["completion", "tools", "vision"] })], answer: weatherAgent })
  serve = await startServe({ dir, ollamaUrl: fake.url, gguf: { context_size: 2048 } })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400, contextLength: 4096 }))
  openai = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "unused", maxRetries: 0 })
  ollama = new Ollama({ host: serve.url })
})

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** The error a client call rejects with (status and message), or undefined when it succeeds. */
const failure = async (p: Promise<unknown>) => {
  try {
    await p
    return undefined
  } catch (e) {
    const x = e as { status?: number; status_code?: number; message: string; error?: unknown }
    return { status: x.status ?? x.status_code, message: x.message }
  }
}

/** No CLI vocabulary in an HTTP answer. */
const expectNoCliHint = (text: string) => {
  expect(text).not.toMatch(/--[a-z]|llmspell (run|model|config)/)
}

describe("running out of tokens is a length finish, not the caller's error", () => {
  it("OpenAI chat: a forced tool call cut by max_tokens is 200 with finish_reason length (required and named, streamed or not)", async () => {
    for (const tool_choice of ["required", { type: "function", function: { name: "get_weather" } }] as const) {
      const reply = await openai.chat.completions.create({
        model: TINY,
        messages: [{ role: "user", content: "weather in Oslo?" }],
        tools: [weatherTool],
        tool_choice,
        max_tokens: 3,
        seed: 1
      })
      expect(reply.choices[0]!.finish_reason).toBe("length")
      expect(reply.choices[0]!.message.tool_calls ?? []).toEqual([])
      const stream = await openai.chat.completions.create({
        model: TINY,
        messages: [{ role: "user", content: "weather in Oslo?" }],
        tools: [weatherTool],
        tool_choice,
        max_tokens: 3,
        seed: 1,
        stream: true
      })
      const finishes: Array<string | null> = []
      for await (const chunk of stream) finishes.push(chunk.choices[0]?.finish_reason ?? null)
      expect(finishes.filter((f) => f !== null)).toEqual(["length"])
    }
  })

  it("OpenAI chat: a json_schema answer cut by max_tokens is 200, finish_reason length, with the partial JSON as content", async () => {
    const reply = await openai.chat.completions.create({
      model: TINY,
      messages: [{ role: "user", content: "a story" }],
      response_format: { type: "json_schema", json_schema: { name: "story", schema: storySchema } },
      max_tokens: 10,
      seed: 1
    })
    expect(reply.choices[0]!.finish_reason).toBe("length")
    expect(reply.choices[0]!.message.content!.startsWith('{"story":"')).toBe(true)
    expect(reply.usage!.completion_tokens).toBe(10)
  })

  it("OpenAI responses: a json_schema answer cut by max_output_tokens is incomplete (max_output_tokens), not an error", async () => {
    const response = await openai.responses.create({
      model: TINY,
      input: "a story",
      text: { format: { type: "json_schema", name: "story", schema: storySchema } },
      max_output_tokens: 10
    })
    expect(response.status).toBe("incomplete")
    expect(response.incomplete_details?.reason).toBe("max_output_tokens")
  })

  it("Ollama chat and generate: a format answer cut by num_predict is done_reason length, streamed or not", async () => {
    const chat = await ollama.chat({ model: TINY, messages: [{ role: "user", content: "a story" }], format: storySchema, options: { num_predict: 10, seed: 1 } })
    expect(chat.done_reason).toBe("length")
    expect(chat.message.content.startsWith('{"story":"')).toBe(true)
    const generate = await ollama.generate({ model: TINY, prompt: "a story", format: storySchema, options: { num_predict: 10, seed: 1 } })
    expect(generate.done_reason).toBe("length")
    const records: Array<{ done: boolean; done_reason?: string }> = []
    for await (const r of await ollama.generate({ model: TINY, prompt: "a story", format: "json", stream: true, options: { num_predict: 5, seed: 1 } })) records.push(r)
    expect(records.at(-1)).toMatchObject({ done: true, done_reason: "length" })
  })
})

describe("hints in the API's own terms", () => {
  it("OpenAI: an out-of-range max_tokens names max_tokens, not --max-tokens", async () => {
    const e = await failure(openai.chat.completions.create({ model: TINY, messages: [{ role: "user", content: "hi" }], max_tokens: 0 }))
    expect(e?.status).toBe(400)
    expect(e?.message).toContain("max_tokens")
    expectNoCliHint(e!.message)
  })

  it("OpenAI: an answer that breaks a pattern the grammar cannot enforce says so without CLI hints", async () => {
    const schema = { type: "object", properties: { id: { type: "string", maxLength: 12, pattern: "^[0-9]{12}$" } }, required: ["id"] }
    const e = await failure(openai.chat.completions.create({
      model: TINY,
      messages: [{ role: "user", content: "an id" }],
      response_format: { type: "json_schema", json_schema: { name: "id", schema } },
      seed: 3
    }))
    expect(e?.message).toContain("does not match")
    expectNoCliHint(e!.message)
  })

  it("Ollama: an out-of-range option names options.temperature; an unsupported schema keyword names format", async () => {
    const e = await failure(ollama.chat({ model: TINY, messages: [{ role: "user", content: "hi" }], options: { temperature: -1 } }))
    expect(e?.status).toBe(400)
    expect(e?.message).toContain("options.temperature")
    expectNoCliHint(e!.message)
    const s = await failure(ollama.chat({ model: TINY, messages: [{ role: "user", content: "hi" }], format: { type: "object", properties: { a: { not: {} } } } }))
    expect(s?.status).toBe(400)
    expect(s?.message).toContain("not")
    expectNoCliHint(s!.message)
  })

  it("errors no API term covers (a missing model, an unknown instance, a bad spec) carry no llmspell command either", async () => {
    const specs = ["nowhere.gguf@gguf", "qwen@no-such-instance", "bad@@spec"]
    for (const model of specs) {
      const o = await failure(openai.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] }))
      const l = await failure(ollama.chat({ model, messages: [{ role: "user", content: "hi" }] }))
      const e = await failure(openai.embeddings.create({ model, input: "hi" }))
      for (const answer of [o, l, e]) {
        expect(answer?.status, `${model}: ${answer?.message}`).toBeGreaterThanOrEqual(400)
        expect(answer!.message).not.toMatch(/\bllmspell [a-z]|`--[a-z]/)
      }
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Every field of every table: honoured (it reaches the backend), no effect, default only, refused
// ---------------------------------------------------------------------------------------------

/** How to exercise one table row: a value, and for an honoured field what the fake Ollama must receive. */
interface Row {
  readonly value: unknown
  /** For `default only` rows: a value that is not the default (refused). */
  readonly other?: unknown
  /** For honoured rows sent to the Ollama-backed model: the path in the body the fake received, and its value there. */
  readonly reaches?: readonly [path: string, expected: unknown]
  /** Honoured rows the Ollama backend itself refuses (by the same name): exercised on the GGUF model instead. */
  readonly gguf?: true
}

const at = (body: unknown, path: string): unknown => path.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], body)
const lastBody = (route: string) => [...fake.requests].reverse().find((r) => r.path === route)?.body

const SAMPLING_ROWS: Record<string, Row> = {
  temperature: { value: 0.5, reaches: ["options.temperature", 0.5] },
  top_p: { value: 0.9, reaches: ["options.top_p", 0.9] },
  seed: { value: 7, reaches: ["options.seed", 7] },
  frequency_penalty: { value: 0.5, reaches: ["options.frequency_penalty", 0.5] },
  presence_penalty: { value: 0.25, reaches: ["options.presence_penalty", 0.25] },
  top_k: { value: 5, reaches: ["options.top_k", 5] },
  min_p: { value: 0.1, reaches: ["options.min_p", 0.1] },
  repeat_penalty: { value: 1.2, reaches: ["options.repeat_penalty", 1.2] },
  repeat_last_n: { value: 32, reaches: ["options.repeat_last_n", 32] },
  parallel_tool_calls: { value: true }
}
const OPENAI_NO_EFFECT_ROWS: Record<string, Row> = {
  user: { value: "u-1" },
  safety_identifier: { value: "s-1" },
  metadata: { value: { team: "a" } },
  prompt_cache_key: { value: "k" },
  prompt_cache_retention: { value: "24h" },
  prompt_cache_options: { value: {} },
  service_tier: { value: "auto" }
}

const CHAT_ROWS: Record<string, Row> = {
  model: { value: AGENT },
  messages: { value: [{ role: "user", content: "hi" }] },
  stream: { value: false },
  stream_options: { value: { include_usage: true } },
  max_tokens: { value: 5, reaches: ["options.num_predict", 5] },
  max_completion_tokens: { value: 6, reaches: ["options.num_predict", 6] },
  stop: { value: ["zz"], reaches: ["options.stop", ["zz"]] },
  logit_bias: { value: { "1": -5 }, gguf: true },
  tools: { value: [weatherTool], reaches: ["tools.0.function.name", "get_weather"] },
  tool_choice: { value: "none", reaches: ["tools", undefined] },
  response_format: { value: { type: "json_object" }, reaches: ["format", "json"] },
  reasoning_effort: { value: "none", reaches: ["think", false] },
  ...SAMPLING_ROWS,
  ...OPENAI_NO_EFFECT_ROWS,
  n: { value: 1, other: 2 },
  logprobs: { value: false, other: true },
  top_logprobs: { value: 0, other: 3 },
  store: { value: false, other: true },
  modalities: { value: ["text"], other: ["text", "audio"] },
  verbosity: { value: "low" },
  audio: { value: { voice: "alloy", format: "mp3" } },
  prediction: { value: { type: "content", content: "x" } },
  web_search_options: { value: {} },
  moderation: { value: {} },
  functions: { value: [{ name: "f", parameters: {} }] },
  function_call: { value: "auto" }
}

const RESPONSES_ROWS: Record<string, Row> = {
  model: { value: AGENT },
  input: { value: "hi" },
  instructions: { value: "Be brief.", reaches: ["messages.0.content", "Be brief."] },
  stream: { value: false },
  stream_options: { value: { include_obfuscation: false } },
  max_output_tokens: { value: 5, reaches: ["options.num_predict", 5] },
  text: { value: { format: { type: "json_object" } }, reaches: ["format", "json"] },
  reasoning: { value: { effort: "none" }, reaches: ["think", false] },
  tools: { value: [{ type: "function", name: "get_weather", parameters: weatherTool.function.parameters }], reaches: ["tools.0.function.name", "get_weather"] },
  tool_choice: { value: "none", reaches: ["tools", undefined] },
  ...SAMPLING_ROWS,
  ...OPENAI_NO_EFFECT_ROWS,
  store: { value: true },
  client_metadata: { value: { "x-codex-installation-id": "1" } },
  include: { value: ["reasoning.encrypted_content"], other: ["message.output_text.logprobs"] },
  truncation: { value: "disabled", other: "auto" },
  top_logprobs: { value: 0, other: 2 },
  background: { value: false, other: true },
  previous_response_id: { value: "resp_1" },
  conversation: { value: "conv_1" },
  prompt: { value: { id: "pmpt_1" } },
  max_tool_calls: { value: 3 },
  background_options: { value: {} },
  context_management: { value: [] },
  moderation: { value: {} },
  image: { value: {} },
  access_programs: { value: {} }
}

const OLLAMA_ROWS: Record<string, Row & { readonly route: "/api/chat" | "/api/generate" }> = {
  model: { route: "/api/chat", value: AGENT },
  messages: { route: "/api/chat", value: [{ role: "user", content: "hi" }] },
  // /api/generate reaches a backend as a chat: the system prompt first, then the prompt
  prompt: { route: "/api/generate", value: "hi", reaches: ["messages.0.content", "hi"] },
  system: { route: "/api/generate", value: "Be brief.", reaches: ["messages.0.content", "Be brief."] },
  stream: { route: "/api/chat", value: false },
  format: { route: "/api/chat", value: "json", reaches: ["format", "json"] },
  options: { route: "/api/chat", value: { seed: 3 }, reaches: ["options.seed", 3] },
  keep_alive: { route: "/api/chat", value: "5m" },
  think: { route: "/api/chat", value: false, reaches: ["think", false] },
  tools: { route: "/api/chat", value: [weatherTool], reaches: ["tools.0.function.name", "get_weather"] },
  images: { route: "/api/generate", value: ["iVBORw0KGgoAAAA="], reaches: ["messages.0.images.0", "iVBORw0KGgoAAAA="] },
  raw: { route: "/api/generate", value: false, other: true },
  suffix: { route: "/api/generate", value: "", other: "}" },
  template: { route: "/api/generate", value: "", other: "{{ .Prompt }}" },
  context: { route: "/api/generate", value: [], other: [1, 2] },
  logprobs: { route: "/api/chat", value: false, other: true },
  top_logprobs: { route: "/api/chat", value: 0, other: 2 },
  width: { route: "/api/generate", value: 8 },
  height: { route: "/api/generate", value: 8 },
  steps: { route: "/api/generate", value: 2 }
}

const OPTION_ROWS: Record<string, Row> = {
  num_predict: { value: 5, reaches: ["options.num_predict", 5] },
  temperature: { value: 0.5, reaches: ["options.temperature", 0.5] },
  top_k: { value: 5, reaches: ["options.top_k", 5] },
  top_p: { value: 0.9, reaches: ["options.top_p", 0.9] },
  min_p: { value: 0.1, reaches: ["options.min_p", 0.1] },
  seed: { value: 7, reaches: ["options.seed", 7] },
  stop: { value: ["zz"], reaches: ["options.stop", ["zz"]] },
  num_ctx: { value: 2048, reaches: ["options.num_ctx", 2048] },
  repeat_penalty: { value: 1.2, reaches: ["options.repeat_penalty", 1.2] },
  repeat_last_n: { value: 32, reaches: ["options.repeat_last_n", 32] },
  presence_penalty: { value: 0.25, reaches: ["options.presence_penalty", 0.25] },
  frequency_penalty: { value: 0.5, reaches: ["options.frequency_penalty", 0.5] },
  typical_p: { value: 1, other: 0.5 },
  tfs_z: { value: 1, other: 0.9 },
  mirostat: { value: 0, other: 2 },
  mirostat_tau: { value: 5 },
  mirostat_eta: { value: 0.1 },
  penalize_newline: { value: false, other: true },
  num_keep: { value: 4 },
  num_batch: { value: 8 },
  num_gpu: { value: 1 },
  main_gpu: { value: 0 },
  num_thread: { value: 2 },
  use_mmap: { value: true },
  use_mlock: { value: true },
  numa: { value: true },
  low_vram: { value: true },
  f16_kv: { value: true },
  vocab_only: { value: true },
  logits_all: { value: true },
  embedding_only: { value: true }
}

/** Sends a raw JSON body (what a client's extra fields look like on the wire); status and parsed body. */
const post = async (path: string, body: unknown) => {
  const response = await fetch(`${serve.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  const text = await response.text()
  return { status: response.status, text }
}

/** Walks one table: every row through the route, checked by its kind. */
const walk = async (
  table: FieldTable,
  rows: Record<string, Row & { readonly route?: string }>,
  send: (field: string, value: unknown, model: string, route: string | undefined) => Promise<{ status: number; text: string }>,
  route: string,
  prefix = ""
) => {
  expect(Object.keys(rows).sort(), "every row of the table has an example, and no example is for a field the table lacks").toEqual(Object.keys(table).sort())
  for (const [field, rule] of Object.entries(table)) {
    const row = rows[field]!
    const label = `${prefix}${field} (${rule.kind})`
    const model = row.gguf === true ? TINY : AGENT
    const answer = await send(field, row.value, model, row.route)
    if (rule.kind === "refused") {
      expect(answer.status, label).toBe(400)
      expect(answer.text, label).toContain(`${prefix}${field}`)
      continue
    }
    expect(answer.status, `${label}: ${answer.text}`).toBe(200)
    if (rule.kind === "default only") {
      const other = await send(field, row.other, model, row.route)
      expect(other.status, `${label} with ${JSON.stringify(row.other)}`).toBe(400)
      expect(other.text, label).toContain(`${prefix}${field}`)
    }
    if (row.reaches !== undefined) {
      const [path, expected] = row.reaches
      expect(at(lastBody("/api/chat"), path), `${label} reaches the backend as ${path}`).toEqual(expected)
    }
  }
  // a field in no table is refused by name, never ignored
  const unknown = await send("not_a_field", 1, AGENT, "/api/chat")
  expect(unknown.status).toBe(400)
  expect(unknown.text).toContain(`${prefix}not_a_field`)
  void route
}

describe("every request field is honoured, passed through or refused by name (one row each)", () => {
  it("OpenAI /v1/chat/completions", async () => {
    await walk(OPENAI_CHAT_FIELDS, CHAT_ROWS, (field, value, model) =>
      post("/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }], max_tokens: 4, [field]: value }), "chat")
  })

  it("OpenAI /v1/responses", async () => {
    await walk(OPENAI_RESPONSES_FIELDS, RESPONSES_ROWS, (field, value, model) =>
      post("/v1/responses", { model, input: "hi", max_output_tokens: 4, [field]: value }), "responses")
  })

  it("Ollama /api/chat and /api/generate: top-level fields", async () => {
    await walk(OLLAMA_FIELDS, OLLAMA_ROWS, (field, value, model, route) =>
      route === "/api/generate"
        ? post("/api/generate", { model, prompt: "hi", stream: false, options: { num_predict: 4 }, [field]: value })
        : post("/api/chat", { model, messages: [{ role: "user", content: "hi" }], stream: false, options: { num_predict: 4 }, [field]: value }), "ollama")
  })

  it("Ollama options", async () => {
    await walk(OLLAMA_OPTIONS, OPTION_ROWS, (field, value, model) =>
      post("/api/chat", { model, messages: [{ role: "user", content: "hi" }], stream: false, options: { [field]: value } }), "options", "options.")
  })
})

describe("the GGUF model honours the sampling fields (not just accepts them)", () => {
  const ask = (extra: Record<string, unknown>) =>
    openai.chat.completions.create({
      model: TINY,
      messages: [{ role: "user", content: "say it again and again" }],
      max_tokens: 24,
      temperature: 0,
      seed: 1,
      ...extra
    } as never) as Promise<OpenAI.ChatCompletion>

  it("frequency/presence and repeat penalties change a greedy answer; repeat_last_n 0 turns them off", async () => {
    const plain = (await ask({})).choices[0]!.message.content
    const penalised = (await ask({ frequency_penalty: 2, presence_penalty: 2 })).choices[0]!.message.content
    const repeated = (await ask({ repeat_penalty: 5 })).choices[0]!.message.content
    const off = (await ask({ frequency_penalty: 2, presence_penalty: 2, repeat_last_n: 0 })).choices[0]!.message.content
    expect(penalised).not.toBe(plain)
    expect(repeated).not.toBe(plain)
    expect(off).toBe(plain)
  })

  it("logit_bias -100 on every token but end-of-generation ends the answer at once; an out-of-range value is a 400 naming logit_bias", async () => {
    const EOS = 2
    const bias = Object.fromEntries(Array.from({ length: 400 }, (_, id) => id).filter((id) => id !== EOS).map((id) => [String(id), -100]))
    const reply = await ask({ logit_bias: bias })
    expect(reply.choices[0]!.message.content).toBe("")
    expect(reply.usage!.completion_tokens).toBeLessThanOrEqual(1)
    const e = await failure(ask({ logit_bias: { "5": 500 } }))
    expect(e?.status).toBe(400)
    expect(e?.message).toContain("logit_bias")
    expectNoCliHint(e!.message)
  })

  it("logprobs: true is refused by name (node-llama-cpp exposes no token probabilities); the Ollama backend refuses logit_bias by name", async () => {
    const e = await failure(ask({ logprobs: true }))
    expect(e?.status).toBe(400)
    expect(e?.message).toContain("logprobs")
    const o = await failure(openai.chat.completions.create({ model: AGENT, messages: [{ role: "user", content: "hi" }], logit_bias: { "1": 5 } }))
    expect(o?.status).toBe(400)
    expect(o?.message).toContain("logit_bias")
    expect(o?.message).toContain("Ollama has no logit bias")
  })
})

// ---------------------------------------------------------------------------------------------
// Hostile schemas and payloads: refused by name before any work reaches a model
// ---------------------------------------------------------------------------------------------

/**
 * JSON text nested `depth` deep, built as text: no JavaScript client can serialize such a value
 * (JSON.stringify overflows the stack), so these requests go as raw bodies, as a hostile client sends them.
 */
const deepObjectText = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`
/** A schema nested `depth` levels of `properties`, as JSON text. */
const deepSchemaText = (depth: number) => `${'{"type":"object","properties":{"a":'.repeat(depth)}{"type":"string"}${"}}".repeat(depth)}`

/** Sends a body given as JSON text. */
const postText = async (path: string, text: string) => {
  const response = await fetch(`${serve.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: text })
  return { status: response.status, text: await response.text() }
}

describe("hostile schemas and payloads are a 400 naming the field or limit, never a 500 or a hang", () => {
  it("a response_format enum of 100,000 values (~1.3 MB): a 400 naming enum and the limit, while a request beside it on the same model answers", async () => {
    const values = Array.from({ length: 100_000 }, (_, i) => `value-${i}`)
    const schema = { type: "object", properties: { pick: { enum: values } }, required: ["pick"] }
    const [huge, beside] = await Promise.all([
      failure(openai.chat.completions.create({
        model: TINY,
        messages: [{ role: "user", content: "pick one" }],
        response_format: { type: "json_schema", json_schema: { name: "pick", schema } }
      })),
      openai.chat.completions.create({ model: TINY, messages: [{ role: "user", content: "hi" }], max_tokens: 4 })
    ])
    expect(huge?.status).toBe(400)
    expect(huge?.message).toContain("enum")
    expect(huge?.message).toContain("100000 values; at most 1000")
    expect(huge?.message).toContain("response_format.json_schema.schema")
    expectNoCliHint(huge!.message)
    expect(beside.choices[0]!.finish_reason).toMatch(/stop|length/)
    // the same through Ollama's format, and on an Ollama-backed model (the bound is llmspell's, for every backend)
    for (const model of [TINY, AGENT]) {
      const o = await failure(ollama.chat({ model, messages: [{ role: "user", content: "pick" }], format: schema }))
      expect(o?.status).toBe(400)
      expect(o?.message).toContain("format")
      expect(o?.message).toContain("at most 1000")
    }
  })

  it("schemas nested 3,000 and 10,000 deep (tool parameters, response format, Ollama format): a 400", async () => {
    for (const depth of [3_000, 10_000]) {
      const schema = deepSchemaText(depth)
      const tools = await postText("/v1/chat/completions", `{"model":"${TINY}","messages":[{"role":"user","content":"hi"}],"tool_choice":"required","tools":[{"type":"function","function":{"name":"deep","parameters":${schema}}}]}`)
      expect(tools.status, `tools ${depth}: ${tools.text.slice(0, 200)}`).toBe(400)
      expect(tools.text).toContain("the parameters of tool \\\"deep\\\"")
      const format = await postText("/v1/chat/completions", `{"model":"${TINY}","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"deep","schema":${schema}}}}`)
      expect(format.status, `format ${depth}`).toBe(400)
      expect(format.text).toContain("nests deeper than 64")
      const responses = await postText("/v1/responses", `{"model":"${TINY}","input":"hi","text":{"format":{"type":"json_schema","name":"deep","schema":${schema}}}}`)
      expect(responses.status, `responses ${depth}`).toBe(400)
      expect(responses.text).toContain("text.format.schema")
      for (const model of [TINY, AGENT]) {
        const ollamaFormat = await postText("/api/chat", `{"model":"${model}","stream":false,"messages":[{"role":"user","content":"hi"}],"format":${schema}}`)
        expect(ollamaFormat.status, `ollama format ${model} ${depth}`).toBe(400)
        expect(ollamaFormat.text).toContain("format")
        const ollamaTools = await postText("/api/chat", `{"model":"${model}","stream":false,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"deep","parameters":${schema}}}]}`)
        expect(ollamaTools.status, `ollama tools ${model} ${depth}`).toBe(400)
      }
    }
  })

  it("a schema within the JSON bounds but past the grammar's (40 levels of array items) is refused by the GGUF backend, naming the limit", async () => {
    const arrays = JSON.parse(`${'{"type":"array","items":'.repeat(40)}{"type":"integer"}${"}".repeat(40)}`) as Record<string, unknown>
    const e = await failure(openai.chat.completions.create({
      model: TINY,
      messages: [{ role: "user", content: "hi" }],
      response_format: { type: "json_schema", json_schema: { name: "deep", schema: arrays } }
    }))
    expect(e?.status).toBe(400)
    expect(e?.message).toContain("nest more than 32 deep")
  })

  it("tool-call arguments and function_call_output nested 10,000 deep: a 400 naming where", async () => {
    const deep = deepObjectText(10_000)
    const chat = await postText("/v1/chat/completions", JSON.stringify({
      model: TINY,
      messages: [
        { role: "user", content: "go" },
        { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: deep } }] },
        { role: "tool", tool_call_id: "c1", content: "sunny" }
      ],
      tools: [weatherTool]
    }))
    expect(chat.status).toBe(400)
    expect(chat.text).toContain("messages.1.toolCalls.0.params")
    const responses = await postText("/v1/responses", `{"model":"${TINY}","input":[{"role":"user","content":"go"},{"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":${deep}}]}`)
    expect(responses.status).toBe(400)
    expect(responses.text).toContain("input[2].output")
    for (const model of [TINY, AGENT]) {
      const o = await postText("/api/chat", `{"model":"${model}","stream":false,"messages":[{"role":"user","content":"go"},{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":${deep}}}]}]}`)
      expect(o.status, model).toBe(400)
      expect(o.text).toContain("messages.1")
    }
  })

  it("a tool result that is deeply nested JSON text reaches the GGUF model as text, not as a value to walk", async () => {
    const reply = await openai.chat.completions.create({
      model: TINY,
      max_tokens: 4,
      messages: [
        { role: "user", content: "go" },
        { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: "{}" } }] },
        { role: "tool", tool_call_id: "c1", content: deepObjectText(100) }
      ],
      tools: [weatherTool]
    })
    expect(reply.choices[0]!.finish_reason).toMatch(/stop|length|tool_calls/)
  })

  it("minLength, minItems and maxLength of 1e9: a 400 naming the keyword", async () => {
    const cases: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
      ["minLength", { type: "object", properties: { s: { type: "string", minLength: 1e9 } } }],
      ["minItems", { type: "object", properties: { xs: { type: "array", items: { type: "integer" }, minItems: 1e9 } } }],
      ["maxLength", { type: "object", properties: { s: { type: "string", maxLength: 1e9 } } }],
      ["maxItems", { type: "object", properties: { xs: { type: "array", items: { type: "integer" }, maxItems: 1e9 } } }]
    ]
    for (const [keyword, schema] of cases) {
      const e = await failure(openai.chat.completions.create({
        model: TINY,
        messages: [{ role: "user", content: "hi" }],
        response_format: { type: "json_schema", json_schema: { name: "big", schema } }
      }))
      expect(e?.status, keyword).toBe(400)
      expect(e?.message, keyword).toContain(`\`${keyword}\``)
      const o = await failure(ollama.chat({ model: TINY, messages: [{ role: "user", content: "hi" }], format: schema }))
      expect(o?.status, keyword).toBe(400)
    }
  })
})

/**
 * `/v1/responses` as a coding agent uses it, checked with the real `openai` client
 * (`responses.create`, and `responses.stream`, whose accumulator validates every event against the
 * output it builds) and with a request body shaped as Codex sends it (openai/codex
 * `codex-rs/codex-api/src/common.rs` `ResponsesApiRequest`, `codex-rs/protocol/src/models.rs`
 * `ResponseItem`), replayed raw and parsed the way Codex parses the stream
 * (`codex-rs/codex-api/src/sse/responses.rs`): function calls with `call_id` and their outputs,
 * `tool_choice`, `parallel_tool_calls`, reasoning items in and out, `store: false`, `include`,
 * `prompt_cache_key`, usage with cached and reasoning tokens, the whole event sequence with
 * sequence numbers, and failures as `response.failed` or an error naming `context_length_exceeded`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { OPENAI_RESPONSES_FIELDS } from "../src/serve/RequestFields.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe, weatherAgent } from "./fixtures/serveHarness.js"

let dir: string
let fake: FakeOllama
let serve: ServeHarness
let client: OpenAI

const TINY = "tiny.gguf@gguf"
const AGENT = "agent@ollama"

const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  description: "the weather in a city",
  strict: false,
  parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-responses-"))
  fake = await startFakeOllama({ models: [fakeModel("agent")], answer: weatherAgent })
  serve = await startServe({ dir, ollamaUrl: fake.url })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "unused", maxRetries: 0 })
})

afterAll(async () => {
  await serve?.close()
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** One server-sent event: its `event:` name and its parsed `data:`. */
interface SseEvent {
  readonly event: string | undefined
  readonly data: Record<string, unknown>
}

/** POSTs a raw body to /v1/responses and parses the event stream (every `data:` must be JSON). */
const streamRaw = async (body: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${serve.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })
  const text = await res.text()
  const events: Array<SseEvent> = []
  // a failure before the first event is an HTTP error with a JSON body
  const blocks = res.headers.get("content-type")?.includes("text/event-stream") === true ? text.split("\n\n") : []
  for (const block of blocks.filter((b) => b.trim() !== "")) {
    const lines = block.split("\n")
    const event = lines.find((l) => l.startsWith("event: "))?.slice(7)
    const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")
    events.push({ event, data: JSON.parse(data) as Record<string, unknown> })
  }
  return { status: res.status, contentType: res.headers.get("content-type"), text, events }
}

/** `responses.create` with llmspell's extensions (`seed`), which the client's types do not know. */
const create = (params: Record<string, unknown>) => client.responses.create(params as never) as Promise<OpenAI.Responses.Response>

const types = (events: ReadonlyArray<SseEvent>) => events.map((e) => e.data["type"] as string)

/** The event sequence rules every Responses stream follows, whatever its items. */
const expectWellFormed = (events: ReadonlyArray<SseEvent>) => {
  expect(events.map((e) => e.data["sequence_number"])).toEqual(events.map((_, i) => i))
  for (const e of events) expect(e.event, "each event is named after its type").toBe(e.data["type"])
  const kinds = types(events)
  expect(kinds.slice(0, 2)).toEqual(["response.created", "response.in_progress"])
  expect(["response.completed", "response.incomplete", "response.failed"]).toContain(kinds.at(-1))
  expect(kinds.filter((k) => k.startsWith("response.") && ["created", "in_progress", "completed", "incomplete", "failed"].includes(k.slice(9))))
    .toHaveLength(3)
  // every item added is done, in order, at the index it was added at
  const added = events.filter((e) => e.data["type"] === "response.output_item.added").map((e) => e.data["output_index"])
  const done = events.filter((e) => e.data["type"] === "response.output_item.done").map((e) => e.data["output_index"])
  expect(done).toEqual(added)
  expect(added).toEqual(added.map((_, i) => i))
}

describe("function calls through the openai client", () => {
  it("responses.create: a function_call item with call_id, then a function_call_output round trip answers from it", async () => {
    const first = await client.responses.create({ model: AGENT, input: "weather in Paris?", tools: [weatherTool], store: false })
    expect(first.status).toBe("completed")
    const call = first.output.find((item): item is OpenAI.Responses.ResponseFunctionToolCall => item.type === "function_call")!
    expect(call).toMatchObject({ name: "get_weather", status: "completed" })
    expect(call.call_id).toMatch(/\S/)
    expect(call.id).toMatch(/\S/)
    expect(JSON.parse(call.arguments)).toEqual({ city: "Paris" })
    expect((first as unknown as { store: boolean }).store).toBe(false)

    const second = await client.responses.create({
      model: AGENT,
      input: [
        { role: "user", content: "weather in Paris?" },
        ...first.output.filter((item) => item.type === "function_call"),
        { type: "function_call_output", call_id: call.call_id, output: "sunny" }
      ],
      tools: [weatherTool],
      store: false
    })
    expect(second.output_text).toBe("It is sunny.")
    // the tool result reached the model as the answer to that call
    const chat = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as { messages: Array<Record<string, unknown>> }
    expect(chat.messages.at(-1)).toMatchObject({ role: "tool", content: "sunny" })
    expect(chat.messages.at(-2)).toMatchObject({ role: "assistant", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }] })
  })

  it("responses.stream: output_item.added/.done for the call, function_call_arguments.delta/.done, and finalResponse() holds it", async () => {
    const stream = client.responses.stream({ model: AGENT, input: "weather in Paris?", tools: [weatherTool], parallel_tool_calls: false })
    const seen: Array<OpenAI.Responses.ResponseStreamEvent> = []
    for await (const event of stream) seen.push(event)
    const final = await stream.finalResponse()
    const call = final.output.find((item) => item.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall
    expect(call.name).toBe("get_weather")
    expect(final.parallel_tool_calls).toBe(false)
    const kinds = seen.map((e) => e.type)
    expect(kinds).toContain("response.function_call_arguments.delta")
    const added = seen.find((e) => e.type === "response.output_item.added" && e.item.type === "function_call") as OpenAI.Responses.ResponseOutputItemAddedEvent
    expect((added.item as OpenAI.Responses.ResponseFunctionToolCall).call_id).toBe(call.call_id)
    const argsDone = seen.find((e) => e.type === "response.function_call_arguments.done") as OpenAI.Responses.ResponseFunctionCallArgumentsDoneEvent
    expect(JSON.parse(argsDone.arguments)).toEqual({ city: "Paris" })
    const deltas = seen.filter((e) => e.type === "response.function_call_arguments.delta").map((e) => (e as OpenAI.Responses.ResponseFunctionCallArgumentsDeltaEvent).delta).join("")
    expect(deltas).toBe(argsDone.arguments)
    expect(kinds.indexOf("response.function_call_arguments.done")).toBeLessThan(kinds.lastIndexOf("response.output_item.done"))
    expect(kinds.at(-1)).toBe("response.completed")
  })

  it("tool_choice: a named function forces a call on the GGUF model; required too; none sends no tools; call_ids never repeat", async () => {
    const callIds: Array<string> = []
    for (const tool_choice of [{ type: "function" as const, name: "get_weather" }, "required" as const]) {
      const reply = await create({ model: TINY, input: "weather in Oslo?", tools: [weatherTool], tool_choice, max_output_tokens: 200, temperature: 0, seed: 1 })
      const calls = reply.output.filter((item) => item.type === "function_call")
      expect(calls, JSON.stringify(tool_choice)).toHaveLength(1)
      expect(calls[0]).toMatchObject({ name: "get_weather" })
      expect(typeof (JSON.parse((calls[0] as OpenAI.Responses.ResponseFunctionToolCall).arguments) as { city: unknown }).city).toBe("string")
      expect(reply.tool_choice).toEqual(tool_choice)
      callIds.push((calls[0] as OpenAI.Responses.ResponseFunctionToolCall).call_id)
    }
    // the GGUF backend numbers its calls per answer; an agent keys results by call_id across turns
    expect(new Set(callIds).size).toBe(callIds.length)
    const none = await client.responses.create({ model: AGENT, input: "weather in Paris?", tools: [weatherTool], tool_choice: "none" })
    expect(none.output.some((item) => item.type === "function_call")).toBe(false)
    expect(fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body).not.toHaveProperty("tools")
  })

  it("parallel_tool_calls false reaches the GGUF model as one call at most, and is echoed", async () => {
    const reply = await create({
      model: TINY,
      input: "weather in Oslo and Rome?",
      tools: [weatherTool],
      tool_choice: "required",
      parallel_tool_calls: false,
      max_output_tokens: 300,
      temperature: 0,
      seed: 2
    })
    expect(reply.output.filter((item) => item.type === "function_call")).toHaveLength(1)
    expect(reply.parallel_tool_calls).toBe(false)
  })
})

describe("parallel_tool_calls false on Ollama, which cannot enforce it (Codex sends it with every request)", () => {
  it("one call passes; an answer with two calls is refused before either reaches the client", async () => {
    const one = await client.responses.create({ model: AGENT, input: "weather in Paris?", tools: [weatherTool], parallel_tool_calls: false })
    expect(one.output.filter((item) => item.type === "function_call")).toHaveLength(1)
    const answer = fake.state.answer
    fake.state.answer = () => ({ content: "", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }, { name: "get_weather", arguments: { city: "Rome" } }] })
    try {
      const two = await client.responses.create({ model: AGENT, input: "weather in Paris and Rome?", tools: [weatherTool], parallel_tool_calls: false })
        .then(() => undefined, (e: unknown) => e)
      expect(two).toBeInstanceOf(OpenAI.APIError)
      expect((two as Error).message).toContain("2 calls")
      const streamed = await streamRaw({ model: AGENT, input: "weather in Paris and Rome?", tools: [weatherTool], parallel_tool_calls: false, stream: true })
      expect(streamed.status).toBe(400)
      expect(streamed.events.some((e) => e.data["type"] === "response.output_item.added")).toBe(false)
      // with parallel calls allowed, both come
      const both = await client.responses.create({ model: AGENT, input: "weather in Paris and Rome?", tools: [weatherTool] })
      expect(both.output.filter((item) => item.type === "function_call")).toHaveLength(2)
    } finally {
      fake.state.answer = answer
    }
  })
})

describe("text, the event sequence and usage", () => {
  it("a streamed answer on the GGUF model: created, in_progress, item added, part added, text deltas, text done, part done, item done, completed", async () => {
    const { status, contentType, events } = await streamRaw({ model: TINY, input: "tell me", stream: true, max_output_tokens: 8, temperature: 0, seed: 3 })
    expect(status).toBe(200)
    expect(contentType).toContain("text/event-stream")
    expectWellFormed(events)
    const kinds = types(events)
    const deltas = kinds.filter((k) => k === "response.output_text.delta").length
    expect(deltas).toBeGreaterThan(0)
    expect(kinds).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      ...Array<string>(deltas).fill("response.output_text.delta"),
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      kinds.at(-1)!
    ])
    const text = events.filter((e) => e.data["type"] === "response.output_text.delta").map((e) => e.data["delta"]).join("")
    expect(events.find((e) => e.data["type"] === "response.output_text.done")!.data["text"]).toBe(text)
    const last = events.at(-1)!.data["response"] as { output: Array<{ content: Array<{ text: string }> }>; usage: Record<string, unknown> }
    expect(last.output[0]!.content[0]!.text).toBe(text)
    // the same request unstreamed gives the same text
    const whole = await create({ model: TINY, input: "tell me", max_output_tokens: 8, temperature: 0, seed: 3 })
    expect(whole.output_text).toBe(text)
  })

  it("usage carries input_tokens_details.cached_tokens and output_tokens_details.reasoning_tokens as integers", async () => {
    const reply = await create({ model: TINY, input: "hello", max_output_tokens: 4, seed: 1 })
    const usage = reply.usage!
    expect(usage.input_tokens).toBeGreaterThan(0)
    expect(usage.output_tokens).toBeGreaterThan(0)
    expect(usage.total_tokens).toBe(usage.input_tokens + usage.output_tokens)
    expect(Number.isInteger(usage.input_tokens_details.cached_tokens)).toBe(true)
    expect(usage.input_tokens_details.cached_tokens).toBeLessThanOrEqual(usage.input_tokens)
    expect(Number.isInteger(usage.output_tokens_details.reasoning_tokens)).toBe(true)
  })

  it("instructions come first as the system message and are echoed; developer messages are system messages too", async () => {
    const reply = await client.responses.create({
      model: AGENT,
      instructions: "Be brief.",
      input: [{ role: "developer", content: "No tools." }, { role: "user", content: [{ type: "input_text", text: "hi" }] }]
    })
    expect(reply.instructions).toBe("Be brief.")
    const chat = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as { messages: Array<Record<string, unknown>> }
    expect(chat.messages.slice(0, 3)).toEqual([
      { role: "system", content: "Be brief." },
      { role: "system", content: "No tools." },
      { role: "user", content: "hi" }
    ])
  })
})

describe("reasoning items", () => {
  it("the model's thinking is a reasoning item with its text as reasoning_text content: no summary is made up, nothing is encrypted", async () => {
    const reply = await client.responses.create({
      model: AGENT,
      input: "ponder this",
      reasoning: { effort: "medium", summary: "auto" },
      include: ["reasoning.encrypted_content"],
      store: false
    })
    const reasoning = reply.output.find((item): item is OpenAI.Responses.ResponseReasoningItem => item.type === "reasoning")!
    expect(reasoning.id).toMatch(/\S/)
    expect(reasoning.content).toEqual([{ type: "reasoning_text", text: "Let me think." }])
    expect(reasoning.summary).toEqual([])
    expect(reasoning.encrypted_content).toBeNull()
    expect(reply.output_text).toBe("Done.")
    expect(reply.output.map((item) => item.type)).toEqual(["reasoning", "message"])
  })

  it("streamed: the reasoning item's content part, reasoning_text deltas and done, before the message; the client's accumulator agrees", async () => {
    const stream = client.responses.stream({ model: AGENT, input: "ponder this", reasoning: { effort: "low" } })
    const seen: Array<OpenAI.Responses.ResponseStreamEvent> = []
    for await (const event of stream) seen.push(event)
    const final = await stream.finalResponse()
    const kinds = seen.map((e) => e.type)
    const thinking = seen.filter((e) => e.type === "response.reasoning_text.delta").map((e) => (e as OpenAI.Responses.ResponseReasoningTextDeltaEvent).delta).join("")
    expect(thinking).toBe("Let me think.")
    expect(kinds.indexOf("response.reasoning_text.done")).toBeLessThan(kinds.indexOf("response.output_text.delta"))
    expect((final.output[0] as OpenAI.Responses.ResponseReasoningItem).content).toEqual([{ type: "reasoning_text", text: "Let me think." }])
    expect(final.output_text).toBe("Done.")
  })

  it("reasoning items in the input (summary, content, encrypted_content) are accepted; effort none turns thinking off", async () => {
    const reply = await client.responses.create({
      model: AGENT,
      input: [
        { role: "user", content: "weather in Paris?" },
        { type: "reasoning", id: "rs_1", summary: [{ type: "summary_text", text: "Checking." }], content: [{ type: "reasoning_text", text: "I should call it." }], encrypted_content: null },
        { type: "function_call", call_id: "c1", name: "get_weather", arguments: "{\"city\":\"Paris\"}" },
        { type: "function_call_output", call_id: "c1", output: [{ type: "input_text", text: "rain" }] }
      ],
      tools: [weatherTool],
      reasoning: { effort: "none" }
    })
    expect(reply.output_text).toBe("It is rain.")
    expect(fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body).toMatchObject({ think: false })
  })
})

describe("what a stateless server says about state", () => {
  it("store false and prompt_cache_key are accepted; previous_response_id is refused saying to send the conversation", async () => {
    const ok = await client.responses.create({ model: AGENT, input: "hi", store: false, prompt_cache_key: "conversation-1" })
    expect(ok.status).toBe("completed")
    const refused = await client.responses.create({ model: AGENT, input: "hi", previous_response_id: ok.id }).then(() => undefined, (e: unknown) => e)
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError)
    const message = (refused as InstanceType<typeof OpenAI.BadRequestError>).message
    expect(message).toContain("previous_response_id")
    expect(message).toContain("input")
  })

  it("include: reasoning.encrypted_content is accepted, logprobs are refused by name", async () => {
    const refused = await client.responses.create({ model: AGENT, input: "hi", include: ["message.output_text.logprobs"] }).then(() => undefined, (e: unknown) => e)
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError)
    expect((refused as Error).message).toContain("include")
    expect((refused as Error).message).toContain("message.output_text.logprobs")
  })

  it("input items no stateless server can serve are refused naming the item and its type", async () => {
    for (const [item, words] of [
      [{ type: "item_reference", id: "msg_1" }, "item_reference"],
      [{ type: "web_search_call", id: "ws_1", status: "completed", action: { type: "search", query: "x" } }, "web_search_call"],
      [{ role: "user", content: [{ type: "input_image", file_id: "file_1" }] }, "input_image"]
    ] as const) {
      const res = await fetch(`${serve.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: AGENT, input: [{ role: "user", content: "hi" }, item] })
      })
      expect(res.status, words).toBe(400)
      const body = await res.json() as { error: { message: string; type: string } }
      expect(body.error.type).toBe("invalid_request_error")
      expect(body.error.message).toContain("input[1]")
      expect(body.error.message).toContain(words)
    }
  })
})

describe("built-in tools", () => {
  it("Codex's hosted web search tool (type web_search, no name) is refused, saying which Codex setting turns it off", async () => {
    const refused = await create({ model: AGENT, input: "hi", tools: [weatherTool, { type: "web_search" }] }).then(() => undefined, (e: unknown) => e)
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError)
    const message = (refused as Error).message
    expect(message).toContain("\"web_search\"")
    expect(message).toContain("web_search = \"disabled\"")
    // no CLI hint in an HTTP answer
    expect(message).not.toMatch(/`llmspell|llmspell (model|launch|run|pull)/)
  })
})

describe("failures in the Responses API's terms", () => {
  it("a failure after the first event ends the stream with response.failed (code and message), the items done so far kept", async () => {
    fake.setFault("/api/chat", { kind: "inBandError", after: 2, message: "the runner crashed", times: 1 })
    try {
      const { status, events } = await streamRaw({ model: AGENT, input: "tell me a long story", stream: true })
      expect(status).toBe(200)
      expectWellFormed(events)
      const failed = events.at(-1)!.data
      expect(failed["type"]).toBe("response.failed")
      const response = failed["response"] as { status: string; error: { code: string; message: string } }
      expect(response.status).toBe("failed")
      expect(response.error.code).toMatch(/\S/)
      expect(response.error.message).toContain("the runner crashed")
    } finally {
      fake.clearFaults()
    }
  })

  it("a prompt over the model's context is a 400 with code context_length_exceeded (what Codex looks for)", async () => {
    const res = await fetch(`${serve.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY, input: "word ".repeat(3000), stream: true })
    })
    expect(res.status).toBe(400)
    const body = await res.json() as { error: { code: string; message: string } }
    expect(body.error.code).toBe("context_length_exceeded")
  })
})

/**
 * A request as Codex sends it to a `wire_api = "responses"` provider (openai/codex
 * `ResponsesApiRequest`: instructions, input items, tools, tool_choice "auto",
 * parallel_tool_calls, reasoning, store false, stream true, include, prompt_cache_key; with its
 * newer fields text, service_tier and client_metadata), a turn after a tool call.
 */
const codexRequest = {
  model: AGENT,
  instructions: "You are a coding agent running in the Codex CLI, a terminal-based coding assistant.\n\n## Planning\nUse update_plan for multi-step work.",
  input: [
    { type: "message", role: "developer", content: [{ type: "input_text", text: "<permissions instructions>\nFilesystem sandboxing: workspace-write.\n</permissions instructions>" }] },
    { type: "message", role: "user", content: [{ type: "input_text", text: "# AGENTS.md instructions for /repo\n\n<INSTRUCTIONS>\nUse pnpm.\n</INSTRUCTIONS>" }] },
    { type: "message", role: "user", content: [{ type: "input_text", text: "<environment_context>\n  <cwd>/repo</cwd>\n  <shell>bash</shell>\n</environment_context>" }] },
    { type: "message", role: "user", content: [{ type: "input_text", text: "What is the weather in Paris?" }] },
    { type: "reasoning", summary: [{ type: "summary_text", text: "**Checking the weather**" }], content: [{ type: "reasoning_text", text: "I need the tool." }], encrypted_content: null },
    { type: "message", role: "assistant", content: [{ type: "output_text", text: "Let me check." }] },
    { type: "function_call", name: "get_weather", arguments: "{\"city\":\"Paris\"}", call_id: "call_Zk3" },
    { type: "function_call_output", call_id: "call_Zk3", output: "cloudy" }
  ],
  tools: [
    {
      type: "function",
      name: "shell",
      description: "Runs a shell command and returns its output.",
      strict: false,
      parameters: {
        type: "object",
        properties: {
          command: { type: "array", items: { type: "string" }, description: "The command to execute" },
          workdir: { type: "string", description: "The working directory to execute the command in" },
          timeout_ms: { type: "number", description: "The timeout for the command in milliseconds" }
        },
        required: ["command"],
        additionalProperties: false
      }
    },
    {
      type: "function",
      name: "update_plan",
      description: "Updates the task plan.",
      strict: false,
      parameters: {
        type: "object",
        properties: {
          explanation: { type: "string" },
          plan: { type: "array", items: { type: "object", properties: { step: { type: "string" }, status: { type: "string" } }, required: ["step", "status"], additionalProperties: false } }
        },
        required: ["plan"],
        additionalProperties: false
      }
    },
    weatherTool
  ],
  tool_choice: "auto",
  parallel_tool_calls: false,
  reasoning: { effort: "medium", summary: "auto" },
  store: false,
  stream: true,
  include: ["reasoning.encrypted_content"],
  prompt_cache_key: "0199a213-81c0-7800-8aa1-bbab2a035a53",
  text: { verbosity: "medium" },
  service_tier: "auto",
  client_metadata: { "x-codex-installation-id": "5f1c0d0e-0000-4000-8000-000000000000" }
}

describe("a Codex-shaped request, replayed raw", () => {
  it("every field Codex sends is honoured or has no effect in the field table, never refused", () => {
    for (const field of Object.keys(codexRequest)) {
      const rule = OPENAI_RESPONSES_FIELDS[field]
      expect(rule, field).toBeDefined()
      expect(["honoured", "no effect", "default only"], field).toContain(rule!.kind)
    }
  })

  it("streams what Codex needs: named events, output_item.done items it can parse, response.completed with its id and usage", async () => {
    const { status, events } = await streamRaw(codexRequest, {
      authorization: "Bearer codex",
      "openai-beta": "responses=experimental",
      originator: "codex_cli_rs",
      session_id: "0199a213-81c0-7800-8aa1-bbab2a035a53"
    })
    expect(status).toBe(200)
    expectWellFormed(events)
    // Codex builds its history from response.output_item.done (ResponseItem) …
    const items = events.filter((e) => e.data["type"] === "response.output_item.done").map((e) => e.data["item"] as Record<string, unknown>)
    expect(items).toHaveLength(1)
    expect(items[0]).toMatchObject({ type: "message", role: "assistant", content: [{ type: "output_text", text: "It is cloudy." }] })
    // … and ends the turn on response.completed, whose usage fields it reads as integers
    const completed = events.at(-1)!.data
    expect(completed["type"]).toBe("response.completed")
    const response = completed["response"] as { id: string; usage: Record<string, unknown> }
    expect(response.id).toMatch(/^resp_/)
    const usage = response.usage as {
      input_tokens: number
      input_tokens_details: { cached_tokens: number }
      output_tokens: number
      output_tokens_details: { reasoning_tokens: number }
      total_tokens: number
    }
    for (const n of [usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens, usage.output_tokens_details.reasoning_tokens, usage.total_tokens]) {
      expect(Number.isInteger(n)).toBe(true)
    }
    // the conversation reached the model as one: system, then the turns, the tool result last
    const chat = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as { messages: Array<Record<string, unknown>>; tools: Array<unknown> }
    expect(chat.messages.map((m) => m["role"])).toEqual(["system", "system", "user", "user", "user", "assistant", "tool"])
    expect(chat.messages[5]).toMatchObject({ content: "Let me check.", tool_calls: [{ function: { name: "get_weather" } }] })
    expect(chat.tools).toHaveLength(3)
  })

  it("a tool call streams as Codex expects it: a function_call item with name, arguments and call_id in output_item.done", async () => {
    const first = { ...codexRequest, input: codexRequest.input.slice(0, 4) }
    const { events } = await streamRaw(first)
    expectWellFormed(events)
    const done = events.filter((e) => e.data["type"] === "response.output_item.done").map((e) => e.data["item"] as Record<string, unknown>)
    const call = done.find((item) => item["type"] === "function_call")!
    expect(call["name"]).toBe("get_weather")
    expect(typeof call["call_id"]).toBe("string")
    expect(JSON.parse(call["arguments"] as string)).toEqual({ city: "Paris" })
  })
})

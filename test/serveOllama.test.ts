/**
 * `llmspell serve`'s Ollama API with the real `ollama` npm client against a server started here on
 * 127.0.0.1: a generated GGUF model in the model directory, the fake Ollama behind the `ollama`
 * instance and the fake hub for pulls. Chat, generate, streaming, tags, ps and keep_alive, show,
 * pull, delete, embed, tools and format, and Ollama's error codes.
 */
import { writeFileSync } from "node:fs"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Ollama } from "ollama"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeHub, ggufContent, startFakeHub } from "./fixtures/fakeHub.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { OLLAMA_API_LEVEL } from "../src/serve/OllamaApi.js"
import { type ServeHarness, startServe, weatherAgent } from "./fixtures/serveHarness.js"

let dir: string
let fake: FakeOllama
let hub: FakeHub
let serve: ServeHarness
let client: Ollama

const TINY = "tiny.gguf@gguf"

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-ollama-"))
  fake = await startFakeOllama({ models: [fakeModel("agent"), fakeModel("embedder")], answer: weatherAgent })
  hub = await startFakeHub()
  await hub.addRepo({ name: "org/repo", files: [{ path: "repo-Q8_0.gguf", content: ggufContent("serve-pull", 20_000, 7) }] })
  serve = await startServe({ dir, ollamaUrl: fake.url, hubUrl: hub.url })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  client = new Ollama({ host: serve.url })
})

afterAll(async () => {
  await serve?.close()
  await Promise.all([fake?.close(), hub?.close()])
  rmSync(dir, { recursive: true, force: true })
})

const statusOf = async (p: Promise<unknown>) => {
  try {
    await p
    return undefined
  } catch (e) {
    return { name: (e as Error).name, status: (e as { status_code?: number }).status_code, message: (e as Error).message }
  }
}

describe("Ollama API through the ollama client", () => {
  it("version and tags: every backend's models under specs that route back to them", async () => {
    // the Ollama API level implemented (clients gate tools and think on it), and llmspell's own version beside it
    const version = await client.version()
    expect(version.version).toBe(OLLAMA_API_LEVEL)
    expect((version as unknown as { llmspell: string }).llmspell).toBe("0.0.0") // the harness gives none
    const tags = await client.list()
    const names = tags.models.map((m) => m.name)
    expect(names).toContain(TINY)
    expect(names).toContain("agent:latest@ollama")
    const tiny = tags.models.find((m) => m.name === TINY)!
    expect(tiny.size).toBeGreaterThan(0)
    expect(tiny.details.format).toBe("gguf")
  })

  it("chat without streaming on the GGUF model: one reply with done counts and durations in ns", async () => {
    const reply = await client.chat({
      model: TINY,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello" }],
      stream: false,
      options: { num_predict: 8, seed: 1, temperature: 0 }
    })
    expect(reply.done).toBe(true)
    expect(reply.message.role).toBe("assistant")
    expect(typeof reply.message.content).toBe("string")
    expect(reply.eval_count).toBeGreaterThan(0)
    expect(reply.eval_count).toBeLessThanOrEqual(8)
    expect(reply.prompt_eval_count).toBeGreaterThan(0)
    expect(reply.total_duration).toBeGreaterThan(1000) // nanoseconds, not milliseconds
    expect(Number.isInteger(reply.total_duration)).toBe(true)
    expect(["stop", "length"]).toContain(reply.done_reason)
  })

  it("chat streaming: deltas then one done record; the text is the same as without streaming (same seed)", async () => {
    const request = { model: TINY, messages: [{ role: "user", content: "tell me" }], options: { num_predict: 12, seed: 7, temperature: 0 } }
    const parts: Array<string> = []
    let done: { done: boolean; eval_count: number } | undefined
    for await (const chunk of await client.chat({ ...request, stream: true })) {
      if (chunk.done) done = chunk
      else parts.push(chunk.message.content)
    }
    expect(parts.length).toBeGreaterThan(1)
    expect(done?.eval_count).toBeGreaterThan(0)
    const whole = await client.chat({ ...request, stream: false })
    expect(parts.join("")).toBe(whole.message.content)
  })

  it("generate streams `response` deltas and ends with done", async () => {
    const chunks: Array<{ response: string; done: boolean }> = []
    for await (const chunk of await client.generate({ model: TINY, prompt: "once", stream: true, options: { num_predict: 6 } })) {
      chunks.push({ response: chunk.response ?? "", done: chunk.done })
    }
    expect(chunks.at(-1)!.done).toBe(true)
    expect(chunks.slice(0, -1).every((c) => !c.done)).toBe(true)
  })

  it("ps lists the loaded GGUF model; keep_alive 0 unloads it; negative keeps it loaded", async () => {
    await client.generate({ model: TINY, prompt: "hi", stream: false, options: { num_predict: 2 }, keep_alive: -1 })
    const loaded = (await client.ps()).models.find((m) => m.name === TINY)
    expect(loaded).toBeDefined()
    expect(loaded!.size).toBeGreaterThan(0)
    expect(new Date(loaded!.expires_at).getUTCFullYear()).toBeGreaterThan(2100)
    await client.generate({ model: TINY, prompt: "hi", stream: false, options: { num_predict: 2 }, keep_alive: "10m" })
    const ten = (await client.ps()).models.find((m) => m.name === TINY)!
    const inMs = new Date(ten.expires_at).getTime() - Date.now()
    expect(inMs).toBeGreaterThan(5 * 60_000)
    expect(inMs).toBeLessThanOrEqual(10 * 60_000 + 1000)
    // an empty generate with keep_alive 0 unloads, as in Ollama
    const unload = await client.generate({ model: TINY, prompt: "", keep_alive: 0, stream: false })
    expect(unload.done_reason).toBe("unload")
    expect((await client.ps()).models.map((m) => m.name)).not.toContain(TINY)
  })

  it("an empty request loads the model without generating (keep_alive kept); a missing model is 404, not a done record", async () => {
    expect((await client.ps()).models.map((m) => m.name)).not.toContain(TINY)
    const load = await client.chat({ model: TINY, messages: [], keep_alive: "7m", stream: false })
    expect(load.done_reason).toBe("load")
    expect(load.message.content).toBe("")
    const loaded = (await client.ps()).models.find((m) => m.name === TINY)
    expect(loaded).toBeDefined()
    const inMs = new Date(loaded!.expires_at).getTime() - Date.now()
    expect(inMs).toBeGreaterThan(5 * 60_000)
    expect(inMs).toBeLessThanOrEqual(7 * 60_000 + 1000)
    const loadGenerate = await client.generate({ model: TINY, prompt: "", stream: false })
    expect(loadGenerate.done_reason).toBe("load")
    // thunks, one request at a time: an array of started promises would leave the later rejections unhandled
    for (const missing of [
      () => client.chat({ model: "missing.gguf@gguf", messages: [], stream: false }),
      () => client.generate({ model: "missing.gguf@gguf", prompt: "", stream: false }),
      () => client.generate({ model: "missing.gguf@gguf", prompt: "", keep_alive: 0, stream: false }),
      () => client.generate({ model: "nothere@ollama", prompt: "", stream: false })
    ]) {
      expect(await statusOf(missing())).toMatchObject({ name: "ResponseError", status: 404 })
    }
    await client.generate({ model: TINY, prompt: "", keep_alive: 0, stream: false })
  })

  it("show: the GGUF header as Ollama's model_info and details", async () => {
    const info = await client.show({ model: TINY })
    // the client types model_info as a Map; on the wire (and at run time) it is a plain object
    const modelInfo = info.model_info as unknown as Record<string, unknown>
    expect(modelInfo["general.architecture"]).toBe("llama")
    expect(modelInfo["llama.context_length"]).toBe(1024)
    expect(info.details.format).toBe("gguf")
  })

  it("pull from the hub streams Ollama's progress records to success; delete removes it; a second delete is 404", async () => {
    const statuses: Array<string> = []
    for await (const p of await client.pull({ model: "org/repo:Q8_0@gguf", stream: true })) statuses.push(p.status)
    expect(statuses[0]).toBe("pulling manifest")
    expect(statuses.some((s) => s.startsWith("pulling repo-Q8_0.gguf"))).toBe(true)
    expect(statuses.at(-1)).toBe("success")
    const names = (await client.list()).models.map((m) => m.name)
    const pulled = names.find((n) => n.includes("org/repo"))
    expect(pulled).toBeDefined()
    await client.delete({ model: pulled! })
    expect((await client.list()).models.map((m) => m.name)).not.toContain(pulled)
    expect(await statusOf(client.delete({ model: pulled! }))).toMatchObject({ name: "ResponseError", status: 404 })
  })

  it("embed through the Ollama-backed model; the legacy /api/embeddings too", async () => {
    const reply = await client.embed({ model: "embedder@ollama", input: ["one", "two"] })
    expect(reply.embeddings).toHaveLength(2)
    expect(reply.embeddings[0]!.length).toBe(2048)
    expect(reply.embeddings[0]).not.toEqual(reply.embeddings[1])
    const legacy = await client.embeddings({ model: "embedder@ollama", prompt: "one" })
    expect(legacy.embedding).toEqual(reply.embeddings[0])
  })

  it("what llmspell cannot do is refused with 400 naming it, never ignored: images on a GGUF model, raw, suffix, template", async () => {
    const png = "iVBORw0KGgoAAAA="
    const refused = [
      [() => client.generate({ model: TINY, prompt: "hi", images: [png], stream: false }), "node-llama-cpp 3.x runs no vision model"],
      [() => client.chat({ model: TINY, messages: [{ role: "user", content: "hi", images: [png] }], stream: false }), "node-llama-cpp 3.x runs no vision model"],
      [() => client.generate({ model: TINY, prompt: "hi", raw: true, stream: false }), "raw prompts are not supported"],
      [() => client.generate({ model: TINY, prompt: "def f(", suffix: "return x", stream: false }), "suffix (fill-in-the-middle) is not supported"],
      [() => client.generate({ model: TINY, prompt: "hi", template: "{{ .Prompt }}", stream: false }), "template is not supported"]
    ] as const
    for (const [request, message] of refused) {
      expect(await statusOf(request())).toMatchObject({ status: 400, message: expect.stringContaining(message) })
    }
    // the same fields, empty or false, are what clients send by default: accepted
    const ok = await client.generate({ model: TINY, prompt: "hi", raw: false, suffix: "", images: [], stream: false, options: { num_predict: 2 } })
    expect(ok.done).toBe(true)
  })

  it("options reach a proxied Ollama model in Ollama's names, num_ctx included; a bad one is 400 naming it", async () => {
    fake.clearLog()
    const options = { num_ctx: 8192, num_predict: 3, seed: 4, temperature: 0.5, top_p: 0.9, top_k: 7, stop: ["\n\n"] }
    await client.chat({ model: "agent@ollama", messages: [{ role: "user", content: "hi" }], stream: false, options })
    const sent = fake.requests.find((r) => r.path === "/api/chat")!.body as { options: Record<string, unknown> }
    expect(sent.options).toEqual(options)
    expect(await statusOf(client.chat({ model: "agent@ollama", messages: [{ role: "user", content: "hi" }], stream: false, options: { num_ctx: 8 } })))
      .toMatchObject({ status: 400, message: expect.stringContaining("must be an integer ≥ 32; got 8") })
  })

  it("tools: a tool call comes back in message.tool_calls with its arguments as an object", async () => {
    const reply = await client.chat({
      model: "agent@ollama",
      messages: [{ role: "user", content: "weather in Paris?" }],
      stream: false,
      tools: [{
        type: "function",
        function: { name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }
      }]
    })
    expect(reply.message.tool_calls).toHaveLength(1)
    expect(reply.message.tool_calls![0]!.function).toMatchObject({ name: "get_weather", arguments: { city: "Paris" } })
    const forwarded = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as { tools: Array<unknown> }
    expect(forwarded.tools).toHaveLength(1)
  })

  it("format: a JSON schema is passed on and the answer is JSON", async () => {
    const schema = { type: "object", properties: { city: { type: "string" }, temperature: { type: "number" } }, required: ["city"] }
    const reply = await client.chat({ model: "agent@ollama", messages: [{ role: "user", content: "json please" }], format: schema, stream: false })
    expect(JSON.parse(reply.message.content)).toMatchObject({ city: "Paris" })
    expect((fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as { format: unknown }).format).toEqual(schema)
  })

  it("think: the model's thinking streams in message.thinking, apart from the content", async () => {
    let thinking = ""
    let content = ""
    for await (const chunk of await client.chat({ model: "agent@ollama", messages: [{ role: "user", content: "ponder" }], think: true, stream: true })) {
      thinking += chunk.message.thinking ?? ""
      content += chunk.message.content
    }
    expect(thinking).toBe("Let me think.")
    expect(content).toBe("Done.")
    const whole = await client.chat({ model: "agent@ollama", messages: [{ role: "user", content: "ponder" }], think: true, stream: false })
    expect(whole.message).toMatchObject({ thinking: "Let me think.", content: "Done." })
  })

  it("errors: unknown model 404, missing model 400, a bad keep_alive 400, each as {error}", async () => {
    expect(await statusOf(client.chat({ model: "no-such-model@gguf", messages: [{ role: "user", content: "x" }] }))).toMatchObject({
      name: "ResponseError",
      status: 404
    })
    expect(await statusOf(client.chat({ model: "", messages: [{ role: "user", content: "x" }], stream: false }))).toMatchObject({ status: 400 })
    expect(await statusOf(client.generate({ model: TINY, prompt: "x", keep_alive: "soon", stream: false }))).toMatchObject({ status: 400 })
  })

  it("the access log has one entry per request with method, path, model, status, tokens and ms", () => {
    const chat = serve.log.find((e) => e.path === "/api/chat" && e.model === TINY && e.status === 200)
    expect(chat).toMatchObject({ method: "POST", status: 200 })
    expect(chat!.tokens).toBeGreaterThan(0)
    expect(chat!.ms).toBeGreaterThanOrEqual(0)
    expect(serve.log.some((e) => e.path === "/api/tags" && e.status === 200)).toBe(true)
  })
})

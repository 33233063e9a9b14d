/**
 * A request needing a capability the Ollama model lacks, through `llmspell serve` with the real
 * `openai` and `ollama` clients: a 400 naming the capability (in the API's words, no CLI hint),
 * and nothing sent upstream for images; `/api/show` and `/v1/models` carry capabilities only when known.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Ollama } from "ollama"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"

let dir: string
let ollamaFake: FakeOllama
let serve: ServeHarness

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 5, 6, 7])

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-caps-"))
  ollamaFake = await startFakeOllama({ models: [fakeModel("chatty", { capabilities: ["completion", "tools"] })] })
  serve = await startServe({ dir, ollamaUrl: ollamaFake.url })
})

afterAll(async () => {
  await serve?.close()
  await ollamaFake?.close()
  rmSync(dir, { recursive: true, force: true })
})

const failure = async (p: Promise<unknown>) => {
  try {
    await p
  } catch (e) {
    return { status: (e as { status?: number; status_code?: number }).status ?? (e as { status_code?: number }).status_code, message: (e as Error).message }
  }
  throw new Error("expected a failure")
}

const chats = () => ollamaFake.requests.filter((r) => r.path === "/api/chat").length

describe("an image for an Ollama model without vision", () => {
  it("/v1/chat/completions (openai client): 400 naming vision, no CLI hint, no chat upstream", async () => {
    const client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 })
    const before = chats()
    const e = await failure(client.chat.completions.create({
      model: "chatty@ollama",
      messages: [{
        role: "user",
        content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: `data:image/png;base64,${PNG.toString("base64")}` } }]
      }]
    }))
    expect(e.status).toBe(400)
    expect(e.message).toContain("\"vision\"")
    expect(e.message).toContain("chatty")
    expect(e.message).not.toMatch(/llmspell |`/)
    expect(chats()).toBe(before)
  })

  it("/api/chat (ollama client): 400 naming vision", async () => {
    const client = new Ollama({ host: serve.url })
    const before = chats()
    const e = await failure(client.chat({ model: "chatty@ollama", messages: [{ role: "user", content: "what is this?", images: [PNG] }] }))
    expect(e.status).toBe(400)
    expect(e.message).toContain("\"vision\"")
    expect(e.message).not.toMatch(/llmspell |`/)
    expect(chats()).toBe(before)
  })
})

describe("embeddings on an Ollama model without the embedding capability", () => {
  it("/v1/embeddings (openai client): the upstream refusal is a 400 naming embedding", async () => {
    ollamaFake.setFault("/api/embed", { kind: "status", status: 501, message: "This server does not support embeddings.", times: 1 })
    const client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 })
    const e = await failure(client.embeddings.create({ model: "chatty@ollama", input: "hi" }))
    expect(e.status).toBe(400)
    expect(e.message).toContain("\"embedding\"")
    expect(e.message).not.toMatch(/llmspell |`/)
  })
})

describe("GET /v1/models (the openai client's models.list)", () => {
  it("an entry carries capabilities once the server knows them, with no /api/show per listed model", async () => {
    const client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 })
    ollamaFake.state.models.push(fakeModel("quiet", { capabilities: ["completion"] }))
    const retrieved = await client.models.retrieve("chatty@ollama") as unknown as { capabilities: Array<string> }
    expect(retrieved.capabilities).toEqual(["completion", "tools"])
    const shows = ollamaFake.requests.filter((r) => r.path === "/api/show").length
    const page = await client.models.list()
    const entries = page.data as unknown as Array<{ id: string; capabilities?: Array<string> }>
    expect(ollamaFake.requests.filter((r) => r.path === "/api/show").length).toBe(shows)
    const chatty = entries.find((e) => e.id.startsWith("chatty"))
    const quiet = entries.find((e) => e.id.startsWith("quiet"))
    expect(chatty?.capabilities).toEqual(["completion", "tools"])
    expect(quiet).toBeDefined()
    expect(quiet).not.toHaveProperty("capabilities")
  })
})

describe("POST /api/show (the ollama client's show)", () => {
  it("carries the model's capabilities when its Ollama reports them, and none when it does not (unknown is not guessed)", async () => {
    const client = new Ollama({ host: serve.url })
    ollamaFake.state.models.push(fakeModel("elder", { capabilities: undefined as unknown as Array<string> }))
    expect((await client.show({ model: "chatty@ollama" })).capabilities).toEqual(["completion", "tools"])
    // an Ollama older than the field says nothing: a guessed ["completion"] would say "cannot see"
    expect(await client.show({ model: "elder@ollama" })).not.toHaveProperty("capabilities")
  })
})

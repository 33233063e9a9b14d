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
import { gate } from "./fixtures/fakeHttp.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type FakeOpenAI, startFakeOpenAI } from "./fixtures/fakeOpenAI.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"

let dir: string
let ollamaFake: FakeOllama
let serve: ServeHarness
let openaiFake: FakeOpenAI

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 5, 6, 7])

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmspell-serve-caps-"))
  ollamaFake = await startFakeOllama({ models: [fakeModel("chatty", { capabilities: ["completion", "tools"] })] })
  openaiFake = await startFakeOpenAI({ apiKey: "sk-upstream-caps", models: ["gpt-4o-mini", "text-embedding-3-small"] })
  serve = await startServe({
    dir,
    ollamaUrl: ollamaFake.url,
    providers: {
      openai: { provider_type: "openai", base_url: openaiFake.baseUrl, api_key: "sk-upstream-caps" },
      // no key in the server's environment: what the table knows is still answered
      anthropic: { provider_type: "anthropic", base_url: "http://127.0.0.1:4" }
    },
    extra: { serve: { aliases: { "fast-cloud": "openai/gpt-4o-mini" } } }
  })
})

afterAll(async () => {
  await serve?.close()
  await ollamaFake?.close()
  await openaiFake?.close()
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
  it("every Ollama entry carries its capabilities after no prior show; the next listing asks no /api/show", async () => {
    const client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 })
    ollamaFake.state.models.push(fakeModel("quiet", { capabilities: ["completion"] }))
    const retrieved = await client.models.retrieve("chatty@ollama") as unknown as { capabilities: Array<string> }
    expect(retrieved.capabilities).toEqual(["completion", "tools"])
    const page = await client.models.list()
    const entries = page.data as unknown as Array<{ id: string; capabilities?: Array<string> }>
    expect(entries.find((e) => e.id.startsWith("chatty"))?.capabilities).toEqual(["completion", "tools"])
    expect(entries.find((e) => e.id.startsWith("quiet"))?.capabilities).toEqual(["completion"])
    const shows = ollamaFake.requests.filter((r) => r.path === "/api/show").length
    await client.models.list()
    expect(ollamaFake.requests.filter((r) => r.path === "/api/show").length).toBe(shows)
  })

  it("our /api/tags keeps Ollama's shape (no capabilities) and asks no /api/show", async () => {
    ollamaFake.state.models.push(fakeModel("untagged", { capabilities: ["completion"] }))
    const shows = ollamaFake.requests.filter((r) => r.path === "/api/show").length
    const tags = await new Ollama({ host: serve.url }).list()
    const entry = tags.models.find((m) => m.name.startsWith("untagged"))
    expect(entry).toBeDefined()
    expect(entry).not.toHaveProperty("capabilities")
    expect(ollamaFake.requests.filter((r) => r.path === "/api/show").length).toBe(shows)
  })

  it("a client that leaves while a show hangs: the show upstream is aborted", async () => {
    ollamaFake.state.models.push(fakeModel("hangs", { capabilities: ["completion"] }))
    const never = gate()
    const remove = ollamaFake.http.fault({
      route: "/api/show",
      match: (x) => (x.body as { model?: string } | undefined)?.model === "hangs:latest",
      kind: "hold",
      until: never
    })
    try {
      const held = ollamaFake.http.reached("held", { route: "/api/show" })
      const abort = new AbortController()
      const answer = fetch(`${serve.url}/v1/models`, { signal: abort.signal }).catch((e: unknown) => e)
      const show = await held
      abort.abort()
      expect(await answer).toBeInstanceOf(Error)
      await show.whenClosed
      expect(show.aborted).toBe(true)
    } finally {
      remove()
    }
    // the next listing asks again, and answers
    const page = await new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 }).models.list()
    expect((page.data as unknown as Array<{ id: string; capabilities?: Array<string> }>).find((e) => e.id.startsWith("hangs"))?.capabilities)
      .toEqual(["completion"])
  })
})

describe("GET /v1/models/{model} for a cloud spec or alias", () => {
  const retrieve = async (name: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`${serve.url}/v1/models/${name}`, { headers })
    return { status: r.status, body: await r.json() as Record<string, unknown> }
  }

  it("a cloud spec (with or without its slash encoded) and an alias carry the preset's capabilities", async () => {
    for (const name of ["openai/gpt-4o-mini", "openai%2Fgpt-4o-mini", "fast-cloud"]) {
      const r = await retrieve(name)
      expect(r.status).toBe(200)
      expect(r.body.capabilities).toEqual(["completion", "tools", "vision"])
    }
    const anthropicShape = await retrieve("openai/text-embedding-3-small", { "anthropic-version": "2023-06-01" })
    expect(anthropicShape.body).toMatchObject({ type: "model", capabilities: ["embedding"] })
  })

  it("without a key on the server, what the table knows is answered and nothing is sent; unknown is left out", async () => {
    const r = await retrieve("anthropic/claude-sonnet-4-5")
    expect(r.status).toBe(200)
    expect(r.body.capabilities).toEqual(["completion", "tools", "vision", "thinking"])
    const unknown = await retrieve("anthropic/claude-2.1")
    expect(unknown.status).toBe(200)
    expect(unknown.body).not.toHaveProperty("capabilities")
  })

  it("an embed on a cloud chat model is a 400 naming embedding, and nothing reaches the provider", async () => {
    const client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: "none", maxRetries: 0 })
    const before = openaiFake.requests.filter((r) => r.path === "/v1/embeddings").length
    const e = await failure(client.embeddings.create({ model: "openai/gpt-4o-mini", input: "hi" }))
    expect(e.status).toBe(400)
    expect(e.message).toContain("\"embedding\"")
    expect(e.message).not.toMatch(/llmspell |`/)
    expect(openaiFake.requests.filter((r) => r.path === "/v1/embeddings").length).toBe(before)
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

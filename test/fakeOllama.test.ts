/**
 * Drives the fake Ollama server with the real `ollama` client, pinning down both the
 * fake's protocol and how ollama-js 0.6.4 surfaces each failure (see NOTES.md, ollama).
 */
import { type ChatResponse, Ollama } from "ollama"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { gate } from "./fixtures/fakeHttp.js"
import { fakeLayer, fakeModel, startFakeOllama, type FakeOllama } from "./fixtures/fakeOllama.js"

const catchError = async (run: () => Promise<unknown>): Promise<unknown> => {
  try {
    await run()
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection")
}

const drain = async <T>(iterable: AsyncIterable<T>, seen: Array<T> = []): Promise<Array<T>> => {
  for await (const item of iterable) seen.push(item)
  return seen
}

const layers = [fakeLayer("tiny-weights", 1000), fakeLayer("tiny-template", 100)]

let fake: FakeOllama
let client: Ollama

beforeEach(async () => {
  fake = await startFakeOllama({
    models: [fakeModel("present"), fakeModel("other:7b", { size: 42 })],
    loaded: ["present"],
    pullable: { tiny: layers },
    answer: () => "Hello there, tester!"
  })
  client = new Ollama({ host: fake.url })
})

afterEach(async () => {
  vi.restoreAllMocks()
  await fake.close()
})

describe("fake Ollama: API shapes through the real client", () => {
  it("version, list, ps and show", async () => {
    expect(await client.version()).toEqual({ version: "0.12.6" })

    const list = await client.list()
    expect(list.models.map((m) => m.name)).toEqual(["present:latest", "other:7b"])
    expect(list.models[1]).toMatchObject({ model: "other:7b", size: 42, details: { format: "gguf", family: "llama" } })
    expect(list.models[0]!.digest).toMatch(/^[0-9a-f]{64}$/)

    const ps = await client.ps()
    expect(ps.models).toHaveLength(1)
    expect(ps.models[0]).toMatchObject({ name: "present:latest", size_vram: 1_234_567 })
    expect(Date.parse(String(ps.models[0]!.expires_at))).toBeGreaterThan(Date.now())

    const show = await client.show({ model: "present" })
    expect(show.details.quantization_level).toBe("Q4_K_M")
    expect(show.model_info).toMatchObject({ "general.architecture": "llama" })
    expect(show.capabilities).toEqual(["completion"])
    expect(typeof show.template).toBe("string")
    expect(fake.requests.at(-1)).toMatchObject({ method: "POST", path: "/api/show", body: { model: "present" } })
  })

  it("delete removes the model; a missing one is a 404 ResponseError", async () => {
    await client.delete({ model: "other:7b" })
    expect(fake.requests.at(-1)).toMatchObject({ method: "DELETE", path: "/api/delete", body: { name: "other:7b" } })
    expect((await client.list()).models.map((m) => m.name)).toEqual(["present:latest"])

    const error = (await catchError(() => client.delete({ model: "ghost" }))) as Record<string, unknown>
    expect(error).toBeInstanceOf(Error)
    expect(error.name).toBe("ResponseError")
    expect(error.status_code).toBe(404)
    expect(error.error).toBe("model 'ghost' not found")
  })

  it("copy duplicates a model under a new name", async () => {
    await client.copy({ source: "present", destination: "backup" })
    expect((await client.list()).models.map((m) => m.name)).toContain("backup:latest")
  })

  it("streaming pull yields manifest, growing layer progress, verify, write, success; then the model is listed", async () => {
    const events = await drain(await client.pull({ model: "tiny", stream: true }))
    const statuses = events.map((e) => e.status)
    expect(statuses[0]).toBe("pulling manifest")
    expect(statuses.slice(-3)).toEqual(["verifying sha256 digest", "writing manifest", "success"])
    expect(fake.requests.at(-1)?.body).toEqual({ name: "tiny", stream: true })

    const first = layers[0]!
    const progress = events.filter((e) => e.digest === first.digest)
    expect(progress[0]!.status).toBe(`pulling ${first.digest.slice(7, 19)}`)
    expect(progress[0]!.completed).toBeUndefined()
    const completed = progress.slice(1).map((e) => e.completed)
    expect(completed).toEqual([...completed].sort((a, b) => a - b))
    expect(completed.at(-1)).toBe(first.size)
    expect(progress.every((e) => e.total === first.size)).toBe(true)

    const listed = (await client.list()).models.find((m) => m.name === "tiny:latest")
    expect(listed?.size).toBe(1100)
  })

  it("non-streaming pull returns {status: success}", async () => {
    expect(await client.pull({ model: "tiny", stream: false })).toEqual({ status: "success" })
    expect((await client.list()).models.map((m) => m.name)).toContain("tiny:latest")
  })

  it("pulling an unknown model fails in-band with HTTP 200, as a plain Error", async () => {
    const seen: Array<unknown> = []
    const error = (await catchError(async () => drain(await client.pull({ model: "nope", stream: true }), seen))) as Error
    expect(error.constructor).toBe(Error)
    expect(error.name).toBe("Error")
    expect(error.message).toBe("pull model manifest: file does not exist")
    expect(seen).toEqual([{ status: "pulling manifest" }])
  })

  it("chat streams tokens and ends with done + stats; the model becomes loaded", async () => {
    fake.state.loaded = []
    const chunks = await drain(
      await client.chat({ model: "other:7b", messages: [{ role: "user", content: "hi" }], stream: true })
    )
    const last = chunks.at(-1)!
    expect(chunks.slice(0, -1).map((c) => c.message.content).join("")).toBe("Hello there, tester!")
    expect(chunks.slice(0, -1).every((c) => c.done === false)).toBe(true)
    expect(last).toMatchObject({ done: true, done_reason: "stop", eval_count: chunks.length - 1, prompt_eval_count: 1 })
    for (const key of ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"] as const) {
      expect(last[key]).toBeGreaterThan(0)
    }
    expect((await client.ps()).models.map((m) => m.name)).toEqual(["other:7b"])
  })

  it("generate streams and has a non-stream variant", async () => {
    const chunks = await drain(await client.generate({ model: "present", prompt: "say hi", stream: true }))
    expect(chunks.map((c) => c.response).join("")).toBe("Hello there, tester!")
    expect(chunks.at(-1)).toMatchObject({ done: true, eval_count: 3, prompt_eval_count: 2 })

    const whole = await client.generate({ model: "present", prompt: "say hi", stream: false })
    expect(whole).toMatchObject({ response: "Hello there, tester!", done: true, done_reason: "stop" })
  })

  it("keep_alive 0 with no messages unloads; no messages loads", async () => {
    const unloaded = await client.chat({ model: "present", messages: [], keep_alive: 0 })
    expect(unloaded).toMatchObject({ done: true, done_reason: "unload" })
    expect((await client.ps()).models).toEqual([])

    const loaded = await client.generate({ model: "present", prompt: "" })
    expect(loaded).toMatchObject({ done: true, done_reason: "load" })
    expect((await client.ps()).models.map((m) => m.name)).toEqual(["present:latest"])
  })

  it("chat on a missing model is a 404 ResponseError before any stream", async () => {
    const error = (await catchError(() =>
      client.chat({ model: "ghost", messages: [{ role: "user", content: "hi" }], stream: true })
    )) as Record<string, unknown>
    expect(error.name).toBe("ResponseError")
    expect(error.status_code).toBe(404)
    expect(error.error).toBe('model "ghost" not found, try pulling it first')
  })
})

describe("fake Ollama: faults and what the client makes of them", () => {
  it("status fault → ResponseError with that status; times: 1 lets the retry succeed", async () => {
    fake.setFault("/api/tags", { kind: "status", status: 503, message: "busy", times: 1 })
    const error = (await catchError(() => client.list())) as Record<string, unknown>
    expect(error).toMatchObject({ name: "ResponseError", status_code: 503, error: "busy", message: "busy" })
    expect((await client.list()).models).toHaveLength(2)
  })

  it("textError → ResponseError(500) carrying the text body; the client logs to stdout", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {})
    fake.setFault("/api/pull", { kind: "textError", body: "boom: not json" })
    const error = (await catchError(() => client.pull({ model: "tiny", stream: true }))) as Record<string, unknown>
    expect(error).toMatchObject({ name: "ResponseError", status_code: 500, error: "boom: not json" })
    // ollama-js 0.6.4 checkOk(): the only stdout line is this fixed string, not the body.
    expect(log.mock.calls).toEqual([["Getting text from response"]])
  })

  it("inBandError after N records → plain Error with the message, after N yields", async () => {
    fake.setFault("/api/chat", { kind: "inBandError", after: 2, message: "model runner crashed" })
    const seen: Array<unknown> = []
    const error = (await catchError(async () =>
      drain(await client.chat({ model: "present", messages: [{ role: "user", content: "hi" }], stream: true }), seen)
    )) as Error
    expect(error.constructor).toBe(Error)
    expect(error.message).toBe("model runner crashed")
    expect(seen).toHaveLength(2)
  })

  it("noFinalSuccess → 'Did not receive done or success response in stream.'; the model is not installed", async () => {
    fake.setFault("/api/pull", { kind: "noFinalSuccess" })
    const seen: Array<{ status: string }> = []
    const error = (await catchError(async () => drain(await client.pull({ model: "tiny", stream: true }), seen))) as Error
    expect(error.constructor).toBe(Error)
    expect(error.message).toBe("Did not receive done or success response in stream.")
    expect(seen.at(-1)?.status).toBe("writing manifest")
    expect((await client.list()).models.map((m) => m.name)).not.toContain("tiny:latest")
  })

  it("dropMidStream → TypeError 'terminated'", async () => {
    fake.setFault("/api/pull", { kind: "dropMidStream", after: 3 })
    const seen: Array<unknown> = []
    const error = (await catchError(async () => drain(await client.pull({ model: "tiny", stream: true }), seen))) as Error
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toBe("terminated")
    expect(seen.length).toBeLessThanOrEqual(3)
  })

  it("dropMidStream on a plain JSON route (after 0) → TypeError 'fetch failed'", async () => {
    fake.setFault("/api/tags", { kind: "dropMidStream", after: 0, times: 1 })
    const error = (await catchError(() => client.list())) as Error & { cause?: { code?: string } }
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toBe("fetch failed")
    expect(error.cause?.code).toBe("UND_ERR_SOCKET")
  })

  it("a closed server → TypeError 'fetch failed' with cause.code ECONNREFUSED", async () => {
    const gone = await startFakeOllama()
    await gone.close()
    const error = (await catchError(() => new Ollama({ host: gone.url }).list())) as Error & {
      cause?: { code?: string }
    }
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toBe("fetch failed")
    expect(error.cause?.code).toBe("ECONNREFUSED")
  })

  it("stall + iterator.abort() → AbortError, and the fake sees the connection close", async () => {
    // The stall never ends on its own: only the abort can end the pending read (else the test times out).
    fake.setFault("/api/pull", { kind: "stall", after: 2 })
    const stream = await client.pull({ model: "tiny", stream: true })
    const iterator = stream[Symbol.asyncIterator]()
    await iterator.next()
    await fake.waitForRecords("/api/pull", 2)
    const pending = iterator.next().then(() => iterator.next())
    stream.abort()
    const error = (await catchError(() => pending)) as Error
    expect(error.name).toBe("AbortError")
    expect(error).toBeInstanceOf(DOMException)
    await fake.responses.at(-1)!.closed
    expect(fake.responses.at(-1)).toMatchObject({ sent: 2, finished: true })
  })

  it("close() returns with a stalled connection open; the client then sees 'terminated'", async () => {
    // The stall never ends on its own: a close() that waited for it would never return.
    fake.setFault("/api/chat", { kind: "stall", after: 1 })
    const stream = await client.chat({ model: "present", messages: [{ role: "user", content: "hi" }], stream: true })
    const consumed = catchError(() => drain(stream))
    await fake.waitForRecords("/api/chat", 1)
    expect(fake.openConnections).toBeGreaterThan(0)
    await fake.close()
    expect(fake.openConnections).toBe(0)
    const error = (await consumed) as Error
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toBe("terminated")
  })

  it("hold keeps a stream after N records until the test opens the gate, then it completes", async () => {
    const open = gate()
    fake.setFault("/api/chat", { kind: "hold", after: 2, until: open })
    const stream = await client.chat({ model: "present", messages: [{ role: "user", content: "hi" }], stream: true })
    const iterator = stream[Symbol.asyncIterator]()
    const seen = [(await iterator.next()).value as ChatResponse, (await iterator.next()).value as ChatResponse]
    const held = await fake.http.reached("held", { route: "/api/chat" })
    expect(held.records).toBe(2)
    expect(fake.state.loaded.map((m) => m.name)).toContain("present:latest")
    open.open()
    for (;;) {
      const next = await iterator.next()
      if (next.done) break
      seen.push(next.value)
    }
    expect(seen.map((r) => r.message.content).join("")).toBe("Hello there, tester!")
    expect(seen.at(-1)).toMatchObject({ done: true })
  })

  it("hold on a plain JSON route answers nothing until the gate opens", async () => {
    const open = gate()
    fake.setFault("/api/tags", { kind: "hold", until: open, times: 1 })
    const listed = client.list()
    const held = await fake.http.reached("held", { route: "/api/tags" })
    expect(held.status).toBeUndefined()
    open.open()
    expect((await listed).models.map((m) => m.name)).toEqual(["present:latest", "other:7b"])
  })

  // A lower bound only: a busy machine makes it longer, never shorter.
  it("slow delays each record but still completes", async () => {
    fake.setFault("/api/generate", { kind: "slow", delayMs: 20 })
    const started = Date.now()
    const chunks = await drain(await client.generate({ model: "present", prompt: "hi", stream: true }))
    expect(chunks.at(-1)?.done).toBe(true)
    expect(Date.now() - started).toBeGreaterThanOrEqual(3 * 20 - 5)
  })
})

describe("fake Ollama: hardening knobs (issue 9)", () => {
  const raw = async (path: string, body?: unknown) => {
    const response = await fetch(`${fake.url}${path}`, {
      method: body === undefined ? "GET" : "POST",
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    })
    return response.text()
  }

  it("honours options.num_predict like the real server (reason length); ignoreNumPredict floods instead", async () => {
    const capped = await drain(await client.chat({ model: "present", messages: [{ role: "user", content: "x" }], stream: true, options: { num_predict: 2 } }))
    expect(capped.filter((r) => !r.done).map((r) => r.message.content).join("")).toBe("Hello there,")
    expect(capped[capped.length - 1]).toMatchObject({ done: true, done_reason: "length" })
    fake.setFault("/api/chat", { kind: "ignoreNumPredict", tokens: 25 })
    const flooded = await drain(await client.chat({ model: "present", messages: [{ role: "user", content: "x" }], stream: true, options: { num_predict: 2 } }))
    expect(flooded.filter((r) => !r.done)).toHaveLength(25)
  })

  it("malformedEntries appends null and ill-typed entries to /api/tags and /api/ps", async () => {
    fake.setFault("/api/tags", { kind: "malformedEntries" })
    const tags = JSON.parse(await raw("/api/tags")) as { models: Array<unknown> }
    expect(tags.models.slice(2)).toEqual([null, { name: 42, size: 1 }, { model: "no-name", size: 2 }, "text"])
    fake.setFault("/api/ps", { kind: "malformedEntries", entries: [null] })
    expect((JSON.parse(await raw("/api/ps")) as { models: Array<unknown> }).models).toEqual([expect.objectContaining({ name: "present:latest" }), null])
  })

  it("garbageLines writes raw lines into a stream after the given record", async () => {
    fake.setFault("/api/generate", { kind: "garbageLines", after: 1, lines: ["<html>", "null"] })
    const lines = (await raw("/api/generate", { model: "present", prompt: "x" })).trim().split("\n")
    expect(lines[1]).toBe("<html>")
    expect(lines[2]).toBe("null")
    expect(JSON.parse(lines[lines.length - 1]!)).toMatchObject({ done: true })
  })

  it("stallBeforeHeaders accepts the request and never answers, for streams too", async () => {
    fake.setFault("/api/chat", { kind: "stallBeforeHeaders" })
    const controller = new AbortController()
    const pending = fetch(`${fake.url}/api/chat`, {
      method: "POST",
      body: JSON.stringify({ model: "present", messages: [{ role: "user", content: "x" }] }),
      signal: controller.signal
    })
    await fake.waitForRecords("/api/chat", 0)
    controller.abort()
    await expect(pending).rejects.toMatchObject({ name: "AbortError" })
    const log = fake.responses.find((r) => r.route === "/api/chat")!
    await log.closed
    expect(log.sent).toBe(0)
  })
})

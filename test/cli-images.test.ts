/**
 * Images from the command line, through the built CLI against the fake Ollama: `llmspell run
 * --image FILE` (repeatable) and `/image FILE` in `llmspell chat` send the files' bytes as Ollama
 * takes them (bare base64 on the user message); a file that is no image, or missing, is refused
 * naming it, and nothing is sent.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { type CliResult, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let fake: FakeOllama

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 9, 8, 7])

const env = () => isolatedEnv(dir, { OLLAMA_HOST: `${fake.host}:${fake.port}` })
const run = (args: ReadonlyArray<string>) => runCli(args, { cwd: dir, env: env() })
const runPiped = (args: ReadonlyArray<string>, input: string): Promise<CliResult> => runCli(args, { cwd: dir, env: env(), input })
const chats = () =>
  fake.requests
    .filter((r) => r.path === "/api/chat")
    .map((r) => r.body as { messages: Array<{ role: string; content: string; images?: Array<string> }> })
    .filter((b) => b.messages.length > 0)

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-images-"))
  await writeFile(join(dir, "a.png"), PNG)
  await writeFile(join(dir, "b.jpg"), JPEG)
  await writeFile(join(dir, "notes.txt"), "not an image")
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

beforeEach(async () => {
  fake = await startFakeOllama({ models: [fakeModel("llava", { capabilities: ["completion", "vision"] })], answer: () => "a picture" })
})

afterEach(async () => {
  await fake.close()
})

describe("llmspell run --image", () => {
  it("sends each file's bytes, in order, with the prompt", async () => {
    const result = await run(["run", "-m", "llava@ollama", "--image", "a.png", "--image", "b.jpg", "what is this?"])
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("a picture")
    const user = chats().at(-1)!.messages.at(-1)!
    expect(user).toMatchObject({ role: "user", content: "what is this?" })
    expect(user.images).toEqual([PNG.toString("base64"), JPEG.toString("base64")])
  })

  it("a file that is no image, or missing, is refused naming it, and nothing is sent", async () => {
    const text = await run(["run", "-m", "llava@ollama", "--image", "notes.txt", "hi"])
    expect(text.code).not.toBe(0)
    expect(text.stderr).toContain("notes.txt")
    expect(text.stderr).toContain("not a PNG, JPEG, GIF or WebP image")
    const missing = await run(["run", "-m", "llava@ollama", "--image", "gone.png", "hi"])
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain("gone.png")
    expect(chats()).toEqual([])
  })

  it("a model whose capabilities lack vision is refused naming vision and its spec, and nothing is sent", async () => {
    fake.state.models.push(fakeModel("chatty", { capabilities: ["completion", "tools"] }))
    const result = await run(["run", "-m", "chatty@ollama", "--image", "a.png", "what is this?"])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain("\"vision\"")
    expect(result.stderr).toContain("llmspell model info chatty:latest@ollama")
    expect(result.stdout).toBe("")
    expect(chats()).toEqual([])
  })
})

describe("/image in llmspell chat", () => {
  it("attaches the file to the next message only; a bad file is said and the session goes on", async () => {
    const result = await runPiped(["chat", "-m", "llava@ollama"], "/image notes.txt\n/image a.png\ndescribe it\nthanks\n")
    expect(result.code).toBe(0)
    expect(result.stderr).toContain("not a PNG, JPEG, GIF or WebP image")
    expect(result.stderr).toContain("Attached a.png")
    const [first, second] = chats()
    expect(first!.messages.at(-1)).toMatchObject({ role: "user", content: "describe it", images: [PNG.toString("base64")] })
    // the history keeps the image on its turn; the new message carries none
    expect(second!.messages.find((m) => m.content === "describe it")!.images).toEqual([PNG.toString("base64")])
    expect(second!.messages.at(-1)).toEqual({ role: "user", content: "thanks" })
  })
})

/**
 * `llmspell chat` in line mode: the built CLI with its stdin a pipe, against the fake Ollama, embedded
 * and connected (`--host` to a server). One answer per input line, the history sent with every turn,
 * commands (`/system`, `/set`, `/clear`, `/save`) acting between turns, `--json` NDJSON records,
 * `--verbose` figures, `--load` going on with a saved transcript; bad input refused clearly.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { decodeTranscript } from "../src/domain/Transcript.js"
import { Completion } from "../src/domain/Types.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { CLI_MODES, modeRunner } from "./support/bothModes.js"
import { type CliResult, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let fake: FakeOllama

/** Runs the CLI with `input` written to its stdin (a pipe), and collects what it printed. */
const runPiped = (args: ReadonlyArray<string>, input: string, env: Record<string, string>, cwd: string): Promise<CliResult> =>
  runCli(args, { cwd, env, input })

/** The chat requests the fake received, as their message lists. */
const chats = () =>
  fake.requests
    .filter((r) => r.path === "/api/chat")
    .map((r) => r.body as { messages: Array<{ role: string; content: string }>; options?: Record<string, unknown> })
    .filter((b) => b.messages.length > 0)

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-chat-lines-"))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

beforeEach(async () => {
  fake = await startFakeOllama({
    models: [fakeModel("present")],
    // The answer tells which turn it is (user messages seen), so the history's presence is visible.
    answer: ({ prompt, body }) => {
      const messages = body.messages as Array<{ role: string }>
      return `answer ${messages.filter((m) => m.role === "user").length} to ${prompt}`
    }
  })
})

afterEach(async () => {
  await fake.close()
})

describe.each(CLI_MODES)("%s", (mode) => {
  const env = () => isolatedEnv(dir, { OLLAMA_HOST: `${fake.host}:${fake.port}` })
  const { modeArgs } = modeRunner(mode, { env, cwd: () => dir })
  const chat = (args: ReadonlyArray<string>, input: string) => runPiped([...modeArgs(), "chat", ...args], input, env(), dir)

  it("answers one message per line, with the history sent on every turn", async () => {
    const result = await chat(["-m", "present@ollama"], "hello\n\nhow are you\n")
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    // the blank line is no message: two answers, each on its own line
    expect(result.stdout).toBe("answer 1 to hello\nanswer 2 to how are you\n")
    const sent = chats()
    expect(sent).toHaveLength(2)
    expect(sent[1]!.messages).toEqual([
      { role: "user", content: "hello" },
      { role: "assistant", content: "answer 1 to hello" },
      { role: "user", content: "how are you" }
    ])
  })

  it("acts on commands between turns: /system, /set, /clear, /save; an unknown /word is a message", async () => {
    const file = join(dir, `saved-${mode}.json`)
    const input = [
      "/system Be brief.",
      "/set temperature 0.25",
      "/set seed 7",
      "/set temperature hot",
      "one",
      "/clear",
      "two",
      "/unknown is text here",
      `/save ${file}`,
      ""
    ].join("\n")
    const result = await chat(["-m", "present@ollama"], input)
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("answer 1 to one\nanswer 1 to two\nanswer 2 to /unknown is text here\n")
    // notes go to stderr, so stdout holds only the answers
    expect(result.stderr).toContain("temperature must be a finite number ≥ 0")
    expect(result.stderr).toContain(`Saved 4 messages to ${file}`)
    const sent = chats()
    expect(sent[0]!.messages).toEqual([{ role: "system", content: "Be brief." }, { role: "user", content: "one" }])
    expect(sent[0]!.options).toMatchObject({ temperature: 0.25, seed: 7 })
    // after /clear: the system prompt stays, the turns are gone
    expect(sent[1]!.messages).toEqual([{ role: "system", content: "Be brief." }, { role: "user", content: "two" }])
    const saved = decodeTranscript(JSON.parse(await readFile(file, "utf8")))
    expect(Either.isRight(saved)).toBe(true)
    const transcript = Either.getOrThrow(saved)
    expect(transcript).toMatchObject({ version: 1, model: "present@ollama", system: "Be brief.", parameters: { temperature: 0.25, seed: 7 } })
    expect(transcript.messages.map((m) => [m.role, m.content])).toEqual([
      ["user", "two"],
      ["assistant", "answer 1 to two"],
      ["user", "/unknown is text here"],
      ["assistant", "answer 2 to /unknown is text here"]
    ])
    expect(transcript.messages[1]!.finishReason).toBe("stop")
    expect(transcript.messages[1]!.figures?.completionTokens).toBe(4)
  })

  it("--load goes on with a saved conversation; a \"\"\" block is one message", async () => {
    const file = join(dir, `load-${mode}.json`)
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        model: "present@ollama",
        system: "You are a cat.",
        parameters: { maxTokens: 50 },
        messages: [{ role: "user", content: "first" }, { role: "assistant", content: "meow" }]
      })
    )
    const result = await chat(["--load", file], '"""line one\nline two"""\n')
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("answer 2 to line one\nline two\n")
    const sent = chats()[0]!
    expect(sent.messages).toEqual([
      { role: "system", content: "You are a cat." },
      { role: "user", content: "first" },
      { role: "assistant", content: "meow" },
      { role: "user", content: "line one\nline two" }
    ])
    expect(sent.options).toMatchObject({ num_predict: 50 })
  })

  it("a reasoning model's thinking goes to stderr, the answer alone to stdout; --json keeps it in the completion", async () => {
    const answer = fake.state.answer
    fake.state.answer = (input) => ({ content: String(answer(input)), thinking: "hmm let me see" })
    const result = await chat(["-m", "present@ollama"], "why\n")
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("answer 1 to why\n")
    expect(result.stderr).toBe("hmm let me see\n")
    const json = await chat(["-m", "present@ollama", "--json", "--no-think"], "why\n")
    expect(JSON.parse(json.stdout)).not.toHaveProperty("reasoning")
    expect((fake.requests.at(-1)!.body as { think?: boolean }).think).toBe(false)
    const thought = await chat(["-m", "present@ollama", "--json"], "why\n")
    expect(JSON.parse(thought.stdout)).toMatchObject({ text: "answer 1 to why", reasoning: "hmm let me see" })
  })

  it("--json prints one Completion per message; --verbose a line of figures per answer", async () => {
    const result = await chat(["-m", "present@ollama", "--json", "--verbose"], "a\nb\n")
    expect(result.code).toBe(0)
    // each line is a Completion, as docs/json.md documents it
    const lines = result.stdout.trim().split("\n").map((l) => Schema.decodeUnknownSync(Completion)(JSON.parse(l)))
    expect(lines.map((l) => l.text)).toEqual(["answer 1 to a", "answer 2 to b"])
    expect(lines[0]).toMatchObject({ finishReason: "stop", usage: { completionTokens: 4 } })
    const figures = result.stderr.split("\n").filter((l) => l.startsWith("first token "))
    expect(figures).toHaveLength(2)
    expect(figures[0]).toMatch(/^first token \d+ ms, [\d.?]+ tokens\/s, \d+ prompt tokens( \(\d+ cached\))? \+ 4 answer tokens, [\d.]+ s \(stop\)$/)
  })

  it("a failing turn ends line mode with the error's exit code; what was answered before stays printed", async () => {
    // the second message gets an in-band error mid-answer (Ollama's way: HTTP 200, then {"error"}):
    // the fault is set while the first request is answered, so it acts from the second on
    const answer = fake.state.answer
    fake.state.answer = (input) => {
      if (input.prompt === "a") fake.setFault("/api/chat", { kind: "inBandError", after: 1, message: "boom" })
      return answer(input)
    }
    const result = await chat(["-m", "present@ollama"], "a\nb\nc\n")
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("boom")
    expect(result.stdout).toBe("answer 1 to a\nanswer\n")
    expect(chats().map((c) => c.messages.at(-1)!.content)).toEqual(["a", "b"])
    fake.clearFaults()
    const missing = await chat(["-m", "ghost@ollama"], "a\n")
    expect(missing.code).toBe(3)
    expect(missing.stderr).toContain("hint:")
  })
})

describe("on a GGUF model (embedded, real node-llama-cpp)", () => {
  it("each line is a turn of one conversation: the second prompt holds the first turn", async () => {
    await writeFile(join(dir, "tiny.gguf"), tinyLlamaGguf())
    const env = isolatedEnv(dir, { LLMSPELL_MODELS_DIR: join(dir, "models") })
    const result = await runPiped(["chat", "-m", "./tiny.gguf", "--max-tokens", "4", "--seed", "1", "--json", "--verbose"], "hi\nagain\n", env, dir)
    expect(result.code).toBe(0)
    const [first, second, ...more] = result.stdout.trim().split("\n").map((l) => Schema.decodeUnknownSync(Completion)(JSON.parse(l)))
    expect(more).toHaveLength(0)
    expect(first).toMatchObject({ backend: "gguf", usage: { completionTokens: 4 } })
    // the second request carries the first message and its answer before the new message
    expect(second!.usage.promptTokens).toBeGreaterThan(first!.usage.promptTokens + first!.usage.completionTokens)
    expect(result.stderr.split("\n").filter((l) => l.startsWith("first token "))).toHaveLength(2)
  })
})

describe("refused before anything runs", () => {
  const env = () => isolatedEnv(dir, { OLLAMA_HOST: `${fake.host}:${fake.port}` })
  it.each([
    [["--temperature", "-1", "-m", "present@ollama"], "--temperature must be a finite number ≥ 0"],
    [["--think", "--no-think", "-m", "present@ollama"], "--think and --no-think contradict each other"],
    [[], "no model: pass -m SPEC"],
    [["--load", "/nonexistent/t.json"], "--load: cannot read /nonexistent/t.json"]
  ])("%j", async (args, message) => {
    const result = await runPiped(["chat", ...args], "hello\n", env(), dir)
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(message)
    expect(chats()).toHaveLength(0)
  })

  it("a file that is not a transcript, or a newer version, is said as such", async () => {
    const bad = join(dir, "bad.json")
    await writeFile(bad, JSON.stringify({ version: 1, model: "x", messages: [{ role: "robot", content: "" }] }))
    const newer = join(dir, "newer.json")
    await writeFile(newer, JSON.stringify({ version: 9, model: "x", messages: [] }))
    const notJson = join(dir, "not.json")
    await writeFile(notJson, "{ nope")
    for (const [file, message] of [[bad, "not a llmspell transcript"], [newer, "version 9"], [notJson, "is not JSON"]] as const) {
      const result = await runPiped(["chat", "--load", file], "hello\n", env(), dir)
      expect(result.code).toBe(2)
      expect(result.stderr).toContain(message)
    }
  })
})

/**
 * `llmspell chat` on a real pseudo-terminal (tmux, test/support/terminal.ts), against the fake
 * Ollama: two turns with the history kept, `/clear`, reasoning shown dimmed and apart, Ctrl-C at
 * the prompt (a hint, the session goes on), Ctrl-C during an answer (the answer stops, the request
 * is abandoned, the session and the words already shown go on, keys typed meanwhile wait for the
 * next prompt), another turn, and Ctrl-D ending the session with exit 0; embedded and connected
 * (`--host`: the stop reaches the fake through the server). Also `llmspell run -m SPEC` without a
 * prompt opening the same session, a paste of several lines, a failing turn that leaves the
 * session going, and `/bye`. Every wait is for what the program writes or for a fake's signal.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { gate } from "./fixtures/fakeHttp.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { CLI_MODES, modeRunner } from "./support/bothModes.js"
import { bin, ensureBuilt, isolatedEnv } from "./support/runCli.js"
import { KEYS, startTerminal, type TerminalSession } from "./support/terminal.js"

let dir: string
let fake: FakeOllama
let term: TerminalSession | undefined

const chats = () =>
  fake.requests
    .filter((r) => r.path === "/api/chat")
    .map((r) => r.body as { messages: Array<{ role: string; content: string }> })
    .filter((b) => b.messages.length > 0)

const env = () => isolatedEnv(dir, { OLLAMA_HOST: `${fake.host}:${fake.port}` })

const open = (args: ReadonlyArray<string>) => {
  // colours on (no NO_COLOR): the reasoning is dimmed
  const { NO_COLOR: _, ...withColour } = env()
  term = startTerminal([process.execPath, bin, ...args], { cwd: dir, env: withColour })
  return term
}

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-chat-tty-"))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

beforeEach(async () => {
  fake = await startFakeOllama({
    models: [fakeModel("present")],
    answer: ({ prompt, body }) => {
      const turn = (body.messages as Array<{ role: string }>).filter((m) => m.role === "user").length
      const content = `answer ${turn} to ${prompt} (end)`
      return prompt.startsWith("think") ? { content, thinking: "pondering deeply" } : content
    }
  })
})

afterEach(async (context) => {
  // what the terminal showed, when a test failed
  if (context.task.result?.state === "fail" && term !== undefined) console.error(`the terminal showed:\n${JSON.stringify(term.raw().slice(-2000))}`)
  await term?.close()
  term = undefined
  await fake.close()
})

describe.each(CLI_MODES)("llmspell chat on a terminal, %s", (mode) => {
  const { modeArgs } = modeRunner(mode, { env, cwd: () => dir })

  it("two turns, /clear, reasoning apart, Ctrl-C at the prompt and during an answer, Ctrl-D exits 0", async () => {
    const t = open([...modeArgs(), "chat", "-m", "present@ollama"])
    await t.waitFor("Chatting with present@ollama")
    await t.waitFor(">>> ")

    t.send(`hello${KEYS.enter}`)
    await t.waitFor("answer 1 to hello (end)")
    await t.waitFor(">>> ")
    t.send(`think again${KEYS.enter}`)
    await t.waitFor("answer 2 to think again (end)")
    await t.waitFor(">>> ")
    // the thinking came first, dimmed, and apart from the answer
    expect(t.raw()).toMatch(/\x1b\[2mThinking\.\.\.\n?\r?\n?\x1b\[22m\x1b\[2mpondering/)
    expect(t.text()).toMatch(/Thinking\.\.\.\npondering deeply\n\.\.\.done thinking\.\n\nanswer 2 to think again \(end\)/)
    expect(chats()[1]!.messages.map((m) => m.content)).toEqual(["hello", "answer 1 to hello (end)", "think again"])

    t.send(`/clear${KEYS.enter}`)
    await t.waitFor("Cleared the conversation.")
    await t.waitFor(">>> ")

    // Ctrl-C on an empty prompt: a hint, and the session goes on
    t.send(KEYS.ctrlC)
    await t.waitFor("Use Ctrl-D or /bye to end the session.")
    await t.waitFor(">>> ")

    // Ctrl-C while the answer is being written: the fake holds it after two words
    const held = gate()
    fake.clearLog()
    fake.setFault("/api/chat", { kind: "hold", until: held, after: 2, times: 1 })
    t.send(`stop me${KEYS.enter}`)
    await fake.waitForRecords("/api/chat", 2)
    await t.waitFor("answer 1")
    // keys typed while the answer is written are kept for the next prompt (not echoed into the answer)
    t.send("aftx\x7f")
    t.send(KEYS.ctrlC)
    await t.waitFor("(stopped)")
    await t.waitFor(">>> aft")
    // the request was abandoned, not left running
    await fake.responses.find((r) => r.route === "/api/chat")!.closed
    held.open()

    // the session goes on, with the words already shown as the answer to that message
    t.send(`er${KEYS.enter}`)
    await t.waitFor("answer 2 to after (end)")
    await t.waitFor(">>> ")
    expect(chats().at(-1)!.messages).toEqual([
      { role: "user", content: "stop me" },
      { role: "assistant", content: "answer 1" },
      { role: "user", content: "after" }
    ])

    t.send(KEYS.ctrlD)
    expect(await t.exited).toBe(0)
    expect(t.text()).not.toContain("error")
  })
})

describe("llmspell chat on a terminal", () => {

  it('a """ block is one message; /bye ends `run -m SPEC` opened without a prompt', async () => {
    const t = open(["run", "-m", "present@ollama"])
    await t.waitFor(">>> ")
    t.send(`"""first line${KEYS.enter}`)
    await t.waitFor("... ")
    t.send(`second line"""${KEYS.enter}`)
    await t.waitFor("answer 1 to first line\nsecond line (end)")
    await t.waitFor(">>> ")
    // a paste arrives as one chunk: every line of it is read, a block as one message
    t.send(`"""pasted one${KEYS.enter}pasted two"""${KEYS.enter}next${KEYS.enter}`)
    await t.waitFor("answer 2 to pasted one\npasted two (end)")
    await t.waitFor("answer 3 to next (end)")
    await t.waitFor(">>> ")
    t.send(`/nope${KEYS.enter}`)
    await t.waitFor("Unknown command /nope: /help lists them.")
    // a turn that fails says why and the session goes on, without the failed message
    fake.setFault("/api/chat", { kind: "inBandError", after: 0, message: "the model exploded", times: 1 })
    t.send(`fail me${KEYS.enter}`)
    await t.waitFor(/error: .*the model exploded/)
    await t.waitFor(">>> ")
    t.send(`fine${KEYS.enter}`)
    await t.waitFor("answer 4 to fine (end)")
    await t.waitFor(">>> ")
    t.send(`/bye${KEYS.enter}`)
    expect(await t.exited).toBe(0)
    expect(chats().at(-1)!.messages.map((m) => m.content)).not.toContain("fail me")
  })

  it("`run` without a prompt asks for one when the answer must be JSON: a session answers in free text", async () => {
    const t = open(["run", "-m", "present@ollama", "--format", "json"])
    await t.waitFor("--format needs a prompt: a chat session answers in free text")
    expect(await t.exited).toBe(2)
    expect(chats()).toHaveLength(0)
  })
})

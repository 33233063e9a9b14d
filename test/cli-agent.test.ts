/**
 * The built CLI's agent features against the fake Ollama: `run --schema` (file or inline JSON;
 * the checked object printed, a non-conforming answer refused), `--format json`, `--think` /
 * `--no-think`, `--json` with reasoning, and `embed` (arguments or stdin lines; JSON or NDJSON).
 * Every test runs twice: embedded, and connected to a server (test/support/bothModes.ts).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { type FakeOllama, fakeEmbedding, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { CLI_MODES, modeRunner } from "./support/bothModes.js"
import { bin, ensureBuilt, isolatedEnv } from "./support/runCli.js"

let dir: string
let fake: FakeOllama

const env = () => isolatedEnv(dir, { OLLAMA_HOST: `${fake.host}:${fake.port}` })
const lastChat = () => fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body as Record<string, unknown>

const personSchema = {
  type: "object",
  properties: { name: { type: "string" }, age: { type: "integer", minimum: 0, maximum: 150 } },
  required: ["name", "age"],
  additionalProperties: false
}

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-agent-"))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

beforeEach(async () => {
  fake = await startFakeOllama({
    models: [fakeModel("agent"), fakeModel("small", { context_length: 256 }), fakeModel("embedder", { model_info: { "general.architecture": "bert", "llama.embedding_length": 6 } })],
    answer: () => '{"name": "Ada", "age": 36}'
  })
})

afterEach(async () => {
  await fake.close()
})

describe.each(CLI_MODES)("%s", (mode) => {
  const { modeArgs, run: runIn } = modeRunner(mode, { env, cwd: () => dir })
  const run = (args: ReadonlyArray<string>) => runIn(args)
  /** Runs the CLI with `input` on stdin (through sh, as a pipe). */
  const runWithStdin = (args: ReadonlyArray<string>, input: string) =>
    runIn([], {
      env: { ...env(), INPUT: input },
      command: "/bin/sh",
      argv: ["-c", `printf '%s' "$INPUT" | "$0" "$@"`, process.execPath, bin, ...modeArgs(), ...args]
    })

  describe("llmspell run --schema / --format / --think", () => {
    it("--schema FILE sends the schema as `format` and prints the checked object", async () => {
      const file = join(dir, "person.json")
      await writeFile(file, JSON.stringify(personSchema))
      const result = await run(["run", "-m", "agent@ollama", "--schema", file, "who?"])
      expect(result).toMatchObject({ code: 0, stderr: "" })
      expect(JSON.parse(result.stdout)).toEqual({ name: "Ada", age: 36 })
      expect(lastChat().format).toEqual(personSchema)
    })

    it("--schema JSON inline; an answer that breaks it exits 1 with SchemaViolation, nothing on stdout", async () => {
      fake.state.answer = () => '{"name": "Ada", "age": 400}'
      const result = await run(["run", "-m", "agent@ollama", "--schema", JSON.stringify(personSchema), "who?", "--json"])
      expect(result.code).toBe(1)
      const error = JSON.parse(result.stdout) as { error: { _tag: string; message: string; hint: string } }
      expect(error.error._tag).toBe("SchemaViolation")
      expect(error.error.message).toContain("/age: 400 is above the maximum 150")
    })

    it("a schema keyword llmspell cannot check is refused up front (exit 2), before any request", async () => {
      const schema = JSON.stringify({ type: "object", properties: { a: { type: "string", contentEncoding: "base64" } } })
      const result = await run(["run", "-m", "agent@ollama", "--schema", schema, "who?"])
      expect(result.code).toBe(2)
      expect(result.stderr).toContain("contentEncoding")
      expect(fake.requests.filter((r) => r.path === "/api/chat")).toEqual([])
    })

    it("--schema with a missing file or bad JSON is a usage error (exit 2)", async () => {
      expect((await run(["run", "-m", "agent@ollama", "--schema", join(dir, "nope.json"), "x"])).code).toBe(2)
      expect((await run(["run", "-m", "agent@ollama", "--schema", "{not json", "x"])).code).toBe(2)
    })

    it("--format json sends format json and prints the JSON; text that is not JSON fails", async () => {
      const ok = await run(["run", "-m", "agent@ollama", "--format", "json", "who?"])
      expect(ok.code).toBe(0)
      expect(JSON.parse(ok.stdout)).toEqual({ name: "Ada", age: 36 })
      expect(lastChat().format).toBe("json")
      fake.state.answer = () => "not json at all"
      const bad = await run(["run", "-m", "agent@ollama", "--format", "json", "who?"])
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain("not JSON")
    })

    it("--think streams the thinking to stderr and --json includes it; --no-think sends think:false", async () => {
      fake.state.answer = () => ({ thinking: "Pondering deeply.", content: "Forty-two." })
      const shown = await run(["run", "-m", "agent@ollama", "--think", "question"])
      expect(shown).toMatchObject({ code: 0, stdout: "Forty-two.\n" })
      expect(shown.stderr).toBe("Pondering deeply.\n")
      expect(lastChat().think).toBe(true)
      const json = await run(["run", "-m", "agent@ollama", "--think", "question", "--json"])
      expect(JSON.parse(json.stdout)).toMatchObject({ text: "Forty-two.", reasoning: "Pondering deeply.", finishReason: "stop" })
      const hidden = await run(["run", "-m", "agent@ollama", "--no-think", "question"])
      expect(hidden).toMatchObject({ code: 0, stdout: "Forty-two.\n", stderr: "" })
      expect(lastChat().think).toBe(false)
      expect((await run(["run", "-m", "agent@ollama", "--think", "--no-think", "q"])).code).toBe(2)
    })
  })

  describe("llmspell embed", () => {
    it("texts as arguments: one JSON object with the vectors in order, dimensions and token count", async () => {
      const result = await run(["embed", "-m", "embedder@ollama", "hello world", "bye"])
      expect(result).toMatchObject({ code: 0, stderr: "" })
      const out = JSON.parse(result.stdout)
      expect(out).toMatchObject({ model: "embedder:latest", backend: "ollama", dimensions: 6, promptTokens: 3 })
      expect(out.vectors).toEqual([fakeEmbedding("hello world", 6), fakeEmbedding("bye", 6)])
    })

    it("stdin lines with --ndjson: one line per input, each the same vector a batch gives", async () => {
      const result = await runWithStdin(["embed", "-m", "embedder@ollama", "--ndjson"], "hello world\n\nbye\n")
      expect(result).toMatchObject({ code: 0, stderr: "" })
      const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l))
      expect(lines).toEqual([
        { index: 0, model: "embedder:latest", dimensions: 6, vector: fakeEmbedding("hello world", 6), promptTokens: 2 },
        { index: 1, model: "embedder:latest", dimensions: 6, vector: fakeEmbedding("bye", 6), promptTokens: 1 }
      ])
    })

    it("nothing to embed is a usage error; a missing model exits 3", async () => {
      expect((await run(["embed", "-m", "embedder@ollama"])).code).toBe(2)
      const missing = await run(["embed", "-m", "nope@ollama", "x", "--json"])
      expect(missing.code).toBe(3)
      expect(JSON.parse(missing.stdout).error._tag).toBe("ModelNotFound")
    })
  })

  describe("llmspell run: context", () => {
    it("a prompt over a 256-token context exits 1 with ContextOverflow, and its hint's command works", async () => {
      const long = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ")
      const result = await run(["run", "-m", "small@ollama", long, "--json"])
      expect(result.code).toBe(1)
      const error = JSON.parse(result.stdout.trim().split("\n").at(-1)!).error as { _tag: string; message: string; hint: string }
      expect(error._tag).toBe("ContextOverflow")
      expect(error.message).toContain("context of 256 tokens")
      const command = /`llmspell (model info [^`]+)`/.exec(error.hint)![1]!.split(" ")
      const info = await run([...command])
      expect(info.code).toBe(0)
      expect(info.stdout).toContain("small:latest")
    })
  })
})

import { describe, expect, it } from "vitest"
import { createLocalLLM, LlmspellFailure } from "../src/promise.js"
import { LlmspellMock } from "../src/testing.js"

describe("Promise facade", () => {
  it("runs, streams, pulls with progress and lists over mock layers", async () => {
    const mock = LlmspellMock.make({ gguf: { models: [{ name: "tiny", tokens: ["a", "b", "c"] }], pullSteps: 2 } })
    await using llm = createLocalLLM({ layer: mock.layer })

    const completion = await llm.run("tiny", "hello", { maxTokens: 2 })
    expect(completion.text).toBe("ab")
    expect(completion.finishReason).toBe("length")

    const stream = llm.stream("tiny", "hello")
    const tokens: Array<string> = []
    for await (const t of stream) tokens.push(t)
    expect(tokens).toEqual(["a", "b", "c"])
    expect((await stream.completion).usage.completionTokens).toBe(3)

    const phases: Array<string> = []
    const result = await llm.pull("other", { onProgress: (e) => phases.push(e.phase) })
    expect(result.model).toBe("other")
    expect(phases).toEqual(["resolving", "downloading", "downloading", "verifying", "done"])

    const iterated: Array<string> = []
    for await (const e of llm.pull("third")) iterated.push(e.phase)
    expect(iterated.at(-1)).toBe("done")

    const list = await llm.list()
    expect(list.models.map((m) => m.name).sort()).toEqual(["other", "third", "tiny"])
  })

  it("rejects with LlmspellFailure carrying _tag, hint and exit code", async () => {
    const mock = LlmspellMock.make({ ollama: { fail: { generate: "unavailable" }, models: ["x"] } })
    const llm = createLocalLLM({ layer: mock.layer })
    try {
      const missing = await llm.info("nope").catch((e: unknown) => e)
      expect(missing).toBeInstanceOf(LlmspellFailure)
      expect(missing).toMatchObject({ _tag: "ModelNotFound", exitCode: 3 })
      expect((missing as LlmspellFailure).hint).toContain("llmspell model pull nope")

      const down = await llm.run("x@ollama", "hi").catch((e: unknown) => e)
      expect(down).toMatchObject({ _tag: "BackendUnavailable", exitCode: 4 })

      const badSpec = await llm.info("x@").catch((e: unknown) => e)
      expect(badSpec).toMatchObject({ _tag: "InvalidModelSpec", exitCode: 2 })
    } finally {
      await llm.close()
    }
    await expect(llm.list()).rejects.toMatchObject({ _tag: "Closed" })
  })

  it("breaking out of a token stream stops it and rejects the completion", async () => {
    const mock = LlmspellMock.make({ gguf: { models: [{ name: "tiny", tokens: ["a", "b", "c", "d"] }] } })
    await using llm = createLocalLLM({ layer: mock.layer })
    const stream = llm.stream("tiny", "hello")
    for await (const t of stream) {
      expect(t).toBe("a")
      break
    }
    await expect(stream.completion).rejects.toMatchObject({ _tag: "Interrupted" })
  })
})

describe("Promise facade on a live stack", () => {
  it("prints library warnings on stderr, never on stdout (where the caller's own output goes)", async () => {
    const { fakeModel, startFakeOllama } = await import("./fixtures/fakeOllama.js")
    const { mkdtemp, rm } = await import("node:fs/promises")
    const { tmpdir } = await import("node:os")
    const { join } = await import("node:path")
    const fake = await startFakeOllama({ models: [fakeModel("present")] })
    const home = await mkdtemp(join(tmpdir(), "llmspell-promise-"))
    fake.setFault("/api/tags", { kind: "malformedEntries" })
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    const write = process.stdout.write.bind(process.stdout)
    const log = console.log
    const error = console.error
    process.stdout.write = ((chunk: string | Uint8Array) => (stdout.push(String(chunk)), true)) as typeof process.stdout.write
    console.log = (...args: Array<unknown>) => void stdout.push(args.join(" "))
    console.error = (...args: Array<unknown>) => void stderr.push(args.join(" "))
    const llm = createLocalLLM({
      config: { providers: { default_backend: "ollama", ollama: { base_url: fake.url }, gguf: { model_directory: join(home, "models") } } },
      home,
      env: {}
    })
    try {
      const list = await llm.list("ollama")
      expect(list.models.map((m) => m.name)).toEqual(["present:latest"])
    } finally {
      await llm.close()
      process.stdout.write = write
      console.log = log
      console.error = error
      await fake.close()
      await rm(home, { recursive: true, force: true })
    }
    expect(stdout.join("")).not.toContain("malformed")
    expect(stderr.join("\n")).toContain("malformed entries")
  })
})

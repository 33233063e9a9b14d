/**
 * End to end: the real backends (node-llama-cpp, the ollama client, @huggingface/hub) against the
 * fake Ollama server, the fake hub and a tiny GGUF model the suite writes — through the Promise
 * facade, and through the built CLI whose every `--json` output is decoded with the schemas that
 * docs/json.md is generated from.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Schema from "effect/Schema"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AvailableReport } from "../src/domain/Catalog.js"
import { ErrorEnvelope } from "../src/domain/Protocol.js"
import {
  Completion,
  ConfigPathReport,
  ConfigReport,
  ModelInfo,
  ModelList,
  PullProgress,
  RemoveResult,
  StatusReport,
  VerifyReport
} from "../src/domain/Types.js"
import { createLocalLLM, type LocalLLMClient } from "../src/promise.js"
import { type FakeHub, startFakeHub } from "./fixtures/fakeHub.js"
import { fakeLayer, fakeModel, type FakeOllama, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

const dir = mkdtempSync(join(tmpdir(), "llmspell-e2e-"))
const modelsDir = join(dir, "models")
const localModel = join(dir, "local.gguf")
const model = tinyLlamaGguf({ tensorType: "Q8_0", seed: 7 })
writeFileSync(localModel, model)

let ollama: FakeOllama
let hub: FakeHub

const env = () =>
  isolatedEnv(dir, {
    OLLAMA_HOST: ollama.url,
    HF_ENDPOINT: hub.url,
    LLMSPELL_MODELS_DIR: modelsDir,
    LLMSPELL_GGUF_THREADS: "1"
  })

const cli = (args: ReadonlyArray<string>) => runCli(args, { cwd: dir, env: env() })

const decodeJson = <A, I>(schema: Schema.Schema<A, I>, text: string): A =>
  Schema.decodeUnknownSync(schema, { onExcessProperty: "error" })(JSON.parse(text))

beforeAll(async () => {
  ensureBuilt()
  ollama = await startFakeOllama({
    models: [fakeModel("llama3.2:latest")],
    pullable: { "qwen2.5:0.5b": [fakeLayer("q", 2048)] },
    answer: () => "Hello from the fake Ollama"
  })
  hub = await startFakeHub({ pageSize: 50 })
  await hub.addRepo({
    name: "org/Tiny-GGUF",
    files: [{ path: "Tiny-Q8_0.gguf", content: model }, { path: "README.md", content: "# tiny" }]
  })
})

afterAll(async () => {
  await ollama?.close()
  await hub?.close()
})

describe("Promise facade on the real backends", () => {
  let llm: LocalLLMClient
  beforeAll(() => {
    llm = createLocalLLM({ env: env(), home: dir, cwd: dir })
  })
  afterAll(() => llm.close())

  it("status and list cover both backends", async () => {
    const status = await llm.status()
    expect(status.map((s) => [s.instance, s.available])).toEqual([["ollama", true], ["gguf", true]])
    const list = await llm.list()
    expect(list.unavailable).toEqual([])
    expect(list.models.map((m) => `${m.backend}:${m.name}`)).toContain("ollama:llama3.2:latest")
  })

  it("pulls a GGUF from the hub with progress, then runs it in-process", async () => {
    const phases = new Set<string>()
    const result = await llm.pull("org/Tiny-GGUF:Q8_0", { onProgress: (e) => phases.add(e.phase) })
    expect(result.alreadyPresent).toBe(false)
    expect(phases).toEqual(new Set(["resolving", "downloading", "verifying", "done"]))
    const completion = await llm.run("org/Tiny-GGUF:Q8_0", "hi", { maxTokens: 6, seed: 1, system: "Be brief." })
    expect(completion.backend).toBe("gguf")
    expect(completion.usage.completionTokens).toBeGreaterThan(0)
    expect((await llm.verify("org/Tiny-GGUF:Q8_0")).ok).toBe(true)
    const again = await llm.pull("org/Tiny-GGUF:Q8_0")
    expect(again.alreadyPresent).toBe(true)
  })

  it("streams tokens from Ollama and from a local file", async () => {
    const fromOllama: Array<string> = []
    const stream = llm.stream("llama3.2@ollama", "hi")
    for await (const t of stream) fromOllama.push(t)
    expect(fromOllama.join("")).toBe("Hello from the fake Ollama")
    expect((await stream.completion).backend).toBe("ollama")
    const local = await llm.run(localModel, "hi", { maxTokens: 4, seed: 3, system: "Be brief." })
    expect(local.model).toBe(localModel)
  })

  it("errors keep their tag, hint and exit code", async () => {
    await expect(llm.info("ghost@ollama")).rejects.toMatchObject({ _tag: "ModelNotFound", exitCode: 3 })
    await expect(llm.info("org/Missing-GGUF:Q4_K_M")).rejects.toMatchObject({ exitCode: 3 })
  })
})

describe("the CLI's --json output decodes with the documented schemas", () => {
  it("status, list, info, available, config show and config path", async () => {
    const status = await cli(["model", "status", "--json"])
    expect(status.code).toBe(0)
    expect(decodeJson(StatusReport, status.stdout).backends).toHaveLength(2)
    const list = await cli(["model", "list", "--json"])
    expect(decodeJson(ModelList, list.stdout).unavailable).toEqual([])
    const info = await cli(["model", "info", localModel, "--json"])
    expect(decodeJson(ModelInfo, info.stdout).architecture).toBe("llama")
    const available = await cli(["model", "available", "--json"])
    expect(available.code).toBe(0)
    decodeJson(AvailableReport, available.stdout)
    const show = await cli(["config", "show", "--json"])
    expect(decodeJson(ConfigReport, show.stdout).entries.find((e) => e.key === "providers.ollama.base_url")?.source)
      .toBe("env OLLAMA_HOST")
    const path = await cli(["config", "path", "--json"])
    expect(decodeJson(ConfigPathReport, path.stdout).file).toBeNull()
  })

  it("pull (NDJSON), run, verify, remove and an error envelope", async () => {
    const pull = await cli(["model", "pull", "qwen2.5:0.5b@ollama", "--json"])
    expect(pull.code).toBe(0)
    const events = pull.stdout.trim().split("\n").map((line) => decodeJson(PullProgress, line))
    expect(events.at(-1)!.result?.model).toBe("qwen2.5:0.5b")

    const run = await cli(["run", "--model", localModel, "hi", "--max-tokens", "4", "--seed", "2", "--json"])
    expect(run.code).toBe(0)
    expect(decodeJson(Completion, run.stdout).backend).toBe("gguf")

    const verify = await cli(["model", "verify", "--json"])
    expect(verify.code).toBe(0)
    expect(decodeJson(VerifyReport, verify.stdout).ok).toBe(true)

    const remove = await cli(["model", "remove", "qwen2.5:0.5b@ollama", "--yes", "--json"])
    expect(remove.code).toBe(0)
    expect(decodeJson(RemoveResult, remove.stdout).backend).toBe("ollama")

    const missing = await cli(["model", "info", "ghost@ollama", "--json"])
    expect(missing.code).toBe(3)
    expect(decodeJson(ErrorEnvelope, missing.stdout).error._tag).toBe("ModelNotFound")
  })
})

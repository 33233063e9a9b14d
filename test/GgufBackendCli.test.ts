/**
 * `llmspell run`, `model info` and `model status` on the GGUF backend through the built
 * `dist/cli.js` (build first: `npm run build`), with a tiny model written into a temp directory:
 * JSON shapes that decode as our types, exit code 3 and the pull hint for a missing model.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Schema from "effect/Schema"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Completion, ModelInfo, StatusReport } from "../src/domain/Types.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const bin = join(root, "dist", "cli.js")
let dir: string

const run = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: dir,
      env: {
        HOME: dir,
        XDG_CONFIG_HOME: join(dir, "xdg"),
        PATH: process.env["PATH"] ?? "",
        NO_COLOR: "1",
        LLMSPELL_MODELS_DIR: join(dir, "models")
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => void (stdout += c.toString("utf8")))
    child.stderr.on("data", (c: Buffer) => void (stderr += c.toString("utf8")))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

beforeAll(async () => {
  if (!existsSync(bin)) execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: root, stdio: "ignore" })
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-gguf-"))
  await writeFile(join(dir, "tiny.gguf"), tinyLlamaGguf())
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe("llmspell run on a GGUF file", () => {
  it("--json prints one Completion with usage and timings; the same seed gives the same text", async () => {
    const args = ["run", "--model", "./tiny.gguf", "hi", "--max-tokens", "8", "--seed", "1", "--json"]
    const first = await run(args)
    expect(first.stderr).toBe("")
    expect(first.code).toBe(0)
    const completion = Schema.decodeUnknownSync(Schema.parseJson(Completion))(first.stdout.trim())
    expect(completion).toMatchObject({ model: "./tiny.gguf", backend: "gguf", finishReason: "length" })
    expect(completion.usage.completionTokens).toBe(8)
    expect(completion.timings.loadMs).toBeGreaterThan(0)
    const second = await run(args)
    expect(JSON.parse(second.stdout).text).toBe(completion.text)
  })

  it("a missing model is exit code 3 with the pull hint on stderr", async () => {
    const result = await run(["run", "--model", "someone/Missing-GGUF:Q4_K_M@gguf", "hi"])
    expect(result.code).toBe(3)
    expect(result.stderr).toContain("llmspell model pull someone/Missing-GGUF:Q4_K_M")
  })

  it("model info --json and model status --json", async () => {
    const info = await run(["model", "info", "./tiny.gguf@gguf", "--json"])
    expect(info.code).toBe(0)
    expect(Schema.decodeUnknownSync(Schema.parseJson(ModelInfo))(info.stdout.trim())).toMatchObject({
      architecture: "llama",
      quantization: "F16",
      chatTemplate: true
    })
    const status = await run(["model", "status", "--backend", "gguf", "--json"])
    expect(status.code).toBe(0)
    const report = Schema.decodeUnknownSync(Schema.parseJson(StatusReport))(status.stdout.trim())
    expect(report.backends[0]).toMatchObject({ backend: "gguf", available: true, loaded: [] })
    expect(report.backends[0]!.details["binary"]).toBe("prebuilt")
  })
})

/**
 * The GGUF worker through the built CLI (`npm run build` first: dist/cli.js starts
 * dist/gguf-worker.js): a worker that aborts is exit 1 with `error:` naming the assert, not a
 * signal exit of llmspell; Ctrl-C while a model loads, while its chat template runs away and while
 * a prompt's preparation is stuck exits 130 and leaves no worker behind. The worker's test hooks
 * (see workerProtocol.ts) abort it, or stall its thread for good (so an exit at all shows the
 * interruption worked, however busy the machine), and trace where it is.
 */
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { bin, ensureBuilt, isolatedEnv, runCli } from "./support/runCli.js"

let dir: string
let trace: string

const env = () =>
  isolatedEnv(dir, {
    LLMSPELL_TEST_WORKER_ABORT: "generate:crash-generate,stall-load:stall-load,stall-template:stall-template,stall-prepare:stall-me",
    LLMSPELL_TEST_WORKER_TRACE: trace
  })

beforeAll(async () => {
  ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), "llmspell-cli-worker-"))
  trace = join(dir, "trace.log")
  await writeFile(join(dir, "tiny.gguf"), tinyLlamaGguf())
  await writeFile(join(dir, "crash-generate.gguf"), tinyLlamaGguf({ seed: 2 }))
  await writeFile(join(dir, "stall-load.gguf"), tinyLlamaGguf({ seed: 3 }))
  await writeFile(join(dir, "stall-template.gguf"), tinyLlamaGguf({ seed: 4 }))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Resolves when the worker has traced a line ending with `event`; returns the worker's pid. */
const traced = (event: string) =>
  new Promise<number>((resolve) => {
    const timer = setInterval(() => {
      if (!existsSync(trace)) return
      const line = readFileSync(trace, "utf8").split("\n").find((l) => l.endsWith(event))
      if (line !== undefined) {
        clearInterval(timer)
        resolve(Number(line.split(" ")[0]))
      }
    }, 10)
  })

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Starts `llmspell run`, sends SIGINT once the worker traced `event`; its exit code and stderr. */
const interruptAt = async (model: string, event: string, stdin?: string) => {
  await rm(trace, { force: true })
  const child = spawn(process.execPath, [bin, "run", "--model", model, ...(stdin === undefined ? ["hi"] : [])], {
    cwd: dir,
    env: env(),
    stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr!.on("data", (c: Buffer) => void (stderr += c.toString("utf8")))
  child.stdout!.resume()
  if (stdin !== undefined) child.stdin!.end(stdin)
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  const worker = await traced(event)
  child.kill("SIGINT")
  const code = await closed
  return { code, worker, stderr }
}

describe("llmspell run with llama.cpp in a worker process", () => {
  it("a worker that aborts is exit 1 with error: naming the assert, and the next run works", async () => {
    const crashed = await runCli(["run", "--model", "./crash-generate.gguf", "hi", "--max-tokens", "8"], { cwd: dir, env: env() })
    expect(crashed.code).toBe(1)
    expect(crashed.stderr).toMatch(/^error: .*died during generate \(signal SIGABRT\): GGML_ASSERT\(llmspell test hook/m)
    expect(crashed.stderr).toContain("llmspell model info")
    const ok = await runCli(["run", "--model", "./tiny.gguf", "hi", "--max-tokens", "4"], { cwd: dir, env: env() })
    expect(ok.code).toBe(0)
  }, 120_000)

  it.each([
    ["while the model loads", "./stall-load.gguf", "load", undefined],
    ["while its chat template runs away", "./stall-template.gguf", "preparing", undefined],
    ["while a prompt's preparation is stuck", "./tiny.gguf", "prepare 0", "stall-me, please"]
  ] as const)("Ctrl-C %s: exit 130, no worker left", async (_phase, model, event, stdin) => {
    const result = await interruptAt(model, event === "load" ? `load ${join(dir, model.slice(2))}` : event, stdin)
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 130, stderr: "interrupted\n" })
    expect(alive(result.worker)).toBe(false)
  }, 120_000)
})

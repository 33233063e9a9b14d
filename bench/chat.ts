/**
 * `node --import tsx bench/chat.ts [--runs N] [--turns N]`: one conversation through `llmspell chat`
 * (embedded, line mode, the built dist/cli.js) against a plain node-llama-cpp script keeping one
 * `LlamaChat` for the conversation, on a generated llama (vocab 32000, dim 512, 8 layers, Q8_0) with
 * a ~1,000-token system prompt and short user turns, the history re-sent each turn. Measured: each
 * turn's time to first token, as each client sees it (chat: its `--verbose` line, from sending the
 * request; plain: from `generateResponse` to the first token), and the ratio turn by turn. Same
 * threads, context and sampling (greedy, 16 tokens) on both sides; runs interleaved in this one run.
 * Prints a Markdown table (for BENCHMARKS.md) with the machine's load.
 */
import { spawn } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { autoThreads, availableCores } from "../src/layers/gguf/cpu.js"
import { writeTinyLlamaGguf } from "../test/fixtures/ggufWriter.js"
import { median } from "./stats.js"

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? Number(process.argv[at + 1]) : fallback
}
const RUNS = arg("runs", 2)
const TURNS = arg("turns", 6)
const TOKENS = 16
const CONTEXT = 4096
const THREADS = autoThreads(availableCores())
const root = fileURLToPath(new URL("..", import.meta.url))
const bin = join(root, "dist", "cli.js")

const SYSTEM = Array.from(
  { length: 60 },
  (_, i) => `Rule ${i + 1}: when the user asks about topic ${i + 1}, answer briefly and cite the tool named tool_${i + 1}.`
).join(" ")
const userTurn = (n: number) =>
  `Turn ${n}: please look at the file src/module${n}.ts and tell me whether the function parseThing${n} handles empty input, and what it returns for a string of spaces.`


/** Per-turn TTFT (ms) and prompt tokens through `llmspell chat` in line mode. */
const chatRun = async (dir: string, model: string, config: string) =>
  new Promise<{ ttft: Array<number>; promptTokens: Array<number>; cached: Array<number | undefined> }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [bin, "chat", "-m", model, "--config", config, "--local", "--system", SYSTEM, "--max-tokens", String(TOKENS), "--temperature", "0", "--seed", "1", "--json", "--verbose"],
      { cwd: dir, env: { HOME: dir, XDG_CONFIG_HOME: join(dir, "xdg"), PATH: process.env["PATH"] ?? "", NO_COLOR: "1" }, stdio: ["pipe", "pipe", "pipe"] }
    )
    let out = ""
    let err = ""
    child.stdout.on("data", (c: Buffer) => void (out += c.toString()))
    child.stderr.on("data", (c: Buffer) => void (err += c.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`chat exited ${code}: ${err}`))
      const ttft = err.split("\n").flatMap((l) => {
        const m = /^first token (\d+) ms/.exec(l)
        return m ? [Number(m[1])] : []
      })
      const completions = out.trim().split("\n").map((l) => JSON.parse(l) as { usage: { promptTokens: number; cachedPromptTokens?: number } })
      resolve({ ttft, promptTokens: completions.map((c) => c.usage.promptTokens), cached: completions.map((c) => c.usage.cachedPromptTokens) })
    })
    child.stdin.end(Array.from({ length: TURNS }, (_, i) => userTurn(i + 1)).join("\n") + "\n")
  })

const lib = await import("node-llama-cpp")
const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error })

/** Per-turn TTFT (ms) through one LlamaChat kept for the conversation: the plain baseline. */
const plainRun = async (path: string) => {
  const model = await llama.loadModel({ modelPath: path, useMmap: true })
  const context = await model.createContext({ contextSize: CONTEXT, threads: THREADS })
  const chat = new lib.LlamaChat({ contextSequence: context.getSequence() })
  type Item = Parameters<typeof chat.generateResponse>[0][number]
  const history: Array<Item> = [{ type: "system", text: SYSTEM }]
  const ttft: Array<number> = []
  for (let n = 1; n <= TURNS; n++) {
    history.push({ type: "user", text: userTurn(n) })
    let first = 0
    const start = performance.now()
    const result = await chat.generateResponse([...history, { type: "model", response: [] }], {
      maxTokens: TOKENS,
      temperature: 0,
      seed: 1,
      onTextChunk: () => {
        if (first === 0) first = performance.now()
      }
    })
    ttft.push((first || performance.now()) - start)
    history.push({ type: "model", response: [result.response] })
  }
  chat.dispose()
  await context.dispose()
  await model.dispose()
  return { ttft }
}

const dir = await mkdtemp(join(os.tmpdir(), "llmspell-bench-chat-"))
try {
  const path = join(dir, "chat-60m-q8.gguf")
  await writeTinyLlamaGguf(path, { vocabSize: 32000, embeddingLength: 512, blockCount: 8, headCount: 8, contextLength: CONTEXT, tensorType: "Q8_0" })
  const config = join(dir, "llmspell.toml")
  await writeFile(
    config,
    `[providers.gguf]\nprovider_type = "gguf"\nmodel_directory = "${dir}"\nthreads = ${THREADS}\ncontext_size = ${CONTEXT}\n`
  )
  const chatTtft: Array<Array<number>> = Array.from({ length: TURNS }, () => [])
  const plainTtft: Array<Array<number>> = Array.from({ length: TURNS }, () => [])
  let promptTokens: Array<number> = []
  let cached: Array<number | undefined> = []
  for (let r = 0; r < RUNS; r++) {
    const c = await chatRun(dir, path, config)
    const p = await plainRun(path)
    c.ttft.forEach((v, i) => chatTtft[i]!.push(v))
    p.ttft.forEach((v, i) => plainTtft[i]!.push(v))
    promptTokens = c.promptTokens
    cached = c.cached
    console.error(`run ${r + 1}: chat ${c.ttft.join(" ")} ms; plain ${p.ttft.map((v) => v.toFixed(0)).join(" ")} ms`)
  }
  const rows = chatTtft.map((samples, i) => {
    const c = median(samples)
    const p = median(plainTtft[i]!)
    return `| ${i + 1} | ${promptTokens[i] ?? "?"} | ${cached[i] ?? "–"} | ${p.toFixed(0)} | ${c.toFixed(0)} | ${(c / p).toFixed(2)}× |`
  })
  const later = chatTtft.slice(1).map((s, i) => median(s) / median(plainTtft[i + 1]!))
  console.log(
    [
      `Load: ${os.loadavg().map((l) => l.toFixed(2)).join(", ")} (${os.availableParallelism()} cores), ${THREADS} thread(s), context ${CONTEXT}, ${RUNS} runs (medians), ${TOKENS} tokens per answer, greedy.`,
      "",
      "| turn | prompt tokens | cached | plain LlamaChat TTFT ms | `llmspell chat` TTFT ms | ratio |",
      "|---|---|---|---|---|---|",
      ...rows,
      "",
      `Turns 2–${TURNS}: median ratio ${median(later).toFixed(2)}×, worst ${Math.max(...later).toFixed(2)}×.`
    ].join("\n")
  )
} finally {
  await rm(dir, { recursive: true, force: true })
}

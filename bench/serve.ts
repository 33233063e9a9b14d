/**
 * `npm run bench:serve`: what `llmspell serve` costs and saves, on a generated llama (default
 * ~290 MB Q8_0: vocab 32000, dim 1024, 16 layers, ff 2816; `--small` for a ~60M F16 one), written
 * to a temp dir and deleted afterwards. In one run, interleaved, medians of `--runs` repeats:
 *
 * - tokens/s of one stream through `/api/chat` and `/v1/chat/completions` (a server in this process
 *   over the whole stack, isolation "process" as shipped) against `LocalLLM.generate` on the same
 *   stack with no HTTP in between: the server's overhead (target ≥ 0.97×);
 * - a fresh process asking the warm server for one completion (`node -e fetch(…)`, what a connected
 *   CLI does) against an embedded `llmspell run` that loads the model itself: wall time (target
 *   ≤ 0.2×). The CLI's connect mode is another engineer's part; this row measures the same path.
 *
 * Options: --runs N (default 3), --tokens N (default 64), --small, --no-write. Build first.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { spawn } from "node:child_process"
import { mkdirSync, statSync } from "node:fs"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { autoThreads } from "../src/layers/internal/cpu.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import { LocalLLM, type LocalLLMService } from "../src/services/LocalLLM.js"
import * as Server from "../src/serve/Server.js"
import { writeTinyLlamaGguf } from "../test/fixtures/ggufWriter.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const RUNS = arg("runs", 3)
const TOKENS = arg("tokens", 64)
const SMALL = process.argv.includes("--small")
const WRITE = !process.argv.includes("--no-write")
const THREADS = autoThreads()
const CONTEXT = 1024
const PROMPT = "Tell me a long story about a llama who learns to spell."
const log = (s: string) => process.stderr.write(`${s}\n`)
const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const dir = await mkdtemp(join(os.tmpdir(), "llmspell-bench-serve-"))
const home = join(dir, "home")
const models = join(dir, "models")
mkdirSync(models, { recursive: true })
const file = join(models, "bench.gguf")
await writeTinyLlamaGguf(
  file,
  SMALL
    ? { vocabSize: 32000, embeddingLength: 512, blockCount: 8, contextLength: CONTEXT, name: "bench" }
    : { vocabSize: 32000, embeddingLength: 1024, blockCount: 16, feedForwardLength: 2816, tensorType: "Q8_0", contextLength: CONTEXT, name: "bench" }
)
const sizeMiB = statSync(file).size / 2 ** 20
log(`model: ${sizeMiB.toFixed(0)} MiB, threads ${THREADS}, ${TOKENS} tokens, ${RUNS} runs`)

const config = {
  providers: {
    gguf: { provider_type: "gguf", model_directory: models, threads: THREADS, context_size: CONTEXT, parallel: 1 }
  },
  hub: { offline: true },
  stores: { ollama: false, hf_cache: false, lmstudio: false, node_llama_cpp: false }
}
const scope = Effect.runSync(Scope.make())
const context = await Effect.runPromise(Layer.buildWithScope(LlmspellLive.layerFromObject(config, { home, env: {} }), scope))
const llm = context.unsafeMap.get(LocalLLM.key) as LocalLLMService
const server = await Effect.runPromise(Server.start({ port: 0 }).pipe(Effect.provideService(LocalLLM, llm), Scope.extend(scope)))
const SPEC = "bench.gguf@gguf"
const messages = [{ role: "user" as const, content: PROMPT }]

/** Tokens per second after the first token, from the client's side of a stream. */
interface Sample {
  readonly tokensPerSecond: number
}

const direct = async (): Promise<Sample> => {
  const events = await Effect.runPromise(
    llm.generate(SPEC, { messages, maxTokens: TOKENS, seed: 1, temperature: 0.8 }).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
  )
  const last = events.at(-1)
  if (last?._tag !== "Finish") throw new Error("no completion")
  return { tokensPerSecond: last.completion.timings.tokensPerSecond ?? NaN }
}

/** Streams a request and times from the first content chunk to the end, counting the completion tokens reported. */
const overHttp = async (path: string, body: unknown, tokensOf: (lines: Array<any>) => number): Promise<Sample> => {
  const response = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ""
  let first: number | undefined
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    first ??= performance.now()
    text += decoder.decode(value)
  }
  const end = performance.now()
  const lines = text.split("\n").map((l) => l.replace(/^data: /, "").trim()).filter((l) => l !== "" && l !== "[DONE]").map((l) => JSON.parse(l))
  const tokens = tokensOf(lines)
  return { tokensPerSecond: (tokens - 1) / ((end - first!) / 1000) }
}

const ollamaChat = () =>
  overHttp("/api/chat", { model: SPEC, messages, options: { num_predict: TOKENS, seed: 1, temperature: 0.8 } }, (lines) => lines.at(-1).eval_count)
const openaiChat = () =>
  overHttp(
    "/v1/chat/completions",
    { model: SPEC, messages, max_tokens: TOKENS, seed: 1, temperature: 0.8, stream: true, stream_options: { include_usage: true } },
    (lines) => lines.at(-1).usage.completion_tokens
  )

const child = (args: ReadonlyArray<string>) =>
  new Promise<number>((resolve, reject) => {
    const start = performance.now()
    const p = spawn(process.execPath, args, { env: { HOME: home, PATH: process.env["PATH"] ?? "", LLMSPELL_MODELS_DIR: models, LLMSPELL_GGUF_THREADS: String(THREADS), LLMSPELL_GGUF_CONTEXT_SIZE: String(CONTEXT) }, stdio: ["ignore", "pipe", "pipe"] })
    let err = ""
    p.stderr.on("data", (c: Buffer) => void (err += c.toString()))
    p.on("error", reject)
    p.on("close", (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`exit ${code}: ${err}`))))
  })

const embeddedRun = () => child([join(root, "dist", "cli.js"), "run", "--model", SPEC, PROMPT, "--max-tokens", String(TOKENS), "--seed", "1", "--json"])
const warmRequest = () =>
  child([
    "-e",
    `fetch(${JSON.stringify(`${server.url}/api/chat`)},{method:"POST",body:JSON.stringify({model:${JSON.stringify(SPEC)},messages:${JSON.stringify(messages)},stream:false,options:{num_predict:${TOKENS},seed:1}})}).then(r=>r.json()).then(j=>{if(!j.done)process.exit(1)})`
  ])

try {
  await direct() // load and warm up
  const samples = { direct: [] as Array<number>, ollama: [] as Array<number>, openai: [] as Array<number>, embedded: [] as Array<number>, warm: [] as Array<number> }
  for (let i = 0; i < RUNS; i++) {
    samples.direct.push((await direct()).tokensPerSecond)
    samples.ollama.push((await ollamaChat()).tokensPerSecond)
    samples.openai.push((await openaiChat()).tokensPerSecond)
    samples.warm.push(await warmRequest())
    samples.embedded.push(await embeddedRun())
    log(`run ${i + 1}: direct ${samples.direct.at(-1)!.toFixed(1)} tok/s, /api/chat ${samples.ollama.at(-1)!.toFixed(1)}, /v1 ${samples.openai.at(-1)!.toFixed(1)}, warm ${samples.warm.at(-1)!.toFixed(0)} ms, embedded ${samples.embedded.at(-1)!.toFixed(0)} ms`)
  }
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<keyof typeof samples, number>
  const section = [
    "## Serve: warm server vs embedded, HTTP overhead (bench:serve)",
    "",
    `Command: \`npm run build && npm run bench:serve\` (\`node --import tsx bench/serve.ts [--runs N] [--tokens N] [--small]\`). A generated llama of ${sizeMiB.toFixed(0)} MiB${SMALL ? " (F16, --small)" : " (Q8_0: vocab 32000, dim 1024, 16 layers, ff 2816)"}, ${THREADS} thread(s), context ${CONTEXT}, ${TOKENS} tokens, median of ${RUNS}, interleaved. The server runs in the bench process over the whole stack (isolation \"process\", as shipped); \"direct\" is \`LocalLLM.generate\` on that same stack. The warm row is a fresh \`node -e\` process doing one \`/api/chat\` request (what a connected CLI does; the CLI's connect mode is issue 13 part 2).`,
    "",
    `Machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model.trim() ?? "?"}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, load average ${os.loadavg()[0]!.toFixed(1)}.`,
    "",
    "| what | median | ratio | target |",
    "|---|---:|---:|---:|",
    `| \`LocalLLM.generate\` (no HTTP) | ${m.direct.toFixed(1)} tok/s | 1.00 | |`,
    `| \`/api/chat\` stream | ${m.ollama.toFixed(1)} tok/s | ${(m.ollama / m.direct).toFixed(2)}× | ≥ 0.97× |`,
    `| \`/v1/chat/completions\` stream | ${m.openai.toFixed(1)} tok/s | ${(m.openai / m.direct).toFixed(2)}× | ≥ 0.97× |`,
    `| embedded \`llmspell run\` (loads the model) | ${m.embedded.toFixed(0)} ms | 1.00 | |`,
    `| a new process against the warm server | ${m.warm.toFixed(0)} ms | ${(m.warm / m.embedded).toFixed(2)}× | ≤ 0.2× |`,
    ""
  ].join("\n")
  process.stdout.write(`${section}\n`)
  if (WRITE) {
    const path = join(root, "BENCHMARKS.md")
    const current = await readFile(path, "utf8")
    const start = current.indexOf("## Serve: warm server vs embedded")
    const next = start >= 0 ? current.indexOf("\n## ", start + 1) : -1
    const updated = start < 0 ? `${current.trimEnd()}\n\n${section}` : `${current.slice(0, start)}${section}${next >= 0 ? current.slice(next) : ""}`
    await writeFile(path, updated.endsWith("\n") ? updated : `${updated}\n`)
  }
} finally {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await rm(dir, { recursive: true, force: true })
}

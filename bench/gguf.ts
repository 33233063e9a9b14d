/**
 * `npm run bench:gguf`: GGUF inference speed through GgufBackend and `llmspell run` against a plain
 * node-llama-cpp script with the same threads and context (and against node-llama-cpp's defaults),
 * on a generated ~60M-parameter llama (vocab 32000, dim 512, 8 layers; F16 and Q8_0) written to a
 * temp dir and deleted afterwards. Also: the warm second request (latency, reloaded or not), 4
 * concurrent requests' total tokens/s against one, and 1 vs 2 threads. Everything is measured in
 * this one run, interleaved, medians of several repeats; the figures go into BENCHMARKS.md as
 * ratios against the plain script. Build first (`npm run build`) for the CLI rows.
 *
 * Then the worker-process isolation (`isolation = "process"`, the default) against `isolation = "none"`
 * and the plain script, on the 60M F16 model and a ~300 MB Q8_0 one: tokens/s, warm TTFT, cold load,
 * and the worker's RSS; its own section of BENCHMARKS.md.
 *
 * Then schema-constrained generation (`ggufGrammar.ts`): GgufBackend under a JSON-Schema grammar
 * against a plain node-llama-cpp script with the same grammar; then embeddings per second through
 * GgufBackend against a plain `createEmbeddingContext` script (`ggufEmbed.ts`); each its own section
 * of BENCHMARKS.md.
 *
 * GgufBackend runs as shipped: each model in a worker process (the bundled dist/gguf-worker.js when built).
 *
 * Options: --runs N (repeats per measurement, default 3), --pairs N (warm triples per model in the isolation
 * section, default 9), --tokens N (default 128), --no-write,
 * --only isolation | grammar | embed (just that section).
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Completion, GenerateEvent, GenerateRequest } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import { autoThreads, availableCores } from "../src/layers/gguf/cpu.js"
import * as LlamaLoaderLive from "../src/layers/gguf/LlamaLoaderLive.js"
import { grammarSection } from "./ggufGrammar.js"
import { runEmbeddingBench } from "./ggufEmbed.js"
import { isolationSection } from "./ggufIsolation.js"
import { ModelDownloaderMock } from "../src/testing.js"
import { ggufInstance } from "../test/fixtures/ggufBackendFakes.js"
import { writeTinyLlamaGguf } from "../test/fixtures/ggufWriter.js"
import { median } from "./stats.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const RUNS = arg("runs", 3)
const PAIRS = arg("pairs", 9)
const TOKENS = arg("tokens", 128)
const WRITE = !process.argv.includes("--no-write")
const CONTEXT = 1024
const THREADS = autoThreads()
const SYSTEM = "Be brief."
const PROMPT = "Tell me a long story about a llama who learns to spell."
const request: GenerateRequest = {
  messages: [{ role: "system", content: SYSTEM }, { role: "user", content: PROMPT }],
  maxTokens: TOKENS,
  seed: 1,
  temperature: 0.8
}

const log = (s: string) => process.stderr.write(`${s}\n`)

interface Sample {
  readonly tokensPerSecond: number
  readonly ttftMs: number
  readonly totalMs: number
  readonly tokens: number
}

// ---------------------------------------------------------------------------------------------
// The plain node-llama-cpp script (baseline) and node-llama-cpp with its defaults
// ---------------------------------------------------------------------------------------------

const lib = await import("node-llama-cpp")
const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error })

const plainRun = async (
  path: string,
  options: { readonly threads?: number; readonly contextSize?: number; readonly maxTokens?: number }
): Promise<Sample> => {
  const model = await llama.loadModel({ modelPath: path, useMmap: true })
  try {
    const context = await model.createContext({
      ...(options.contextSize !== undefined ? { contextSize: options.contextSize } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {})
    })
    const chat = new lib.LlamaChat({ contextSequence: context.getSequence() })
    let tokens = 0
    let first = 0
    const start = performance.now()
    await chat.generateResponse(
      [{ type: "system", text: SYSTEM }, { type: "user", text: PROMPT }, { type: "model", response: [] }],
      {
        maxTokens: options.maxTokens ?? TOKENS,
        seed: 1,
        temperature: 0.8,
        onToken: (t) => {
          if (first === 0) first = performance.now()
          tokens += t.length
        }
      }
    )
    const end = performance.now()
    chat.dispose()
    await context.dispose()
    return { tokensPerSecond: (tokens - 1) / ((end - first) / 1000), ttftMs: first - start, totalMs: end - start, tokens }
  } finally {
    await model.dispose()
  }
}

// ---------------------------------------------------------------------------------------------
// GgufBackend (a worker process per model, as shipped), and `llmspell run` as a child process
// ---------------------------------------------------------------------------------------------

// as shipped: each model in a worker process (isolation "process"); the isolation section compares both
if (existsSync(join(root, "dist", "gguf-worker.js"))) process.env.LLMSPELL_GGUF_WORKER ??= join(root, "dist", "gguf-worker.js")
const loader = LlamaLoaderLive.make()
const collect = (s: Stream.Stream<GenerateEvent, unknown>) =>
  Effect.map(Stream.runCollect(s), (c) => (Chunk.toReadonlyArray(c).at(-1) as { completion: Completion }).completion)
const fromCompletion = (c: Completion): Sample => ({
  tokensPerSecond: c.timings.tokensPerSecond ?? NaN,
  ttftMs: c.timings.timeToFirstTokenMs ?? NaN,
  totalMs: c.timings.totalMs,
  tokens: c.usage.completionTokens
})

interface BackendFigures {
  readonly cold: Completion
  readonly warm: ReadonlyArray<Completion>
  /** One request on the parallel-4 instance, warm. */
  readonly one: Completion
  readonly concurrent: { readonly wallMs: number; readonly tokens: number }
}

// parallel = 1 for the comparison with the plain script (one sequence, the same context); the
// concurrency figures use a second instance with parallel = 4 (llmspell's default)
const backendRun = (path: string, dir: string) =>
  Effect.scoped(Effect.gen(function*() {
    const instance = (parallel: number) =>
      makeBackend(
        ggufInstance({ modelDirectory: dir, threads: THREADS, contextSize: CONTEXT, parallel, maxLoadedModels: 1 }),
        loader,
        ModelDownloaderMock().service
      )
    const single = yield* instance(1)
    const cold = yield* collect(single.generate(path, request))
    const warm: Array<Completion> = []
    for (let i = 0; i < RUNS; i++) warm.push(yield* collect(single.generate(path, request)))
    const backend = yield* instance(4)
    yield* collect(backend.generate(path, request)) // loads it: `one` is a warm request
    const one = yield* collect(backend.generate(path, request))
    const start = performance.now()
    const four = yield* Effect.forEach(
      [1, 2, 3, 4],
      (seed) => collect(backend.generate(path, { ...request, seed })),
      { concurrency: "unbounded" }
    )
    const wallMs = performance.now() - start
    return {
      cold,
      warm,
      one,
      concurrent: { wallMs, tokens: four.reduce((n, c) => n + c.usage.completionTokens, 0) }
    }
  }))

const cliRun = (path: string, home: string) =>
  new Promise<{ completion: Completion; wallMs: number }>((resolve, reject) => {
    const start = performance.now()
    const child = spawn(
      process.execPath,
      [join(root, "dist", "cli.js"), "run", "--model", path, "--system", SYSTEM, PROMPT, "--max-tokens", String(TOKENS), "--seed", "1", "--temperature", "0.8", "--json"],
      {
        env: {
          HOME: home,
          PATH: process.env["PATH"] ?? "",
          LLMSPELL_GGUF_THREADS: String(THREADS),
          LLMSPELL_GGUF_CONTEXT_SIZE: String(CONTEXT)
        },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    let out = ""
    let err = ""
    child.stdout.on("data", (c: Buffer) => void (out += c.toString()))
    child.stderr.on("data", (c: Buffer) => void (err += c.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`llmspell run exited ${code}: ${err}`))
      resolve({ completion: JSON.parse(out) as Completion, wallMs: performance.now() - start })
    })
  })

// ---------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------

const dir = await mkdtemp(join(os.tmpdir(), "llmspell-bench-gguf-"))
const home = join(dir, "home")
const hasCli = existsSync(join(root, "dist", "cli.js"))
if (!hasCli) log("dist/cli.js missing: run `npm run build` first; skipping the CLI rows")

interface Row {
  readonly type: string
  readonly sizeMiB: number
  readonly plain: Sample
  readonly plain2: Sample
  readonly defaults: Sample
  readonly backendWarm: Sample
  readonly backendCold: Completion
  readonly warmLatencyMs: number
  readonly warmReloaded: boolean
  readonly cli: Sample | undefined
  readonly cliWallMs: number | undefined
  readonly concurrentTps: number
  readonly oneOnParallel4: Sample
}

const ONLY = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined
const ONLY_ISOLATION = ONLY === "isolation"
const ONLY_GRAMMAR = ONLY === "grammar"
if (ONLY === "embed") {
  await runEmbeddingBench({ runs: Math.max(RUNS, 3), threads: THREADS, write: WRITE })
  process.exit(0)
}
const rows: Array<Row> = []
try {
  for (const type of ONLY !== undefined ? [] : (["F16", "Q8_0"] as const)) {
    const path = join(dir, `bench-60m-${type}.gguf`)
    log(`writing ${type} model…`)
    await writeTinyLlamaGguf(path, {
      vocabSize: 32000,
      embeddingLength: 512,
      blockCount: 8,
      headCount: 8,
      contextLength: CONTEXT,
      tensorType: type,
      name: `bench-60m-${type}`
    })
    const sizeMiB = (await readFile(path)).length / 2 ** 20
    const plain: Array<Sample> = []
    const plain2: Array<Sample> = []
    const cli: Array<{ completion: Completion; wallMs: number }> = []
    const backends: Array<BackendFigures> = []
    // interleaved: machine load drifts, so every variant gets the same mix of good and bad moments
    for (let r = 0; r < RUNS; r++) {
      log(`${type} round ${r + 1}/${RUNS}`)
      plain.push(await plainRun(path, { threads: THREADS, contextSize: CONTEXT }))
      backends.push(await Effect.runPromise(backendRun(path, dir)))
      if (hasCli) cli.push(await cliRun(path, home))
      plain2.push(await plainRun(path, { threads: 2, contextSize: CONTEXT }))
    }
    log(`${type} node-llama-cpp defaults`)
    const defaults = await plainRun(path, { maxTokens: 16 })
    const warm = backends.flatMap((b) => b.warm.map(fromCompletion))
    const sampleOf = (xs: ReadonlyArray<Sample>): Sample => ({
      tokensPerSecond: median(xs.map((x) => x.tokensPerSecond)),
      ttftMs: median(xs.map((x) => x.ttftMs)),
      totalMs: median(xs.map((x) => x.totalMs)),
      tokens: median(xs.map((x) => x.tokens))
    })
    rows.push({
      type,
      sizeMiB,
      plain: sampleOf(plain),
      plain2: sampleOf(plain2),
      defaults,
      backendWarm: sampleOf(warm),
      backendCold: backends[0]!.cold,
      warmLatencyMs: median(backends.map((b) => b.warm[0]!.timings.totalMs)),
      warmReloaded: backends.some((b) => b.warm.some((c) => c.timings.loadMs !== 0)),
      cli: hasCli ? sampleOf(cli.map((c) => fromCompletion(c.completion))) : undefined,
      cliWallMs: hasCli ? median(cli.map((c) => c.wallMs)) : undefined,
      concurrentTps: median(backends.map((b) => b.concurrent.tokens / (b.concurrent.wallMs / 1000))),
      oneOnParallel4: sampleOf(backends.map((b) => fromCompletion(b.one)))
    })
  }
} catch (e) {
  await rm(dir, { recursive: true, force: true })
  await llama.dispose()
  throw e
}

let isolation = ""
let grammar = ""
try {
  if (!ONLY_GRAMMAR) isolation = await isolationSection({ dir, runs: RUNS, pairs: PAIRS, tokens: TOKENS, threads: THREADS, plainRun, log })
  if (!ONLY_ISOLATION) grammar = await grammarSection({ dir, runs: RUNS, threads: THREADS, log })
} finally {
  await rm(dir, { recursive: true, force: true })
  await llama.dispose()
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–")
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "–")
const ratio = (x: number, base: number) => (Number.isFinite(x) && base > 0 ? `${(x / base).toFixed(2)}×` : "–")

const nodeLlamaCppVersion = (JSON.parse(
  await readFile(join(root, "node_modules", "node-llama-cpp", "package.json"), "utf8")
) as { version: string }).version
const lines: Array<string> = []
lines.push("## GGUF inference (bench:gguf)", "")
lines.push(
  "Command: `npm run build && npm run bench:gguf` (`node --import tsx bench/gguf.ts [--runs N] [--pairs N] [--tokens N]`).",
  `A generated llama (vocabulary 32000, dim 512, 8 layers, 8 heads: ~60M parameters), F16 and Q8_0, in a temp`,
  `directory deleted afterwards. Each request: a system prompt + one user message through the model's chat`,
  `template, ${TOKENS} tokens, seed 1, temperature 0.8, context ${CONTEXT}, ${THREADS} thread(s) (\`threads = "auto"\` here).`,
  `Baseline: a plain node-llama-cpp script (LlamaChat, same threads and context, model already loaded) in the same`,
  `process, interleaved with every other variant, ${RUNS} rounds, medians. tokens/s = (tokens − 1) / (time from the first`,
  "to the last token); time to first token (TTFT) from the request (model loaded; for `llmspell run` from the",
  "process's own request start, so it includes loading the model and llama.cpp).",
  ""
)
lines.push(
  `Machine: ${availableCores()} cores (\`os.availableParallelism()\` = ${os.availableParallelism()}), ${os.cpus()[0]?.model ?? "?"},`,
  `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, no GPU, Node ${process.version}, node-llama-cpp ${nodeLlamaCppVersion}; ${new Date().toISOString().slice(0, 10)}; load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(" / ")} (other jobs shared the machine).`,
  ""
)
lines.push("| model | variant | tokens/s | × plain | TTFT | × plain |", "|---|---|---:|---:|---:|---:|")
for (const r of rows) {
  const row = (name: string, s: Sample | undefined) =>
    s === undefined
      ? undefined
      : `| ${r.type} (${r.sizeMiB.toFixed(0)} MiB) | ${name} | ${f1(s.tokensPerSecond)} | ${ratio(s.tokensPerSecond, r.plain.tokensPerSecond)} | ${f1(s.ttftMs)} ms | ${ratio(s.ttftMs, r.plain.ttftMs)} |`
  for (
    const line of [
      row(`plain node-llama-cpp, ${THREADS} thread(s) (baseline)`, r.plain),
      row("GgufBackend, worker process (warm, parallel 1)", r.backendWarm),
      row("GgufBackend, worker process (warm, parallel 4: 4 sequences in the context)", r.oneOnParallel4),
      row("`llmspell run` (new process)", r.cli),
      row("plain node-llama-cpp, 2 threads", r.plain2),
      row("node-llama-cpp defaults (threads, context auto; 16 tokens)", r.defaults)
    ]
  ) if (line !== undefined) lines.push(line)
}
lines.push("")
lines.push("| model | cold request: load / TTFT | warm request: total latency | reloaded on warm request | 4 concurrent (parallel 4): total tokens/s | × one request on it |", "|---|---:|---:|---|---:|---:|")
for (const r of rows) {
  lines.push(
    `| ${r.type} | ${f0(r.backendCold.timings.loadMs)} ms / ${f0(r.backendCold.timings.timeToFirstTokenMs ?? NaN)} ms | ${f0(r.warmLatencyMs)} ms | ${r.warmReloaded ? "**yes**" : "no (loadMs = 0)"} | ${f1(r.concurrentTps)} | ${ratio(r.concurrentTps, r.oneOnParallel4.tokensPerSecond)} |`
  )
}
if (rows.some((r) => r.cliWallMs !== undefined)) {
  lines.push("", `\`llmspell run\` wall time per process (start, load, ${TOKENS} tokens, exit): ${rows.map((r) => `${r.type} ${f0(r.cliWallMs!)} ms`).join(", ")}.`)
}
lines.push(
  "",
  "Targets: GgufBackend ≥ 0.98× the plain script's tokens/s; no reload on a warm request.",
  `Result: ${rows.map((r) => `${r.type} ${ratio(r.backendWarm.tokensPerSecond, r.plain.tokensPerSecond)}`).join(", ")}; warm reload: ${rows.some((r) => r.warmReloaded) ? "yes (target missed)" : "none"}.`,
  ""
)
lines.push(
  "Notes:",
  "- A warm GgufBackend request reuses the prompt prefix its context sequence already holds (LlamaChat keeps",
  "  the KV cache of the previous request), so its TTFT is below the plain script's, which evaluates the prompt",
  "  in a fresh context every time.",
  "- The 2-thread rows are why `threads = \"auto\"` is cores − 1: llama.cpp's workers spin while they wait for",
  "  each other, and with the JS thread and other processes on the same 2 cores, 2 threads lose badly; node-llama-cpp's",
  "  defaults are worse still.",
  "- `llmspell run` TTFT counts from the request inside the new process, so it includes creating the Llama and",
  "  loading the model.",
  "- 4 concurrent requests give less total throughput than one on this CPU, and not because of llmspell: a plain",
  "  node-llama-cpp script with 4 sequences in one context measured the same (271 vs 271 tok/s on Q8_0, in a separate",
  "  experiment). node-llama-cpp does batch the sequences, but with 1 thread a batch of 3 tokens takes ~10.2 ms against",
  "  2.7 ms for one, so batching gains nothing here; the row's wall time also includes the 4 prompts' evaluation.",
  ""
)
const section = lines.join("\n")
if (ONLY === undefined) process.stdout.write(`${section}\n`)
if (!ONLY_GRAMMAR) process.stdout.write(`${isolation}\n`)
if (!ONLY_ISOLATION) process.stdout.write(`${grammar}\n`)

/** Replaces the section that starts with `heading` (up to the next `## `), or appends it. */
const replaceSection = (current: string, heading: string, text: string) => {
  const start = current.indexOf(heading)
  if (start < 0) return `${current.trimEnd()}\n\n${text}`
  const after = current.indexOf("\n## ", start + 1)
  return current.slice(0, start) + text + (after >= 0 ? `\n${current.slice(after + 1)}` : "")
}

if (WRITE) {
  const file = join(root, "BENCHMARKS.md")
  let next = existsSync(file) ? await readFile(file, "utf8") : "# Benchmarks\n"
  if (ONLY === undefined) next = replaceSection(next, "## GGUF inference (bench:gguf)", section)
  if (!ONLY_GRAMMAR) next = replaceSection(next, "## GGUF worker isolation (bench:gguf)", isolation)
  if (!ONLY_ISOLATION) next = replaceSection(next, "## GGUF schema-constrained generation (bench:gguf)", grammar)
  await writeFile(file, next.endsWith("\n") ? next : `${next}\n`)
  log("BENCHMARKS.md updated")
}

// ---------------------------------------------------------------------------------------------
// Embeddings (bench/ggufEmbed.ts): embeddings per second against a plain createEmbeddingContext script
// ---------------------------------------------------------------------------------------------

if (ONLY === undefined) await runEmbeddingBench({ runs: Math.max(RUNS, 3), threads: THREADS, write: WRITE })

/**
 * `npm run bench:serve`: what `llmspell serve` costs and saves (issue 13), on a generated llama
 * (default ~290 MB Q8_0: vocab 32000, dim 1024, 16 layers, ff 2816; `--small` for a ~110 MB F16
 * one), written to a temp dir and deleted afterwards. One run measures, each against a baseline
 * measured in the same run (interleaved, medians of `--runs` repeats):
 *
 * 1. `llmspell run --host <url>` against a warm `llmspell serve` (a child process started as a
 *    user does: `node dist/cli.js serve --port 0 --json`) vs an embedded `llmspell run --local`
 *    that loads the model itself: wall time of the whole CLI process, at `--short` tokens (the
 *    headline: load + startup, what serve saves; target ≤ 0.2×) and at `--tokens`;
 * 2. tokens/s of one stream through `/api/chat` and `/v1/chat/completions` (a server in this
 *    process over the whole stack, isolation "process" as shipped) vs `LocalLLM.generate` on that
 *    same stack with no HTTP in between (target ≥ 0.97×);
 * 3. total tokens/s of 4 concurrent `/v1/chat/completions` streams on the serve child (`parallel`
 *    4) vs `bench/raw4.ts`, plain node-llama-cpp with 4 sequences of one context (target ≥ 0.95×);
 * 4. a load run on the serve child: `--requests` requests from `--clients` concurrent clients,
 *    every tenth aborted after its first chunk; status codes (only 200 and 503 allowed), RSS of
 *    the server and its GGUF workers before (warm: after a burst of the load's shape) vs after each of two rounds (once idle; target
 *    within 10%), and every context sequence free afterwards (`llmspell ps --json`).
 *
 * Options: --runs N (5), --tokens N (64), --short N (4), --requests N (400; 100 with --small),
 * --clients N (16), --load-tokens N (16), --load-rounds N (2), --pairs N (3: one-stream triples per run), --small, --no-write,
 * --only load (the load run alone: statuses, errors and sequences as one JSON line; BENCHMARKS.md untouched). Build first (`npm run build`).
 * Progress goes to stderr, the section to stdout and BENCHMARKS.md.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type ChildProcess, spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { readFile, rm, writeFile } from "node:fs/promises"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { autoThreads } from "../src/layers/gguf/cpu.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import { LocalLLM, type LocalLLMService } from "../src/services/LocalLLM.js"
import * as Server from "../src/serve/Server.js"
import { benchWorkspace } from "./benchModels.js"
import { median } from "./stats.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const cli = join(root, "dist", "cli.js")
const SMALL = process.argv.includes("--small")
const WRITE = !process.argv.includes("--no-write")
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const RUNS = arg("runs", 5)
const TOKENS = arg("tokens", 64)
const SHORT = arg("short", 4)
const REQUESTS = arg("requests", SMALL ? 100 : 400)
const CLIENTS = arg("clients", 16)
const LOAD_TOKENS = arg("load-tokens", 16)
const LOAD_ROUNDS = arg("load-rounds", 2)
const PAIRS = arg("pairs", 3)
/** `--only load`: the load run alone (no CLI, one-stream or 4-stream rows; BENCHMARKS.md untouched). */
const LOAD_ONLY = process.argv.includes("--only") && process.argv[process.argv.indexOf("--only") + 1] === "load"
const ABORT_EVERY = 10
const SEQUENCES = 4
const THREADS = autoThreads()
const CONTEXT = 1024
const TEMPERATURE = 0.8
const PROMPT = "Tell me a long story about a llama who learns to spell."
const started = performance.now()
const log = (s: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${s}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const { dir, home, models, file, sizeMiB, spec: SPEC } = await benchWorkspace("serve", SMALL ? "small" : "large", CONTEXT)
const messages = [{ role: "user" as const, content: PROMPT }]
log(`model: ${sizeMiB.toFixed(0)} MiB, threads ${THREADS}, ${TOKENS}/${SHORT} tokens, ${RUNS} runs, load run ${REQUESTS} requests × ${CLIENTS} clients`)

// ---- the CLI's environment: a scratch HOME (no user config, its own serve state file), the same
// threads and context as the in-process stack, and `parallel` 4 for everything the CLI starts
const cliEnv = {
  HOME: home,
  PATH: process.env["PATH"] ?? "",
  HF_HUB_OFFLINE: "1",
  LLMSPELL_MODELS_DIR: models,
  LLMSPELL_GGUF_THREADS: String(THREADS),
  LLMSPELL_GGUF_CONTEXT_SIZE: String(CONTEXT),
  LLMSPELL_GGUF_PARALLEL: String(SEQUENCES)
}

/** Runs a child to its end; its wall time (ms) and stdout. Fails on a non-zero exit. */
const child = (args: ReadonlyArray<string>, cwd = dir) =>
  new Promise<{ ms: number; stdout: string }>((resolve, reject) => {
    const start = performance.now()
    const p = spawn(process.execPath, args, { cwd, env: cliEnv, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    p.stdout.on("data", (c: Buffer) => void (out += c.toString()))
    p.stderr.on("data", (c: Buffer) => void (err += c.toString()))
    p.on("error", reject)
    p.on("close", (code) =>
      code === 0 ? resolve({ ms: performance.now() - start, stdout: out }) : reject(new Error(`${args.join(" ")}: exit ${code}: ${err}`)))
  })

// ---- the serve child: what a user starts
const serve: ChildProcess = spawn(process.execPath, [cli, "serve", "--port", "0", "--json"], { cwd: dir, env: cliEnv, stdio: ["ignore", "ignore", "pipe"] })
const serveExited = new Promise<number | null>((resolve) => serve.on("close", (code) => resolve(code)))
// whatever fails before the end (the finally below stops it in order), the server does not outlive the bench
process.on("exit", () => serve.kill())
let serveLog = ""
const serveUrl = await new Promise<string>((resolve, reject) => {
  serve.stderr!.on("data", (c: Buffer) => {
    // one access-log line per request: keep only the start (to explain a failed start)
    if (serveLog.length < 20_000) serveLog += c.toString("utf8")
    const line = serveLog.split("\n").find((l) => l.includes(`"listening"`))
    if (line) resolve((JSON.parse(line) as { url: string }).url)
  })
  serve.on("close", () => reject(new Error(`llmspell serve ended: ${serveLog}`)))
})
log(`llmspell serve (pid ${serve.pid}) at ${serveUrl}`)

// ---- the in-process stack and server for (2): parallel 1, as a single stream needs
const config = {
  providers: {
    gguf: { provider_type: "gguf", model_directory: models, threads: THREADS, context_size: CONTEXT, parallel: 1 }
  },
  hub: { offline: true },
  stores: { ollama: false, hf_cache: false, lmstudio: false, node_llama_cpp: false }
}
const scope = Effect.runSync(Scope.make())
const context = await Effect.runPromise(Layer.buildWithScope(LlmspellLive.layerFromObject(config, { home: join(dir, "home-inprocess"), env: {} }), scope))
const llm = context.unsafeMap.get(LocalLLM.key) as LocalLLMService
const inProcess = await Effect.runPromise(Server.start({ port: 0 }).pipe(Effect.provide(context), Scope.extend(scope)))

// ---- (2) one stream: HTTP vs LocalLLM.generate, all timed the same way on the caller's side:
// (tokens − 1) over the time from the first text to the end of the stream
const direct = async (): Promise<number> => {
  let first: number | undefined
  let tokens: number | undefined
  await Effect.runPromise(
    Stream.runForEach(llm.generate(SPEC, { messages, maxTokens: TOKENS, seed: 1, temperature: TEMPERATURE }), (event) =>
      Effect.sync(() => {
        if (event._tag === "TextDelta") first ??= performance.now()
        if (event._tag === "Finish") tokens = event.completion.usage.completionTokens
      }))
  )
  const end = performance.now()
  if (first === undefined || tokens === undefined) throw new Error("no completion")
  return (tokens - 1) / ((end - first) / 1000)
}

interface StreamResult {
  readonly status: number
  /** Content chunks read (0 for an error body). */
  readonly firstAt: number | undefined
  readonly endAt: number
  readonly records: Array<any>
  readonly aborted: boolean
  readonly body: string
}

/** POSTs and reads the whole answer (or only up to its first chunk, then aborts). */
const post = async (url: string, body: unknown, abortAfterFirst = false): Promise<StreamResult> => {
  const controller = new AbortController()
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: controller.signal })
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ""
  let first: number | undefined
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    first ??= performance.now()
    text += decoder.decode(value, { stream: true })
    if (abortAfterFirst && response.status === 200) {
      controller.abort()
      await reader.cancel().catch(() => {})
      return { status: response.status, firstAt: first, endAt: performance.now(), records: [], aborted: true, body: text }
    }
  }
  const records = response.status === 200
    ? text.split("\n").map((l) => l.replace(/^data: /, "").trim()).filter((l) => l !== "" && l !== "[DONE]").map((l) => JSON.parse(l))
    : []
  return { status: response.status, firstAt: first, endAt: performance.now(), records, aborted: false, body: text }
}

const openAiBody = (maxTokens: number, seed: number) => ({
  model: SPEC,
  messages,
  max_tokens: maxTokens,
  seed,
  temperature: TEMPERATURE,
  stream: true,
  stream_options: { include_usage: true }
})
const ollamaBody = (maxTokens: number, seed: number) => ({ model: SPEC, messages, options: { num_predict: maxTokens, seed, temperature: TEMPERATURE } })
/** Tokens after the first, over the time from the first chunk to the end (the client's side of a stream). */
const rate = (r: StreamResult, tokens: number) => (tokens - 1) / ((r.endAt - r.firstAt!) / 1000)
const ollamaChat = async () => {
  const r = await post(`${inProcess.url}/api/chat`, ollamaBody(TOKENS, 1))
  return rate(r, r.records.at(-1).eval_count)
}
const openaiChat = async () => {
  const r = await post(`${inProcess.url}/v1/chat/completions`, openAiBody(TOKENS, 1))
  return rate(r, r.records.at(-1).usage.completion_tokens)
}

// ---- (1) the CLI against the warm server vs embedded
const runArgs = (tokens: number) => ["run", "--model", SPEC, PROMPT, "--max-tokens", String(tokens), "--seed", "1"]
const embeddedRun = async (tokens: number) => (await child([cli, "--local", ...runArgs(tokens)])).ms
const warmRun = async (tokens: number) => (await child([cli, "--host", serveUrl, ...runArgs(tokens)])).ms

// ---- (3) 4 concurrent streams vs plain node-llama-cpp with 4 sequences
const served4 = async (): Promise<number> => {
  const start = performance.now()
  const results = await Promise.all(
    Array.from({ length: SEQUENCES }, (_, i) => post(`${serveUrl}/v1/chat/completions`, openAiBody(TOKENS, i + 1)))
  )
  const end = Math.max(...results.map((r) => r.endAt))
  const tokens = results.reduce((n, r) => n + r.records.at(-1).usage.completion_tokens, 0)
  return tokens / ((end - start) / 1000)
}
const raw4 = async (): Promise<number> => {
  const { stdout } = await child([
    "--import",
    "tsx",
    join(root, "bench", "raw4.ts"),
    "--model", file,
    "--threads", String(THREADS),
    "--context", String(CONTEXT),
    "--tokens", String(TOKENS),
    "--sequences", String(SEQUENCES),
    "--prompt", PROMPT,
    "--temperature", String(TEMPERATURE)
  ], root) // where tsx resolves
  const { tokens, wallMs } = JSON.parse(stdout.trim().split("\n").at(-1)!) as { tokens: Array<number>; wallMs: number }
  return tokens.reduce((a, b) => a + b, 0) / (wallMs / 1000)
}

// ---- (4) the load run
/** The pids of a process and all its descendants (the server's GGUF workers), from /proc. */
const processTree = (pid: number): Array<number> => {
  const parents = new Map<number, Array<number>>()
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)])
    } catch {
      // ended while we looked
    }
  }
  const tree = [pid]
  for (let i = 0; i < tree.length; i++) tree.push(...(parents.get(tree[i]!) ?? []))
  return tree
}
/** RSS (MiB) of the server process and of its descendants (the GGUF workers), from /proc. */
const rssMiB = (pid: number) => {
  const of = (p: number) => {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0) / 1024
    } catch {
      return 0 // ended while we looked
    }
  }
  const server = of(pid)
  const workers = processTree(pid).slice(1).reduce((n, p) => n + of(p), 0)
  return { server, workers, total: server + workers }
}

interface PsModel {
  readonly name: string
  readonly activeRequests?: number
  readonly sequences?: { readonly total: number; readonly busy: number }
}
/** What `llmspell ps --json` says about the server's models. */
const ps = async (): Promise<Array<PsModel>> =>
  (JSON.parse((await child([cli, "--host", serveUrl, "ps", "--json"])).stdout) as { models: Array<PsModel> }).models
const isIdle = (loaded: ReadonlyArray<PsModel>) =>
  loaded.length > 0 && loaded.every((m) => (m.activeRequests ?? 0) === 0 && m.sequences !== undefined && m.sequences.busy === 0)
/** Polls `ps --json` until no request is active and every sequence is free (or 60 s pass); the last answer. */
const waitIdle = async () => {
  const deadline = performance.now() + 60_000
  for (;;) {
    const loaded = await ps()
    if (isIdle(loaded) || performance.now() > deadline) return loaded
    await sleep(500)
  }
}

const loadRun = async (REQUESTS: number) => {
  const statuses = new Map<number, number>()
  const errors: Array<string> = []
  let aborted = 0
  let next = 0
  let done = 0
  const start = performance.now()
  const client = async () => {
    for (let i = next++; i < REQUESTS; i = next++) {
      const abort = i % ABORT_EVERY === ABORT_EVERY - 1
      const openai = i % 2 === 0
      try {
        const r = openai
          ? await post(`${serveUrl}/v1/chat/completions`, openAiBody(LOAD_TOKENS, i), abort)
          : await post(`${serveUrl}/api/chat`, ollamaBody(LOAD_TOKENS, i), abort)
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
        if (r.status !== 200 && r.status !== 503) errors.push(`#${i} ${openai ? "/v1" : "/api/chat"}: ${r.status} ${r.body.slice(0, 200)}`)
        if (r.aborted) aborted++
        // a 200 stream must end with its completion record; an in-band error is an error too
        if (r.status === 200 && !r.aborted) {
          const last = r.records.at(-1)
          const complete = openai ? last?.usage?.completion_tokens > 0 && r.body.includes("data: [DONE]") : last?.done === true
          if (!complete) errors.push(`#${i} ${openai ? "/v1" : "/api/chat"}: incomplete stream: ${r.body.slice(-200)}`)
        }
      } catch (e) {
        errors.push(`#${i} ${openai ? "/v1" : "/api/chat"}: ${String(e)}`)
      }
      if (++done % 100 === 0) log(`load run: ${done}/${REQUESTS}`)
    }
  }
  await Promise.all(Array.from({ length: CLIENTS }, client))
  return { statuses, errors, aborted, ms: performance.now() - start }
}

const loadOnly = async () => {
  log(`load run only: warm-up burst of ${CLIENTS} requests`)
  const warmBurst = await loadRun(CLIENTS)
  await waitIdle()
  const rounds = [warmBurst]
  for (let r = 0; r < LOAD_ROUNDS; r++) {
    const round = await loadRun(REQUESTS)
    log(`load run ${r + 1}/${LOAD_ROUNDS}: ${REQUESTS} requests in ${(round.ms / 1000).toFixed(0)} s`)
    rounds.push(round)
  }
  const after = await waitIdle()
  const statuses = new Map<number, number>()
  for (const round of rounds) for (const [status, n] of round.statuses) statuses.set(status, (statuses.get(status) ?? 0) + n)
  const errors = rounds.flatMap((round) => round.errors)
  for (const e of errors.slice(0, 40)) log(`load run error: ${e}`)
  process.stdout.write(`${JSON.stringify({
    loadAverage: os.loadavg(),
    statuses: Object.fromEntries(statuses),
    errors: errors.length,
    aborted: rounds.reduce((n, round) => n + round.aborted, 0),
    sequences: after.map((m) => m.sequences),
    activeRequests: after.map((m) => m.activeRequests)
  })}\n`)
}

const fullRun = async () => {
  // warm up: both stacks loaded, every serve sequence has run once (as raw4's warm-up round does)
  log("warm-up")
  await direct()
  await post(`${inProcess.url}/v1/chat/completions`, openAiBody(4, 1))
  await served4()
  await warmRun(SHORT)
  await embeddedRun(SHORT)
  const samples = {
    direct: [] as Array<number>,
    ollama: [] as Array<number>,
    openai: [] as Array<number>,
    embeddedShort: [] as Array<number>,
    warmShort: [] as Array<number>,
    embeddedLong: [] as Array<number>,
    warmLong: [] as Array<number>,
    raw4: [] as Array<number>,
    served4: [] as Array<number>
  }
  for (let i = 0; i < RUNS; i++) {
    // one-stream triples, back to back: single streams swing by ±10% on a shared machine, so each
    // run takes several and the ratio is the median over all of them
    for (let j = 0; j < PAIRS; j++) {
      samples.direct.push(await direct())
      samples.ollama.push(await ollamaChat())
      samples.openai.push(await openaiChat())
    }
    samples.warmShort.push(await warmRun(SHORT))
    samples.embeddedShort.push(await embeddedRun(SHORT))
    samples.embeddedLong.push(await embeddedRun(TOKENS))
    samples.warmLong.push(await warmRun(TOKENS))
    samples.served4.push(await served4())
    samples.raw4.push(await raw4())
    log(
      `run ${i + 1}/${RUNS}: direct ${samples.direct.at(-1)!.toFixed(1)} tok/s, /api/chat ${samples.ollama.at(-1)!.toFixed(1)}, /v1 ${samples.openai.at(-1)!.toFixed(1)}; ` +
        `${SHORT} tokens: warm ${samples.warmShort.at(-1)!.toFixed(0)} ms, embedded ${samples.embeddedShort.at(-1)!.toFixed(0)} ms; ` +
        `${TOKENS} tokens: warm ${samples.warmLong.at(-1)!.toFixed(0)} ms, embedded ${samples.embeddedLong.at(-1)!.toFixed(0)} ms; ` +
        `4 streams: served ${samples.served4.at(-1)!.toFixed(1)} tok/s, raw ${samples.raw4.at(-1)!.toFixed(1)}`
    )
  }
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<keyof typeof samples, number>

  // The baseline is a warm server: one burst of the load's own shape (every client, so every
  // sequence, and an abort) has run, so the KV cache pages each sequence touches and the server's
  // JIT and buffers are counted before as after; then two rounds of the load: the first against
  // the target, the second to show whether memory keeps growing (a leak) or has levelled off.
  log(`load run: warm-up burst of ${CLIENTS} requests, then RSS`)
  const warmBurst = await loadRun(CLIENTS)
  await waitIdle()
  const rssBefore = rssMiB(serve.pid!)
  const load = await loadRun(REQUESTS)
  log(`load run: ${REQUESTS} requests in ${(load.ms / 1000).toFixed(0)} s; waiting for the server to go idle`)
  const after = await waitIdle()
  const rssAfter = rssMiB(serve.pid!)
  const second = LOAD_ROUNDS > 1 ? await loadRun(REQUESTS) : undefined
  const afterSecond = second !== undefined ? await waitIdle() : after
  const rssAfterSecond = second !== undefined ? rssMiB(serve.pid!) : undefined
  for (const e of [...warmBurst.errors, ...(second?.errors ?? [])].slice(0, 20)) log(`load run error: ${e}`)
  const errorCount = load.errors.length + (second?.errors.length ?? 0) + warmBurst.errors.length
  const rssText = (r: ReturnType<typeof rssMiB>) => `${r.total.toFixed(0)} MiB (server ${r.server.toFixed(0)} + workers ${r.workers.toFixed(0)})`
  log(`RSS before ${rssText(rssBefore)}, after ${rssText(rssAfter)}${rssAfterSecond !== undefined ? `, after a second round ${rssText(rssAfterSecond)}` : ""}`)
  for (const [status, n] of second?.statuses ?? []) load.statuses.set(status, (load.statuses.get(status) ?? 0) + n)
  const statusText = [...load.statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s} ×${n}`).join(", ")
  const sequencesText = afterSecond.map((mo) =>
    mo.sequences !== undefined ? `${mo.sequences.busy} of ${mo.sequences.total} busy` : "not reported").join("; ") || "no model loaded"
  const activeText = afterSecond.map((mo) => `${mo.activeRequests ?? "?"}`).join(", ")
  for (const e of load.errors.slice(0, 20)) log(`load run error: ${e}`)
  if (load.errors.length > 20) log(`… and ${load.errors.length - 20} more errors`)

  /** The median of the per-run ratios (each pair measured back to back), steadier than a ratio of medians on a noisy machine. */
  const paired = (k: keyof typeof samples, base: keyof typeof samples) => median(samples[k].map((v, i) => v / samples[base][i]!))
  const spread = (k: keyof typeof samples, digits: number) =>
    samples[k].length > 1 ? `${Math.min(...samples[k]).toFixed(digits)}–${Math.max(...samples[k]).toFixed(digits)}` : ""
  const cores = os.availableParallelism()
  const loadAverage = os.loadavg()[0]!
  const section = [
    "## Serve: warm server vs embedded, HTTP overhead, concurrency, load (bench:serve)",
    "",
    `Command: \`npm run build && npm run bench:serve\` (\`node --import tsx bench/serve.ts [--runs N] [--tokens N] [--short N] [--requests N] [--clients N] [--load-tokens N] [--load-rounds N] [--pairs N] [--small]\`). ` +
    `A generated llama of ${sizeMiB.toFixed(0)} MiB${SMALL ? " (F16, --small)" : " (Q8_0: vocab 32000, dim 1024, 16 layers, ff 2816)"}, ${THREADS} thread(s), context ${CONTEXT} per sequence, temperature ${TEMPERATURE}; medians of ${RUNS} runs, interleaved, after a warm-up of each path.`,
    "",
    `- **Server**: a real \`llmspell serve --port 0\` child process (what a user starts) for the CLI, 4-stream and load rows, GGUF \`parallel\` ${SEQUENCES}, isolation "process" as shipped; the embedded \`llmspell run --local\` gets the same config (environment, scratch HOME).`,
    `- **CLI rows**: wall time of the whole \`llmspell run\` process; ${SHORT} tokens measures the load and start-up a server saves, ${TOKENS} tokens adds generation.`,
    `- **One-stream rows**: a server in the bench process over its own stack (\`parallel\` 1); "direct" is \`LocalLLM.generate\` on that same stack. All three are timed on the caller's side: (tokens − 1) over the time from the first text to the end; ${PAIRS} back-to-back triples per run (${PAIRS * RUNS} in all).`,
    `- **4-stream rows**: total tokens over the wall time from the first request to the last end, ${TOKENS} tokens each, against \`bench/raw4.ts\`: plain node-llama-cpp, one context with ${SEQUENCES} sequences and a \`LlamaChat\` on each, same threads, prompt and sampling, load excluded, after a warm-up round.`,
    `- **Load run**: ${REQUESTS} streaming requests (${LOAD_TOKENS} tokens, \`/v1/chat/completions\` and \`/api/chat\` alternately) from ${CLIENTS} concurrent clients, every ${ABORT_EVERY}th aborted after its first chunk. RSS is the server process plus its GGUF worker processes, before (warm: after a burst of ${CLIENTS} requests of the same shape, so every sequence has run) and after each of ${LOAD_ROUNDS} rounds (once \`llmspell ps --json\` shows no request active and every sequence free, or 60 s). Ratios are medians of the per-run ratios (each pair measured back to back).`,
    "",
    `Machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model.trim() ?? "?"}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, load average ${loadAverage.toFixed(1)}; whole run ${((performance.now() - started) / 60_000).toFixed(1)} min.` +
    (loadAverage > cores ? ` **Measured on a busy machine** (load average above the ${cores} cores): single runs swing widely (see the min–max column); re-run on a quiet machine before reading these as results.` : ""),
    "",
    "| what | median | min–max | ratio | target |",
    "|---|---:|---:|---:|---:|",
    `| embedded \`llmspell run --local\`, ${SHORT} tokens (loads the model) | ${m.embeddedShort.toFixed(0)} ms | ${spread("embeddedShort", 0)} | 1.00 | |`,
    `| \`llmspell run --host\` against the warm server, ${SHORT} tokens | ${m.warmShort.toFixed(0)} ms | ${spread("warmShort", 0)} | ${paired("warmShort", "embeddedShort").toFixed(2)}× | ≤ 0.2× |`,
    `| embedded \`llmspell run --local\`, ${TOKENS} tokens | ${m.embeddedLong.toFixed(0)} ms | ${spread("embeddedLong", 0)} | 1.00 | |`,
    `| \`llmspell run --host\` against the warm server, ${TOKENS} tokens | ${m.warmLong.toFixed(0)} ms | ${spread("warmLong", 0)} | ${paired("warmLong", "embeddedLong").toFixed(2)}× | |`,
    `| \`LocalLLM.generate\` (no HTTP) | ${m.direct.toFixed(1)} tok/s | ${spread("direct", 0)} | 1.00 | |`,
    `| \`/api/chat\` stream | ${m.ollama.toFixed(1)} tok/s | ${spread("ollama", 0)} | ${paired("ollama", "direct").toFixed(2)}× | ≥ 0.97× |`,
    `| \`/v1/chat/completions\` stream | ${m.openai.toFixed(1)} tok/s | ${spread("openai", 0)} | ${paired("openai", "direct").toFixed(2)}× | ≥ 0.97× |`,
    `| plain node-llama-cpp, ${SEQUENCES} sequences (bench/raw4.ts) | ${m.raw4.toFixed(1)} tok/s total | ${spread("raw4", 0)} | 1.00 | |`,
    `| ${SEQUENCES} concurrent \`/v1/chat/completions\` streams | ${m.served4.toFixed(1)} tok/s total | ${spread("served4", 0)} | ${paired("served4", "raw4").toFixed(2)}× | ≥ 0.95× |`,
    `| load run: status codes (${LOAD_ROUNDS > 1 ? `2 × ` : ""}${REQUESTS} requests, ${load.aborted + (second?.aborted ?? 0)} aborted mid-stream) | ${statusText}; ${errorCount} error(s) | | | only 200 and 503 |`,
    `| load run: server + worker RSS before (warm) | ${rssText(rssBefore)} | | 1.00 | |`,
    `| load run: server + worker RSS after ${REQUESTS} requests, idle | ${rssText(rssAfter)} | | ${(rssAfter.total / rssBefore.total).toFixed(2)}× | ≤ 1.10× |`,
    ...(rssAfterSecond !== undefined
      ? [`| load run: … after another ${REQUESTS}, idle | ${rssText(rssAfterSecond)} | | ${(rssAfterSecond.total / rssBefore.total).toFixed(2)}× | (levelled off: no leak) |`]
      : []),
    `| load run: context sequences after (\`ps --json\`) | ${sequencesText}; active requests ${activeText} | | | all free |`,
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
}

try {
  await (LOAD_ONLY ? loadOnly() : fullRun())
} finally {
  serve.kill("SIGINT")
  await serveExited
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await rm(dir, { recursive: true, force: true })
}

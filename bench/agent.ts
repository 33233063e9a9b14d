/**
 * `npm run bench:agent`: an agent-shaped session through `llmspell serve`'s Anthropic API
 * (issue 22's figures), on a generated llama (default ~275 MiB Q8_0: vocab 32000, dim 1024, 16
 * layers, ff 2816; `--small` for a ~110 MB F16 one), written to a temp dir and deleted afterwards.
 *
 * The session: a system prompt of at least `--system-tokens` tokens (6,000 by default, counted by
 * `/v1/messages/count_tokens` with the tools) and `--tools` tool definitions (20), a first user
 * turn, then `--turns` turns (5) that each resend the whole conversation with one more assistant
 * turn (a scripted text and tool_use) and its tool_result (a 12-line file listing), as an agent does. The
 * assistant turns are scripted, not the model's own words, so both sides below re-read the same
 * tokens after the prefix they share.
 *
 * Measured in one run, each against a baseline in the same run (medians of `--runs` sessions):
 * 1. time to first token of each turn after the first, streamed through `/v1/messages` of a server
 *    in this process (the whole stack, GGUF `parallel` 4 and the worker process as shipped), vs
 *    plain node-llama-cpp keeping one `LlamaChat` (one sequence) for the whole session, given the
 *    same chat history and functions (built by llmspell's own pure mapping, untimed). Target ≤ 1.15×:
 *    that needs the prefix of each turn to stay in the model's cache (issue 21).
 * 2. tokens/s of a streamed answer (`--rate-tokens`, 128) to the last turn through `/v1/messages`
 *    vs `LocalLLM.generate` on the same stack with the same request (no HTTP); `--pairs` (3)
 *    back-to-back pairs per run. Target ≥ 0.97×.
 * The cached prompt tokens each turn reports (`cache_read_input_tokens`) are printed beside.
 *
 * Options: --runs N (2), --turns N (5), --system-tokens N (6000), --tools N (20), --answer N (16
 * tokens per turn), --rate-tokens N (128), --pairs N (3), --context N (12288), --small, --no-write.
 * Build first (`npm run build`: the worker process runs dist/gguf-worker.js). Progress goes to
 * stderr, the section to stdout and BENCHMARKS.md.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { mkdirSync, statSync } from "node:fs"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { ChatHistoryItem, ChatModelFunctions } from "node-llama-cpp"
import { getLlama, LlamaChat, LlamaLogLevel, resolveChatWrapper } from "node-llama-cpp"
import type * as Wire from "../src/domain/AnthropicWire.js"
import { autoThreads } from "../src/layers/gguf/cpu.js"
import { generationPlan } from "../src/layers/gguf/JsonSchemaGrammar.js"
import { toHistory } from "../src/layers/gguf/llama.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import { LocalLLM, type LocalLLMService } from "../src/services/LocalLLM.js"
import { toGenerateRequest } from "../src/serve/AnthropicRequest.js"
import * as Server from "../src/serve/Server.js"
import { writeTinyLlamaGguf } from "../test/fixtures/ggufWriter.js"
import { benchModel } from "./benchModels.js"
import { median } from "./stats.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const SMALL = process.argv.includes("--small")
const WRITE = !process.argv.includes("--no-write")
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const RUNS = arg("runs", 2)
const TURNS = arg("turns", 5)
const SYSTEM_TOKENS = arg("system-tokens", 6000)
const TOOLS = arg("tools", 20)
const ANSWER = arg("answer", 16)
const RATE_TOKENS = arg("rate-tokens", 128)
const PAIRS = arg("pairs", 3)
const CONTEXT = arg("context", 12288)
const SEQUENCES = 4
const THREADS = autoThreads()
const started = performance.now()
const log = (s: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${s}\n`)

const dir = await mkdtemp(join(os.tmpdir(), "llmspell-bench-agent-"))
const models = join(dir, "models")
mkdirSync(models, { recursive: true })
const file = join(models, "agent.gguf")
await writeTinyLlamaGguf(
  file,
  benchModel(SMALL ? "small" : "large", CONTEXT, "agent")
)
const sizeMiB = statSync(file).size / 2 ** 20
const SPEC = "agent.gguf@gguf"
log(`model: ${sizeMiB.toFixed(0)} MiB, threads ${THREADS}, context ${CONTEXT} × ${SEQUENCES} sequences, ${RUNS} runs of 1 + ${TURNS} turns`)

// ---- the agent's prompt: tools, a long system prompt, scripted assistant turns and tool results
const VERBS = ["read", "write", "search", "list", "edit", "run", "fetch", "inspect", "format", "test"]
const NOUNS = ["file", "directory", "symbol", "test", "commit", "branch", "issue", "package", "log", "config"]
const tools: Array<Wire.CustomTool> = Array.from({ length: TOOLS }, (_, i) => ({
  name: `${VERBS[i % VERBS.length]}_${NOUNS[Math.floor(i / VERBS.length) % NOUNS.length]}_${i}`,
  description: `Use this tool to ${VERBS[i % VERBS.length]} a ${NOUNS[i % NOUNS.length]} in the workspace. It returns plain text.`,
  input_schema: {
    type: "object",
    properties: {
      path: { type: "string", description: "a path relative to the workspace root" },
      limit: { type: "integer", description: "how many lines or entries at most" },
      mode: { type: "string", enum: ["fast", "thorough"] }
    },
    required: ["path"]
  }
}))
const SENTENCES = [
  "You are a coding agent working in a repository on the user's machine.",
  "Read the relevant files before you change anything, and keep changes small.",
  "Prefer the project's own conventions over your habits; match the surrounding style.",
  "When a command fails, read its output, form a hypothesis and test it before trying again.",
  "Never print secrets, tokens or keys, and never commit files you did not mean to change.",
  "Explain what you did in a few sentences at the end, naming the files you touched.",
  "Use the tools to inspect the workspace; do not guess the contents of a file.",
  "Write tests that fail before a fix and pass after it; run the whole suite before you finish."
]
const systemPrompt = (paragraphs: number) =>
  Array.from({ length: paragraphs }, (_, p) =>
    `Section ${p + 1}. ${SENTENCES.map((s, i) => SENTENCES[(i + p) % SENTENCES.length]!.replace("agent", `agent (rule ${p}.${i})`)).join(" ")}`)
    .join("\n\n")
const toolResult = (turn: number) =>
  Array.from({ length: 12 }, (_, i) => `src/module${turn}/file${i}.ts: ${i * 7 + turn} lines, last changed in commit ${(i * 2654435761 + turn) % 100000}`)
    .join("\n")

/** The conversation of `turns` tool rounds after the first question. */
const conversation = (system: string, turns: number, maxTokens: number): Wire.MessagesRequest => {
  const messages: Array<Wire.MessageParam> = [{ role: "user", content: "Find where the configuration is read and explain how defaults are applied." }]
  for (let t = 0; t < turns; t++) {
    const tool = tools[t % tools.length]!
    const id = `toolu_bench_${t}`
    messages.push({
      role: "assistant",
      content: [
        { type: "text", text: `I will look at the ${NOUNS[t % NOUNS.length]} next.` },
        { type: "tool_use", id, name: tool.name, input: { path: `src/module${t}`, limit: 50 } }
      ]
    })
    messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: id, content: toolResult(t) }] })
  }
  return { model: SPEC, max_tokens: maxTokens, system, tools, messages, stream: true, temperature: 0 }
}

// ---- the stack and a server in this process, as shipped: isolation "process", parallel 4
const config = {
  providers: {
    gguf: { provider_type: "gguf", model_directory: models, threads: THREADS, context_size: CONTEXT, parallel: SEQUENCES }
  },
  hub: { offline: true },
  stores: { ollama: false, hf_cache: false, lmstudio: false, node_llama_cpp: false }
}
const scope = Effect.runSync(Scope.make())
const context = await Effect.runPromise(Layer.buildWithScope(LlmspellLive.layerFromObject(config, { home: join(dir, "home"), env: {} }), scope))
const llm = context.unsafeMap.get(LocalLLM.key) as LocalLLMService
const server = await Effect.runPromise(Server.start({ port: 0 }).pipe(Effect.provide(context), Scope.extend(scope)))

/** One streamed answer through /v1/messages: its TTFT (ms, from the request to the first delta), rate and usage. */
const streamed = async (body: Wire.MessagesRequest) => {
  const start = performance.now()
  const response = await fetch(`${server.url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify(body)
  })
  if (response.status !== 200) throw new Error(`/v1/messages: ${response.status} ${await response.text()}`)
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ""
  let first: number | undefined
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    text += decoder.decode(value, { stream: true })
    if (first === undefined && text.includes("event: content_block_delta")) first = performance.now()
  }
  const end = performance.now()
  const delta = text.split("\n\n").find((e) => e.startsWith("event: message_delta"))
  if (delta === undefined || first === undefined) throw new Error(`no answer: ${text.slice(-300)}`)
  const usage = (JSON.parse(delta.slice(delta.indexOf("data: ") + 6)) as { usage: Wire.Usage }).usage
  return {
    ttftMs: first - start,
    rate: (usage.output_tokens - 1) / ((end - first) / 1000),
    inputTokens: usage.input_tokens + (usage.cache_read_input_tokens ?? 0),
    cachedTokens: usage.cache_read_input_tokens ?? 0
  }
}

/** The same answer from LocalLLM.generate on the same stack (no HTTP): tokens/s after the first. */
const direct = async (body: Wire.MessagesRequest) => {
  const request = Either.getOrThrow(toGenerateRequest(body)).request
  let first: number | undefined
  let tokens = 0
  await Effect.runPromise(Stream.runForEach(llm.generate(SPEC, request), (event) =>
    Effect.sync(() => {
      if (event._tag === "TextDelta" || event._tag === "ReasoningDelta" || event._tag === "ToolCall") first ??= performance.now()
      if (event._tag === "Finish") tokens = event.completion.usage.completionTokens
    })))
  const end = performance.now()
  if (first === undefined) throw new Error("no answer")
  return (tokens - 1) / ((end - first) / 1000)
}

// ---- the baseline: plain node-llama-cpp, one LlamaChat kept for the whole session
const llama = await getLlama({ build: "never", logLevel: LlamaLogLevel.warn })
const model = await llama.loadModel({ modelPath: file, useMmap: true })
const chatWrapper = resolveChatWrapper(model)

/** What the plain LlamaChat is given for a request: llmspell's own (pure) mapping, so the prompt is the same. */
const plainInputs = (body: Wire.MessagesRequest) => {
  const request = Either.getOrThrow(toGenerateRequest(body)).request
  const plan = Either.getOrThrow(generationPlan(request))
  if (plan._tag !== "Functions") throw new Error(`expected node-llama-cpp functions, got a ${plan._tag} plan`)
  return { history: toHistory(request) as Array<ChatHistoryItem>, functions: plan.functions as ChatModelFunctions }
}

/** One plain session: a fresh context and LlamaChat, every turn on it; the TTFT of each (ms). */
const plainSession = async (bodies: ReadonlyArray<Wire.MessagesRequest>) => {
  const ctx = await model.createContext({ contextSize: CONTEXT, sequences: 1, threads: THREADS })
  try {
    const chat = new LlamaChat({ contextSequence: ctx.getSequence(), chatWrapper })
    const ttfts: Array<number> = []
    for (const body of bodies) {
      const { history, functions } = plainInputs(body)
      const start = performance.now()
      let first: number | undefined
      await chat.generateResponse(history, {
        functions,
        maxTokens: body.max_tokens,
        temperature: 0,
        onTextChunk: () => void (first ??= performance.now()),
        onFunctionCallParamsChunk: () => void (first ??= performance.now())
      })
      ttfts.push((first ?? performance.now()) - start)
    }
    return ttfts
  } finally {
    await ctx.dispose()
  }
}

try {
  // a system prompt of at least SYSTEM_TOKENS tokens with the tools, as the model counts them
  let paragraphs = 2
  let system = systemPrompt(paragraphs)
  const count = async (s: string) => {
    const r = await fetch(`${server.url}/v1/messages/count_tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: SPEC, system: s, tools, messages: [{ role: "user", content: "hi" }] })
    })
    if (r.status !== 200) throw new Error(`count_tokens: ${r.status} ${await r.text()}`)
    return (await r.json() as Wire.CountTokensResponse).input_tokens
  }
  let systemTokens = await count(system)
  while (systemTokens < SYSTEM_TOKENS) {
    paragraphs = Math.ceil(paragraphs * Math.max(1.1, (SYSTEM_TOKENS / systemTokens) * 1.02))
    system = systemPrompt(paragraphs)
    systemTokens = await count(system)
  }
  const bodies = Array.from({ length: TURNS + 1 }, (_, t) => conversation(system, t, ANSWER))
  // counted, not generated: a generation would leave the whole session in the server's cache before
  // the timed turns, and every turn would then find its prompt cached
  const lastBody = bodies.at(-1)!
  const counted = await fetch(`${server.url}/v1/messages/count_tokens`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: SPEC, system: lastBody.system, tools: lastBody.tools, messages: lastBody.messages })
  })
  if (counted.status !== 200) throw new Error(`count_tokens: ${counted.status} ${await counted.text()}`)
  const lastPrompt = (await counted.json() as Wire.CountTokensResponse).input_tokens
  log(`system prompt + ${TOOLS} tools: ${systemTokens} tokens; the last turn's prompt: ${lastPrompt} tokens`)
  if (lastPrompt + RATE_TOKENS + 2 > CONTEXT) throw new Error(`the last turn (${lastPrompt} tokens) leaves no room in a ${CONTEXT}-token context: raise --context`)

  const served: Array<Array<number>> = Array.from({ length: TURNS + 1 }, () => [])
  const plain: Array<Array<number>> = Array.from({ length: TURNS + 1 }, () => [])
  const cached: Array<Array<number>> = Array.from({ length: TURNS + 1 }, () => [])
  const rates = { served: [] as Array<number>, direct: [] as Array<number> }
  for (let run = 0; run < RUNS; run++) {
    // llmspell: one session through /v1/messages; the baseline: one fresh LlamaChat, the same turns
    for (const [t, body] of bodies.entries()) {
      const r = await streamed(body)
      served[t]!.push(r.ttftMs)
      cached[t]!.push(r.cachedTokens)
    }
    const ttfts = await plainSession(bodies)
    ttfts.forEach((ms, t) => plain[t]!.push(ms))
    log(`run ${run + 1}/${RUNS}: TTFT per turn (ms) served ${served.map((s) => s.at(-1)!.toFixed(0)).join(", ")}; plain ${ttfts.map((ms) => ms.toFixed(0)).join(", ")}`)
    // tokens/s of the last turn's answer, back-to-back pairs
    const rateBody = { ...bodies.at(-1)!, max_tokens: RATE_TOKENS }
    for (let p = 0; p < PAIRS; p++) {
      rates.served.push((await streamed(rateBody)).rate)
      rates.direct.push(await direct(rateBody))
    }
    log(`run ${run + 1}/${RUNS}: tokens/s served ${rates.served.slice(-PAIRS).map((r) => r.toFixed(1)).join(", ")}; direct ${rates.direct.slice(-PAIRS).map((r) => r.toFixed(1)).join(", ")}`)
  }

  const turnRatios = served.map((s, t) => median(s.map((ms, i) => ms / plain[t]![i]!)))
  const later = turnRatios.slice(1)
  const rateRatio = median(rates.served.map((r, i) => r / rates.direct[i]!))
  const cores = os.availableParallelism()
  const loadAverage = os.loadavg()[0]!
  const section = [
    "## Agent session through the Anthropic API (bench:agent)",
    "",
    `Command: \`npm run build && npm run bench:agent\` (\`node --import tsx bench/agent.ts [--runs N] [--turns N] [--system-tokens N] [--tools N] [--answer N] [--rate-tokens N] [--pairs N] [--context N] [--small]\`). ` +
    `A generated llama of ${sizeMiB.toFixed(0)} MiB${SMALL ? " (F16, --small)" : " (Q8_0: vocab 32000, dim 1024, 16 layers, ff 2816)"}, ${THREADS} thread(s), context ${CONTEXT} per sequence, greedy; ${RUNS} sessions.`,
    "",
    `- **Session**: a system prompt and ${TOOLS} tools of ${systemTokens} tokens (counted by \`/v1/messages/count_tokens\`), a first question, then ${TURNS} turns each resending the conversation with one more scripted assistant turn (text + tool_use) and its tool_result (12 lines of a file listing); the last turn's prompt is ${lastPrompt} tokens; ${ANSWER} tokens of answer per turn.`,
    `- **Served**: \`/v1/messages\` streamed from a server in the bench process over the whole stack (GGUF \`parallel\` ${SEQUENCES}, worker process, as shipped). TTFT is from the request to the first \`content_block_delta\`.`,
    `- **Plain**: node-llama-cpp 3, one \`LlamaChat\` on one sequence kept for the session, given the same history and functions (llmspell's own pure mapping, untimed); TTFT to the first text chunk.`,
    `- **Tokens/s**: the last turn answered with ${RATE_TOKENS} tokens, through \`/v1/messages\` vs \`LocalLLM.generate\` on the same stack (no HTTP), (tokens − 1) over the time from the first delta to the end; ${PAIRS} back-to-back pairs per session. Ratios are medians of the per-pair ratios.`,
    "",
    `Machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model.trim() ?? "?"}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}, load average ${loadAverage.toFixed(1)}; whole run ${((performance.now() - started) / 60_000).toFixed(1)} min.` +
    (loadAverage > cores ? ` **Measured on a busy machine** (load average above the ${cores} cores): re-run on a quiet machine before reading these as results.` : ""),
    "",
    "| turn | served TTFT (median) | plain TTFT (median) | ratio | cached tokens reported | target |",
    "|---|---:|---:|---:|---:|---:|",
    ...served.map((s, t) =>
      `| ${t === 0 ? "first question" : `turn ${t}`} | ${median(s).toFixed(0)} ms | ${median(plain[t]!).toFixed(0)} ms | ${turnRatios[t]!.toFixed(2)}× | ${median(cached[t]!).toFixed(0)} | ${t === 0 ? "" : "≤ 1.15×"} |`),
    `| turns 1–${TURNS} (median of the ratios) | | | ${median(later).toFixed(2)}× | | ≤ 1.15× |`,
    "",
    "| what | median | ratio | target |",
    "|---|---:|---:|---:|",
    `| \`LocalLLM.generate\`, last turn (no HTTP) | ${median(rates.direct).toFixed(1)} tok/s | 1.00 | |`,
    `| \`/v1/messages\` stream, last turn | ${median(rates.served).toFixed(1)} tok/s | ${rateRatio.toFixed(2)}× | ≥ 0.97× |`,
    ""
  ].join("\n")
  process.stdout.write(`${section}\n`)
  if (WRITE) {
    const path = join(root, "BENCHMARKS.md")
    const current = await readFile(path, "utf8")
    const at = current.indexOf("## Agent session through the Anthropic API")
    const next = at >= 0 ? current.indexOf("\n## ", at + 1) : -1
    const updated = at < 0 ? `${current.trimEnd()}\n\n${section}` : `${current.slice(0, at)}${section}${next >= 0 ? current.slice(next) : ""}`
    await writeFile(path, updated.endsWith("\n") ? updated : `${updated}\n`)
  }
} finally {
  await model.dispose()
  await llama.dispose()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await rm(dir, { recursive: true, force: true })
}

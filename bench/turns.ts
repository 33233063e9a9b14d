/**
 * `npm run bench:turns`: what an agent's conversation costs per turn (issue 21). An agent re-sends
 * the whole conversation each turn — a long system prompt with tool definitions, the history, a
 * few new tokens — so turn N's time to first token is the cost of whatever the server evaluates
 * again. One run measures, on a generated llama written to a temp dir (default: vocab 32000, dim
 * 512, 8 layers, F16, ~110 MiB; `--large` for the ~290 MiB Q8_0 of bench:serve):
 *
 * - **llmspell**: a `llmspell serve` child started as a user does (`node dist/cli.js serve`,
 *   `parallel` 4, isolation as shipped), each turn a streamed `/v1/chat/completions` request with
 *   the conversation so far; time to the first content chunk, and `usage.prompt_tokens_details.
 *   cached_tokens` from the usage chunk;
 * - **baseline**: plain node-llama-cpp in this process, one `LlamaChat` per conversation kept for
 *   its whole life (each on a sequence of its own, so it reuses its own prefix: the ideal), same
 *   model, threads, context, history and greedy sampling; time to the first text chunk.
 *
 * With 1, 2 and 4 conversations interleaved turn by turn (an agent and its sub-agents) on a model
 * with 4 sequences, and 8 conversations on 4 sequences (the baseline then has 8 sequences: it
 * never evicts). Turn 1 is not counted (nothing to reuse); turns 2..N are, as the median ratio of
 * llmspell's TTFT to the baseline's over the same (conversation, turn) pairs. The hit rate is the
 * share of turns 2..N's prompt tokens that llmspell reported as cached.
 *
 * Options: --turns N (6), --answer N (16 tokens per answer), --system N (~1200 target tokens of
 * system prompt and tools), --large, --compare DIR (another build's dist/, e.g. main's, as a third
 * side of every round), --no-write. Build first (`npm run build`). Progress goes to
 * stderr, the section to stdout and BENCHMARKS.md.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync } from "node:fs"
import { readFile, rm, writeFile } from "node:fs/promises"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type ChatHistoryItem, getLlama, LlamaChat, LlamaLogLevel } from "node-llama-cpp"
import { autoThreads } from "../src/layers/gguf/cpu.js"
import { benchWorkspace } from "./benchModels.js"
import { median } from "./stats.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const cli = join(root, "dist", "cli.js")
const LARGE = process.argv.includes("--large")
const compareAt = process.argv.indexOf("--compare")
/** Another build's dist/ (e.g. main's), measured as a third side in the same run. */
const COMPARE = compareAt >= 0 ? process.argv[compareAt + 1] : undefined
const WRITE = !process.argv.includes("--no-write")
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const TURNS = arg("turns", 6)
const ANSWER = arg("answer", 16)
const SYSTEM_TOKENS = arg("system", 1200)
const SEQUENCES = 4
const THREADS = autoThreads()
const CONTEXT = 4096
const started = performance.now()
const log = (s: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${s}\n`)

const { dir, home, models, file, sizeMiB, spec: SPEC } = await benchWorkspace("turns", LARGE ? "large" : "small", CONTEXT)

// ---- the conversation: an agent's system prompt with tool definitions, ~50-token user turns
const tool = (i: number) =>
  `- tool_${i}(path: string, depth: number, pattern: string): searches the project tree below path for files whose name matches pattern, at most depth levels down, and returns their paths with sizes.`
const systemPrompt = (() => {
  let text = "You are a coding agent working in a repository. Use the tools below; answer briefly.\nTools:\n"
  for (let i = 0; text.length < SYSTEM_TOKENS * 1.6; i++) text += `${tool(i)}\n`
  return text
})()
const userTurn = (conversation: number, turn: number) =>
  `Conversation ${conversation}, step ${turn}: look at src/module_${conversation}_${turn}.ts, tell me which functions it exports, which of them are unused elsewhere, and what to rename first.`

type Message = { role: "system" | "user" | "assistant"; content: string }
interface TurnResult {
  readonly ttftMs: number
  readonly answer: string
  readonly promptTokens?: number
  readonly cachedTokens?: number
}

// ---- llmspell: a serve child as a user starts it
const cliEnv = {
  HOME: home,
  PATH: process.env["PATH"] ?? "",
  HF_HUB_OFFLINE: "1",
  LLMSPELL_MODELS_DIR: models,
  LLMSPELL_GGUF_THREADS: String(THREADS),
  LLMSPELL_GGUF_CONTEXT_SIZE: String(CONTEXT),
  LLMSPELL_GGUF_PARALLEL: String(SEQUENCES)
}
/** A `llmspell serve` child of the build `cliPath`, with a HOME of its own (one server per state file). */
const startServe = async (cliPath: string, name: string) => {
  const ownHome = join(dir, `home-${name}`)
  mkdirSync(ownHome, { recursive: true })
  const child: ChildProcess = spawn(process.execPath, [cliPath, "serve", "--port", "0", "--json"], {
    cwd: dir,
    env: { ...cliEnv, HOME: ownHome },
    stdio: ["ignore", "ignore", "pipe"]
  })
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  process.on("exit", () => child.kill())
  let output = ""
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (c: Buffer) => {
      if (output.length < 20_000) output += c.toString("utf8")
      const line = output.split("\n").find((l) => l.includes(`"listening"`))
      if (line) resolve((JSON.parse(line) as { url: string }).url)
    })
    child.on("close", () => reject(new Error(`llmspell serve (${cliPath}) ended: ${output}`)))
  })
  log(`llmspell serve ${name} (pid ${child.pid}) at ${url}`)
  return { url, stop: async () => void (child.kill("SIGINT"), await exited) }
}
const servers = [await startServe(cli, "this build"), ...(COMPARE !== undefined ? [await startServe(join(COMPARE, "cli.js"), "compared")] : [])]
log(`model ${sizeMiB.toFixed(0)} MiB, threads ${THREADS}`)

const viaServe = async (serveUrl: string, messages: ReadonlyArray<Message>): Promise<TurnResult> => {
  const start = performance.now()
  const response = await fetch(`${serveUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: SPEC,
      messages,
      max_tokens: ANSWER,
      temperature: 0,
      seed: 1,
      stream: true,
      stream_options: { include_usage: true }
    })
  })
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${await response.text()}`)
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let buffer = ""
  let first: number | undefined
  let answer = ""
  let usage: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } | undefined
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    buffer += decoder.decode(value, { stream: true })
    const lines = buffer.split("\n")
    buffer = lines.pop()!
    for (const line of lines) {
      const data = line.replace(/^data: /, "").trim()
      if (data === "" || data === "[DONE]") continue
      const chunk = JSON.parse(data)
      const text = chunk.choices?.[0]?.delta?.content
      if (typeof text === "string" && text.length > 0) {
        first ??= performance.now()
        answer += text
      }
      if (chunk.usage) usage = chunk.usage
    }
  }
  const end = performance.now()
  return {
    // an empty answer: its first token was the end
    ttftMs: (first ?? end) - start,
    answer,
    ...(usage !== undefined ? { promptTokens: usage.prompt_tokens } : {}),
    // absent when the server does not report it (a build before cached tokens were reported)
    ...(usage?.prompt_tokens_details?.cached_tokens !== undefined ? { cachedTokens: usage.prompt_tokens_details.cached_tokens } : {})
  }
}

// ---- the baseline: plain node-llama-cpp, one LlamaChat per conversation for its whole life
const llama = await getLlama({ build: "never", logLevel: LlamaLogLevel.error })
const model = await llama.loadModel({ modelPath: file, useMmap: true })

/** A baseline for `conversations`: one LlamaChat per conversation, on a sequence of its own. */
const makeBaseline = async (conversations: number) => {
  const context = await model.createContext({ contextSize: CONTEXT, sequences: Math.max(SEQUENCES, conversations), threads: THREADS })
  const chats = Array.from({ length: conversations }, () => new LlamaChat({ contextSequence: context.getSequence() }))
  const send = async (c: number, messages: ReadonlyArray<Message>): Promise<TurnResult> => {
    const history: Array<ChatHistoryItem> = messages.map((m) =>
      m.role === "system" ? { type: "system", text: m.content } : m.role === "user" ? { type: "user", text: m.content } : { type: "model", response: [m.content] }
    )
    const start = performance.now()
    let first: number | undefined
    const { response } = await chats[c]!.generateResponse(history, {
      maxTokens: ANSWER,
      temperature: 0,
      onTextChunk: (text) => {
        if (text.length > 0) first ??= performance.now()
      }
    })
    const end = performance.now()
    return { ttftMs: (first ?? end) - start, answer: response }
  }
  const dispose = async () => {
    for (const chat of chats) chat.dispose()
    await context.dispose()
  }
  return { send, dispose }
}

/**
 * The conversations interleaved turn by turn, each turn sent to the baseline and to llmspell back
 * to back (so both see the same moment of a shared machine's load); per side, per (conversation,
 * turn), its result. Each side keeps its own history (its own answers).
 */
const converse = async (
  conversations: number,
  sides: ReadonlyArray<(c: number, messages: ReadonlyArray<Message>) => Promise<TurnResult>>,
  salt: number
): Promise<Array<Array<Array<TurnResult>>>> => {
  const histories = sides.map(() => Array.from({ length: conversations }, (): Array<Message> => [{ role: "system", content: systemPrompt }]))
  const results = sides.map(() => Array.from({ length: conversations }, (): Array<TurnResult> => []))
  for (let turn = 1; turn <= TURNS; turn++) {
    for (let c = 0; c < conversations; c++) {
      // which side goes first alternates, so neither always runs right after the other
      const order = (turn + c) % 2 === 0 ? sides.map((_, i) => i) : sides.map((_, i) => i).reverse()
      for (const side of order) {
        const history = histories[side]![c]!
        history.push({ role: "user", content: userTurn(c + 1 + salt, turn) })
        const result = await sides[side]!(c, history)
        history.push({ role: "assistant", content: result.answer })
        results[side]![c]!.push(result)
      }
    }
  }
  return results
}

interface Row {
  readonly conversations: number
  readonly llmspell: number
  readonly baseline: number
  readonly ratio: number
  /** Undefined: the server reported no cached tokens. */
  readonly hitRate: number | undefined
  readonly firstTurn: { readonly llmspell: number; readonly baseline: number }
  readonly promptTokens: number
  /** The compared build, when given. */
  readonly compared?: { readonly ttft: number; readonly ratio: number; readonly hitRate: number | undefined }
}

const percent = (rate: number | undefined) => (rate === undefined ? "not reported" : `${(100 * rate).toFixed(0)}%`)

/** Turns 2..N of a side against the baseline: median TTFT, median paired ratio, hit rate. */
const summarize = (side: Array<Array<TurnResult>>, base: Array<Array<TurnResult>>) => {
  const ratios: Array<number> = []
  const ttfts: Array<number> = []
  let prompt = 0
  let cached = 0
  let reported = false
  for (let c = 0; c < side.length; c++) {
    for (let t = 1; t < TURNS; t++) {
      const s = side[c]![t]!
      ratios.push(s.ttftMs / base[c]![t]!.ttftMs)
      ttfts.push(s.ttftMs)
      prompt += s.promptTokens ?? 0
      cached += s.cachedTokens ?? 0
      reported ||= s.cachedTokens !== undefined
    }
  }
  return { ttft: median(ttfts), ratio: median(ratios), hitRate: reported && prompt > 0 ? cached / prompt : undefined }
}

const rows: Array<Row> = []
let salt = 0
try {
  // warm-up: the model loaded in each server (not measured)
  for (const server of servers) await viaServe(server.url, [{ role: "user", content: "hello" }])
  for (const conversations of [1, 2, 4, 8]) {
    // distinct conversations per row (the system prompt is the same: one agent)
    salt += 100
    log(`${conversations} conversation(s)`)
    const baseline = await makeBaseline(conversations)
    const [base, served, compared] = await converse(
      conversations,
      [baseline.send, ...servers.map((server) => (_c: number, messages: ReadonlyArray<Message>) => viaServe(server.url, messages))],
      salt
    ).finally(baseline.dispose)
    const ours = summarize(served!, base!)
    const row: Row = {
      conversations,
      llmspell: ours.ttft,
      baseline: median(base!.flatMap((r) => r.slice(1).map((t) => t.ttftMs))),
      ratio: ours.ratio,
      hitRate: ours.hitRate,
      firstTurn: { llmspell: median(served!.map((r) => r[0]!.ttftMs)), baseline: median(base!.map((r) => r[0]!.ttftMs)) },
      promptTokens: median(served!.map((r) => r[TURNS - 1]!.promptTokens ?? 0)),
      ...(compared !== undefined ? { compared: summarize(compared, base!) } : {})
    }
    rows.push(row)
    log(JSON.stringify(row))
  }

  const loadAverage = os.loadavg()[0]!
  const uptime = await new Promise<string>((resolve) => {
    const p = spawn("uptime", [], { stdio: ["ignore", "pipe", "ignore"] })
    let out = ""
    p.stdout.on("data", (c: Buffer) => void (out += c.toString()))
    p.on("close", () => resolve(out.trim()))
    p.on("error", () => resolve(`load average ${loadAverage.toFixed(2)}`))
  })
  const cores = os.availableParallelism()
  const section = [
    "## Conversation turns: llmspell serve vs one LlamaChat per conversation (bench:turns)",
    "",
    `Command: \`npm run build && npm run bench:turns\` (\`node --import tsx bench/turns.ts [--turns N] [--answer N] [--system N] [--large] [--compare DIR]\`).`,
    `A generated llama (${sizeMiB.toFixed(0)} MiB, ${LARGE ? "Q8_0, dim 1024, 16 layers" : "F16, dim 512, 8 layers"}, vocab 32000), context ${CONTEXT} per sequence, ${THREADS} thread(s), greedy, ${ANSWER}-token answers.`,
    `An agent-shaped conversation: a system prompt with tool definitions, ~50-token user turns, ${TURNS} turns, the whole history re-sent each turn; conversations interleaved turn by turn.`,
    `**llmspell**: a \`llmspell serve\` child (\`parallel\` ${SEQUENCES}), streamed \`/v1/chat/completions\`, time to the first content chunk on the client; **baseline**: plain node-llama-cpp in the bench process keeping one \`LlamaChat\` per conversation on a sequence of its own (with 8 conversations it has 8 sequences: it never evicts).`,
    "Each turn goes to both back to back (alternating which first), so each pair sees the same moment of the machine's load. Ratio: median over turns 2..N of each (conversation, turn)'s llmspell TTFT / baseline TTFT; hit rate: the share of those turns' prompt tokens llmspell reported as cached (`cached_tokens`).",
    "",
    `Machine: ${cores} cores, ${os.cpus()[0]?.model.trim() ?? "?"}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; \`uptime\` at the end: \`${uptime}\`; whole run ${((performance.now() - started) / 60_000).toFixed(1)} min.` +
    (loadAverage > cores ? ` **Measured on a busy machine** (load average above the ${cores} cores).` : ""),
    "",
    ...(COMPARE !== undefined
      ? [`**compared**: the same turns, in the same rounds, sent to a second \`llmspell serve\` from the build in \`${COMPARE}\` (another HOME).`, ""]
      : []),
    `| conversations on 4 sequences | prompt at the last turn | turn 1 TTFT llmspell / baseline | turns 2..N TTFT llmspell | baseline | ratio | cached (hit rate) | target |${COMPARE !== undefined ? " compared: TTFT, ratio, hit rate |" : ""}`,
    `|---:|---:|---:|---:|---:|---:|---:|---:|${COMPARE !== undefined ? "---:|" : ""}`,
    ...rows.map((r) =>
      `| ${r.conversations} | ${r.promptTokens} tokens | ${r.firstTurn.llmspell.toFixed(0)} / ${r.firstTurn.baseline.toFixed(0)} ms | ${r.llmspell.toFixed(0)} ms | ${r.baseline.toFixed(0)} ms | ${r.ratio.toFixed(2)}× | ${percent(r.hitRate)} | ${r.conversations <= SEQUENCES ? "≤ 1.15×" : "(report)"} |` +
      (r.compared !== undefined ? ` ${r.compared.ttft.toFixed(0)} ms, ${r.compared.ratio.toFixed(2)}×, ${percent(r.compared.hitRate)} |` : "")
    ),
    ""
  ].join("\n")
  process.stdout.write(`${section}\n`)
  if (WRITE) {
    const path = join(root, "BENCHMARKS.md")
    const current = await readFile(path, "utf8")
    const start = current.indexOf("## Conversation turns:")
    const next = start >= 0 ? current.indexOf("\n## ", start + 1) : -1
    const updated = start < 0 ? `${current.trimEnd()}\n\n${section}` : `${current.slice(0, start)}${section}${next >= 0 ? current.slice(next) : ""}`
    await writeFile(path, updated.endsWith("\n") ? updated : `${updated}\n`)
  }
} finally {
  for (const server of servers) await server.stop()
  await model.dispose()
  await llama.dispose()
  await rm(dir, { recursive: true, force: true })
}

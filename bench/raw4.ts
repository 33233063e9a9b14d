/**
 * bench:serve's baseline for concurrent streams: plain node-llama-cpp, no llmspell. One model, one
 * context with `--sequences` sequences (default 4), one `LlamaChat` per sequence, all generating at
 * once from the same chat history the server builds for a one-message request (a user message, no
 * system prompt). A warm-up round first (each sequence then holds the prompt, as the server's do
 * after its warm-up), then the timed round: total tokens / wall time from the first request to
 * the last end. Prints one JSON line: `{ tokens: number[], wallMs, loadMs }`.
 *
 * Options: --model FILE --threads N --context N (per sequence) --tokens N --sequences N
 * --prompt TEXT --temperature X. Started by bench/serve.ts; runnable alone with `node --import tsx`.
 */
import { getLlama, LlamaChat, LlamaLogLevel } from "node-llama-cpp"

const arg = (name: string, fallback?: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  const value = i >= 0 ? process.argv[i + 1] : fallback
  if (value === undefined) throw new Error(`--${name} is required`)
  return value
}
const MODEL = arg("model")
const THREADS = Number(arg("threads", "1"))
const CONTEXT = Number(arg("context", "1024"))
const TOKENS = Number(arg("tokens", "64"))
const SEQUENCES = Number(arg("sequences", "4"))
const PROMPT = arg("prompt", "Tell me a long story about a llama who learns to spell.")
const TEMPERATURE = Number(arg("temperature", "0.8"))

const loadStart = performance.now()
const llama = await getLlama({ build: "never", logLevel: LlamaLogLevel.warn })
const model = await llama.loadModel({ modelPath: MODEL, useMmap: true })
// contextSize is per sequence in node-llama-cpp v3 (as in llmspell's loader)
const context = await model.createContext({ contextSize: CONTEXT, sequences: SEQUENCES, threads: THREADS })
const chats = Array.from({ length: SEQUENCES }, () => new LlamaChat({ contextSequence: context.getSequence() }))
const loadMs = performance.now() - loadStart

const round = (maxTokens: number) =>
  Promise.all(chats.map(async (chat, i) => {
    let tokens = 0
    await chat.generateResponse([{ type: "user", text: PROMPT }], {
      maxTokens,
      temperature: TEMPERATURE,
      seed: i + 1,
      onToken: (t) => {
        tokens += t.length
      }
    })
    return tokens
  }))

await round(4)
const start = performance.now()
const tokens = await round(TOKENS)
const wallMs = performance.now() - start
process.stdout.write(`${JSON.stringify({ tokens, wallMs, loadMs })}\n`)
await model.dispose()
await llama.dispose()

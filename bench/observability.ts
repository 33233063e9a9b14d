/**
 * `npm run bench:observability`: what metrics and tracing cost a generation (issue 24). One stack
 * in this process (a generated ~110 MB F16 llama, isolation "process" as shipped) serves two
 * servers side by side: one over the plain LocalLLM facade with no tracer ("off": no generation
 * metrics, no spans; the server's own HTTP counters still count), one over the metered facade with the OTLP tracer
 * exporting to a receiver on 127.0.0.1 and `/metrics` scraped during the run ("on"). Streams of
 * `/v1/chat/completions` alternate between them (ABAB…, the order swapped every pair); the figure is
 * the median of the per-pair ratios of client-side tokens/s (first to last chunk). Target ≥ 0.98×.
 *
 * Options: --pairs N (12), --tokens N (96), --no-write. Build not needed (runs from the sources).
 */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import { createServer } from "node:http"
import { mkdirSync } from "node:fs"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import OpenAI from "openai"
import { autoThreads } from "../src/layers/gguf/cpu.js"
import * as LlmspellLive from "../src/layers/LlmspellLive.js"
import * as LocalLLMLive from "../src/layers/LocalLLMLive.js"
import * as Tracing from "../src/layers/Tracing.js"
import * as Server from "../src/serve/Server.js"
import { LocalLLM } from "../src/services/LocalLLM.js"
import type { ModelStoreService } from "../src/services/ModelStore.js"
import { ProviderRegistry } from "../src/services/ProviderRegistry.js"
import { writeTinyLlamaGguf } from "../test/fixtures/ggufWriter.js"
import { median } from "./stats.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const PAIRS = arg("pairs", 12)
const TOKENS = arg("tokens", 96)
const WRITE = !process.argv.includes("--no-write")
const log = (s: string) => process.stderr.write(`${s}\n`)

const dir = await mkdtemp(join(os.tmpdir(), "llmspell-bench-obs-"))
mkdirSync(join(dir, "models"))
await writeTinyLlamaGguf(join(dir, "models", "bench.gguf"), { vocabSize: 32000, embeddingLength: 512, blockCount: 8, contextLength: 1024, name: "bench" })

// the receiver: counts the exports it gets
let exports = 0
let exportedBytes = 0
const receiver = createServer((req, res) => {
  req.on("data", (c: Buffer) => void (exportedBytes += c.length))
  req.on("end", () => {
    exports++
    res.writeHead(200).end("{}")
  })
})
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve))
const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`

const scope = Effect.runSync(Scope.make())
const config = {
  providers: { gguf: { provider_type: "gguf", model_directory: join(dir, "models"), threads: autoThreads(), context_size: 1024, parallel: 1, isolation: "process" } },
  hub: { endpoint: "http://127.0.0.1:4", offline: true },
  stores: { ollama: false, hf_cache: false, lmstudio: false, node_llama_cpp: false }
}
const provider = ConfigProvider.fromMap(new Map([
  ["OTEL_EXPORTER_OTLP_ENDPOINT", receiverUrl],
  ["OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"]
]))
try {
  const runtime = await Effect.runPromise(
    Layer.toRuntime(Layer.merge(LlmspellLive.layerFromObject(config, { home: dir, env: {} }), Tracing.layerFromEnvironment("bench"))).pipe(
      Effect.withConfigProvider(provider),
      Scope.extend(scope)
    )
  )
  const on = await Runtime.runPromise(runtime)(Server.start({ port: 0 }).pipe(Scope.extend(scope)))
  // "off": the same registry and store through the unmetered facade, and no tracer
  const plain = await Runtime.runPromise(runtime)(
    // generation never reads the store (only `available` and `importFile` do)
    Effect.map(ProviderRegistry, (registry) => LocalLLMLive.make(registry, undefined as unknown as ModelStoreService))
  )
  const off = await Effect.runPromise(
    Server.start({ port: 0 }).pipe(
      Effect.provideService(LocalLLM, plain),
      // the stack's services (its EffectiveConfig); the default runtime has no tracer
      Effect.provide(runtime.context),
      Scope.extend(scope)
    )
  )

  const rate = async (url: string) => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 })
    const stream = await client.chat.completions.create({
      model: "bench.gguf@gguf",
      messages: [{ role: "user", content: "Tell me a long story about a lighthouse." }],
      max_tokens: TOKENS,
      temperature: 0,
      seed: 1,
      stream: true
    })
    let first: number | undefined
    let last = 0
    let chunks = 0
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) {
        const now = performance.now()
        first ??= now
        last = now
        chunks++
      }
    }
    return first !== undefined && last > first ? ((chunks - 1) * 1000) / (last - first) : 0
  }
  // warm both (the model loads once, in one worker shared by both servers)
  await rate(off.url)
  await rate(on.url)
  const scrape = setInterval(() => void fetch(`${on.url}/metrics`).then((r) => r.text()), 1000)
  const ratios: Array<number> = []
  const offRates: Array<number> = []
  const onRates: Array<number> = []
  for (let i = 0; i < PAIRS; i++) {
    const order = i % 2 === 0 ? [off, on] : [on, off]
    const results = new Map<string, number>()
    for (const s of order) results.set(s.url, await rate(s.url))
    offRates.push(results.get(off.url)!)
    onRates.push(results.get(on.url)!)
    ratios.push(results.get(on.url)! / results.get(off.url)!)
    log(`pair ${i + 1}/${PAIRS}: off ${results.get(off.url)!.toFixed(1)} tok/s, on ${results.get(on.url)!.toFixed(1)} tok/s`)
  }
  clearInterval(scrape)
  const load = os.loadavg().map((l) => l.toFixed(2)).join(", ")
  await Effect.runPromise(Scope.close(scope, Exit.void)) // flushes the last spans
  const section = [
    "## Metrics and tracing overhead (bench:observability)",
    "",
    `Run ${new Date().toISOString().slice(0, 10)}, load average ${load} (\`uptime\`), ${os.availableParallelism()} cores, threads ${autoThreads()}; a generated ~110 MB F16 llama, ${TOKENS} tokens a stream, ${PAIRS} alternating pairs (order swapped each pair). "off": plain LocalLLM facade, no tracer; "on": the metered facade (every Effect metric updated), spans exported over OTLP/HTTP JSON to a receiver on 127.0.0.1 (${exports} exports, ${(exportedBytes / 1024).toFixed(0)} KiB), \`/metrics\` scraped every second.`,
    "",
    "| | tokens/s (median) | ratio (median of pairs) | target |",
    "|---|---|---|---|",
    `| \`/v1/chat/completions\` stream, metrics and tracing off | ${median(offRates).toFixed(1)} | 1.00 | |`,
    `| the same, metrics and tracing on | ${median(onRates).toFixed(1)} | ${median(ratios).toFixed(3)}× | ≥ 0.98× |`,
    ""
  ].join("\n")
  process.stdout.write(`${section}\n`)
  if (WRITE) {
    const path = join(root, "BENCHMARKS.md")
    const current = await readFile(path, "utf8")
    const start = current.indexOf("## Metrics and tracing overhead")
    const next = start >= 0 ? current.indexOf("\n## ", start + 1) : -1
    const updated = start < 0 ? `${current.trimEnd()}\n\n${section}` : `${current.slice(0, start)}${section}${next >= 0 ? current.slice(next) : ""}`
    await writeFile(path, updated.endsWith("\n") ? updated : `${updated}\n`)
  }
} finally {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  receiver.close()
  await rm(dir, { recursive: true, force: true })
}

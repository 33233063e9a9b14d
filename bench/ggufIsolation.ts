/**
 * The worker-process part of `npm run bench:gguf`: GgufBackend with `isolation = "process"` (llama.cpp
 * in a worker per model) against `isolation = "none"` (in-process) and the plain node-llama-cpp
 * script, same run, same threads, interleaved: tokens/s, warm time to first token, cold load, and the
 * worker's memory (RSS of an idle worker: the price of the process; of a worker with the model).
 * Uses the bundled worker (dist/gguf-worker.js, `npm run build`), as the CLI and the package do.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { execFileSync } from "node:child_process"
import { existsSync, readFileSync, statSync } from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Completion, GenerateEvent, GenerateRequest } from "../src/domain/Types.js"
import { makeBackend } from "../src/layers/gguf/GgufBackendLive.js"
import { spawnWorker } from "../src/layers/gguf/workerProcess.js"
import * as LlamaLoaderLive from "../src/layers/gguf/LlamaLoaderLive.js"
import { ModelDownloaderMock } from "../src/testing.js"
import { ggufInstance } from "../test/fixtures/ggufBackendFakes.js"
import { writeTinyLlamaGguf } from "../test/fixtures/ggufWriter.js"
import { median } from "./stats.js"

interface Sample {
  readonly tokensPerSecond: number
  readonly ttftMs: number
  readonly totalMs: number
  readonly tokens: number
}

const root = fileURLToPath(new URL("..", import.meta.url))
const rssOf = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m ? Number(m[1]) * 1024 : NaN
}
const workerPids = () =>
  execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], { encoding: "utf8" }).split("\n")
    .filter((l) => l.includes("gguf-worker")).map((l) => Number(l.trim().split(/\s+/)[0]))

const collect = (s: Stream.Stream<GenerateEvent, unknown>) =>
  Effect.map(Stream.runCollect(s), (c) => (Chunk.toReadonlyArray(c).at(-1) as { completion: Completion }).completion)

/**
 * Cold load with a spare worker: a first (tiny) model loads (and the loader starts a spare), 5 s later (a
 * program's next request) another model is loaded into the spare. Returns the second load's ms.
 */
const spareRun = (path: string, first: string, dir: string, threads: number, request: GenerateRequest) =>
  Effect.scoped(Effect.gen(function*() {
    const { service, shutdown } = LlamaLoaderLive.makeWithShutdown({ spareWorker: true })
    yield* Effect.addFinalizer(() => shutdown)
    const backend = yield* makeBackend(
      ggufInstance({ modelDirectory: dir, threads, contextSize: 1024, parallel: 1, maxLoadedModels: 1 }),
      service,
      ModelDownloaderMock().service
    )
    yield* collect(backend.generate(first, { ...request, maxTokens: 1 }))
    yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5000)))
    return (yield* collect(backend.generate(path, { ...request, maxTokens: 1 }))).timings.loadMs
  }))

/** A backend of one isolation over its own loader (a worker per model, or in-process), `parallel` 1. */
const backendOf = (dir: string, isolation: "process" | "none", threads: number) =>
  makeBackend(
    ggufInstance({ modelDirectory: dir, threads, contextSize: 1024, parallel: 1, maxLoadedModels: 1, isolation }),
    LlamaLoaderLive.make(),
    ModelDownloaderMock().service
  )

/** The first request on a new backend: its load (the in-process loader's Llama already exists, as in a running program). */
const coldRun = (path: string, dir: string, isolation: "process" | "none", threads: number, request: GenerateRequest) =>
  Effect.scoped(Effect.gen(function*() {
    const backend = yield* backendOf(dir, isolation, threads)
    yield* Effect.ignore(backend.status)
    return (yield* collect(backend.generate(path, request))).timings.loadMs
  }))

/** Measures and returns the markdown section. */
export const isolationSection = async (options: {
  readonly dir: string
  readonly runs: number
  /** Warm triples (plain, process, none back to back) per model. */
  readonly pairs: number
  readonly tokens: number
  readonly threads: number
  readonly plainRun: (path: string, o: { readonly threads?: number; readonly contextSize?: number }) => Promise<Sample>
  readonly log: (s: string) => void
}): Promise<string> => {
  const { dir, pairs, runs, threads, log } = options
  const bundled = join(root, "dist", "gguf-worker.js")
  if (existsSync(bundled)) process.env.LLMSPELL_GGUF_WORKER = bundled
  else log("dist/gguf-worker.js missing (npm run build): the worker runs from the sources through tsx, which starts slower")
  const request: GenerateRequest = {
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me a long story about a llama who learns to spell." }],
    maxTokens: options.tokens,
    seed: 1,
    temperature: 0.8
  }
  // the price of a worker process: an idle one (Node, the bundle, no Llama yet)
  const idleRss = await Effect.runPromise(Effect.scoped(Effect.map(spawnWorker({ maxHeapMb: 2048 }), (w) => rssOf(w.pid))))

  const models = [
    { name: "60M F16", file: "iso-60m-f16.gguf", options: { vocabSize: 32000, embeddingLength: 512, blockCount: 8, headCount: 8, tensorType: "F16" as const } },
    { name: "60M Q8_0", file: "iso-60m-q8.gguf", options: { vocabSize: 32000, embeddingLength: 512, blockCount: 8, headCount: 8, tensorType: "Q8_0" as const } },
    {
      name: "~300 MB Q8_0",
      file: "iso-300mb-q8.gguf",
      options: { vocabSize: 32000, embeddingLength: 1024, blockCount: 16, headCount: 16, feedForwardLength: 2816, tensorType: "Q8_0" as const }
    }
  ]
  // the first model of the spare-worker measurement: small, so the spare starts while little else runs
  const firstModel = join(dir, "iso-first.gguf")
  await writeTinyLlamaGguf(firstModel, { name: "iso-first" })
  const lines: Array<string> = []
  const rows: Array<string> = []
  const ratios: Array<string> = []
  for (const m of models) {
    const path = join(dir, m.file)
    log(`isolation: writing ${m.name}…`)
    await writeTinyLlamaGguf(path, { ...m.options, contextLength: 1024, name: m.file })
    const sizeMiB = statSync(path).size / 2 ** 20
    const cold: Record<"process" | "none", Array<number>> = { process: [], none: [] }
    const spareLoads: Array<number> = []
    for (let r = 0; r < runs; r++) {
      for (const isolation of r % 2 === 0 ? (["process", "none"] as const) : (["none", "process"] as const)) {
        cold[isolation].push(await Effect.runPromise(coldRun(path, dir, isolation, threads, request)))
      }
      spareLoads.push(await Effect.runPromise(spareRun(path, firstModel, dir, threads, request)))
    }
    // warm: both backends loaded for the whole run and the plain script beside them, one request of
    // each back to back (order alternating), so each ratio compares moments of the same load
    const warm = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const backends = { process: yield* backendOf(dir, "process", threads), none: yield* backendOf(dir, "none", threads) }
      yield* collect(backends.process.generate(path, request))
      yield* collect(backends.none.generate(path, request))
      const rss = median(workerPids().map(rssOf))
      const samples: Array<{ plain: Sample; process: Completion; none: Completion }> = []
      for (let i = 0; i < pairs; i++) {
        log(`isolation: ${m.name} triple ${i + 1}/${pairs}`)
        const order = i % 2 === 0 ? (["plain", "process", "none"] as const) : (["none", "process", "plain"] as const)
        const sample: Partial<{ plain: Sample; process: Completion; none: Completion }> = {}
        for (const variant of order) {
          if (variant === "plain") sample.plain = yield* Effect.promise(() => options.plainRun(path, { threads, contextSize: 1024 }))
          else sample[variant] = yield* collect(backends[variant].generate(path, request))
        }
        samples.push(sample as { plain: Sample; process: Completion; none: Completion })
      }
      return { samples, rss }
    })))
    const tps = (c: Completion) => c.timings.tokensPerSecond ?? NaN
    const ttft = (c: Completion) => c.timings.timeToFirstTokenMs ?? NaN
    const plainTps = median(warm.samples.map((x) => x.plain.tokensPerSecond))
    const p = {
      tps: median(warm.samples.map((x) => tps(x.process))),
      ttft: median(warm.samples.map((x) => ttft(x.process))),
      cold: median(cold.process),
      vsPlain: median(warm.samples.map((x) => tps(x.process) / x.plain.tokensPerSecond)),
      vsNone: median(warm.samples.map((x) => tps(x.process) / tps(x.none))),
      spread: [Math.min(...warm.samples.map((x) => tps(x.process) / x.plain.tokensPerSecond)), Math.max(...warm.samples.map((x) => tps(x.process) / x.plain.tokensPerSecond))]
    }
    const n = {
      tps: median(warm.samples.map((x) => tps(x.none))),
      ttft: median(warm.samples.map((x) => ttft(x.none))),
      cold: median(cold.none),
      vsPlain: median(warm.samples.map((x) => tps(x.none) / x.plain.tokensPerSecond))
    }
    const spareCold = median(spareLoads)
    rows.push(
      `| ${m.name} (${sizeMiB.toFixed(0)} MiB) | ${plainTps.toFixed(1)} | ${n.tps.toFixed(1)} (${n.vsPlain.toFixed(2)}×) | ${p.tps.toFixed(1)} | ` +
        `**${p.vsPlain.toFixed(2)}×** (${p.spread[0]!.toFixed(2)}–${p.spread[1]!.toFixed(2)}) / ${p.vsNone.toFixed(2)}× | ${n.ttft.toFixed(1)} / ${p.ttft.toFixed(1)} ms (**${(p.ttft - n.ttft).toFixed(1)} ms**) | ` +
        `${n.cold.toFixed(0)} / ${p.cold.toFixed(0)} ms (+${(p.cold - n.cold).toFixed(0)} ms) | ${spareCold.toFixed(0)} ms (**${spareCold - n.cold >= 0 ? "+" : ""}${(spareCold - n.cold).toFixed(0)} ms**) | ${(warm.rss / 2 ** 20).toFixed(0)} MiB |`
    )
    ratios.push(
      `${m.name}: ${p.vsPlain.toFixed(2)}× the plain script's tokens/s (paired), warm TTFT ${(p.ttft - n.ttft).toFixed(1)} ms, ` +
        `cold load ${(p.cold - n.cold).toFixed(0)} ms without a spare worker, ${(spareCold - n.cold).toFixed(0)} ms with one`
    )
  }
  lines.push(
    "## GGUF worker isolation (bench:gguf)",
    "",
    "Command: `npm run build && npm run bench:gguf` (this section alone: `node --import tsx bench/gguf.ts --only isolation`).",
    `Generated llamas: 60M parameters F16 (vocab 32000, dim 512, 8 layers) and ~300 MB Q8_0 (vocab 32000, dim 1024, 16 layers,`,
    `ff 2816). GgufBackend with \`isolation = "process"\` (a worker process per model, the bundled dist/gguf-worker.js) and`,
    `\`isolation = "none"\` (in-process), parallel 1, ${threads} thread(s), context 1024, ${options.tokens} tokens, seed 1; the plain`,
    `node-llama-cpp script in the same process; ${runs} rounds interleaved (order alternating), ${runs} warm requests per round, medians.`,
    "Cold load = the first request's `loadMs` (validation, starting the worker and its llama.cpp, loading the model; the",
    "in-process loader's Llama already exists). Warm TTFT = time to first token of a request on the loaded model.",
    "",
    `Machine: ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? "?"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ${new Date().toISOString().slice(0, 16)} UTC;`,
    `load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(" / ")}: the machine is shared with other engineers' jobs (test suites,`,
    "benchmarks) that come and go, so absolute figures are noisy; the paired ratios are what to read.",
    "",
    "| model | plain tok/s | none tok/s (× plain) | process tok/s | process × plain (min–max) / × none | warm TTFT none / process (overhead) | cold load none / process (overhead) | cold load, spare worker (overhead) | worker RSS with the model |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `An idle worker (Node, the worker bundle, no llama.cpp yet) is ${(idleRss / 2 ** 20).toFixed(0)} MiB RSS: the memory price of isolation per loaded model`,
    "(the model's weights are mmap'd, counted in the worker's RSS as pages are touched, and not in the host's).",
    "",
    "Targets: ≥ 0.97× the plain script's tokens/s; warm TTFT overhead ≤ 20 ms; cold load overhead ≤ 150 ms.",
    `Result: ${ratios.join("; ")}.`,
    "Without a spare, the cold-load overhead is a new Node process plus creating llama.cpp's backend in it (getLlama),",
    "which the in-process loader pays once per program rather than once per model. With `spareWorker: true`",
    "(`LlamaLoaderLive.layerWith`), a started, initialised worker waits for the next load (the model 5 s after a first one",
    "here; the spare is started while the first, tiny model loads); the CLI, which loads one model per process, does not start one.",
    "Where a worker's cold load goes (measured separately, a fresh `node` process on the 60M F16 model, same shared machine,",
    "3 runs): import node-llama-cpp 660–810 ms, getLlama 760–960 ms, loadModel 360–570 ms, createContext 100–170 ms,",
    "resolveChatWrapper 940–1090 ms (~250 ms in a warm process: JIT and first-use costs). A spare worker saves the first two;",
    "warming its chat-template code on a sample template cut resolveChatWrapper only to 570–800 ms, so it is not done.",
    "Reaching ≤ 150 ms would need the model loaded ahead (a spare per expected model) or the chat wrapper resolved by the host.",
    ""
  )
  return lines.join("\n")
}

/**
 * Cloud streaming benchmark (`npm run bench:cloud` = `node --import tsx bench/cloud.ts`): the
 * per-token overhead of a streamed completion through `llmspell run` (dist/cli.js, an
 * `openai_compatible` instance pointed at the fake) against the same request sent with `curl -N`
 * to the same fake server (test/fixtures/fakeOpenAI.ts, pacing its SSE chunks at a fixed rate,
 * 2,000 tokens/s by default), interleaved in one run. The rate is measured on the receiving side,
 * from the first byte of the answer to the last, so process start-up and connection set-up are
 * left out: what remains is the time each token takes to get through the client. Target: llmspell
 * ≥ 0.95× curl's tokens/s.
 *
 * Usage: node --import tsx bench/cloud.ts [--runs N] [--tokens N] [--rate TOKENS_PER_S] [--json].
 * Needs `npm run build` first. Writes only to a temp directory, removed at the end.
 */
import { spawn, spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { startFakeOpenAI } from "../test/fixtures/fakeOpenAI.js"
import { median } from "./stats.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const bin = path.join(root, "dist", "cli.js")
const args = process.argv.slice(2)
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const runs = Math.max(1, arg("--runs", 3))
const tokens = Math.max(10, arg("--tokens", 4000))
const rate = arg("--rate", 2000)
const asJson = args.includes("--json")

if (!existsSync(bin)) {
  console.error("dist/cli.js is missing: run `npm run build` first")
  process.exit(1)
}
if (spawnSync("curl", ["--version"]).status !== 0) {
  console.error("curl is missing: the baseline needs it")
  process.exit(1)
}

/** Runs a command; returns the times of its first and last stdout bytes and what it printed. */
const timed = (command: string, argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv) =>
  new Promise<{ firstMs: number; lastMs: number; out: string; code: number | null; err: string }>((resolve, reject) => {
    const child = spawn(command, argv, { env, stdio: ["ignore", "pipe", "pipe"] })
    let first = 0
    let last = 0
    let out = ""
    let err = ""
    child.stdout.on("data", (c: Buffer) => {
      const now = performance.now()
      if (first === 0) first = now
      last = now
      out += c.toString("utf8")
    })
    child.stderr.on("data", (c: Buffer) => void (err += c.toString("utf8")))
    child.on("error", reject)
    child.on("close", (code) => resolve({ firstMs: first, lastMs: last, out, code, err }))
  })


const main = async () => {
  const content = Array.from({ length: tokens }, (_, i) => `t${i % 10}`).join(" ")
  const fake = await startFakeOpenAI({ models: ["bench-model"], tokensPerSecond: rate, answer: () => ({ content }) })
  const dir = await mkdtemp(path.join(os.tmpdir(), "llmspell-bench-cloud-"))
  try {
    const config = path.join(dir, "config.toml")
    await writeFile(config, `[providers.bench]\nprovider_type = "openai_compatible"\nbase_url = "${fake.baseUrl}"\n`)
    const env = { PATH: process.env["PATH"] ?? "", HOME: dir, XDG_CONFIG_HOME: path.join(dir, "xdg"), NO_COLOR: "1" }
    const body = JSON.stringify({
      model: "bench-model",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true }
    })
    const curl = () =>
      timed("curl", ["-sN", "-X", "POST", `${fake.baseUrl}/chat/completions`, "-H", "content-type: application/json", "--data-binary", body], env)
    const llmspell = () => timed(process.execPath, [bin, "--config", config, "run", "-m", "bench/bench-model", "hi"], env)
    // The first token is the reference point on both sides: (tokens - 1) intervals from first to last.
    const tokensPerSecond = (r: { firstMs: number; lastMs: number }) => ((tokens - 1) * 1000) / (r.lastMs - r.firstMs)

    await curl()
    await llmspell() // warm the file cache
    const rows: Array<{ curl: number; llmspell: number }> = []
    for (let i = 0; i < runs; i++) {
      const c = await curl()
      const l = await llmspell()
      if (l.code !== 0 || l.out.trim() !== content) throw new Error(`llmspell run failed (exit ${l.code}): ${l.err}`)
      if (!c.out.includes("[DONE]")) throw new Error("curl did not get the whole stream")
      rows.push({ curl: tokensPerSecond(c), llmspell: tokensPerSecond(l) })
    }
    const result = {
      machine: `${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}, ${os.platform()}`,
      loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
      tokens,
      rateFromFake: rate,
      runs,
      curlTokensPerSecond: Math.round(median(rows.map((r) => r.curl))),
      llmspellTokensPerSecond: Math.round(median(rows.map((r) => r.llmspell))),
      ratio: Number((median(rows.map((r) => r.llmspell / r.curl))).toFixed(3)),
      perRun: rows.map((r) => ({ curl: Math.round(r.curl), llmspell: Math.round(r.llmspell) }))
    }
    if (asJson) console.log(JSON.stringify(result))
    else {
      console.log(`machine: ${result.machine}; load average ${result.loadAverage.join(" ")}`)
      console.log(`${tokens} tokens at ${rate} tokens/s from the fake, ${runs} interleaved runs (median)`)
      console.log(`curl -N:       ${result.curlTokensPerSecond} tokens/s`)
      console.log(`llmspell run:  ${result.llmspellTokensPerSecond} tokens/s`)
      console.log(`ratio: ${result.ratio} (target ≥ 0.95)`)
    }
  } finally {
    await fake.close()
    await rm(dir, { recursive: true, force: true })
  }
}

await main()

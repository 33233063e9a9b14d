// CLI start-up benchmark (`npm run bench:startup`): wall time, CPU time and peak RSS of whole
// processes, as ratios against `node -e ''` measured in the same rounds:
//   llmspell --help
//   llmspell config show --json
//   llmspell ps, connected to a warm `llmspell serve` this script starts (found by its state file)
// Every round runs each case once, in an order that rotates from round to round, so load on a
// shared machine (other engineers, other benchmarks) hits every case alike; the load average is
// printed before and after. With `--compare DIR`, the same llmspell cases also run from another
// build (DIR/cli.js, e.g. the tree before a change), interleaved in the same rounds.
//
// CPU time and peak RSS come from a preloaded script that reports `process.resourceUsage()` as the
// child exits (the same preload for every case, the baseline included). CPU time is the steadier
// figure on a busy machine; wall time is what a user waits.
//
// Usage: node bench/startup.mjs [--runs N] [--compare DIR] [--json]
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const args = process.argv.slice(2)
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined)
const runs = Math.max(10, Number(option("--runs") ?? 15))
const compareDir = option("--compare")
const asJson = args.includes("--json")
const bin = path.join(root, "dist", "cli.js")

if (!existsSync(bin) || !existsSync(path.join(root, "dist", "cli.cjs"))) {
  console.error("dist/ is missing or from an older build: building it first (npm run build)")
  const built = spawnSync(process.execPath, [path.join(root, "scripts", "build.mjs")], { cwd: root, stdio: "inherit" })
  if (built.status !== 0) process.exit(1)
}

// A scratch HOME and cwd: no user config, no user server's state file. The server's Ollama instance
// points at a closed port, so `ps` does not depend on an Ollama running on this machine.
const scratch = mkdtempSync(path.join(os.tmpdir(), "llmspell-bench-"))
const closedPort = await new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const { port } = s.address()
    s.close(() => resolve(port))
  })
})
const env = {
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: scratch,
  XDG_CONFIG_HOME: path.join(scratch, "xdg"),
  XDG_RUNTIME_DIR: path.join(scratch, "run"),
  OLLAMA_HOST: `127.0.0.1:${closedPort}`,
  NO_COLOR: "1"
}

const usageFile = path.join(scratch, "usage")
const preload = path.join(scratch, "usage.cjs")
writeFileSync(
  preload,
  `process.on("exit", () => { const r = process.resourceUsage(); require("node:fs").writeFileSync(${
    JSON.stringify(usageFile)
  }, JSON.stringify({ cpu: r.userCPUTime + r.systemCPUTime, rss: r.maxRSS })) })\n`
)

/** Starts `llmspell serve --port 0` from this tree; resolves once it says where it listens. */
const startServer = () =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "serve", "--port", "0"], { cwd: scratch, env, stdio: ["ignore", "ignore", "pipe"] })
    let err = ""
    child.stderr.on("data", (chunk) => {
      err += chunk
      const url = /listening on (http:\/\/\S+)/.exec(err)?.[1]
      if (url !== undefined) resolve({ child, url })
    })
    child.on("exit", (code) => reject(new Error(`llmspell serve exited (${code}) before listening: ${err}`)))
  })

const server = await startServer()

const llmspellCases = (label, cli) => [
  { name: `${label}--help`, argv: [cli, "--help"] },
  { name: `${label}config show --json`, argv: [cli, "config", "show", "--json"] },
  { name: `${label}ps (connected)`, argv: [cli, "ps"] }
]
const cases = [
  { name: "node -e ''", argv: ["-e", ""] },
  ...llmspellCases("llmspell ", bin),
  ...(compareDir !== undefined ? llmspellCases("compared: ", path.resolve(compareDir, "cli.js")) : [])
]

/** One run: wall time around the whole child, its CPU time and peak RSS. */
const measure = (c) => {
  const start = process.hrtime.bigint()
  const r = spawnSync(process.execPath, ["--require", preload, ...c.argv], { cwd: scratch, env, encoding: "utf8", maxBuffer: 16 << 20 })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (r.status !== 0) throw new Error(`${c.name} exited ${r.status}: ${r.stderr}`)
  if (c.name.includes("ps (connected)") && !/no models loaded|NAME/.test(r.stdout)) throw new Error(`${c.name}: ${r.stdout}${r.stderr}`)
  const usage = JSON.parse(readFileSync(usageFile, "utf8"))
  return { ms, cpuMs: usage.cpu / 1000, rssKiB: usage.rss }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

const loadBefore = os.loadavg()
const samples = new Map(cases.map((c) => [c.name, []]))
try {
  // One warm-up round (file cache, the server's first ps), then `runs` rounds in rotating order.
  for (const c of cases) measure(c)
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < cases.length; j++) {
      const c = cases[(i + j) % cases.length]
      samples.get(c.name).push(measure(c))
    }
  }
} finally {
  server.child.kill("SIGTERM")
  await new Promise((resolve) => server.child.once("exit", resolve))
  rmSync(scratch, { recursive: true, force: true })
}
const loadAfter = os.loadavg()

const rows = cases.map((c) => {
  const s = samples.get(c.name)
  return {
    name: c.name,
    medianMs: median(s.map((x) => x.ms)),
    minMs: Math.min(...s.map((x) => x.ms)),
    maxMs: Math.max(...s.map((x) => x.ms)),
    medianCpuMs: median(s.map((x) => x.cpuMs)),
    peakRssMiB: Math.max(...s.map((x) => x.rssKiB)) / 1024
  }
})
const base = rows[0]
const ratio = (r) => r.medianMs / base.medianMs
const cpuRatio = (r) => r.medianCpuMs / base.medianCpuMs
const machine = {
  nproc: os.availableParallelism(),
  cpu: os.cpus()[0]?.model ?? "unknown",
  node: process.version,
  runs,
  loadBefore: loadBefore.map((l) => Number(l.toFixed(2))),
  loadAfter: loadAfter.map((l) => Number(l.toFixed(2)))
}
const byName = (name) => rows.find((r) => r.name === name)
const targets = [
  { what: "llmspell --help", row: byName("llmspell --help"), limit: 2.5 },
  { what: "llmspell ps (connected)", row: byName("llmspell ps (connected)"), limit: 3 }
].map((t) => ({ what: t.what, limit: t.limit, ratio: Number(ratio(t.row).toFixed(2)), met: ratio(t.row) <= t.limit }))

if (asJson) {
  console.log(JSON.stringify({ machine, rows, targets }, null, 2))
} else {
  console.log(
    `machine: ${machine.nproc} cores, ${machine.cpu}, node ${machine.node}; ${runs} rounds, order rotating; ` +
      `load average ${machine.loadBefore.join(" ")} before, ${machine.loadAfter.join(" ")} after`
  )
  console.log("")
  console.log("| command | median wall | min–max | × node -e '' | median CPU | × node -e '' | peak RSS |")
  console.log("|---|---:|---:|---:|---:|---:|---:|")
  for (const r of rows) {
    console.log(
      `| \`${r.name}\` | ${r.medianMs.toFixed(0)} ms | ${r.minMs.toFixed(0)}–${r.maxMs.toFixed(0)} ms | ${ratio(r).toFixed(2)} | ` +
        `${r.medianCpuMs.toFixed(0)} ms | ${cpuRatio(r).toFixed(2)} | ${r.peakRssMiB.toFixed(0)} MiB |`
    )
  }
  console.log("")
  for (const t of targets) console.log(`target: ${t.what} ≤ ${t.limit}× node -e '' (wall): ${t.met ? "met" : "NOT met"} (${t.ratio}×)`)
}

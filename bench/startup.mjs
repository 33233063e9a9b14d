// CLI startup benchmark (`npm run bench:startup`): median wall time and peak RSS of
// `llmspell --help`, `llmspell config show --json` and `node -e ''` (the baseline), run interleaved
// in one process so machine noise hits all three alike. Figures go into BENCHMARKS.md as they are
// printed, with ratios against the baseline of the same run.
//
// Peak RSS comes from GNU time (`/usr/bin/time -f %M`, KiB) when it is installed, otherwise from a
// preloaded script that reports `process.resourceUsage().maxRSS` as the child exits.
//
// Usage: node bench/startup.mjs [--runs N] [--json]
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const bin = path.join(root, "dist", "cli.js")
const args = process.argv.slice(2)
const runsArg = args.indexOf("--runs")
const runs = Math.max(10, runsArg >= 0 ? Number(args[runsArg + 1]) : 15)
const asJson = args.includes("--json")

if (!existsSync(bin)) {
  console.error("dist/cli.js is missing: building it first (npm run build)")
  const built = spawnSync(process.execPath, [path.join(root, "scripts", "build.mjs")], { cwd: root, stdio: "inherit" })
  if (built.status !== 0) process.exit(1)
}

// A scratch HOME and cwd: no user config file can change what `config show` does.
const scratch = mkdtempSync(path.join(os.tmpdir(), "llmspell-bench-"))
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: scratch, XDG_CONFIG_HOME: path.join(scratch, "xdg"), NO_COLOR: "1" }

const GNU_TIME = "/usr/bin/time"
const useGnuTime = existsSync(GNU_TIME) && spawnSync(GNU_TIME, ["-f", "%M", "true"], { encoding: "utf8" }).status === 0
const rssFile = path.join(scratch, "rss")
const preload = path.join(scratch, "rss.cjs")
writeFileSync(
  preload,
  `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)))\n`
)

const cases = [
  { name: "node -e ''", argv: ["-e", ""] },
  { name: "llmspell --help", argv: [bin, "--help"] },
  { name: "llmspell config show --json", argv: [bin, "config", "show", "--json"] }
]

/** One run: wall time measured here around the whole child, peak RSS in KiB. */
const measure = (c) => {
  const nodeArgs = useGnuTime ? c.argv : ["--require", preload, ...c.argv]
  const command = useGnuTime ? GNU_TIME : process.execPath
  const commandArgs = useGnuTime ? ["-f", "__RSS__%M", process.execPath, ...nodeArgs] : nodeArgs
  const start = process.hrtime.bigint()
  const r = spawnSync(command, commandArgs, { cwd: scratch, env, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (r.status !== 0) throw new Error(`${c.name} exited ${r.status}: ${r.stderr}`)
  const rssKiB = useGnuTime ? Number(/__RSS__(\d+)/.exec(r.stderr)?.[1]) : Number(readFileSync(rssFile, "utf8"))
  return { ms, rssKiB }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

// One warm-up round (file cache), then `runs` interleaved rounds.
for (const c of cases) measure(c)
const samples = new Map(cases.map((c) => [c.name, []]))
for (let i = 0; i < runs; i++) for (const c of cases) samples.get(c.name).push(measure(c))
rmSync(scratch, { recursive: true, force: true })

const rows = cases.map((c) => {
  const s = samples.get(c.name)
  return {
    name: c.name,
    medianMs: median(s.map((x) => x.ms)),
    minMs: Math.min(...s.map((x) => x.ms)),
    maxMs: Math.max(...s.map((x) => x.ms)),
    peakRssMiB: Math.max(...s.map((x) => x.rssKiB)) / 1024,
    medianRssMiB: median(s.map((x) => x.rssKiB)) / 1024
  }
})
const base = rows[0]
const machine = {
  nproc: os.availableParallelism(),
  cpu: os.cpus()[0]?.model ?? "unknown",
  node: process.version,
  rss: useGnuTime ? "GNU time %M" : "process.resourceUsage().maxRSS (preload)",
  runs
}

if (asJson) {
  console.log(JSON.stringify({ machine, rows }, null, 2))
} else {
  console.log(`machine: ${machine.nproc} cores, ${machine.cpu}, node ${machine.node}; ${runs} interleaved runs each; RSS via ${machine.rss}`)
  console.log("")
  console.log("| command | median wall | min–max | × node -e '' | peak RSS | × node -e '' |")
  console.log("|---|---:|---:|---:|---:|---:|")
  for (const r of rows) {
    console.log(
      `| \`${r.name}\` | ${r.medianMs.toFixed(0)} ms | ${r.minMs.toFixed(0)}–${r.maxMs.toFixed(0)} ms | ` +
        `${(r.medianMs / base.medianMs).toFixed(2)} | ${r.peakRssMiB.toFixed(0)} MiB | ${(r.peakRssMiB / base.peakRssMiB).toFixed(2)} |`
    )
  }
  const help = rows[1]
  console.log("")
  console.log(`target: llmspell --help under 250 ms median: ${help.medianMs < 250 ? "met" : "NOT met"} (${help.medianMs.toFixed(0)} ms)`)
}

/**
 * Hub pull benchmark (`npm run bench:pull` = `node --import tsx bench/pull.ts`): in one run, against the
 * local fake hub (test/fixtures/fakeHub.ts, a 1 GiB file served from disk through the hub → CDN redirect):
 *
 * 1. Throughput: `llmspell model pull org/big:Q4_K_M --json` (a child process of dist/cli.js: listing,
 *    download, sha256 while streaming, rename, manifest) against the baseline `curl -sSL -o FILE URL &&
 *    sha256sum FILE` on the same URL, interleaved, median of N runs each; wall time includes verification.
 * 2. Resume: a pull killed (SIGKILL) once half the file is in, then pulled again: the bytes the fake
 *    served over both runs minus the file size are what the resume re-transferred.
 *
 * `--compare DIR` (another checkout of llmspell, built) adds its `model pull`, interleaved in the same runs:
 * a before/after on one machine at one moment.
 *
 * Usage: node --import tsx bench/pull.ts [--runs N] [--size-mib N] [--json] [--compare DIR]. Needs `npm run build` first.
 * Writes only to a temp directory, removed at the end.
 */
import { spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { mkdtemp, open, rm, stat } from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { deterministicContent, ggufContent, startFakeHub } from "../test/fixtures/fakeHub.js"
import { median } from "./stats.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const bin = path.join(root, "dist", "cli.js")
const args = process.argv.slice(2)
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const runs = Math.max(1, arg("--runs", 3))
const size = arg("--size-mib", 1024) * 1024 * 1024
const asJson = args.includes("--json")
const compareAt = args.indexOf("--compare")
const compareBin = compareAt >= 0 ? path.join(path.resolve(args[compareAt + 1]!), "dist", "cli.js") : undefined

if (!existsSync(bin)) {
  console.error("dist/cli.js is missing: run `npm run build` first")
  process.exit(1)
}
const hasCurl = spawnSync("curl", ["--version"]).status === 0
const hasSha256sum = spawnSync("sha256sum", ["--version"]).status === 0

const scratch = await mkdtemp(path.join(os.tmpdir(), "llmspell-bench-pull-"))
const source = path.join(scratch, "source.gguf")
const log = (s: string) => console.error(s)

// The served file: generated once to disk (page cache), hashed once so the fake does not re-hash it.
log(`writing a ${size / 1024 ** 2} MiB source file…`)
{
  const handle = await open(source, "w")
  const generate = deterministicContent("bench-pull")
  const hash = createHash("sha256")
  const chunk = 8 * 1024 * 1024
  for (let offset = 0; offset < size; offset += chunk) {
    const bytes = generate(offset, Math.min(chunk, size - offset)).slice()
    // A pull refuses a .gguf without a GGUF header: start the file with one.
    if (offset === 0) bytes.set(ggufContent("bench-pull", 4096))
    hash.update(bytes)
    await handle.write(bytes)
  }
  await handle.close()
  var sourceSha = hash.digest("hex")
}

const hub = await startFakeHub({ pageSize: 50 })
await hub.addRepo({ name: "org/big", files: [{ path: "big-Q4_K_M.gguf", diskPath: source, sha256: sourceSha }] })
const url = `${hub.url}/org/big/resolve/main/big-Q4_K_M.gguf`

interface ChildResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

const runChild = (
  command: string,
  argv: ReadonlyArray<string>,
  env: Record<string, string> = {},
  onStdout?: (text: string, kill: () => void) => void
) =>
  new Promise<ChildResult>((resolve, reject) => {
    const started = performance.now()
    const child = spawn(command, argv, {
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: scratch, XDG_CONFIG_HOME: path.join(scratch, "xdg"), ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString("utf8")
      onStdout?.(stdout, () => child.kill("SIGKILL"))
    })
    child.stderr.on("data", (c: Buffer) => void (stderr += c.toString("utf8")))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, ms: performance.now() - started }))
  })

const sha256File = async (file: string): Promise<string> => {
  if (hasSha256sum) return spawnSync("sha256sum", [file], { encoding: "utf8" }).stdout.split(" ")[0]!
  const hash = createHash("sha256")
  const handle = await open(file, "r")
  for await (const chunk of handle.createReadStream({ highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer)
  return hash.digest("hex")
}

/** Baseline: curl (or, without curl, Node's fetch piped to a file), then sha256 of the file. */
const baseline = async (): Promise<number> => {
  const out = path.join(scratch, "curl.gguf")
  await rm(out, { force: true })
  const started = performance.now()
  if (hasCurl) {
    const r = await runChild("curl", ["-sSfL", "-o", out, url])
    if (r.code !== 0) throw new Error(`curl failed: ${r.stderr}`)
  } else {
    const script = `const r=await fetch(${JSON.stringify(url)});const f=await import("node:fs");` +
      `await import("node:stream/promises").then(s=>s.pipeline(r.body,f.createWriteStream(${JSON.stringify(out)})))`
    const r = await runChild(process.execPath, ["--input-type=module", "-e", script])
    if (r.code !== 0) throw new Error(`fetch baseline failed: ${r.stderr}`)
  }
  const digest = await sha256File(out)
  const ms = performance.now() - started
  if (digest !== sourceSha) throw new Error("baseline download is corrupt")
  await rm(out, { force: true })
  return ms
}

const pullEnv = (store: string) => ({ HF_ENDPOINT: hub.url, LLMSPELL_MODELS_DIR: store })

const llmspell = async (cli: string = bin): Promise<number> => {
  const store = path.join(scratch, "store")
  await rm(store, { recursive: true, force: true })
  const r = await runChild(process.execPath, [cli, "model", "pull", "org/big:Q4_K_M", "--json"], pullEnv(store))
  if (r.code !== 0) throw new Error(`llmspell pull failed (${r.code}): ${r.stdout.slice(-500)} ${r.stderr}`)
  const last = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { result?: { path?: string } }
  if ((await stat(last.result!.path!)).size !== size) throw new Error("llmspell produced a wrong size")
  await rm(store, { recursive: true, force: true })
  return r.ms
}


// Warm-up (page cache of the source, the CLI bundle, curl) then interleaved runs.
log("warming up…")
await baseline()
await llmspell()
if (compareBin !== undefined) await llmspell(compareBin)
const base: Array<number> = []
const ours: Array<number> = []
const before: Array<number> = []
for (let i = 0; i < runs; i++) {
  log(`run ${i + 1}/${runs}`)
  base.push(await baseline())
  ours.push(await llmspell())
  if (compareBin !== undefined) before.push(await llmspell(compareBin))
}

// Resume: kill at 50%, pull again.
log("resume: killing a pull at 50%…")
const store = path.join(scratch, "store-resume")
hub.resetStats()
const killed = await runChild(process.execPath, [bin, "model", "pull", "org/big:Q4_K_M", "--json"], pullEnv(store), (text, kill) => {
  const lines = text.trim().split("\n")
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const e = JSON.parse(lines[i]!) as { completedBytes?: number }
      if ((e.completedBytes ?? 0) >= size / 2) kill()
      break
    } catch {
      continue
    }
  }
})
const servedFirst = hub.bytesServed
const partial = path.join(store, "hub", "org", "big", "big-Q4_K_M.gguf.partial")
const partialBytes = (await stat(partial).catch(() => undefined))?.size ?? 0
hub.resetStats()
const resumed = await runChild(process.execPath, [bin, "model", "pull", "org/big:Q4_K_M", "--json"], pullEnv(store))
const servedSecond = hub.bytesServed
const resumeRanges = hub.requests.filter((r) => r.server === "cdn" && r.range !== "bytes=0-0").map((r) => r.range)
if (resumed.code !== 0) throw new Error(`resumed pull failed: ${resumed.stdout.slice(-500)}`)
const extra = servedFirst + servedSecond - size

await hub.close()
await rm(scratch, { recursive: true, force: true })

const mib = (b: number) => b / 1024 ** 2
const result = {
  machine: `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Node ${process.version}, ${os.platform()}`,
  fileMiB: mib(size),
  runs,
  baseline: hasCurl ? `curl -sSfL -o FILE URL && ${hasSha256sum ? "sha256sum" : "node sha256"} FILE` : "node fetch → file + sha256",
  baselineMs: base.map(Math.round),
  llmspellMs: ours.map(Math.round),
  baselineMedianMs: Math.round(median(base)),
  llmspellMedianMs: Math.round(median(ours)),
  baselineMiBps: Math.round(mib(size) / (median(base) / 1000)),
  llmspellMiBps: Math.round(mib(size) / (median(ours) / 1000)),
  throughputRatio: Number((median(base) / median(ours)).toFixed(3)),
  ...(compareBin !== undefined
    ? {
      compare: compareBin,
      compareMs: before.map(Math.round),
      compareMedianMs: Math.round(median(before)),
      compareThroughputRatio: Number((median(base) / median(before)).toFixed(3))
    }
    : {}),
  resume: {
    killedBy: killed.signal,
    partialBytes,
    servedFirstRun: servedFirst,
    servedSecondRun: servedSecond,
    resumeRanges,
    extraBytes: extra,
    extraPercent: Number(((extra / size) * 100).toFixed(3))
  }
}
if (asJson) console.log(JSON.stringify(result, null, 2))
else {
  console.log(`machine: ${result.machine}`)
  console.log(`file: ${result.fileMiB} MiB, ${runs} interleaved runs each; baseline: ${result.baseline}`)
  console.log(`baseline  median ${result.baselineMedianMs} ms (${result.baselineMiBps} MiB/s)  runs ${result.baselineMs.join(", ")}`)
  console.log(`llmspell  median ${result.llmspellMedianMs} ms (${result.llmspellMiBps} MiB/s)  runs ${result.llmspellMs.join(", ")}`)
  console.log(`throughput ratio (baseline time / llmspell time): ${result.throughputRatio}× (target ≥ 0.9)`)
  if (compareBin !== undefined) {
    console.log(`--compare ${compareBin}: median ${Math.round(median(before))} ms, runs ${before.map(Math.round).join(", ")}; ratio ${(median(base) / median(before)).toFixed(3)}×`)
  }
  console.log(
    `resume: killed (${killed.signal}) with ${mib(partialBytes).toFixed(1)} MiB in the partial; served ${mib(servedFirst).toFixed(1)} + ` +
      `${mib(servedSecond).toFixed(1)} MiB; re-transferred ${mib(extra).toFixed(2)} MiB = ${result.resume.extraPercent}% (target < 1%); ` +
      `ranges ${resumeRanges.join(", ")}`
  )
}

/**
 * Store inventory benchmark (`npm run bench:store` = `node --import tsx bench/store.ts`): 200 models
 * spread across the four foreign stores (test/fixtures/foreignStores.ts `populatedMachine`: 50 Ollama
 * models, 50 HF cache files in 10 repos, 50 LM Studio files, 50 node-llama-cpp files, each a distinct
 * tiny GGUF) under a scratch HOME, then, interleaved in the same run, median of N each:
 *
 * 1. `llmspell model list --backend gguf` (a child process of dist/cli.js: config, the whole inventory,
 *    the table) — the figure the issue's ≤ 3× target is about;
 * 2. `ls -R` of the four store roots (a child process; no stat, no file read);
 * 3. `llmspell config show --json`: the same CLI start-up without the inventory, to separate the two;
 * 4. in this process, `ModelStore.list` alone (no process start-up), against an in-process
 *    `readdir(…, { recursive: true })` of the same roots.
 *
 * Usage: node --import tsx bench/store.ts [--runs N] [--json]. Needs `npm run build` first.
 */
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readdir, rm } from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as ModelStoreLive from "../src/layers/ModelStoreLive.js"
import { populatedMachine } from "../test/fixtures/foreignStores.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const bin = path.join(root, "dist", "cli.js")
const args = process.argv.slice(2)
const runsAt = args.indexOf("--runs")
const runs = Math.max(3, runsAt >= 0 ? Number(args[runsAt + 1]) : 15)
const asJson = args.includes("--json")

if (!existsSync(bin)) {
  console.error("dist/cli.js is missing: run `npm run build` first")
  process.exit(1)
}

const timeChild = (command: string, argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv) =>
  new Promise<{ ms: number; stdout: string }>((resolve, reject) => {
    const start = performance.now()
    const child = spawn(command, argv, { env, stdio: ["ignore", "pipe", "inherit"] })
    let stdout = ""
    child.stdout.on("data", (c: Buffer) => void (stdout += c.toString("utf8")))
    child.on("error", reject)
    child.on("close", (code) => {
      const ms = performance.now() - start
      if (code !== 0) reject(new Error(`${command} ${argv.join(" ")} exited ${code}`))
      else resolve({ ms, stdout })
    })
  })

const timeInProcess = async (f: () => Promise<unknown>) => {
  const start = performance.now()
  await f()
  return performance.now() - start
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const home = await mkdtemp(path.join(os.tmpdir(), "llmspell-bench-store-"))
try {
  const { names, roots } = await populatedMachine(home, 50)
  const expected = Object.values(names).reduce((n, list) => n + list.length, 0)
  const env = { PATH: process.env["PATH"] ?? "", HOME: home, XDG_CONFIG_HOME: path.join(home, "xdg"), NO_COLOR: "1" }
  const rootList = [roots.ollama, roots.hfCache, roots.lmstudio, roots.nodeLlamaCpp]
  const store = ModelStoreLive.make({ ollama: "auto", hfCache: "auto", lmstudio: "auto", nodeLlamaCpp: "auto", env: {}, home })
  const own = { directory: path.join(home, ".llmspell", "models"), instance: "gguf" }

  // warm the file cache and check what is measured
  const first = await timeChild(process.execPath, [bin, "model", "list", "--backend", "gguf"], env)
  const rows = first.stdout.trim().split("\n").length - 1
  if (rows !== expected) throw new Error(`model list showed ${rows} models, expected ${expected}`)
  await timeChild("ls", ["-R", ...rootList], env)

  const samples = { list: [] as Array<number>, ls: [] as Array<number>, config: [] as Array<number>, inProcess: [] as Array<number>, readdir: [] as Array<number> }
  for (let i = 0; i < runs; i++) {
    samples.list.push((await timeChild(process.execPath, [bin, "model", "list", "--backend", "gguf"], env)).ms)
    samples.ls.push((await timeChild("ls", ["-R", ...rootList], env)).ms)
    samples.config.push((await timeChild(process.execPath, [bin, "config", "show", "--json"], env)).ms)
    samples.inProcess.push(await timeInProcess(() => Effect.runPromise(store.list(own))))
    samples.readdir.push(await timeInProcess(() => Promise.all(rootList.map((r) => readdir(r, { recursive: true })))))
  }
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<keyof typeof samples, number>
  const report = {
    machine: `${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)}`,
    runs,
    models: expected,
    medianMs: m,
    ratios: {
      modelListVsLsR: m.list / m.ls,
      modelListMinusStartupVsLsR: Math.max(0, m.list - m.config) / m.ls,
      inProcessListVsReaddir: m.inProcess / m.readdir
    }
  }
  if (asJson) console.log(JSON.stringify(report, null, 2))
  else {
    const f = (x: number) => `${x.toFixed(1)} ms`
    console.log(`${report.machine}; ${expected} models in four stores; median of ${runs}`)
    console.log(`llmspell model list --backend gguf  ${f(m.list)}  (${report.ratios.modelListVsLsR.toFixed(2)}× ls -R)`)
    console.log(`ls -R (four roots)                  ${f(m.ls)}`)
    console.log(`llmspell config show --json         ${f(m.config)}  (start-up; list minus this: ${report.ratios.modelListMinusStartupVsLsR.toFixed(2)}× ls -R)`)
    console.log(`ModelStore.list in-process          ${f(m.inProcess)}  (${report.ratios.inProcessListVsReaddir.toFixed(2)}× in-process recursive readdir, ${f(m.readdir)})`)
  }
} finally {
  await rm(home, { recursive: true, force: true })
}

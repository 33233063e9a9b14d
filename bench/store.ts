/**
 * Store inventory benchmark (`npm run bench:store` = `node --import tsx bench/store.ts`): 200 models
 * spread across the four foreign stores (test/fixtures/foreignStores.ts `populatedMachine`: 50 Ollama
 * models, 50 HF cache files in 10 repos, 50 LM Studio files, 50 node-llama-cpp files, each a distinct
 * tiny GGUF) under a scratch HOME, then, interleaved in the same run, median of N each:
 *
 * 1. `llmspell model list --backend gguf` (a child process of dist/cli.js: config, the whole inventory,
 *    the table) — the figure the issue's ≤ 3× target is about — with the inventory cache
 *    (`<model_directory>/.cache/inventory.json`) valid, and without it (the file deleted before the run);
 * 2. `ls -R` of the four store roots (a child process; no stat, no file read);
 * 3. `node -e ''`: the floor of any Node command, against which `ls -R` is already several times slower;
 * 4. `llmspell config show --json`: the same CLI start-up without the inventory, to separate the two;
 * 5. in this process, `ModelStore.list` alone (no process start-up), cached and uncached, against an
 *    in-process `readdir(…, { recursive: true })` of the same roots; and `ModelStore.find` of one
 *    Ollama name (it looks only where that name can live).
 *
 * The fixture's timestamps are set two days back first, as on a machine whose models were pulled
 * before the listing: the cache does not trust a store changed in the last two seconds (racy mtimes).
 *
 * `--compare DIR` (another checkout of llmspell, built, e.g. the commit before a change) adds its `model
 * list` and in-process `ModelStore.list`, cached and uncached, interleaved in the same run: a before/after
 * on one machine at one moment, the only comparison a shared, busy machine allows.
 *
 * 6. Long headers (a real model's chat template sits after 5–15 MB of vocabulary and merges): 8 files of
 *    a 150k-token vocabulary and 150k merges (~4 MB of header each, the template after them) in a
 *    node-llama-cpp store, `ModelStore.list` in process with no cache at all (each header walked to its
 *    tensor infos for the capabilities), with only the facts cache valid (`.cache/facts.json`: a store
 *    changed, so rescanned), and with every cache valid; against reading the same header bytes
 *    (`fs.read` of each header, no parsing) in the same run.
 *
 * Usage: node --import tsx bench/store.ts [--runs N] [--json] [--compare DIR]. Needs `npm run build` first.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { lstat, lutimes, mkdir, mkdtemp, open, readdir, rm, writeFile } from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { StoresConfig } from "../src/domain/ConfigSchema.js"
import * as ModelStoreLive from "../src/layers/store/ModelStoreLive.js"
import * as ScanFs from "../src/layers/store/scanFs.js"
import type { ModelStoreService } from "../src/services/ModelStore.js"
import { populatedMachine } from "../test/fixtures/foreignStores.js"
import { encodeGguf, GgmlType, v } from "../test/fixtures/ggufWriter.js"
import { median } from "./stats.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const bin = path.join(root, "dist", "cli.js")
const args = process.argv.slice(2)
const runsAt = args.indexOf("--runs")
const runs = Math.max(3, runsAt >= 0 ? Number(args[runsAt + 1]) : 15)
const asJson = args.includes("--json")
const compareAt = args.indexOf("--compare")
const compare = compareAt >= 0 ? path.resolve(args[compareAt + 1]!) : undefined

if (!existsSync(bin)) {
  console.error("dist/cli.js is missing: run `npm run build` first")
  process.exit(1)
}
if (compare !== undefined && !existsSync(path.join(compare, "dist", "cli.js"))) {
  console.error(`${compare}/dist/cli.js is missing: build that checkout first`)
  process.exit(1)
}

/** A ModelStore from a checkout's ModelStoreLive: `make` is an Effect since the store reads through ScanFs, a plain function before. */
const storeOf = async (module: { readonly make: (stores: StoresConfig) => unknown }, stores: StoresConfig): Promise<ModelStoreService> => {
  const made = module.make(stores)
  return Effect.isEffect(made)
    ? Effect.runPromise(
      (made as Effect.Effect<ModelStoreService, never, never>).pipe(Effect.provide(Layer.merge(NodeFileSystem.layer, ScanFs.layer)))
    )
    : made as ModelStoreService
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


/** Every mtime under `dir` two days back (links themselves included). */
const backdate = async (dir: string): Promise<void> => {
  const then = new Date(Date.now() - 2 * 24 * 3600 * 1000)
  const walk = async (d: string) => {
    for (const name of await readdir(d)) {
      const p = path.join(d, name)
      if ((await lstat(p)).isDirectory()) await walk(p)
      await lutimes(p, then, then)
    }
  }
  await walk(dir)
}

const home = await mkdtemp(path.join(os.tmpdir(), "llmspell-bench-store-"))
try {
  const { names, roots } = await populatedMachine(home, 50)
  const expected = Object.values(names).reduce((n, list) => n + list.length, 0)
  const env = { PATH: process.env["PATH"] ?? "", HOME: home, XDG_CONFIG_HOME: path.join(home, "xdg"), NO_COLOR: "1" }
  const rootList = [roots.ollama, roots.hfCache, roots.lmstudio, roots.nodeLlamaCpp]
  const stores: StoresConfig = { ollama: "auto", hfCache: "auto", lmstudio: "auto", nodeLlamaCpp: "auto", env: {}, home }
  const store = await storeOf(ModelStoreLive, stores)
  const before = compare === undefined
    ? undefined
    : {
      bin: path.join(compare, "dist", "cli.js"),
      store: await storeOf(await import(path.join(compare, "src", "layers", "store", "ModelStoreLive.ts")), stores)
    }
  const own = { directory: path.join(home, ".llmspell", "models"), instance: "gguf" }
  const cacheFile = path.join(own.directory, ".cache", "inventory.json")
  const dropCache = () => rm(cacheFile, { force: true })
  await backdate(home)
  const list = () => timeChild(process.execPath, [bin, "model", "list", "--backend", "gguf"], env)

  // warm the file cache and check what is measured
  const first = await timeChild(process.execPath, [bin, "model", "list", "--backend", "gguf"], env)
  const rows = first.stdout.trim().split("\n").length - 1
  if (rows !== expected) throw new Error(`model list showed ${rows} models, expected ${expected}`)
  await timeChild("ls", ["-R", ...rootList], env)

  const samples = {
    list: [] as Array<number>,
    listUncached: [] as Array<number>,
    ls: [] as Array<number>,
    node: [] as Array<number>,
    config: [] as Array<number>,
    inProcess: [] as Array<number>,
    inProcessUncached: [] as Array<number>,
    readdir: [] as Array<number>,
    find: [] as Array<number>,
    beforeList: [] as Array<number>,
    beforeListUncached: [] as Array<number>,
    beforeInProcess: [] as Array<number>,
    beforeInProcessUncached: [] as Array<number>
  }
  for (let i = 0; i < runs; i++) {
    await list() // leaves a valid cache
    samples.list.push((await list()).ms)
    await dropCache()
    samples.listUncached.push((await list()).ms)
    samples.ls.push((await timeChild("ls", ["-R", ...rootList], env)).ms)
    samples.node.push((await timeChild(process.execPath, ["-e", ""], env)).ms)
    samples.config.push((await timeChild(process.execPath, [bin, "config", "show", "--json"], env)).ms)
    await Effect.runPromise(store.list(own))
    samples.inProcess.push(await timeInProcess(() => Effect.runPromise(store.list(own))))
    await dropCache()
    samples.inProcessUncached.push(await timeInProcess(() => Effect.runPromise(store.list(own))))
    samples.readdir.push(await timeInProcess(() => Promise.all(rootList.map((r) => readdir(r, { recursive: true })))))
    samples.find.push(await timeInProcess(() => Effect.runPromise(store.find(`model${i % 50}:${i % 50}b`, own))))
    if (before !== undefined) {
      // the other checkout's cache file has another version: each side rebuilds its own before a cached run
      const listBefore = () => timeChild(process.execPath, [before.bin, "model", "list", "--backend", "gguf"], env)
      await dropCache()
      await listBefore()
      samples.beforeList.push((await listBefore()).ms)
      await dropCache()
      samples.beforeListUncached.push((await listBefore()).ms)
      await dropCache()
      await Effect.runPromise(before.store.list(own))
      samples.beforeInProcess.push(await timeInProcess(() => Effect.runPromise(before.store.list(own))))
      await dropCache()
      samples.beforeInProcessUncached.push(await timeInProcess(() => Effect.runPromise(before.store.list(own))))
      await dropCache()
    }
  }
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.length > 0 ? median(v) : Number.NaN])) as Record<
    keyof typeof samples,
    number
  >
  const report = {
    machine: `${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)}`,
    runs,
    models: expected,
    medianMs: m,
    ratios: {
      modelListVsLsR: m.list / m.ls,
      modelListUncachedVsLsR: m.listUncached / m.ls,
      nodeFloorVsLsR: m.node / m.ls,
      modelListMinusStartupVsLsR: Math.max(0, m.list - m.config) / m.ls,
      inProcessListVsReaddir: m.inProcess / m.readdir,
      inProcessUncachedVsReaddir: m.inProcessUncached / m.readdir,
      ...(before !== undefined
        ? {
          beforeModelListVsLsR: m.beforeList / m.ls,
          beforeModelListUncachedVsLsR: m.beforeListUncached / m.ls,
          beforeInProcessListVsReaddir: m.beforeInProcess / m.readdir,
          beforeInProcessUncachedVsReaddir: m.beforeInProcessUncached / m.readdir
        }
        : {})
    }
  }
  if (asJson) console.log(JSON.stringify(report, null, 2))
  else {
    const f = (x: number) => `${x.toFixed(1)} ms`
    console.log(`${report.machine}; ${expected} models in four stores; median of ${runs}`)
    console.log(`llmspell model list --backend gguf  ${f(m.list)}  (${report.ratios.modelListVsLsR.toFixed(2)}× ls -R; cache valid)`)
    console.log(`  the same, no cache file           ${f(m.listUncached)}  (${report.ratios.modelListUncachedVsLsR.toFixed(2)}× ls -R)`)
    console.log(`ls -R (four roots)                  ${f(m.ls)}`)
    console.log(`node -e ''                          ${f(m.node)}  (${report.ratios.nodeFloorVsLsR.toFixed(2)}× ls -R: the floor of any Node CLI)`)
    console.log(`llmspell config show --json         ${f(m.config)}  (start-up; list minus this: ${report.ratios.modelListMinusStartupVsLsR.toFixed(2)}× ls -R)`)
    console.log(`ModelStore.list in-process          ${f(m.inProcess)}  (${report.ratios.inProcessListVsReaddir.toFixed(2)}× in-process recursive readdir, ${f(m.readdir)}; cache valid)`)
    console.log(`  the same, no cache file           ${f(m.inProcessUncached)}  (${report.ratios.inProcessUncachedVsReaddir.toFixed(2)}×)`)
    console.log(`ModelStore.find of an Ollama name   ${f(m.find)}`)
    if (before !== undefined) {
      const r = (x: number, base: number) => `${(x / base).toFixed(2)}×`
      console.log(`--compare ${compare}:`)
      console.log(`  model list (cache valid)          ${f(m.beforeList)}  (${r(m.beforeList, m.ls)} ls -R; this checkout ${r(m.list, m.ls)})`)
      console.log(`  model list, no cache file         ${f(m.beforeListUncached)}  (${r(m.beforeListUncached, m.ls)} ls -R; this checkout ${r(m.listUncached, m.ls)})`)
      console.log(`  ModelStore.list in-process        ${f(m.beforeInProcess)}  (${r(m.beforeInProcess, m.readdir)} readdir; this checkout ${r(m.inProcess, m.readdir)})`)
      console.log(`  the same, no cache file           ${f(m.beforeInProcessUncached)}  (${r(m.beforeInProcessUncached, m.readdir)} readdir; this checkout ${r(m.inProcessUncached, m.readdir)})`)
    }
  }
  await longHeaders()
} finally {
  await rm(home, { recursive: true, force: true })
}

/** Section 6: listings of models whose chat template is past megabytes of vocabulary. */
async function longHeaders(): Promise<void> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), "llmspell-bench-long-"))
  try {
    const root = path.join(scratch, "nlc")
    await mkdir(root, { recursive: true })
    const files = 8
    const tokens = Array.from({ length: 150_000 }, (_, i) => `tok${i.toString(36)}`)
    const merges = Array.from({ length: 150_000 }, (_, i) => `a${i.toString(36)} b${i.toString(36)}`)
    let headerBytes = 0
    for (let i = 0; i < files; i++) {
      const bytes = encodeGguf({
        metadata: [
          ["general.architecture", v.str("llama")],
          ["general.file_type", v.u32(1)],
          ["tokenizer.ggml.model", v.str("gpt2")],
          ["tokenizer.ggml.tokens", v.arr("string", tokens)],
          ["tokenizer.ggml.merges", v.arr("string", merges)],
          ["tokenizer.chat_template", v.str(`{% if tools %}{{ tools }}{% endif %}{{ messages }} ${i}`)]
        ],
        tensors: [{ name: "output_norm.weight", dims: [32], type: GgmlType.F32, data: new Uint8Array(128) }]
      })
      headerBytes = bytes.length - 160
      await writeFile(path.join(root, `long-${i}.gguf`), bytes)
    }
    await backdate(scratch)
    const stores: StoresConfig = { ollama: false, hfCache: false, lmstudio: false, nodeLlamaCpp: { path: root }, env: {}, home: scratch }
    const longStore = await storeOf(ModelStoreLive, stores)
    const own = { directory: path.join(scratch, "models"), instance: "gguf" }
    const caches = path.join(own.directory, ".cache")
    const inventory = () => rm(path.join(caches, "inventory.json"), { force: true })
    const everything = () => rm(caches, { recursive: true, force: true })
    const listed = await Effect.runPromise(longStore.list(own))
    const withCaps = listed.models.filter((m) => m.capabilities !== undefined).length
    if (listed.models.length !== files) throw new Error(`listed ${listed.models.length} long-header models, expected ${files}`)
    const readHeaders = () =>
      Promise.all(Array.from({ length: files }, async (_, i) => {
        const handle = await open(path.join(root, `long-${i}.gguf`))
        try {
          await handle.read(Buffer.allocUnsafe(headerBytes), 0, headerBytes, 0)
        } finally {
          await handle.close()
        }
      }))
    const samples = { uncached: [] as Array<number>, factsCached: [] as Array<number>, cached: [] as Array<number>, read: [] as Array<number> }
    for (let i = 0; i < runs; i++) {
      await everything()
      samples.uncached.push(await timeInProcess(() => Effect.runPromise(longStore.list(own))))
      await inventory()
      samples.factsCached.push(await timeInProcess(() => Effect.runPromise(longStore.list(own))))
      samples.cached.push(await timeInProcess(() => Effect.runPromise(longStore.list(own))))
      samples.read.push(await timeInProcess(readHeaders))
    }
    const m = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, median(xs)])) as Record<keyof typeof samples, number>
    const mb = (headerBytes / 2 ** 20).toFixed(1)
    if (asJson) console.log(JSON.stringify({ longHeaders: { files, headerMiB: Number(mb), withCapabilities: withCaps, medianMs: m, ratios: { uncachedVsRead: m.uncached / m.read, factsCachedVsRead: m.factsCached / m.read, cachedVsRead: m.cached / m.read } } }, null, 2))
    else {
      const f = (x: number) => `${x.toFixed(1)} ms`
      console.log(`${files} models with ${mb} MiB headers (150k tokens + 150k merges, the template after them), ${withCaps} with capabilities; median of ${runs}`)
      console.log(`  ModelStore.list, no cache          ${f(m.uncached)}  (${(m.uncached / m.read).toFixed(2)}× reading the header bytes, ${f(m.read)})`)
      console.log(`  only the facts cache valid         ${f(m.factsCached)}  (${(m.factsCached / m.read).toFixed(2)}×)`)
      console.log(`  every cache valid                  ${f(m.cached)}  (${(m.cached / m.read).toFixed(2)}×)`)
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

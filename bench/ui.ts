/**
 * The web page's load figures (`npm run bench:ui`): first paint, first contentful paint, DOM
 * interactive and time to interactive of `GET /` — "interactive" being the page's own mark
 * `llmspell:ready`, set once the models table is on screen (which needs the script, the
 * stylesheet, /ui/api/server and /ui/api/models) — in Debian's chromium through playwright-core,
 * each load in a fresh browser context (nothing cached). Baseline in the same run, interleaved:
 * a minimal static HTML page from a plain node:http server on the same machine. Also the page's
 * size, gzipped, as the build counts it. The server runs the real stack: a generated GGUF in the
 * store and the fake Ollama with a few models.
 *
 * Usage: node --import tsx bench/ui.ts [--runs N] [--json]
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import * as os from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { chromium } from "playwright-core"
import * as UiAssets from "../src/serve/UiAssets.js"
import { fakeModel, startFakeOllama } from "../test/fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "../test/fixtures/ggufWriter.js"
import { startServe } from "../test/fixtures/serveHarness.js"
import { CHROMIUM, CHROMIUM_ARGS } from "../test/support/browser.js"
import { median } from "./stats.js"

const args = process.argv.slice(2)
const runsArg = args.indexOf("--runs")
const runs = Math.max(3, runsArg >= 0 ? Number(args[runsArg + 1]) : 10)
const asJson = args.includes("--json")


interface Load {
  readonly firstPaint: number
  readonly firstContentfulPaint: number
  readonly domInteractive: number
  readonly loaded: number
  readonly interactive: number
}

const main = async () => {
  const uiDir = UiAssets.defaultDirectory()
  if (uiDir === undefined) throw new Error("dist/ui is missing: run npm run build first")
  const page = Option.getOrThrow(Effect.runSync(UiAssets.load(uiDir)))
  const files = readdirSync(uiDir).map((name) => ({ name, gzip: gzipSync(readFileSync(join(uiDir, name)), { level: 9 }).length, raw: readFileSync(join(uiDir, name)).length }))

  const dir = mkdtempSync(join(os.tmpdir(), "llmspell-bench-ui-"))
  const fake = await startFakeOllama({ models: ["llama3.2", "qwen2.5:0.5b", "nomic-embed-text", "gemma3"].map((n) => fakeModel(n)) })
  const serve = await startServe({ dir, ollamaUrl: fake.url }, { ui: page })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 300 }))
  const baselineHtml = "<!doctype html><html lang=en><meta charset=utf-8><title>baseline</title><p>hello</p></html>"
  const baseline = createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" })
    res.end(baselineHtml)
  })
  await new Promise<void>((resolve) => baseline.listen(0, "127.0.0.1", resolve))
  const baselineUrl = `http://127.0.0.1:${(baseline.address() as { port: number }).port}/`

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
  const measure = async (url: string, ready: boolean): Promise<Load> => {
    const context = await browser.newContext()
    const tab = await context.newPage()
    await tab.goto(url, { waitUntil: "load" })
    await tab.waitForFunction((name) => performance.getEntriesByName(name).length > 0, ready ? "llmspell:ready" : "first-contentful-paint")
    // no named function inside: tsx's transform would wrap it in a helper the page does not have
    const load = await tab.evaluate((): Load => {
      const nav = (performance.getEntriesByType as (type: string) => Array<unknown>)("navigation")[0] as { domInteractive: number; loadEventEnd: number }
      const [fp, fcp, mark] = ["first-paint", "first-contentful-paint", "llmspell:ready"].map((name) => performance.getEntriesByName(name)[0]?.startTime)
      return {
        firstPaint: fp ?? NaN,
        firstContentfulPaint: fcp ?? NaN,
        domInteractive: nav.domInteractive,
        loaded: nav.loadEventEnd,
        interactive: mark ?? nav.domInteractive
      }
    })
    await context.close()
    return load
  }

  /** The part of "interactive" that is the server's: /ui/api/models answered to a plain fetch. */
  const modelsApi = async () => {
    const started = performance.now()
    await (await fetch(`${serve.url}/ui/api/models`)).json()
    return performance.now() - started
  }
  const uiLoads: Array<Load> = []
  const baseLoads: Array<Load> = []
  const apiTimes: Array<number> = []
  await measure(`${serve.url}/`, true) // warm-up: the server's first list, chromium's own start-up
  await measure(baselineUrl, false)
  for (let i = 0; i < runs; i++) {
    baseLoads.push(await measure(baselineUrl, false))
    uiLoads.push(await measure(`${serve.url}/`, true))
    apiTimes.push(await modelsApi())
  }
  await browser.close()
  await serve.close()
  await fake.close()
  baseline.close()
  rmSync(dir, { recursive: true, force: true })

  const keys = ["firstPaint", "firstContentfulPaint", "domInteractive", "loaded", "interactive"] as const
  const summary = Object.fromEntries(keys.map((k) => {
    const ui = median(uiLoads.map((l) => l[k]))
    const base = median(baseLoads.map((l) => l[k]))
    return [k, { ui, uiMin: Math.min(...uiLoads.map((l) => l[k])), uiMax: Math.max(...uiLoads.map((l) => l[k])), baseline: base, ratio: ui / base }]
  }))
  const result = {
    runs,
    chromium: execFileSync(CHROMIUM, ["--version"], { encoding: "utf8" }).trim(),
    uptime: execFileSync("uptime", { encoding: "utf8" }).trim(),
    files,
    gzipBytes: files.reduce((sum, f) => sum + f.gzip, 0),
    modelsApiMs: median(apiTimes),
    summary
  }
  if (asJson) return console.log(JSON.stringify(result, null, 2))
  console.log(`${result.chromium}; ${runs} cold loads each, interleaved; ${result.uptime}`)
  console.log(`page: ${files.map((f) => `${f.name} ${(f.gzip / 1024).toFixed(1)} KB`).join(", ")}; total ${(result.gzipBytes / 1024).toFixed(1)} KB gzipped`)
  console.log(`/ui/api/models alone (node fetch): ${result.modelsApiMs.toFixed(0)} ms median`)
  console.log("| figure | page median | min–max | baseline median | × baseline |")
  console.log("|---|---:|---:|---:|---:|")
  for (const k of keys) {
    const s = summary[k]!
    console.log(`| ${k} | ${s.ui.toFixed(0)} ms | ${s.uiMin.toFixed(0)}–${s.uiMax.toFixed(0)} ms | ${s.baseline.toFixed(0)} ms | ${s.ratio.toFixed(2)} |`)
  }
}

await main()

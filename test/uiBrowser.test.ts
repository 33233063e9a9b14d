/**
 * The web page in a real browser (Debian's chromium through playwright-core) against a server
 * started here: a generated GGUF in llmspell's store, another in a Hugging Face cache, the fake
 * Ollama's models, the fake hub for pulls. Every wait is on an element or an event the page or a
 * fake signals, never on time. Screenshots of each view go to test-artifacts/ui/.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { Transcript } from "../src/domain/Transcript.js"
import * as UiAssets from "../src/serve/UiAssets.js"
import { type FakeHub, ggufContent, startFakeHub } from "./fixtures/fakeHub.js"
import { type FakeAnswerInput, type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { commitId, hfCacheFile, loadableGguf } from "./fixtures/foreignStores.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { type ServeHarness, startServe, weatherAgent } from "./fixtures/serveHarness.js"
import { artifact, launchBrowser, type TestBrowser } from "./support/browser.js"
import { ensureBuilt } from "./support/runCli.js"

// Read inside the page by page.evaluate; this program is compiled without the DOM's types.
declare const document: any, window: any, localStorage: any, sessionStorage: any, getComputedStyle: any

/** What the "evil" model answers: markup that would run if the page rendered answers as HTML. */
const EVIL = `Here: <script>window.__xss = "script"</script><img src=x onerror="window.__xss = 'img'"> and [link](javascript:window.__xss='link') **done**`

// a browser, a GGUF model and a hub on a shared 2-core machine: bounds for a busy day, not expectations
vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 })

/** The fake Ollama's answers: the markup for "evil", else the serve tests' weather agent (tools, JSON, thinking, echo). */
const answer = (input: FakeAnswerInput) => (input.model.startsWith("evil") ? EVIL : weatherAgent(input))

const KEY = "the-right-key"
const PULLED_SIZE = 3 * 1024 * 1024

let dir: string
let fake: FakeOllama
let hub: FakeHub
let serve: ServeHarness
let keyed: ServeHarness
let browser: TestBrowser
let violations: Array<string>

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "llmspell-ui-browser-"))
  fake = await startFakeOllama({
    models: [
      fakeModel("agent", { capabilities: ["completion", "tools"] }),
      fakeModel("evil"),
      fakeModel("seer", { capabilities: ["completion", "vision"] })
    ],
    loaded: ["agent"],
    answer
  })
  hub = await startFakeHub()
  await hub.addRepo({ name: "org/pulled", files: [{ path: "pulled-Q8_0.gguf", content: ggufContent("ui-pull", PULLED_SIZE, 7) }] })
  await hfCacheFile(join(dir, "hf"), { repo: "org/cached", commit: commitId("cached"), file: "cached-Q8_0.gguf", bytes: loadableGguf(5) })
  const page = Option.getOrThrow(Effect.runSync(UiAssets.load()))
  serve = await startServe({ dir, ollamaUrl: fake.url, hubUrl: hub.url, stores: { hf_cache: join(dir, "hf") } }, { ui: page })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  writeFileSync(join(dir, "models", "spare.gguf"), tinyLlamaGguf({ vocabSize: 300, seed: 9 }))
  keyed = await startServe({ dir: join(dir, "keyed"), ollamaUrl: fake.url }, { ui: page, apiKey: Redacted.make(KEY) })
  browser = await launchBrowser()
  // bounds for a busy machine, not expectations: every wait ends on an element or event
  browser.context.setDefaultTimeout(Number(process.env["UI_TEST_TIMEOUT"] ?? 120_000))
  violations = []
  // any Content-Security-Policy violation on any page is a failure of the page
  await browser.context.exposeFunction("__reportViolation", (text: string) => void violations.push(text))
  await browser.context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e: any) => {
      ;(window as unknown as { __reportViolation: (t: string) => void }).__reportViolation(`${e.violatedDirective} ${e.blockedURI}`)
    })
  })
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await Promise.all([serve?.close(), keyed?.close()])
  await Promise.all([fake?.close(), hub?.close()])
  rmSync(dir, { recursive: true, force: true })
})

const open = async (url: string, hash = "#/models"): Promise<Page> => {
  const page = await browser.context.newPage()
  await page.goto(`${url}/${hash}`)
  return page
}

/** The models table's row of a spec. */
const row = (page: Page, spec: string) => page.locator(`.model-table tr[data-spec="${spec}"]`)

describe("Models", () => {
  it("lists every store's and backend's model, with store, size, quantization, capabilities and state; filters", async () => {
    const page = await open(serve.url)
    try {
      await row(page, "tiny.gguf@gguf").locator('[data-label="Store"]', { hasText: "llmspell" }).waitFor()
      const cached = page.locator("tr", { hasText: "hf.co/org/cached:Q8_0@gguf" })
      await cached.waitFor()
      expect(await cached.locator('[data-label="Store"]').textContent()).toContain("hf-cache")
      const agent = row(page, "agent:latest@ollama")
      await agent.locator(".chip.loaded").waitFor()
      expect(await agent.locator('[data-label="Quantization"]').textContent()).toBe("Q4_K_M")
      // capabilities come from /api/show when the listing has none
      await agent.locator(".chip.cap-tools").waitFor()
      await row(page, "seer:latest@ollama").locator(".chip.cap-vision").waitFor()
      expect(await row(page, "tiny.gguf@gguf").locator('[data-label="Size"]').textContent()).toMatch(/KiB$/)
      await page.screenshot({ path: artifact("models-desktop.png"), fullPage: true })

      await page.getByLabel("Filter", { exact: true }).fill("hf-cache")
      await row(page, "tiny.gguf@gguf").waitFor({ state: "detached" })
      expect(await page.locator("tbody tr").count()).toBe(1)
      await page.getByLabel("Filter", { exact: true }).fill("")
      await row(page, "tiny.gguf@gguf").waitFor()
    } finally {
      await page.close()
    }
  })

  it("a pull shows its bytes and can be cancelled; pulled again, it ends in the list", async () => {
    // the file's bytes stop halfway (the size probe is spared) until the test clears the fault
    hub.setFault({ stall: { afterBytes: PULLED_SIZE / 2 }, match: (r) => r.range !== "bytes=0-0" })
    const page = await open(serve.url)
    try {
      await row(page, "tiny.gguf@gguf").waitFor()
      await page.getByLabel("Pull a model", { exact: true }).fill("org/pulled:Q8_0")
      await page.getByRole("button", { name: "Pull", exact: true }).click()
      const pull = page.locator('.pull[data-spec="org/pulled:Q8_0"]')
      // progress: bytes of the total, while the transfer hangs halfway
      await page.waitForFunction(() => Number(document.querySelector('.pull[data-spec="org/pulled:Q8_0"] progress')?.getAttribute("value")) > 0)
      expect(await pull.locator(".pull-bytes").textContent()).toMatch(/^\d+(\.\d)? (B|KiB|MiB) of 3\.0 MiB/)
      const value = Number(await pull.locator("progress").getAttribute("value"))
      expect(value).toBeGreaterThan(0)
      expect(value).toBeLessThan(PULLED_SIZE)
      await page.screenshot({ path: artifact("models-pulling.png") })
      await pull.getByRole("button", { name: "Cancel" }).click()
      await pull.locator("strong", { hasText: "Cancelled" }).waitFor()

      hub.clearFaults()
      await page.getByLabel("Pull a model", { exact: true }).fill("org/pulled:Q8_0")
      await page.getByRole("button", { name: "Pull", exact: true }).click()
      const second = page.locator('.pull[data-spec="org/pulled:Q8_0"]').last()
      await second.locator("strong", { hasText: "Pulled" }).waitFor()
      expect(await second.locator("progress").getAttribute("value")).toBe(await second.locator("progress").getAttribute("max"))
      await row(page, "org/pulled:Q8_0@gguf").waitFor()
      expect(await row(page, "org/pulled:Q8_0@gguf").locator('[data-label="Size"]').textContent()).toBe("3.0 MiB")
    } finally {
      hub.clearFaults()
      await page.close()
    }
  }, 180_000)

  it("remove asks first, listing the files and bytes; keeping it deletes nothing; confirming removes it", async () => {
    const file = join(dir, "models", "spare.gguf")
    const page = await open(serve.url)
    try {
      await row(page, "spare.gguf@gguf").waitFor()
      await page.getByRole("button", { name: "Remove spare.gguf@gguf" }).click()
      const dialog = page.getByRole("dialog", { name: "Remove spare.gguf@gguf?" })
      await dialog.locator(".files li").waitFor()
      expect(await dialog.locator(".files li code").textContent()).toBe(file)
      expect(await dialog.locator(".remove-total").textContent()).toMatch(/Frees \d+(\.\d)? KiB/)
      await page.screenshot({ path: artifact("models-remove.png") })
      await dialog.getByRole("button", { name: "Keep it" }).click()
      await dialog.waitFor({ state: "detached" })
      expect(existsSync(file)).toBe(true)

      await page.getByRole("button", { name: "Remove spare.gguf@gguf" }).click()
      await dialog.locator(".files li").waitFor()
      await dialog.getByRole("button", { name: "Remove", exact: true }).click()
      await row(page, "spare.gguf@gguf").waitFor({ state: "detached" })
      expect(existsSync(file)).toBe(false)
    } finally {
      await page.close()
    }
  })
})

describe("Chat", () => {
  it("streams a GGUF model's answer with its figures; Enter sends", async () => {
    const page = await open(serve.url, "#/chat")
    try {
      await page.locator('select[name="model"] option[value="tiny.gguf@gguf"]').waitFor({ state: "attached" })
      await page.locator('select[name="model"]').selectOption("tiny.gguf@gguf")
      await page.getByText("System prompt and parameters").click()
      await page.getByLabel("System prompt", { exact: true }).fill("Be brief.")
      await page.getByLabel("Max tokens", { exact: true }).fill("8")
      await page.getByLabel("Seed", { exact: true }).fill("1")
      await page.getByLabel("Message", { exact: true }).fill("hello")
      await page.getByLabel("Message", { exact: true }).press("Enter")
      const answer = page.locator(".msg.assistant").last()
      await answer.locator('[data-figure="completion"]').waitFor({ timeout: 60_000 })
      expect(await answer.locator('[data-figure="ttft"]').textContent()).toMatch(/^TTFT \d/)
      expect(await answer.locator('[data-figure="prompt"]').textContent()).toMatch(/^prompt \d+$/)
      expect(await answer.locator('[data-figure="completion"]').textContent()).toMatch(/^[1-8] tokens$/)
      expect(await page.locator(".msg.user").last().textContent()).toContain("hello")
      // the second turn finds the first turn's prompt in the model's cache, and the page says how much
      const firstCached = Number((await answer.locator('[data-figure="cached"]').textContent() ?? "cached 0").replace(/\D/g, "") || "0")
      const firstPrompt = Number((await answer.locator('[data-figure="prompt"]').textContent())!.replace(/\D/g, ""))
      await page.getByLabel("Message", { exact: true }).fill("and again")
      await page.getByLabel("Message", { exact: true }).press("Enter")
      const second = page.locator(".msg.assistant").nth(1)
      await second.locator('[data-figure="completion"]').waitFor({ timeout: 60_000 })
      const cached = Number((await second.locator('[data-figure="cached"]').textContent())!.replace(/\D/g, ""))
      expect(cached).toBeGreaterThan(firstCached)
      expect(cached).toBeGreaterThanOrEqual(firstPrompt - 1)
      await page.screenshot({ path: artifact("chat-desktop.png"), fullPage: true })
    } finally {
      await page.close()
    }
  }, 180_000)

  it("the Stop button stops a streaming answer: the request ends upstream, what was written is kept", async () => {
    fake.clearLog()
    fake.setFault("/api/chat", { kind: "stall", after: 2, times: 1 })
    const page = await open(serve.url, "#/chat")
    try {
      await page.getByRole("button", { name: "New chat" }).click()
      await page.locator('select[name="model"] option[value="agent:latest@ollama"]').waitFor({ state: "attached" })
      await page.locator('select[name="model"]').selectOption("agent:latest@ollama")
      await page.getByLabel("Message", { exact: true }).fill("tell me more")
      await page.getByRole("button", { name: "Send", exact: true }).click()
      const streaming = page.locator(".msg.assistant.streaming")
      await streaming.getByText("You said:").waitFor()
      await fake.waitForRecords("/api/chat", 2)
      await page.getByRole("button", { name: "Stop" }).click()
      const stopped = page.locator('.msg.assistant[data-finish="abort"]')
      await stopped.locator(".badge.stopped").waitFor()
      expect(await stopped.locator(".md").textContent()).toBe("You said:")
      // the server let go of the upstream request when the page stopped
      await fake.responses.find((r) => r.route === "/api/chat")!.closed
      await page.getByRole("button", { name: "Send", exact: true }).waitFor()
    } finally {
      fake.clearFaults()
      await page.close()
    }
  }, 180_000)

  it("keyboard only: the views are reached by Tab and Enter, Enter sends, Esc stops the answer", async () => {
    fake.clearLog()
    fake.setFault("/api/chat", { kind: "stall", after: 1, times: 1 })
    const page = await open(serve.url, "#/models")
    try {
      await row(page, "tiny.gguf@gguf").waitFor()
      // from the top of the page: the skip link, the brand is not focusable, then the views
      await page.keyboard.press("Tab")
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content")
      await page.keyboard.press("Tab")
      await page.keyboard.press("Tab")
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Chat")
      await page.keyboard.press("Enter")
      await page.locator('section[aria-label="Chat"]:not([hidden])').waitFor()
      await page.getByRole("button", { name: "New chat" }).focus()
      await page.keyboard.press("Enter")
      // New chat puts the cursor in the message box
      await page.locator("#composer:focus").waitFor()
      await page.locator('select[name="model"]').selectOption("agent:latest@ollama")
      await page.locator("#composer").focus()
      await page.keyboard.type("stop me")
      await page.keyboard.press("Enter")
      await page.locator(".msg.assistant.streaming").getByText("You").waitFor()
      await fake.waitForRecords("/api/chat", 1)
      await page.keyboard.press("Escape")
      await page.locator('.msg.assistant[data-finish="abort"] .badge.stopped').waitFor()
      await fake.responses.find((r) => r.route === "/api/chat")!.closed
    } finally {
      fake.clearFaults()
      await page.close()
    }
  })

  it("a model's answer with <script>, <img onerror> and a javascript: link stays text", async () => {
    const page = await open(serve.url, "#/chat")
    try {
      await page.getByRole("button", { name: "New chat" }).click()
      await page.locator('select[name="model"] option[value="evil:latest@ollama"]').waitFor({ state: "attached" })
      await page.locator('select[name="model"]').selectOption("evil:latest@ollama")
      await page.getByLabel("Message", { exact: true }).fill("say something nasty")
      await page.getByLabel("Message", { exact: true }).press("Enter")
      const answer = page.locator(".msg.assistant").last()
      await answer.locator('[data-figure="completion"]').waitFor()
      const text = await answer.locator(".md").textContent()
      expect(text).toContain(`<script>window.__xss = "script"</script>`)
      expect(text).toContain(`<img src=x onerror="window.__xss = 'img'">`)
      expect(text).toContain("[link](javascript:window.__xss='link')")
      expect(await answer.locator("script, img, iframe, [onerror]").count()).toBe(0)
      expect(await answer.locator("a").count()).toBe(0)
      expect(await answer.locator("strong").textContent()).toBe("done")
      // and as plain text
      await page.getByText("System prompt and parameters").click()
      await page.getByLabel("Show answers as Markdown", { exact: true }).uncheck()
      expect(await answer.locator(".plain").textContent()).toBe(EVIL)
      await page.getByLabel("Show answers as Markdown", { exact: true }).check()
      await answer.locator(".md").waitFor()
      expect(await page.evaluate(() => (window as unknown as { __xss?: string }).__xss)).toBeUndefined()
    } finally {
      await page.close()
    }
  }, 180_000)

  it("reasoning is collapsed apart from the answer; tool calls are shown, a typed result continues the answer; JSON-schema mode", async () => {
    const page = await open(serve.url, "#/chat")
    try {
      await page.getByRole("button", { name: "New chat" }).click()
      await page.locator('select[name="model"] option[value="agent:latest@ollama"]').waitFor({ state: "attached" })
      await page.locator('select[name="model"]').selectOption("agent:latest@ollama")
      await page.getByLabel("Message", { exact: true }).fill("ponder this")
      await page.getByLabel("Message", { exact: true }).press("Enter")
      const thought = page.locator(".msg.assistant").last()
      await thought.locator('[data-figure="completion"]').waitFor()
      const reasoning = thought.locator("details.reasoning")
      expect(await reasoning.getAttribute("open")).toBeNull()
      expect(await reasoning.locator("summary").textContent()).toBe("Reasoning")
      expect(await reasoning.locator(".plain").textContent()).toBe("Let me think.")
      expect(await thought.locator(".md").textContent()).toBe("Done.")

      await page.getByText("System prompt and parameters").click()
      await page.getByLabel(/^Tools/).fill(JSON.stringify([{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }]))
      await page.getByLabel("Message", { exact: true }).fill("weather in Paris?")
      await page.getByLabel("Message", { exact: true }).press("Enter")
      const call = page.locator('.tool-call[data-tool="get_weather"]').last()
      await call.waitFor()
      expect(JSON.parse((await call.locator("pre").textContent())!)).toEqual({ city: "Paris" })
      expect(await page.locator(".msg.assistant").last().getAttribute("data-finish")).toBe("tool-calls")
      await call.getByLabel("Result of get_weather").fill("21 °C and sunny")
      await call.getByRole("button", { name: "Send result" }).click()
      await page.locator(".msg.tool", { hasText: "21 °C and sunny" }).waitFor()
      await page.locator(".msg.assistant .md", { hasText: "It is 21 °C and sunny." }).waitFor()

      // a new conversation (the weather agent answers from a tool result while one is in the history)
      await page.getByRole("button", { name: "New chat" }).click()
      await page.locator(".msg").first().waitFor({ state: "detached" })
      await page.getByLabel(/^Output/).selectOption("schema")
      await page.getByLabel("JSON schema of the answer").fill("{ not json")
      await page.getByText(/^Not JSON/).waitFor()
      expect(await page.getByRole("button", { name: "Send", exact: true }).isDisabled()).toBe(true)
      await page.getByLabel("JSON schema of the answer").fill(JSON.stringify({ type: "object", properties: { city: { type: "string" }, temperature: { type: "number" } }, required: ["city", "temperature"] }))
      await page.getByLabel("Message", { exact: true }).fill("as JSON please")
      await page.getByRole("button", { name: "Send", exact: true }).click()
      await page.locator(".msg.assistant .md", { hasText: '{"city":"Paris","temperature":21}' }).waitFor()
      await page.screenshot({ path: artifact("chat-tools.png"), fullPage: true })
    } finally {
      await page.close()
    }
  })

  it("conversations stay in the browser and export as the transcript llmspell chat loads; an import restores one", async () => {
    const page = await open(serve.url, "#/chat")
    try {
      await page.getByRole("button", { name: "New chat" }).click()
      await page.locator('select[name="model"] option[value="agent:latest@ollama"]').waitFor({ state: "attached" })
      await page.locator('select[name="model"]').selectOption("agent:latest@ollama")
      await page.getByLabel("Message", { exact: true }).fill("export me")
      await page.getByLabel("Message", { exact: true }).press("Enter")
      await page.locator(".msg.assistant").last().locator('[data-figure="completion"]').waitFor()
      const download = page.waitForEvent("download")
      await page.getByRole("button", { name: "Export", exact: true }).click()
      const file = await (await download).path()
      const transcript = Schema.decodeUnknownSync(Transcript)(JSON.parse(readFileSync(file, "utf8")))
      expect(transcript.model).toBe("agent:latest@ollama")
      expect(transcript.messages.map((m) => [m.role, m.content])).toEqual([["user", "export me"], ["assistant", "You said: export me"]])
      expect(transcript.messages[1]!.figures).toMatchObject({ promptTokens: expect.any(Number), completionTokens: 4, timeToFirstTokenMs: expect.any(Number) })

      // a reload keeps the conversation (localStorage)
      await page.reload()
      await page.locator(".conversations .conv", { hasText: "export me" }).first().waitFor()

      // an import of the same file is a new conversation with the same turns
      const before = await page.locator(".conversations .conv").count()
      await page.getByLabel("Import a transcript", { exact: true }).setInputFiles(file)
      await page.locator(".conversations .conv").nth(before).waitFor()
      await page.locator(".msg.assistant", { hasText: "You said: export me" }).waitFor()
      // a broken file is refused with the reason, nothing added
      const broken = join(dir, "broken.json")
      writeFileSync(broken, JSON.stringify({ version: 1, model: "m", messages: [{ role: "tool", content: "x" }] }))
      await page.getByLabel("Import a transcript", { exact: true }).setInputFiles(broken)
      await page.getByText("a tool message needs the toolCallId").waitFor()
      expect(await page.locator(".conversations .conv").count()).toBe(before + 1)
    } finally {
      await page.close()
    }
  }, 180_000)

  it("images can be attached unless the model's capabilities lack vision (uiBrowserImages.test.ts has the rest)", async () => {
    const page = await open(serve.url, "#/chat")
    try {
      await page.getByRole("button", { name: "New chat" }).click()
      await page.locator('select[name="model"] option[value="seer:latest@ollama"]').waitFor({ state: "attached" })
      await page.locator('select[name="model"]').selectOption("agent:latest@ollama")
      await page.locator('.composer button[disabled][title*="lack vision"]', { hasText: "Attach image" }).waitFor()
      await page.locator('select[name="model"]').selectOption("seer:latest@ollama")
      await page.locator(".composer button:not([disabled])", { hasText: "Attach image" }).waitFor()
      const png = join(dir, "dot.png")
      writeFileSync(png, Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64"))
      await page.getByLabel("Attach images", { exact: true }).setInputFiles(png)
      await page.locator(".composer .thumbs img").waitFor()
      expect(await page.locator(".composer .thumbs img").getAttribute("src")).toMatch(/^data:image\/png;base64,/)
    } finally {
      await page.close()
    }
  })
})

describe("Server", () => {
  it("shows the loaded models and the server's load, live; unloads; the headline figures of /metrics", async () => {
    // one generation of this test's own, so /metrics has one to show whatever ran before
    const answered = await fetch(`${serve.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "tiny.gguf@gguf", prompt: "hi", stream: false, options: { num_predict: 2 } })
    })
    expect(answered.status).toBe(200)
    const page = await open(serve.url, "#/server")
    try {
      await page.locator('.ps-table tr[data-spec="agent:latest@ollama"]').waitFor()
      expect(await page.locator('[data-stat="running"]').textContent()).toMatch(/^\d+ of \d+$/)
      // the server's own /metrics: the chat tests' generations are counted there
      const generations = page.locator("dl.stats > div", { has: page.locator("dt", { hasText: /^Generations$/ }) })
      await generations.waitFor()
      expect(Number((await generations.locator("dd").textContent())!.replace(/[^\d]/g, ""))).toBeGreaterThan(0)
      expect(await page.getByText(/^All metrics \(\d+\)$/).count()).toBe(1)
      // loaded by another client: the view shows it without a reload
      const load = await fetch(`${serve.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "seer:latest@ollama", stream: false }) })
      expect(load.status).toBe(200)
      const seer = page.locator('.ps-table tr[data-spec="seer:latest@ollama"]')
      await seer.waitFor()
      await page.screenshot({ path: artifact("server-desktop.png"), fullPage: true })
      await seer.getByRole("button", { name: "Unload seer:latest@ollama" }).click()
      await seer.waitFor({ state: "detached" })
      expect(fake.state.loaded.map((m) => m.name)).not.toContain("seer:latest")
    } finally {
      await page.close()
    }
  })
})

describe("with an API key", () => {
  it("the page asks for the key, refuses a wrong one, and sends the right one as a bearer header only", async () => {
    const page = await browser.context.newPage()
    const urls: Array<string> = []
    const authorizations: Array<string | undefined> = []
    page.on("request", (r) => {
      urls.push(r.url())
      if (new URL(r.url()).pathname.startsWith("/ui/api/")) authorizations.push(r.headers()["authorization"])
    })
    try {
      await page.goto(`${keyed.url}/`)
      const dialog = page.getByRole("dialog", { name: "The server needs its API key" })
      await dialog.waitFor()
      await page.screenshot({ path: artifact("key-dialog.png") })
      await dialog.getByLabel("Key", { exact: true }).fill("a-wrong-key")
      await dialog.getByRole("button", { name: "Use key" }).click()
      await dialog.getByText("The server refused this key.").waitFor()
      expect(await page.locator("table.model-table").count()).toBe(0)

      await dialog.getByLabel("Key", { exact: true }).fill(KEY)
      await dialog.getByRole("button", { name: "Use key" }).click()
      await dialog.waitFor({ state: "detached" })
      await row(page, "agent:latest@ollama").waitFor()
      expect(urls.some((u) => u.includes(KEY))).toBe(false)
      expect(authorizations).toContain(`Bearer ${KEY}`)
      expect(await browser.context.cookies()).toEqual([])
      expect(await page.evaluate(() => JSON.stringify(localStorage))).not.toContain(KEY)

      // the tab keeps it across a reload (sessionStorage); forgetting it asks again
      await page.reload()
      await row(page, "agent:latest@ollama").waitFor()
      await page.getByRole("button", { name: "Forget key" }).click()
      await page.getByRole("dialog", { name: "The server needs its API key" }).waitFor()
      expect(await page.evaluate(() => JSON.stringify(sessionStorage))).not.toContain(KEY)
    } finally {
      await page.close()
    }
  })
})

describe("at 360 px", () => {
  it("every view fits the width (no horizontal scrolling) and is screenshotted", async () => {
    const page = await browser.context.newPage()
    await page.setViewportSize({ width: 360, height: 740 })
    try {
      const ready: Record<string, string> = { models: 'tr[data-spec="tiny.gguf@gguf"]', chat: ".composer textarea", server: ".ps-table" }
      for (const [view, selector] of Object.entries(ready)) {
        await page.goto(`${serve.url}/#/${view}`)
        await page.locator(`section:not([hidden]) ${selector}`).waitFor()
        const wide = await page.evaluate(() =>
          [...document.querySelectorAll("body *")].filter((e: any) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5 && e.offsetParent !== null).slice(0, 5).map((e: any) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)
        )
        expect(wide, view).toEqual([])
        await page.screenshot({ path: artifact(`${view}-360.png`), fullPage: true })
      }
      // dark, following the system
      await page.emulateMedia({ colorScheme: "dark" })
      await page.setViewportSize({ width: 1280, height: 860 })
      await page.goto(`${serve.url}/#/models`)
      await row(page, "tiny.gguf@gguf").waitFor()
      expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe("rgb(21, 22, 26)")
      await page.screenshot({ path: artifact("models-dark.png"), fullPage: true })
    } finally {
      await page.close()
    }
  }, 180_000)

  it("no Content-Security-Policy violation happened on any page", () => {
    expect(violations).toEqual([])
  })
})

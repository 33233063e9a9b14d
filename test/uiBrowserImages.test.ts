/**
 * The web page's image attach in a real browser (Debian's chromium through playwright-core)
 * against a server started here with the fake Ollama and a generated GGUF: a file chosen through
 * the file input reaches an Ollama vision model as Ollama's `images` base64 of exactly the file's
 * bytes; its thumbnail shows and can be removed before sending; a file that is not an image (by
 * its bytes), one over the page's 8 MiB and a ninth are refused with the page's words and nothing
 * is sent with them; a
 * GGUF model given an image shows the server's 400 in the page (no CLI command) and the turn
 * goes back to the composer, text and image, nothing lost; the image stays in the saved
 * conversation across a reload, and one too big for the browser's storage costs its bytes only
 * (named in its place), never the turns; attaching is offered when the model can see or its capabilities
 * are unknown, and disabled, saying why, when they are known and lack vision. Every wait is on an
 * element or a request the fake logged, never on time.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import * as UiAssets from "../src/serve/UiAssets.js"
import { type FakeOllama, fakeModel, startFakeOllama } from "./fixtures/fakeOllama.js"
import { tinyLlamaGguf } from "./fixtures/ggufWriter.js"
import { gifImage, pngImage } from "./fixtures/images.js"
import { type ServeHarness, startServe } from "./fixtures/serveHarness.js"
import { artifact, launchBrowser, type TestBrowser } from "./support/browser.js"
import { ensureBuilt } from "./support/runCli.js"

// a browser and a GGUF model on a shared 2-core machine: bounds for a busy day, not expectations
vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 })

let dir: string
let fake: FakeOllama
let serve: ServeHarness
let browser: TestBrowser

const SEER = "seer:latest@ollama"
const AGENT = "agent:latest@ollama"
const UNKNOWN = "mystery:latest@ollama"
const TINY = "tiny.gguf@gguf"

beforeAll(async () => {
  ensureBuilt()
  dir = mkdtempSync(join(tmpdir(), "llmspell-ui-images-"))
  fake = await startFakeOllama({
    models: [
      fakeModel("seer", { capabilities: ["completion", "vision"] }),
      fakeModel("agent", { capabilities: ["completion", "tools"] }),
      // an Ollama older than /api/show's capabilities field: unknown
      fakeModel("mystery", { capabilities: undefined as unknown as Array<string> })
    ]
  })
  const page = Option.getOrThrow(Effect.runSync(UiAssets.load()))
  serve = await startServe({ dir, ollamaUrl: fake.url }, { ui: page })
  writeFileSync(join(dir, "models", "tiny.gguf"), tinyLlamaGguf({ vocabSize: 400 }))
  browser = await launchBrowser()
  browser.context.setDefaultTimeout(Number(process.env["UI_TEST_TIMEOUT"] ?? 120_000))
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await serve?.close()
  await fake?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A new chat in a fresh page, on `spec`. */
const chatOn = async (spec: string): Promise<Page> => {
  const page = await browser.context.newPage()
  await page.goto(`${serve.url}/#/chat`)
  await page.getByRole("button", { name: "New chat" }).click()
  await page.locator(`select[name="model"] option[value="${spec}"]`).waitFor({ state: "attached" })
  await page.locator('select[name="model"]').selectOption(spec)
  return page
}

const file = (name: string, bytes: Uint8Array) => {
  const path = join(dir, name)
  writeFileSync(path, bytes)
  return path
}

type OllamaChat = { messages: Array<{ role: string; content: string; images?: Array<string> }> }
const chats = () => fake.requests.filter((r) => r.path === "/api/chat").map((r) => r.body as OllamaChat)

const attachInput = (page: Page) => page.getByLabel("Attach images", { exact: true })
const composerThumbs = (page: Page) => page.locator(".composer .thumbs img")

describe("attaching images in the chat", () => {
  it("reach an Ollama vision model as base64 of the file's exact bytes; a thumbnail can be removed before sending; kept across a reload", async () => {
    const first = pngImage(3, 2, [255, 0, 0])
    const second = gifImage(4, 4)
    const page = await chatOn(SEER)
    try {
      await attachInput(page).setInputFiles([file("first.png", first), file("second.gif", second)])
      await expect.poll(() => composerThumbs(page).count()).toBe(2)
      expect(await composerThumbs(page).nth(0).getAttribute("src")).toBe(`data:image/png;base64,${first.toString("base64")}`)
      expect(await composerThumbs(page).nth(1).getAttribute("src")).toBe(`data:image/gif;base64,${second.toString("base64")}`)
      await page.screenshot({ path: artifact("chat-images-attached.png") })

      // removed before sending: it goes nowhere
      await page.getByRole("button", { name: "Remove first.png" }).click()
      await expect.poll(() => composerThumbs(page).count()).toBe(1)

      const before = chats().length
      await page.getByLabel("Message", { exact: true }).fill("what is this?")
      await page.getByRole("button", { name: "Send", exact: true }).click()
      await page.locator(".msg.assistant").last().locator('[data-figure="completion"]').waitFor()
      expect(chats().length).toBe(before + 1)
      const user = chats().at(-1)!.messages.at(-1)!
      expect(user.role).toBe("user")
      expect(user.content).toBe("what is this?")
      expect(user.images).toEqual([second.toString("base64")])
      expect(Buffer.from(user.images![0]!, "base64").equals(second)).toBe(true)
      expect(await composerThumbs(page).count()).toBe(0)

      // the conversation is saved with its image: after a reload the turn shows it again
      await page.reload()
      const turn = page.locator(".msg.user", { hasText: "what is this?" })
      await turn.locator(".thumbs img").waitFor()
      expect(await turn.locator(".thumbs img").getAttribute("src")).toBe(`data:image/gif;base64,${second.toString("base64")}`)
      // and a second turn sends it again with the history, as Ollama takes a conversation
      await page.getByLabel("Message", { exact: true }).fill("and now?")
      await page.getByRole("button", { name: "Send", exact: true }).click()
      await page.locator(".msg.assistant").nth(1).locator('[data-figure="completion"]').waitFor()
      const history = chats().at(-1)!.messages.filter((m) => m.role === "user")
      expect(history.map((m) => m.images ?? [])).toEqual([[second.toString("base64")], []])
    } finally {
      await page.close()
    }
  })

  it("a file that is not an image (whatever its name), one over 8 MiB and a ninth are refused with the page's words; the good ones of a choice are kept; nothing refused is sent", async () => {
    const page = await chatOn(SEER)
    try {
      await attachInput(page).setInputFiles(file("notes.txt", Buffer.from("not a picture")))
      await page.getByText("notes.txt is not an image (PNG, JPEG, GIF or WebP).").waitFor()
      expect(await composerThumbs(page).count()).toBe(0)
      // the name says PNG, the bytes say otherwise: judged by the bytes
      await attachInput(page).setInputFiles(file("liar.png", Buffer.from("%PDF-1.7 not an image at all")))
      await page.getByText("liar.png is not an image (PNG, JPEG, GIF or WebP).").waitFor()
      expect(await composerThumbs(page).count()).toBe(0)

      const big = Buffer.alloc(8 * 1024 * 1024 + 1)
      pngImage(1, 1).copy(big)
      await attachInput(page).setInputFiles(file("big.png", big))
      await page.getByText("big.png is larger than 8 MiB.").waitFor()
      expect(await composerThumbs(page).count()).toBe(0)

      // one choice of a good image, a bad one and a GIF named .png: the good ones are kept, typed by their bytes
      const good = pngImage(2, 3)
      const gif = gifImage(2, 2)
      await attachInput(page).setInputFiles([file("good.png", good), file("notes.txt", Buffer.from("x")), file("really-a-gif.png", gif)])
      await page.getByText("notes.txt is not an image (PNG, JPEG, GIF or WebP).").waitFor()
      await expect.poll(() => composerThumbs(page).count()).toBe(2)
      expect(await composerThumbs(page).nth(1).getAttribute("src")).toBe(`data:image/gif;base64,${gif.toString("base64")}`)

      // eight at most in one message: the ninth is named, not silently dropped
      await attachInput(page).setInputFiles(Array.from({ length: 7 }, (_, i) => file(`more-${i}.png`, pngImage(1, i + 1))))
      await page.getByText("At most 8 images in one message: more-6.png left out.").waitFor()
      await expect.poll(() => composerThumbs(page).count()).toBe(8)
      await page.getByRole("button", { name: "Attach image" }).and(page.locator("[disabled]")).waitFor()

      const before = chats().length
      await page.getByLabel("Message", { exact: true }).fill("eight of them")
      await page.getByRole("button", { name: "Send", exact: true }).click()
      await page.locator(".msg.assistant").last().locator('[data-figure="completion"]').waitFor()
      expect(chats().length).toBe(before + 1)
      const sent = chats().at(-1)!.messages.at(-1)!.images ?? []
      expect(sent.length).toBe(8)
      expect(sent[0]).toBe(good.toString("base64"))
      expect(sent[1]).toBe(gif.toString("base64"))
      expect(sent).not.toContain(pngImage(1, 7).toString("base64"))
    } finally {
      await page.close()
    }
  })

  it("an image too big for the browser's storage: the conversation is kept without its bytes (named in its place), the small images of others whole, and the page says so", async () => {
    const small = pngImage(5, 5, [0, 128, 0])
    // a real PNG header, then 7 MiB of bytes that do not compress: more than localStorage holds
    const huge = Buffer.concat([pngImage(1, 1), randomBytes(7 * 1024 * 1024)])
    const page = await chatOn(SEER)
    try {
      await attachInput(page).setInputFiles(file("small.png", small))
      await composerThumbs(page).waitFor()
      await page.getByLabel("Message", { exact: true }).fill("the small one")
      await page.getByRole("button", { name: "Send", exact: true }).click()
      await page.locator(".msg.assistant").last().locator('[data-figure="completion"]').waitFor()

      await page.getByRole("button", { name: "New chat" }).click()
      await attachInput(page).setInputFiles(file("huge.png", huge))
      await composerThumbs(page).waitFor()
      await page.getByLabel("Message", { exact: true }).fill("the huge one")
      await page.getByRole("button", { name: "Send", exact: true }).click()
      await page.locator(".msg.assistant").last().locator('[data-figure="completion"]').waitFor()
      // it reached the model whole
      expect(chats().at(-1)!.messages.at(-1)!.images).toEqual([huge.toString("base64")])
      await page.getByText("conversations are kept without some images").waitFor()

      await page.reload()
      await page.locator(".conversations .conv", { hasText: "the huge one" }).first().click()
      const hugeTurn = page.locator(".msg.user", { hasText: "the huge one" })
      await hugeTurn.waitFor()
      expect(await hugeTurn.locator(".thumbs").textContent()).toContain("huge.png")
      expect(await hugeTurn.locator(".thumbs img").count()).toBe(0)
      await page.locator(".conversations .conv", { hasText: "the small one" }).first().click()
      const smallTurn = page.locator(".msg.user", { hasText: "the small one" })
      await smallTurn.locator(".thumbs img").waitFor()
      expect(await smallTurn.locator(".thumbs img").getAttribute("src")).toBe(`data:image/png;base64,${small.toString("base64")}`)
    } finally {
      await page.close()
    }
  })

  it("a GGUF model given an image: the server's 400 in the page, no CLI command; the text and the image go back to the composer", async () => {
    const image = pngImage(2, 2)
    const page = await chatOn(SEER)
    try {
      await attachInput(page).setInputFiles(file("dot.png", image))
      await composerThumbs(page).waitFor()
      await page.locator('select[name="model"]').selectOption(TINY)
      await page.getByLabel("Message", { exact: true }).fill("describe the picture")
      await page.getByRole("button", { name: "Send", exact: true }).click()
      const error = page.locator(".error", { hasText: "node-llama-cpp 3.x runs no vision model" })
      await error.waitFor()
      expect(await error.textContent()).not.toMatch(/llmspell (model|run|chat)/)
      await page.screenshot({ path: artifact("chat-images-refused.png") })
      // nothing lost: the refused turn is back in the composer, ready for another model
      expect(await page.getByLabel("Message", { exact: true }).inputValue()).toBe("describe the picture")
      expect(await composerThumbs(page).getAttribute("src")).toBe(`data:image/png;base64,${image.toString("base64")}`)
      expect(await page.locator(".msg.user").count()).toBe(0)

      // sent again to a model that can see, it goes through whole
      await page.locator('select[name="model"]').selectOption(SEER)
      await page.getByRole("button", { name: "Send", exact: true }).click()
      await page.locator(".msg.assistant").last().locator('[data-figure="completion"]').waitFor()
      const user = chats().at(-1)!.messages.at(-1)!
      expect([user.content, user.images]).toEqual(["describe the picture", [image.toString("base64")]])
      expect(await page.locator(".msg.user").count()).toBe(1)
    } finally {
      await page.close()
    }
  })

  it("attaching is offered when the model can see or its capabilities are unknown; disabled, saying why, when they lack vision", async () => {
    const page = await chatOn(SEER)
    try {
      // each state waited for as an element: the capabilities arrive from /api/show after the list
      const enabled = page.locator(".composer button:not([disabled])", { hasText: "Attach image" })
      const disabled = page.locator(".composer button[disabled][title]", { hasText: "Attach image" })
      await enabled.waitFor()
      expect(await enabled.getAttribute("title") ?? "").toBe("")
      // capabilities known without vision (Ollama's /api/show): disabled, the title says why
      await page.locator('select[name="model"]').selectOption(AGENT)
      await disabled.waitFor()
      expect(await disabled.getAttribute("title")).toMatch(/agent:latest@ollama.*vision/)
      // unknown capabilities (its Ollama says nothing of them): the server decides
      await page.locator('select[name="model"]').selectOption(UNKNOWN)
      await enabled.waitFor()
      await page.locator('select[name="model"]').selectOption(SEER)
      await enabled.waitFor()
      expect(await enabled.getAttribute("title") ?? "").toBe("")
      // a GGUF model: its capabilities come from its file, and node-llama-cpp runs no vision model
      await page.locator('select[name="model"]').selectOption(TINY)
      await disabled.waitFor()
      expect(await disabled.getAttribute("title")).toMatch(/tiny\.gguf@gguf.*vision/)
    } finally {
      await page.close()
    }
  })
})

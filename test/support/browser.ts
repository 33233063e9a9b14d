/**
 * A real browser for the web page's tests: Debian's chromium (`/usr/bin/chromium`, which
 * `.ci/run` installs when it is missing) driven by `playwright-core`, headless, with a fresh
 * profile in a temporary directory and nothing that reaches the network on its own. A machine
 * without chromium fails the test with the command that installs it: these tests are not
 * skipped. Screenshots go to test-artifacts/ui/ (git-ignored).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium } from "playwright-core"
import { root } from "./runCli.js"

/** Where the browser is, unless CHROMIUM_PATH says otherwise. */
export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"

/** Where screenshots are saved. */
export const ARTIFACTS = join(root, "test-artifacts", "ui")

/** The flags every launch gets: headless, no sandbox (CI runs as root), no GPU, no background traffic. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions"
]

/** A browser with a fresh profile; `close` removes the profile. */
export interface TestBrowser {
  readonly context: BrowserContext
  close(): Promise<void>
}

/** Launches chromium with a fresh profile, or fails saying how to install it. */
export const launchBrowser = async (options: { readonly viewport?: { width: number; height: number } } = {}): Promise<TestBrowser> => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no chromium at ${CHROMIUM}: the web page's tests need a real browser. Install Debian's: ` +
        "apt-get update && apt-get install -y --no-install-recommends chromium (bash .ci/run does this), or set CHROMIUM_PATH"
    )
  }
  const profile = mkdtempSync(join(tmpdir(), "llmspell-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: options.viewport ?? { width: 1280, height: 860 },
    acceptDownloads: true,
    colorScheme: "light"
  })
  return {
    context,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}

/** The path of a screenshot named `name`, its folder made. */
export const artifact = (name: string): string => {
  mkdirSync(ARTIFACTS, { recursive: true })
  return join(ARTIFACTS, name)
}

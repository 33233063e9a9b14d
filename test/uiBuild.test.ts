/**
 * The web page's build (scripts/uiBuild.mjs, run by `npm run build`): hashed script and stylesheet
 * that index.html points to, nothing inline for the Content-Security-Policy to refuse, no source
 * of the server or of Node in the browser bundle, and a build that fails over its size budget.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { root } from "./support/runCli.js"
// @ts-expect-error: a plain .mjs build script without types
import { buildUi, UI_BUDGET_BYTES } from "../scripts/uiBuild.mjs"

const dir = mkdtempSync(join(tmpdir(), "llmspell-ui-build-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Built {
  readonly files: Array<{ name: string; bytes: number; gzipBytes: number }>
  readonly gzipBytes: number
}

describe("the page's build", () => {
  it("hashed files that index.html points to, nothing inline, within the budget", async () => {
    const out = join(dir, "ok")
    const built = (await buildUi(out)) as Built
    const names = built.files.map((f) => f.name)
    expect(names).toHaveLength(4)
    expect(names).toEqual(expect.arrayContaining([
      expect.stringMatching(/^app-[A-Z0-9]{8}\.css$/),
      expect.stringMatching(/^app-[A-Z0-9]{8}\.js$/),
      expect.stringMatching(/^icon-[0-9a-f]{8}\.svg$/),
      "index.html"
    ]))
    const html = readFileSync(join(out, "index.html"), "utf8")
    for (const name of names.filter((n) => n !== "index.html")) expect(html).toContain(`/ui/${name}`)
    expect(html).not.toMatch(/%[A-Z_]+%/)
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i)
    expect(built.gzipBytes).toBeLessThanOrEqual(UI_BUDGET_BYTES)
    const script = readFileSync(join(out, names.find((n) => n.endsWith(".js"))!), "utf8")
    // the browser bundle carries neither the server, nor Effect, nor Node
    const foreign = /node:(fs|http|crypto|child_process)|HttpServerResponse|effect\/Schema|\beval\(|new Function\(/.exec(script)?.[0]
    expect(foreign).toBeUndefined()
  })

  it("the page's own code never writes HTML: model output and server data reach the DOM as text", () => {
    const sources = (d: string): Array<string> =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(d, e.name)) : /\.tsx?$/.test(e.name) ? [join(d, e.name)] : []))
    const offenders = sources(join(root, "src", "ui")).flatMap((file) => {
      const found = /dangerouslySetInnerHTML|innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(/.exec(readFileSync(file, "utf8"))
      return found === null ? [] : [`${file}: ${found[0]}`]
    })
    expect(offenders).toEqual([])
  })

  it("fails over the budget, naming each file's size", async () => {
    await expect(buildUi(join(dir, "over"), 1024)).rejects.toThrow(/the web page is \d+\.\d KB gzipped, over its 1 KB budget:\n {2}app-/)
  })
})

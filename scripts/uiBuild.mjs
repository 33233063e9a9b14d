// Builds the web page of `llmspell serve` (src/ui/) into dist/ui/: one script and one stylesheet
// with content hashes in their names (the server caches them as immutable), the icon, and
// index.html pointing at them. A browser bundle (Preact, JSX), apart from the CLI bundle: the
// server reads these files and never imports the page's code. The whole page (every file,
// gzipped) must stay within UI_BUDGET_BYTES, or the build fails.
import { build } from "esbuild"
import { createHash } from "node:crypto"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { basename, join } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"

/** The size budget of the whole page, gzipped. */
export const UI_BUDGET_BYTES = 150 * 1024

const root = fileURLToPath(new URL("..", import.meta.url))

/** Builds the page; returns its files and their gzipped total. Throws when over the budget. */
export const buildUi = async (outdir = join(root, "dist", "ui"), budgetBytes = UI_BUDGET_BYTES) => {
  rmSync(outdir, { recursive: true, force: true })
  mkdirSync(outdir, { recursive: true })
  const result = await build({
    entryPoints: { app: join(root, "src", "ui", "main.tsx") },
    bundle: true,
    platform: "browser",
    format: "esm",
    target: ["es2022", "chrome105", "firefox110", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    treeShaking: true,
    sourcemap: false,
    legalComments: "none",
    outdir,
    entryNames: "[name]-[hash]",
    metafile: true,
    logLevel: "warning"
  })
  const outputs = Object.keys(result.metafile.outputs).map((file) => basename(file))
  const script = outputs.find((name) => name.endsWith(".js"))
  const style = outputs.find((name) => name.endsWith(".css"))
  if (script === undefined || style === undefined) throw new Error(`the page build made no script or stylesheet: ${outputs.join(", ")}`)
  const icon = readFileSync(join(root, "src", "ui", "icon.svg"))
  const iconName = `icon-${createHash("sha256").update(icon).digest("hex").slice(0, 8)}.svg`
  writeFileSync(join(outdir, iconName), icon)
  const html = readFileSync(join(root, "src", "ui", "index.html"), "utf8")
    .replace("%APP_JS%", `/ui/${script}`)
    .replace("%APP_CSS%", `/ui/${style}`)
    .replace("%ICON%", `/ui/${iconName}`)
  writeFileSync(join(outdir, "index.html"), html)
  const files = readdirSync(outdir).map((name) => {
    const bytes = readFileSync(join(outdir, name))
    return { name, bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length }
  })
  const gzipBytes = files.reduce((sum, f) => sum + f.gzipBytes, 0)
  if (gzipBytes > budgetBytes) {
    throw new Error(
      `the web page is ${(gzipBytes / 1024).toFixed(1)} KB gzipped, over its ${budgetBytes / 1024} KB budget:\n` +
        files.map((f) => `  ${f.name}: ${(f.gzipBytes / 1024).toFixed(1)} KB`).join("\n")
    )
  }
  return { files, gzipBytes }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { files, gzipBytes } = await buildUi()
  for (const f of files) console.log(`${f.name}\t${f.bytes} B\t${f.gzipBytes} B gzipped`)
  console.log(`web page: ${(gzipBytes / 1024).toFixed(1)} KB gzipped (budget ${UI_BUDGET_BYTES / 1024} KB)`)
}

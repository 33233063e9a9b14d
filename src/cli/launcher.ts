/**
 * The `llmspell` executable (dist/cli.js). `--help` is printed from the text the build rendered;
 * anything else runs the CLI bundle (dist/cli.cjs, whose entry is `bin.ts`) with its code cache.
 * Why, and what it costs: `launch.ts`.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { compileBundle, helpColor, helpFor, type HelpTexts, runBundle } from "./launch.js"

const dist = fileURLToPath(new URL(".", import.meta.url))
const args = process.argv.slice(2)

const help = (() => {
  const last = args[args.length - 1]
  if (last !== "--help" && last !== "-h") return undefined
  try {
    const texts = JSON.parse(readFileSync(`${dist}help.json`, "utf8")) as HelpTexts
    return helpFor(args, texts, helpColor(process.stdout.isTTY === true, process.env))
  } catch {
    return undefined // no help.json (a partial build): the CLI renders it
  }
})()

if (help !== undefined) {
  // `llmspell --help | head` closes stdout early: stop quietly, as the CLI does (bin.ts).
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0)
    throw error
  })
  process.stdout.write(help)
} else {
  const bundle = `${dist}cli.cjs`
  runBundle(compileBundle(bundle, `${dist}cli.cache`), bundle)
}

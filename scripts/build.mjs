// Builds the CLI bundle (dist/cli.js) with esbuild: one file, deep imports tree-shaken, the heavy
// backend libraries left external and loaded with import() only by the commands that need them.
import { build } from "esbuild"
import { chmodSync, readFileSync } from "node:fs"
import { ggufWorkerBuildOptions, nodeBundle, requireBanner } from "./ggufWorkerBuild.mjs"
import { buildUi } from "./uiBuild.mjs"

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))

await build({
  entryPoints: ["src/cli/bin.ts"],
  ...nodeBundle,
  outfile: "dist/cli.js",
  external: ["node-llama-cpp", "ollama", "@huggingface/hub", "ollama/*", "@huggingface/*"],
  define: { "process.env.LLMSPELL_BUNDLED": '"1"' },
  banner: { js: `#!/usr/bin/env node\n${requireBanner}` },
  plugins: [
    {
      name: "version",
      setup(b) {
        b.onLoad({ filter: /src[\\/]cli[\\/]version\.ts$/ }, () => ({
          contents: `export const VERSION = ${JSON.stringify(pkg.version)}`,
          loader: "ts"
        }))
      }
    }
  ]
})

// The GGUF worker process (llama.cpp runs there): dist/gguf-worker.js, found next to dist/cli.js.
await build(ggufWorkerBuildOptions("dist/gguf-worker.js"))

// The web page of `llmspell serve`: dist/ui/, a browser bundle of its own (the server reads the
// files, never imports them); fails the build when the page is over its size budget.
await buildUi()

// npm links and chmods a bin only if it exists at link time; in a fresh clone `npm ci` links before
// `prepare` builds dist/cli.js, so without this `npx llmspell` fails with "Permission denied".
chmodSync("dist/cli.js", 0o755)

// esbuild options of the GGUF worker process bundle (src/layers/gguf/workerMain.ts): the
// CLI starts it as dist/gguf-worker.js; the test suite bundles the same entry to a temporary file
// (a worker run through tsx takes seconds to start). node-llama-cpp stays external.

/** What every llmspell bundle shares: one ESM file for Node 20, tree-shaken, with a real `require`
 * (yaml, pulled in by @effect/cli, calls require("process"), which ESM bundles lack otherwise). */
export const nodeBundle = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  minifySyntax: true,
  treeShaking: true,
  sourcemap: false,
  legalComments: "none"
}

/** The `require` banner line of every bundle. */
export const requireBanner =
  "import { createRequire as __llmspellCreateRequire } from 'node:module';\nconst require = __llmspellCreateRequire(import.meta.url);"

export const ggufWorkerBuildOptions = (outfile) => ({
  ...nodeBundle,
  entryPoints: [new URL("../src/layers/gguf/workerMain.ts", import.meta.url).pathname],
  outfile,
  external: ["node-llama-cpp"],
  banner: { js: requireBanner }
})

// esbuild options of the GGUF worker process bundle (src/layers/internal/ggufWorkerMain.ts): the
// CLI starts it as dist/gguf-worker.js; the test suite bundles the same entry to a temporary file
// (a worker run through tsx takes seconds to start). node-llama-cpp stays external.
export const ggufWorkerBuildOptions = (outfile) => ({
  entryPoints: [new URL("../src/layers/internal/ggufWorkerMain.ts", import.meta.url).pathname],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  minifySyntax: true,
  treeShaking: true,
  sourcemap: false,
  legalComments: "none",
  external: ["node-llama-cpp"],
  banner: {
    js: "import { createRequire as __llmspellCreateRequire } from 'node:module';\nconst require = __llmspellCreateRequire(import.meta.url);"
  }
})

// Builds the CLI (`npm run build`, run by `prepare`):
// - dist/cli.cjs: the CLI in one CommonJS bundle (entry src/cli/bin.ts), deep imports tree-shaken,
//   the heavy backend libraries left external and loaded with import() only by the commands that
//   need them;
// - dist/cli.js: the executable, a few lines (src/cli/launcher.ts) that print --help from
//   dist/help.json or run the bundle with its V8 code cache, dist/cli.cache (why: src/cli/launch.ts);
// - dist/help.json and dist/cli.cache, written by running what was just built;
// - dist/gguf-worker.js: the GGUF worker process.
import { execFileSync } from "node:child_process"
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { build } from "esbuild"
import { ggufWorkerBuildOptions, nodeBundle } from "./ggufWorkerBuild.mjs"
import { buildUi } from "./uiBuild.mjs"

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))

const version = {
  name: "version",
  setup(b) {
    b.onLoad({ filter: /src[\\/]cli[\\/]version\.ts$/ }, () => ({
      contents: `export const VERSION = ${JSON.stringify(pkg.version)}`,
      loader: "ts"
    }))
  }
}

// msgpackr is imported by @effect/rpc for its MessagePack serialization, which llmspell never uses
// (the protocol is NDJSON, client and server), and loading it (with its search for an optional
// native addon) cost every command that talks to a server ~15 ms. In its place, a module whose
// classes say so if anything ever asks for them.
const noMsgpack = {
  name: "no-msgpackr",
  setup(b) {
    b.onResolve({ filter: /^msgpackr$/ }, () => ({ path: "msgpackr", namespace: "absent" }))
    b.onLoad({ filter: /.*/, namespace: "absent" }, () => ({
      contents:
        "const absent = () => { throw new Error('MessagePack is not in the llmspell CLI bundle: the protocol is NDJSON') }\n" +
        "module.exports = { get Packr() { return absent() }, get Unpackr() { return absent() } }",
      loader: "js"
    }))
  }
}

// @effect/platform-node's HTTP client imports node:https (and with it tls and crypto, ~20 ms) when
// it is loaded, though a request to an http:// server (every llmspell serve on loopback) never
// touches it. Its import of node:https gets a stand-in that loads the real module on first use;
// LlmspellRemote makes the https agent only for an https:// server.
const lazyHttps = {
  name: "lazy-https",
  setup(b) {
    b.onResolve({ filter: /^node:https$/ }, (args) =>
      /@effect[\\/]platform-node[\\/]dist[\\/]esm[\\/]internal[\\/]httpClient\.js$/.test(args.importer)
        ? { path: "node:https", namespace: "lazy-https" }
        : undefined)
    b.onLoad({ filter: /.*/, namespace: "lazy-https" }, () => ({
      contents: "let https\nconst load = () => (https ??= require(\"node:https\"))\n" +
        "module.exports = { get Agent() { return load().Agent }, request: (...args) => load().request(...args) }",
      loader: "js"
    }))
  }
}

const cliOptions = (entry, outfile) => ({
  ...nodeBundle,
  entryPoints: [entry],
  outfile,
  format: "cjs",
  external: ["node-llama-cpp", "ollama", "@huggingface/hub", "ollama/*", "@huggingface/*"],
  define: { "process.env.LLMSPELL_BUNDLED": '"1"', "import.meta.url": "__llmspellModuleUrl" },
  banner: {
    js: "const __llmspellModuleUrl = require(\"node:url\").pathToFileURL(__filename).href;\n" +
      "var __llmspellImport = __llmspellImport ?? ((specifier) => import(specifier));"
  },
  plugins: [version, noMsgpack, lazyHttps]
})

const EXTERNAL = ["node-llama-cpp", "ollama", "@huggingface/hub"]

/**
 * Builds a CLI bundle and rewrites its `import()` of the external libraries into
 * `__llmspellImport()`: in Node 20 a script compiled from a code cache has no `import()` of its own
 * (src/cli/launch.ts passes one in; run outside the launcher, the bundle falls back to its own).
 * Every `import("…")` left in the output is one of EXTERNAL, or the build stops.
 */
const buildCli = async (entry, outfile) => {
  const result = await build({ ...cliOptions(entry, outfile), write: false })
  const text = result.outputFiles[0].text.replace(/\bimport\((["'])([^"'.][^"']*)\1\)/g, (whole, _q, specifier) => {
    if (!EXTERNAL.includes(specifier) && !specifier.startsWith("node:")) throw new Error(`${outfile}: an import() of ${specifier}, which is not one of ${EXTERNAL.join(", ")}`)
    return `__llmspellImport(${JSON.stringify(specifier)})`
  })
  mkdirSync(dirname(outfile), { recursive: true })
  writeFileSync(outfile, text)
}

await buildCli("src/cli/bin.ts", "dist/cli.cjs")

await build({
  ...nodeBundle,
  entryPoints: ["src/cli/launcher.ts"],
  outfile: "dist/cli.js",
  banner: { js: "#!/usr/bin/env node" }
})

// The GGUF worker process (llama.cpp runs there): dist/gguf-worker.js, found next to dist/cli.cjs.
await build(ggufWorkerBuildOptions("dist/gguf-worker.js"))

// The web page of `llmspell serve`: dist/ui/, a browser bundle of its own (the server reads the
// files, never imports them); fails the build when the page is over its size budget.
await buildUi()

// npm links and chmods a bin only if it exists at link time; in a fresh clone `npm ci` links before
// `prepare` builds dist/cli.js, so without this `npx llmspell` fails with "Permission denied".
chmodSync("dist/cli.js", 0o755)

// What is rendered or cached from the build itself, by running it: each step bundled to a scratch
// directory, run with this Node (a code cache belongs to the Node that wrote it), in a scratch HOME
// with nothing in the environment that could point the CLI at a user's files or servers.
const scratch = mkdtempSync(join(tmpdir(), "llmspell-build-"))
try {
  const env = { PATH: process.env.PATH ?? "", HOME: scratch, XDG_CONFIG_HOME: join(scratch, "xdg"), NO_COLOR: "1" }
  const step = async (name) => {
    const outfile = join(scratch, `${name}.cjs`)
    await buildCli(`scripts/${name}.ts`, outfile)
    return outfile
  }
  const helpText = execFileSync(process.execPath, [await step("helpText")], { env, cwd: scratch, encoding: "utf8", maxBuffer: 64 << 20 })
  writeFileSync("dist/help.json", helpText)
  rmSync("dist/cli.cache", { force: true })
  const dist = resolve("dist")
  execFileSync(process.execPath, [await step("codeCache"), join(dist, "cli.cjs"), join(dist, "cli.cache"), "config", "show", "--json"], {
    env,
    cwd: scratch,
    stdio: ["ignore", "ignore", "inherit"]
  })
} finally {
  rmSync(scratch, { recursive: true, force: true })
}

/**
 * How the `llmspell` executable starts, kept apart from the CLI because every invocation pays for
 * what this module loads (only `node:fs`, `node:module`, `node:vm`). Two things make start-up cheap
 * (bench:startup measures them):
 *
 * - `--help` is answered from the text the build rendered from the command tree (dist/help.json,
 *   the same `renderHelp` output), without loading the CLI at all;
 * - everything else runs the CLI bundle (dist/cli.cjs) compiled with a V8 code cache the build wrote
 *   beside it (dist/cli.cache): parsing and compiling the 2 MB bundle was a third of every start.
 *   A cache written by another Node version is rejected by V8 and the bundle is compiled as usual.
 *
 * The bundle is CommonJS because Node 20 can only give a code cache to a `vm.Script`. A script
 * compiled from a cache loses its `import()` in Node 20 (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), so
 * the build rewrites the bundle's `import()` of the libraries left out of it (node-llama-cpp,
 * ollama, @huggingface/hub) into `__llmspellImport()`, which this module passes in: Node's own
 * `import()`, from here.
 */
import { existsSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import * as vm from "node:vm"

/** The help texts the build rendered: by command path (`""`, `"model"`, `"model list"`), plain and coloured. */
export type HelpTexts = Readonly<Record<string, { readonly plain: string; readonly color: string }>>

const HELP_FLAGS = new Set(["--help", "-h"])

/**
 * The help text for argv when it is exactly a command path and one help flag (`llmspell model
 * --help`), else undefined: anything more (global flags, options, a typo) goes to the CLI, which
 * answers it the same way or says what is wrong.
 */
export const helpFor = (
  args: ReadonlyArray<string>,
  texts: HelpTexts,
  color: boolean
): string | undefined => {
  if (args.length === 0 || !HELP_FLAGS.has(args[args.length - 1]!)) return undefined
  const words = args.slice(0, -1)
  if (words.some((w) => w.startsWith("-"))) return undefined
  const text = texts[words.join(" ")]
  return text === undefined ? undefined : color ? text.color : text.plain
}

/** Whether help is coloured: stdout a terminal, NO_COLOR unset, TERM not dumb (as `main` decides). */
export const helpColor = (stdoutIsTTY: boolean, env: Readonly<Record<string, string | undefined>>): boolean =>
  stdoutIsTTY && !env["NO_COLOR"] && env["TERM"] !== "dumb"

/** The bundle compiled, and whether V8 took the cache (undefined: there was none). */
export interface CompiledBundle {
  readonly script: vm.Script
  readonly cacheRejected: boolean | undefined
}

// The CommonJS wrapper Node puts around a module, plus the import function the bundle calls for its
// external libraries; the cache belongs to this exact text.
const wrap = (source: string) =>
  `(function (exports, require, module, __filename, __dirname, __llmspellImport) {${source}\n})`

/** Compiles the CLI bundle with its code cache, if there is one. */
export const compileBundle = (bundlePath: string, cachePath: string | undefined): CompiledBundle => {
  const cachedData = cachePath !== undefined && existsSync(cachePath) ? readFileSync(cachePath) : undefined
  const script = new vm.Script(wrap(readFileSync(bundlePath, "utf8")), {
    filename: bundlePath,
    ...(cachedData !== undefined ? { cachedData } : {})
  })
  return { script, cacheRejected: cachedData === undefined ? undefined : script.cachedDataRejected === true }
}

/** Node's `import()` of a library the bundle leaves out (a bare name, found from dist/ up). */
const importExternal = (specifier: string): Promise<unknown> => import(specifier)

/** Runs the compiled bundle as the module at `bundlePath` (its `require`, `__filename`, `__dirname`). */
export const runBundle = (compiled: CompiledBundle, bundlePath: string): void => {
  const module = { exports: {} }
  const run = compiled.script.runInThisContext() as (...args: Array<unknown>) => void
  const dir = bundlePath.slice(0, Math.max(bundlePath.lastIndexOf("/"), bundlePath.lastIndexOf("\\")))
  run.call(module.exports, module.exports, createRequire(bundlePath), module, bundlePath, dir, importExternal)
}

/**
 * Build step (scripts/build.mjs): writes the V8 code cache of the CLI bundle (dist/cli.cache). It
 * compiles dist/cli.cjs exactly as the executable does (src/cli/launch.ts), runs one command that
 * touches no network and no user file (`config show --json`, in the scratch HOME the build gives),
 * and at exit saves the cache, which then holds the bundle's top level and every function that run
 * compiled. Usage: node <this, bundled> <dist/cli.cjs> <dist/cli.cache> [args…]
 */
import { writeFileSync } from "node:fs"
import { compileBundle, runBundle } from "../src/cli/launch.js"

const [bundle, cache, ...args] = process.argv.slice(2)
if (bundle === undefined || cache === undefined) throw new Error("usage: codeCache <bundle> <cache> [args…]")
const compiled = compileBundle(bundle, undefined)
process.on("exit", () => writeFileSync(cache, compiled.script.createCachedData()))
process.argv = [process.argv[0]!, bundle, ...args]
runBundle(compiled, bundle)

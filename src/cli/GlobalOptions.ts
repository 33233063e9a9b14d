/**
 * Options that apply to every command (`--config`, `--json`, `--verbose`, the config-overriding
 * flags). They are declared once, in `GLOBAL_FLAGS`: the parser below and the help renderer both
 * read that table, so help and parsing cannot disagree. They are taken out of argv wherever they
 * appear, so `llmspell --json model list` and `llmspell model list --config x.toml` both work,
 * although @effect/cli only accepts parent options before the subcommand.
 */
import * as Context from "effect/Context"
import type { ConfigFlags } from "../domain/ConfigSchema.js"

/** Global options of one invocation. */
export interface GlobalOptionsValue {
  readonly configFile: string | undefined
  readonly verbose: boolean
  readonly json: boolean
  readonly flags: ConfigFlags
  /** `--host ADDRESS`: the `llmspell serve` to connect to (host:port or a URL, as written). */
  readonly host?: string | undefined
  /** `--local`: run embedded even when a server is running. */
  readonly local?: boolean | undefined
}

/** The global options. */
export class GlobalOptions extends Context.Tag("llmspell/cli/GlobalOptions")<GlobalOptions, GlobalOptionsValue>() {}

type Mutable = {
  configFile: string | undefined
  verbose: boolean
  json: boolean
  host?: string | undefined
  local?: boolean | undefined
  flags: { -readonly [K in keyof ConfigFlags]: ConfigFlags[K] }
}

/** One global flag: its name, the placeholder of its value (none for a switch), its help, and what it sets. */
export interface GlobalFlag {
  readonly name: string
  readonly value?: string
  readonly description: string
  readonly apply: (into: Mutable, value: string) => void
  /** After one of these command words the flag is the command's own (`serve --host` is where it listens). */
  readonly notAfter?: ReadonlyArray<string>
}

/** `--json`: global (taken from anywhere) and also declared by every leaf command (`commands/shared.ts`). */
export const JSON_FLAG: GlobalFlag = {
  name: "--json",
  description: "print the result (or the error) as JSON on stdout",
  apply: (o) => void (o.json = true)
}

/** Every global flag, in the order help lists them. */
export const GLOBAL_FLAGS: ReadonlyArray<GlobalFlag> = [
  JSON_FLAG,
  { name: "--config", value: "file", description: "config file to use", apply: (o, v) => void (o.configFile = v) },
  {
    name: "--models-dir",
    value: "dir",
    description: "GGUF model directory (LLMSPELL_MODELS_DIR)",
    apply: (o, v) => void (o.flags.modelsDir = v)
  },
  {
    name: "--ollama-host",
    value: "host",
    description: "Ollama server, host:port or URL (OLLAMA_HOST)",
    apply: (o, v) => void (o.flags.ollamaHost = v)
  },
  {
    name: "--hub-endpoint",
    value: "url",
    description: "Hugging Face hub to pull from (HF_ENDPOINT)",
    apply: (o, v) => void (o.flags.hubEndpoint = v)
  },
  { name: "--offline", description: "never contact the hub", apply: (o) => void (o.flags.offline = true) },
  {
    name: "--host",
    value: "url",
    description: "use the `llmspell serve` at this address, host:port or URL (LLMSPELL_HOST; default: a running one, if any)",
    apply: (o, v) => void (o.host = v),
    notAfter: ["serve"]
  },
  { name: "--local", description: "run models in this process even when a server is running", apply: (o) => void (o.local = true) },
  { name: "--verbose", description: "more detail; stack traces on errors (LLMSPELL_DEBUG=1)", apply: (o) => void (o.verbose = true) }
]

const BY_NAME = new Map(GLOBAL_FLAGS.map((f) => [f.name, f]))

/**
 * Splits argv (without node and script) into global options and the rest for @effect/cli.
 * `--json` is also put back at the end of the rest (before a `--`): every leaf command declares it
 * (`commands/shared.ts`), so wherever the user typed it, the command sees it.
 */
export const extractGlobalOptions = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = {}
): { readonly options: GlobalOptionsValue; readonly rest: Array<string>; readonly error?: string } => {
  const rest: Array<string> = []
  const options: Mutable = {
    configFile: undefined,
    verbose: env["LLMSPELL_DEBUG"] === "1" || env["LLMSPELL_DEBUG"] === "true",
    json: false,
    flags: {}
  }
  let error: string | undefined
  let afterDashes: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") {
      afterDashes = args.slice(i)
      break
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1
    const name = eq > 0 ? arg.slice(0, eq) : arg
    const found = BY_NAME.get(name)
    // rest[0] is the command word (global flags before it are taken out)
    const flag = found?.notAfter?.includes(rest[0] ?? "") ? undefined : found
    if (flag === undefined) {
      rest.push(arg)
      continue
    }
    if (flag.value === undefined) {
      if (eq > 0) error ??= `${name} takes no value`
      else flag.apply(options, "")
      continue
    }
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i]
    if (value === undefined || value.length === 0) {
      error ??= `${name} needs a value (${name} <${flag.value}>)`
      continue
    }
    flag.apply(options, value)
  }
  if (options.json) rest.push("--json")
  // A loop, not `push(...afterDashes)`: spreading an unbounded array into a call overflows the stack.
  for (const arg of afterDashes) rest.push(arg)
  return error !== undefined ? { options, rest, error } : { options, rest }
}

/**
 * Options that apply to every command (`--config`, `--verbose`, the config-overriding flags).
 * They are taken out of argv wherever they appear, so `llmspell model list --config x.toml` works
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
}

/** The global options. */
export class GlobalOptions extends Context.Tag("llmspell/cli/GlobalOptions")<GlobalOptions, GlobalOptionsValue>() {}

const VALUE_FLAGS: Record<string, keyof ConfigFlags | "config"> = {
  "--config": "config",
  "--models-dir": "modelsDir",
  "--ollama-host": "ollamaHost",
  "--hub-endpoint": "hubEndpoint"
}

/** Splits argv (without node and script) into global options and the rest for @effect/cli. */
export const extractGlobalOptions = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = {}
): { readonly options: GlobalOptionsValue; readonly rest: Array<string>; readonly error?: string } => {
  const rest: Array<string> = []
  const flags: { -readonly [K in keyof ConfigFlags]: ConfigFlags[K] } = {}
  let configFile: string | undefined
  let verbose = env["LLMSPELL_DEBUG"] === "1" || env["LLMSPELL_DEBUG"] === "true"
  let json = false
  let error: string | undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") {
      rest.push(...args.slice(i))
      break
    }
    if (arg === "--verbose") {
      verbose = true
      continue
    }
    if (arg === "--offline") {
      flags.offline = true
      continue
    }
    if (arg === "--json") json = true
    const eq = arg.indexOf("=")
    const name = eq > 0 ? arg.slice(0, eq) : arg
    const target = VALUE_FLAGS[name]
    if (target !== undefined) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i]
      if (value === undefined || value.length === 0) {
        error ??= `${name} needs a value`
        continue
      }
      if (target === "config") configFile = value
      else if (target === "modelsDir" || target === "ollamaHost" || target === "hubEndpoint") flags[target] = value
      continue
    }
    rest.push(arg)
  }
  const options = { configFile, verbose, json, flags }
  return error !== undefined ? { options, rest, error } : { options, rest }
}

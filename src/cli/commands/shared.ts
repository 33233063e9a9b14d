/** Options shared by several commands, each declared once. */
import * as Options from "@effect/cli/Options"
import { JSON_FLAG } from "../GlobalOptions.js"

/**
 * `--json`: machine-readable output on stdout. Every leaf command declares it; `GlobalOptions`
 * also takes it from anywhere in argv (`llmspell --json model list`) and hands it to the command.
 */
export const json = Options.boolean(JSON_FLAG.name.slice(2)).pipe(Options.withDescription(JSON_FLAG.description))

/** `--backend ollama|gguf|candle|all`; `candle` is an alias of `gguf`, as in specs and the config. */
export const backend = Options.choiceWithValue("backend", [
  ["all", "all"],
  ["ollama", "ollama"],
  ["gguf", "gguf"],
  ["candle", "gguf"],
  ["cloud", "cloud"]
] as const).pipe(
  Options.withDefault("all" as const),
  Options.withDescription(
    "which backends to cover: all local ones (default), ollama, gguf (alias candle), or cloud (the configured cloud instances)"
  )
)

/** Options shared by several commands. */
import * as Options from "@effect/cli/Options"

/** `--json`: machine-readable output on stdout. */
export const json = Options.boolean("json").pipe(Options.withDescription("print JSON on stdout"))

/** `--backend ollama|gguf|all`. */
export const backend = Options.choice("backend", ["all", "ollama", "gguf"] as const).pipe(
  Options.withDefault("all" as const),
  Options.withDescription("which backends to cover")
)

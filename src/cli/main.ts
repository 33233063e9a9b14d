/**
 * The `llmspell` command tree and one invocation of it: global options taken out of argv, the
 * command run, failures rendered and mapped to an exit code. `bin.ts` only wires the runtime.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { CliIO } from "./CliIO.js"
import { configCommand } from "./commands/config.js"
import { modelCommand } from "./commands/model.js"
import { runCommand } from "./commands/run.js"
import { ExitStatus } from "./ExitStatus.js"
import { extractGlobalOptions, GlobalOptions } from "./GlobalOptions.js"
import { describeFailure } from "./output.js"
import { VERSION } from "./version.js"

// Declared for --help only: GlobalOptions takes them out of argv before @effect/cli parses it.
const globalHelp = {
  config: Options.file("config").pipe(Options.optional, Options.withDescription("config file to use")),
  verbose: Options.boolean("verbose").pipe(Options.withDescription("more detail; stack traces on errors")),
  modelsDir: Options.directory("models-dir").pipe(Options.optional, Options.withDescription("GGUF model directory")),
  ollamaHost: Options.text("ollama-host").pipe(Options.optional, Options.withDescription("Ollama server (host:port or URL)")),
  offline: Options.boolean("offline").pipe(Options.withDescription("never contact the hub"))
}

/** The root command. */
export const rootCommand = Command.make("llmspell", globalHelp).pipe(
  Command.withDescription("manage and run local LLMs: Ollama servers and GGUF models, from one place"),
  Command.withSubcommands([modelCommand, runCommand, configCommand])
)

const cli = Command.run(rootCommand, { name: "llmspell", version: VERSION })

/** Runs one invocation; resolves to the exit code. Never fails. */
export const main = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = process.env
) =>
  Effect.gen(function*() {
    const io = yield* CliIO
    const { error, options, rest } = extractGlobalOptions(argv.slice(2), env)
    if (error !== undefined) {
      yield* io.stderr(`error: ${error}\n`)
      return 2
    }
    yield* ExitStatus.reset
    const exit = yield* cli([...argv.slice(0, 2), ...rest]).pipe(
      Effect.provide(Layer.succeed(GlobalOptions, options)),
      Effect.exit
    )
    if (Exit.isSuccess(exit)) return yield* ExitStatus.get
    const failure = describeFailure(exit.cause, options)
    if (failure.stdout) yield* io.stdout(failure.stdout)
    if (failure.stderr) yield* io.stderr(failure.stderr)
    if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
    return failure.code
  })

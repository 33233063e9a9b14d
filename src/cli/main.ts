/**
 * The `llmspell` command tree and one invocation of it: global options taken out of argv, the
 * command run, failures rendered and mapped to an exit code. `bin.ts` only wires the runtime.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Ref from "effect/Ref"
import * as os from "node:os"
import { format } from "node:util"
import { ConfigEnvironment } from "../layers/ConfigLive.js"
import { CliIO, type CliIOService, consoleOf } from "./CliIO.js"
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

// Library code logs warnings with Effect's logger (e.g. a malformed entry in an Ollama server's
// model list); the default logger prints on stdout, which would corrupt `--json` output.
const stderrLogger = (io: CliIOService) =>
  Logger.make(({ logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map((m) => typeof m === "string" ? m : format(m)).join(" ")
    const label = logLevel._tag === "Warning" ? "warning" : logLevel.label.toLowerCase()
    Effect.runFork(io.stderr(`${label}: ${text}\n`))
  })

const cli = Command.run(rootCommand, { name: "llmspell", version: VERSION })

/**
 * Runs one invocation; resolves to the exit code. Never fails. `env` (and `where.cwd`/`where.home`)
 * are all the invocation sees of the process: config discovery and resolution read them, not
 * `process.env`, so tests can run it in-process against temp directories.
 */
export const main = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = process.env,
  where: { readonly cwd?: string; readonly home?: string } = {}
) =>
  Effect.gen(function*() {
    const io = yield* CliIO
    const { error, options, rest } = extractGlobalOptions(argv.slice(2), env)
    if (error !== undefined) {
      const usage = { _tag: "UsageError", message: error, hint: "see `llmspell --help`" }
      if (options.json) yield* io.stdout(`${JSON.stringify({ error: usage })}\n`)
      else yield* io.stderr(`error: ${usage.message}\nhint: ${usage.hint}\n`)
      return 2
    }
    const exitStatus = yield* Ref.make(0)
    const exit = yield* cli([...argv.slice(0, 2), ...rest]).pipe(
      Effect.provide(Layer.succeed(GlobalOptions, options)),
      Effect.provideService(ExitStatus, exitStatus),
      Effect.provideService(ConfigEnvironment, {
        env,
        cwd: where.cwd ?? process.cwd(),
        home: where.home ?? env["HOME"] ?? os.homedir()
      }),
      Console.withConsole(consoleOf(io)),
      // All of them: runMain adds a pretty logger of its own, which also prints on stdout.
      Effect.locally(FiberRef.currentLoggers, HashSet.make(stderrLogger(io))),
      Effect.exit
    )
    if (Exit.isSuccess(exit)) return yield* Ref.get(exitStatus)
    const failure = describeFailure(exit.cause, options)
    if (failure.stdout) yield* io.stdout(failure.stdout)
    if (failure.stderr) yield* io.stderr(failure.stderr)
    if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
    return failure.code
  })

/**
 * One invocation of `llmspell`: global options taken out of argv, `--help` and subcommand mistakes
 * answered from the tree, the command run, failures rendered and mapped to an exit code. The tree
 * itself is `Cli.ts`; `bin.ts` only wires the runtime.
 */
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
import { UsageError } from "../domain/Errors.js"
import { ConfigEnvironment } from "../layers/ConfigLive.js"
import { cli, commandTree } from "./Cli.js"
import { CliIO, type CliIOService, consoleOf } from "./CliIO.js"
import { ExitStatus } from "./ExitStatus.js"
import { extractGlobalOptions, GlobalOptions } from "./GlobalOptions.js"
import { locate, renderHelp, subcommandProblem } from "./Help.js"
import { describeFailure } from "./output.js"
import { redactUrlsIn } from "../domain/ServerUrl.js"
// Library code logs warnings with Effect's logger (e.g. a malformed entry in an Ollama server's
// model list); the default logger prints on stdout, which would corrupt `--json` output. A URL in
// a log line is shown redacted, as everywhere else.
const stderrLogger = (io: CliIOService) =>
  Logger.make(({ logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map((m) => typeof m === "string" ? m : format(m)).join(" ")
    const label = logLevel._tag === "Warning" ? "warning" : logLevel.label.toLowerCase()
    Effect.runFork(io.stderr(`${label}: ${redactUrlsIn(text)}\n`))
  })


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
    const fail = (usage: UsageError) =>
      Effect.gen(function*() {
        const failure = describeFailure(Cause.fail(usage), options)
        if (failure.stdout) yield* io.stdout(failure.stdout)
        if (failure.stderr) yield* io.stderr(failure.stderr)
        return failure.code
      })
    if (error !== undefined) return yield* fail(new UsageError({ reason: error }))
    const located = locate(commandTree, rest)
    switch (located._tag) {
      case "Help": {
        const color = io.stdoutIsTTY && !env["NO_COLOR"] && env["TERM"] !== "dumb"
        yield* io.stdout(renderHelp(located.path, { color }))
        return 0
      }
      case "MissingSubcommand":
      case "UnknownSubcommand": {
        const problem = subcommandProblem(located)
        return yield* fail(new UsageError({ reason: problem.message, suggestion: problem.hint }))
      }
      case "Run":
        break
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
    const failure = describeFailure(exit.cause, {
      ...options,
      usageHint: `see \`${located.path.map((n) => n.name).join(" ")} --help\``
    })
    if (failure.stdout) yield* io.stdout(failure.stdout)
    if (failure.stderr) yield* io.stderr(failure.stderr)
    if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
    return failure.code
  })

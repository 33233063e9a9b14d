/**
 * The CLI bundle's entry (dist/cli.cjs, started by `launcher.ts`): wires the Node runtime around
 * `main`, maps the result to the exit code.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { layerLive } from "./CliIO.js"
import { foreground } from "./foreground.js"
import { main } from "./main.js"

// `llmspell … | head` closes our stdout early: stop quietly, like other command-line tools.
// (A pull stopped this way leaves its .partial file, and the next pull resumes it.)
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0)
    throw error
  })
}

/** Exit codes after a signal, by shell convention 128 + its number: Ctrl-C 130, SIGTERM 143. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const
type StopSignal = keyof typeof SIGNAL_EXIT_CODES

// runMain interrupts the program on the first SIGINT/SIGTERM (finalizers run: partial files,
// locks, model handles) and then removes its listeners. This listener stays, for two reasons:
// it remembers which signal it was (130 or 143), and it keeps `signal-exit` (loaded with
// node-llama-cpp's dependencies) from seeing "no other listeners" and re-raising the signal,
// which killed `run` by SIGINT before its cleanup finished. A second signal means "now".
let stoppedBy: StopSignal | undefined
for (const signal of Object.keys(SIGNAL_EXIT_CODES) as Array<StopSignal>) {
  process.on(signal, () => {
    // an agent `llmspell launch` runs: Ctrl-C reached it from the terminal; SIGTERM was ours alone
    if (foreground.child !== undefined) {
      if (signal === "SIGTERM") foreground.child.kill("SIGTERM")
      return
    }
    if (stoppedBy !== undefined) process.exit(SIGNAL_EXIT_CODES[stoppedBy])
    stoppedBy = signal
  })
}

// What @effect/cli needs (FileSystem, Path, Terminal), not all of NodeContext: its command executor
// and worker manager build schemas and classes at import that no command uses.
const platform = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)

main(process.argv).pipe(
  Effect.provide(Layer.merge(platform, layerLive)),
  (program) =>
    NodeRuntime.runMain(program, {
      disableErrorReporting: true,
      teardown: (exit, onExit) => {
        // `llmspell launch` ends with its agent's exit code, however the agent was stopped
        if (foreground.exitCode !== undefined) return onExit(foreground.exitCode)
        if (Exit.isSuccess(exit) && typeof exit.value === "number") return onExit(exit.value)
        // a command whose normal stop is a signal (`serve`) sets exitCode 0 once it has shut down cleanly
        if (stoppedBy !== undefined && process.exitCode === 0) return onExit(0)
        process.stderr.write("interrupted\n")
        onExit(SIGNAL_EXIT_CODES[stoppedBy ?? "SIGINT"])
      }
    })
)

/** The `llmspell` executable: wires the Node runtime around `main`, maps the result to the exit code. */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { layerLive } from "./CliIO.js"
import { main } from "./main.js"

// `llmspell … | head` closes our stdout early: stop quietly, like other command-line tools.
// (A pull stopped this way leaves its .partial file, and the next pull resumes it.)
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0)
    throw error
  })
}

main(process.argv).pipe(
  Effect.provide(Layer.merge(NodeContext.layer, layerLive)),
  (program) =>
    NodeRuntime.runMain(program, {
      disableErrorReporting: true,
      teardown: (exit, onExit) => {
        onExit(Exit.isSuccess(exit) && typeof exit.value === "number" ? exit.value : 130)
      }
    })
)

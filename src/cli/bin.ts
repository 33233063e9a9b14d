/** The `llmspell` executable: wires the Node runtime around `main`, maps the result to the exit code. */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { layerLive } from "./CliIO.js"
import { main } from "./main.js"

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

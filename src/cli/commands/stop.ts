/**
 * `llmspell stop <model>`: unloads a model now (once the requests using it finish). A model that
 * is not loaded is not an error: it is stopped either way.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { LocalLLM } from "../../services/LocalLLM.js"
import { printJson, printOut } from "../output.js"
import { json } from "./shared.js"

const model = Args.text({ name: "model" }).pipe(Args.withDescription("model spec, as `llmspell ps` lists it"))

const StopResult = Schema.Struct({ model: Schema.String, unloaded: Schema.Boolean })

/** `stop`. */
export const stopCommand = Command.make("stop", { model, json }, (o) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    yield* llm.unload(o.model)
    if (o.json) return yield* printJson(StopResult, { model: o.model, unloaded: true })
    yield* printOut(`stopped ${o.model}`)
  })).pipe(Command.withDescription("unload a model from memory now"))

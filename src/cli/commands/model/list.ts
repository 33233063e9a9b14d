/** `llmspell model list`: the models present on every backend; one backend down never hides the others. */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { formatBytes } from "../../../domain/Errors.js"
import { ModelList } from "../../../domain/Types.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { printErr, printJson, printOut, table } from "../../output.js"
import { backend, json } from "../shared.js"

/** `model list`. */
export const listCommand = Command.make("list", { json, backend }, ({ backend, json }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const result = yield* llm.list(backend)
    if (json) return yield* printJson(ModelList, result)
    for (const u of result.unavailable) {
      yield* printErr(`warning: ${u.instance} (${u.backend}): ${u.error.message}`)
    }
    if (result.models.length === 0) return yield* printOut("no models")
    yield* printOut(
      table(
        ["NAME", "BACKEND", "SIZE", "QUANT", "MODIFIED"],
        result.models.map((m) => [
          m.name,
          m.instance === m.backend ? m.backend : `${m.backend} (${m.instance})`,
          formatBytes(m.sizeBytes),
          m.quantization,
          m.modifiedAt?.slice(0, 10)
        ])
      )
    )
  })).pipe(Command.withDescription("list the models present on the configured backends"))

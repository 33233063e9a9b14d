/**
 * `llmspell model list`: the models present on the backends. With `--backend all` one backend down
 * never hides the others (a warning each; exit 4 only when every one is down). When the user named
 * a backend, its failure is the command's failure: the error and its hint, exit 4. GGUF models come
 * from every store on the machine (llmspell's, Ollama's, the HF cache, LM Studio, node-llama-cpp), each
 * once: STORE is where it is used from, `(+N)` the other stores holding the same bytes (`--json`: all).
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { ExitCode, exitCodeFor } from "../../../domain/Failure.js"
import { formatBytes } from "../../../domain/Format.js"
import { ModelList } from "../../../domain/Types.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { requestExitCode } from "../../ExitStatus.js"
import { printErr, printError, printJson, printOut, table } from "../../output.js"
import { backend, json } from "../shared.js"

/** `model list`. */
export const listCommand = Command.make("list", { json, backend }, ({ backend, json }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    // the table shows no capabilities: Ollama's are not asked for it (a show per model)
    const [result, instances] = yield* Effect.all([llm.list(backend, { capabilities: json }), llm.instances(backend)])
    const covered = instances.length
    const allDown = result.unavailable.length > 0 && result.unavailable.length >= covered
    const failure = result.unavailable[0]
    if (allDown && failure !== undefined) {
      // Every backend asked is down: exit 4; a single named backend's failure keeps its own code.
      yield* requestExitCode(
        backend === "all" || result.unavailable.length > 1 ? ExitCode.BackendUnavailable : exitCodeFor(failure.error)
      )
      if (backend !== "all") {
        // The user asked this backend: report its failure as the command's, not as "no models".
        if (json) return yield* printError(failure.error, { json })
        for (const u of result.unavailable) yield* printError(u.error, { json })
        return
      }
    }
    if (json) return yield* printJson(ModelList, result)
    for (const u of result.unavailable) {
      yield* allDown
        ? printError(u.error, { json })
        : printErr(`warning: ${u.instance} (${u.backend}): ${u.error.message}`)
    }
    if (allDown) return
    if (result.models.length === 0) return yield* printOut("no models")
    yield* printOut(
      table(
        ["NAME", "BACKEND", "STORE", "SIZE", "QUANT", "MODIFIED"],
        result.models.map((m) => [
          m.name,
          m.instance === m.backend ? m.backend : `${m.backend} (${m.instance})`,
          // the store it is used from, and how many others hold the same bytes
          m.store === undefined
            ? m.backend === "ollama" ? "ollama" : undefined
            : (m.locations?.length ?? 1) > 1
            ? `${m.store} (+${m.locations!.length - 1})`
            : m.store,
          formatBytes(m.sizeBytes),
          m.quantization,
          m.modifiedAt?.slice(0, 10)
        ])
      )
    )
  })).pipe(Command.withDescription("list the models present on the configured backends"))

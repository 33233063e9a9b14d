/** `llmspell model info <spec>`: what is known about a model. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { formatBytes } from "../../../domain/Format.js"
import { ModelInfo } from "../../../domain/Types.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { keyValues, printJson, printOut } from "../../output.js"
import { json } from "../shared.js"

const spec = Args.text({ name: "spec" }).pipe(Args.withDescription("model spec, e.g. qwen2.5:0.5b or ./x.gguf"))

/** `model info`. */
export const infoCommand = Command.make("info", { spec, json }, ({ json, spec }) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const info = yield* llm.info(spec)
    if (json) return yield* printJson(ModelInfo, info)
    yield* printOut(
      keyValues([
        ["name", info.name],
        ["backend", info.instance === info.backend ? info.backend : `${info.backend} (${info.instance})`],
        ["architecture", info.architecture],
        ["parameters", info.parameterSize ?? (info.parameterCount !== undefined ? info.parameterCount.toLocaleString("en-US") : undefined)],
        ["quantization", info.quantization],
        ["context length", info.contextLength],
        ["embedding size", info.embeddingLength],
        ["layers", info.layers],
        ["heads", info.heads !== undefined ? `${info.heads}${info.headsKv !== undefined ? ` (kv ${info.headsKv})` : ""}` : undefined],
        ["vocabulary", info.vocabularySize],
        // a provider's template is its own business
        ["chat template", info.backend === "cloud" ? undefined : info.chatTemplate ? "yes" : "no"],
        ["capabilities", info.capabilities?.join(", ")],
        // a cloud model: whether the provider's listing was asked (not without a key or a connection)
        ["listed by provider", info.backend === "cloud" && typeof info.details["listed"] === "string" ? info.details["listed"] : undefined],
        ["file size", info.sizeBytes !== undefined ? formatBytes(info.sizeBytes) : undefined],
        ["store", info.store],
        ["path", info.path],
        [
          "also in",
          info.locations !== undefined && info.locations.length > 1
            ? info.locations.slice(1).map((l) => `${l.store} (${l.name})`).join(", ")
            : undefined
        ],
        [
          "memory",
          info.memory !== undefined
            ? `${formatBytes(info.memory.ramBytes)} RAM, ${formatBytes(info.memory.vramBytes)} VRAM at context ${info.memory.contextSize}`
            : undefined
        ]
      ])
    )
  })).pipe(Command.withDescription("show a model's metadata and memory needs"))

/**
 * `llmspell embed -m <spec> [text…]`: embeds each text argument, or each line of stdin when none
 * is given. Prints one JSON object (`Embeddings`: model, dimensions, one vector per input in
 * order, prompt tokens); with `--ndjson`, one line per input as it is embedded (`EmbeddingLine`),
 * so a long input file streams and each line has its own token count.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { UsageError } from "../../domain/Errors.js"
import { EmbeddingLine, Embeddings } from "../../domain/Types.js"
import { LocalLLM } from "../../services/LocalLLM.js"
import { CliIO } from "../CliIO.js"
import { printJson } from "../output.js"
import { json } from "./shared.js"

const model = Options.text("model").pipe(Options.withAlias("m"), Options.withDescription("model spec"))
const texts = Args.text({ name: "text" }).pipe(Args.repeated, Args.withDescription("texts to embed (default: one per stdin line)"))
const ndjson = Options.boolean("ndjson").pipe(Options.withDescription("one JSON line per input instead of one object"))

/** `embed`. */
export const embedCommand = Command.make("embed", { model, texts, ndjson, json }, (o) =>
  Effect.gen(function*() {
    const llm = yield* LocalLLM
    const io = yield* CliIO
    const inputs = o.texts.length > 0
      ? o.texts
      : io.stdinIsTTY
      ? []
      : (yield* io.readStdin).split(/\r?\n/).filter((line) => line.length > 0)
    if (inputs.length === 0) {
      return yield* new UsageError({
        reason: "nothing to embed: pass texts as arguments or pipe them on stdin, one per line",
        suggestion: "e.g. `llmspell embed -m nomic-embed-text@ollama \"first text\" \"second text\"`"
      })
    }
    if (!o.ndjson) return yield* printJson(Embeddings, yield* llm.embed(o.model, inputs))
    // one request per input: the same vectors as a batch, and a token count for each line
    yield* Effect.forEach(inputs, (text, index) =>
      Effect.flatMap(llm.embed(o.model, [text]), (result) =>
        printJson(EmbeddingLine, {
          index,
          model: result.model,
          dimensions: result.dimensions,
          vector: result.vectors[0] ?? [],
          promptTokens: result.promptTokens
        })), { discard: true })
  })
).pipe(Command.withDescription("embed texts with a model: vectors as JSON (or NDJSON with --ndjson)"))

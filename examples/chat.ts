/**
 * A small Effect program on llmspell: pulls a model if it is missing, streams a chat answer through
 * `@effect/ai`, and prints the usage. Run it with `node --import tsx examples/chat.ts [spec] [prompt]`.
 * (Typechecked by `npm test`.)
 */
import * as LanguageModel from "@effect/ai/LanguageModel"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { languageModel, LlmspellLive, LocalLLM } from "llmspell"

const spec = process.argv[2] ?? "qwen2.5:0.5b"
const prompt = process.argv[3] ?? "Say hello in five words."

const ensurePulled = Effect.gen(function*() {
  const llm = yield* LocalLLM
  const present = yield* llm.info(spec).pipe(Effect.as(true), Effect.catchTag("ModelNotFound", () => Effect.succeed(false)))
  if (present) return
  yield* llm.pull(spec).pipe(
    Stream.runForEach((p) => Console.error(`${p.phase} ${p.completedBytes}/${p.totalBytes ?? "?"} bytes`))
  )
})

const chat = LanguageModel.streamText({ prompt }).pipe(
  Stream.runForEach((part) => {
    if (part.type === "text-delta") return Effect.sync(() => process.stdout.write(part.delta))
    if (part.type === "finish") {
      return Console.error(`\n${part.usage.inputTokens} prompt + ${part.usage.outputTokens} completion tokens (${part.reason})`)
    }
    return Effect.void
  })
)

const program = ensurePulled.pipe(
  Effect.zipRight(Effect.provide(chat, languageModel(spec).pipe(Layer.provide(LlmspellLive)))),
  Effect.provide(LlmspellLive)
)

NodeRuntime.runMain(program)

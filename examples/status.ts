/**
 * The README's library example: status of every backend, then a streamed answer.
 * Run it with `node --import tsx examples/status.ts`. (Typechecked by `npm test`.)
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { LlmspellLive, LocalLLM } from "llmspell"

const program = Effect.gen(function*() {
  const llm = yield* LocalLLM
  const status = yield* llm.status()
  for (const s of status) console.log(s.instance, s.backend, s.endpoint, s.available)

  yield* llm.generate("qwen2.5:0.5b@ollama", { messages: [{ role: "user", content: "Say hello" }] }).pipe(
    Stream.runForEach((event) =>
      Effect.sync(() => event._tag === "TextDelta" ? process.stdout.write(event.text) : console.log())
    )
  )
}).pipe(
  Effect.catchTag("ModelNotFound", (e) => Effect.sync(() => console.error(e.message, e.hint)))
)

Effect.runPromise(Effect.provide(program, LlmspellLive))

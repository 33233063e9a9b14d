/** `llmspell run --model <spec> [prompt]`: streams a completion to stdout. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { UsageError } from "../../domain/Errors.js"
import { Completion, promptRequest } from "../../domain/Types.js"
import { LocalLLM } from "../../services/LocalLLM.js"
import { CliIO } from "../CliIO.js"
import { GlobalOptions } from "../GlobalOptions.js"
import { printErr, printJson, sanitizeForTerminal } from "../output.js"
import { loadingSpinner } from "../progress.js"
import { json } from "./shared.js"

const model = Options.text("model").pipe(Options.withAlias("m"), Options.withDescription("model spec"))
const prompt = Args.text({ name: "prompt" }).pipe(Args.optional, Args.withDescription("the prompt (default: read stdin)"))
const system = Options.text("system").pipe(Options.optional, Options.withDescription("system prompt"))
const maxTokens = Options.integer("max-tokens").pipe(Options.optional, Options.withDescription("stop after this many tokens"))
const temperature = Options.float("temperature").pipe(Options.optional, Options.withDescription("sampling temperature"))
const seed = Options.integer("seed").pipe(Options.optional, Options.withDescription("sampling seed"))

/** `run`. */
export const runCommand = Command.make(
  "run",
  { model, prompt, system, maxTokens, temperature, seed, json },
  (o) =>
    Effect.scoped(Effect.gen(function*() {
      const llm = yield* LocalLLM
      const io = yield* CliIO
      const global = yield* GlobalOptions
      const text = Option.isSome(o.prompt) ? o.prompt.value : io.stdinIsTTY ? "" : yield* io.readStdin
      if (text.trim().length === 0) {
        return yield* new UsageError({ reason: "no prompt: pass it as an argument or pipe it on stdin" })
      }
      let completion: Completion | undefined
      let wroteNewline = true
      // A terminal shows the text as characters, never as commands: a model must not drive it.
      const show = io.stdoutIsTTY ? sanitizeForTerminal : (text: string) => text
      // While the model loads (seconds for a big GGUF), a spinner on a terminal's stderr says so.
      const spinner = !o.json && io.stderrIsTTY && !io.dumbTerminal
        ? yield* Effect.forkScoped(
          llm.info(o.model).pipe(
            Effect.option,
            Effect.flatMap((info) => loadingSpinner(o.model, Option.getOrUndefined(info)?.sizeBytes))
          )
        )
        : undefined
      const stopSpinner = spinner !== undefined ? Fiber.interrupt(spinner) : Effect.void
      yield* llm.generate(
        o.model,
        promptRequest(text, {
          system: Option.getOrUndefined(o.system),
          maxTokens: Option.getOrUndefined(o.maxTokens),
          temperature: Option.getOrUndefined(o.temperature),
          seed: Option.getOrUndefined(o.seed)
        })
      ).pipe(
        Stream.tap(() => stopSpinner),
        Stream.runForEach((event) => {
          if (event._tag === "Finish") {
            completion = event.completion
            return Effect.void
          }
          if (event._tag !== "TextDelta") return Effect.void
          const text = show(event.text)
          if (o.json || text.length === 0) return Effect.void
          wroteNewline = text.endsWith("\n")
          return io.stdout(text)
        }),
        Effect.ensuring(stopSpinner)
      )
      if (completion === undefined) return
      if (o.json) return yield* printJson(Completion, completion)
      if (!wroteNewline) yield* io.stdout("\n")
      if (global.verbose) {
        const t = completion.timings
        yield* printErr(
          `load ${t.loadMs.toFixed(0)} ms, first token ${t.timeToFirstTokenMs?.toFixed(0) ?? "?"} ms, ` +
            `${t.tokensPerSecond?.toFixed(1) ?? "?"} tokens/s, ${completion.usage.promptTokens} prompt + ` +
            `${completion.usage.completionTokens} completion tokens (${completion.finishReason})`
        )
      }
    }))
).pipe(
  Command.withDescription("run a prompt through a model and stream the answer")
)

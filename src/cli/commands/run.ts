/**
 * `llmspell run --model <spec> [prompt]`: streams a completion to stdout. `--schema FILE|JSON`
 * asks for JSON following a JSON Schema and prints the checked object (not streamed);
 * `--format json` asks for free JSON; `--think`/`--no-think` turn a reasoning model's thinking on or
 * off (it goes to stderr; `--json` includes it and any tool calls in the completion). Without a
 * prompt on a terminal it opens `llmspell chat`'s session (`chat.ts`), as `ollama run` does.
 */
import { readFile } from "node:fs/promises"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { UsageError } from "../../domain/Errors.js"
import { incompleteAnswer, structuredAnswer, supportedSchema } from "../../domain/JsonSchemaCheck.js"
import { type ChatMessage, Completion, type ImageSource, promptRequest, type ResponseFormat } from "../../domain/Types.js"
import { readImageFiles } from "../imageFiles.js"
import { LocalLLM } from "../../services/LocalLLM.js"
import { CliIO } from "../CliIO.js"
import { GlobalOptions } from "../GlobalOptions.js"
import { printErr, printJson, sanitizeForTerminal } from "../output.js"
import { loadingSpinner } from "../progress.js"
import { chatSession } from "./chat.js"
import { json } from "./shared.js"

const model = Options.text("model").pipe(Options.withAlias("m"), Options.withDescription("model spec"))
const prompt = Args.text({ name: "prompt" }).pipe(
  Args.optional,
  Args.withDescription("the prompt (default: read stdin; none on a terminal: a chat session, as `llmspell chat`)")
)
const system = Options.text("system").pipe(Options.optional, Options.withDescription("system prompt"))
const maxTokens = Options.integer("max-tokens").pipe(Options.optional, Options.withDescription("stop after this many tokens"))
const temperature = Options.float("temperature").pipe(Options.optional, Options.withDescription("sampling temperature"))
const seed = Options.integer("seed").pipe(Options.optional, Options.withDescription("sampling seed"))
const schema = Options.text("schema").pipe(
  Options.optional,
  Options.withDescription("answer in JSON following this JSON Schema (a file, or the schema itself); prints the checked object")
)
const format = Options.choice("format", ["text", "json"]).pipe(
  Options.optional,
  Options.withDescription("json: answer with a JSON value (any shape); text (default): free text")
)
const image = Options.file("image", { exists: "either" }).pipe(
  Options.repeated,
  Options.withDescription("attach an image (PNG, JPEG, GIF, WebP; repeatable) for an Ollama vision model or a cloud spec; an http(s) URL is fetched by a server run with --allow-image-urls (--host), never by this process")
)
const think = Options.boolean("think").pipe(Options.withDescription("ask a reasoning model to think first (shown on stderr)"))
const noThink = Options.boolean("no-think").pipe(Options.withDescription("ask a reasoning model not to think"))

/** `--schema` as JSON: inline when it starts with `{`, else the file it names. */
const readSchema = (value: string) =>
  Effect.gen(function*() {
    const inline = value.trimStart().startsWith("{")
    const text = inline
      ? value
      : yield* Effect.tryPromise({
        try: () => readFile(value, "utf8"),
        catch: (error) =>
          new UsageError({
            reason: `--schema: cannot read ${value} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
            suggestion: "pass a JSON Schema file, or the schema itself as JSON (starting with `{`)"
          })
      })
    const parsed = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (error) =>
        new UsageError({
          reason: `--schema: ${inline ? "the schema" : value} is not JSON (${(error as Error).message})`,
          suggestion: "pass a JSON Schema file, or the schema itself as JSON (starting with `{`)"
        })
    })
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return yield* new UsageError({ reason: "--schema: a JSON Schema is an object", suggestion: "e.g. --schema '{\"type\":\"object\"}'" })
    }
    return yield* Either.match(supportedSchema(parsed as Record<string, unknown>), { onLeft: Effect.fail, onRight: Effect.succeed })
  })

/** The images on the last user message (the prompt). */
const withImages = (messages: ReadonlyArray<ChatMessage>, images: ReadonlyArray<ImageSource>): Array<ChatMessage> =>
  messages.map((m, i) => (i === messages.length - 1 && m.role === "user" ? { ...m, images } : m))

/** `run`. */
export const runCommand = Command.make(
  "run",
  { model, prompt, system, maxTokens, temperature, seed, schema, format, image, think, noThink, json },
  (o) =>
    Effect.scoped(Effect.gen(function*() {
      const llm = yield* LocalLLM
      const io = yield* CliIO
      const global = yield* GlobalOptions
      if (o.think && o.noThink) {
        return yield* new UsageError({ reason: "--think and --no-think contradict each other", suggestion: "pass one of them" })
      }
      // No prompt on a terminal: a chat session, as `ollama run` opens one (piped stdin is the prompt).
      if (Option.isNone(o.prompt) && io.stdinIsTTY) {
        if (o.image.length > 0) {
          return yield* new UsageError({
            reason: "--image needs a prompt: in a chat session, attach images with /image FILE",
            suggestion: "pass the prompt as an argument or pipe it on stdin"
          })
        }
        if (Option.isSome(o.schema) || Option.isSome(o.format)) {
          return yield* new UsageError({
            reason: `${Option.isSome(o.schema) ? "--schema" : "--format"} needs a prompt: a chat session answers in free text`,
            suggestion: "pass the prompt as an argument or pipe it on stdin"
          })
        }
        return yield* chatSession({
          model: o.model,
          system: Option.getOrUndefined(o.system),
          maxTokens: Option.getOrUndefined(o.maxTokens),
          temperature: Option.getOrUndefined(o.temperature),
          seed: Option.getOrUndefined(o.seed),
          reasoning: o.think ? true : o.noThink ? false : undefined,
          json: o.json
        })
      }
      const text = Option.isSome(o.prompt) ? o.prompt.value : yield* io.readStdin
      const images = yield* readImageFiles(o.image, "--image")
      if (text.trim().length === 0) {
        return yield* new UsageError({ reason: "no prompt: pass it as an argument or pipe it on stdin" })
      }
      if (Option.isSome(o.schema) && Option.isSome(o.format)) {
        return yield* new UsageError({ reason: "--schema and --format both say how to answer", suggestion: "pass one of them" })
      }
      const responseFormat: ResponseFormat | undefined = Option.isSome(o.schema)
        ? { schema: yield* readSchema(o.schema.value) }
        : Option.getOrUndefined(o.format)
      // A structured answer is printed once it is complete and checked, not streamed.
      const structured = responseFormat !== undefined && responseFormat !== "text"
      let completion: Completion | undefined
      let wroteNewline = true
      let thinking = false
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
      const request = promptRequest(text, {
        system: Option.getOrUndefined(o.system),
        maxTokens: Option.getOrUndefined(o.maxTokens),
        temperature: Option.getOrUndefined(o.temperature),
        seed: Option.getOrUndefined(o.seed),
        responseFormat,
        reasoning: o.think ? true : o.noThink ? false : undefined
      })
      yield* llm.generate(
        o.model,
        images.length === 0 ? request : { ...request, messages: withImages(request.messages, images) }
      ).pipe(
        Stream.tap(() => stopSpinner),
        Stream.runForEach((event) => {
          if (event._tag === "Finish") {
            completion = event.completion
            return Effect.void
          }
          if (event._tag === "ReasoningDelta") {
            if (o.json || event.text.length === 0) return Effect.void
            thinking = !event.text.endsWith("\n")
            return io.stderr(io.stderrIsTTY ? sanitizeForTerminal(event.text) : event.text)
          }
          if (event._tag !== "TextDelta") return Effect.void
          const text = show(event.text)
          if (o.json || structured || text.length === 0) return Effect.void
          // the thinking (stderr) ends on its own line before the answer starts
          const endThinking = thinking ? io.stderr("\n") : Effect.void
          thinking = false
          wroteNewline = text.endsWith("\n")
          return Effect.zipRight(endThinking, io.stdout(text))
        }),
        Effect.ensuring(stopSpinner)
      )
      if (thinking) yield* io.stderr("\n")
      if (completion === undefined) return
      if (structured) {
        // an answer the token limit cut is that, not a broken schema (the same error as LocalLLM.run)
        const incomplete = incompleteAnswer(completion, Option.getOrUndefined(o.maxTokens))
        if (incomplete !== undefined) return yield* incomplete
        const value = yield* Either.match(structuredAnswer(completion.model, completion.text, responseFormat), {
          onLeft: Effect.fail,
          onRight: Effect.succeed
        })
        if (o.json) return yield* printJson(Completion, completion)
        return yield* io.stdout(`${JSON.stringify(value, null, 2)}\n`)
      }
      if (o.json) return yield* printJson(Completion, completion)
      if (!wroteNewline) yield* io.stdout("\n")
      if (global.verbose) {
        const t = completion.timings
        yield* printErr(
          `load ${t.loadMs.toFixed(0)} ms, first token ${t.timeToFirstTokenMs?.toFixed(0) ?? "?"} ms, ` +
            `${t.tokensPerSecond?.toFixed(1) ?? "?"} tokens/s, ${completion.usage.promptTokens} prompt` +
            `${completion.usage.cachedPromptTokens !== undefined ? ` (${completion.usage.cachedPromptTokens} cached)` : ""} + ` +
            `${completion.usage.completionTokens} completion tokens (${completion.finishReason})`
        )
      }
    }))
).pipe(
  Command.withDescription("run a prompt through a model and stream the answer")
)

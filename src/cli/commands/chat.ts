/**
 * `llmspell chat -m <spec>`: a conversation with a model. On a terminal (stdin and stdout both
 * TTYs, no `--json`) an interactive session: streamed answers, the history sent again with every
 * turn (so a model's prompt cache serves it, embedded or connected), slash commands
 * (`chatInput.ts`), `"""` blocks, Ctrl-C stops an answer and keeps the session, Ctrl-D or `/bye`
 * ends it. Otherwise line mode: one message per input line, one answer per message (`--json`: one
 * Completion per line, as `run --json` prints it). The conversation is a Transcript
 * (`domain/Transcript.ts`): `/save FILE` writes it, `--load FILE` goes on with one, the web page of
 * `llmspell serve` reads and writes the same files. Tool-less: a transcript's tools and response
 * format are kept in the file but not sent. `run -m SPEC` without a prompt on a terminal opens
 * this session too (`chatSession`).
 */
import { IMAGE_LIMITS } from "../../domain/Images.js"
import { readImageFile } from "../imageFiles.js"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import { UsageError } from "../../domain/Errors.js"
import {
  type AnswerFigures,
  answerMessage,
  decodeTranscript,
  toRequest,
  Transcript,
  TRANSCRIPT_VERSION,
  type ImageRef,
  type TranscriptMessage,
  type TranscriptParameters
} from "../../domain/Transcript.js"
import { Completion, type GenerateEvent, type GenerateRequest, REQUEST_LIMITS } from "../../domain/Types.js"
import { ConfigEnvironment } from "../../layers/ConfigLive.js"
import { LocalLLM } from "../../services/LocalLLM.js"
import { CHAT_HELP, type ChatInput, feedLine, parseChatInput, parseSetting, SETTINGS, unsetField } from "../chatInput.js"
import { type LineSource, pipedLines, terminalLines } from "../chatTerminal.js"
import { CliIO } from "../CliIO.js"
import { GlobalOptions } from "../GlobalOptions.js"
import { describeFailure, printJson, sanitizeForTerminal } from "../output.js"
import { loadingSpinner } from "../progress.js"
import { json } from "./shared.js"

/** What a session starts from: the command line's choices, each overriding a loaded transcript's. */
export interface ChatSessionOptions {
  readonly model: string | undefined
  readonly load?: string | undefined
  readonly system?: string | undefined
  readonly temperature?: number | undefined
  readonly seed?: number | undefined
  readonly maxTokens?: number | undefined
  readonly reasoning?: boolean | undefined
  readonly json: boolean
}

/** The conversation as it stands: a Transcript being written. */
interface Session {
  model: string
  readonly title: string | undefined
  readonly createdAt: string
  system: string | undefined
  parameters: Record<string, unknown>
  messages: Array<TranscriptMessage>
}

const transcriptOf = (s: Session): Transcript => {
  const parameters = Object.fromEntries(Object.entries(s.parameters).filter(([, v]) => v !== undefined))
  return {
    version: TRANSCRIPT_VERSION,
    model: s.model,
    ...(s.title !== undefined ? { title: s.title } : {}),
    createdAt: s.createdAt,
    ...(s.system !== undefined ? { system: s.system } : {}),
    ...(Object.keys(parameters).length > 0 ? { parameters: parameters as TranscriptParameters } : {}),
    messages: s.messages
  }
}

/** The next turn's request: the whole conversation, the settings, no tools and free text. */
const requestOf = (s: Session): GenerateRequest => {
  const { parallelToolCalls: _p, responseFormat: _r, toolChoice: _c, tools: _t, ...request } = toRequest(transcriptOf(s))
  return request
}

/** The `--verbose` line of one answer. */
export const figuresLine = (figures: AnswerFigures, finishReason: string): string => {
  const parts = [
    `first token ${figures.timeToFirstTokenMs !== undefined ? `${figures.timeToFirstTokenMs.toFixed(0)} ms` : "?"}`,
    `${figures.tokensPerSecond !== undefined ? figures.tokensPerSecond.toFixed(1) : "?"} tokens/s`,
    `${figures.promptTokens ?? "?"} prompt tokens${
      figures.cachedPromptTokens !== undefined ? ` (${figures.cachedPromptTokens} cached)` : ""
    } + ${figures.completionTokens ?? "?"} answer tokens`,
    `${figures.totalMs !== undefined ? `${(figures.totalMs / 1000).toFixed(2)} s` : "?"} (${finishReason})`
  ]
  return parts.join(", ")
}

const DIM = "\x1b[2m"
const UNDIM = "\x1b[22m"

/** A loaded transcript, or a usage error saying why the file is not one. */
const readTranscript = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const suggestion = "give a file written by chat's /save or exported by the web page of `llmspell serve`"
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((e) => new UsageError({ reason: `--load: cannot read ${file} (${e.message})`, suggestion }))
    )
    const parsed = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new UsageError({ reason: `--load: ${file} is not JSON (${(e as Error).message})`, suggestion })
    })
    return yield* Either.match(decodeTranscript(parsed), {
      onLeft: (reason) => Effect.fail(new UsageError({ reason: `--load: ${file}: ${reason}`, suggestion })),
      onRight: Effect.succeed
    })
  })

/** The interactive (or line-mode) session; ends when the input does, or at `/bye`. */
export const chatSession = (o: ChatSessionOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const llm = yield* LocalLLM
    const io = yield* CliIO
    const global = yield* GlobalOptions
    const where = yield* ConfigEnvironment
    const fs = yield* FileSystem.FileSystem
    const terminal = io.stdinIsTTY && io.stdoutIsTTY && !o.json
    const color = terminal && !where.env["NO_COLOR"] && where.env["TERM"] !== "dumb"
    const dim = (text: string) => (color && text.length > 0 ? `${DIM}${text}${UNDIM}` : text)

    for (const [field, value] of [["temperature", o.temperature], ["seed", o.seed], ["maxTokens", o.maxTokens]] as const) {
      const limit = REQUEST_LIMITS[field]
      if (value !== undefined && !limit.check(value)) {
        return yield* new UsageError({ reason: `${limit.option} must be ${limit.allowed}; got ${value}` })
      }
    }
    const loaded = o.load !== undefined ? yield* readTranscript(path.resolve(where.cwd, o.load)) : undefined
    const model = o.model ?? loaded?.model
    if (model === undefined) {
      return yield* new UsageError({ reason: "no model: pass -m SPEC", suggestion: "e.g. `llmspell chat -m qwen2.5:0.5b@ollama`" })
    }
    const overrides = { temperature: o.temperature, seed: o.seed, maxTokens: o.maxTokens, reasoning: o.reasoning }
    const session: Session = {
      model,
      title: loaded?.title,
      createdAt: loaded?.createdAt ?? new Date(yield* Clock.currentTimeMillis).toISOString(),
      system: o.system ?? loaded?.system,
      parameters: {
        ...loaded?.parameters,
        ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined))
      },
      // answers of the loaded transcript's model keep its name when -m switches to another
      messages: (loaded?.messages ?? []).map((m) =>
        m.role === "assistant" && m.model === undefined && loaded !== undefined && loaded.model !== model
          ? { ...m, model: loaded.model }
          : m
      )
    }

    // Notes about the session: on the terminal with the conversation, else on stderr (stdout holds only answers).
    const notice = (text: string) => (terminal ? io.stdout(`${dim(text)}\n`) : io.stderr(`${text}\n`))
    const show = (text: string) => (io.stdoutIsTTY ? sanitizeForTerminal(text) : text)
    const showErr = (text: string) => (io.stderrIsTTY ? sanitizeForTerminal(text) : text)

    const source: LineSource = terminal ? yield* terminalLines : yield* pipedLines

    if (terminal) {
      // Load now, behind the spinner, so a missing model is said before anything is typed and the
      // first answer does not wait for the load.
      const spinner = io.stderrIsTTY && !io.dumbTerminal
        ? yield* Effect.forkScoped(
          llm.info(model).pipe(Effect.option, Effect.flatMap((info) => loadingSpinner(model, Option.getOrUndefined(info)?.sizeBytes)))
        )
        : undefined
      yield* llm.load(model).pipe(Effect.ensuring(spinner !== undefined ? Fiber.interrupt(spinner) : Effect.void))
      for (const m of session.messages) {
        if (m.role === "user") yield* io.stdout(`>>> ${show(m.content)}\n`)
        else if (m.role === "assistant") yield* io.stdout(`${show(m.content)}\n\n`)
      }
      yield* notice(`Chatting with ${model}. /help for commands, Ctrl-D or /bye to end.`)
    }

    /** Images attached with /image, sent with the next message. */
    let pending: Array<ImageRef> = []

    /** One turn: the message sent with the history, the answer streamed and recorded. */
    const turn = (text: string) =>
      Effect.gen(function*() {
        const images = pending
        pending = []
        session.messages.push({ role: "user", content: text, ...(images.length > 0 ? { images } : {}) })
        const request = requestOf(session)
        const startedAt = yield* Clock.currentTimeMillis
        const state = {
          text: "",
          reasoning: "",
          firstAt: undefined as number | undefined,
          completion: undefined as Completion | undefined,
          thinking: false,
          endsWithNewline: true,
          stdoutEndsWithNewline: true
        }
        const out = (text: string) => {
          if (text.length === 0) return Effect.void
          state.stdoutEndsWithNewline = text.endsWith("\n")
          return io.stdout(text)
        }
        const onEvent = (event: GenerateEvent) =>
          Effect.gen(function*() {
            if (event._tag === "Finish") {
              state.completion = event.completion
              return
            }
            if (event._tag !== "TextDelta" && event._tag !== "ReasoningDelta") return
            if (event.text.length === 0) return
            if (state.firstAt === undefined) state.firstAt = yield* Clock.currentTimeMillis
            if (event._tag === "ReasoningDelta") {
              state.reasoning += event.text
              if (o.json) return
              if (terminal) {
                // reasoning dimmed and apart from the answer, as Ollama's CLI shows it
                if (!state.thinking) yield* out(dim("Thinking...\n"))
                state.thinking = true
                state.endsWithNewline = event.text.endsWith("\n")
                return yield* out(dim(show(event.text)))
              }
              state.thinking = !event.text.endsWith("\n")
              return yield* io.stderr(showErr(event.text))
            }
            state.text += event.text
            if (o.json) return
            if (terminal) {
              if (state.thinking) yield* out(dim(`${state.endsWithNewline ? "" : "\n"}...done thinking.\n\n`))
              state.thinking = false
              return yield* out(show(event.text))
            }
            if (state.thinking) yield* io.stderr("\n")
            state.thinking = false
            return yield* out(show(event.text))
          })
        const answer = Effect.exit(llm.generate(session.model, request).pipe(Stream.runForEach(onEvent)))
        const outcome = yield* Effect.raceFirst(
          Effect.map(answer, (exit) => ({ _tag: "Ran" as const, exit })),
          Effect.as(source.ctrlC, { _tag: "Stopped" as const })
        )
        const endedAt = yield* Clock.currentTimeMillis
        // the answer ends on its own line; on a terminal a blank line sets it apart from the next prompt
        if (state.thinking) yield* (terminal ? out(dim("\n")) : io.stderr("\n"))
        if (!o.json && (!state.stdoutEndsWithNewline || (!terminal && state.text.length === 0))) yield* out("\n")
        if (terminal) yield* io.stdout("\n")
        const figures: AnswerFigures = {
          ...(state.firstAt !== undefined ? { timeToFirstTokenMs: state.firstAt - startedAt } : {}),
          totalMs: endedAt - startedAt
        }
        if (outcome._tag === "Stopped" || (Exit.isSuccess(outcome.exit) && state.completion === undefined)) {
          if (state.text.length === 0 && state.reasoning.length === 0) {
            // nothing was said: the message is not part of the conversation (the up arrow recalls it)
            session.messages.pop()
          } else {
            session.messages.push({
              role: "assistant",
              content: state.text,
              ...(state.reasoning.length > 0 ? { reasoning: state.reasoning } : {}),
              finishReason: outcome._tag === "Stopped" ? "abort" : "unknown",
              figures
            })
          }
          if (outcome._tag === "Stopped") yield* notice("(stopped)")
          return
        }
        if (Exit.isFailure(outcome.exit)) {
          session.messages.pop()
          // the images wait for the next message again, as the message itself is given back
          pending = [...images, ...pending]
          if (Cause.isInterruptedOnly(outcome.exit.cause) || !terminal) return yield* Effect.failCause(outcome.exit.cause)
          // On a terminal the session goes on: the error is said, the conversation kept.
          const failure = describeFailure(outcome.exit.cause, { json: false, verbose: global.verbose })
          if (failure.stderr) yield* io.stderr(failure.stderr)
          return
        }
        const completion = state.completion!
        const cached = completion.usage.cachedPromptTokens
        const message = answerMessage(completion, { ...figures, ...(cached !== undefined ? { cachedPromptTokens: cached } : {}) })
        session.messages.push(message)
        if (o.json) yield* printJson(Completion, completion)
        if (global.verbose) {
          const line = figuresLine(message.figures ?? {}, completion.finishReason)
          yield* io.stderr(`${io.stderrIsTTY && color ? `${DIM}${line}${UNDIM}` : line}\n`)
        }
      })

    const save = (file: string) => {
      const target = path.resolve(where.cwd, file.startsWith("~/") ? path.join(where.home, file.slice(2)) : file)
      const temporary = `${target}.${process.pid}.tmp`
      return Effect.gen(function*() {
        const encoded = yield* Schema.encode(Transcript)(transcriptOf(session))
        // written beside and renamed: a file already there is replaced whole or not at all
        yield* fs.writeFileString(temporary, `${JSON.stringify(encoded, null, 2)}\n`)
        yield* fs.rename(temporary, target)
        yield* notice(`Saved ${session.messages.length} messages to ${target}.`)
      }).pipe(
        Effect.catchAll((e) =>
          Effect.zipRight(
            fs.remove(temporary).pipe(Effect.ignore),
            notice(`Could not save to ${target}: ${e.message}. The conversation is kept; try another file.`)
          )
        )
      )
    }

    const settingsText = () => {
      const entries = Object.entries(SETTINGS).flatMap(([name, field]) =>
        session.parameters[field] !== undefined ? [`${name} ${String(session.parameters[field])}`] : []
      )
      return entries.length > 0 ? `Settings: ${entries.join(", ")}.` : "No settings: the model's defaults."
    }

    /** Acts on one input; false ends the session. */
    const handle = (input: ChatInput) =>
      Effect.gen(function*() {
        switch (input._tag) {
          case "Empty":
            return true
          case "Message":
            yield* turn(input.text)
            return true
          case "Bye":
            return false
          case "Clear":
            session.messages = []
            yield* notice("Cleared the conversation.")
            return true
          case "System":
            if (input.text === undefined) {
              yield* notice(session.system !== undefined ? `System prompt: ${session.system}` : "No system prompt.")
            } else {
              session.system = input.text
              yield* notice("System prompt set.")
            }
            return true
          case "Set": {
            if (input.name === undefined) {
              yield* notice(settingsText())
              return true
            }
            if (input.value === undefined || input.value.length === 0) {
              yield* notice(`Usage: /set ${input.name} VALUE`)
              return true
            }
            const setting = parseSetting(input.name, input.value)
            if (setting._tag === "Invalid") {
              yield* notice(setting.message)
              return true
            }
            session.parameters = { ...session.parameters, [setting.field]: setting.value }
            yield* notice(`Set ${input.name} to ${String(setting.value)}.`)
            return true
          }
          case "Unset": {
            const field = input.name !== undefined ? unsetField(input.name) : undefined
            if (field === undefined) {
              yield* notice(`Usage: /unset system|${Object.keys(SETTINGS).join("|")}`)
            } else if (field === "system") {
              session.system = undefined
              yield* notice("No system prompt.")
            } else {
              const { [field]: _gone, ...rest } = session.parameters
              session.parameters = rest
              yield* notice(`Unset ${input.name}: the model's default.`)
            }
            return true
          }
          case "Save":
            if (input.file === undefined) yield* notice("Usage: /save FILE")
            else yield* save(input.file)
            return true
          case "Image": {
            if (input.file === undefined) {
              yield* notice(pending.length === 0 ? "Usage: /image FILE" : `${pending.length} image(s) wait for your next message.`)
              return true
            }
            if (pending.length >= IMAGE_LIMITS.count) {
              yield* notice(`At most ${IMAGE_LIMITS.count} images with one message.`)
              return true
            }
            const file = input.file.replace(/^(["'])(.*)\1$/, "$2")
            const resolved = path.resolve(where.cwd, file.startsWith("~/") ? path.join(where.home, file.slice(2)) : file)
            const read = yield* Effect.either(readImageFile(resolved, "/image"))
            if (read._tag === "Left") {
              yield* notice(read.left.message)
            } else {
              pending.push({ ...read.right, name: path.basename(resolved) })
              yield* notice(`Attached ${path.basename(resolved)} (${read.right.mediaType}); it goes with your next message.`)
            }
            return true
          }
          case "Help":
            yield* notice(CHAT_HELP)
            return true
          case "Unknown":
            yield* notice(`Unknown command ${input.command}: /help lists them.`)
            return true
        }
      })

    let block: ReadonlyArray<string> | undefined
    while (true) {
      const read = yield* source.read(block === undefined ? ">>> " : "... ")
      if (read._tag === "Cancel") {
        if (block === undefined && !read.hadText) yield* notice("Use Ctrl-D or /bye to end the session.")
        block = undefined
        continue
      }
      // the input ended inside a """ block: what was written is still sent
      const fed = read._tag === "End"
        ? (block !== undefined ? { _tag: "Complete" as const, input: block.join("\n") } : undefined)
        : feedLine(block, read.text)
      if (fed === undefined) break
      if (fed._tag === "Open") {
        block = fed.lines
        continue
      }
      block = undefined
      const goOn = yield* handle(parseChatInput(fed.input, { unknownCommandIsMessage: !terminal }))
      if (!goOn || read._tag === "End") break
    }
  }))

const model = Options.text("model").pipe(Options.withAlias("m"), Options.optional, Options.withDescription("model spec (default: the loaded transcript's)"))
const load = Options.text("load").pipe(Options.optional, Options.withDescription("go on with a transcript saved by /save (or exported by the web page)"))
const system = Options.text("system").pipe(Options.optional, Options.withDescription("system prompt"))
const maxTokens = Options.integer("max-tokens").pipe(Options.optional, Options.withDescription("stop each answer after this many tokens"))
const temperature = Options.float("temperature").pipe(Options.optional, Options.withDescription("sampling temperature"))
const seed = Options.integer("seed").pipe(Options.optional, Options.withDescription("sampling seed"))
const think = Options.boolean("think").pipe(Options.withDescription("ask a reasoning model to think first (shown dimmed)"))
const noThink = Options.boolean("no-think").pipe(Options.withDescription("ask a reasoning model not to think"))

/** `chat`. */
export const chatCommand = Command.make(
  "chat",
  { model, load, system, maxTokens, temperature, seed, think, noThink, json },
  (o) =>
    Effect.gen(function*() {
      if (o.think && o.noThink) {
        return yield* new UsageError({ reason: "--think and --no-think contradict each other", suggestion: "pass one of them" })
      }
      yield* chatSession({
        model: Option.getOrUndefined(o.model),
        load: Option.getOrUndefined(o.load),
        system: Option.getOrUndefined(o.system),
        maxTokens: Option.getOrUndefined(o.maxTokens),
        temperature: Option.getOrUndefined(o.temperature),
        seed: Option.getOrUndefined(o.seed),
        reasoning: o.think ? true : o.noThink ? false : undefined,
        json: o.json
      })
    })
).pipe(
  Command.withDescription(
    "chat with a model: an interactive session on a terminal (/help inside); piped, one answer per input line"
  )
)

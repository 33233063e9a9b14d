/**
 * The GGUF worker process: runs the in-process node-llama-cpp loader (`llama.ts`) for one model
 * and answers the host over the IPC channel (`workerProtocol.ts`). Everything llama.cpp and
 * node-llama-cpp do — load, Jinja chat template, tokenize, generate — happens here, so an assert
 * in llama.cpp, a runaway template or a heap exhaustion ends this process, not the host.
 * llama.cpp's log lines go to stderr, which the host keeps to explain a crash.
 * Started by `workerProcess.ts`; bundled to `dist/gguf-worker.js` for the CLI.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { BackendError, ContextOverflow, DeviceUnavailable } from "../../domain/Errors.js"
import { appendFileSync } from "node:fs"
import {
  decodeToWorker,
  encodeFromWorker,
  type FromWorker,
  TEST_ABORT_ENV,
  TEST_TRACE_ENV,
  type ToWorker
} from "./workerProtocol.js"
import { type InProcessModel, makeInProcessLoader } from "./llama.js"

const send = (message: FromWorker) => {
  if (process.connected) process.send!(encodeFromWorker(message))
}

// The host decides when this process stops: Ctrl-C in a terminal reaches the whole process group,
// and a worker dying of SIGINT first would turn the user's interruption into a "crash".
process.on("SIGINT", () => {})
// The host is gone (even killed): nothing left to serve.
process.on("disconnect", () => process.exit(0))

// Test-only hooks, read from this process's environment (see workerProtocol.ts).
const testHooks = (process.env[TEST_ABORT_ENV] ?? "").split(",").filter((h) => h.length > 0).map((h) => {
  const [when = "", match = ""] = h.split(":")
  return { when, match }
})
const testHook = (phase: "load" | "generate", path: string) => {
  for (const { match, when } of testHooks) {
    if (!path.includes(match)) continue
    if (when === phase) {
      process.stderr.write(`GGML_ASSERT(llmspell test hook: abort during ${phase}) failed\n`)
      process.abort()
    }
    if (when === `stall-${phase}`) for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000)
  }
}
const testTrace = (event: string) => {
  const file = process.env[TEST_TRACE_ENV]
  if (file !== undefined) appendFileSync(file, `${process.pid} ${event}\n`)
}

const loader = makeInProcessLoader({ onLog: (line) => process.stderr.write(`${line}\n`) })
const modelScope = Effect.runSync(Scope.make())
let model: InProcessModel | undefined
let modelPath = ""
const generations = new Map<number, Fiber.RuntimeFiber<void, never>>()

const toWireError = (e: unknown): BackendError | DeviceUnavailable | ContextOverflow =>
  e instanceof BackendError || e instanceof DeviceUnavailable || e instanceof ContextOverflow
    ? e
    : new BackendError({ backend: "gguf", operation: "worker", reason: String(e) })

const run = <A>(effect: Effect.Effect<A, unknown>, onSuccess: (a: A) => FromWorker, id?: number) =>
  Effect.runFork(effect).addObserver((exit) => {
    if (Exit.isSuccess(exit)) return send(onSuccess(exit.value))
    const failure = exit.cause._tag === "Fail" ? exit.cause.error : exit.cause
    send({ _tag: "Failed", ...(id !== undefined ? { id } : {}), error: toWireError(failure) })
  })

const handle = (message: ToWorker) => {
  switch (message._tag) {
    case "Load": {
      modelPath = message.path
      testTrace(`load ${message.path}`)
      testHook("load", message.path)
      return run(
        Effect.tap(Scope.extend(loader.load(message.path, message.options, {
          onPreparing: () => {
            testTrace("preparing")
            send({ _tag: "Preparing" })
          }
        }), modelScope), (m) => {
          model = m
        }),
        (m): FromWorker => ({ _tag: "Loaded", sizeBytes: m.sizeBytes, vramBytes: m.vramBytes, contextSize: m.contextSize })
      )
    }
    case "Generate": {
      const { id, request } = message
      if (model === undefined) {
        return send({
          _tag: "Failed",
          id,
          error: new BackendError({ backend: "gguf", operation: "generate", reason: "no model loaded in this worker" })
        })
      }
      let finished = false
      testTrace(`generate ${id}`)
      const stream = model.generateWith(request, {
        onPrepared: (promptTokens) => send({ _tag: "Prepared", id, promptTokens }),
        onText: () => testHook("generate", modelPath)
      })
      const fiber = Effect.runFork(
        Stream.runForEach(stream, (event) =>
          Effect.sync(() => {
            if (event._tag === "Text") return send({ _tag: "Text", id, text: event.text })
            if (event._tag === "Reasoning") return send({ _tag: "Reasoning", id, text: event.text })
            if (event._tag === "ToolCall") return send({ _tag: "ToolCall", id, call: event.call })
            finished = true
            send({
              _tag: "Done",
              id,
              text: event.text,
              promptTokens: event.promptTokens,
              ...(event.cachedPromptTokens !== undefined ? { cachedPromptTokens: event.cachedPromptTokens } : {}),
              completionTokens: event.completionTokens,
              finishReason: event.finishReason,
              ...(event.maxTokensCapped !== undefined ? { maxTokensCapped: event.maxTokensCapped } : {})
            })
          })).pipe(
            Effect.catchAll((error) =>
              Effect.sync(() => {
                finished = true
                send({ _tag: "Failed", id, error })
              })
            ),
            Effect.onInterrupt(() => Effect.sync(() => finished || send({ _tag: "Stopped", id }))),
            Effect.ensuring(Effect.sync(() => generations.delete(id)))
          )
      )
      generations.set(id, fiber)
      return
    }
    case "Cancel": {
      const fiber = generations.get(message.id)
      if (fiber === undefined) return send({ _tag: "Stopped", id: message.id })
      Effect.runFork(Fiber.interrupt(fiber))
      return
    }
    case "Runtime":
      return run(loader.runtime(message.device), (r): FromWorker => ({ _tag: "RuntimeInfo", id: message.id, info: r.info }), message.id)
    case "Embed":
    case "Tokenize": {
      const { id } = message
      if (model === undefined) {
        return send({
          _tag: "Failed",
          id,
          error: new BackendError({ backend: "gguf", operation: message._tag === "Embed" ? "embed" : "tokenize", reason: "no model loaded in this worker" })
        })
      }
      return message._tag === "Embed"
        ? run(model.embed(message.inputs), (results): FromWorker => ({ _tag: "Embedded", id, results }), id)
        : run(model.tokenize(message.text), (tokens): FromWorker => ({ _tag: "Tokens", id, tokens }), id)
    }
    case "Sequences": {
      const { id } = message
      if (model?.sequences === undefined) {
        return send({
          _tag: "Failed",
          id,
          error: new BackendError({ backend: "gguf", operation: "sequences", reason: "no chat model loaded in this worker" })
        })
      }
      return run(model.sequences, (counts): FromWorker => ({ _tag: "SequenceCounts", id, ...counts }), id)
    }
    case "MemoryNeeds":
      return run(
        loader.memoryNeeds(message.path, message),
        (m): FromWorker => ({ _tag: "MemoryNeedsInfo", id: message.id, ...m }),
        message.id
      )
  }
}

process.on("message", (raw) => {
  const decoded = decodeToWorker(raw)
  if (Either.isLeft(decoded)) {
    process.stderr.write(`llmspell worker: malformed message from the host: ${String(decoded.left)}\n`)
    return
  }
  handle(decoded.right)
})

send({ _tag: "Ready" })

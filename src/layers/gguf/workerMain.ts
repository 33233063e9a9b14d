/**
 * The GGUF worker process: runs the in-process node-llama-cpp loader (`llama.ts`) for one model
 * and answers the host over the IPC channel (`workerProtocol.ts`). Everything llama.cpp and
 * node-llama-cpp do — load, Jinja chat template, tokenize, generate — happens here, so an assert
 * in llama.cpp, a runaway template or a heap exhaustion ends this process, not the host.
 * llama.cpp's log lines go to stderr, which the host keeps to explain a crash.
 * Started by `workerProcess.ts`; bundled to `dist/gguf-worker.js` for the CLI.
 *
 * One Effect program, run once at the bottom of this file (the process's entry, the one place an
 * Effect is run): Node's message callback only puts messages in the inbox, and one fiber takes
 * them in order; generations run in a FiberMap by request id, so a Cancel interrupts its fiber.
 * What goes back is batched per event-loop turn (see `Outbox`): a request's text chunks in one turn
 * are joined, and a turn's messages are one encode and one IPC write.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberMap from "effect/FiberMap"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { appendFileSync, existsSync } from "node:fs"
import { BackendError, ContextOverflow, DeviceUnavailable } from "../../domain/Errors.js"
import type { GenerateRequest } from "../../domain/Types.js"
import { type InProcessModel, makeInProcessLoader } from "./llama.js"
import { makeOutbox, TEXT_WINDOW_MS } from "./workerOutbox.js"
import {
  decodeToWorker,
  encodeFromWorkerBatch,
  type FromWorker,
  TEST_ABORT_ENV,
  TEST_RELEASE_ENV,
  TEST_TRACE_ENV,
  type ToWorker
} from "./workerProtocol.js"

// what the worker says goes out in batches (workerOutbox.ts); benchmarks may set the text window
const send = makeOutbox((batch) => {
  if (process.connected) process.send!(encodeFromWorkerBatch(batch))
}, Number(process.env.LLMSPELL_WORKER_TEXT_WINDOW_MS ?? TEXT_WINDOW_MS))

// ---- test-only hooks, read from this process's environment (see workerProtocol.ts)
const testHooks = (process.env[TEST_ABORT_ENV] ?? "").split(",").filter((h) => h.length > 0).map((h) => {
  const [when = "", match = ""] = h.split(":")
  return { when, match }
})
const blockThread = (until: () => boolean) => {
  while (!until()) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
}
const released = () => {
  const file = process.env[TEST_RELEASE_ENV]
  return file !== undefined && existsSync(file)
}
const testHook = (phase: "load" | "template" | "generate", path: string) => {
  for (const { match, when } of testHooks) {
    if (!path.includes(match)) continue
    if (when === phase) {
      process.stderr.write(`GGML_ASSERT(llmspell test hook: abort during ${phase}) failed\n`)
      process.abort()
    }
    if (when === `stall-${phase}`) blockThread(() => false)
  }
}
const requestHook = (phase: "prepare" | "cancel", request: GenerateRequest | undefined) => {
  const text = request?.messages.at(-1)?.content ?? ""
  for (const { match, when } of testHooks) {
    if (when === `stall-${phase}` && text.includes(match)) blockThread(released)
  }
}
const testTrace = (event: string) => {
  const file = process.env[TEST_TRACE_ENV]
  if (file !== undefined) appendFileSync(file, `${process.pid} ${event}\n`)
}

const toWireError = (e: unknown): BackendError | DeviceUnavailable | ContextOverflow =>
  e instanceof BackendError || e instanceof DeviceUnavailable || e instanceof ContextOverflow
    ? e
    : new BackendError({ backend: "gguf", operation: "worker", reason: String(e) })

const noModel = (id: number, operation: string): FromWorker => ({
  _tag: "Failed",
  id,
  error: new BackendError({ backend: "gguf", operation, reason: "no model loaded in this worker" })
})

/** Runs a question and sends its answer (or its failure) under `id` (absent: the load). */
const answer = <A>(effect: Effect.Effect<A, unknown>, onSuccess: (a: A) => FromWorker, id?: number) =>
  Effect.matchCause(effect, {
    onSuccess: (a) => send(onSuccess(a)),
    onFailure: (cause) =>
      send({ _tag: "Failed", ...(id !== undefined ? { id } : {}), error: toWireError(cause._tag === "Fail" ? cause.error : cause) })
  })

const program = Effect.gen(function*() {
  const loader = makeInProcessLoader({ onLog: (line) => process.stderr.write(`${line}\n`) })
  const modelScope = yield* Effect.scope
  const inbox = yield* Queue.unbounded<ToWorker>()
  const generations = yield* FiberMap.make<number>()
  const requests = new Map<number, GenerateRequest>()
  let model: InProcessModel | undefined
  let modelPath = ""

  // the boundary with Node: a message only enters the inbox
  process.on("message", (raw) => {
    const decoded = decodeToWorker(raw)
    if (Either.isLeft(decoded)) {
      process.stderr.write(`llmspell worker: malformed message from the host: ${String(decoded.left)}\n`)
      return
    }
    Queue.unsafeOffer(inbox, decoded.right)
  })

  const generate = (id: number, request: GenerateRequest, loaded: InProcessModel) => {
    let done: FromWorker | undefined
    testTrace(`generate ${id}`)
    const stream = loaded.generateWith(request, {
      onStart: () => {
        send({ _tag: "Started", id })
        testTrace(`prepare ${id}`)
        requestHook("prepare", request)
      },
      onPrepared: (promptTokens) => send({ _tag: "Prepared", id, promptTokens }),
      onText: () => testHook("generate", modelPath)
    })
    return Stream.runForEach(stream, (event) =>
      Effect.sync(() => {
        if (event._tag === "Text") return send({ _tag: "Text", id, text: event.text })
        if (event._tag === "Reasoning") return send({ _tag: "Reasoning", id, text: event.text })
        if (event._tag === "ToolCall") return send({ _tag: "ToolCall", id, call: event.call })
        done = {
          _tag: "Done",
          id,
          text: event.text,
          promptTokens: event.promptTokens,
          ...(event.cachedPromptTokens !== undefined ? { cachedPromptTokens: event.cachedPromptTokens } : {}),
          completionTokens: event.completionTokens,
          finishReason: event.finishReason,
          ...(event.maxTokensCapped !== undefined ? { maxTokensCapped: event.maxTokensCapped } : {}),
          ...(event.stopSequence !== undefined ? { stopSequence: event.stopSequence } : {})
        }
      })).pipe(
        // Done once the stream has ended, so its sequence is back: a ps right after the answer sees it free
        Effect.zipRight(Effect.sync(() => done !== undefined && send(done))),
        Effect.catchAll((error) => Effect.sync(() => send({ _tag: "Failed", id, error }))),
        Effect.onInterrupt(() => Effect.sync(() => send({ _tag: "Stopped", id }))),
        Effect.ensuring(Effect.sync(() => requests.delete(id)))
      )
  }

  const handle = (message: ToWorker): Effect.Effect<void> => {
    switch (message._tag) {
      case "Ping":
        return Effect.sync(() => send({ _tag: "Pong", id: message.id }))
      case "Load": {
        modelPath = message.path
        testTrace(`load ${message.path}`)
        testHook("load", message.path)
        const load = loader.load(message.path, message.options, {
          onPreparing: () => {
            testTrace("preparing")
            send({ _tag: "Preparing" })
            testHook("template", message.path)
          }
        }).pipe(
          Scope.extend(modelScope),
          Effect.tap((m) => {
            model = m
          })
        )
        return Effect.asVoid(Effect.forkIn(
          answer(load, (m): FromWorker => ({ _tag: "Loaded", sizeBytes: m.sizeBytes, vramBytes: m.vramBytes, contextSize: m.contextSize })),
          modelScope
        ))
      }
      case "Generate": {
        const { id, request } = message
        if (model === undefined) return Effect.sync(() => send(noModel(id, "generate")))
        requests.set(id, request)
        return Effect.asVoid(FiberMap.run(generations, id, generate(id, request, model)))
      }
      case "Cancel": {
        const { id } = message
        testTrace(`cancel ${id}`)
        requestHook("cancel", requests.get(id))
        return Effect.flatMap(FiberMap.has(generations, id), (running) =>
          running
            // interrupted in a fiber of its own: the inbox goes on while the generation stops
            ? Effect.asVoid(Effect.forkIn(FiberMap.remove(generations, id), modelScope))
            : Effect.sync(() => send({ _tag: "Stopped", id })))
      }
      case "Runtime":
        return Effect.asVoid(Effect.forkIn(
          answer(loader.runtime(message.device), (r): FromWorker => ({ _tag: "RuntimeInfo", id: message.id, info: r.info }), message.id),
          modelScope
        ))
      case "MemoryNeeds":
        return Effect.asVoid(Effect.forkIn(
          answer(loader.memoryNeeds(message.path, message), (m): FromWorker => ({ _tag: "MemoryNeedsInfo", id: message.id, ...m }), message.id),
          modelScope
        ))
      case "Rank": {
        // a long batch: run by id like a generation, so the host's Cancel (its caller went away)
        // interrupts it and the model stops between documents
        const { id } = message
        if (model === undefined) return Effect.sync(() => send(noModel(id, "rerank")))
        testTrace(`rank ${id} start`)
        return Effect.asVoid(FiberMap.run(
          generations,
          id,
          answer(model.rank(message.query, message.documents), (results): FromWorker => ({ _tag: "Ranked", id, results }), id).pipe(
            Effect.onInterrupt(() => Effect.sync(() => testTrace(`rank ${id} stopped`)))
          )
        ))
      }
      case "Embed":
      case "Tokenize":
      case "CountTokens": {
        const { id } = message
        const operation = message._tag === "Embed"
          ? "embed"
          : message._tag === "Tokenize"
          ? "tokenize"
          : "count tokens"
        if (model === undefined) return Effect.sync(() => send(noModel(id, operation)))
        const work = message._tag === "Embed"
          ? answer(model.embed(message.inputs), (results): FromWorker => ({ _tag: "Embedded", id, results }), id)
          : message._tag === "Tokenize"
          ? answer(model.tokenize(message.text), (tokens): FromWorker => ({ _tag: "Tokens", id, tokens }), id)
          : answer(model.countPromptTokens(message.request), (count): FromWorker => ({ _tag: "TokenCount", id, count }), id)
        return Effect.asVoid(Effect.forkIn(work, modelScope))
      }
      case "Sequences": {
        const { id } = message
        if (model?.sequences === undefined) {
          return Effect.sync(() =>
            send({
              _tag: "Failed",
              id,
              error: new BackendError({ backend: "gguf", operation: "sequences", reason: "no chat model loaded in this worker" })
            })
          )
        }
        return answer(model.sequences, (counts): FromWorker => ({ _tag: "SequenceCounts", id, ...counts }), id)
      }
    }
  }

  send({ _tag: "Ready" })
  return yield* Effect.forever(Effect.flatMap(Queue.take(inbox), handle))
})

// The host decides when this process stops: Ctrl-C in a terminal reaches the whole process group,
// and a worker dying of SIGINT first would turn the user's interruption into a "crash".
process.on("SIGINT", () => {})
// The host is gone (even killed): nothing left to serve.
process.on("disconnect", () => process.exit(0))

// The process's entry: the one place an Effect is run.
Effect.runFork(Effect.scoped(program))

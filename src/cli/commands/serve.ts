/**
 * `llmspell serve`: runs the server (`src/serve/Server.ts`) in the foreground over the whole
 * stack, so models stay loaded between requests. Prints where it listens on stderr (the URL, for
 * people and for scripts that start it with `--port 0`), one access-log line per request (NDJSON
 * with `--json`), and records its pid and URL in the state file. SIGTERM/SIGINT drain requests
 * in flight (bounded by `--drain-timeout`), unload the models and exit 0.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { UsageError } from "../../domain/Errors.js"
import { EffectiveConfig } from "../../services/EffectiveConfig.js"
import { DEFAULTS } from "../../serve/Defaults.js"
import type * as Server from "../../serve/Server.js"
import { holdServeState } from "../../serve/State.js"
import { CliIO } from "../CliIO.js"
import { VERSION } from "../version.js"
import { json } from "./shared.js"

const host = Options.text("host").pipe(
  Options.withDefault(DEFAULTS.host),
  Options.withDescription("address to listen on (default 127.0.0.1; any other needs --api-key)")
)
const port = Options.integer("port").pipe(
  Options.withDefault(DEFAULTS.port),
  Options.withDescription("port (default 11435; 0 picks a free one, printed at start)")
)
const apiKey = Options.redacted("api-key").pipe(
  Options.optional,
  Options.withDescription("require `Authorization: Bearer <key>` on every request (or LLMSPELL_API_KEY)")
)
const corsOrigin = Options.text("cors-origin").pipe(
  Options.repeated,
  Options.withDescription("allow browser requests from this origin (repeat for several; `*` for any); CORS is off otherwise")
)
const readOnly = Options.boolean("read-only").pipe(Options.withDescription("refuse pull and delete"))
const allowPaths = Options.boolean("allow-paths").pipe(
  Options.withDescription("serve specs that are file paths (./x.gguf, /abs/x.gguf); refused otherwise")
)
const maxQueue = Options.integer("max-queue").pipe(
  Options.withDefault(DEFAULTS.maxQueue),
  Options.withDescription("generations that may wait for a free slot before the next gets 503 (default 64)")
)
const maxBody = Options.integer("max-body").pipe(
  Options.withDefault(DEFAULTS.maxBodyBytes),
  Options.withDescription("largest request body in bytes (default 16 MiB); larger ones get 413")
)
const drainTimeout = Options.integer("drain-timeout").pipe(
  Options.withDefault(DEFAULTS.drainTimeoutMs / 1000),
  Options.withDescription("seconds requests in flight may take to finish when the server stops (default 10)")
)

const logLine = (entry: Server.AccessLogEntry) =>
  `${entry.time} ${entry.method} ${entry.path}${entry.model !== undefined ? ` model=${entry.model}` : ""} ${entry.status}` +
  `${entry.tokens !== undefined ? ` tokens=${entry.tokens}` : ""} ${entry.ms}ms\n`

/** `serve`. */
export const serveCommand = Command.make(
  "serve",
  { host, port, apiKey, corsOrigin, readOnly, allowPaths, maxQueue, maxBody, drainTimeout, json },
  (o) =>
    Effect.scoped(Effect.gen(function*() {
      const io = yield* CliIO
      const config = yield* EffectiveConfig
      for (const [name, value, min] of [["--port", o.port, 0], ["--max-queue", o.maxQueue, 0], ["--max-body", o.maxBody, 1], ["--drain-timeout", o.drainTimeout, 0]] as const) {
        if (value < min || (name === "--port" && value > 65535)) {
          return yield* new UsageError({ reason: `${name} must be ${name === "--port" ? "0–65535" : `≥ ${min}`}; got ${value}` })
        }
      }
      const envKey = process.env["LLMSPELL_API_KEY"]
      const key = Option.getOrUndefined(o.apiKey) ?? (envKey !== undefined && envKey !== "" ? Redacted.make(envKey) : undefined)
      // generations that run at once: each GGUF instance's sequences, and a few per Ollama server
      const concurrency = config.instances.reduce(
        (n, i) => n + (i.type === "gguf" ? i.parallel : i.type === "ollama" ? 4 : 0),
        0
      ) || DEFAULTS.concurrency
      // llmspell's own protocol at /rpc (what `llmspell --host …` and LlmspellRemote speak), under the
      // same policy as the Ollama and OpenAI routes; the server checks the key and the Host header.
      // the HTTP stack and the protocol are loaded by this command only, not at every CLI start
      const [Server, Rpc] = yield* Effect.promise(() => Promise.all([import("../../serve/Server.js"), import("../../serve/rpc.js")]))
      const rpc = yield* Rpc.makeHttpApp({ readOnly: o.readOnly, allowPaths: o.allowPaths })
      const server = yield* Server.start({
        rpc,
        host: o.host,
        port: o.port,
        apiKey: key,
        corsOrigins: o.corsOrigin,
        readOnly: o.readOnly,
        allowPaths: o.allowPaths,
        maxQueue: o.maxQueue,
        maxBodyBytes: o.maxBody,
        drainTimeoutMs: o.drainTimeout * 1000,
        concurrency,
        version: VERSION,
        aliases: config.serveAliases ?? [],
        log: (entry) => io.stderr(o.json ? `${JSON.stringify({ event: "request", ...entry })}\n` : logLine(entry))
      })
      const state = yield* holdServeState({
        pid: process.pid,
        url: server.url,
        startedAt: new Date().toISOString(),
        version: VERSION,
        apiKey: key !== undefined
      })
      yield* io.stderr(
        o.json
          ? `${JSON.stringify({ event: "listening", url: server.url, pid: process.pid, ...(Option.isSome(state) ? { stateFile: state.value } : {}) })}\n`
          : `llmspell serve listening on ${server.url} (Ollama API at /api, OpenAI API at /v1, Anthropic API at /v1/messages)${key !== undefined ? ", API key required" : ""}\n`
      )
      // Runs first when a signal interrupts the wait (finalizers run in reverse order): the drain
      // and the state file come after it, the models are unloaded when the command's layer closes.
      yield* Effect.addFinalizer(() =>
        Effect.zipRight(
          io.stderr(o.json ? `${JSON.stringify({ event: "stopping" })}\n` : "llmspell serve stopping: draining requests in flight\n"),
          // a signal is how a server is stopped: the CLI's entry exits 0 instead of 130/143 (bin.ts)
          Effect.sync(() => void (process.exitCode = 0))
        )
      )
      return yield* Effect.never
    }))
).pipe(Command.withDescription("serve Ollama's, OpenAI's and Anthropic's APIs (and llmspell's own) over HTTP, keeping models loaded"))

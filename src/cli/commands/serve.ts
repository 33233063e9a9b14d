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
import * as ConfigProvider from "effect/ConfigProvider"
import { UsageError } from "../../domain/Errors.js"
import { redactUrlsIn } from "../../domain/ServerUrl.js"
import { isIP } from "node:net"
import { ConfigEnvironment } from "../../layers/ConfigLive.js"
import { DEFAULTS } from "../../serve/Defaults.js"
import type * as Server from "../../serve/Server.js"
import { parseHost } from "../../serve/Policy.js"
import { alreadyRunningError, claimServeState, runningServer } from "../../serve/State.js"
import { CliIO } from "../CliIO.js"
import { GlobalOptions } from "../GlobalOptions.js"
import { VERSION } from "../version.js"
import { json } from "./shared.js"

// `--listen`, not `--host`: everywhere else `--host <url>` is the server a command connects to.
// `serve --host ADDRESS` (its old name) still parses, as a hidden alias: GlobalOptions leaves
// `--host` to serve when serve is the command word, and help does not show it (Help.ts).
const listen = Options.text("listen").pipe(
  Options.withAlias("host"),
  Options.withPseudoName("address"),
  Options.withDefault(DEFAULTS.host),
  Options.withDescription("address to listen on: an IP address or host name (default 127.0.0.1; any other than loopback needs --api-key)")
)
const port = Options.integer("port").pipe(
  Options.withPseudoName("port"),
  Options.withDefault(DEFAULTS.port),
  Options.withDescription("port (default 11435; 0 picks a free one, printed at start)")
)
const apiKey = Options.redacted("api-key").pipe(
  Options.withPseudoName("key"),
  Options.optional,
  Options.withDescription("require `Authorization: Bearer <key>` on every request (default: LLMSPELL_API_KEY, if set)")
)
const corsOrigin = Options.text("cors-origin").pipe(
  Options.withPseudoName("origin"),
  Options.repeated,
  Options.withDescription("allow browser requests from this origin (repeat for several; `*` for any); CORS is off otherwise")
)
const readOnly = Options.boolean("read-only").pipe(Options.withDescription("refuse pull and delete"))
const allowPaths = Options.boolean("allow-paths").pipe(
  Options.withDescription("serve specs that are file paths (./x.gguf, /abs/x.gguf); refused otherwise")
)
const allowImageUrls = Options.boolean("allow-image-urls").pipe(
  Options.withDescription(
    "fetch http(s) image URLs in chat requests from public addresses (PNG, JPEG, GIF, WebP; 20 MiB, 30 s, 5 redirects at most); refused otherwise"
  )
)
const allowPrivateImageUrls = Options.boolean("allow-private-image-urls").pipe(
  Options.withDescription(
    "fetch image URLs from any address, loopback and private networks included (implies --allow-image-urls; for trusted networks only)"
  )
)
const maxQueue = Options.integer("max-queue").pipe(
  Options.withPseudoName("n"),
  Options.withDefault(DEFAULTS.maxQueue),
  Options.withDescription("generations that may wait for a free slot before the next gets 503 (default 64)")
)
const maxBody = Options.integer("max-body").pipe(
  Options.withPseudoName("bytes"),
  Options.withDefault(DEFAULTS.maxBodyBytes),
  Options.withDescription("largest request body in bytes (default 16 MiB); larger ones get 413")
)
const drainTimeout = Options.integer("drain-timeout").pipe(
  Options.withPseudoName("seconds"),
  Options.withDefault(DEFAULTS.drainTimeoutMs / 1000),
  Options.withDescription("seconds requests in flight may take to finish when the server stops (default 10)")
)

const noUi = Options.boolean("no-ui").pipe(Options.withDescription("do not serve the web page at / (Ollama's `Ollama is running` answers every client)"))
const open = Options.boolean("open").pipe(Options.withDescription("open the web page in the default browser once listening"))

/** Opens a URL in the desktop's browser; a failure is a warning, never the server's. */
const openBrowser = (url: string) =>
  Effect.async<void, Error>((resume) => {
    const [command, args] = process.platform === "darwin"
      ? ["open", [url]]
      : process.platform === "win32"
      ? ["cmd", ["/c", "start", "", url]]
      : ["xdg-open", [url]]
    import("node:child_process").then(({ spawn }) => {
      const child = spawn(command, args as Array<string>, { stdio: "ignore", detached: true })
      child.once("error", (e) => resume(Effect.fail(e)))
      child.once("spawn", () => {
        child.unref()
        resume(Effect.void)
      })
    }, (e) => resume(Effect.fail(e as Error)))
  })

/**
 * The address to listen on, from `--listen`: an IP address (`::1` or `[::1]`) or a host name. A URL
 * or a port in it is a usage error saying where each part goes.
 */
const listenAddress = (value: string): Effect.Effect<string, UsageError> => {
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value
  if (isIP(bare) !== 0) return Effect.succeed(bare)
  const parsed = parseHost(value)
  if (Option.isSome(parsed) && Option.isNone(parsed.value.port)) return Effect.succeed(value)
  const url = /^[a-z][a-z\d+.-]*:\/\//i.test(value)
  const withPort = Option.isSome(parsed) ? parsed.value : undefined
  return Effect.fail(
    new UsageError({
      reason: url
        ? `--listen takes the address to listen on, not a URL: ${JSON.stringify(value)}`
        : withPort !== undefined
        ? `--listen takes an address without a port: ${JSON.stringify(value)}`
        : `--listen ${JSON.stringify(value)} is not an IP address or host name`,
      suggestion: withPort !== undefined
        ? `llmspell serve --listen ${withPort.host} --port ${Option.getOrThrow(withPort.port)}`
        : url
        ? "llmspell serve --listen 0.0.0.0 --port 11435 --api-key <key> (to use a running server instead, give --host <url> to the other commands)"
        : "llmspell serve --listen 127.0.0.1 (or 0.0.0.0 with --api-key, for every interface)"
    })
  )
}

const logLine = (entry: Server.AccessLogEntry) =>
  `${entry.time} ${entry.method} ${entry.path}${entry.model !== undefined ? ` model=${entry.model}` : ""} ${entry.status}` +
  `${entry.tokens !== undefined ? ` tokens=${entry.tokens}` : ""} ${entry.ms}ms\n`

/** `serve`. */
export const serveCommand = Command.make(
  "serve",
  { listen, port, apiKey, corsOrigin, readOnly, allowPaths, allowImageUrls, allowPrivateImageUrls, maxQueue, maxBody, drainTimeout, noUi, open, json },
  (o) =>
    Effect.scoped(Effect.gen(function*() {
      const io = yield* CliIO
      for (const [name, value, min] of [["--port", o.port, 0], ["--max-queue", o.maxQueue, 0], ["--max-body", o.maxBody, 1], ["--drain-timeout", o.drainTimeout, 0]] as const) {
        if (value < min || (name === "--port" && value > 65535)) {
          return yield* new UsageError({ reason: `${name} must be ${name === "--port" ? "0–65535" : `≥ ${min}`}; got ${value}` })
        }
      }
      const global = yield* GlobalOptions
      if (global.host !== undefined) {
        return yield* new UsageError({
          reason: "--host <url> connects a command to a running server; serve runs one",
          suggestion: "to choose where serve listens: llmspell serve --listen <address> --port <port>"
        })
      }
      const host = yield* listenAddress(o.listen)
      const { env, home } = yield* ConfigEnvironment
      // the HTTP stack is loaded by this command only, not at every CLI start
      const [Server, UiAssets] = yield* Effect.promise(() => Promise.all([import("../../serve/Server.js"), import("../../serve/UiAssets.js")]))
      // the web page's built files (dist/ui), read once; a checkout that was not built runs without it
      const ui = o.noUi ? Option.none() : yield* UiAssets.load()
      if (!o.noUi && Option.isNone(ui)) yield* io.stderr("warning: the web page is not built (no dist/ui/index.html): run `npm run build`; serving the APIs only\n")
      const server = yield* Server.start({
        ui: Option.getOrUndefined(ui),
        host,
        port: o.port,
        apiKey: Option.getOrUndefined(o.apiKey),
        corsOrigins: o.corsOrigin,
        readOnly: o.readOnly,
        allowPaths: o.allowPaths,
        allowImageUrls: o.allowImageUrls,
        allowPrivateImageUrls: o.allowPrivateImageUrls,
        maxQueue: o.maxQueue,
        maxBodyBytes: o.maxBody,
        drainTimeoutMs: o.drainTimeout * 1000,
        version: VERSION,
        log: (entry) => io.stderr(redactUrlsIn(o.json ? `${JSON.stringify({ event: "request", ...entry })}\n` : logLine(entry)))
      }).pipe(
        // the server reads LLMSPELL_API_KEY as library callers' servers do, from this invocation's environment
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)))),
        // a port held by the server this state file names: say so, rather than "address in use"
        Effect.catchTag("ServeFailed", (failed) =>
          Effect.flatMap(runningServer({ env, home }), (running) =>
            Effect.fail(Option.isSome(running) ? alreadyRunningError({ env, home }, running.value) : failed)))
      )
      // one server per state file: a second is refused here (after listening, so the URL is known), naming the first
      const state = yield* claimServeState({
        pid: process.pid,
        url: server.url,
        startedAt: new Date().toISOString(),
        version: VERSION,
        apiKey: server.keyRequired
      }, { env, home })
      yield* io.stderr(
        o.json
          ? `${JSON.stringify({ event: "listening", url: server.url, pid: process.pid, ...(Option.isSome(state) ? { stateFile: state.value } : {}) })}\n`
          : `llmspell serve listening on ${server.url} (Ollama API at /api, OpenAI API at /v1, Anthropic API at /v1/messages${Option.isSome(ui) ? ", web page at /" : ""})${server.keyRequired ? ", API key required" : ""}\n`
      )
      if (o.open) {
        yield* Option.isSome(ui)
          ? openBrowser(`${server.url}/`).pipe(
            Effect.catchAll((e) => io.stderr(`warning: could not open a browser (${e.message}); open ${server.url}/ yourself\n`))
          )
          : io.stderr("warning: --open: there is no web page to open (--no-ui, or the page is not built)\n")
      }
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

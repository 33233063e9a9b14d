/**
 * How the CLI builds llmspell for one command: connected to a running `llmspell serve` when one is
 * found (`--host URL`, else `LLMSPELL_HOST`, else the server's state file; `--local` skips this),
 * else embedded: the Config from the global options (printing its warnings once on stderr), then
 * the registry, backends and the LocalLLM facade. Either way the commands see one `LocalLLM`, so
 * output, `--json` and exit codes do not depend on the mode. Commands attach these with
 * `Command.provide`, so `--help` builds nothing and no backend library is imported until a
 * command needs it.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Layer from "effect/Layer"
import { VERSION } from "./version.js"
import { type BackendUnavailable, type ConfigError, type MissingCredentials, UsageError } from "../domain/Errors.js"
import { ConfigEnvironment } from "../layers/ConfigLive.js"
import * as ConfigLive from "../layers/ConfigLive.js"
import { EffectiveConfig } from "../services/EffectiveConfig.js"
import type { LocalLLM } from "../services/LocalLLM.js"
import { CliIO } from "./CliIO.js"
import { GlobalOptions, type GlobalOptionsValue } from "./GlobalOptions.js"
import { readServeState } from "../serve/State.js"
import { LLMSPELL_DEFAULT_PORT, parseServerUrl, redactUrl, splitQuery, urlProblem } from "../domain/ServerUrl.js"

/** The Config of this invocation; its warnings go to stderr. */
export const configLayer: Layer.Layer<EffectiveConfig, ConfigError, GlobalOptions | CliIO> = Layer
  .effect(
    EffectiveConfig,
    Effect.gen(function*() {
      const global = yield* GlobalOptions
      const io = yield* CliIO
      const config = yield* ConfigLive.load({ configFile: global.configFile, flags: global.flags })
      for (const warning of config.warnings) yield* io.stderr(`warning: ${warning}\n`)
      return config
    })
  )

/** The config flags given on this command line (`--config`, `--models-dir`, …), by name. */
const configFlagsGiven = (global: GlobalOptionsValue): ReadonlyArray<string> => [
  ...(global.configFile !== undefined ? ["--config"] : []),
  ...Object.entries(global.flags).filter(([, v]) => v !== undefined).map(([k]) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`)
]

/**
 * A server address given on the command line or in LLMSPELL_HOST, in any form OLLAMA_HOST takes
 * (`host:port`, `:port`, `host`, `[::1]:port`, a URL; port 11435 by default), as the URL to use.
 * One that is still wrong is a usage error naming where it came from; a query or fragment is left
 * out with a warning (the protocol's path is appended after it; the key goes in LLMSPELL_API_KEY).
 */
const serverAddress = (raw: string, source: string): Effect.Effect<string, UsageError, CliIO> =>
  Effect.gen(function*() {
    const parsed = parseServerUrl(raw, LLMSPELL_DEFAULT_PORT)
    const problem = urlProblem(parsed)
    if (problem !== undefined) {
      return yield* new UsageError({
        reason: `${source}: the server address ${problem} (got ${JSON.stringify(redactUrl(raw))})`,
        suggestion: "give it as host:port or http://host:port: `llmspell serve` prints its address when it starts"
      })
    }
    const { dropped, url } = splitQuery(parsed)
    if (dropped !== undefined) {
      const io = yield* CliIO
      yield* io.stderr(
        `warning: ${source}: ${JSON.stringify(redactUrl(dropped))} is left out of the server address; ` +
          "a server's API key goes in LLMSPELL_API_KEY\n"
      )
    }
    return url.replace(/\/+$/, "")
  })

/**
 * The server this invocation uses, or undefined to run embedded. Config flags on the command line
 * configure an embedded run, and a server has its own configuration: with them, a server found in
 * the environment or the state file is not used (the flags would be lost), and `--host` is a usage
 * error naming both ways out.
 */
export const serverUrl: Effect.Effect<string | undefined, UsageError, GlobalOptions | CliIO> = Effect.gen(function*() {
  const global = yield* GlobalOptions
  if (global.local) return undefined
  const configured = configFlagsGiven(global)
  if (global.host !== undefined) {
    if (configured.length === 0) return yield* serverAddress(global.host, "--host")
    return yield* new UsageError({
      reason: `${configured.join(", ")} configure${configured.length === 1 ? "s" : ""} a run in this process, but --host connects to a server, which uses its own configuration`,
      suggestion: `drop --host to run here with ${configured.length === 1 ? "it" : "them"}, or start the server with ${configured.length === 1 ? "it" : "them"} (\`llmspell serve ${configured.join(" … ")} …\`)`
    })
  }
  if (configured.length > 0) return undefined
  const { env, home } = yield* ConfigEnvironment
  const fromEnv = env["LLMSPELL_HOST"]
  if (fromEnv !== undefined && fromEnv.trim().length > 0) return yield* serverAddress(fromEnv, "env LLMSPELL_HOST")
  const state = Option.getOrUndefined(yield* readServeState({ env, home }))
  // The state file is written by `llmspell serve` itself: an address in it that is not one is no server.
  return state !== undefined && urlProblem(state.url) === undefined ? state.url : undefined
})

type App = Layer.Layer<LocalLLM, ConfigError | BackendUnavailable | MissingCredentials | UsageError, GlobalOptions | CliIO>

/**
 * Spans exported over OTLP when the OTEL_* variables ask for it (src/layers/Tracing.ts), for serve and
 * every model command; the module is imported only when a command builds its layer.
 */
const tracingLayer: Layer.Layer<never> = Layer.unwrapEffect(
  Effect.map(Effect.promise(() => import("../layers/Tracing.js")), (Tracing) => Tracing.layerFromEnvironment(VERSION))
)

// The stacks are imported when a command builds its layer, not when the CLI starts: `--help`,
// `config` and usage errors evaluate neither the backends nor the protocol client.
/** The whole stack in this process, whatever server is running: what `llmspell serve` hosts. */
export const embeddedLayer = Layer.unwrapEffect(
  Effect.map(
    Effect.promise(() => Promise.all([import("../layers/LlmspellLive.js"), import("../layers/ImageFetch.js")])),
    ([LlmspellLive, ImageFetch]) =>
      LlmspellLive.layerWith(configLayer).pipe(
        // the CLI fetches no image URL itself: a server does, when it runs with --allow-image-urls
        Layer.merge(Layer.succeed(ImageFetch.ImageUrls, {
          access: "off",
          enableWith: "a server fetches it: run `llmspell serve --allow-image-urls` and pass --host, or download the image and pass the file"
        }))
      )
  )
).pipe(Layer.merge(tracingLayer))

/** Everything a model command needs: a server's LocalLLM, or the stack library users get from LlmspellLive; traced when OTEL_* ask. */
export const appLayer: App = Layer.unwrapEffect(
  Effect.gen(function*() {
    const global = yield* GlobalOptions
    const io = yield* CliIO
    const url = yield* serverUrl
    if (url === undefined) {
      const configured = global.local ? [] : configFlagsGiven(global)
      if (global.verbose) yield* io.stderr(configured.length === 0 ? "embedded\n" : `embedded (${configured.join(", ")} given)\n`)
      const embedded: App = embeddedLayer
      return embedded
    }
    if (global.verbose) yield* io.stderr(`connected to ${redactUrl(url)}\n`)
    const { cwd, env } = yield* ConfigEnvironment
    const apiKey = env["LLMSPELL_API_KEY"]
    const LlmspellRemote = yield* Effect.promise(() => import("../layers/LlmspellRemote.js"))
    const remote: App = LlmspellRemote.layer({ url, cwd, ...(apiKey !== undefined && apiKey.length > 0 ? { apiKey } : {}) })
    return remote
  })
).pipe(Layer.merge(tracingLayer))

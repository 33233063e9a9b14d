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
import type { BackendUnavailable, ConfigError } from "../domain/Errors.js"
import { ConfigEnvironment } from "../layers/ConfigLive.js"
import * as ConfigLive from "../layers/ConfigLive.js"
import { EffectiveConfig } from "../services/EffectiveConfig.js"
import type { LocalLLM } from "../services/LocalLLM.js"
import { CliIO } from "./CliIO.js"
import { GlobalOptions } from "./GlobalOptions.js"
import { readServeState } from "../serve/State.js"

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

/** The server this invocation uses, or undefined to run embedded. */
export const serverUrl: Effect.Effect<string | undefined, never, GlobalOptions> = Effect.gen(function*() {
  const global = yield* GlobalOptions
  if (global.local) return undefined
  if (global.host !== undefined) return global.host
  const { env, home } = yield* ConfigEnvironment
  const fromEnv = env["LLMSPELL_HOST"]
  if (fromEnv !== undefined && fromEnv.length > 0) return fromEnv
  return Option.getOrUndefined(yield* readServeState({ env, home }))?.url
})

type App = Layer.Layer<LocalLLM, ConfigError | BackendUnavailable, GlobalOptions | CliIO>

// The stacks are imported when a command builds its layer, not when the CLI starts: `--help`,
// `config` and usage errors evaluate neither the backends nor the protocol client.
/** The whole stack in this process, whatever server is running: what `llmspell serve` hosts. */
export const embeddedLayer = Layer.unwrapEffect(
  Effect.map(Effect.promise(() => import("../layers/LlmspellLive.js")), (LlmspellLive) => LlmspellLive.layerWith(configLayer))
)

/** Everything a model command needs: a server's LocalLLM, or the stack library users get from LlmspellLive. */
export const appLayer: App = Layer.unwrapEffect(
  Effect.gen(function*() {
    const global = yield* GlobalOptions
    const io = yield* CliIO
    const url = yield* serverUrl
    if (url === undefined) {
      if (global.verbose) yield* io.stderr("embedded\n")
      const embedded: App = embeddedLayer
      return embedded
    }
    if (global.verbose) yield* io.stderr(`connected to ${url}\n`)
    const { cwd, env } = yield* ConfigEnvironment
    const apiKey = env["LLMSPELL_API_KEY"]
    const LlmspellRemote = yield* Effect.promise(() => import("../layers/LlmspellRemote.js"))
    const remote: App = LlmspellRemote.layer({ url, cwd, ...(apiKey !== undefined && apiKey.length > 0 ? { apiKey } : {}) })
    return remote
  })
)

/**
 * How the CLI builds llmspell for one command: the Config from the global options (printing its
 * warnings once on stderr), then the registry, backends and the LocalLLM facade. Commands attach
 * these with `Command.provide`, so `--help` builds nothing and no backend library is imported
 * until a command needs it.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ConfigLive from "../layers/ConfigLive.js"
import * as LlmspellLive from "../layers/LlmspellLive.js"
import { Config } from "../services/Config.js"
import { CliIO } from "./CliIO.js"
import { GlobalOptions } from "./GlobalOptions.js"

/** The Config of this invocation; its warnings go to stderr. */
export const configLayer: Layer.Layer<Config, import("../domain/Errors.js").ConfigError, GlobalOptions | CliIO> = Layer
  .effect(
    Config,
    Effect.gen(function*() {
      const global = yield* GlobalOptions
      const io = yield* CliIO
      const config = yield* ConfigLive.load({ configFile: global.configFile, flags: global.flags })
      for (const warning of config.warnings) yield* io.stderr(`warning: ${warning}\n`)
      return config
    })
  )

/** Everything a model command needs: the same stack library users get from LlmspellLive, over this Config. */
export const appLayer = LlmspellLive.layerWith(configLayer)

/**
 * How the CLI builds llmspell for one command: the Config from the global options (printing its
 * warnings once on stderr), then the registry, backends and the LocalLLM facade. Commands attach
 * these with `Command.provide`, so `--help` builds nothing and no backend library is imported
 * until a command needs it.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ConfigLive from "../layers/ConfigLive.js"
import * as GgufBackendLive from "../layers/GgufBackendLive.js"
import * as LocalLLMLive from "../layers/LocalLLMLive.js"
import * as ModelDownloaderLive from "../layers/ModelDownloaderLive.js"
import * as OllamaBackendLive from "../layers/OllamaBackendLive.js"
import { Config } from "../services/Config.js"
import * as ProviderRegistry from "../services/ProviderRegistry.js"
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

/** Backends and registry over a Config; the GGUF backend keeps its store through the downloader. */
export const backendsLayer = ProviderRegistry.layer.pipe(
  Layer.provide(
    Layer.mergeAll(OllamaBackendLive.layer, GgufBackendLive.layer.pipe(Layer.provide(ModelDownloaderLive.layer)))
  )
)

/** Everything a model command needs: Config, ProviderRegistry and LocalLLM. */
export const appLayer = LocalLLMLive.layer.pipe(
  Layer.provideMerge(backendsLayer),
  Layer.provideMerge(configLayer)
)

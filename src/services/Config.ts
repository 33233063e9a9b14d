/**
 * Config: the effective configuration, resolved once when the layer is built (defaults, file,
 * environment, flags). The pure resolution lives in `domain/ConfigSchema.ts`; the live layer that
 * discovers and reads the file is `layers/ConfigLive.ts`.
 */
import * as Context from "effect/Context"
import * as Either from "effect/Either"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type ConfigInput, type LlmspellConfig, resolveConfig } from "../domain/ConfigSchema.js"
import type { ConfigError } from "../domain/Errors.js"

export type {
  CloudInstanceConfig,
  ConfigEntry,
  ConfigFlags,
  GgufInstanceConfig,
  HubConfig,
  LlmspellConfig,
  OllamaInstanceConfig,
  ProviderInstanceConfig
} from "../domain/ConfigSchema.js"

/** The effective configuration. */
export class Config extends Context.Tag("llmspell/Config")<Config, LlmspellConfig>() {}

/** A Config layer from an already resolved configuration. */
export const layerValue = (config: LlmspellConfig): Layer.Layer<Config> => Layer.succeed(Config, config)

/**
 * A Config layer from a TOML-shaped object given in code (for embedding llmspell): no file is read,
 * the environment is not consulted unless passed, and the object is validated like a file.
 */
export const layerFromObject = (
  value: unknown,
  options: { readonly env?: Readonly<Record<string, string | undefined>>; readonly home?: string } = {}
): Layer.Layer<Config, ConfigError> =>
  Layer.effect(
    Config,
    Effect.suspend(() => {
      const input: ConfigInput = {
        object: { value, source: "code" },
        env: options.env ?? {},
        home: options.home ?? process.env["HOME"] ?? "/"
      }
      return Either.match(resolveConfig(input), { onLeft: Effect.fail, onRight: Effect.succeed })
    })
  )

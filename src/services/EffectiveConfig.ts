/**
 * EffectiveConfig: the configuration in effect, resolved once when its layer is built (defaults,
 * file, environment, flags). Named so it cannot be mistaken for `effect/Config` (which reads
 * configuration values from a provider). The pure resolution lives in `domain/ConfigSchema.ts`;
 * the layers (from the usual files, from an object, from a value) in `layers/ConfigLive.ts`.
 */
import * as Context from "effect/Context"
import type { LlmspellConfig } from "../domain/ConfigSchema.js"

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
export class EffectiveConfig extends Context.Tag("llmspell/EffectiveConfig")<EffectiveConfig, LlmspellConfig>() {}

/**
 * CloudBackend: backend instances for hosted and OpenAI-compatible APIs (`openai`, `anthropic`,
 * the built-in OpenAI-compatible providers, `openai_compatible` servers). The registry asks it for a
 * `Backend` per cloud instance when it is registered. Live implementation: `layers/CloudBackendLive.ts`.
 */
import * as Context from "effect/Context"
import type { CloudInstanceConfig } from "../domain/ConfigSchema.js"
import type { BackendFactory } from "./Backend.js"

/** Creates cloud backend instances. */
export class CloudBackendFactory extends Context.Tag("llmspell/CloudBackendFactory")<CloudBackendFactory, BackendFactory<CloudInstanceConfig>>() {}

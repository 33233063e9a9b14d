/**
 * OllamaBackend: one `ollama` client per configured Ollama instance. The registry asks it for a
 * `Backend` per instance. Live implementation: `layers/OllamaBackendLive.ts`.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { OllamaInstanceConfig } from "../domain/ConfigSchema.js"
import type {
  BackendError,
  BackendUnavailable,
  ContextOverflow,
  ModelNotFound,
  ToolChoiceViolated,
  UnsupportedOperation
} from "../domain/Errors.js"
import type { GenerateEvent, GenerateRequest, LoadedModel } from "../domain/Types.js"
import type { Backend, BackendFactory } from "./Backend.js"

/** Creates Ollama backend instances. */
export class OllamaBackendFactory extends Context.Tag("llmspell/OllamaBackendFactory")<
  OllamaBackendFactory,
  BackendFactory<OllamaInstanceConfig>
>() {}

/** A raw prompt for `/api/generate` (no chat template applied by us; Ollama applies the model's). */
export interface OllamaPromptRequest extends Omit<GenerateRequest, "messages"> {
  readonly prompt: string
  readonly system?: string
}

/** What a request about one model can fail with: the server is down or failed it, or does not have the model. */
export type OllamaModelError = ModelNotFound | BackendUnavailable | BackendError

/** What a completion can fail with: also a prompt the server had to cut, or an answer that ignored `toolChoice`. */
export type OllamaCompleteError = OllamaModelError | ContextOverflow | ToolChoiceViolated | UnsupportedOperation

/** What the live Ollama instances offer beyond `Backend`; narrow a `Backend` with `isOllamaInstance`. */
export interface OllamaInstance extends Backend {
  readonly type: "ollama"
  /** Loads a model into memory (an empty generate request); `keepAlive` as Ollama takes it ("5m", seconds, -1). */
  readonly load: (model: string, keepAlive?: string | number) => Effect.Effect<LoadedModel | undefined, OllamaModelError>
  /** Unloads a model now (`keep_alive: 0`). */
  readonly unload: (model: string) => Effect.Effect<void, OllamaModelError>
  /** Streams a completion of a raw prompt through `/api/generate`; `generate` uses `/api/chat`. */
  readonly complete: (model: string, request: OllamaPromptRequest) => Stream.Stream<GenerateEvent, OllamaCompleteError>
}

/** True for a backend instance made by the live Ollama backend. */
export const isOllamaInstance = (backend: Backend): backend is OllamaInstance =>
  backend.type === "ollama" && typeof (backend as Partial<OllamaInstance>).unload === "function"

/**
 * Helpers shared by the fakes of llmspell/testing; not part of its public surface (`index.ts`
 * does not re-export this module).
 */
import { BackendUnavailable, ChecksumMismatch, type LlmspellError, ModelNotFound } from "../domain/Errors.js"
import type { BackendType } from "../domain/Types.js"
import type { MockFailure } from "./MockBackend.js"

/** What a scripted model answers when nothing else is scripted. */
export const DEFAULT_TOKENS = ["This", " is", " a", " scripted", " answer", "."]

/** The typed error a named failure stands for. */
export const failureFor = (
  failure: MockFailure,
  backend: BackendType,
  instance: string,
  model: string | undefined
): LlmspellError => {
  if (typeof failure !== "string") return failure
  switch (failure) {
    case "unavailable":
      return new BackendUnavailable({ backend, instance, reason: "mock: backend unavailable" })
    case "notFound":
      return new ModelNotFound({
        model: model ?? "?",
        backend,
        instance,
        pullSpec: backend === "ollama" ? `${model}@ollama` : model
      })
    case "checksumMismatch":
      return new ChecksumMismatch({ file: `${model ?? "model"}.gguf`, expected: "0".repeat(64), actual: "f".repeat(64) })
  }
}

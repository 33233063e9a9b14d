/**
 * The live OllamaBackend (placeholder until the Ollama issue lands): instances report their
 * configured endpoint; every operation fails with a typed BackendError.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { BackendError } from "../domain/Errors.js"
import { OllamaBackend } from "../services/OllamaBackend.js"

const notYet = (instance: string, operation: string) =>
  new BackendError({ backend: "ollama", instance, operation, reason: "the Ollama backend is not implemented yet" })

/** The live Ollama backend factory. */
export const layer: Layer.Layer<OllamaBackend> = Layer.succeed(OllamaBackend, {
  type: "ollama",
  make: (instance) =>
    Effect.succeed({
      name: instance.name,
      type: "ollama",
      status: Effect.succeed({
        instance: instance.name,
        backend: "ollama",
        endpoint: instance.baseUrl,
        available: false,
        error: { _tag: "BackendError", message: notYet(instance.name, "status").message },
        loaded: [],
        details: {},
        warnings: []
      }),
      list: Effect.fail(notYet(instance.name, "list")),
      info: () => Effect.fail(notYet(instance.name, "info")),
      pull: () => Stream.fail(notYet(instance.name, "pull")),
      remove: () => Effect.fail(notYet(instance.name, "remove")),
      verify: () => Effect.fail(notYet(instance.name, "verify")),
      generate: () => Stream.fail(notYet(instance.name, "generate"))
    })
})

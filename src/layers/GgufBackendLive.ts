/**
 * The live GgufBackend (placeholder until the GGUF issue lands): instances report their
 * configured endpoint; every operation fails with a typed BackendError.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { BackendError } from "../domain/Errors.js"
import { GgufBackend } from "../services/GgufBackend.js"

const notYet = (instance: string, operation: string) =>
  new BackendError({ backend: "gguf", instance, operation, reason: "the GGUF backend is not implemented yet" })

/** The live GGUF backend factory. */
export const layer: Layer.Layer<GgufBackend> = Layer.succeed(GgufBackend, {
  type: "gguf",
  make: (instance) =>
    Effect.succeed({
      name: instance.name,
      type: "gguf",
      status: Effect.succeed({
        instance: instance.name,
        backend: "gguf",
        endpoint: instance.modelDirectory,
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

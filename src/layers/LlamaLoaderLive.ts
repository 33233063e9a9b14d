/**
 * The live LlamaLoader: node-llama-cpp's prebuilt llama.cpp, one `Llama` per process created on
 * first use. Everything that touches the library is in `internal/llama.ts`.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { LlamaLoader } from "../services/LlamaLoader.js"
import { makeLoader } from "./internal/llama.js"

/** The live loader. */
export const layer: Layer.Layer<LlamaLoader> = Layer.effect(LlamaLoader, Effect.sync(makeLoader))

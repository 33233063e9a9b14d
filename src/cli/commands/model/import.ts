/**
 * `llmspell model import <file.gguf> [--name …] [--copy]`: makes a GGUF file on disk (a browser download,
 * a conversion's output) a first-class model of llmspell's store: validated with the GGUF reader,
 * hard-linked (copied across filesystems) and recorded by a manifest. The original is left as it is.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { formatBytes } from "../../../domain/Format.js"
import { ImportResult } from "../../../domain/Types.js"
import { LocalLLM } from "../../../services/LocalLLM.js"
import { printJson, printOut } from "../../output.js"
import { json } from "../shared.js"

const file = Args.text({ name: "file.gguf" }).pipe(Args.withDescription("the GGUF file to import"))
const name = Options.text("name").pipe(
  Options.optional,
  Options.withDescription("the model's name (default: the file name without .gguf)")
)
const copy = Options.boolean("copy").pipe(Options.withDescription("copy the file even when a hard link is possible"))

/** `model import`. */
export const importCommand = Command.make("import", { file, name, copy, json }, ({ copy, file, json, name }) =>
  Effect.gen(function*() {
    const given = Option.getOrUndefined(name)
    const result = yield* (yield* LocalLLM).importFile(file, {
      ...(given !== undefined ? { name: given } : {}),
      ...(copy ? { copy } : {})
    })
    if (json) return yield* printJson(ImportResult, result)
    yield* printOut(`imported ${result.model} (${formatBytes(result.sizeBytes)}) to ${result.path}; run it with: llmspell run --model ${result.model}@gguf "…"`)
  })).pipe(Command.withDescription("make a GGUF file on disk a model of llmspell's store (hard link or copy)"))

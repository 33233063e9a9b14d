/**
 * `llmspell model import <file.gguf> [--name …] [--copy]`: makes a GGUF file on disk (a browser download,
 * a conversion's output) a first-class model of llmspell's store: validated with the GGUF reader,
 * hard-linked (copied across filesystems) and recorded by a manifest. The original is left as it is.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { defaultInstance } from "../../../domain/ConfigSchema.js"
import { BackendUnavailable } from "../../../domain/Errors.js"
import { formatBytes } from "../../../domain/Format.js"
import { ImportResult } from "../../../domain/Types.js"
import * as ModelDownloaderLive from "../../../layers/ModelDownloaderLive.js"
import * as ModelStoreLive from "../../../layers/ModelStoreLive.js"
import { Config } from "../../../services/Config.js"
import { ModelDownloader } from "../../../services/ModelDownloader.js"
import { printJson, printOut } from "../../output.js"
import { json } from "../shared.js"

const file = Args.text({ name: "file.gguf" }).pipe(Args.withDescription("the GGUF file to import"))
const name = Options.text("name").pipe(
  Options.optional,
  Options.withDescription("the model's name (default: the file name without .gguf)")
)
const copy = Options.boolean("copy").pipe(Options.withDescription("copy the file even when a hard link is possible"))

/** The store's writer over this invocation's Config (built only when `import` runs). */
export const importLayer = ModelDownloaderLive.layer.pipe(Layer.provide(ModelStoreLive.layer))

/** `model import`. */
export const importCommand = Command.make("import", { file, name, copy, json }, ({ copy, file, json, name }) =>
  Effect.gen(function*() {
    const config = yield* Config
    const downloader = yield* ModelDownloader
    const instance = defaultInstance(config, "gguf")
    if (instance === undefined) {
      return yield* new BackendUnavailable({
        backend: "gguf",
        reason: "no GGUF instance is configured",
        suggestion: "add a [providers] gguf instance (see `llmspell config show`)"
      })
    }
    const given = Option.getOrUndefined(name)
    const model = yield* downloader.importFile(file, { directory: instance.modelDirectory, instance: instance.name }, {
      ...(given !== undefined ? { name: given } : {}),
      ...(copy ? { copy } : {})
    })
    const result: ImportResult = {
      model: model.name,
      backend: "gguf",
      instance: instance.name,
      path: model.primaryPath,
      source: file,
      sizeBytes: model.sizeBytes,
      sha256: model.files[0]!.sha256
    }
    if (json) return yield* printJson(ImportResult, result)
    yield* printOut(`imported ${result.model} (${formatBytes(result.sizeBytes)}) to ${result.path}; run it with: llmspell run --model ${result.model}@gguf "…"`)
  })).pipe(Command.withDescription("make a GGUF file on disk a model of llmspell's store (hard link or copy)"))

/** `llmspell model …`: manage models across backends. */
import * as Command from "@effect/cli/Command"
import { appLayer } from "../AppLayer.js"
import { availableCommand } from "./model/available.js"
import { infoCommand } from "./model/info.js"
import { installOllamaCommand } from "./model/installOllama.js"
import { listCommand } from "./model/list.js"
import { pullCommand } from "./model/pull.js"
import { removeCommand } from "./model/remove.js"
import { statusCommand } from "./model/status.js"
import { verifyCommand } from "./model/verify.js"

/** `llmspell model`. */
export const modelCommand = Command.make("model").pipe(
  Command.withDescription("manage local models (Ollama and GGUF)"),
  Command.withSubcommands([
    statusCommand.pipe(Command.provide(appLayer)),
    listCommand.pipe(Command.provide(appLayer)),
    pullCommand.pipe(Command.provide(appLayer)),
    availableCommand,
    infoCommand.pipe(Command.provide(appLayer)),
    removeCommand.pipe(Command.provide(appLayer)),
    verifyCommand.pipe(Command.provide(appLayer)),
    installOllamaCommand.pipe(Command.provide(appLayer))
  ])
)

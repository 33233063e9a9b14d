/**
 * The `llmspell` command tree, in one place: every command, the layer each one needs (attached
 * here, the same way for all: `Command.provide`, so `--help` builds nothing), and the index of
 * names and commands that `Help.ts` walks. `main.ts` runs one invocation of it.
 */
import * as Command from "@effect/cli/Command"
import { appLayer, configLayer, embeddedLayer } from "./AppLayer.js"
import { configPathCommand, configShowCommand } from "./commands/config.js"
import { availableCommand } from "./commands/model/available.js"
import { importCommand } from "./commands/model/import.js"
import { infoCommand } from "./commands/model/info.js"
import { installOllamaCommand } from "./commands/model/installOllama.js"
import { listCommand } from "./commands/model/list.js"
import { pullCommand } from "./commands/model/pull.js"
import { removeCommand } from "./commands/model/remove.js"
import { statusCommand } from "./commands/model/status.js"
import { verifyCommand } from "./commands/model/verify.js"
import { chatCommand } from "./commands/chat.js"
import { embedCommand } from "./commands/embed.js"
import { rerankCommand } from "./commands/rerank.js"
import { launchCommand } from "./commands/launch.js"
import { psCommand } from "./commands/ps.js"
import { runCommand } from "./commands/run.js"
import { serveCommand } from "./commands/serve.js"
import { stopCommand } from "./commands/stop.js"
import { VERSION } from "./version.js"

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyCommand = Command.Command<any, any, any, any>

/** A command and its subcommands, as help and the subcommand check see them. */
export interface CommandNode<C extends AnyCommand = AnyCommand> {
  readonly name: string
  readonly command: C
  readonly children: ReadonlyArray<CommandNode>
}

const leaf = <C extends AnyCommand>(command: C): CommandNode<C> => ({
  name: Array.from(Command.getNames(command))[0]!,
  command,
  children: []
})

const group = <const Children extends readonly [CommandNode, ...Array<CommandNode>]>(
  name: string,
  description: string,
  children: Children
) => ({
  name,
  command: Command.make(name).pipe(
    Command.withDescription(description),
    Command.withSubcommands(
      children.map((c) => c.command) as unknown as readonly [Children[number]["command"], ...Array<Children[number]["command"]>]
    )
  ),
  children
})

const model = group("model", "manage local models (Ollama and GGUF)", [
  leaf(statusCommand.pipe(Command.provide(appLayer))),
  leaf(listCommand.pipe(Command.provide(appLayer))),
  leaf(pullCommand.pipe(Command.provide(appLayer))),
  leaf(importCommand.pipe(Command.provide(appLayer))),
  leaf(availableCommand.pipe(Command.provide(appLayer))),
  leaf(infoCommand.pipe(Command.provide(appLayer))),
  leaf(removeCommand.pipe(Command.provide(appLayer))),
  leaf(verifyCommand.pipe(Command.provide(appLayer))),
  leaf(installOllamaCommand.pipe(Command.provide(appLayer)))
])

const config = group("config", "show the configuration", [
  leaf(configShowCommand.pipe(Command.provide(configLayer))),
  leaf(configPathCommand)
])

/** The whole tree, root first. */
export const commandTree = group("llmspell", "manage and run local LLMs: Ollama servers and GGUF models, from one place", [
  model,
  leaf(runCommand.pipe(Command.provide(appLayer))),
  leaf(chatCommand.pipe(Command.provide(appLayer))),
  leaf(embedCommand.pipe(Command.provide(appLayer))),
  leaf(rerankCommand.pipe(Command.provide(appLayer))),
  leaf(serveCommand.pipe(Command.provide(embeddedLayer))),
  // builds its own stack: a running server's, or this process's with the server it starts
  leaf(launchCommand),
  leaf(psCommand.pipe(Command.provide(appLayer))),
  leaf(stopCommand.pipe(Command.provide(appLayer))),
  config
])

/** Runs the tree on an argv (node, script, args…). */
export const cli = Command.run(commandTree.command, { name: "llmspell", version: VERSION })

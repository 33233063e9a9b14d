/**
 * Build step (scripts/build.mjs): renders the help of every command path from the command tree, plain
 * and coloured, as JSON on stdout (dist/help.json), so the executable answers `--help` without
 * loading the CLI (src/cli/launch.ts). The same `renderHelp` the CLI uses; test/cli-help.test.ts
 * checks the file against it.
 */
import { type CommandNode, commandTree } from "../src/cli/Cli.js"
import { renderHelp } from "../src/cli/Help.js"

const texts: Record<string, { plain: string; color: string }> = {}
const visit = (path: ReadonlyArray<CommandNode>): void => {
  texts[path.slice(1).map((n) => n.name).join(" ")] = {
    plain: renderHelp(path, { color: false }),
    color: renderHelp(path, { color: true })
  }
  for (const child of path[path.length - 1]!.children) visit([...path, child])
}
visit([commandTree])
process.stdout.write(JSON.stringify(texts))

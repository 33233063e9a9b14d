/**
 * `--help` and the subcommand check. @effect/cli's help is always ANSI-coloured, repeats type
 * boilerplate under every option ("A true or false value.") and prints subcommand usage as
 * `$ status`; it has no hook for any of that. So the CLI finds the command itself, takes the
 * sections @effect/cli derives from the declared options (`Command.getHelp`, `Command.getUsage`:
 * the one source of truth), and renders them as plain text, with bold headings only when stdout
 * is a colour terminal. The global flags come from `GLOBAL_FLAGS`, the table the parser reads.
 *
 * Usage lines are rendered here from @effect/cli's Usage tree so that they read as help: a value
 * is a `<placeholder>` (the command's pseudo-name, else the option's name — never the type word
 * `text`, `integer` or `redacted`), choices are `a|b`, and a repeatable option or argument is
 * shown optional (`[--cors-origin <origin>]...`: @effect/cli's `repeated` takes zero or more, and
 * its Usage does not say). A command's alias that is also a global flag (serve's old `--host`)
 * still parses but is not shown: one flag, one meaning in help.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import type * as Usage from "@effect/cli/Usage"
import * as Option from "effect/Option"
import type { CommandNode } from "./Cli.js"
import { GLOBAL_FLAGS } from "./GlobalOptions.js"

const config = CliConfig.make({ showBuiltIns: false })

/** The plain text of a span. */
const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    case "Highlight":
    case "Strong":
    case "Weak":
      return spanText(span.value)
  }
}

// Type descriptions @effect/cli adds to every option and argument; the usage line already says it.
const BOILERPLATE = [
  /^A true or false value\.$/,
  /^A user-defined piece of text( that is confidential)?\.$/,
  /^An integer\.$/,
  /^A floating point number\.$/,
  /^A date without a time-zone/,
  /^This setting is optional\.$/,
  /^One of the following: /,
  /^An? (file|directory|path)/i
]
const isBoilerplate = (text: string) => BOILERPLATE.some((re) => re.test(text))

interface Section {
  readonly title: string
  readonly lines: Array<string>
}

/** The paragraphs of a doc, in order, without boilerplate. */
const paragraphs = (doc: HelpDoc.HelpDoc): Array<string> => {
  switch (doc._tag) {
    case "Paragraph": {
      const text = spanText(doc.value).trim()
      return text.length > 0 && !isBoilerplate(text) ? [text] : []
    }
    case "Sequence":
      return [...paragraphs(doc.left), ...paragraphs(doc.right)]
    case "Enumeration":
      return doc.elements.flatMap(paragraphs)
    case "DescriptionList":
      return doc.definitions.flatMap(([, d]) => paragraphs(d))
    default:
      return []
  }
}

/** Splits @effect/cli's help doc into titled sections of lines. */
const sections = (doc: HelpDoc.HelpDoc): Array<Section> => {
  const out: Array<Section> = []
  const visit = (d: HelpDoc.HelpDoc): void => {
    switch (d._tag) {
      case "Header":
        out.push({ title: spanText(d.value).trim(), lines: [] })
        return
      case "Sequence":
        visit(d.left)
        visit(d.right)
        return
      case "DescriptionList": {
        const current = out[out.length - 1]
        for (const [term, description] of d.definitions) {
          const name = spanText(term).trim().replace(/^\((.*)\)$/, "$1")
          const text = paragraphs(description)
          current?.lines.push(`  ${name}`, ...text.map((t) => `      ${t}`))
        }
        return
      }
      case "Paragraph":
      case "Enumeration":
        out[out.length - 1]?.lines.push(...paragraphs(d))
        return
      default:
        return
    }
  }
  visit(doc)
  return out
}

// The words @effect/cli puts where a value goes when the command gave no pseudo-name.
const TYPE_WORDS = new Set(["text", "integer", "float", "redacted", "secret", "date", "boolean", "path", "file", "directory"])
const GLOBAL_NAMES = new Set(GLOBAL_FLAGS.map((f) => f.name))

/** An option's names as shown: an alias that is a global flag is left out (it would read as the global one). */
const shownNames = (names: ReadonlyArray<string>): ReadonlyArray<string> => {
  const kept = names.filter((n) => !GLOBAL_NAMES.has(n))
  return kept.length > 0 ? kept : names
}

/** `--model <model>`, `--backend a|b`, `--port <port>` for a named option; an argument as @effect/cli names it (`<spec>`). */
const namedText = (named: Usage.Named, separator: string): string => {
  const names = shownNames(named.names)
  const long = names.find((n) => n.startsWith("--"))?.slice(2) ?? names[0]!.replace(/^-+/, "")
  const value = Option.match(named.acceptedValues, {
    onNone: () => "",
    onSome: (v) => (v.includes(" | ") ? ` ${v.split(" | ").join("|")}` : TYPE_WORDS.has(v) ? ` <${long}>` : ` <${v.replace(/^<|>$/g, "")}>`)
  })
  return `${names.join(separator)}${value}`
}

const isOptionUsage = (usage: Usage.Usage): boolean =>
  usage._tag === "Named" ? usage.names.some((n) => n.startsWith("-")) : usage._tag === "Optional" ? isOptionUsage(usage.usage) : false

/** A usage tree as one line. */
const usageText = (usage: Usage.Usage): string => {
  switch (usage._tag) {
    case "Empty":
      return ""
    case "Mixed":
      return "<command>"
    case "Named":
      return namedText(usage, "|")
    case "Optional": {
      const inner = usageText(usage.usage)
      return inner === "" ? "" : usage.usage._tag === "Optional" ? inner : `[${inner}]`
    }
    case "Repeated": {
      const inner = usageText(usage.usage._tag === "Optional" ? usage.usage.usage : usage.usage)
      return inner === "" ? "" : isOptionUsage(usage.usage) ? `[${inner}]...` : `[${inner}...]`
    }
    case "Alternation":
      return [usageText(usage.left), usageText(usage.right)].filter((t) => t !== "").join(" | ")
    case "Concat":
      return [usageText(usage.left), usageText(usage.right)].filter((t) => t !== "").join(" ")
  }
}

/** Every named option of a usage tree, by each of its names: how its Options entry is titled. */
const optionTerms = (usage: Usage.Usage, into: Map<string, string> = new Map()): Map<string, string> => {
  switch (usage._tag) {
    case "Named":
      if (usage.names.some((n) => n.startsWith("-"))) for (const name of usage.names) into.set(name, namedText(usage, ", "))
      return into
    case "Optional":
    case "Repeated":
      return optionTerms(usage.usage, into)
    case "Alternation":
    case "Concat":
      optionTerms(usage.left, into)
      return optionTerms(usage.right, into)
    default:
      return into
  }
}

/** A command's usage line, as help shows it (`llmspell serve [--listen <address>] …`). */
export const usageLine = (path: ReadonlyArray<CommandNode>): string => {
  const prefix = path.slice(0, -1).map((n) => n.name).join(" ")
  return `${prefix} ${usageText(Command.getUsage(path[path.length - 1]!.command))}`.trim()
}

/** A command's one-line description. */
export const describeCommand = (node: CommandNode): string =>
  sections(Command.getHelp(node.command, config)).find((s) => s.title === "DESCRIPTION")?.lines.join(" ") ?? ""

const globalFlagLines = (): Array<string> => {
  const terms = GLOBAL_FLAGS.map((f) => (f.value !== undefined ? `${f.name} <${f.value}>` : f.name))
  const width = terms.reduce((w, t) => (t.length > w ? t.length : w), 0)
  return [
    ...GLOBAL_FLAGS.map((f, i) => `  ${terms[i]!.padEnd(width)}  ${f.description}`),
    `  ${"-h, --help".padEnd(width)}  show help for a command`,
    `  ${"--version".padEnd(width)}  print the version`
  ]
}

/** The help text of a command, found by its path from the root (`["llmspell", "model", "status"]`). */
export const renderHelp = (path: ReadonlyArray<CommandNode>, options: { readonly color: boolean }): string => {
  const node = path[path.length - 1]!
  const name = path.map((n) => n.name).join(" ")
  const heading = (title: string) => (options.color ? `\x1b[1m${title}\x1b[0m` : title)
  const parts: Array<Array<string>> = [[`${name}: ${describeCommand(node)}`]]
  if (node.children.length > 0) {
    // Every command below this one, by its full path (`model status`), as a user types it.
    const leaves: Array<readonly [string, CommandNode]> = []
    const collect = (n: CommandNode, at: string): void => {
      if (n.children.length === 0) leaves.push([at, n])
      for (const c of n.children) collect(c, at.length > 0 ? `${at} ${c.name}` : c.name)
    }
    collect(node, "")
    const width = leaves.reduce((w, [at]) => (at.length > w ? at.length : w), 0)
    parts.push([heading("Usage:"), `  ${name} <command> [options]`])
    parts.push([heading("Commands:"), ...leaves.map(([at, c]) => `  ${at.padEnd(width)}  ${describeCommand(c)}`)])
    parts.push([`Run \`${name} <command> --help\` for the options of a command.`])
  } else {
    parts.push([heading("Usage:"), `  ${usageLine(path)}`])
    const terms = optionTerms(Command.getUsage(node.command))
    for (const section of sections(Command.getHelp(node.command, config))) {
      if (section.title === "DESCRIPTION" || section.lines.length === 0) continue
      const title = section.title.charAt(0) + section.title.slice(1).toLowerCase()
      // an option's title from the usage tree (`-m, --model <model>`); @effect/cli's says `--model text`
      const lines = section.lines.map((line) => {
        const name = /^ {2}(?:-\w, )?(--[\w-]+)/.exec(line)?.[1]
        const term = name !== undefined ? terms.get(name) : undefined
        return term !== undefined ? `  ${term}` : line
      })
      parts.push([heading(`${title}:`), ...lines])
    }
  }
  parts.push([heading("Global options (anywhere on the command line):"), ...globalFlagLines()])
  return `${parts.map((p) => p.join("\n")).join("\n\n")}\n`
}

/** Where argv leads in the tree: help for a command, a missing or unknown subcommand, or a command to run. */
export type Located =
  | { readonly _tag: "Help"; readonly path: ReadonlyArray<CommandNode> }
  | { readonly _tag: "MissingSubcommand"; readonly path: ReadonlyArray<CommandNode> }
  | { readonly _tag: "UnknownSubcommand"; readonly path: ReadonlyArray<CommandNode>; readonly token: string }
  | { readonly _tag: "Run"; readonly path: ReadonlyArray<CommandNode> }

const HELP_FLAGS = new Set(["-h", "--help"])

/** Walks the arguments (global flags already removed) down the tree. */
export const locate = (root: CommandNode, args: ReadonlyArray<string>): Located => {
  const path: Array<CommandNode> = [root]
  let i = 0
  while (path[path.length - 1]!.children.length > 0) {
    const node = path[path.length - 1]!
    const token = args[i]
    if (token === undefined) return { _tag: "MissingSubcommand", path }
    if (HELP_FLAGS.has(token)) return { _tag: "Help", path }
    // Other flags here (`--version`, `--completions`, a typo) are @effect/cli's to answer.
    if (token.startsWith("-")) return { _tag: "Run", path }
    const child = node.children.find((c) => c.name === token)
    if (child === undefined) return { _tag: "UnknownSubcommand", path, token }
    path.push(child)
    i++
  }
  for (; i < args.length; i++) {
    if (args[i] === "--") break
    if (HELP_FLAGS.has(args[i]!)) return { _tag: "Help", path }
  }
  return { _tag: "Run", path }
}

const distance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

/** The message and hint for a missing or unknown subcommand: the commands there are, and the closest one. */
export const subcommandProblem = (
  located: Extract<Located, { readonly _tag: "MissingSubcommand" | "UnknownSubcommand" }>
): { readonly message: string; readonly hint: string } => {
  const node = located.path[located.path.length - 1]!
  const name = located.path.map((n) => n.name).join(" ")
  const names = node.children.map((c) => c.name)
  if (located._tag === "MissingSubcommand") {
    return { message: `\`${name}\` needs a command: ${names.join(", ")}`, hint: `see \`${name} --help\`` }
  }
  const closest = names
    .map((n) => ({ n, d: distance(located.token, n) }))
    .filter(({ d, n }) => d <= 2 || n.startsWith(located.token))
    .sort((a, b) => a.d - b.d)[0]
  return {
    message: `\`${name}\` has no command '${located.token}'; its commands are ${names.join(", ")}`,
    hint: closest !== undefined ? `did you mean \`${name} ${closest.n}\`?` : `see \`${name} --help\``
  }
}

/**
 * Reads the fenced code blocks of a Markdown file, each with the `<!-- readme-test: … -->` tag on the
 * line just above its fence (how test/readme.test.ts runs it), and splits shell blocks into the
 * commands they contain. Pure text processing: no I/O.
 */

/** One fenced block. */
export interface CodeBlock {
  /** The fence's info string, lower-cased (`ts`, `sh`, …; empty when none). */
  readonly lang: string
  readonly code: string
  /** 1-based line of the opening fence. */
  readonly line: number
  /** The nearest heading above the block. */
  readonly section: string
  /** The tag comment's text after `readme-test:`, when the line above the fence is one. */
  readonly tag: string | undefined
}

const TAG = /^<!--\s*readme-test:\s*(.*?)\s*-->$/

/** Every fenced block of `markdown`, in order. */
export const codeBlocks = (markdown: string): ReadonlyArray<CodeBlock> => {
  const lines = markdown.split("\n")
  const blocks: Array<CodeBlock> = []
  let section = ""
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const heading = /^#{1,6}\s+(.*)$/.exec(line)
    if (heading) section = heading[1]!
    const fence = /^(```+)\s*([^\s`]*)/.exec(line)
    if (!fence) continue
    const close = lines.findIndex((l, j) => j > i && l.startsWith(fence[1]!) && l.trim() === fence[1])
    if (close < 0) throw new Error(`line ${i + 1}: a code fence that is never closed`)
    const above = i > 0 ? TAG.exec(lines[i - 1]!.trim()) : null
    blocks.push({
      lang: fence[2]!.toLowerCase(),
      code: lines.slice(i + 1, close).join("\n") + "\n",
      line: i + 1,
      section,
      tag: above ? above[1] : undefined
    })
    i = close
  }
  return blocks
}

/** One simple command of a shell block: environment assignments, then the words. */
export interface ShellCommand {
  readonly env: Readonly<Record<string, string>>
  readonly argv: ReadonlyArray<string>
  /** The command as written, for messages. */
  readonly text: string
}

/**
 * Splits a README shell block into commands: one per line and per `&&`, `#` comments dropped,
 * single and double quotes honoured. Anything fancier (pipes, redirections, `$(…)`, `;`, `||`)
 * is refused, so a block the test cannot run as written fails instead of being half-run.
 */
export const shellCommands = (code: string): ReadonlyArray<ShellCommand> => {
  const commands: Array<ShellCommand> = []
  for (const rawLine of code.split("\n")) {
    const words: Array<Array<string>> = [[]]
    let word: string | undefined
    let quote: "'" | "\"" | undefined
    const flush = () => {
      if (word !== undefined) words.at(-1)!.push(word)
      word = undefined
    }
    for (let i = 0; i < rawLine.length; i++) {
      const c = rawLine[i]!
      if (quote !== undefined) {
        if (c === quote) quote = undefined
        else word = (word ?? "") + c
        continue
      }
      if (c === "'" || c === "\"") {
        quote = c
        word ??= ""
      } else if (c === " " || c === "\t") {
        flush()
      } else if (c === "#" && word === undefined) {
        break
      } else if (c === "&" && rawLine[i + 1] === "&") {
        flush()
        words.push([])
        i++
      } else if ("|;<>$`\\(){}".includes(c)) {
        throw new Error(`unsupported shell syntax ${JSON.stringify(c)} in: ${rawLine}`)
      } else {
        word = (word ?? "") + c
      }
    }
    if (quote !== undefined) throw new Error(`unterminated quote in: ${rawLine}`)
    flush()
    for (const parts of words) {
      if (parts.length === 0) {
        if (words.length > 1) throw new Error(`empty command around && in: ${rawLine}`)
        continue
      }
      const env: Record<string, string> = {}
      let k = 0
      for (; k < parts.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(parts[k]!); k++) {
        const eq = parts[k]!.indexOf("=")
        env[parts[k]!.slice(0, eq)] = parts[k]!.slice(eq + 1)
      }
      if (k === parts.length) throw new Error(`an assignment without a command in: ${rawLine}`)
      commands.push({ env, argv: parts.slice(k), text: parts.join(" ") })
    }
  }
  return commands
}

/**
 * A small Markdown reader for model answers: paragraphs, headings, fenced and indented code,
 * lists, block quotes, rules, and inline code, bold, italics and links. It produces a tree of plain
 * nodes whose text the view renders as text — never as HTML — so `<script>` or `<img onerror>` in
 * an answer shows as those characters. Links keep only http(s) and mailto targets; anything else
 * (`javascript:`, `data:`) stays text. Pure.
 */

/** An inline node. */
export type Inline =
  | string
  | { readonly t: "code"; readonly text: string }
  | { readonly t: "strong" | "em"; readonly children: ReadonlyArray<Inline> }
  | { readonly t: "link"; readonly href: string; readonly children: ReadonlyArray<Inline> }

/** A block node. */
export type Block =
  | { readonly t: "p"; readonly children: ReadonlyArray<Inline> }
  | { readonly t: "h"; readonly level: 1 | 2 | 3 | 4 | 5 | 6; readonly children: ReadonlyArray<Inline> }
  | { readonly t: "pre"; readonly lang: string | undefined; readonly text: string }
  | { readonly t: "list"; readonly ordered: boolean; readonly start: number; readonly items: ReadonlyArray<ReadonlyArray<Block>> }
  | { readonly t: "quote"; readonly children: ReadonlyArray<Block> }
  | { readonly t: "hr" }

/** Only these link targets become links. */
export const safeHref = (href: string): string | undefined => {
  const value = href.trim()
  return /^(https?:\/\/|mailto:)/i.test(value) && !/[\s<>"]/.test(value) ? value : undefined
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)?.*$/
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/
const BULLET = /^( {0,3})([-*+])\s+(.*)$/
const ORDERED = /^( {0,3})(\d{1,9})[.)]\s+(.*)$/
const QUOTE = /^ {0,3}>\s?(.*)$/

/** Parses Markdown text into blocks. */
export const parseMarkdown = (text: string): Array<Block> => parseBlocks(text.replace(/\r\n?/g, "\n").split("\n"), 0)

const parseBlocks = (lines: ReadonlyArray<string>, depth: number): Array<Block> => {
  const blocks: Array<Block> = []
  let paragraph: Array<string> = []
  const flush = () => {
    if (paragraph.length > 0) blocks.push({ t: "p", children: parseInline(paragraph.join("\n")) })
    paragraph = []
  }
  let i = 0
  while (i < lines.length) {
    const line = lines[i]!
    const fence = FENCE.exec(line)
    if (fence !== null) {
      flush()
      const marker = fence[1]!
      const body: Array<string> = []
      i++
      while (i < lines.length && !lines[i]!.trimStart().startsWith(marker)) body.push(lines[i++]!)
      // the closing fence; an unclosed one (an answer still streaming) runs to the end
      if (i >= lines.length) while (body.length > 0 && body[body.length - 1]!.trim() === "") body.pop()
      i++
      blocks.push({ t: "pre", lang: fence[2] || undefined, text: body.join("\n") })
      continue
    }
    if (line.trim() === "") {
      flush()
      i++
      continue
    }
    const heading = HEADING.exec(line)
    if (heading !== null) {
      flush()
      blocks.push({ t: "h", level: heading[1]!.length as 1 | 2 | 3 | 4 | 5 | 6, children: parseInline(heading[2]!) })
      i++
      continue
    }
    if (RULE.test(line)) {
      flush()
      blocks.push({ t: "hr" })
      i++
      continue
    }
    if (paragraph.length === 0 && /^( {4}|\t)/.test(line)) {
      const body: Array<string> = []
      while (i < lines.length && (/^( {4}|\t)/.test(lines[i]!) || lines[i]!.trim() === "")) body.push(lines[i++]!.replace(/^( {4}|\t)/, ""))
      while (body.length > 0 && body[body.length - 1]!.trim() === "") body.pop()
      blocks.push({ t: "pre", lang: undefined, text: body.join("\n") })
      continue
    }
    if (QUOTE.test(line) && depth < 8) {
      flush()
      const body: Array<string> = []
      while (i < lines.length && QUOTE.test(lines[i]!)) body.push(QUOTE.exec(lines[i++]!)![1]!)
      blocks.push({ t: "quote", children: parseBlocks(body, depth + 1) })
      continue
    }
    const bullet = BULLET.exec(line)
    const ordered = ORDERED.exec(line)
    if ((bullet !== null || ordered !== null) && depth < 8) {
      flush()
      const isOrdered = bullet === null
      const pattern = isOrdered ? ORDERED : BULLET
      const items: Array<Array<string>> = []
      while (i < lines.length) {
        const item = pattern.exec(lines[i]!)
        if (item !== null) {
          items.push([item[3]!])
          i++
        } else if (lines[i]!.trim() !== "" && /^\s{2,}/.test(lines[i]!) && items.length > 0) {
          items[items.length - 1]!.push(lines[i++]!.replace(/^\s{2,4}/, ""))
        } else {
          break
        }
      }
      blocks.push({
        t: "list",
        ordered: isOrdered,
        start: isOrdered ? Number(ordered![2]) : 1,
        items: items.map((body) => parseBlocks(body, depth + 1))
      })
      continue
    }
    paragraph.push(line)
    i++
  }
  flush()
  return blocks
}

const OPENS = /[\s(["']/
const CLOSES = /[\s.,;:!?)\]"']/

/** Parses inline Markdown: code spans first (their content is literal), then links, bold, italics. */
export const parseInline = (text: string): Array<Inline> => {
  const out: Array<Inline> = []
  let plain = ""
  const push = (node: Inline) => {
    if (plain !== "") out.push(plain)
    plain = ""
    out.push(node)
  }
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === "\\" && i + 1 < text.length && /[\\`*_[\]()#+\-.!<>]/.test(text[i + 1]!)) {
      plain += text[i + 1]
      i += 2
      continue
    }
    if (c === "`") {
      const run = /^`+/.exec(text.slice(i))![0]
      const end = text.indexOf(run, i + run.length)
      if (end > 0) {
        push({ t: "code", text: text.slice(i + run.length, end).replace(/^ (.*) $/, "$1") })
        i = end + run.length
        continue
      }
    }
    if (c === "[") {
      const link = /^\[([^\]\n]*)\]\(([^()\s]*)\)/.exec(text.slice(i))
      if (link !== null) {
        const href = safeHref(link[2]!)
        if (href !== undefined) push({ t: "link", href, children: parseInline(link[1]!) })
        else plain += link[0]
        i += link[0].length
        continue
      }
    }
    if ((c === "*" || c === "_") && text[i + 1] === c) {
      const end = text.indexOf(c + c, i + 2)
      // `__` only around a word, so `window.__name` and `a__b__c` stay as they are (CommonMark's flanking rule, simplified)
      const around = c === "*" || ((i === 0 || OPENS.test(text[i - 1]!)) && (end + 2 >= text.length || CLOSES.test(text[end + 2]!)))
      if (around && end > i + 2 && text[i + 2] !== " " && text[end - 1] !== " ") {
        push({ t: "strong", children: parseInline(text.slice(i + 2, end)) })
        i = end + 2
        continue
      }
    }
    if ((c === "*" || c === "_") && text[i + 1] !== undefined && text[i + 1] !== " " && text[i + 1] !== c) {
      // `_` only at a word boundary, so snake_case names stay as they are
      const boundary = c === "*" || i === 0 || OPENS.test(text[i - 1]!)
      const end = text.indexOf(c, i + 1)
      if (boundary && end > i + 1 && text[end - 1] !== " " && (c === "*" || end + 1 >= text.length || CLOSES.test(text[end + 1]!))) {
        push({ t: "em", children: parseInline(text.slice(i + 1, end)) })
        i = end + 1
        continue
      }
    }
    plain += c
    i++
  }
  if (plain !== "") out.push(plain)
  return out
}

/**
 * What a model's Jinja chat template (`tokenizer.chat_template`) says it can do, read the way
 * node-llama-cpp reads it when it runs the model, so `model list`/`model info` agree with what a
 * request then gets: a template that takes a tool list (the `tools` variable used in the template's
 * code — not in a comment, not in a string the template prints), and one that marks thought
 * segments with a pair node-llama-cpp recognises (its `extractSegmentSettingsFromTokenizerAndChatTemplate`:
 * `<think>`…`</think>`, `[THINK]`…`[/THINK]`, …; both halves present, comments aside).
 * `test/capabilitiesAgreement.test.ts` checks these against node-llama-cpp's resolved wrapper.
 * Pure, one linear pass, never throws: templates come from files anyone can write.
 */

/** The thought-segment markers node-llama-cpp 3.x looks for in a template (prefix, suffix). */
export const THOUGHT_MARKERS: ReadonlyArray<readonly [string, string]> = [
  ["<think>", "</think>"],
  ["<thought>", "</thought>"],
  ["[THINK]", "[/THINK]"],
  ["<|START_THINKING|>", "<|END_THINKING|>"],
  ["<|begin_of_thought|>", "<|end_of_thought|>"]
]

/** A template split by what Jinja makes of it. */
export interface TemplateParts {
  /** The expressions and statements (`{{ … }}`, `{% … %}`) with their string literals left out. */
  readonly code: string
  /** The whole template without its comments (`{# … #}`): what can reach the prompt, and the code. */
  readonly uncommented: string
}

/**
 * One pass over a Jinja template: comments dropped, code blocks collected without their string
 * literals (quotes with backslash escapes), `{% raw %}` bodies taken as text. An unclosed block or
 * string runs to the end, as a lenient reader would take it.
 */
export const templateParts = (template: string): TemplateParts => {
  const code: Array<string> = []
  const uncommented: Array<string> = []
  const n = template.length
  let i = 0
  let textFrom = 0
  const flushText = (to: number) => {
    if (to > textFrom) uncommented.push(template.slice(textFrom, to))
  }
  while (i < n) {
    const open = template.indexOf("{", i)
    if (open < 0 || open + 1 >= n) break
    const kind = template[open + 1]
    if (kind !== "#" && kind !== "{" && kind !== "%") {
      i = open + 1
      continue
    }
    flushText(open)
    if (kind === "#") {
      const end = template.indexOf("#}", open + 2)
      i = end < 0 ? n : end + 2
      textFrom = i
      continue
    }
    const close = kind === "{" ? "}}" : "%}"
    let j = open + 2
    let codeFrom = j
    let end = n
    while (j < n) {
      const c = template[j]
      if (c === "'" || c === "\"") {
        code.push(template.slice(codeFrom, j), " ")
        j++
        while (j < n && template[j] !== c) j += template[j] === "\\" ? 2 : 1
        j++
        codeFrom = j
        continue
      }
      if (template.startsWith(close, j)) {
        end = j
        break
      }
      j++
    }
    const block = template.slice(codeFrom, Math.min(end, n))
    code.push(block, "\n")
    const after = end >= n ? n : end + 2
    uncommented.push(template.slice(open, after))
    i = after
    textFrom = after
    // `{% raw %}` … `{% endraw %}`: what lies between is text, not code
    if (kind === "%" && /^\s*-?\s*raw\s*-?\s*$/.test(template.slice(open + 2, end))) {
      const endraw = /\{%-?\s*endraw\s*-?%\}/g
      endraw.lastIndex = after
      const found = endraw.exec(template)
      const stop = found === null ? n : found.index
      uncommented.push(template.slice(after, stop))
      i = found === null ? n : found.index
      textFrom = i
    }
  }
  flushText(n)
  return { code: code.join(""), uncommented: uncommented.join("") }
}

/** The template takes a tool list: its code uses the `tools` variable (`{% if tools %}`, `tools | tojson`). */
export const takesTools = (parts: TemplateParts): boolean => /(?<![\w.])tools\b/.test(parts.code)

/** The template marks thought segments with a pair node-llama-cpp knows, both halves outside comments. */
export const marksThoughts = (parts: TemplateParts): boolean =>
  THOUGHT_MARKERS.some(([prefix, suffix]) => parts.uncommented.includes(prefix) && parts.uncommented.includes(suffix))

/**
 * What a line typed into `llmspell chat` means, as pure functions: the session's slash commands,
 * `"""` blocks spanning lines (as Ollama's CLI takes them), and the `/set` settings with the same
 * ranges as a generation request (`REQUEST_LIMITS`). No I/O: `commands/chat.ts` reads the lines and
 * acts on what these return.
 */
import { REQUEST_LIMITS } from "../domain/Types.js"

/** One input of the session: a message to send, or a command. */
export type ChatInput =
  | { readonly _tag: "Message"; readonly text: string }
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Clear" }
  /** `text` undefined: show the system prompt. */
  | { readonly _tag: "System"; readonly text: string | undefined }
  /** `name` undefined: show the settings. */
  | { readonly _tag: "Set"; readonly name: string | undefined; readonly value: string | undefined }
  | { readonly _tag: "Unset"; readonly name: string | undefined }
  | { readonly _tag: "Save"; readonly file: string | undefined }
  /** `file` undefined: show the images waiting for the next message. */
  | { readonly _tag: "Image"; readonly file: string | undefined }
  | { readonly _tag: "Help" }
  | { readonly _tag: "Bye" }
  | { readonly _tag: "Unknown"; readonly command: string }

const COMMANDS: Record<string, (rest: string) => ChatInput> = {
  "/clear": () => ({ _tag: "Clear" }),
  "/system": (rest) => ({ _tag: "System", text: rest.length > 0 ? rest : undefined }),
  "/set": (rest) => {
    const space = rest.search(/\s/)
    return space < 0
      ? { _tag: "Set", name: rest.length > 0 ? rest : undefined, value: undefined }
      : { _tag: "Set", name: rest.slice(0, space), value: rest.slice(space).trim() }
  },
  "/unset": (rest) => ({ _tag: "Unset", name: rest.length > 0 ? rest : undefined }),
  "/save": (rest) => ({ _tag: "Save", file: rest.length > 0 ? rest : undefined }),
  "/image": (rest) => ({ _tag: "Image", file: rest.length > 0 ? rest : undefined }),
  "/help": () => ({ _tag: "Help" }),
  "/?": () => ({ _tag: "Help" }),
  "/bye": () => ({ _tag: "Bye" }),
  "/exit": () => ({ _tag: "Bye" })
}

/**
 * What a (whole, `"""` blocks joined) input means. A known `/command` is a command; another
 * `/word` is a typo on a terminal (`Unknown`) but a message in line mode, where lines come from a
 * script and may well start with a path. `/etc/hosts …` (a second `/` in the first word) is always
 * a message.
 */
export const parseChatInput = (input: string, options: { readonly unknownCommandIsMessage: boolean }): ChatInput => {
  const text = input.trim()
  if (text.length === 0) return { _tag: "Empty" }
  const word = /^\/\S*/.exec(text)?.[0]
  if (word === undefined) return { _tag: "Message", text }
  const command = COMMANDS[word.toLowerCase()]
  if (command !== undefined) return command(text.slice(word.length).trim())
  if (/^\/[A-Za-z?-]+$/.test(word) && !options.unknownCommandIsMessage) return { _tag: "Unknown", command: word }
  return { _tag: "Message", text }
}

const QUOTES = `"""`

/** Where a line leaves a `"""` block: finished (the input it completes) or still open (its lines so far). */
export type BlockState =
  | { readonly _tag: "Complete"; readonly input: string }
  | { readonly _tag: "Open"; readonly lines: ReadonlyArray<string> }

/**
 * Feeds one line. Outside a block, a line starting with `"""` (or `/system """`) opens one unless
 * it also ends with `"""`; inside, the line ending with `"""` closes it. The quotes are removed and
 * the lines joined with newlines.
 */
export const feedLine = (open: ReadonlyArray<string> | undefined, line: string): BlockState => {
  const closes = (text: string) => text.trimEnd().endsWith(QUOTES)
  const beforeClose = (text: string) => text.trimEnd().slice(0, -QUOTES.length)
  if (open !== undefined) {
    return closes(line)
      ? { _tag: "Complete", input: [...open, beforeClose(line)].join("\n") }
      : { _tag: "Open", lines: [...open, line] }
  }
  const at = line.indexOf(QUOTES)
  const prefix = at < 0 ? undefined : line.slice(0, at)
  if (prefix === undefined || !(prefix.trim() === "" || /^\s*\/system\s+$/i.test(prefix))) return { _tag: "Complete", input: line }
  const rest = line.slice(at + QUOTES.length)
  if (rest.trim().length >= QUOTES.length && closes(rest)) return { _tag: "Complete", input: prefix + beforeClose(rest) }
  return { _tag: "Open", lines: [prefix + rest] }
}

/** The settings `/set` changes, by the name typed, with the request field each sets. */
export const SETTINGS = {
  temperature: "temperature",
  seed: "seed",
  "max-tokens": "maxTokens",
  "top-p": "topP",
  "top-k": "topK",
  think: "reasoning"
} as const

/** A setting's name as typed. */
export type SettingName = keyof typeof SETTINGS
/** The request fields the settings set. */
export type SettingField = (typeof SETTINGS)[SettingName]

const isSetting = (name: string): name is SettingName => Object.hasOwn(SETTINGS, name)

/** The names `/set` takes, for help and errors. */
export const settingNames = Object.keys(SETTINGS).join(", ")

/** A `/set NAME VALUE` checked: the field and its value, or what is wrong. */
export const parseSetting = (
  name: string,
  value: string
): { readonly _tag: "Ok"; readonly field: SettingField; readonly value: number | boolean } | { readonly _tag: "Invalid"; readonly message: string } => {
  const key = name.toLowerCase().replace(/_/g, "-")
  if (!isSetting(key)) return { _tag: "Invalid", message: `unknown setting ${JSON.stringify(name)}: /set takes ${settingNames}` }
  const field = SETTINGS[key]
  if (field === "reasoning") {
    const v = value.toLowerCase()
    if (["on", "true", "yes", "1"].includes(v)) return { _tag: "Ok", field, value: true }
    if (["off", "false", "no", "0"].includes(v)) return { _tag: "Ok", field, value: false }
    return { _tag: "Invalid", message: `think is on or off; got ${JSON.stringify(value)}` }
  }
  const number = value.trim() === "" ? Number.NaN : Number(value)
  const limit = REQUEST_LIMITS[field]
  if (!limit.check(number)) return { _tag: "Invalid", message: `${key} must be ${limit.allowed}; got ${JSON.stringify(value)}` }
  return { _tag: "Ok", field, value: number }
}

/** A setting name for `/unset`: a setting's field, or `system`. */
export const unsetField = (name: string): SettingField | "system" | undefined => {
  const key = name.toLowerCase().replace(/_/g, "-")
  return key === "system" ? "system" : isSetting(key) ? SETTINGS[key] : undefined
}

/** The text of `/help`. */
export const CHAT_HELP = [
  "Type a message and press Enter; the answer streams. Commands:",
  "  /clear                 forget the conversation (the system prompt and settings stay)",
  "  /system TEXT           set the system prompt (/system alone shows it)",
  `  /set NAME VALUE        change a setting: ${settingNames} (/set alone shows them)`,
  "  /unset NAME            back to the model's default (or no system prompt: /unset system)",
  "  /save FILE             write the conversation as a JSON transcript (load it with --load FILE)",
  "  /image FILE            attach an image (PNG, JPEG, GIF, WebP) to your next message (Ollama vision and cloud models)",
  "  /help, /?              this help",
  "  /bye, /exit            end the session (or Ctrl-D)",
  `Multi-line input: start with """ and end with """ (also /system """ … """).`,
  "Ctrl-C stops the answer being written; the session goes on."
].join("\n")

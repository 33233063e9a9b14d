/**
 * Model names as clients send them, mapped to specs: `[serve.aliases]` in the config
 * (`"claude-*" = "qwen3-coder@gguf"`). Agents name their own models (`claude-sonnet-4-6`, a
 * "small fast" one for background work); an alias lets `llmspell serve` answer them with a local
 * model. A name is an exact alias, or a glob where `*` stands for any run of characters and `?` for
 * one. An exact alias wins; then the globs in the order the config lists them. A glob matches
 * whatever it matches, specs included: write `claude-*`, not `*`. Pure.
 */

/** One `[serve.aliases]` entry: the name (or glob) a client sends, and the spec it means. */
export interface ModelAlias {
  readonly name: string
  readonly spec: string
}

/** True when the name is a glob (`*` or `?` in it). */
export const isGlob = (name: string): boolean => /[*?]/.test(name)

const globCache = new Map<string, RegExp>()

/** The glob as a whole-string regular expression. */
const globPattern = (glob: string): RegExp => {
  let pattern = globCache.get(glob)
  if (pattern === undefined) {
    const source = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[\\s\\S]*").replace(/\?/g, "[\\s\\S]")
    pattern = new RegExp(`^${source}$`)
    globCache.set(glob, pattern)
  }
  return pattern
}

/** The alias a requested name matches, if any: the exact one, else the first glob that matches. */
export const findAlias = (aliases: ReadonlyArray<ModelAlias>, requested: string): ModelAlias | undefined =>
  aliases.find((a) => !isGlob(a.name) && a.name === requested) ??
    aliases.find((a) => isGlob(a.name) && globPattern(a.name).test(requested))

/** The spec a requested name stands for: its alias's spec, or the name itself. */
export const resolveAlias = (aliases: ReadonlyArray<ModelAlias>, requested: string): string =>
  findAlias(aliases, requested)?.spec ?? requested

/** What a model name missing from a server tells its client to do, in config terms (no CLI command). */
export const aliasAdvice = (requested: string): string =>
  `to serve it with a model of this server, map the name in llmspell's config: [serve.aliases] ${
    JSON.stringify(requested)
  } = "<spec>" (a glob works too, e.g. "claude-*")`

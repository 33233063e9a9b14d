/**
 * The configuration while it is being resolved: every value in a slot that remembers where it came
 * from (`default`, the file, `env NAME`, `flag --name`), so `config show` can say it and every
 * problem can name its source. The document, the environment and the flags write slots in that
 * order (Document.ts, Overlay.ts); Resolve.ts checks them. Pure: no I/O.
 */
import { redactUrl } from "../ServerUrl.js"

/** The source of a value nobody set. */
export const DEFAULT_SOURCE = "default"

/** One value and its provenance. */
export interface Slot {
  value: unknown
  source: string
  /** The key as written in its source (e.g. `providers.local.candle.model_directory`), for messages. */
  path?: string
  /** The value as the user wrote it, when `value` is derived from it (OLLAMA_HOST → base_url), for messages. */
  raw?: unknown
}

/** Every slot of a configuration being resolved, with the problems and warnings found so far. */
export interface Draft {
  defaultProvider: Slot
  defaultBackend: Slot
  instances: Map<string, Map<string, Slot>>
  hub: Map<string, Slot>
  stores: Map<string, Slot>
  /** `[serve.aliases]` entries in file order. */
  serveAliases: Array<{ readonly name: string; readonly slot: Slot }>
  problems: Array<string>
  warnings: Array<string>
}

/** A table's values as slots from `default`. */
export const defaultSlots = (table: Readonly<Record<string, unknown>>): Map<string, Slot> =>
  new Map(Object.entries(table).map(([k, v]) => [k, { value: v, source: DEFAULT_SOURCE }]))

/** A TOML table (smol-toml gives dates as Date objects, which are not tables). */
export const isTable = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) && !(u instanceof Date)

/**
 * A value as printed in a message: a URL without its user name, password and credential-looking
 * query parameters, and the same for a `user:pw@host:port` written without a scheme (OLLAMA_HOST
 * as the user typed it).
 */
export const display = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(redactUrl(value)) : JSON.stringify(value) ?? String(value)

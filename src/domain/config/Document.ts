/**
 * The config file (or an object given in code) written into the draft: TOML parsed with its
 * line and column on error, `[providers]`, `[hub]` and `[stores]` taken key by key with their
 * source, and the legacy shapes normalized on the way in (`[providers.local]` with backend
 * sub-tables, `provider_type = "local"` + `backend`, `candle` for `gguf`), each with a warning that
 * says the current form. Unknown keys are warnings, never silently dropped. Pure: no I/O.
 */
import * as Either from "effect/Either"
import { parse as parseToml } from "smol-toml"
import { CLOUD_PROVIDER_TYPES, presetOf } from "../CloudPresets.js"
import { normalizeBackend } from "../ModelSpec.js"
import { defaultSlots, type Draft, isTable } from "./Draft.js"
import { defaultsFor, isCloudType, knownKeysOf, tables } from "./Tables.js"

/** The TOML text parsed, or one problem naming the file, line and column. */
export const parseTomlText = (text: string, path: string): Either.Either<unknown, string> => {
  try {
    return Either.right(parseToml(text))
  } catch (e) {
    const err = e as { line?: number; column?: number; message?: string }
    const first = String(err.message ?? e).split("\n")[0]!.replace(/^Invalid TOML document:\s*/, "")
    const where = err.line !== undefined ? `:${err.line}:${err.column ?? 0}` : ""
    return Either.left(`${path}${where}: invalid TOML: ${first}`)
  }
}

/** Applies a parsed TOML document (or an embedding object) over the defaults, normalizing legacy shapes. */
export const applyDocument = (draft: Draft, doc: unknown, source: string) => {
  const problem = (key: string, message: string) => draft.problems.push(`${source}: ${key}: ${message}`)
  if (!isTable(doc)) return problem("(root)", "must be a table")
  const { keys } = tables()
  for (const [topKey, topValue] of Object.entries(doc)) {
    if (topKey === "providers") continue
    if (topKey === "hub") {
      if (!isTable(topValue)) {
        problem("hub", "must be a table")
        continue
      }
      for (const [k, v] of Object.entries(topValue)) {
        if (!keys.hub.includes(k)) draft.warnings.push(`${source}: hub.${k}: unknown key, ignored`)
        else draft.hub.set(k, { value: v, source })
      }
      continue
    }
    if (topKey === "stores") {
      if (!isTable(topValue)) {
        problem("stores", "must be a table")
        continue
      }
      for (const [k, v] of Object.entries(topValue)) {
        if (!keys.stores.includes(k)) {
          draft.warnings.push(`${source}: stores.${k}: unknown key, ignored (expected ${keys.stores.join(", ")})`)
        } else draft.stores.set(k, { value: v, source })
      }
      continue
    }
    if (topKey === "serve") {
      applyServe(draft, topValue, source)
      continue
    }
    draft.warnings.push(`${source}: ${topKey}: unknown top-level key, ignored (expected [providers], [hub], [stores] and [serve])`)
  }
  const providers = doc["providers"]
  if (providers === undefined) return
  if (!isTable(providers)) return problem("providers", "must be a table")

  for (const [key, value] of Object.entries(providers)) {
    if (key === "default_provider") {
      draft.defaultProvider = { value, source }
      continue
    }
    if (key === "default_backend") {
      draft.defaultBackend = { value, source }
      continue
    }
    if (!isTable(value)) {
      problem(`providers.${key}`, "must be a table ([providers.NAME]) or default_provider/default_backend")
      continue
    }
    if (isNestedLocal(key, value)) {
      draft.warnings.push(
        `${source}: [providers.local] with sub-tables is the old nested form; it still works, but prefer the flat form ` +
          `([providers.ollama], [providers.gguf] with provider_type, and default_backend under [providers])`
      )
      for (const [sub, subValue] of Object.entries(value)) {
        if (sub === "default_backend") {
          draft.defaultBackend = { value: subValue, source, path: "providers.local.default_backend" }
          continue
        }
        if (sub === "provider_type") continue
        if (!isTable(subValue)) {
          problem(`providers.local.${sub}`, "unknown key in the nested form (expected default_backend and backend sub-tables)")
          continue
        }
        const backend = normalizeBackend(sub)
        if (backend === undefined) {
          problem(`providers.local.${sub}`, "unknown backend sub-table (expected ollama, gguf or candle)")
          continue
        }
        applyInstance(draft, backend, { provider_type: backend, ...subValue }, `providers.local.${sub}`, source)
      }
      continue
    }
    applyInstance(draft, key, value, `providers.${key}`, source)
  }
}

/**
 * `[serve]`: settings of `llmspell serve` kept in the config; today its `[serve.aliases]` table of
 * model names (or globs) clients send → the specs they mean (checked in Resolve.ts).
 */
const applyServe = (draft: Draft, table: unknown, source: string) => {
  if (!isTable(table)) return void draft.problems.push(`${source}: serve: must be a table`)
  for (const [key, value] of Object.entries(table)) {
    if (key !== "aliases") {
      draft.warnings.push(`${source}: serve.${key}: unknown key, ignored (expected aliases)`)
      continue
    }
    if (!isTable(value)) {
      draft.problems.push(`${source}: serve.aliases: must be a table of "name" = "spec" (e.g. "claude-*" = "qwen3-coder@gguf")`)
      continue
    }
    for (const [name, spec] of Object.entries(value)) {
      // a later source (another file, code) replaces an alias of the same name where it stood
      const at = draft.serveAliases.findIndex((a) => a.name === name)
      const entry = { name, slot: { value: spec, source, path: `serve.aliases.${aliasKey(name)}` } }
      if (at >= 0) draft.serveAliases[at] = entry
      else draft.serveAliases.push(entry)
    }
  }
}

/** An alias name as a TOML key: bare when it can be, else quoted. */
const aliasKey = (name: string) => (/^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name))

const isNestedLocal = (key: string, table: Record<string, unknown>) =>
  key === "local" &&
  (table["provider_type"] === undefined || table["provider_type"] === "local") &&
  table["backend"] === undefined &&
  Object.values(table).some(isTable)

const applyInstance = (
  draft: Draft,
  name: string,
  table: Record<string, unknown>,
  keyPath: string,
  source: string
) => {
  const problem = (key: string, message: string) => draft.problems.push(`${source}: ${key}: ${message}`)
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) {
    return problem(keyPath, "an instance name may only contain letters, digits, '-' and '_'")
  }
  const entries = { ...table }
  let type = entries["provider_type"]
  if (type === "local") {
    const backend = typeof entries["backend"] === "string" ? normalizeBackend(entries["backend"]) : undefined
    if (backend === undefined) {
      return problem(`${keyPath}.backend`, 'provider_type = "local" needs backend = "ollama" or "gguf"')
    }
    type = backend
    delete entries["backend"]
  }
  if (type === undefined) {
    // `[providers.openai]` without a type is the built-in provider of that name, reconfigured.
    const inferred = normalizeBackend(name) ?? (presetOf(name) !== undefined ? name : undefined)
    if (inferred === undefined) return problem(`${keyPath}.provider_type`, "missing (ollama, gguf, openai_compatible or a cloud provider)")
    type = inferred
  }
  if (typeof type !== "string") return problem(`${keyPath}.provider_type`, "must be a string (ollama or gguf)")
  const normalized = normalizeBackend(type) ?? type
  if (normalized !== "ollama" && normalized !== "gguf" && !isCloudType(normalized)) {
    return problem(
      `${keyPath}.provider_type`,
      `unknown provider type ${JSON.stringify(type)} (ollama, gguf, openai_compatible or a cloud provider: ${CLOUD_PROVIDER_TYPES.filter((t) => t !== "openai_compatible").join(", ")})`
    )
  }
  entries["provider_type"] = normalized

  let slots = draft.instances.get(name)
  const existingType = slots?.get("provider_type")?.value
  if (slots === undefined || existingType !== normalized) {
    // A built-in instance redefined with another type loses the old type's defaults.
    slots = defaultSlots(defaultsFor(normalized))
    draft.instances.set(name, slots)
  }
  const known = knownKeysOf(normalized)
  for (const [k, v] of Object.entries(entries)) {
    if (k === "provider_type") {
      slots.set(k, { value: normalized, source, path: `${keyPath}.${k}` })
      continue
    }
    if (!known.includes(k)) {
      draft.warnings.push(`${source}: ${keyPath}.${k}: unknown key, kept in the instance's options`)
    }
    slots.set(k, { value: v, source, path: `${keyPath}.${k}` })
  }
}

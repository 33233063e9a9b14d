/**
 * What overrides the file: the environment (OLLAMA_HOST, LLMSPELL_MODELS_DIR, HF_TOKEN, HF_ENDPOINT,
 * HF_HUB_OFFLINE, LLMSPELL_DEFAULT_BACKEND, and `LLMSPELL_<INSTANCE>_<KEY>` for any instance key),
 * then the command-line flags; and the expansion of `${VAR}`, `$VAR` and `~` in path values once
 * every layer is in. Each value keeps its source for `config show` and for messages. Pure: the
 * environment is passed in.
 */
import * as Either from "effect/Either"
import { parseOllamaHost } from "../ServerUrl.js"
import type { ConfigFlags } from "../ConfigSchema.js"
import type { Draft } from "./Draft.js"
import { BOOLEAN_KEYS, isPathKey, NUMERIC_KEYS } from "./Tables.js"

type Env = Readonly<Record<string, string | undefined>>

/** Variables with a meaning of their own, never read as `LLMSPELL_<INSTANCE>_<KEY>`. */
const RESERVED_ENV = new Set([
  "LLMSPELL_CONFIG",
  "LLMSPELL_DEBUG",
  "LLMSPELL_MODELS_DIR",
  "LLMSPELL_DEFAULT_BACKEND",
  "LLMSPELL_HOST",
  "LLMSPELL_API_KEY"
])

/** The instance a backend type's variables and flags apply to: the one named like the type, else the first of that type. */
const defaultInstanceOf = (draft: Draft, type: "ollama" | "gguf"): string | undefined => {
  if (draft.instances.get(type)?.get("provider_type")?.value === type) return type
  for (const [name, slots] of draft.instances) if (slots.get("provider_type")?.value === type) return name
  return undefined
}

/** Writes the environment's values over the draft. */
export const applyEnv = (draft: Draft, env: Env) => {
  const set = (instance: string | undefined, key: string, value: unknown, name: string) => {
    if (instance === undefined) return
    draft.instances.get(instance)?.set(key, { value, source: `env ${name}` })
  }
  const get = (name: string) => {
    const v = env[name]
    return v !== undefined && v.length > 0 ? v : undefined
  }
  const ollamaHost = get("OLLAMA_HOST")
  if (ollamaHost !== undefined) {
    const instance = defaultInstanceOf(draft, "ollama")
    if (instance !== undefined) {
      draft.instances.get(instance)?.set("base_url", {
        value: parseOllamaHost(ollamaHost),
        source: "env OLLAMA_HOST",
        raw: ollamaHost
      })
    }
  }
  const modelsDir = get("LLMSPELL_MODELS_DIR")
  if (modelsDir !== undefined) set(defaultInstanceOf(draft, "gguf"), "model_directory", modelsDir, "LLMSPELL_MODELS_DIR")
  const defaultBackend = get("LLMSPELL_DEFAULT_BACKEND")
  if (defaultBackend !== undefined) draft.defaultBackend = { value: defaultBackend, source: "env LLMSPELL_DEFAULT_BACKEND" }
  const token = get("HF_TOKEN")
  if (token !== undefined) draft.hub.set("token", { value: token, source: "env HF_TOKEN" })
  const endpoint = get("HF_ENDPOINT")
  if (endpoint !== undefined) draft.hub.set("endpoint", { value: endpoint, source: "env HF_ENDPOINT" })
  const offline = get("HF_HUB_OFFLINE")
  if (offline !== undefined) draft.hub.set("offline", { value: coerceBoolean(offline), source: "env HF_HUB_OFFLINE" })

  // LLMSPELL_<INSTANCE>_<KEY>: longest instance name first, so `gguf_big` wins over `gguf`.
  const names = [...draft.instances.keys()].sort((a, b) => b.length - a.length)
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith("LLMSPELL_") || RESERVED_ENV.has(name) || raw === undefined) continue
    const rest = name.slice("LLMSPELL_".length)
    const instance = names.find((n) => rest.startsWith(`${envName(n)}_`) && rest.length > envName(n).length + 1)
    if (instance === undefined) continue
    const key = rest.slice(envName(instance).length + 1).toLowerCase()
    if (key === "provider_type") {
      draft.problems.push(`env ${name}: the provider type cannot be changed from the environment`)
      continue
    }
    set(instance, key, coerceEnvValue(key, raw), name)
  }
}

const envName = (instance: string) => instance.toUpperCase().replace(/[^A-Z0-9]/g, "_")

const coerceBoolean = (raw: string): unknown => {
  const v = raw.trim().toLowerCase()
  if (["1", "true", "yes", "on"].includes(v)) return true
  if (["0", "false", "no", "off", ""].includes(v)) return false
  return raw
}

const coerceEnvValue = (key: string, raw: string): unknown => {
  if (NUMERIC_KEYS.has(key) && /^-?\d+(\.\d+)?$/.test(raw.trim())) return Number(raw.trim())
  if (BOOLEAN_KEYS.has(key)) return coerceBoolean(raw)
  return raw
}

/** Writes the command line's values over the draft: they win over everything. */
export const applyFlags = (draft: Draft, flags: ConfigFlags) => {
  if (flags.ollamaHost !== undefined) {
    const inst = defaultInstanceOf(draft, "ollama")
    if (inst !== undefined) {
      draft.instances.get(inst)!.set("base_url", {
        value: parseOllamaHost(flags.ollamaHost),
        source: "flag --ollama-host",
        raw: flags.ollamaHost
      })
    }
  }
  if (flags.modelsDir !== undefined) {
    const inst = defaultInstanceOf(draft, "gguf")
    if (inst !== undefined) {
      draft.instances.get(inst)!.set("model_directory", { value: flags.modelsDir, source: "flag --models-dir" })
    }
  }
  if (flags.defaultBackend !== undefined) {
    draft.defaultBackend = { value: flags.defaultBackend, source: "flag --backend" }
  }
  if (flags.hubEndpoint !== undefined) draft.hub.set("endpoint", { value: flags.hubEndpoint, source: "flag --hub-endpoint" })
  if (flags.offline !== undefined) draft.hub.set("offline", { value: flags.offline, source: "flag --offline" })
}

/**
 * Expands `${VAR}`, `$VAR` and a leading `~` in a path. An unset variable is an error: a literal
 * `${HOME}` directory must never be created by accident.
 */
export const expandPath = (value: string, env: Env, home: string): Either.Either<string, string> => {
  let missing: string | undefined
  const lookup = (name: string) => {
    const v = name === "HOME" && env[name] === undefined ? home : env[name]
    if (v === undefined) missing ??= name
    return v ?? ""
  }
  let out = value.replace(/\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? ""
    if (braced !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(braced)) {
      missing ??= `{${braced}}`
      return ""
    }
    return lookup(name)
  })
  if (missing !== undefined) {
    return Either.left(
      missing.startsWith("{") ? `invalid variable reference $${missing}` : `environment variable ${missing} is not set`
    )
  }
  if (out === "~") out = home
  else if (out.startsWith("~/")) out = joinPath(home, out.slice(2))
  return Either.right(out)
}

/** Expands every path value of the draft (`[stores]` directories and instances' path keys). */
export const expandPaths = (draft: Draft, env: Env, home: string) => {
  for (const [key, slot] of draft.stores) {
    if (typeof slot.value !== "string" || slot.value === "auto") continue
    const expanded = expandPath(slot.value, env, home)
    if (Either.isLeft(expanded)) draft.problems.push(`${slot.source}: stores.${key}: ${expanded.left} (in ${JSON.stringify(slot.value)})`)
    else slot.value = expanded.right
  }
  for (const [name, slots] of draft.instances) {
    for (const [key, slot] of slots) {
      if (!isPathKey(key) || typeof slot.value !== "string") continue
      const expanded = expandPath(slot.value, env, home)
      if (Either.isLeft(expanded)) {
        draft.problems.push(
          `${slot.source}: ${slot.path ?? `providers.${name}.${key}`}: ${expanded.left} (in ${JSON.stringify(slot.value)})`
        )
      } else {
        slot.value = expanded.right
      }
    }
  }
}

/** Joins path segments with '/', without touching the file system. */
const joinPath = (...parts: Array<string>) =>
  parts
    .map((p, i) => (i === 0 ? p.replace(/\/+$/, "") : p.replace(/^\/+|\/+$/g, "")))
    .filter((p, i) => i === 0 || p.length > 0)
    .join("/")

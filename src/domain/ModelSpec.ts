/**
 * Model specs: `[provider/]model[@backend]`. Pure parsing and formatting, no I/O.
 * The parser never throws: it returns a spec or a typed `InvalidModelSpec`.
 */
import * as Either from "effect/Either"
import { fileURLToPath } from "node:url"
import { InvalidModelSpec } from "./Errors.js"
import * as HubRef from "./HubRef.js"

/** A parsed model spec. `provider` and `backend` are kept as written (e.g. `candle`), routing normalizes them. */
export interface ModelSpec {
  readonly provider?: string
  readonly model: string
  readonly backend?: string
}

/** Backends a spec may name after `@`. `candle` is an alias of `gguf`. */
export const BACKEND_NAMES = ["ollama", "gguf", "candle"] as const

/** Cloud providers a spec may name (`groq/llama-3.3-70b-versatile`); all but replicate have a built-in preset (`CloudPresets.ts`). */
export const CLOUD_PROVIDERS = [
  "openai",
  "anthropic",
  "cohere",
  "groq",
  "perplexity",
  "together",
  "gemini",
  "mistral",
  "replicate",
  "fireworks",
  "deepseek",
  "openrouter",
  "jina"
] as const

/** Provider types that make the first `/`-segment a provider. */
export const PROVIDER_TYPES: ReadonlyArray<string> = ["local", ...BACKEND_NAMES, ...CLOUD_PROVIDERS]

/** Longest spec accepted. */
export const MAX_SPEC_LENGTH = 512

/** Normalizes a backend name (`candle` → `gguf`); undefined when it is not a backend. */
export const normalizeBackend = (name: string): "ollama" | "gguf" | undefined =>
  name === "ollama" ? "ollama" : name === "gguf" || name === "candle" ? "gguf" : undefined

/**
 * True when the text names a local file rather than a model name: `./x`, `../x`, `/abs`, `~/x`,
 * `file:///abs`, `C:\\x`. A bare `x.gguf` is a model name (a loose file in the models directory),
 * never a file in the current directory, so a spec means the same wherever it is run; when such a
 * file exists there, the not-found hint says to write `./x.gguf`.
 */
export const isFileReference = (text: string): boolean =>
  text.startsWith("./") ||
  text.startsWith("../") ||
  text.startsWith("/") ||
  text.startsWith("~/") ||
  text.startsWith("file://") ||
  text.startsWith(".\\") ||
  /^[A-Za-z]:[\\/]/.test(text)

// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\s\u0000-\u001f\u007f-\u009f\u2028\u2029]/u

/**
 * Parses a spec. `knownProviders` are the configured instance names: a first segment that names
 * one of them (or a provider type) is a provider, otherwise the whole text is the model
 * (so `bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M` is a hub repo, not a provider).
 */
export const parse = (
  text: string,
  knownProviders: Iterable<string> = []
): Either.Either<ModelSpec, InvalidModelSpec> => {
  const fail = (reason: string) => Either.left(new InvalidModelSpec({ spec: String(text), reason }))
  if (typeof text !== "string") return fail("a spec must be a string")
  if (text.trim().length === 0) return fail("the spec is empty")
  if (text.length > MAX_SPEC_LENGTH) return fail(`the spec is longer than ${MAX_SPEC_LENGTH} characters`)
  const bad = FORBIDDEN.exec(text)
  if (bad !== null) {
    const code = bad[0].codePointAt(0)!
    const what = code === 0x20 ? "a space" : /\s/.test(bad[0]) ? "whitespace" : "a control character"
    return fail(`it contains ${what} (U+${code.toString(16).toUpperCase().padStart(4, "0")}) at position ${bad.index}`)
  }

  // A hub address pasted from a browser names a hub reference (`https://huggingface.co/org/repo/blob/main/x.gguf`).
  // (Only with a scheme: `hf.co/org/repo:Q4_K_M` already parses and round-trips as written.)
  const hubUrl = text.includes("://") ? HubRef.stripHubUrl(text) : undefined
  if (hubUrl !== undefined) return typeof hubUrl === "object" ? fail(hubUrl.reason) : parse(hubUrl, knownProviders)

  let body = text
  let backend: string | undefined
  const at = text.lastIndexOf("@")
  if (at >= 0) {
    const suffix = text.slice(at + 1)
    const prefix = text.slice(0, at)
    // A file path may legitimately contain '@' (e.g. ./models/x@v2.gguf): only a known backend splits it.
    const fileLike = isFileReference(prefix) || isFileReference(text)
    if (!fileLike || normalizeBackend(suffix) !== undefined) {
      if (suffix.length === 0) return fail("nothing follows '@': name a backend (ollama, gguf)")
      if (normalizeBackend(suffix) === undefined) {
        return fail(`unknown backend ${JSON.stringify(suffix)} after '@': use ollama or gguf`)
      }
      if (prefix.length === 0) return fail(`no model before '@${suffix}'`)
      body = prefix
      backend = suffix
    }
  }

  if (isFileReference(body)) {
    if (body.startsWith("file:")) {
      // file://host/x names another machine; %2F and NUL cannot be a path here. Refused now, not at open.
      try {
        if (fileURLToPath(body).includes("\u0000")) return fail("a file URL cannot contain a NUL character")
      } catch (e) {
        return fail(`not a usable file URL (${e instanceof Error ? e.message : String(e)}); use file:///absolute/path or a path`)
      }
    }
    return Either.right(backend === undefined ? { model: body } : { model: body, backend })
  }

  let provider: string | undefined
  let model = body
  const slash = body.indexOf("/")
  if (slash >= 0) {
    const first = body.slice(0, slash)
    const known = new Set(knownProviders)
    if (PROVIDER_TYPES.includes(first) || known.has(first)) {
      provider = first
      model = body.slice(slash + 1)
      if (model.length === 0) return fail(`no model after '${first}/'`)
    }
  }
  const segments = model.split("/")
  if (segments.some((s) => s === ".." || s === ".")) {
    return fail("'.' and '..' segments are not allowed in a model or hub reference")
  }
  if (segments.some((s) => s.length === 0)) return fail("empty path segment ('//' or a trailing '/')")
  if (model.startsWith("@")) return fail("a model name cannot start with '@'")

  const spec: { provider?: string; model: string; backend?: string } = { model }
  if (provider !== undefined) spec.provider = provider
  if (backend !== undefined) spec.backend = backend
  return Either.right(spec)
}

/** Formats a spec back into text; `format(parse(s))` gives back `s` for every valid `s`. */
export const format = (spec: ModelSpec): string =>
  `${spec.provider !== undefined ? `${spec.provider}/` : ""}${spec.model}${spec.backend !== undefined ? `@${spec.backend}` : ""}`

/**
 * Hugging Face hub references and GGUF file selection: parsing what a user may pass to `model pull`
 * (catalog alias, `org/repo:QUANT`, `hf.co/org/repo:QUANT`, `org/repo/path/file.gguf`, with `local/`,
 * `gguf/` or `@gguf` around them), reading quantizations from file names, grouping split GGUF parts,
 * and keeping every name that reaches the disk inside the store and valid on Windows.
 * Pure: no I/O.
 */
import * as Either from "effect/Either"
import * as Catalog from "./Catalog.js"
import { InvalidModelSpec, ModelNotFound } from "./Errors.js"

/** The quantization pulled when none is asked for. */
export const DEFAULT_QUANTIZATION = "Q4_K_M"

/** A parsed hub reference. */
export type HubRef =
  | {
    readonly kind: "repo"
    readonly repo: string
    /** As asked for (upper-cased); undefined means the default. */
    readonly quantization: string | undefined
    readonly alias: string | undefined
  }
  | {
    readonly kind: "file"
    readonly repo: string
    /** Path of the file inside the repo. */
    readonly path: string
    readonly alias: undefined
  }

// A hub repo id segment: what the hub itself accepts for users, orgs and repo names.
const REPO_SEGMENT = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$/
// One segment of a file path inside the store: no ':' (Windows drive/stream syntax), no '\', no control chars.
const PATH_SEGMENT = /^[A-Za-z0-9_(\[][A-Za-z0-9._+\-=,@()[\] ]{0,199}$/
// Windows refuses these as file names whatever the extension.
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i

/** Known quantization names, most specific first (IQ4_XS before Q4_K…). */
const QUANT_PATTERN =
  /(?:^|[-._/])((?:I?Q[1-8]_(?:K_(?:XXS|XS|XL|S|M|L)|K|XXS|XS|NL|S|M|L|0_4_4|0_4_8|0_8_8|[01]))|TQ[12]_0|MXFP4(?:_MOE)?|BF16|F16|F32|FP16)(?=[-._]|$)/i

/** True when `text` names a quantization (`q4_k_m`, `IQ4_XS`, `bf16`, …). */
export const isQuantization = (text: string): boolean => {
  const m = QUANT_PATTERN.exec(text)
  return m !== null && m[1]!.length === text.length
}

/** Normalizes a quantization name (`q4_k_m` → `Q4_K_M`, `fp16` → `F16`). */
export const normalizeQuantization = (text: string): string => {
  const upper = text.toUpperCase()
  return upper === "FP16" ? "F16" : upper
}

/** The quantization a GGUF file name carries, if any (the last one in the path wins). */
export const quantizationOf = (path: string): string | undefined => {
  const base = path.split("/").at(-1) ?? path
  const stem = base.replace(/\.gguf$/i, "").replace(/-\d{5}-of-\d{5}$/i, "")
  const global = new RegExp(QUANT_PATTERN.source, "gi")
  let found: string | undefined
  for (const m of stem.matchAll(global)) found = m[1]
  if (found === undefined) {
    // Split models often sit in a folder named after the quantization.
    const folder = path.split("/").slice(0, -1).join("/")
    for (const m of folder.matchAll(global)) found = m[1]
  }
  return found === undefined ? undefined : normalizeQuantization(found)
}

/** Checks a repo id (`org/name`). */
export const validateRepo = (repo: string): string | undefined => {
  const parts = repo.split("/")
  if (parts.length !== 2) return "a hub repo is `org/name`"
  for (const part of parts) {
    if (!REPO_SEGMENT.test(part) || part.includes("..")) return `invalid hub repo name ${JSON.stringify(repo)}`
  }
  return undefined
}

/**
 * Checks that a path (from the hub or the user) is safe to create under the store: relative, no `.`/`..`
 * segments, no odd characters, no `:` or `\`, no Windows-reserved names, no trailing dot or space.
 */
export const validatePath = (path: string): string | undefined => {
  if (path.length === 0) return "empty path"
  if (path.length > 400) return "path too long"
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return `absolute path ${JSON.stringify(path)}`
  if (path.includes("\\")) return `backslash in path ${JSON.stringify(path)}`
  for (const segment of path.split("/")) {
    if (segment === "" || segment === "." || segment === "..") return `'.', '..' or empty segment in ${JSON.stringify(path)}`
    if (!PATH_SEGMENT.test(segment)) return `unsupported characters in ${JSON.stringify(path)}`
    if (WINDOWS_RESERVED.test(segment)) return `${JSON.stringify(segment)} is a reserved file name on Windows`
    if (/[. ]$/.test(segment)) return `${JSON.stringify(segment)} ends with a dot or space`
  }
  return undefined
}

const PREFIXES = ["local/", "gguf/", "candle/"]
const HUB_HOST = /^(?:https?:\/\/)?(?:www\.)?(?:huggingface\.co|hf\.co)\//i

/**
 * A hub address pasted from a browser, as the reference it names: `https://huggingface.co/org/repo` (also
 * `/tree/main`), `…/resolve/main/file.gguf` and `…/blob/main/file.gguf` (query and fragment dropped).
 * Undefined when the text is not a hub address; a reason when it names something we cannot pull.
 */
export const stripHubUrl = (text: string): string | { readonly reason: string } | undefined => {
  const host = HUB_HOST.exec(text)
  if (host === null) return undefined
  const rest = text.slice(host[0].length).replace(/[?#].*$/, "").replace(/\/+$/, "")
  const segments = rest.split("/")
  if (segments[0] === "datasets" || segments[0] === "spaces") return { reason: "only model repos hold GGUF models" }
  if (segments.length < 3) return rest
  const kind = segments[2]
  if (kind !== "resolve" && kind !== "blob" && kind !== "tree") return rest
  const revision = segments[3]
  if (revision !== "main") {
    return { reason: `llmspell pulls the main revision only; ${JSON.stringify(revision ?? "")} was given` }
  }
  const repo = segments.slice(0, 2).join("/")
  if (kind === "tree") return segments.length === 4 ? repo : { reason: "a folder is not a model; name a .gguf file or the repo" }
  let file = segments.slice(4).join("/")
  try {
    file = decodeURIComponent(file)
  } catch {
    return { reason: "the file part of the address is not valid percent-encoding" }
  }
  return `${repo}/${file}`
}

/** Parses a reference; `quantization` (e.g. from `--quantization`) overrides the one in the text. */
export const parse = (input: string, quantization?: string): Either.Either<HubRef, InvalidModelSpec> => {
  const fail = (reason: string) => Either.left(new InvalidModelSpec({ spec: input, reason }))
  let text = input.trim()
  if (/@(gguf|candle)$/.test(text)) text = text.replace(/@(gguf|candle)$/, "")
  if (text.includes("@")) return fail("hub references cannot name another backend or a revision with '@'")
  for (const prefix of PREFIXES) if (text.startsWith(prefix)) text = text.slice(prefix.length)
  const url = stripHubUrl(text)
  if (url !== undefined) {
    if (typeof url === "object") return fail(url.reason)
    text = url
  }
  if (quantization !== undefined && !isQuantization(quantization)) {
    return fail(`unknown quantization ${JSON.stringify(quantization)} (e.g. Q4_K_M, Q5_K_M, Q8_0, IQ4_XS, F16)`)
  }
  const override = quantization !== undefined ? normalizeQuantization(quantization) : undefined

  if (!text.includes("/")) {
    // A catalog alias, optionally with `:QUANT` after it (qwen2.5:0.5b:Q8_0).
    let alias = text
    let quant = override
    const last = text.lastIndexOf(":")
    if (Catalog.find(alias) === undefined && last > 0 && isQuantization(text.slice(last + 1))) {
      alias = text.slice(0, last)
      quant ??= normalizeQuantization(text.slice(last + 1))
    }
    const entry = Catalog.find(alias)
    if (entry === undefined) {
      return fail(
        `${JSON.stringify(text)} is neither a catalog alias nor a hub repo; ` +
          "`llmspell model available` lists the aliases, or pass org/repo:QUANT"
      )
    }
    if (quant !== undefined && !entry.quantizations.some((q) => q.name === quant)) {
      // Not fatal: the catalog lists common quantizations; the repo may have more. The hub decides.
    }
    return Either.right({ kind: "repo", repo: entry.repo, quantization: quant ?? entry.defaultQuantization, alias: entry.alias })
  }

  const segments = text.split("/")
  if (segments.length === 2) {
    const [org, rest] = segments as [string, string]
    const colon = rest.indexOf(":")
    const name = colon >= 0 ? rest.slice(0, colon) : rest
    const quantText = colon >= 0 ? rest.slice(colon + 1) : undefined
    const repo = `${org}/${name}`
    const bad = validateRepo(repo)
    if (bad !== undefined) return fail(bad)
    if (quantText !== undefined && !isQuantization(quantText)) {
      return fail(`unknown quantization ${JSON.stringify(quantText)} after ':' (e.g. Q4_K_M, Q8_0, IQ4_XS, F16)`)
    }
    return Either.right({
      kind: "repo",
      repo,
      quantization: override ?? (quantText !== undefined ? normalizeQuantization(quantText) : undefined),
      alias: undefined
    })
  }
  const repo = segments.slice(0, 2).join("/")
  const path = segments.slice(2).join("/")
  const bad = validateRepo(repo) ?? validatePath(path)
  if (bad !== undefined) return fail(bad)
  if (!/\.gguf$/i.test(path)) return fail("a file reference must name a .gguf file (org/repo/path/file.gguf)")
  if (override !== undefined) return fail("--quantization does not apply to a reference that names a file")
  return Either.right({ kind: "file", repo, path, alias: undefined })
}

/** The canonical model name of a reference with its chosen quantization: `org/repo:Q4_K_M` or `org/repo/file.gguf`. */
export const canonicalName = (ref: HubRef, quantization?: string): string =>
  ref.kind === "file" ? `${ref.repo}/${ref.path}` : `${ref.repo}:${quantization ?? ref.quantization ?? DEFAULT_QUANTIZATION}`

/**
 * A name valid as one file name on every OS, for manifests and locks: `org--repo__Q4_K_M-1f2e3d4c`.
 * The readable part maps `/` → `--` and `:` → `__`; the FNV-1a hash of the exact name keeps names that
 * map to the same readable part apart.
 */
export const slugOf = (name: string): string => {
  const readable = name.replace(/[^A-Za-z0-9._-]/g, (c) => (c === "/" ? "--" : c === ":" ? "__" : "_"))
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0
  return `${readable.slice(0, 150)}-${h.toString(16).padStart(8, "0")}`
}

/** A file of a repo listing. */
export interface RepoFile {
  readonly path: string
  readonly size: number
  /** sha256 from the hub (`lfs.oid`); undefined for non-LFS files. */
  readonly sha256: string | undefined
}

/** One loadable model in a repo: a single file, or all parts of a split file, first part first. */
export interface GgufGroup {
  readonly quantization: string | undefined
  readonly files: ReadonlyArray<RepoFile>
}

const SPLIT = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i

/** True for GGUF files that are not a loadable language model on their own (vision projectors). */
const isAuxiliary = (path: string) => /(^|\/)mmproj[^/]*$/i.test(path) || /(^|\/)[^/]*mmproj[^/]*\.gguf$/i.test(path)

/**
 * Groups a repo's GGUF files into models: split parts (`…-00001-of-00003.gguf`) with the same stem
 * form one model when every part is present; incomplete splits and projector files are left out.
 */
export const groupGguf = (files: ReadonlyArray<RepoFile>): ReadonlyArray<GgufGroup> => {
  const singles: Array<GgufGroup> = []
  const splits = new Map<string, { total: number; parts: Map<number, RepoFile> }>()
  for (const file of files) {
    if (!/\.gguf$/i.test(file.path) || isAuxiliary(file.path)) continue
    const m = SPLIT.exec(file.path)
    if (m === null) {
      singles.push({ quantization: quantizationOf(file.path), files: [file] })
      continue
    }
    const key = `${m[1]}|${m[3]}`
    const entry = splits.get(key) ?? { total: Number(m[3]), parts: new Map() }
    entry.parts.set(Number(m[2]), file)
    splits.set(key, entry)
  }
  const groups = [...singles]
  for (const { parts, total } of splits.values()) {
    const ordered = Array.from({ length: total }, (_, i) => parts.get(i + 1))
    if (total < 1 || ordered.some((p) => p === undefined)) continue
    const first = ordered[0]!
    groups.push({ quantization: quantizationOf(first.path), files: ordered as Array<RepoFile> })
  }
  return groups.sort((a, b) => a.files[0]!.path.localeCompare(b.files[0]!.path))
}

/** The quantizations a repo offers, sorted. */
export const quantizationsOf = (groups: ReadonlyArray<GgufGroup>): ReadonlyArray<string> =>
  [...new Set(groups.flatMap((g) => (g.quantization !== undefined ? [g.quantization] : [])))].sort()

/** What a reference selects in a repo listing, or a ModelNotFound that lists what the repo has. */
export const select = (
  ref: HubRef,
  files: ReadonlyArray<RepoFile>
): Either.Either<{ readonly name: string; readonly group: GgufGroup }, ModelNotFound> => {
  const groups = groupGguf(files)
  const notFound = (detail: string, pullSpec?: string) =>
    Either.left(
      new ModelNotFound({
        model: ref.kind === "file" ? `${ref.repo}/${ref.path}` : ref.alias ?? ref.repo,
        backend: "gguf",
        detail,
        ...(pullSpec !== undefined ? { pullSpec } : {})
      })
    )
  if (ref.kind === "file") {
    const group = groups.find((g) => g.files.some((f) => f.path === ref.path))
    if (group === undefined) {
      const exists = files.some((f) => f.path === ref.path)
      return notFound(exists ? "the file is not a complete GGUF model (missing split parts?)" : `no file ${ref.path} in ${ref.repo}`)
    }
    return Either.right({ name: `${ref.repo}/${group.files[0]!.path}`, group })
  }
  if (groups.length === 0) return notFound(`${ref.repo} has no GGUF files`)
  const wanted = ref.quantization ?? DEFAULT_QUANTIZATION
  const matching = groups.filter((g) => g.quantization === wanted)
  const available = quantizationsOf(groups)
  if (matching.length === 0) {
    if (ref.quantization === undefined && groups.length === 1) {
      const only = groups[0]!
      return Either.right({ name: `${ref.repo}:${only.quantization ?? "default"}`, group: only })
    }
    return notFound(
      `${ref.repo} has no ${wanted} file; it has ${available.length > 0 ? available.join(", ") : "no recognizable quantization"}`,
      available.length > 0 ? `${ref.repo}:${available.includes("Q8_0") ? "Q8_0" : available[0]}` : undefined
    )
  }
  // Several files with one quantization (rare): prefer a single file over a split, then the shortest path.
  const group = [...matching].sort((a, b) => a.files.length - b.files.length || a.files[0]!.path.length - b.files[0]!.path.length)[0]!
  return Either.right({ name: `${ref.repo}:${wanted}`, group })
}

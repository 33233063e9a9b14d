/**
 * The on-disk layouts of the GGUF stores other tools keep (Ollama, the Hugging Face hub cache,
 * LM Studio, node-llama-cpp's CLI), so llmspell can list and run their models in place, read-only.
 * Each layout was checked against the owning tool's own source or docs (see docs/stores.md): where
 * its root lives given the environment, the Schemas of the JSON it stores, how it names a model,
 * and the command that removes a model with that tool (llmspell never deletes a foreign file).
 * This module holds the roots and the plain-folder stores (LM Studio, node-llama-cpp) and re-exports the
 * rest: the record (`ForeignStoreRecord.ts`), Ollama (`OllamaLayout.ts`), the HF cache (`HfCacheLayout.ts`).
 * Pure: no I/O. The scanners that walk the directories are in `layers/store/foreign/`.
 */
import * as posix from "node:path/posix"
import { type ForeignModel, shellQuote } from "./ForeignStoreRecord.js"
import { quantizationOf } from "./HubRef.js"
import type { ModelFacts } from "./ModelFacts.js"

export * from "./ForeignStoreRecord.js"
export * from "./HfCacheLayout.js"
export * from "./OllamaLayout.js"

// ---------------------------------------------------------------------------------------------
// Roots: where each tool keeps its store, resolved the way the tool resolves it
// ---------------------------------------------------------------------------------------------

/** The inputs root resolution depends on. */
export interface StoreEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>
  /** The user's home directory (`os.homedir()`). */
  readonly home: string
}

// Ollama's envconfig.Var: the value with surrounding spaces and quotes removed; empty means unset.
const ollamaVar = (env: StoreEnvironment["env"], key: string): string | undefined => {
  const value = env[key]?.trim().replace(/^["']+|["']+$/g, "")
  return value === undefined || value === "" ? undefined : value
}

/**
 * Ollama's model directories: `OLLAMA_MODELS` when set (envconfig.Models), else `~/.ollama/models`,
 * plus `/usr/share/ollama/.ollama/models`, the home of the `ollama` user that the Linux install
 * script's systemd service runs as.
 */
export const ollamaRoots = ({ env, home }: StoreEnvironment): ReadonlyArray<string> => {
  const explicit = ollamaVar(env, "OLLAMA_MODELS")
  if (explicit !== undefined) return [explicit]
  return [posix.join(home, ".ollama", "models"), "/usr/share/ollama/.ollama/models"]
}

// Python's os.path.expanduser + os.path.expandvars, as huggingface_hub applies them to its paths.
const expandUserAndVars = (value: string, { env, home }: StoreEnvironment): string => {
  const user = value === "~" ? home : value.startsWith("~/") ? posix.join(home, value.slice(2)) : value
  return user.replace(/\$(\w+)|\$\{([^}]*)\}/g, (whole, bare: string | undefined, braced: string | undefined) => {
    const resolved = env[(bare ?? braced)!]
    return resolved === undefined ? whole : resolved
  })
}

const nonEmpty = (value: string | undefined): string | undefined => value === undefined || value === "" ? undefined : value

/**
 * The Hugging Face hub cache (huggingface_hub `constants.py`): `HF_HUB_CACHE`, else the legacy
 * `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, where `HF_HOME` defaults to
 * `$XDG_CACHE_HOME/huggingface` and `XDG_CACHE_HOME` to `~/.cache`. `~` and `$VAR` are expanded.
 * (Python keeps a variable set to the empty string; we treat it as unset, which is what a user means.)
 */
export const hfCacheRoot = (environment: StoreEnvironment): string => {
  const { env, home } = environment
  const hubCache = nonEmpty(env["HF_HUB_CACHE"]) ?? nonEmpty(env["HUGGINGFACE_HUB_CACHE"])
  if (hubCache !== undefined) return expandUserAndVars(hubCache, environment)
  const hfHome = nonEmpty(env["HF_HOME"]) ??
    posix.join(nonEmpty(env["XDG_CACHE_HOME"]) ?? posix.join(home, ".cache"), "huggingface")
  return posix.join(expandUserAndVars(hfHome, environment), "hub")
}

/** The file LM Studio writes to say where its home is (lmstudio-js `findLMStudioHome`). */
export const lmstudioHomePointer = (home: string): string => posix.join(home, ".lmstudio-home-pointer")

/**
 * LM Studio's models directories: `<home>/models` where home is the path in
 * `~/.lmstudio-home-pointer` when that file exists, else `~/.lmstudio/models` (0.3+) and the older
 * `~/.cache/lm-studio/models`. `pointer` is the pointer file's content, read by the caller.
 * (A models folder changed in LM Studio's settings is not followed; `[stores] lmstudio = <path>` is.)
 */
export const lmstudioRoots = (home: string, pointer: string | undefined): ReadonlyArray<string> => {
  const pointed = pointer?.trim()
  if (pointed !== undefined && pointed !== "") return [posix.join(pointed, "models")]
  return [posix.join(home, ".lmstudio", "models"), posix.join(home, ".cache", "lm-studio", "models")]
}

/** node-llama-cpp CLI's models directory (`cliModelsDirectory` in node-llama-cpp's `config.js`). */
export const nodeLlamaCppRoots = (home: string): ReadonlyArray<string> => [posix.join(home, ".node-llama-cpp", "models")]

/** The roots to scan, per store. */
export interface ForeignStoreRoots {
  readonly ollama: ReadonlyArray<string>
  readonly hfCache: ReadonlyArray<string>
  readonly lmstudio: ReadonlyArray<string>
  readonly nodeLlamaCpp: ReadonlyArray<string>
}

/** Every store's default roots; `lmstudioPointer` is the content of `~/.lmstudio-home-pointer`, if any. */
export const defaultRoots = (environment: StoreEnvironment, lmstudioPointer?: string): ForeignStoreRoots => ({
  ollama: ollamaRoots(environment),
  hfCache: [hfCacheRoot(environment)],
  lmstudio: lmstudioRoots(environment.home, lmstudioPointer),
  nodeLlamaCpp: nodeLlamaCppRoots(environment.home)
})

// ---------------------------------------------------------------------------------------------
// LM Studio and node-llama-cpp: plain folders of GGUF files
// ---------------------------------------------------------------------------------------------

/** A GGUF file found in a plain-folder store. */
export interface PlainStoreFile {
  /** Path relative to the root, `/`-separated. */
  readonly relPath: string
  /** Absolute path of the bytes (symlinks resolved). */
  readonly path: string
  /** Where the store keeps it (differs from `path` for a link or a linked folder). */
  readonly storePath: string
  readonly sizeBytes: number
  readonly otherParts?: ReadonlyArray<{ readonly path: string; readonly storePath: string; readonly sizeBytes: number }>
  /** What the first bytes of the file say. */
  readonly facts?: ModelFacts | undefined
  /** The file's modification time (ISO). */
  readonly modifiedAt?: string | undefined
}

/** The deepest LM Studio looks: `<publisher>/<repo>/<file>` plus sub-folders of split models. */
export const LMSTUDIO_MAX_DEPTH = 5

/**
 * An LM Studio model at `<publisher>/<repo>/…/<file>.gguf`, named `publisher/repo/file.gguf` as
 * `lms ls` shows it. Undefined for a file outside that structure (LM Studio ignores files directly
 * under the models folder or one level down). LM Studio's CLI has no remove command (checked against
 * the `lms` command list), so the command given removes the file itself.
 */
export const lmstudioForeignModel = (root: string, file: PlainStoreFile): ForeignModel | undefined => {
  const segments = file.relPath.split("/")
  if (segments.length < 3 || segments.length > LMSTUDIO_MAX_DEPTH) return undefined
  return {
    ...plainFileModel("lmstudio", root, file),
    repo: segments.slice(0, 2).join("/"),
    file: segments.slice(2).join("/")
  }
}

/**
 * A model in node-llama-cpp's models directory: a flat folder of files it names
 * `hf_<user>_<file>.gguf` when pulled from the hub. Named by its file name; node-llama-cpp has no
 * remove command either.
 */
export const nodeLlamaCppForeignModel = (root: string, file: PlainStoreFile): ForeignModel | undefined => {
  if (file.relPath.includes("/")) return undefined
  return plainFileModel("node-llama-cpp", root, file)
}

/**
 * A model that is just its file(s) in a folder, named by its path there; neither LM Studio nor
 * node-llama-cpp has a remove command, so the command given removes the files themselves: the names in
 * the store, so a link (`lms import -l`) is removed, never the file it points at.
 */
const plainFileModel = (store: "lmstudio" | "node-llama-cpp", root: string, file: PlainStoreFile): ForeignModel => {
  const parts = file.otherParts ?? []
  const paths = [file.path, ...parts.map((p) => p.path)]
  const storePaths = [file.storePath, ...parts.map((p) => p.storePath)]
  const quantization = file.facts?.quantization ?? quantizationOf(file.relPath)
  return {
    store,
    name: file.relPath,
    path: file.path,
    ...(file.storePath !== file.path ? { storePath: file.storePath } : {}),
    sizeBytes: file.sizeBytes + parts.reduce((n, p) => n + p.sizeBytes, 0),
    ...(quantization !== undefined ? { quantization } : {}),
    ...(file.facts?.family !== undefined ? { family: file.facts.family } : {}),
    ...(file.facts?.capabilities !== undefined ? { capabilities: file.facts.capabilities } : {}),
    ...(file.modifiedAt !== undefined ? { modifiedAt: file.modifiedAt } : {}),
    removeCommand: `rm ${storePaths.map(shellQuote).join(" ")}`,
    root,
    ...(parts.length > 0 ? { parts: paths } : {})
  }
}

/**
 * The EffectiveConfig layers. `layer`: finds the config file (first found wins: `--config FILE`, LLMSPELL_CONFIG,
 * ./llmspell.toml, $XDG_CONFIG_HOME/llmspell/config.toml, ~/.llmspell/config.toml), reads it, and
 * resolves it with the environment and flags. It only reads: the file is never written. Only a
 * regular file of at most 1 MiB is read; anything else (a FIFO, a device, a directory, a huge file)
 * is a ConfigError naming the path and what it is, decided by stat before anything is opened.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { constants as fsConstants, type Stats } from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { type ConfigFlags, type ConfigInput, type LlmspellConfig, resolveConfig } from "../domain/ConfigSchema.js"
import { ConfigError } from "../domain/Errors.js"
import { formatBytes } from "../domain/Format.js"
import { EffectiveConfig } from "../services/EffectiveConfig.js"
import { fileKind } from "./store/fileKind.js"

/**
 * The process facts config discovery reads (environment, working directory, home). Defaults to the
 * real process; the CLI's `main(argv, env)` and tests provide their own, so nothing reads the real
 * HOME or environment behind their back.
 */
export class ConfigEnvironment extends Context.Reference<ConfigEnvironment>()("llmspell/ConfigEnvironment", {
  defaultValue: (): {
    readonly env: Readonly<Record<string, string | undefined>>
    readonly cwd: string
    readonly home: string
  } => ({ env: process.env, cwd: process.cwd(), home: process.env["HOME"] ?? os.homedir() })
}) {}

/** Fills the options' missing process facts from the ConfigEnvironment in context. */
export const withEnvironment = (options: ConfigLoadOptions = {}): Effect.Effect<ConfigLoadOptions> =>
  Effect.map(ConfigEnvironment, (where) => {
    const env = options.env ?? where.env
    return {
      ...options,
      env,
      cwd: options.cwd ?? where.cwd,
      home: options.home ?? (options.env !== undefined ? env["HOME"] : undefined) ?? where.home
    }
  })

/** Where to look and what to apply; every field defaults to the ConfigEnvironment's (the real process's). */
export interface ConfigLoadOptions {
  readonly configFile?: string | undefined
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly cwd?: string
  readonly home?: string
  readonly flags?: ConfigFlags
}

/** A candidate config file and why it is looked at. */
export interface ConfigCandidate {
  readonly path: string
  readonly origin: "flag --config" | "env LLMSPELL_CONFIG" | "working directory" | "XDG config" | "home"
  /** An explicitly named file must exist; the others are optional. */
  readonly explicit: boolean
}

/** The candidate files in the order they are tried. */
export const candidates = (options: ConfigLoadOptions = {}): ReadonlyArray<ConfigCandidate> => {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  const home = options.home ?? env["HOME"] ?? os.homedir()
  const list: Array<ConfigCandidate> = []
  if (options.configFile !== undefined) {
    list.push({ path: path.resolve(cwd, expandHome(options.configFile, home)), origin: "flag --config", explicit: true })
  } else if (env["LLMSPELL_CONFIG"]) {
    list.push({
      path: path.resolve(cwd, expandHome(env["LLMSPELL_CONFIG"], home)),
      origin: "env LLMSPELL_CONFIG",
      explicit: true
    })
  } else {
    const xdg = env["XDG_CONFIG_HOME"] ? env["XDG_CONFIG_HOME"] : path.join(home, ".config")
    list.push(
      { path: path.join(cwd, "llmspell.toml"), origin: "working directory", explicit: false },
      { path: path.join(xdg, "llmspell", "config.toml"), origin: "XDG config", explicit: false },
      { path: path.join(home, ".llmspell", "config.toml"), origin: "home", explicit: false }
    )
  }
  return list
}

const expandHome = (p: string, home: string) => (p === "~" ? home : p.startsWith("~/") ? path.join(home, p.slice(2)) : p)

/** A config file larger than this is refused unread: a real one is a few KiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024

const describeErrno = (e: NodeJS.ErrnoException) =>
  e.code === "ENOENT"
    ? "no such file"
    : e.code === "EISDIR"
    ? "is a directory"
    : e.code === "EACCES"
    ? "permission denied"
    : e.code === "ENOTDIR"
    ? "a parent of it is not a directory"
    : String(e.message)

type ReadOutcome =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Refused"; readonly why: string }
  | { readonly _tag: "Text"; readonly text: string }

/**
 * Reads a config file only if it is a regular file of at most MAX_CONFIG_BYTES. The type is checked
 * with stat before anything is opened (opening a FIFO blocks until a writer appears), then again on
 * the open descriptor, which is opened non-blocking so a file swapped for a FIFO in between cannot
 * hang us either; at most MAX_CONFIG_BYTES + 1 bytes are ever read.
 */
const readConfigFile = async (file: string): Promise<ReadOutcome> => {
  const refuse = (stat: Stats): ReadOutcome | undefined =>
    !stat.isFile()
      ? { _tag: "Refused", why: `is ${fileKind(stat)}, not a regular file` }
      : stat.size > MAX_CONFIG_BYTES
      ? { _tag: "Refused", why: `is ${formatBytes(stat.size)} (${stat.size} bytes), over the 1 MiB limit for a config file` }
      : undefined
  let stat: Stats
  try {
    stat = await fs.stat(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { _tag: "Missing" }
    throw e
  }
  const before = refuse(stat)
  if (before !== undefined) return before
  const handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK)
  try {
    const after = refuse(await handle.stat())
    if (after !== undefined) return after
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1)
    let length = 0
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > MAX_CONFIG_BYTES) {
      return { _tag: "Refused", why: `grew over the 1 MiB limit for a config file while it was read` }
    }
    return { _tag: "Text", text: buffer.subarray(0, length).toString("utf8") }
  } finally {
    await handle.close()
  }
}

/** Finds and reads the config file, if there is one. */
export const discover = (
  options: ConfigLoadOptions = {}
): Effect.Effect<{ readonly path: string; readonly text: string; readonly origin: string } | undefined, ConfigError> =>
  Effect.gen(function*() {
    options = yield* withEnvironment(options)
    for (const candidate of candidates(options)) {
      const cannotRead = (why: string) =>
        new ConfigError({ file: candidate.path, problems: [`${candidate.path}: cannot read (${candidate.origin}): ${why}`] })
      // Interruptible: Ctrl-C while a slow file system answers stops waiting at once.
      const outcome = yield* Effect.tryPromise({
        try: () => readConfigFile(candidate.path),
        catch: (e) => cannotRead(describeErrno(e as NodeJS.ErrnoException))
      })
      if (outcome._tag === "Missing") {
        if (candidate.explicit) return yield* Effect.fail(cannotRead("no such file"))
        continue
      }
      // A candidate found by discovery that is not a usable file is refused too, not skipped:
      // silently falling back to another file would hide which configuration is in effect.
      if (outcome._tag === "Refused") return yield* Effect.fail(cannotRead(outcome.why))
      return { path: candidate.path, text: outcome.text, origin: candidate.origin }
    }
    return undefined
  })

/** Discovers, reads and resolves the configuration. */
export const load = (options: ConfigLoadOptions = {}): Effect.Effect<LlmspellConfig, ConfigError> =>
  Effect.gen(function*() {
    options = yield* withEnvironment(options)
    const env = options.env ?? process.env
    const file = yield* discover(options)
    const resolved = resolveConfig({
      file,
      env,
      flags: options.flags ?? {},
      home: options.home ?? env["HOME"] ?? os.homedir()
    })
    return yield* Either.match(resolved, { onLeft: Effect.fail, onRight: Effect.succeed })
  })

/** The EffectiveConfig from the usual places: the config file, the environment, the flags. */
export const layer = (options: ConfigLoadOptions = {}): Layer.Layer<EffectiveConfig, ConfigError> =>
  Layer.effect(EffectiveConfig, load(options))

/** An EffectiveConfig layer from an already resolved configuration. */
export const layerValue = (config: LlmspellConfig): Layer.Layer<EffectiveConfig> => Layer.succeed(EffectiveConfig, config)

/**
 * An EffectiveConfig layer from a TOML-shaped object given in code (for embedding llmspell): no
 * file is read, the environment is not consulted unless passed, and the object is validated like a file.
 */
export const layerFromObject = (
  value: unknown,
  options: { readonly env?: Readonly<Record<string, string | undefined>>; readonly home?: string } = {}
): Layer.Layer<EffectiveConfig, ConfigError> =>
  Layer.effect(
    EffectiveConfig,
    Effect.suspend(() => {
      const input: ConfigInput = {
        object: { value, source: "code" },
        env: options.env ?? {},
        home: options.home ?? process.env["HOME"] ?? "/"
      }
      return Either.match(resolveConfig(input), { onLeft: Effect.fail, onRight: Effect.succeed })
    })
  )

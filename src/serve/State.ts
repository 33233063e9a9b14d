/**
 * The state file of a running `llmspell serve`: `$XDG_RUNTIME_DIR/llmspell/serve.json`, else
 * `~/.llmspell/serve.json`, holding its pid and URL (never the API key). Written atomically
 * (a temporary file renamed into place), removed when the server stops, and ignored when the pid
 * it names is no longer running (a server that was killed cannot remove it). The CLI's connect
 * mode reads it with `readServeState`.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as nodePath from "node:path"

/** What the state file records. */
export const ServeState = Schema.Struct({
  pid: Schema.Number,
  url: Schema.String,
  startedAt: Schema.String,
  version: Schema.optional(Schema.String),
  /** True when the server requires an API key (the key itself is never written). */
  apiKey: Schema.optional(Schema.Boolean)
})
/** What the state file records. */
export type ServeState = typeof ServeState.Type

/** Where the state file is, for an environment and home directory. */
export const statePath = (
  env: Readonly<Record<string, string | undefined>> = process.env,
  home: string = os.homedir()
): string => {
  const runtime = env["XDG_RUNTIME_DIR"]
  return runtime !== undefined && runtime !== "" && nodePath.isAbsolute(runtime)
    ? nodePath.join(runtime, "llmspell", "serve.json")
    : nodePath.join(home, ".llmspell", "serve.json")
}

/** True when a process with this pid exists (EPERM: it exists, but is someone else's). */
export const pidAlive = (pid: number): boolean => {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const decode = Schema.decodeUnknownOption(Schema.parseJson(ServeState))

/** The running server's state, if a state file names a live process; a missing, malformed or stale file is none. */
export const readServeState = (
  options: { readonly env?: Readonly<Record<string, string | undefined>>; readonly home?: string } = {}
): Effect.Effect<Option.Option<ServeState>> =>
  Effect.promise(() => fs.readFile(statePath(options.env, options.home), "utf8").catch(() => undefined)).pipe(
    Effect.map((text) => (text === undefined ? Option.none() : decode(text))),
    Effect.map(Option.filter((state) => pidAlive(state.pid)))
  )

/**
 * Writes the state file for the life of the scope: atomically on start, removed on close (only
 * if it is still ours: a second server may have replaced it). A file that cannot be written is a
 * warning, not a failure: the server works without it.
 */
export const holdServeState = (
  state: ServeState,
  options: { readonly env?: Readonly<Record<string, string | undefined>>; readonly home?: string } = {}
) => {
  const path = statePath(options.env, options.home)
  return Effect.acquireRelease(
    Effect.tryPromise(async () => {
      await fs.mkdir(nodePath.dirname(path), { recursive: true, mode: 0o700 })
      const temporary = `${path}.${process.pid}.tmp`
      await fs.writeFile(temporary, `${JSON.stringify(state)}\n`, { mode: 0o600 })
      await fs.rename(temporary, path)
      return path
    }).pipe(Effect.either),
    (written) =>
      written._tag === "Left"
        ? Effect.void
        : Effect.promise(async () => {
          const text = await fs.readFile(path, "utf8").catch(() => undefined)
          const current = text === undefined ? Option.none() : decode(text)
          if (Option.isSome(current) && current.value.pid === state.pid) await fs.rm(path, { force: true })
        })
  ).pipe(Effect.map((written) => (written._tag === "Left" ? Option.none<string>() : Option.some(written.right))))
}

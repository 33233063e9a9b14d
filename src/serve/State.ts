/**
 * The state file of a running `llmspell serve`: `$XDG_RUNTIME_DIR/llmspell/serve.json`, else
 * `~/.llmspell/serve.json`, holding its pid and URL (never the API key). The CLI's connect mode
 * reads it with `readServeState`, and ignores it when the pid it names is no longer running (a
 * server that was killed cannot remove it).
 *
 * It belongs to the server that wrote it (`claimServeState`): one server per state file. A second
 * `llmspell serve` on the same one is refused, naming the running one, instead of taking the file
 * over — which left commands running embedded beside a server that still held the models, and
 * deleted the file on exit while the first server ran on. One entry per server was the
 * alternative; it was not chosen because commands would then have to pick one of several servers
 * (and two servers over one store load models twice). A second server runs apart with its own
 * state directory (`XDG_RUNTIME_DIR=…`) and port, and is reached with `--host`. The claim is atomic
 * (a hard link of a complete temporary file, which fails if the file exists); a stale file (dead
 * pid, or a live pid with nothing listening at its URL: the pid was reused) is moved aside and
 * checked before it is replaced, so two servers starting at once cannot both win. On exit the file
 * is removed only if it is still this server's.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Schema from "effect/Schema"
import { UsageError } from "../domain/Errors.js"
import * as fs from "node:fs/promises"
import * as net from "node:net"
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

/** Where the state file is looked for, and (for tests) how a recorded server is judged running. */
export interface StateOptions {
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly home?: string
  /** Default: its pid is alive and not this process, and something accepts connections at its URL. */
  readonly isRunning?: (state: ServeState) => Effect.Effect<boolean>
}

/** True when something accepts a TCP connection at the URL's host and port (refused or unreachable: false). */
const accepting = (url: string): Effect.Effect<boolean> => {
  const target = Option.liftThrowable(() => new URL(url))()
  if (Option.isNone(target) || target.value.port === "") return Effect.succeed(false)
  const host = target.value.hostname.replace(/^\[(.*)\]$/, "$1")
  return Effect.async<boolean>((resume) => {
    const socket = net.connect(Number(target.value.port), host)
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
    return Effect.sync(() => socket.destroy())
  }).pipe(
    // a loopback connect answers at once; one that hangs is treated as a server that is there
    Effect.timeoutTo({ duration: Duration.seconds(10), onTimeout: () => true, onSuccess: (up) => up })
  )
}

/** A recorded server is running when its pid is alive (and not ours) and its port accepts connections. */
const recordedRunning = (state: ServeState): Effect.Effect<boolean> =>
  state.pid === process.pid || !pidAlive(state.pid) ? Effect.succeed(false) : accepting(state.url)

const readState = (path: string): Effect.Effect<string | undefined> => Effect.promise(() => fs.readFile(path, "utf8").catch(() => undefined))

const alreadyRunning = (path: string, state: ServeState) =>
  new UsageError({
    reason: `llmspell serve is already running here (pid ${state.pid}, ${state.url}, started ${state.startedAt}); ` +
      `it owns ${path}, through which commands find it`,
    suggestion: `use that one (commands find it by themselves), stop it first (kill ${state.pid}), or run a second server apart ` +
      `with its own state directory and port: XDG_RUNTIME_DIR=$(mktemp -d) llmspell serve --port 11436, reached with --host http://127.0.0.1:11436`
  })

type Claim = { readonly _tag: "Claimed" } | { readonly _tag: "Taken"; readonly by: ServeState } | { readonly _tag: "Unwritable" }

const UNWRITABLE: Claim = { _tag: "Unwritable" }

/**
 * The claim: a complete temporary file hard-linked to the path (which fails if it exists). A file
 * in the way that names a running server is theirs; a stale one is cleared and the link tried again.
 */
const attemptClaim = (path: string, content: string, isRunning: (state: ServeState) => Effect.Effect<boolean>): Effect.Effect<Claim> => {
  const unique = () => `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`
  const temporary = `${unique()}.tmp`
  const link = (tries: number): Effect.Effect<Claim> =>
    Effect.gen(function*() {
      const linked = yield* Effect.tryPromise(() => fs.link(temporary, path)).pipe(Effect.either)
      if (linked._tag === "Right") return { _tag: "Claimed" } as const
      if ((linked.left.error as NodeJS.ErrnoException | undefined)?.code !== "EEXIST" || tries === 0) return UNWRITABLE
      const found = yield* readState(path)
      const state = found === undefined ? Option.none<ServeState>() : decode(found)
      if (Option.isSome(state) && (yield* isRunning(state.value))) return { _tag: "Taken", by: state.value } as const
      if (found !== undefined) {
        // stale: moved aside, then checked to be what was judged stale (another claimer may have replaced it meanwhile)
        const aside = `${unique()}.stale`
        if ((yield* Effect.either(Effect.tryPromise(() => fs.rename(path, aside))))._tag === "Right") {
          if ((yield* readState(aside)) !== found) yield* Effect.promise(() => fs.link(aside, path).catch(() => undefined))
          yield* Effect.promise(() => fs.rm(aside, { force: true }))
        }
      }
      return yield* link(tries - 1)
    })
  return Effect.tryPromise(async () => {
    await fs.mkdir(nodePath.dirname(path), { recursive: true, mode: 0o700 })
    await fs.writeFile(temporary, content, { mode: 0o600 })
  }).pipe(
    Effect.matchEffect({ onFailure: () => Effect.succeed(UNWRITABLE), onSuccess: () => link(8) }),
    Effect.ensuring(Effect.promise(() => fs.rm(temporary, { force: true })))
  )
}

/**
 * Claims the state file for the life of the scope (see the module comment): the path when written,
 * none when the file cannot be written (a warning's worth: the server works without it), a
 * UsageError naming the server that holds it when one runs.
 */
export const claimServeState = (
  state: ServeState,
  options: StateOptions = {}
): Effect.Effect<Option.Option<string>, UsageError, Scope.Scope> => {
  const path = statePath(options.env, options.home)
  const content = `${JSON.stringify(state)}\n`
  return Effect.acquireRelease(
    attemptClaim(path, content, options.isRunning ?? recordedRunning),
    (claim) =>
      claim._tag !== "Claimed"
        ? Effect.void
        : Effect.promise(async () => {
          // only if it is still ours: nobody else should have replaced it, but if they did, it is theirs
          if ((await fs.readFile(path, "utf8").catch(() => undefined)) === content) await fs.rm(path, { force: true })
        })
  ).pipe(
    Effect.flatMap((claim) =>
      claim._tag === "Taken"
        ? Effect.fail(alreadyRunning(path, claim.by))
        : Effect.succeed(claim._tag === "Claimed" ? Option.some(path) : Option.none())
    )
  )
}

/** The server recorded in the state file, if one is running there (to word a failed start). */
export const runningServer = (options: StateOptions = {}): Effect.Effect<Option.Option<ServeState>> =>
  Effect.flatMap(readState(statePath(options.env, options.home)), (text) => {
    const state = text === undefined ? Option.none<ServeState>() : decode(text)
    return Option.isNone(state)
      ? Effect.succeed(Option.none())
      : Effect.map((options.isRunning ?? recordedRunning)(state.value), (up) => (up ? state : Option.none()))
  })

/** The error a second server gets when the port is taken by the server the state file names. */
export const alreadyRunningError = (options: StateOptions, state: ServeState): UsageError =>
  alreadyRunning(statePath(options.env, options.home), state)

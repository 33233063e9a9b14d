/**
 * The store's cross-process lock: one writer per store file, across processes and hosts. Built on
 * `proper-lockfile` (a directory created with mkdir, atomic everywhere including NFS; its mtime refreshed
 * while held), with an Effect API: `acquireFileLock` waits (on Effect's Clock, interruptibly) and releases
 * with its Scope; `tryFileLock` never waits (for `remove`'s "refuse while a pull writes").
 *
 * Staleness is by mtime: a holder refreshes its lock every few seconds, so a lock untouched for `staleMs`
 * was left by a process that died, on this host or another, and is taken over. A holder on this host whose
 * pid is gone is taken over at once (no need to wait for its mtime to age).
 *
 * Who holds a lock (`owner.json`: pid, host, start time) is written inside the lock directory by the mkdir
 * we hand proper-lockfile, before it stamps the directory's mtime, so the refresh never sees a foreign mtime;
 * the rmdir we hand it removes that file first. A plain file at the lock path (the lock format before
 * proper-lockfile) is removed like a directory once it is stale.
 *
 * Only the polling is ours: proper-lockfile's own retries (timers outside the Clock, not interruptible)
 * are off, and each attempt is one short uninterruptible step.
 */
// node:fs because proper-lockfile takes node's fs functions (the mkdir/rmdir it is handed) and calls them itself
import * as nodeFs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { ensureDirectory } from "./ensureDirectory.js"

/** Who holds a lock, as its owner wrote it. */
export interface LockHolder {
  readonly pid: number
  readonly host: string
  readonly startedAt: string
}

/** The lock could not be created or inspected (permissions, a file in place of the folder, …). */
export class FileLockError extends Data.TaggedError("FileLockError")<{
  readonly path: string
  readonly reason: string
}> {}

/** Options of a lock. */
export interface FileLockOptions {
  /** A lock not refreshed for this long is abandoned and taken over (default 30 s; at least 2 s). */
  readonly staleMs?: number | undefined
  /** How often a waiting acquire tries again, on Effect's Clock (default 500 ms). */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** Called once, when the first attempt finds the lock held (undefined: the holder is not known). */
  readonly onWait?: ((holder: LockHolder | undefined) => Effect.Effect<void>) | undefined
}

const DEFAULT_STALE_MS = 30_000
const DEFAULT_POLL = Duration.millis(500)
const OWNER = "owner.json"

/** `describeHolder` text for messages: "pid 123 on host". */
export const describeHolder = (holder: LockHolder | undefined) =>
  holder !== undefined ? `pid ${holder.pid} on ${holder.host}` : "another llmspell process"

const ownerText = () =>
  JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() } satisfies LockHolder)

type Callback = (err?: NodeJS.ErrnoException | null) => void

/** Removes a lock directory (its owner file first); a plain file there (the old lock format) is unlinked. */
const removeLockPath = (p: string, cb: Callback) =>
  nodeFs.unlink(path.join(p, OWNER), () =>
    nodeFs.rmdir(p, (err) => {
      if (err?.code === "ENOTDIR") return nodeFs.unlink(p, cb)
      cb(err)
    }))

/** The `fs` proper-lockfile uses: node's, with the owner file written on creation and removed on removal. */
const lockFs = {
  ...nodeFs,
  mkdir: (p: string, cb: Callback) =>
    nodeFs.mkdir(p, (err) => {
      if (err) return cb(err)
      nodeFs.writeFile(path.join(p, OWNER), ownerText(), (werr) => {
        if (!werr) return cb(null)
        removeLockPath(p, () => cb(werr))
      })
    }),
  rmdir: removeLockPath,
  rmdirSync: (p: string) => {
    try {
      nodeFs.unlinkSync(path.join(p, OWNER))
    } catch {
      // no owner file
    }
    nodeFs.rmdirSync(p)
  }
}

type Lockfile = typeof import("proper-lockfile")
let loaded: Promise<Lockfile> | undefined
// Loaded on the first lock: the CLI starts without it (and without the exit hooks it installs).
const lockfile = () => (loaded ??= import("proper-lockfile").then((m) => ((m as { default?: Lockfile }).default ?? m) as Lockfile))

/** Reads a lock's owner; undefined when it is gone, half-written or not ours to read. */
export const readHolder = (lockPath: string): Promise<LockHolder | undefined> =>
  nodeFs.promises.readFile(path.join(lockPath, OWNER), "utf8").then(
    (text) => {
      try {
        const v = JSON.parse(text) as Partial<LockHolder>
        return typeof v.pid === "number" && typeof v.host === "string"
          ? { pid: v.pid, host: v.host, startedAt: String(v.startedAt ?? "") }
          : undefined
      } catch {
        return undefined
      }
    },
    () => undefined
  )

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

type Attempt =
  | { readonly acquired: true; readonly release: () => Promise<void> }
  | { readonly acquired: false; readonly holder: LockHolder | undefined }

/** One try: mkdir (taking over a stale lock), or the holder of the lock in the way. */
const attemptOnce = async (lockPath: string, staleMs: number): Promise<Attempt> => {
  const lib = await lockfile()
  await ensureDirectory(path.dirname(lockPath))
  const options = {
    lockfilePath: lockPath,
    realpath: false,
    retries: 0,
    stale: staleMs,
    update: Math.max(1000, Math.floor(staleMs / 6)),
    fs: lockFs,
    // The refresh failed for longer than the stale time (a suspended machine): another process may now
    // write the file too. Nothing sensible can stop this pull here; the rename into place stays atomic.
    onCompromised: () => undefined
  }
  for (let tries = 0; ; tries++) {
    try {
      // The file locked is the lock path itself: proper-lockfile keys its table by it and never touches it.
      const release = await lib.lock(lockPath, options)
      return { acquired: true, release: () => release().catch(() => undefined) }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ELOCKED") throw e
    }
    const holder = await readHolder(lockPath)
    // A holder on this host whose process is gone: no need to wait for its mtime to age.
    if (tries === 0 && holder !== undefined && holder.host === os.hostname() && !isAlive(holder.pid)) {
      const again = await readHolder(lockPath)
      if (again?.pid === holder.pid && again.startedAt === holder.startedAt) {
        await new Promise<void>((resolve) => removeLockPath(lockPath, () => resolve()))
      }
      continue
    }
    return { acquired: false, holder }
  }
}

/** One try, uninterruptible; an acquired lock's release is added to the Scope in the same step. */
const attempt = (lockPath: string, staleMs: number) =>
  Effect.uninterruptible(
    Effect.tryPromise({
      try: () => attemptOnce(lockPath, staleMs),
      catch: (e) => new FileLockError({ path: lockPath, reason: (e as Error)?.message ?? String(e) })
    }).pipe(
      Effect.tap((a) => (a.acquired ? Effect.addFinalizer(() => Effect.promise(a.release)) : Effect.void))
    )
  )

/**
 * Takes the lock, held until the Scope closes. Waits while another process holds it, trying again every
 * `pollInterval` of Effect's Clock; interrupting the wait leaves nothing behind.
 */
export const acquireFileLock = (
  lockPath: string,
  options: FileLockOptions = {}
): Effect.Effect<void, FileLockError, Scope.Scope> => {
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS
  const poll = options.pollInterval ?? DEFAULT_POLL
  let announced = false
  const loop: Effect.Effect<void, FileLockError, Scope.Scope> = Effect.flatMap(attempt(lockPath, staleMs), (a) => {
    if (a.acquired) return Effect.void
    const wait = announced || options.onWait === undefined ? Effect.void : options.onWait(a.holder)
    announced = true
    return wait.pipe(Effect.zipRight(Effect.sleep(poll)), Effect.zipRight(loop))
  })
  return Effect.suspend(() => loop)
}

/**
 * Takes the lock without waiting: `undefined` when acquired (held until the Scope closes), else what is
 * known of the holder (`{ holder: undefined }` when it could not be read).
 */
export const tryFileLock = (
  lockPath: string,
  options: Pick<FileLockOptions, "staleMs"> = {}
): Effect.Effect<{ readonly holder: LockHolder | undefined } | undefined, FileLockError, Scope.Scope> =>
  Effect.map(attempt(lockPath, options.staleMs ?? DEFAULT_STALE_MS), (a) => (a.acquired ? undefined : { holder: a.holder }))

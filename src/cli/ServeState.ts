/**
 * Finds a running `llmspell serve` from its state file: `$XDG_RUNTIME_DIR/llmspell/serve.json`,
 * else `~/.llmspell/serve.json`, holding `{ pid, url }`. A file whose pid is dead (a server that was
 * killed) is ignored, as is one that cannot be read or parsed. Reads only; the server writes it.
 * (A stand-in for the server's own `readServeState()`: the lead folds the two into one.)
 */
import * as Effect from "effect/Effect"
import { readFile } from "node:fs/promises"
import { join } from "node:path"

/** What a running server records. */
export interface ServeState {
  readonly pid: number
  readonly url: string
}

/** Where the state file is, for this environment. */
export const serveStatePath = (env: Readonly<Record<string, string | undefined>>, home: string): string => {
  const runtime = env["XDG_RUNTIME_DIR"]
  return runtime !== undefined && runtime.length > 0 ? join(runtime, "llmspell", "serve.json") : join(home, ".llmspell", "serve.json")
}

/** True when a process with this pid exists (EPERM: it exists, owned by someone else). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** The running server the state file names, or undefined. Never fails. */
export const readServeState = (
  env: Readonly<Record<string, string | undefined>>,
  home: string
): Effect.Effect<ServeState | undefined> =>
  Effect.promise(() => readFile(serveStatePath(env, home), "utf8").then((text) => text, () => undefined)).pipe(
    Effect.map((text) => {
      if (text === undefined) return undefined
      try {
        const state = JSON.parse(text) as { pid?: unknown; url?: unknown }
        if (typeof state.pid !== "number" || !Number.isInteger(state.pid) || state.pid <= 0) return undefined
        if (typeof state.url !== "string" || !/^https?:\/\//.test(state.url)) return undefined
        return alive(state.pid) ? { pid: state.pid, url: state.url } : undefined
      } catch {
        return undefined
      }
    })
  )

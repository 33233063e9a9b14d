/**
 * The I/O behind `llmspell model install-ollama`: asks `ollama --version`, checks that the
 * installer's URL is reachable, and runs the chosen install action. What to do is decided by the
 * pure `domain/InstallOllama.ts`; this module only carries it out. Node only (child processes).
 */
import { spawn } from "node:child_process"
import * as Effect from "effect/Effect"
import { BackendError, DownloadFailed } from "../../domain/Errors.js"
import { type InstallAction, parseOllamaVersion } from "../../domain/InstallOllama.js"

/** The version of the `ollama` command on PATH, or undefined when there is none (or it does not answer in 5 s). */
export const installedVersion: Effect.Effect<string | undefined> = Effect.async<string | undefined>((resume) => {
  let output = ""
  // No spawn `timeout` option: its timer outlives a failed spawn (ENOENT) and keeps the process up.
  const child = spawn("ollama", ["--version"], { stdio: ["ignore", "pipe", "pipe"] })
  child.stdout.on("data", (chunk: Buffer) => void (output += chunk.toString("utf8")))
  child.stderr.on("data", (chunk: Buffer) => void (output += chunk.toString("utf8")))
  child.on("error", () => resume(Effect.succeed(undefined)))
  child.on("close", (code) => resume(Effect.succeed(code === 0 ? parseOllamaVersion(output) ?? output.trim() : undefined)))
  return Effect.sync(() => void child.kill("SIGKILL"))
}).pipe(
  Effect.timeoutTo({ duration: "5 seconds", onTimeout: () => undefined, onSuccess: (v) => v }),
  Effect.withSpan("OllamaInstaller.installedVersion")
)

/** Fails with a clear DownloadFailed when `url` cannot be reached (no network, DNS, proxy). */
export const checkReachable = (url: string, timeoutMs = 10_000): Effect.Effect<void, DownloadFailed> =>
  Effect.tryPromise({
    try: (signal) => fetch(url, { method: "HEAD", signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) }),
    catch: (cause) => cause
  }).pipe(
    Effect.flatMap((response) =>
      response.status < 500 ? Effect.void : Effect.fail(new Error(`HTTP ${response.status}`) as unknown)
    ),
    Effect.mapError((cause) => {
      const e = cause as { name?: string; message?: string; cause?: { code?: string } }
      const why = e.name === "TimeoutError"
        ? `no answer within ${timeoutMs / 1000} s`
        : e.cause?.code ?? e.message ?? String(cause)
      return new DownloadFailed({
        url,
        reason: `cannot reach ${new URL(url).origin} (${why}); is this machine offline?`,
        suggestion: "connect to the internet (or set a working proxy) and run it again, or install Ollama by hand: " +
          "https://ollama.com/download; nothing was changed",
        cause
      })
    }),
    Effect.withSpan("OllamaInstaller.checkReachable", { attributes: { url } })
  )

/** Runs the action in the foreground: it may prompt (sudo); its output goes to our stderr, never stdout. */
export const run = (action: InstallAction): Effect.Effect<void, BackendError> =>
  Effect.async<void, BackendError>((resume) => {
    const [command, ...args] = action.argv
    const child = spawn(command, args, { stdio: ["inherit", 2, "inherit"] })
    const failed = (reason: string, cause?: unknown) =>
      resume(Effect.fail(
        new BackendError({
          backend: "ollama",
          operation: "install",
          reason,
          suggestion: "install Ollama by hand: https://ollama.com/download",
          ...(cause !== undefined ? { cause } : {})
        })
      ))
    child.on("error", (cause) => failed(`could not start ${command}: ${cause.message}`, cause))
    child.on("close", (code, signal) =>
      code === 0
        ? resume(Effect.void)
        : failed(signal !== null ? `the installer was stopped by ${signal}` : `the installer exited with code ${code}`))
    return Effect.sync(() => void child.kill("SIGTERM"))
  }).pipe(Effect.withSpan("OllamaInstaller.run", { attributes: { argv: action.argv.join(" ") } }))

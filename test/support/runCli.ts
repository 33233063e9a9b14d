/**
 * Runs the built CLI (`dist/cli.js`) in a child process, as a user would, with an isolated HOME and
 * XDG dir so no test reads or writes the real user's configuration. Shared by the CLI test files.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root. */
export const root = fileURLToPath(new URL("../..", import.meta.url))
/** The bundled CLI. */
export const bin = join(root, "dist", "cli.js")

/** What a CLI run printed and how it exited. */
export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Builds dist/cli.js if it is missing (`npm test` builds it before vitest runs). */
export const ensureBuilt = () => {
  if (!existsSync(bin) || !existsSync(join(root, "dist", "gguf-worker.js")) || !existsSync(join(root, "dist", "ui", "index.html"))) execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: root, stdio: "ignore" })
}

/** An environment with HOME and XDG_CONFIG_HOME inside `dir`, no colours, and the given extras. */
export const isolatedEnv = (dir: string, extra: Record<string, string> = {}): Record<string, string> => ({
  HOME: dir,
  XDG_CONFIG_HOME: join(dir, "xdg"),
  PATH: process.env["PATH"] ?? "",
  NO_COLOR: "1",
  ...extra
})

/**
 * How a CLI run reaches its models: `embedded` (in the CLI process, as without a server) or
 * `{ host }`: connected to the server at that URL (test/support/startServer.ts), via `--host`.
 */
export type CliMode = "embedded" | { readonly host: string }

/** Runs `node dist/cli.js …args` (or another command) and collects its output. */
export const runCli = (
  args: ReadonlyArray<string>,
  options: {
    readonly cwd: string
    readonly env: Record<string, string>
    readonly command?: string
    readonly argv?: ReadonlyArray<string>
    readonly mode?: CliMode
    /** Written to the CLI's stdin (a pipe), then closed; without it stdin is not open. */
    readonly input?: string
  }
): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const mode = options.mode ?? "embedded"
    const all = mode === "embedded" ? args : ["--host", mode.host, ...args]
    const child = spawn(options.command ?? process.execPath, options.argv ?? [bin, ...all], {
      cwd: options.cwd,
      env: options.env,
      stdio: [options.input !== undefined ? "pipe" : "ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (c: Buffer) => void (stdout += c.toString("utf8")))
    child.stderr!.on("data", (c: Buffer) => void (stderr += c.toString("utf8")))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
    if (options.input !== undefined) child.stdin!.end(options.input)
  })

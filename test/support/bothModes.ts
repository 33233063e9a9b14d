/**
 * The CLI test matrix: a CLI test file wraps its tests in `describe.each(CLI_MODES)` and runs each
 * command through `modeRunner`, so the same assertions hold for the CLI embedded (the stack in the
 * CLI process) and connected (`--host` to a kernel server over the same environment, started
 * fresh for each test so it sees that test's fake servers).
 */
import { afterEach, beforeEach } from "vitest"
import { type CliMode, type CliResult, runCli } from "./runCli.js"
import { startServer, type TestServer } from "./startServer.js"

export const CLI_MODES = ["embedded", "connected"] as const
export type CliModeName = (typeof CLI_MODES)[number]

/**
 * Registers (in the enclosing describe) a server per test in connected mode, started after the
 * file's own `beforeEach` hooks with `env()` and `cwd()` as they are then; returns a runner.
 */
export const modeRunner = (
  mode: CliModeName,
  setup: { readonly env: () => Record<string, string>; readonly cwd: () => string }
) => {
  let server: TestServer | undefined
  beforeEach(async () => {
    if (mode === "connected") server = await startServer({ env: setup.env(), cwd: setup.cwd() })
  })
  afterEach(async () => {
    await server?.close()
    server = undefined
  })
  const cliMode = (): CliMode => (mode === "embedded" ? "embedded" : { host: server!.url })
  /** The global options that put a run in this mode (for commands run through a shell). */
  const modeArgs = (): ReadonlyArray<string> => (mode === "embedded" ? [] : ["--host", server!.url])
  const run = (
    args: ReadonlyArray<string>,
    options: { readonly env?: Record<string, string>; readonly command?: string; readonly argv?: ReadonlyArray<string> } = {}
  ): Promise<CliResult> =>
    runCli(args, {
      cwd: setup.cwd(),
      env: options.env ?? setup.env(),
      mode: cliMode(),
      ...(options.command !== undefined ? { command: options.command } : {}),
      ...(options.argv !== undefined ? { argv: options.argv } : {})
    })
  return { run, modeArgs }
}

/**
 * The program `llmspell launch` runs in the foreground, while it runs. The terminal sends Ctrl-C to
 * the whole foreground process group, so the agent gets it by itself, and for an interactive agent
 * it means "stop that answer" (twice: "quit"), not "end llmspell": `bin.ts` leaves SIGINT to it,
 * passes SIGTERM on (sent to llmspell alone), and exits with the agent's exit code.
 */
import type { ChildProcess } from "node:child_process"

/** The agent running now, and its exit code once it has ended. */
export const foreground: { child: ChildProcess | undefined; exitCode: number | undefined } = {
  child: undefined,
  exitCode: undefined
}

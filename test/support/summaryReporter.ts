/**
 * Prints one plain closing line, `tests: N passed, N failed, N skipped`, after vitest's own summary,
 * so CI (which reads that line) can count the run whatever reporter vitest uses; and, at the start
 * and just before it, which Node and npm ran the suite (package.json's engines say which may).
 */
import type { Reporter } from "vitest/reporters"

type AnyTask = { type: string; mode?: string; result?: { state?: string }; tasks?: ReadonlyArray<AnyTask> }

const count = (tasks: ReadonlyArray<AnyTask>, acc: { passed: number; failed: number; skipped: number }) => {
  for (const task of tasks) {
    if (task.tasks) count(task.tasks, acc)
    if (task.type !== "test") continue
    const state = task.result?.state
    if (state === "pass") acc.passed++
    else if (state === "fail") acc.failed++
    else if (task.mode === "skip" || task.mode === "todo" || state === "skip") acc.skipped++
    else acc.failed++ // a test that never reported a result did not pass
  }
  return acc
}

/** `node v20.20.2, npm 11.19.1` (npm from the user agent npm gives the scripts it runs). */
export const runtimeLine = (env: Readonly<Record<string, string | undefined>> = process.env): string => {
  const npm = /\bnpm\/(\S+)/.exec(env["npm_config_user_agent"] ?? "")?.[1]
  return `node ${process.version}, npm ${npm ?? "unknown (not run through npm)"}, ${process.platform}-${process.arch}`
}

export default class SummaryReporter implements Reporter {
  onInit() {
    process.stdout.write(`runtime: ${runtimeLine()}\n`)
  }

  onFinished(files: ReadonlyArray<AnyTask> = [], errors: ReadonlyArray<unknown> = []) {
    const acc = count(files, { passed: 0, failed: 0, skipped: 0 })
    const failed = acc.failed + errors.length
    process.stdout.write(`\nruntime: ${runtimeLine()}\ntests: ${acc.passed} passed, ${failed} failed, ${acc.skipped} skipped\n`)
  }
}

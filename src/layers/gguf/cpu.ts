/**
 * How many CPU threads llama.cpp should use here: the cores this process may really use (affinity
 * mask, cgroup quota) and the `threads = "auto"` rule. Pure but for reading `/sys/fs/cgroup`.
 */
import { readFileSync } from "node:fs"
import * as os from "node:os"

/** CPUs this process may really use: the affinity mask and the cgroup quota (containers). */
export const availableCores = (readCgroup: () => string | undefined = readCpuMax): number => {
  const byAffinity = os.availableParallelism()
  const quota = parseCpuMax(readCgroup())
  return Math.max(1, quota !== undefined ? Math.min(byAffinity, Math.ceil(quota)) : byAffinity)
}

/** Parses cgroup v2 `cpu.max` ("200000 100000" → 2 CPUs; "max 100000" → unlimited). */
export const parseCpuMax = (text: string | undefined): number | undefined => {
  if (text === undefined) return undefined
  const [quota, period] = text.trim().split(/\s+/)
  if (quota === undefined || quota === "max" || period === undefined) return undefined
  const q = Number(quota)
  const p = Number(period)
  return q > 0 && p > 0 ? q / p : undefined
}

const readCpuMax = (): string | undefined => {
  try {
    return readFileSync("/sys/fs/cgroup/cpu.max", "utf8")
  } catch {
    return undefined
  }
}

/**
 * `threads = "auto"`: one core less than available, at least one. llama.cpp's worker threads spin
 * while they wait for each other, so with every core busy (the JS thread, other processes) a
 * 2-thread context on a 2-core machine ran 8–25× slower than 1 thread (see BENCHMARKS.md).
 */
export const autoThreads = (cores: number = availableCores()): number => Math.max(1, cores - 1)

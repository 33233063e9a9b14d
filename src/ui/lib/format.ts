/**
 * How the page writes quantities: bytes as the CLI writes them (src/domain/Format.ts), durations,
 * rates, and when a loaded model unloads. Pure.
 */
export { formatBytes } from "../../domain/Format.js"

/** "850 ms", "4.2 s", "3 min 5 s", "2 h 10 min". */
export const formatDuration = (ms: number): string => {
  if (!Number.isFinite(ms) || ms < 0) return "?"
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`
  const h = Math.floor(m / 60)
  return `${h} h ${m - h * 60} min`
}

/** A count with thousands separators. */
export const formatCount = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "?")

/** "in 4 min", "in 12 s", "never", "now": when a loaded model unloads if unused, from its expiry date. */
export const unloadsIn = (expiresAt: string | undefined, busy: boolean, now: number): string => {
  if (expiresAt === undefined) return busy ? "in use" : "never"
  const ms = Date.parse(expiresAt) - now
  if (!Number.isFinite(ms)) return "unknown"
  if (ms > 50 * 365 * 86_400_000) return "never"
  if (ms <= 0) return "now"
  return `in ${formatDuration(ms)}`
}

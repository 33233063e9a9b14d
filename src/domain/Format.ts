/**
 * How llmspell writes quantities for people: byte counts, durations and rates. One module, so a
 * table, a progress line and an error message say "1.5 GiB" the same way. Pure: no I/O.
 */

/** Human-readable byte counts (binary units), used in messages, tables and progress lines. */
export const formatBytes = (bytes: number): string => {
  if (!Number.isFinite(bytes)) return "?"
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`
}

/** Shortens text to `n` characters with an ellipsis (for names quoted inside messages). */
export const truncate = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}…` : s)

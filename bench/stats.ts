/** Statistics the benchmarks share. */

/** The median of the finite values (the mean of the middle two for an even count); NaN when there are none. */
export const median = (xs: ReadonlyArray<number>): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

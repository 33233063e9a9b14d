/**
 * How long a server asked to wait: the one reading of `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an
 * HTTP date) and of the `retry-after-ms` some providers add, shared by the hub client and the cloud
 * providers' HTTP layer. Pure: the caller passes the headers and the time now.
 */

/** The two headers, as the caller read them (absent: undefined or null). */
export interface RetryAfterHeaders {
  readonly retryAfter?: string | null | undefined
  readonly retryAfterMs?: string | null | undefined
}

const DECIMAL = /^\d+(\.\d+)?$/

/** Milliseconds to wait, never negative; undefined when neither header says anything usable. */
export const retryAfterMillis = (headers: RetryAfterHeaders, now: number): number | undefined => {
  const ms = headers.retryAfterMs?.trim()
  if (ms !== undefined && DECIMAL.test(ms)) return Number(ms)
  const value = headers.retryAfter?.trim()
  if (value === undefined || value.length === 0) return undefined
  if (DECIMAL.test(value)) return Number(value) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * A pull as the page shows it, from the NDJSON records of Ollama's `/api/pull` (which `llmspell
 * serve` answers for every backend): `pulling manifest`, `pulling <file>` with `total` and
 * `completed` per file, `verifying sha256 digest`, `writing manifest`, `success`, or an `error`
 * line. Bytes are summed over the files; the rate and ETA come from the same function the CLI's
 * progress uses (src/domain/TransferRate.ts), counting only bytes that arrived during this pull
 * (a resumed pull starts with bytes already there). Pure: the caller gives the clock.
 */
import { transferRate } from "../../domain/TransferRate.js"

/** The state of one pull. */
export interface PullState {
  readonly spec: string
  readonly status: string
  readonly phase: "starting" | "downloading" | "verifying" | "done" | "failed" | "cancelled"
  /** Per file (digest or name): bytes present and the size when known. */
  readonly files: Readonly<Record<string, { readonly completed: number; readonly total: number | undefined }>>
  readonly completedBytes: number
  readonly totalBytes: number | undefined
  readonly bytesPerSecond: number | undefined
  readonly etaSeconds: number | undefined
  readonly error: string | undefined
  /** The bytes present and the time when the first byte count arrived: the rate counts from there. */
  readonly baseline: { readonly at: number; readonly completed: number } | undefined
}

/** A pull just asked for. */
export const startPull = (spec: string): PullState => ({
  spec,
  status: "starting",
  phase: "starting",
  files: {},
  completedBytes: 0,
  totalBytes: undefined,
  bytesPerSecond: undefined,
  etaSeconds: undefined,
  error: undefined,
  baseline: undefined
})

const num = (x: unknown): number | undefined => (typeof x === "number" && Number.isFinite(x) && x >= 0 ? x : undefined)

/** The pull after one record, received at `now` (ms). */
export const applyPullRecord = (state: PullState, record: unknown, now: number): PullState => {
  if (typeof record !== "object" || record === null) return state
  const r = record as Record<string, unknown>
  if (typeof r["error"] === "string") return { ...state, phase: "failed", error: r["error"], status: "failed" }
  const status = typeof r["status"] === "string" ? r["status"] : state.status
  if (status === "success") {
    return { ...state, status, phase: "done", etaSeconds: 0, completedBytes: state.totalBytes ?? state.completedBytes }
  }
  if (/^verifying/.test(status) || /^writing/.test(status)) return { ...state, status, phase: "verifying", etaSeconds: undefined }
  const key = typeof r["digest"] === "string" && r["digest"] !== "" ? r["digest"] : undefined
  if (key === undefined) return { ...state, status }
  const total = num(r["total"])
  const completed = num(r["completed"])
  const before = state.files[key]
  const files = { ...state.files, [key]: { completed: completed ?? before?.completed ?? 0, total: total ?? before?.total } }
  const entries = Object.values(files)
  const completedBytes = entries.reduce((sum, f) => sum + f.completed, 0)
  const totalBytes = entries.every((f) => f.total !== undefined) ? entries.reduce((sum, f) => sum + f.total!, 0) : undefined
  const baseline = state.baseline ?? (completed !== undefined ? { at: now, completed: completedBytes } : undefined)
  const rate = baseline === undefined ? {} : transferRate({
    phase: "downloading",
    downloadedBytes: completedBytes - baseline.completed,
    elapsedSeconds: (now - baseline.at) / 1000,
    completedBytes,
    totalBytes
  })
  return {
    ...state,
    status,
    phase: "downloading",
    files,
    completedBytes,
    totalBytes,
    baseline,
    bytesPerSecond: rate.bytesPerSecond ?? state.bytesPerSecond,
    etaSeconds: rate.etaSeconds ?? state.etaSeconds
  }
}

/** The pull ended without `success`: stopped by the user, or cut off. */
export const endPull = (state: PullState, how: "cancelled" | { readonly error: string }): PullState =>
  state.phase === "done" || state.phase === "failed"
    ? state
    : how === "cancelled"
    ? { ...state, phase: "cancelled", status: "cancelled", etaSeconds: undefined }
    : { ...state, phase: "failed", status: "failed", error: how.error, etaSeconds: undefined }

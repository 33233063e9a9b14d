/**
 * The progress of one pull as `PullProgress` events: one state per file, snapshotted into an event per 1%
 * or per MiB (whichever is smaller: a few hundred events for any size), with the transfer rate, and the
 * final `done` event carrying the result. The same event shape for every phase and backend.
 */
import * as path from "node:path"
import type { PullFileProgress, PullProgress, PullResult } from "../../domain/Types.js"
import { transferRate } from "../../domain/TransferRate.js"
import type { InstalledModel, StoredBlob, StoreRoot } from "../../services/ModelStore.js"
import type { PlannedFile, Reused } from "./pullPlan.js"

const PROGRESS_EVERY_BYTES = 1024 * 1024

/** What every event of a pull carries. */
export interface PullBase {
  readonly model: string
  readonly backend: "gguf"
  readonly instance: string
}

/** The `done` event of a pull. */
export const doneEvent = (
  base: PullBase,
  store: StoreRoot,
  installed: InstalledModel,
  outcome: {
    readonly downloadedBytes: number
    readonly alreadyPresent: boolean
    /** Set when some file could not be verified against a sha256 from the hub. */
    readonly note?: string | undefined
    readonly satisfiedFrom?: StoredBlob["store"] | undefined
  }
): PullProgress => {
  const result: PullResult = {
    model: installed.name,
    backend: "gguf",
    instance: store.instance,
    alreadyPresent: outcome.alreadyPresent,
    sizeBytes: installed.sizeBytes,
    path: installed.primaryPath,
    files: installed.files.map((f) => f.path),
    downloadedBytes: outcome.downloadedBytes,
    verified: outcome.note === undefined,
    ...(outcome.satisfiedFrom !== undefined ? { satisfiedFrom: outcome.satisfiedFrom } : {})
  }
  return {
    ...base,
    model: installed.name,
    phase: "done",
    files: installed.files.map((f) => ({
      name: path.basename(f.path),
      completedBytes: f.sizeBytes,
      totalBytes: f.sizeBytes,
      status: "done" as const
    })),
    completedBytes: installed.sizeBytes,
    totalBytes: installed.sizeBytes,
    ...(outcome.note !== undefined
      ? { message: outcome.note }
      : outcome.satisfiedFrom !== undefined
      ? { message: `already on this machine (${outcome.satisfiedFrom}): 0 B downloaded` }
      : {}),
    result
  }
}

type FileState = PullFileProgress & { completedBytes: number; status: PullFileProgress["status"] }

/** The download's progress: per-file states, bytes that crossed the network, and the events they make. */
export class DownloadProgress {
  private readonly states: ReadonlyArray<FileState>
  private readonly totalBytes: number
  private readonly step: number
  private readonly startedAt = performance.now()
  private lastEmitted = 0
  /** Bytes that crossed the network in this pull. */
  downloadedBytes = 0

  constructor(
    private readonly base: () => PullBase,
    plan: ReadonlyArray<PlannedFile>,
    reused: Reused,
    private readonly emit: (p: PullProgress) => void
  ) {
    this.states = plan.map((p, i) => {
      const done = p.keep || reused.has(i)
      return {
        name: p.file.path,
        completedBytes: done ? p.file.size : p.partialSize,
        totalBytes: p.file.size,
        status: done ? "done" : "pending"
      }
    })
    this.totalBytes = plan.reduce((n, p) => n + p.file.size, 0)
    this.step = Math.max(1, Math.min(PROGRESS_EVERY_BYTES, Math.floor(this.totalBytes / 100)))
  }

  /** Emits the current state. */
  report(phase: PullProgress["phase"], message?: string): void {
    const completedBytes = this.states.reduce((n, s) => n + s.completedBytes, 0)
    const elapsedSeconds = (performance.now() - this.startedAt) / 1000
    this.lastEmitted = this.downloadedBytes
    this.emit({
      ...this.base(),
      phase,
      files: this.states.map((s) => ({ ...s })),
      completedBytes,
      totalBytes: this.totalBytes,
      ...transferRate({ phase, downloadedBytes: this.downloadedBytes, elapsedSeconds, completedBytes, totalBytes: this.totalBytes }),
      ...(message !== undefined ? { message } : {})
    })
  }

  /** `n` more bytes of file `index` arrived; the file is now at `offset`. */
  bytes(index: number, n: number, offset: number): void {
    const state = this.states[index]!
    this.downloadedBytes += n
    state.completedBytes = offset
    state.status = "downloading"
    if (this.downloadedBytes - this.lastEmitted >= this.step) this.report("downloading")
  }

  /** File `index` starts again from byte 0 (the server ignored a resume). */
  restart(index: number): void {
    this.states[index]!.completedBytes = 0
  }

  /** File `index` is being verified. */
  verifying(index: number, file: string): void {
    this.states[index]!.status = "verifying"
    this.report("downloading", `verifying ${file}`)
  }

  /** File `index` is done. */
  done(index: number): void {
    this.states[index]!.status = "done"
  }
}

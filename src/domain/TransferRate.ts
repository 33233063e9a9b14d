/**
 * Rate and ETA of a download, the same for every backend's `PullProgress` (hub files, Ollama
 * layers). Pure: the caller measures bytes and time.
 */

/** What a pull knows at one moment. */
export interface TransferSample {
  readonly phase: string
  /** Bytes that crossed the network in this pull (resumed bytes excluded). */
  readonly downloadedBytes: number
  readonly elapsedSeconds: number
  /** Bytes present so far, resumed ones included. */
  readonly completedBytes: number
  readonly totalBytes: number | undefined
}

/** Below this, a rate is mostly noise (connection set-up, the first buffer). */
const MIN_SECONDS = 0.2

/** `bytesPerSecond` and `etaSeconds` while downloading, once they mean something; nothing otherwise. */
export const transferRate = (
  sample: TransferSample
): { readonly bytesPerSecond?: number; readonly etaSeconds?: number } => {
  if (sample.phase !== "downloading" || sample.elapsedSeconds < MIN_SECONDS || sample.downloadedBytes <= 0) return {}
  const rate = sample.downloadedBytes / sample.elapsedSeconds
  return {
    bytesPerSecond: Math.round(rate),
    ...(sample.totalBytes !== undefined
      ? { etaSeconds: Math.max(0, Math.round((sample.totalBytes - sample.completedBytes) / rate)) }
      : {})
  }
}

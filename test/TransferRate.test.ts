import { describe, expect, it } from "vitest"
import { transferRate } from "../src/domain/TransferRate.js"

describe("transferRate", () => {
  const sample = { phase: "downloading", downloadedBytes: 500, elapsedSeconds: 2, completedBytes: 700, totalBytes: 1200 }

  it("counts only the bytes of this pull for the rate, and what is left for the ETA", () => {
    expect(transferRate(sample)).toEqual({ bytesPerSecond: 250, etaSeconds: 2 })
  })

  it("says nothing outside the download, too early, before any byte, or without a total for the ETA", () => {
    expect(transferRate({ ...sample, phase: "verifying" })).toEqual({})
    expect(transferRate({ ...sample, elapsedSeconds: 0.1 })).toEqual({})
    expect(transferRate({ ...sample, downloadedBytes: 0 })).toEqual({})
    expect(transferRate({ ...sample, totalBytes: undefined })).toEqual({ bytesPerSecond: 250 })
  })
})

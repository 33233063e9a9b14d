import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // node-llama-cpp and the fake servers use real threads/sockets: forks isolate native crashes per file.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // A hang detector, not a budget: with two copies of the suite on a busy 2-core machine (load ~28), CLI
    // runs, worker start-ups and in-process status took over 30 s in tests that pass on a quiet machine.
    // Tests that need "only X can end this in time" set the competing timeout far beyond it (an hour).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default", "./test/support/summaryReporter.ts"]
  }
})

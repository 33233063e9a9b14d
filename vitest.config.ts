import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // node-llama-cpp and the fake servers use real threads/sockets: forks isolate native crashes per file.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default", "./test/support/summaryReporter.ts"]
  }
})

import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/globalCluster.ts"],
    reporters: ["default", "./test/support/summaryReporter.ts"],
    // Each test file starts its own embedded PostgreSQL, so two files at a
    // time keeps a 2-core machine responsive.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000
  }
})

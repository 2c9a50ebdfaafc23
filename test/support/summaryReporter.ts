/**
 * Prints one closing line, `N passed, N failed, N skipped`, that CI reads to
 * know how many tests ran.
 */
import type { Reporter, TestModule } from "vitest/node"

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      // A failed hook skips the tests after it. Those count as failed, so
      // that the line cannot read as a clean run when the run failed.
      const moduleFailed = module.state() === "failed"
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed" || moduleFailed) failed++
        else skipped++
      }
      if (module.state() === "failed" && module.children.size === 0) failed++
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}

/**
 * The quick benchmark run that CI makes: each benchmark in its `--quick`
 * mode (smaller corpus, one short run), one after another, and a check of
 * its ratios against the ones stored in bench/quick-baseline.json.
 *
 * A ratio regresses when it is more than 30% worse than the stored one
 * (below 0.7 times a ratio where higher is better, above 1.3 times one where
 * lower is better). `main` runs a benchmark with a regressed ratio once
 * more and fails only when the second run regresses too. So one noisy run
 * on a shared machine does not fail the build on its own. Ratios are
 * compared, not times: both sides of a ratio run on the same machine in the
 * same run, so a slower machine moves both.
 *
 * Usage: npx node bench/quick.ts [--update]
 *   --update  writes this run's ratios to bench/quick-baseline.json
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const BASELINE_FILE = fileURLToPath(new URL("./quick-baseline.json", import.meta.url))
const BENCHES = ["ingest", "writer", "baseline", "leads", "heap", "rollup"] as const
const TOLERANCE = 0.3
/** One benchmark's quick run may take this long before it is stopped. */
const BENCH_TIMEOUT_MS = 150_000

interface Ratio {
  readonly value: number
  readonly better: "higher" | "lower"
}

interface BenchResult {
  readonly name: string
  readonly ratios: Readonly<Record<string, Ratio>>
}

type Baseline = Readonly<Record<string, Readonly<Record<string, Ratio>>>>

const main = () => {
  const { values } = parseArgs({ options: { update: { type: "boolean" } }, strict: true })
  const updating = values.update === true
  const began = performance.now()
  const baseline: Baseline = Fs.existsSync(BASELINE_FILE) ? JSON.parse(Fs.readFileSync(BASELINE_FILE, "utf8")) : {}
  const results: Record<string, Record<string, Ratio>> = {}
  const failures: Array<string> = []

  for (const bench of BENCHES) {
    let result = runBench(bench)
    if (result === undefined) {
      failures.push(`${bench}: the quick run failed`)
      continue
    }
    // An update stores this run's ratios as they are, so it neither reruns nor fails on a regression.
    let regressions = updating ? [] : regressionsOf(result, baseline[bench] ?? {})
    if (regressions.length > 0) {
      say(`${bench}: ${regressions.join("; ")}; running it again to rule out noise`)
      const again = runBench(bench)
      if (again === undefined) {
        failures.push(`${bench}: the second quick run failed`)
        continue
      }
      result = again
      regressions = regressionsOf(again, baseline[bench] ?? {})
    }
    results[bench] = { ...result.ratios }
    for (const regression of regressions) failures.push(`${bench}: ${regression}`)
  }

  printTable(results, baseline)
  say(`took ${((performance.now() - began) / 1000).toFixed(0)} s`)

  if (updating) {
    if (failures.length > 0) {
      say(`not updating ${BASELINE_FILE}: ${failures.join("; ")}`)
      process.exitCode = 1
      return
    }
    Fs.writeFileSync(BASELINE_FILE, `${JSON.stringify(results, null, 2)}\n`)
    say(`wrote ${BASELINE_FILE}`)
    return
  }
  if (failures.length > 0) {
    say(`FAILED: ${failures.join("; ")}`)
    process.exitCode = 1
  } else {
    say("no ratio regressed by more than 30%")
  }
}

/** Prints this run's ratios beside the stored ones as a Markdown table. */
const printTable = (results: Readonly<Record<string, Readonly<Record<string, Ratio>>>>, baseline: Baseline) => {
  console.log("")
  console.log("| benchmark | ratio | this run | stored | better |")
  console.log("| --- | --- | --- | --- | --- |")
  for (const [bench, ratios] of Object.entries(results)) {
    for (const [name, ratio] of Object.entries(ratios)) {
      const stored = baseline[bench]?.[name]?.value
      const storedText = stored === undefined ? "none" : stored.toFixed(3)
      console.log(`| ${bench} | ${name} | ${ratio.value.toFixed(3)} | ${storedText} | ${ratio.better} |`)
    }
  }
}

const say = (line: string) => console.log(`[quick] ${line}`)

const runBench = (bench: string): BenchResult | undefined => {
  const jsonFile = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-quick-")), `${bench}.json`)
  const script = fileURLToPath(new URL(`./${bench}.ts`, import.meta.url))
  const started = performance.now()
  const run = spawnSync(process.execPath, [script, "--quick", "--json", jsonFile], {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: BENCH_TIMEOUT_MS,
    killSignal: "SIGTERM",
    encoding: "utf8"
  })
  const seconds = (performance.now() - started) / 1000
  if (run.status !== 0 || !Fs.existsSync(jsonFile)) {
    say(`${bench}: exit ${run.status ?? run.signal} after ${seconds.toFixed(0)} s`)
    process.stdout.write(tail(`${run.stdout ?? ""}${run.stderr ?? ""}`, 30))
    return undefined
  }
  const result = JSON.parse(Fs.readFileSync(jsonFile, "utf8")) as BenchResult
  Fs.rmSync(Path.dirname(jsonFile), { recursive: true, force: true })
  say(`${bench}: ${Object.entries(result.ratios).map(([name, ratio]) => `${name} ${ratio.value.toFixed(3)}`).join(", ")} (${seconds.toFixed(0)} s)`)
  return result
}

const regressionsOf = (result: BenchResult, stored: Readonly<Record<string, Ratio>>): Array<string> => {
  const regressions: Array<string> = []
  for (const [name, ratio] of Object.entries(result.ratios)) {
    const before = stored[name]
    if (before === undefined || !Number.isFinite(ratio.value)) continue
    const worse = ratio.better === "higher"
      ? ratio.value < before.value * (1 - TOLERANCE)
      : ratio.value > before.value * (1 + TOLERANCE)
    if (worse) regressions.push(`${name} ${ratio.value.toFixed(3)} against ${before.value.toFixed(3)} stored`)
  }
  return regressions
}

const tail = (text: string, lines: number) => `${text.split("\n").slice(-lines).join("\n")}\n`

main()

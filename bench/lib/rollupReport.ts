/**
 * Output of the rollup benchmark: the console summary, the `## Rollups`
 * section of docs/benchmarks.md and the JSON file of `--json`.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import type { DayRollup } from "../../src/jobs/Rollup.ts"
import { machineFacts } from "./processes.ts"
import { BEFORE, BEFORE_STEPS, BOUNDS, CHANGES } from "./rollupChanges.ts"
import { type CorpusCounts, type CorpusSize, EARLIER_VISITOR_SHARE, MAX_EVENTS_PER_SESSION } from "./rollupCorpus.ts"
import type { CpuUse } from "./rollupMeasure.ts"
import { writeSection } from "./sections.ts"
import { formatNumber, formatSummary, summarize } from "./stats.ts"

const REPOSITORY = fileURLToPath(new URL("../..", import.meta.url))
const DOCS_FILE = fileURLToPath(new URL("../../docs/benchmarks.md", import.meta.url))
export interface Setup {
  readonly databaseUrl: URL
  readonly appUrl: URL
  readonly tenantId: string
  readonly propertyId: string
  readonly firstDay: string
  readonly lastDay: string
  readonly timezone: string
  /** Start of the first day and end of the last day, as timestamptz text. */
  readonly rangeStart: string
  readonly rangeEnd: string
  readonly size: CorpusSize
  readonly counts: CorpusCounts
  readonly loadSeconds: number
  readonly loadPhaseSeconds: ReadonlyArray<readonly [string, number]>
  readonly postgresVersion: string
  readonly settings: string
}

export interface RunFigure {
  readonly ms: number
  readonly cpu: CpuUse
}

export interface Measurement {
  readonly full: ReadonlyArray<RunFigure>
  readonly floor: ReadonlyArray<RunFigure>
  readonly incremental: ReadonlyArray<RunFigure>
  readonly daysRolledUp: number
  readonly floorGroups: number
  /** The floor's plan nodes from the top down, as \`EXPLAIN\` names them. */
  readonly floorPlan: string
  /** The figures of the last incremental run's day. */
  readonly lastDay: DayRollup
  /** Per step, its time in each full run: the sum over the days. */
  readonly fullSteps: ReadonlyArray<readonly [string, ReadonlyArray<number>]>
  readonly incrementalSteps: ReadonlyArray<readonly [string, ReadonlyArray<number>]>
  readonly metricRows: number
  readonly visitorRows: number
  readonly ingestRows: number
}

export interface ReportInput {
  readonly setup: Setup
  readonly measurement: Measurement
  readonly quick: boolean
  readonly jsonFile: string | undefined
  /** Maximum wait for a quiet machine before each measured run. */
  readonly quietWaitMs: number
  readonly elapsedSeconds: number
}

const count = (value: number) => formatNumber(value)
const milliseconds = (values: ReadonlyArray<number>) => formatSummary(summarize(values))
const msOf = (runs: ReadonlyArray<RunFigure>) => runs.map((run) => run.ms)
const medianMs = (runs: ReadonlyArray<RunFigure>) => summarize(msOf(runs)).median

/** Prints the figures, writes the JSON file when asked, and the docs section unless the run is quick. */
export const report = (input: ReportInput) => {
  const m = input.measurement
  const fullVsFloor = medianMs(m.full) / medianMs(m.floor)
  const incrementalVsFull = medianMs(m.incremental) / medianMs(m.full)

  console.log("")
  console.log(`full run:    ${milliseconds(msOf(m.full))} ms`)
  console.log(`floor:       ${milliseconds(msOf(m.floor))} ms`)
  console.log(`incremental: ${milliseconds(msOf(m.incremental))} ms`)
  console.log(`full / floor: ${fullVsFloor.toFixed(2)}; incremental / full: ${incrementalVsFull.toFixed(3)}`)
  for (const [step, values] of m.fullSteps) console.log(`  ${step}: ${milliseconds(values)} ms`)

  if (input.jsonFile !== undefined) {
    Fs.writeFileSync(input.jsonFile, `${JSON.stringify(jsonReport(input, fullVsFloor, incrementalVsFull), null, 2)}\n`)
    console.log(`wrote ${input.jsonFile}`)
  }
  if (!input.quick) {
    writeSection(DOCS_FILE, "rollup", section(input, fullVsFloor, incrementalVsFull))
    console.log(`wrote the rollup section of ${Path.relative(REPOSITORY, DOCS_FILE)}`)
  }
}

const jsonReport = (input: ReportInput, fullVsFloor: number, incrementalVsFull: number) => {
  const m = input.measurement
  return {
    name: "rollup",
    ratios: {
      full_vs_groupby_floor: { value: round(fullVsFloor, 3), better: "lower" },
      incremental_vs_full: { value: round(incrementalVsFull, 4), better: "lower" }
    },
    figures: {
      events: input.setup.counts.events,
      days: input.setup.size.days,
      full_ms: round(medianMs(m.full), 1),
      floor_ms: round(medianMs(m.floor), 1),
      incremental_ms: round(medianMs(m.incremental), 1),
      runs: m.full.length,
      other_cores_max: round(Math.max(...[...m.full, ...m.floor, ...m.incremental].map((run) => run.cpu.otherCores)), 2),
      load_s: round(input.setup.loadSeconds, 1),
      elapsed_s: round(input.elapsedSeconds, 1)
    }
  }
}

const round = (value: number, digits: number) => Number(value.toFixed(digits))

const gitCommit = () => {
  const git = (...args: Array<string>) =>
    execFileSync("git", args, { cwd: REPOSITORY, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  try {
    const dirty = git("status", "--porcelain", "--", "src", "migrations", "bench") !== ""
    return `${git("rev-parse", "--short", "HEAD")}${dirty ? ", with uncommitted changes in `src/`, `migrations/` or `bench/`" : ""}`
  } catch {
    return "unknown (not a git checkout)"
  }
}

const figureRow = (name: string, runs: ReadonlyArray<RunFigure>) => {
  const cores = runs.map((run) => run.cpu.otherCores.toFixed(2)).join(", ")
  const cpu = runs.map((run) => run.cpu.ourSeconds.toFixed(1)).join(", ")
  return `| ${name} | ${milliseconds(msOf(runs))} | ${runs.map((run) => formatNumber(run.ms)).join(", ")} | ${cpu} | ${cores} |`
}

const stepTable = (steps: ReadonlyArray<readonly [string, ReadonlyArray<number>]>) =>
  ["| step | ms, median (min–max) |", "| --- | --- |", ...steps.map(([step, values]) => `| ${step} | ${milliseconds(values)} |`)]
    .join("\n")

/** Renders the `### Changes` subsection: the figures before the changes and now, and the findings behind them. */
const changesSection = (input: ReportInput, fullVsFloor: number, incrementalVsFull: number) => {
  const m = input.measurement
  const now = [
    milliseconds(msOf(m.full)),
    milliseconds(msOf(m.floor)),
    fullVsFloor.toFixed(2),
    milliseconds(msOf(m.incremental)),
    incrementalVsFull.toFixed(3)
  ]
  const figureRows = BEFORE.map((figure, index) => `| ${figure.name} | ${figure.value} | ${now[index] ?? ""} |`)
  const stepRows = BEFORE_STEPS.map((step) => `| ${step.name} | ${step.value} |`)
  const changeRows = CHANGES.map((change) => `| ${change.finding} | ${change.change} |`)
  return `### Changes

The same benchmark before the changes below (\`src/jobs/Rollup.ts\` of commit 1eed8b7, run on 2026-12-04 on this machine) and now:

| figure | before | now |
| --- | --- | --- |
${figureRows.join("\n")}

Time per step of the full run before the changes:

| step | ms, median (min–max) |
| --- | --- |
${stepRows.join("\n")}

What \`EXPLAIN (ANALYZE, BUFFERS)\` of the rollup of ${input.setup.lastDay} showed on the code before the changes, and what changed:

| finding | change |
| --- | --- |
${changeRows.join("\n")}

${BOUNDS}
`
}

const section = (input: ReportInput, fullVsFloor: number, incrementalVsFull: number) => {
  const { setup, measurement: m } = input
  const machine = machineFacts()
  const counts = setup.counts
  const figures = m.lastDay.figures
  const phases = setup.loadPhaseSeconds.map(([phase, seconds]) => `${phase} ${seconds.toFixed(0)} s`).join(", ")
  return `## Rollups

Command: \`npx node bench/rollup.ts\` (\`--quick --json FILE\` runs a tenth of the data once and writes only FILE)

Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; the whole run took ${input.elapsedSeconds.toFixed(0)} s, of which loading the data took ${setup.loadSeconds.toFixed(0)} s (${phases}).

Code: commit ${gitCommit()}.

Machine: ${machine.cores} cores (\`nproc\`), ${machine.cpuModel}, ${machine.memoryGiB} GiB of memory, ${machine.kernel}, Node ${machine.nodeVersion}. ${setup.postgresVersion}, embedded, in a new temporary folder, with default settings (${setup.settings}).

### What runs

- The data is generated inside PostgreSQL (\`bench/lib/rollupCorpus.ts\`). One tenant has one property in ${setup.timezone}. Over the ${setup.size.days} local days from ${setup.firstDay} to ${setup.lastDay} (2026-03-08 lasts 23 hours), it has ${count(counts.events)} events in ${count(counts.sessions)} sessions of ${count(counts.visitors)} visitors, ${count(counts.leads)} new leads with a \`form_submit\` identity each, and ${count(counts.rejections)} ingest rejections. ${Math.round(EARLIER_VISITOR_SHARE * 100)}% of the visitors were first seen before the range, and the others at their first session. Sessions start on a random day, more often around midday, with 1 to ${MAX_EVENTS_PER_SESSION} events each. Their traffic mix is 30% direct, 35% organic search, 10% referral from 200 sites, paid search and campaigns with 300 keywords, and a few others. 3% of them are bots. A session's first event is its entrance page view, and the others are page views (55%), web vitals with \`ttfbMs\` (20%), scrolls, clicks and about 2% form events. Paths are drawn log-uniformly from ${count(setup.size.paths)}. Each day's events are inserted in time order, as ingest writes them, and the secondary indexes are built after the rows. The load ends with \`VACUUM ANALYZE\`.
- The full run: \`rollupRange\` of the ${setup.size.days} days through \`Rollup.layer\`, as \`porchlight_app\`, one REPEATABLE READ tenant transaction per day, from empty rollup tables: the benchmark truncates them and runs \`CHECKPOINT\` before each full run, untimed. It rolled up ${count(m.daysRolledUp)} days and wrote ${count(m.metricRows)} rows of \`daily_metric_rollups\`, ${count(m.visitorRows)} of \`daily_visitors\` and ${count(m.ingestRows)} of \`daily_ingest_rollups\`.
- The floor: \`SELECT ("timestamp" AT TIME ZONE '${setup.timezone}')::date AS day, path, count(*) FROM events WHERE <tenant, property and the range's bounds> GROUP BY 1, 2\`, as \`porchlight_app\` in a tenant transaction, returning ${count(m.floorGroups)} groups. Its plan: ${m.floorPlan}.
- The incremental run: \`rollupDay\` of ${setup.lastDay}, the last day, as the scheduler reruns today, over the rows that the full run wrote.
- One untimed floor scan first, then ${m.full.length} runs of each, alternating. Before each run the benchmark waits, for at most ${input.quietWaitMs / 1000} s, until processes other than itself and its PostgreSQL use less than 0.2 cores (from \`/proc/stat\` and \`/proc/<pid>/stat\`), and it reports what they used during the run. Times are wall-clock milliseconds around each call, in the benchmark's process, over a pool of 2 connections on 127.0.0.1.

### Results

| figure | ms, median (min–max) | runs, ms | CPU s of PostgreSQL and the benchmark, per run | other processes, cores, per run |
| --- | --- | --- | --- | --- |
${figureRow("full run", m.full)}
${figureRow("floor", m.floor)}
${figureRow("incremental run", m.incremental)}

| ratio | value | target |
| --- | --- | --- |
| full run / floor | ${fullVsFloor.toFixed(2)} | at most 2 |
| incremental run / full run | ${incrementalVsFull.toFixed(3)} | at most 0.1 |

The last day's figures: ${count(figures.visitors)} visitors (${count(figures.returningVisitors)} returning), ${count(figures.sessions)} sessions, ${count(figures.pageViews)} page views, ${count(figures.entrances)} entrances, of which ${count(figures.convertingEntrances)} converting.

Time per step of the full run, the sum over its days of the durations PostgreSQL logged for each statement (\`log_min_duration_statement = 0\` for \`porchlight_app\`):

${stepTable(m.fullSteps)}

Time per step of the incremental run:

${stepTable(m.incrementalSteps)}

${changesSection(input, fullVsFloor, incrementalVsFull)}`
}

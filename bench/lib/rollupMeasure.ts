/**
 * Measuring tools of the rollup benchmark: the CPU use of other processes
 * while a figure is timed, and the time PostgreSQL logs per rollup step.
 */
import { performance } from "node:perf_hooks"
import { clockTicksPerSecond, machineBusyCpuSeconds, processTreeCpuSeconds } from "./processes.ts"

interface CpuSample {
  readonly at: number
  /** CPU seconds of this process and of PostgreSQL with all its backends. */
  readonly ours: number
  /** Busy CPU seconds of the whole machine. */
  readonly machine: number
}

export interface CpuUse {
  /** Cores that processes other than the benchmark and its PostgreSQL kept busy, on average. */
  readonly otherCores: number
  /** CPU seconds of the benchmark and its PostgreSQL. */
  readonly ourSeconds: number
}

/** Measures the CPU of this benchmark with its PostgreSQL, and of every other process. */
export class CpuMeter {
  private readonly ticks = clockTicksPerSecond()
  private readonly postgresPid: number

  constructor(postgresPid: number) {
    this.postgresPid = postgresPid
  }

  sample(): CpuSample {
    const usage = process.cpuUsage()
    return {
      at: performance.now(),
      ours: (usage.user + usage.system) / 1e6 + processTreeCpuSeconds(this.postgresPid, this.ticks),
      machine: machineBusyCpuSeconds(this.ticks)
    }
  }

  since(start: CpuSample): CpuUse {
    const now = this.sample()
    const seconds = (now.at - start.at) / 1000
    const ours = now.ours - start.ours
    return { otherCores: Math.max(0, (now.machine - start.machine - ours) / seconds), ourSeconds: ours }
  }

  /**
   * Waits, at most `maxWaitMs`, until other processes use fewer than
   * `maxOtherCores`, sampling once a second.
   */
  async waitForQuiet(maxOtherCores: number, maxWaitMs: number): Promise<void> {
    let others = Number.POSITIVE_INFINITY
    for (let waited = 0; waited < maxWaitMs && others >= maxOtherCores; waited += 1_000) {
      const start = this.sample()
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      others = this.since(start).otherCores
    }
  }
}

/**
 * Statement durations that PostgreSQL logs for the application role
 * (`log_min_duration_statement = 0`), summed per rollup step over one
 * recorded run. A log entry is its first line plus the lines that follow it
 * without a timestamp, which hold the rest of the statement text.
 */
export class StatementLog {
  private recording: string | undefined
  private entry: Array<string> = []
  private readonly runs = new Map<string, Array<Map<string, number>>>()
  private run = new Map<string, number>()

  readonly onLine = (line: string) => {
    if (/^\d{4}-\d{2}-\d{2} /.test(line)) {
      this.finishEntry()
      this.entry = [line]
    } else if (this.entry.length > 0) {
      this.entry.push(line)
    }
  }

  /** Starts recording a run of the figure named `figure`. */
  start(figure: string) {
    this.finishEntry()
    this.recording = figure
    this.run = new Map()
  }

  stop() {
    this.finishEntry()
    if (this.recording === undefined) return
    this.runs.set(this.recording, [...(this.runs.get(this.recording) ?? []), this.run])
    this.recording = undefined
  }

  /** Per step, the time of each recorded run of `figure`, largest median first. */
  steps(figure: string): ReadonlyArray<readonly [string, ReadonlyArray<number>]> {
    const runs = this.runs.get(figure) ?? []
    const names = new Set(runs.flatMap((run) => [...run.keys()]))
    return [...names]
      .map((name) => [name, runs.map((run) => run.get(name) ?? 0)] as const)
      .sort((a, b) => middle(b[1]) - middle(a[1]))
  }

  private finishEntry() {
    const text = this.entry.join("\n")
    this.entry = []
    if (this.recording === undefined) return
    const match = /duration: ([\d.]+) ms\s+(?:parse|bind|execute|statement)/.exec(text)
    if (match === null) return
    const step = stepOf(text)
    this.run.set(step, (this.run.get(step) ?? 0) + Number(match[1]))
  }
}

const middle = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0

/** Names the rollup step of a logged statement from its text (src/jobs/RollupStatements.ts). */
const stepOf = (statement: string) => {
  if (statement.includes("WITH day_events")) return "events pass: path, visitor, total and ingest rows"
  if (statement.includes("WITH day_sessions")) return "session pass: source, referrer, keyword, country and device rows"
  if (statement.includes("DELETE FROM daily_")) return "deleting the day's old rows"
  if (statement.includes("\"totalRows\"")) return "reading the invariant figures"
  if (statement.includes("day_start::text")) return "day bounds"
  return "transaction control and settings"
}

/**
 * The lead benchmark's record: the figures of each phase and of the whole
 * run, and the medians that the reports read from them.
 */
import type { DatabaseFacts } from "./leadMeasure.ts"
import type { Verification } from "./leadsVerify.ts"
import type { MachineFacts } from "./processes.ts"
import { type Summary, summarize } from "./stats.ts"

export type Target = "service" | "floor"
/** A "repeated" run was measured and then run again because other processes used the CPU during it. */
export type PhaseKind = "warm-up" | "probe" | "run" | "repeated"

/** CPU used during a phase, in cores: CPU seconds divided by the phase's wall-clock seconds. */
export interface CoreUse {
  /** The server under load: the service, or the floor server. */
  readonly server: number
  readonly serverMainThread: number
  /** PostgreSQL's postmaster with every backend and worker under it. */
  readonly postgres: number
  readonly loadGenerator: number
  /** Every process on the machine, from /proc/stat. */
  readonly machine: number
  /** The machine less the processes that the benchmark started. */
  readonly others: number
}

export interface PhaseFigures {
  readonly target: Target
  readonly kind: PhaseKind
  readonly label: string
  readonly connections: number
  readonly elapsedSeconds: number
  readonly requests: number
  readonly created201: number
  readonly known200: number
  /** Requests that got a status other than 201 or 200, or no response. */
  readonly failed: number
  readonly failures: ReadonlyMap<string, number>
  /** Leads acknowledged (201 or 200) per second. */
  readonly capturesPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly socketsOpened: number
  readonly minBodyBytes: number
  readonly maxBodyBytes: number
  readonly meanBodyBytes: number
  readonly cores: CoreUse
  /** Other processes' cores in the sample just before a probe or run; undefined for a warm-up. */
  readonly othersBeforeRun: number | undefined
  readonly serverCpuMsPerCapture: number
  readonly postgresCpuMsPerCapture: number
  /** Rows added to `leads` (service) or to the floor's table (floor). */
  readonly rowsAdded: number
  /** Transactions that wrote, from the transaction id counter. */
  readonly transactions: number
  readonly walBytes: number
  /** WAL flushes reported in `pg_stat_io`, which backends report about once a second. */
  readonly walSyncs: number
  readonly autovacuumRuns: number
  readonly jobRuns: number
}

export interface RequestPathFigures {
  readonly connections: number
  readonly elapsedSeconds: number
  readonly requestsPerSecond: number
  readonly rejected400: number
  /** Requests that got a status other than 400, or no response: none expected. */
  readonly otherOutcomes: number
  readonly serviceCpuMsPerRequest: number
  readonly loadGeneratorCpuMsPerRequest: number
  readonly otherCores: number
}

export interface LeadsRecord {
  readonly command: string
  readonly quick: boolean
  readonly startedAt: Date
  readonly wallSeconds: number
  readonly serviceStartSeconds: number
  /** The commit measured, and the files under src/ and migrations/ that differed from it. */
  readonly code: { readonly commit: string; readonly uncommitted: ReadonlyArray<string> }
  readonly machine: MachineFacts
  readonly database: DatabaseFacts
  readonly poolSize: number
  readonly connections: number
  readonly connectionReason: string
  readonly quietCores: number
  readonly contendedCores: number
  readonly maxRepeats: number
  readonly emailTemplates: number
  /** Service leads sent by a visitor that was not stored beforehand. */
  readonly unseededLeads: number
  /** The service loaded with leads that it rejects before any SQL; measured in full mode only. */
  readonly requestPath: RequestPathFigures | undefined
  readonly phases: ReadonlyArray<PhaseFigures>
  readonly verification: Verification
  readonly shutdown: { readonly code: number | null; readonly signal: string | null }
  readonly serviceProblems: { readonly count: number; readonly lines: ReadonlyArray<string> }
}

export const measuredRuns = (record: LeadsRecord, target: Target) =>
  record.phases.filter((phase) => phase.kind === "run" && phase.target === target)

export const summaryOf = (record: LeadsRecord, target: Target, figure: (run: PhaseFigures) => number): Summary =>
  summarize(measuredRuns(record, target).map(figure))

export const medianOf = (record: LeadsRecord, target: Target, figure: (run: PhaseFigures) => number) =>
  summaryOf(record, target, figure).median

/** The service's captures per second divided by the floor's, from the medians of the measured runs. */
export const floorRatio = (record: LeadsRecord): number =>
  medianOf(record, "service", (run) => run.capturesPerSecond) /
  medianOf(record, "floor", (run) => run.capturesPerSecond)

export const acknowledgedOf = (run: PhaseFigures) => Math.max(1, run.created201 + run.known200)

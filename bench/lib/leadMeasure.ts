/**
 * Readings that the lead benchmark takes around each phase: the CPU time of
 * every process it started and of the machine, and PostgreSQL's counters.
 */
import * as Fs from "node:fs"
import { performance } from "node:perf_hooks"
import type pg from "pg"
import {
  machineBusyCpuSeconds,
  mainThreadCpuSeconds,
  processCpuSeconds,
  processTreeCpuSeconds
} from "./processes.ts"

export interface ProcessIds {
  readonly ticks: number
  readonly service: number
  readonly floor: number
  readonly postgres: number
}

/** CPU seconds so far of every process the benchmark started, and of the machine. */
export interface CpuSnapshot {
  readonly at: number
  readonly service: number
  readonly serviceMainThread: number
  readonly floor: number
  readonly floorMainThread: number
  readonly postgres: number
  readonly loadGenerator: number
  readonly machine: number
}

export const cpuSnapshot = (ids: ProcessIds): CpuSnapshot => {
  const own = process.cpuUsage()
  return {
    at: performance.now(),
    service: processCpuSeconds(ids.service, ids.ticks),
    serviceMainThread: mainThreadCpuSeconds(ids.service, ids.ticks),
    floor: processCpuSeconds(ids.floor, ids.ticks),
    floorMainThread: mainThreadCpuSeconds(ids.floor, ids.ticks),
    postgres: processTreeCpuSeconds(ids.postgres, ids.ticks),
    loadGenerator: (own.user + own.system) / 1_000_000,
    machine: machineBusyCpuSeconds(ids.ticks)
  }
}

/** Cores that processes the benchmark did not start used between two snapshots. */
export const otherCores = (before: CpuSnapshot, after: CpuSnapshot): number => {
  const delta = (pick: (snapshot: CpuSnapshot) => number) => pick(after) - pick(before)
  const ours = delta((s) => s.service) + delta((s) => s.floor) + delta((s) => s.postgres) + delta((s) => s.loadGenerator)
  return (delta((s) => s.machine) - ours) / ((after.at - before.at) / 1000)
}

/**
 * Waits, for at most `budgetMs`, until other processes on the machine use
 * less than `quietCores` over a `sampleMs` sample, because their load would
 * be counted against the server under test. Returns the last sample and the
 * time spent.
 */
export const waitForQuietMachine = async (
  ids: ProcessIds,
  options: { readonly quietCores: number; readonly sampleMs: number; readonly budgetMs: number }
): Promise<{ others: number; waitedMs: number }> => {
  let waitedMs = 0
  for (;;) {
    const before = cpuSnapshot(ids)
    await new Promise((resolve) => setTimeout(resolve, options.sampleMs))
    const others = otherCores(before, cpuSnapshot(ids))
    waitedMs += options.sampleMs
    if (others < options.quietCores || waitedMs >= options.budgetMs) return { others, waitedMs }
  }
}

export interface DatabaseCounters {
  readonly leads: number
  readonly floorRows: number
  /** The next transaction id: it grows by one per transaction that writes. */
  readonly nextXid: bigint
  /** The WAL insert position in bytes. */
  readonly walPosition: bigint
  /** WAL flushes to disk so far, from `pg_stat_io`; backends report them about once a second. */
  readonly walSyncs: number
  /** Autovacuum and autoanalyze runs so far, over all tables. */
  readonly autovacuumRuns: number
  /** Rows in `job_runs`: runs of the service's scheduled jobs so far. */
  readonly jobRuns: number
}

/** Reads the counters as the owner; none of these queries takes a transaction id. */
export const databaseCounters = async (owner: pg.Client, floorTable: string): Promise<DatabaseCounters> => {
  const result = await owner.query<{
    leads: string
    floor: string
    xid: string
    wal: string
    syncs: string
    autovacuum: string
    jobs: string
  }>(
    `SELECT (SELECT count(*) FROM leads) AS leads,
            (SELECT count(*) FROM ${floorTable}) AS floor,
            pg_snapshot_xmax(pg_current_snapshot())::text AS xid,
            pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::text AS wal,
            (SELECT coalesce(sum(fsyncs), 0) FROM pg_stat_io WHERE object = 'wal')::text AS syncs,
            (SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_all_tables) AS autovacuum,
            (SELECT count(*) FROM job_runs) AS jobs`
  )
  const row = result.rows[0]
  if (row === undefined) throw new Error("the counter query returned no row")
  return {
    leads: Number(row.leads),
    floorRows: Number(row.floor),
    nextXid: BigInt(row.xid),
    walPosition: BigInt(row.wal.split(".")[0] ?? "0"),
    walSyncs: Number(row.syncs),
    autovacuumRuns: Number(row.autovacuum),
    jobRuns: Number(row.jobs)
  }
}

export interface DatabaseFacts {
  readonly version: string
  readonly synchronousCommit: string
  readonly fsync: string
  readonly sharedBuffers: string
  readonly commitDelay: string
  readonly dataDirFilesystem: string
}

export const databaseFacts = async (owner: pg.Client, dataDir: string): Promise<DatabaseFacts> => {
  const setting = async (name: string) => {
    const result = await owner.query<{ value: string }>("SELECT current_setting($1) AS value", [name])
    return result.rows[0]?.value ?? "unknown"
  }
  return {
    version: await setting("server_version"),
    synchronousCommit: await setting("synchronous_commit"),
    fsync: await setting("fsync"),
    sharedBuffers: await setting("shared_buffers"),
    commitDelay: await setting("commit_delay"),
    dataDirFilesystem: filesystemOf(dataDir)
  }
}

/** Returns the type of the filesystem that contains `path`, from the longest matching mount point in /proc/mounts. */
const filesystemOf = (path: string): string => {
  let best = { mountPoint: "", type: "unknown" }
  for (const line of Fs.readFileSync("/proc/mounts", "utf8").split("\n")) {
    const [, mountPoint, type] = line.split(" ")
    if (mountPoint === undefined || type === undefined) continue
    const contains = path === mountPoint || path.startsWith(mountPoint.endsWith("/") ? mountPoint : `${mountPoint}/`)
    if (contains && mountPoint.length > best.mountPoint.length) best = { mountPoint, type }
  }
  return `${best.type} (mounted at ${best.mountPoint})`
}

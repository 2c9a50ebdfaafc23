/**
 * Ingest benchmark for `POST /v1/events`. It starts the real service on an
 * embedded PostgreSQL in a temporary DATA_DIR and a bare `node:http` floor
 * server, and loads both over loopback with realistic tracker traffic. It
 * reports events accepted and written per second, latency, CPU time per
 * 1,000 events and the ratio to the floor, then checks that every event
 * accepted with 202 is stored. A full run writes its section of
 * docs/benchmarks.md, and a quick run only prints.
 *
 * Usage: npx node bench/ingest.ts [--quick]
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import pg from "pg"
import { loadCorpus, VisitorStream } from "./lib/corpus.ts"
import { runLoad } from "./lib/load.ts"
import {
  clockTicksPerSecond,
  type FloorServer,
  machineBusyCpuSeconds,
  machineFacts,
  mainThreadCpuSeconds,
  processCpuSeconds,
  processTreeCpuSeconds,
  startFloorServer
} from "./lib/processes.ts"
import {
  type BenchmarkRecord,
  type DatabaseFacts,
  floorRatio,
  measuredRuns,
  type PhaseKind,
  renderConsole,
  renderMarkdown,
  type RunFigures,
  type TargetName,
  type Variant,
  type Verification,
  writeDocsSection
} from "./lib/report.ts"
import { postgresPid, type RunningService, startService, superuserPassword } from "./lib/service.ts"
import { formatNumber, percentile } from "./lib/stats.ts"

const USAGE = `Usage: npx node bench/ingest.ts [--quick] [--json FILE] [--cpu-prof DIR]

Loads POST /v1/events of a service that this script starts on an embedded
PostgreSQL in a temporary folder, and a bare node:http floor server, over
127.0.0.1 only.

  --quick   one 3 s run per target and variant at 64 connections, no
            probe; prints the figures and leaves docs/benchmarks.md
            unchanged
  --json FILE
            also writes the ratios to the floor to FILE, for
            bench/quick.ts
  --cpu-prof DIR
            runs the service under \`node --cpu-prof\` and writes its
            CPU profile into DIR when it stops
  --help    show this text`

const TESTDATA_DIR = new URL("../../shared/testdata/", import.meta.url)
const REPOSITORY = fileURLToPath(new URL("..", import.meta.url))
const DOCS_FILE = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))

// Fixed keys and pepper: the service and its database live only as long as the run.
const INGEST_KEY = "pk_benchmarkIngestKey_000000000000000000000000"
const ADMIN_KEY = "sk_benchmarkAdminKey_0000000000000000000000000"
const IP_HASH_PEPPER = "benchmark-ip-hash-pepper-0000000000000000000"
const SITE_ORIGIN = "https://www.example.com"

const VISITORS_PER_CONNECTION = 16
const CONNECTION_CHOICES = [32, 64] as const
/**
 * 64 connections are used only when they accept at least 10% more events per
 * second than 32, a margin above the spread of the short probes.
 */
const MIN_GAIN_FOR_MORE_CONNECTIONS = 1.1
const REQUEST_TIMEOUT_MS = 30_000
const SERVICE_START_TIMEOUT_MS = 120_000

const VARIANTS: ReadonlyArray<Variant> = [
  { label: "1 event/request", batchSize: 1 },
  { label: "10 events/request", batchSize: 10 }
]

interface Plan {
  readonly warmupMs: number
  readonly probeMs: number
  readonly variantWarmupMs: number
  readonly runMs: number
  /** Time that the probes and runs may spend, in all, waiting for other processes to go quiet. */
  readonly quietBudgetMs: number
  /** Measured runs that may be repeated, in all, because other processes used the CPU during them. */
  readonly maxRepeats: number
  /** The whole script stops with exit code 2 when it runs longer than this. */
  readonly hardLimitMs: number
  /** Measured runs per target and variant. */
  readonly runs: number
  /** Whether to probe 32 against 64 connections; without the probe the runs use 64. */
  readonly probe: boolean
}

const FULL_PLAN: Plan = {
  warmupMs: 5_000,
  probeMs: 5_000,
  variantWarmupMs: 2_000,
  runMs: 10_000,
  quietBudgetMs: 30_000,
  maxRepeats: 6,
  hardLimitMs: 300_000,
  runs: 3,
  probe: true
}
const QUICK_PLAN: Plan = {
  warmupMs: 2_000,
  probeMs: 0,
  variantWarmupMs: 1_000,
  runMs: 3_000,
  quietBudgetMs: 10_000,
  maxRepeats: 1,
  hardLimitMs: 120_000,
  runs: 1,
  probe: false
}
/** Other processes' CPU, in cores, below which the machine counts as quiet enough to measure. */
const QUIET_CORES = 0.2
const QUIET_SAMPLE_MS = 500
/** Other processes' CPU during a measured run, in cores, from which the run is repeated while repeats are left. */
const CONTENDED_CORES = 0.25

interface Bench {
  readonly plan: Plan
  readonly ticks: number
  readonly service: RunningService
  readonly floor: FloorServer
  readonly postgresPid: number
  readonly owner: pg.Client
  readonly streams: Map<string, Array<VisitorStream>>
  readonly newStream: (seed: number) => VisitorStream
  /** Ids of the events in every request that the service accepted with 202 and no rejection. */
  readonly acceptedIds: Array<string>
  acceptedEvents: number
  /** Time left for waiting on a quiet machine, over the whole run. */
  quietBudgetMs: number
  repeatsLeft: number
}

const main = async () => {
  let options
  try {
    options = parseArgs({
      options: {
        quick: { type: "boolean" },
        json: { type: "string" },
        "cpu-prof": { type: "string" },
        help: { type: "boolean" }
      },
      strict: true
    }).values
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}\n`)
    process.exitCode = 1
    return
  }
  if (options.help === true) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const quick = options.quick === true
  const profileDir = options["cpu-prof"]
  const plan = quick ? QUICK_PLAN : FULL_PLAN
  const startedAt = new Date()
  const started = performance.now()
  const corpus = loadCorpus(TESTDATA_DIR)
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-bench-"))
  const cleanup = new Cleanup(dataDir)
  const hardLimit = setTimeout(() => {
    process.stderr.write(`the benchmark ran longer than ${plan.hardLimitMs / 1000} s; stopping it\n`)
    void cleanup.run().finally(() => process.exit(2))
  }, plan.hardLimitMs)
  // Stop the service, its PostgreSQL and the floor server whatever ends this
  // process, short of SIGKILL, so that none of them is left running.
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    process.once(signal, () => {
      void cleanup.run().finally(() => process.exit(code))
    })
  }
  process.once("uncaughtException", (error) => {
    process.stderr.write(`benchmark failed: ${error.stack ?? String(error)}\n`)
    void cleanup.run().finally(() => process.exit(1))
  })
  // A closed stdout (the output piped into `head`, say) must not end the run before its cleanup.
  process.stdout.on("error", () => undefined)

  try {
    say(`starting the service on an embedded PostgreSQL in ${dataDir}`)
    const service = await startService({
      dataDir,
      startTimeoutMs: SERVICE_START_TIMEOUT_MS,
      env: {
        INGEST_API_KEY: INGEST_KEY,
        ADMIN_API_KEY: ADMIN_KEY,
        IP_HASH_PEPPER,
        CORS_ALLOWED_ORIGINS: SITE_ORIGIN,
        TRUST_PROXY: "fly",
        LOG_LEVEL: "info"
      },
      ...(profileDir === undefined ? {} : { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${Path.resolve(profileDir)}`] })
    })
    cleanup.service = service
    const floor = await startFloorServer()
    cleanup.floor = floor
    const owner = new pg.Client({
      host: "127.0.0.1",
      port: service.postgresPort,
      user: "postgres",
      password: superuserPassword(dataDir),
      database: "postgres"
    })
    await owner.connect()
    cleanup.owner = owner
    const bench: Bench = {
      plan,
      ticks: clockTicksPerSecond(),
      service,
      floor,
      postgresPid: postgresPid(dataDir),
      owner,
      streams: new Map(),
      newStream: (seed) => new VisitorStream(corpus, INGEST_KEY, seed, VISITORS_PER_CONNECTION),
      acceptedIds: [],
      acceptedEvents: 0,
      quietBudgetMs: plan.quietBudgetMs,
      repeatsLeft: plan.maxRepeats
    }
    const database = await databaseFacts(owner, dataDir)
    say(`service pid ${service.pid} on port ${service.port}, PostgreSQL pid ${bench.postgresPid}, floor pid ${floor.pid}`)

    const phases: Array<RunFigures> = []
    const single = VARIANTS[0] ?? { label: "1 event/request", batchSize: 1 }
    phases.push(await measure(bench, "ingest", single, CONNECTION_CHOICES[0], plan.warmupMs, "warm-up", "warm-up"))
    phases.push(await measure(bench, "floor", single, CONNECTION_CHOICES[0], plan.variantWarmupMs, "warm-up", "warm-up"))
    const probes: Array<RunFigures> = []
    if (plan.probe) {
      for (const connections of CONNECTION_CHOICES) {
        probes.push(await measureUncontended(bench, phases, "ingest", single, connections, plan.probeMs, "probe"))
      }
    }
    const choice = plan.probe
      ? chooseConnections(probes)
      : { connections: CONNECTION_CHOICES[1], reason: `Quick mode: no probe; the runs use ${CONNECTION_CHOICES[1]} connections.` }
    say(choice.reason)

    for (const variant of VARIANTS) {
      phases.push(await measure(bench, "ingest", variant, choice.connections, plan.variantWarmupMs, "warm-up", "warm-up"))
      phases.push(await measure(bench, "floor", variant, choice.connections, plan.variantWarmupMs, "warm-up", "warm-up"))
      for (let run = 1; run <= plan.runs; run++) {
        for (const target of ["ingest", "floor"] as const) {
          await measureUncontended(bench, phases, target, variant, choice.connections, plan.runMs, "run", run)
        }
      }
    }

    say("checking that every accepted event is stored")
    const verification = await verify(bench)
    await owner.end()
    cleanup.owner = undefined
    const shutdown = await service.stop()
    cleanup.service = undefined
    await floor.stop()
    cleanup.floor = undefined
    const log = service.log()

    const record: BenchmarkRecord = {
      command: `npx node bench/ingest.ts${quick ? " --quick" : ""}`,
      quick,
      startedAt,
      wallSeconds: (performance.now() - started) / 1000,
      machine: machineFacts(),
      database,
      code: codeVersion(),
      visitorsPerConnection: VISITORS_PER_CONNECTION,
      quietCores: QUIET_CORES,
      contendedCores: CONTENDED_CORES,
      maxRepeats: plan.maxRepeats,
      connections: choice.connections,
      connectionReason: choice.reason,
      phases,
      variants: VARIANTS,
      verification,
      shutdown: { code: shutdown.code, signal: shutdown.signal, leftBuffered: log.leftBufferedAtShutdown },
      serviceProblems: { count: log.problemCount, lines: log.problems }
    }
    printSummary(record)
    if (options.json !== undefined) {
      const ratios = Object.fromEntries(VARIANTS.map((variant) => [
        `events_vs_floor_${variant.batchSize}_per_request`,
        { value: floorRatio(record, variant), better: "higher" }
      ]))
      Fs.writeFileSync(options.json, `${JSON.stringify({ name: "ingest", ratios }, null, 2)}\n`)
    }
    if (quick) {
      say("quick mode: docs/benchmarks.md left unchanged")
    } else {
      writeDocsSection(DOCS_FILE, renderMarkdown(record))
      say(`wrote the ingest section of ${DOCS_FILE}`)
    }
    const lost = verification.missing + Math.abs(verification.rows - verification.acceptedEvents)
    if (lost > 0 || log.problemCount > 0) process.exitCode = 1
  } finally {
    clearTimeout(hardLimit)
    await cleanup.run()
  }
}

/** Stops the processes that the run started and removes the temporary DATA_DIR; later calls do nothing. */
class Cleanup {
  service: RunningService | undefined
  floor: FloorServer | undefined
  owner: pg.Client | undefined
  private readonly dataDir: string
  private done = false

  constructor(dataDir: string) {
    this.dataDir = dataDir
  }

  async run() {
    if (this.done) return
    this.done = true
    await this.owner?.end().catch(() => undefined)
    if (this.service !== undefined) await this.service.stop()
    if (this.floor !== undefined) await this.floor.stop()
    Fs.rmSync(this.dataDir, { recursive: true, force: true })
  }
}

/** Runs one phase of load against one target and turns it into figures. */
const measure = async (
  bench: Bench,
  target: TargetName,
  variant: Variant,
  connections: number,
  durationMs: number,
  kind: PhaseKind,
  label: string
): Promise<RunFigures> => {
  const isIngest = target === "ingest"
  const quietBefore = kind === "warm-up" ? undefined : await waitForQuietMachine(bench)
  const databaseBefore = isIngest ? await databaseCounters(bench.owner) : undefined
  const before = cpuSnapshot(bench)
  const result = await runLoad({
    port: isIngest ? bench.service.port : bench.floor.port,
    path: "/v1/events",
    connections,
    durationMs,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    headers: { origin: SITE_ORIGIN },
    nextRequest: (worker) => streamFor(bench, target, variant, worker).nextRequest(variant.batchSize),
    readCounts: isIngest,
    ...(isIngest ? { onAccepted: (ids: ReadonlyArray<string>) => bench.acceptedIds.push(...ids) } : {})
  })
  const after = cpuSnapshot(bench)
  const databaseAfter = isIngest ? await databaseCounters(bench.owner) : undefined
  if (isIngest) {
    bench.acceptedEvents += result.acceptedEvents
    if (!bench.service.isRunning()) {
      throw new Error(`the service exited during ${label}:\n${bench.service.log().recent.join("\n")}`)
    }
  }

  const server = (snapshot: CpuSnapshot) => isIngest ? snapshot.service : snapshot.floor
  const serverMainThread = (snapshot: CpuSnapshot) => isIngest ? snapshot.serviceMainThread : snapshot.floorMainThread
  const seconds = result.elapsedMs / 1000
  const windowSeconds = (after.at - before.at) / 1000
  const cores = (from: number, to: number) => (to - from) / windowSeconds
  const perThousand = (from: number, to: number) => ((to - from) * 1000) / (result.acceptedEvents / 1000)
  const written = databaseBefore === undefined || databaseAfter === undefined
    ? undefined
    : {
      rows: databaseAfter.rows - databaseBefore.rows,
      transactions: Number(databaseAfter.nextXid - databaseBefore.nextXid),
      walBytes: Number(databaseAfter.walPosition - databaseBefore.walPosition),
      autovacuumRuns: databaseAfter.autovacuumRuns - databaseBefore.autovacuumRuns,
      jobRuns: databaseAfter.jobRuns - databaseBefore.jobRuns
    }
  const rowsWritten = written?.rows
  const figures: RunFigures = {
    target,
    variant,
    kind,
    label,
    connections,
    elapsedSeconds: seconds,
    requests: result.requests,
    acceptedEvents: result.acceptedEvents,
    rejectedEvents: result.rejectedEvents,
    non202: result.requests - result.accepted202,
    failures: result.failures,
    eventsPerSecond: result.acceptedEvents / seconds,
    requestsPerSecond: result.requests / seconds,
    rowsWritten,
    writtenPerSecond: rowsWritten === undefined ? undefined : rowsWritten / seconds,
    p50Ms: percentile(result.latenciesMs, 50),
    p99Ms: percentile(result.latenciesMs, 99),
    maxMs: percentile(result.latenciesMs, 100),
    socketsOpened: result.socketsOpened,
    minBodyBytes: result.minBodyBytes,
    maxBodyBytes: result.maxBodyBytes,
    meanBodyBytes: result.bodyBytes / Math.max(1, result.requests),
    cores: {
      server: cores(server(before), server(after)),
      serverMainThread: cores(serverMainThread(before), serverMainThread(after)),
      postgres: cores(before.postgres, after.postgres),
      loadGenerator: cores(before.loadGenerator, after.loadGenerator),
      machine: cores(before.machine, after.machine),
      others: otherCores(before, after)
    },
    othersBeforeRun: quietBefore,
    serverCpuMsPer1000: perThousand(server(before), server(after)),
    postgresCpuMsPer1000: perThousand(before.postgres, after.postgres),
    transactions: written?.transactions,
    walBytes: written?.walBytes,
    autovacuumRuns: written?.autovacuumRuns,
    jobRuns: written?.jobRuns
  }
  say(describePhase(figures))
  return figures
}

/**
 * Measures a probe or run and adds it to `phases`. While repeats are left,
 * a phase during which other processes used CONTENDED_CORES or more is kept
 * as "repeated" and measured again. Returns the figures that count.
 */
const measureUncontended = async (
  bench: Bench,
  phases: Array<RunFigures>,
  target: TargetName,
  variant: Variant,
  connections: number,
  durationMs: number,
  kind: "probe" | "run",
  run?: number
): Promise<RunFigures> => {
  const label = kind === "probe" ? `probe ${connections}` : `run ${run ?? 0}`
  let figures = await measure(bench, target, variant, connections, durationMs, kind, label)
  while (figures.cores.others >= CONTENDED_CORES && bench.repeatsLeft > 0) {
    bench.repeatsLeft--
    say(`repeating ${target} ${variant.label} ${label}: other processes used ` +
      `${formatNumber(figures.cores.others, 2)} cores during it`)
    phases.push({ ...figures, kind: "repeated", label: `${label}, repeated` })
    figures = await measure(bench, target, variant, connections, durationMs, kind, label)
  }
  phases.push(figures)
  return figures
}

/** Returns one connection's visitor stream, kept per target and variant so that visits go on from phase to phase. */
const streamFor = (bench: Bench, target: TargetName, variant: Variant, worker: number): VisitorStream => {
  const key = `${target}:${variant.batchSize}`
  const streams = bench.streams.get(key) ?? []
  bench.streams.set(key, streams)
  const existing = streams[worker]
  if (existing !== undefined) return existing
  const stream = bench.newStream(variant.batchSize * 1_000 + worker)
  streams[worker] = stream
  return stream
}

/** CPU seconds so far of every process the benchmark started, and of the machine. */
interface CpuSnapshot {
  readonly at: number
  readonly service: number
  readonly serviceMainThread: number
  readonly floor: number
  readonly floorMainThread: number
  readonly postgres: number
  readonly loadGenerator: number
  readonly machine: number
}

const cpuSnapshot = (bench: Bench): CpuSnapshot => {
  const own = process.cpuUsage()
  return {
    at: performance.now(),
    service: processCpuSeconds(bench.service.pid, bench.ticks),
    serviceMainThread: mainThreadCpuSeconds(bench.service.pid, bench.ticks),
    floor: processCpuSeconds(bench.floor.pid, bench.ticks),
    floorMainThread: mainThreadCpuSeconds(bench.floor.pid, bench.ticks),
    postgres: processTreeCpuSeconds(bench.postgresPid, bench.ticks),
    loadGenerator: (own.user + own.system) / 1_000_000,
    machine: machineBusyCpuSeconds(bench.ticks)
  }
}

/** Cores that processes the benchmark did not start used between two snapshots. */
const otherCores = (before: CpuSnapshot, after: CpuSnapshot): number => {
  const delta = (pick: (snapshot: CpuSnapshot) => number) => pick(after) - pick(before)
  const ours = delta((s) => s.service) + delta((s) => s.floor) + delta((s) => s.postgres) + delta((s) => s.loadGenerator)
  return (delta((s) => s.machine) - ours) / ((after.at - before.at) / 1000)
}

/**
 * Waits, within the run's remaining budget, until other processes on the
 * machine use less than QUIET_CORES over a QUIET_SAMPLE_MS sample, because
 * their load would be counted against the service. Returns the last sample.
 */
const waitForQuietMachine = async (bench: Bench): Promise<number> => {
  for (;;) {
    const before = cpuSnapshot(bench)
    await new Promise((resolve) => setTimeout(resolve, QUIET_SAMPLE_MS))
    const others = otherCores(before, cpuSnapshot(bench))
    if (others < QUIET_CORES || bench.quietBudgetMs <= 0) return others
    bench.quietBudgetMs -= QUIET_SAMPLE_MS
  }
}

const chooseConnections = (probes: ReadonlyArray<RunFigures>): { connections: number; reason: string } => {
  const [fewer, more] = probes
  if (fewer === undefined || more === undefined) throw new Error("expected two probe runs")
  const gain = more.eventsPerSecond / fewer.eventsPerSecond
  const comparison = `${more.connections} connections accepted ${formatNumber(more.eventsPerSecond)} events/s ` +
    `(p99 ${formatNumber(more.p99Ms, 1)} ms) and ${fewer.connections} accepted ${formatNumber(fewer.eventsPerSecond)} ` +
    `(p99 ${formatNumber(fewer.p99Ms, 1)} ms) in the probe, one event per request, ` +
    `${formatNumber(more.elapsedSeconds, 0)} s each: a ratio of ${formatNumber(gain, 2)}.`
  if (gain >= MIN_GAIN_FOR_MORE_CONNECTIONS) {
    return {
      connections: more.connections,
      reason: `${comparison} The runs use ${more.connections} connections, because they accepted at least ` +
        `${formatNumber((MIN_GAIN_FOR_MORE_CONNECTIONS - 1) * 100)}% more.`
    }
  }
  return {
    connections: fewer.connections,
    reason: `${comparison} The runs use ${fewer.connections} connections, because ${more.connections} did not ` +
      `accept ${formatNumber((MIN_GAIN_FOR_MORE_CONNECTIONS - 1) * 100)}% more events, so the extra connections ` +
      "would mostly add queueing to the latency."
  }
}

/**
 * Reads the checked-out commit and the paths under src/ and migrations/ that
 * differ from it, from git; outside a git checkout the commit is "unknown".
 */
const codeVersion = (): { commit: string; uncommitted: ReadonlyArray<string> } => {
  const git = (...args: Array<string>) =>
    execFileSync("git", args, { cwd: REPOSITORY, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
  try {
    const status = git("status", "--porcelain", "--", "src", "migrations")
    return {
      commit: git("rev-parse", "--short", "HEAD").trim(),
      uncommitted: status.split("\n").filter((line) => line.trim() !== "").map((line) => line.slice(3))
    }
  } catch {
    return { commit: "unknown (not a git checkout)", uncommitted: [] }
  }
}

interface DatabaseCounters {
  readonly rows: number
  /** The next transaction id: it grows by one per transaction that writes. */
  readonly nextXid: bigint
  /** The WAL insert position in bytes. */
  readonly walPosition: bigint
  /** Autovacuum and autoanalyze runs so far, over all tables. */
  readonly autovacuumRuns: number
  /** Rows in `job_runs`: runs of the service's scheduled jobs so far. */
  readonly jobRuns: number
}

/** Rows in `events`, the next transaction id and the WAL position; none of these queries takes a transaction id. */
const databaseCounters = async (owner: pg.Client): Promise<DatabaseCounters> => {
  const result = await owner.query<{ rows: string; xid: string; wal: string; autovacuum: string; jobs: string }>(
    `SELECT (SELECT count(*) FROM events) AS rows,
            pg_snapshot_xmax(pg_current_snapshot())::text AS xid,
            pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::text AS wal,
            (SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_all_tables) AS autovacuum,
            (SELECT count(*) FROM job_runs) AS jobs`
  )
  const row = result.rows[0]
  if (row === undefined) throw new Error("the counter query returned no row")
  return {
    rows: Number(row.rows),
    nextXid: BigInt(row.xid),
    walPosition: BigInt(row.wal.split(".")[0] ?? "0"),
    autovacuumRuns: Number(row.autovacuum),
    jobRuns: Number(row.jobs)
  }
}

const databaseFacts = async (owner: pg.Client, dataDir: string): Promise<DatabaseFacts> => {
  const setting = async (name: string) => {
    const result = await owner.query<{ value: string }>("SELECT current_setting($1) AS value", [name])
    return result.rows[0]?.value ?? "unknown"
  }
  const version = await owner.query<{ version: string }>("SELECT version() AS version")
  return {
    version: version.rows[0]?.version ?? "unknown",
    synchronousCommit: await setting("synchronous_commit"),
    fsync: await setting("fsync"),
    sharedBuffers: await setting("shared_buffers"),
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

/** Compares the ids of the accepted events with the client event ids stored in `events`. */
const verify = async (bench: Bench): Promise<Verification> => {
  const stored = await bench.owner.query<[string | null]>({ text: "SELECT client_event_id FROM events", rowMode: "array" })
  const storedIds = new Set<string>()
  let duplicateRows = 0
  for (const [id] of stored.rows) {
    if (id === null) continue
    if (storedIds.has(id)) duplicateRows++
    storedIds.add(id)
  }
  const acceptedIds = new Set(bench.acceptedIds)
  const missing = bench.acceptedIds.filter((id) => !storedIds.has(id))
  let unexpected = 0
  for (const id of storedIds) if (!acceptedIds.has(id)) unexpected++
  const count = async (sql: string) => {
    const result = await bench.owner.query<{ count: string }>(sql)
    return Number(result.rows[0]?.count ?? Number.NaN)
  }
  const breakdown = async (table: "events" | "sessions", column: string) => {
    const result = await bench.owner.query<{ name: string; count: string }>(
      `SELECT ${column}::text AS name, count(*) AS count FROM ${table} GROUP BY 1 ORDER BY 2 DESC`
    )
    return result.rows.map((row) => ({ name: row.name, count: Number(row.count) }))
  }
  const jobs = await bench.owner.query<{ job: string; outcome: string; rows: string | null; ms: string | null }>(
    `SELECT job, outcome::text AS outcome, rows_affected::text AS rows,
            round(extract(epoch FROM finished_at - started_at) * 1000)::text AS ms
     FROM job_runs ORDER BY started_at`
  )
  return {
    jobRuns: jobs.rows.map((row) => ({
      job: row.job,
      outcome: row.outcome,
      rows: row.rows === null ? undefined : Number(row.rows),
      durationMs: row.ms === null ? undefined : Number(row.ms)
    })),
    acceptedEvents: bench.acceptedEvents,
    acceptedIds: bench.acceptedIds.length,
    rows: stored.rows.length,
    missing: missing.length,
    missingSample: missing.slice(0, 3),
    unexpected,
    duplicateRows,
    rejectionRows: await count("SELECT count(*) AS count FROM ingest_rejections"),
    visitors: await count("SELECT count(*) AS count FROM visitors"),
    sessions: await count("SELECT count(*) AS count FROM sessions"),
    eventTypes: await breakdown("events", "event_type"),
    deviceTypes: await breakdown("events", "device_type"),
    trafficSources: await breakdown("sessions", "traffic_source")
  }
}

const describePhase = (run: RunFigures): string => {
  const written = run.writtenPerSecond === undefined ? "" : `, ${formatNumber(run.writtenPerSecond)} written/s`
  return `${run.target} ${run.variant.label} ${run.label} (${run.connections} connections, ` +
    `${formatNumber(run.elapsedSeconds, 1)} s): ${formatNumber(run.eventsPerSecond)} events/s accepted${written}, ` +
    `p50 ${formatNumber(run.p50Ms, 1)} ms, p99 ${formatNumber(run.p99Ms, 1)} ms, non-202 ${formatNumber(run.non202)}, ` +
    `server ${formatNumber(run.cores.server, 2)} cores, PostgreSQL ${formatNumber(run.cores.postgres, 2)}, ` +
    `load generator ${formatNumber(run.cores.loadGenerator, 2)}, other processes ${formatNumber(run.cores.others, 2)}`
}

const printSummary = (record: BenchmarkRecord) => {
  const check = record.verification
  process.stdout.write(`\n${renderConsole(record)}\n\n`)
  for (const variant of record.variants) {
    const runs = measuredRuns(record, "ingest", variant)
    say(`${variant.label}: ingest ÷ floor ${formatNumber(floorRatio(record, variant), 2)} over ${runs.length} runs`)
  }
  say(`accepted ${formatNumber(check.acceptedEvents)} events in total, ${formatNumber(check.rows)} rows in events, ` +
    `${formatNumber(check.missing)} accepted ids missing, ${formatNumber(check.unexpected)} stored ids never accepted, ` +
    `${formatNumber(check.duplicateRows)} duplicate rows, ${formatNumber(check.rejectionRows)} rejections`)
  say(`service log lines at warn or above: ${record.serviceProblems.count}`)
  for (const line of record.serviceProblems.lines.slice(0, 10)) say(`  ${line.slice(0, 500)}`)
  say(`service exit: code ${record.shutdown.code}, signal ${record.shutdown.signal}, ` +
    `left buffered ${record.shutdown.leftBuffered ?? "not logged"}`)
}

const say = (line: string) => process.stdout.write(`[bench] ${line}\n`)

await main()

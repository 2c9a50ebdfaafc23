/**
 * The ingest benchmark's record: its figures, the console summary, and its
 * section of docs/benchmarks.md. The section sits between two HTML comment
 * markers, so a new run replaces it and leaves other benchmarks' sections
 * alone.
 */
import { WRITE_LANES } from "../../src/streams/EventWriter.ts"
import type { MachineFacts } from "./processes.ts"
import { writeSection } from "./sections.ts"
import { formatNumber, formatSummary, type Summary, summarize } from "./stats.ts"

export type TargetName = "ingest" | "floor"
/** A "repeated" run was measured and then run again because other processes used the CPU during it. */
export type PhaseKind = "warm-up" | "probe" | "run" | "repeated"

export interface Variant {
  readonly label: string
  readonly batchSize: number
}

/** CPU used during a run, in cores: CPU seconds divided by the run's wall-clock seconds. */
export interface CoreUse {
  /** The process under load: the service, or the floor server. */
  readonly server: number
  readonly serverMainThread: number
  readonly postgres: number
  readonly loadGenerator: number
  /** Every process on the machine, from /proc/stat. */
  readonly machine: number
  /** Processes that the benchmark did not start: the machine less the service, PostgreSQL, the floor and the load generator. */
  readonly others: number
}

export interface RunFigures {
  readonly target: TargetName
  readonly variant: Variant
  readonly kind: PhaseKind
  readonly label: string
  readonly connections: number
  readonly elapsedSeconds: number
  readonly requests: number
  readonly acceptedEvents: number
  readonly rejectedEvents: number
  readonly non202: number
  readonly failures: ReadonlyMap<string, number>
  readonly eventsPerSecond: number
  readonly requestsPerSecond: number
  /** Rows added to `events` during the run; measured for the service only. */
  readonly rowsWritten: number | undefined
  readonly writtenPerSecond: number | undefined
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
  /** CPU milliseconds per 1,000 accepted events. */
  readonly serverCpuMsPer1000: number
  readonly postgresCpuMsPer1000: number
  /** Transactions that wrote to the database during a service run: the writer's flushes, and any other writes. */
  readonly transactions: number | undefined
  /** WAL bytes that PostgreSQL wrote during a service run. */
  readonly walBytes: number | undefined
  /** Autovacuum and autoanalyze runs that finished during a service run. */
  readonly autovacuumRuns: number | undefined
  /** Runs of the service's scheduled jobs (rollup, purge, consent) that started during a service run. */
  readonly jobRuns: number | undefined
}

export interface Verification {
  /** Every run of the service's scheduled jobs during the benchmark, in start order. */
  readonly jobRuns: ReadonlyArray<{
    readonly job: string
    readonly outcome: string
    readonly rows: number | undefined
    readonly durationMs: number | undefined
  }>
  readonly acceptedEvents: number
  readonly acceptedIds: number
  readonly rows: number
  readonly missing: number
  readonly missingSample: ReadonlyArray<string>
  readonly unexpected: number
  readonly duplicateRows: number
  readonly rejectionRows: number
  readonly visitors: number
  readonly sessions: number
  readonly eventTypes: ReadonlyArray<{ readonly name: string; readonly count: number }>
  readonly deviceTypes: ReadonlyArray<{ readonly name: string; readonly count: number }>
  /** Traffic sources of the stored sessions. */
  readonly trafficSources: ReadonlyArray<{ readonly name: string; readonly count: number }>
}

export interface DatabaseFacts {
  readonly version: string
  readonly synchronousCommit: string
  readonly fsync: string
  readonly sharedBuffers: string
  readonly dataDirFilesystem: string
}

export interface BenchmarkRecord {
  readonly command: string
  readonly quick: boolean
  readonly startedAt: Date
  readonly wallSeconds: number
  readonly machine: MachineFacts
  readonly database: DatabaseFacts
  /** The commit measured, and the files under src/ and migrations/ that differed from it. */
  readonly code: { readonly commit: string; readonly uncommitted: ReadonlyArray<string> }
  readonly visitorsPerConnection: number
  /** Other processes' cores below which a probe or run may start. */
  readonly quietCores: number
  /** Other processes' cores during a probe or run from which it was repeated. */
  readonly contendedCores: number
  readonly maxRepeats: number
  readonly connections: number
  readonly connectionReason: string
  readonly phases: ReadonlyArray<RunFigures>
  readonly variants: ReadonlyArray<Variant>
  readonly verification: Verification
  readonly shutdown: { readonly code: number | null; readonly signal: string | null; readonly leftBuffered: number | undefined }
  readonly serviceProblems: { readonly count: number; readonly lines: ReadonlyArray<string> }
}

/** The measured runs of one target and variant. */
export const measuredRuns = (record: BenchmarkRecord, target: TargetName, variant: Variant) =>
  record.phases.filter((phase) => phase.kind === "run" && phase.target === target && phase.variant === variant)

const summaryOf = (runs: ReadonlyArray<RunFigures>, figure: (run: RunFigures) => number): Summary =>
  summarize(runs.map(figure))

/** The ingest rate divided by the floor's, from the medians of the measured runs. */
export const floorRatio = (record: BenchmarkRecord, variant: Variant): number =>
  summaryOf(measuredRuns(record, "ingest", variant), (run) => run.eventsPerSecond).median /
  summaryOf(measuredRuns(record, "floor", variant), (run) => run.eventsPerSecond).median

/** Replaces the ingest section of the docs file, or creates the file with it. */
export const writeDocsSection = (file: string, section: string) => writeSection(file, "ingest", section)

interface Column {
  readonly title: string
  readonly runs: ReadonlyArray<RunFigures>
}

const columnsOf = (record: BenchmarkRecord): ReadonlyArray<Column> =>
  record.variants.flatMap((variant) => [
    { title: `ingest, ${variant.label}`, runs: measuredRuns(record, "ingest", variant) },
    { title: `floor, ${variant.label}`, runs: measuredRuns(record, "floor", variant) }
  ])

interface Row {
  readonly title: string
  readonly cell: (runs: ReadonlyArray<RunFigures>) => string
}

const median = (digits: number, figure: (run: RunFigures) => number) => (runs: ReadonlyArray<RunFigures>) =>
  formatSummary(summaryOf(runs, figure), digits)

const total = (figure: (run: RunFigures) => number) => (runs: ReadonlyArray<RunFigures>) =>
  formatNumber(runs.reduce((sum, run) => sum + figure(run), 0))

const ingestOnly = (cell: Row["cell"]) => (runs: ReadonlyArray<RunFigures>) =>
  runs[0]?.target === "ingest" ? cell(runs) : "—"

const SUMMARY_ROWS: ReadonlyArray<Row> = [
  { title: "events accepted/s (202)", cell: median(0, (run) => run.eventsPerSecond) },
  { title: "requests/s", cell: median(0, (run) => run.requestsPerSecond) },
  { title: "events written/s (rows in `events`)", cell: ingestOnly(median(0, (run) => run.writtenPerSecond ?? Number.NaN)) },
  { title: "write transactions/s", cell: ingestOnly(median(0, (run) => (run.transactions ?? Number.NaN) / run.elapsedSeconds)) },
  { title: "events per write transaction", cell: ingestOnly(median(1, (run) => (run.rowsWritten ?? Number.NaN) / (run.transactions ?? Number.NaN))) },
  { title: "WAL per event, bytes", cell: ingestOnly(median(0, (run) => (run.walBytes ?? Number.NaN) / (run.rowsWritten ?? Number.NaN))) },
  { title: "latency p50, ms", cell: median(1, (run) => run.p50Ms) },
  { title: "latency p99, ms", cell: median(1, (run) => run.p99Ms) },
  { title: "latency max, ms", cell: median(1, (run) => run.maxMs) },
  { title: "non-202 responses, sum of runs", cell: total((run) => run.non202) },
  { title: "events rejected in 202s, sum of runs", cell: total((run) => run.rejectedEvents) },
  { title: "server process CPU, cores", cell: median(2, (run) => run.cores.server) },
  { title: "server JavaScript thread CPU, cores", cell: median(2, (run) => run.cores.serverMainThread) },
  { title: "PostgreSQL CPU, cores", cell: median(2, (run) => run.cores.postgres) },
  { title: "load generator CPU, cores", cell: median(2, (run) => run.cores.loadGenerator) },
  { title: "other processes on the machine, cores", cell: median(2, (run) => run.cores.others) },
  { title: "whole machine busy, cores", cell: median(2, (run) => run.cores.machine) },
  { title: "server CPU per 1,000 events, ms", cell: median(1, (run) => run.serverCpuMsPer1000) },
  { title: "PostgreSQL CPU per 1,000 events, ms", cell: ingestOnly(median(1, (run) => run.postgresCpuMsPer1000)) },
  { title: "PostgreSQL CPU per write transaction, ms", cell: ingestOnly(median(1, (run) => postgresMsPerTransaction(run))) },
  { title: "request body, bytes (mean, min–max)", cell: bodySizes }
]

function postgresMsPerTransaction(run: RunFigures): number {
  return (run.cores.postgres * run.elapsedSeconds * 1000) / (run.transactions ?? Number.NaN)
}

function bodySizes(runs: ReadonlyArray<RunFigures>): string {
  const mean = summarize(runs.map((run) => run.meanBodyBytes)).median
  const min = Math.min(...runs.map((run) => run.minBodyBytes))
  const max = Math.max(...runs.map((run) => run.maxBodyBytes))
  return `${formatNumber(mean)} (${formatNumber(min)}–${formatNumber(max)})`
}

const markdownTable = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const line = (cells: ReadonlyArray<string>) => `| ${cells.join(" | ")} |`
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n")
}

const failureText = (failures: ReadonlyMap<string, number>) =>
  failures.size === 0 ? "none" : [...failures].map(([key, count]) => `${count}× ${key}`).join("; ")

/** Renders the ingest section of docs/benchmarks.md as Markdown. */
export const renderMarkdown = (record: BenchmarkRecord): string => {
  const columns = columnsOf(record)
  const firstRun = record.phases.find((phase) => phase.kind === "run")
  const runSeconds = firstRun === undefined ? Number.NaN : Math.round(firstRun.elapsedSeconds)
  const summaryTable = markdownTable(
    ["figure (median of 3 runs, min–max)", ...columns.map((column) => column.title)],
    [
      ...SUMMARY_ROWS.map((row) => [row.title, ...columns.map((column) => row.cell(column.runs))]),
      ["ingest ÷ floor, events/s", ...record.variants.flatMap((variant) => [formatNumber(floorRatio(record, variant), 2), "—"])]
    ]
  )
  const probes = record.phases.filter((phase) => phase.kind === "probe")
  const probeTable = markdownTable(
    ["connections", "events accepted/s", "p50, ms", "p99, ms", "non-202", "service CPU, cores", "other processes, cores"],
    probes.map((probe) => [
      String(probe.connections),
      formatNumber(probe.eventsPerSecond),
      formatNumber(probe.p50Ms, 1),
      formatNumber(probe.p99Ms, 1),
      formatNumber(probe.non202),
      formatNumber(probe.cores.server, 2),
      formatNumber(probe.cores.others, 2)
    ])
  )
  const phaseTable = markdownTable(
    ["phase", "target", "body", "conns", "s", "requests", "events/s", "written/s", "write tx/s", "p50 ms", "p99 ms", "non-202",
      "server cores", "JS thread", "PostgreSQL", "load gen.", "others", "machine", "autovacuum", "jobs", "sockets"],
    record.phases.map((phase) => [
      phase.label,
      phase.target,
      phase.variant.label,
      String(phase.connections),
      formatNumber(phase.elapsedSeconds, 1),
      formatNumber(phase.requests),
      formatNumber(phase.eventsPerSecond),
      phase.writtenPerSecond === undefined ? "—" : formatNumber(phase.writtenPerSecond),
      phase.transactions === undefined ? "—" : formatNumber(phase.transactions / phase.elapsedSeconds),
      formatNumber(phase.p50Ms, 1),
      formatNumber(phase.p99Ms, 1),
      formatNumber(phase.non202),
      formatNumber(phase.cores.server, 2),
      formatNumber(phase.cores.serverMainThread, 2),
      formatNumber(phase.cores.postgres, 2),
      formatNumber(phase.cores.loadGenerator, 2),
      formatNumber(phase.cores.others, 2),
      formatNumber(phase.cores.machine, 2),
      phase.autovacuumRuns === undefined ? "—" : String(phase.autovacuumRuns),
      phase.jobRuns === undefined ? "—" : String(phase.jobRuns),
      String(phase.socketsOpened)
    ])
  )
  const allFailures = new Map<string, number>()
  for (const phase of record.phases) {
    if (phase.target !== "ingest") continue
    for (const [key, count] of phase.failures) allFailures.set(key, (allFailures.get(key) ?? 0) + count)
  }
  const check = record.verification
  const machine = record.machine
  const database = record.database
  const share = (entries: Verification["eventTypes"], total: number) =>
    entries.map((entry) => `${entry.name} ${formatNumber((entry.count / Math.max(1, total)) * 100, 1)}%`).join(", ")
  const mix = (entries: Verification["eventTypes"]) => share(entries, check.rows)
  const sessionMix = (entries: Verification["eventTypes"]) => share(entries, check.sessions)

  return `## Ingest: \`POST /v1/events\`

Command: \`${record.command}\`${record.quick ? " (quick mode: short runs, figures are rough)" : ""}

Date: ${record.startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC; the whole run took ${formatNumber(record.wallSeconds)} s.

Code: commit ${record.code.commit}${record.code.uncommitted.length === 0 ? "" : `, with uncommitted changes in ${record.code.uncommitted.map((file) => `\`${file}\``).join(", ")}`}.

Machine: ${machine.cores} cores (\`nproc\`), ${machine.cpuModel}, ${formatNumber(machine.memoryGiB, 1)} GiB of memory, ${machine.kernel}, Node ${machine.nodeVersion}. ${database.version}, embedded, with DATA_DIR on ${database.dataDirFilesystem}; \`fsync\` ${database.fsync}, \`synchronous_commit\` ${database.synchronousCommit}, \`shared_buffers\` ${database.sharedBuffers}.

### What runs

- The service, \`node src/main.ts\`, on its embedded PostgreSQL in a new temporary DATA_DIR, with default settings except a fixed \`INGEST_API_KEY\`, \`CORS_ALLOWED_ORIGINS=https://www.example.com\` and \`TRUST_PROXY=fly\`. Every request sends \`Origin: https://www.example.com\`, so the origin check and CORS headers run, and a \`Fly-Client-IP\` header with a random public IPv4 address per visitor, so the country lookup runs. The service's scheduled jobs (rollups and the like) run on their own schedule; the phase table counts the runs that started during each phase.
- The floor: a bare \`node:http\` server in its own process (\`bench/lib/floorServer.ts\`) that reads each body and responds with 202. It is loaded the same way, alternating with the service run by run.
- The load generator, in the benchmark's own process on the same machine: ${record.connections} connections over HTTP/1.1 keep-alive without pipelining, each sending its next request when the previous response has arrived. It shares the cores with the servers and PostgreSQL, and its CPU is in the tables.
- The traffic: each connection keeps ${record.visitorsPerConnection} visits open and sends their events in turn. A visit lands from a search engine, social site or AI assistant (referrers from the Matomo lists), a campaign with UTM tags, another site or directly, and views 1 to 10 pages. Each page view is followed by a \`web_vitals\` event, as the bundled tracker sends, and some visits add a \`cta_click\`, \`form_start\` and \`form_submit\`. User agents are real browsers from the Intoli traffic sample (mostly mobile), and 3% of visitors are crawlers from crawler-user-agents. A one-event body is 300 to 600 bytes, uniformly: the page URL gets a \`_gl\` tracking parameter of the missing length.
- Two variants: one event per request, as \`navigator.sendBeacon\` sends on each page, and 10 events per request. A 10-event body holds the next events of the connection's open visits, so it can carry several visitors' events; it gets the first event's user agent and address.
- Phases: a warm-up; a probe of 32 and 64 connections; then for each variant a warm-up and ${measuredRuns(record, "ingest", record.variants[0] ?? { label: "", batchSize: 1 }).length} measured runs of ${runSeconds} s per target. Before each probe and run the benchmark waits, for a limited time, until other processes use less than ${formatNumber(record.quietCores, 2)} cores. Rows in \`events\`, the next transaction id and the WAL position are read as the owner before and after each service run. CPU times come from \`/proc/<pid>/stat\` (utime + stime): the service's process and its main thread, PostgreSQL's postmaster with every backend and worker under it, the floor server's process, the benchmark's own process (\`process.cpuUsage()\`), and the machine from \`/proc/stat\`.

### Connections

${record.connectionReason}

${probeTable}

### Results

${summaryTable}

### Reading

${renderReading(record)}

### Correctness

${renderCorrectness(record, allFailures)}

Mix of the stored events: ${mix(check.eventTypes)}. Device types of the events: ${mix(check.deviceTypes)}. Traffic sources of the sessions: ${sessionMix(check.trafficSources)}. ${formatNumber(check.visitors)} visitors and ${formatNumber(check.sessions)} sessions were stored.

### Every phase

"sockets" counts the connections that the load generator opened in the phase; it equals the connection count when keep-alive held throughout. "autovacuum" counts autovacuum and autoanalyze runs that finished during a service phase, and "jobs" the runs of the service's scheduled jobs that started during it.

${phaseTable}
`
}

const renderCorrectness = (record: BenchmarkRecord, failures: ReadonlyMap<string, number>): string => {
  const check = record.verification
  const difference = check.rows - check.acceptedEvents
  const lines = [
    `- Events accepted with 202 over every phase, warm-ups and probes included: ${formatNumber(check.acceptedEvents)}. Rows in \`events\` after the load: ${formatNumber(check.rows)}. Difference: ${formatNumber(difference)}.`,
    `- Accepted event ids missing from \`events\`: ${formatNumber(check.missing)}${check.missingSample.length > 0 ? ` (for example ${check.missingSample.join(", ")})` : ""}. Stored client event ids that never got a 202: ${formatNumber(check.unexpected)}. Rows that repeat a client event id: ${formatNumber(check.duplicateRows)}. Rows in \`ingest_rejections\`: ${formatNumber(check.rejectionRows)}.`,
    `- Failed requests to the service: ${failureText(failures)}.`,
    `- Service log lines at warn or above: ${formatNumber(record.serviceProblems.count)}.${record.serviceProblems.lines.length > 0 ? ` The first: \`${record.serviceProblems.lines[0]?.slice(0, 300) ?? ""}\`` : ""}`,
    `- Scheduled jobs of the service that ran during the benchmark: ${jobText(check.jobRuns)}.`,
    `- Shutdown on SIGTERM after the load: exit code ${record.shutdown.code ?? "none"}${record.shutdown.signal === null ? "" : `, signal ${record.shutdown.signal}`}; events left in the writer's buffer: ${record.shutdown.leftBuffered ?? "not logged"}.`
  ]
  return lines.join("\n")
}

const jobText = (runs: Verification["jobRuns"]) =>
  runs.length === 0
    ? "none"
    : runs.map((run) =>
      `${run.job} (${run.outcome}, ${run.durationMs === undefined ? "unfinished" : `${formatNumber(run.durationMs)} ms`}` +
      `${run.rows === undefined ? "" : `, ${formatNumber(run.rows)} rows`})`
    ).join(", ")

/** Explains what bounds each variant's figure, from the medians of the measured runs. */
export const renderReading = (record: BenchmarkRecord): string => {
  const paragraphs = record.variants.flatMap((variant) => [
    readIngest(record, variant),
    readFloor(record, variant)
  ])
  const repeats = record.phases.filter((phase) => phase.kind === "repeated").length
  return [
    ...paragraphs,
    "The load generator shares the machine's cores with the servers and PostgreSQL; its CPU is listed so that it " +
    "can be taken into account. \"Other processes\" is CPU used by processes that the benchmark did not start. " +
    `A probe or run during which they used ${formatNumber(record.contendedCores, 2)} cores or more was measured ` +
    `again, up to ${record.maxRepeats} times in all; ${repeats} ${repeats === 1 ? "was" : "were"} repeated in this record.`
  ].join("\n\n")
}

const medianOf = (runs: ReadonlyArray<RunFigures>, figure: (run: RunFigures) => number) =>
  summaryOf(runs, figure).median

const readIngest = (record: BenchmarkRecord, variant: Variant): string => {
  const runs = measuredRuns(record, "ingest", variant)
  const cores = record.machine.cores
  const rate = medianOf(runs, (run) => run.eventsPerSecond)
  const transactionsPerSecond = medianOf(runs, (run) => (run.transactions ?? Number.NaN) / run.elapsedSeconds)
  const eventsPerTransaction = medianOf(runs, (run) => (run.rowsWritten ?? Number.NaN) / (run.transactions ?? Number.NaN))
  const postgresPerTransaction = medianOf(runs, postgresMsPerTransaction)
  const p50 = medianOf(runs, (run) => run.p50Ms)
  const server = medianOf(runs, (run) => run.cores.server)
  const thread = medianOf(runs, (run) => run.cores.serverMainThread)
  const postgres = medianOf(runs, (run) => run.cores.postgres)
  const generator = medianOf(runs, (run) => run.cores.loadGenerator)
  const machine = medianOf(runs, (run) => run.cores.machine)
  const others = medianOf(runs, (run) => run.cores.others)
  const requestsPerTransaction = eventsPerTransaction / variant.batchSize

  const laneMs = (WRITE_LANES * 1000) / transactionsPerSecond
  const writes = `With ${variant.label}, the service accepted ${formatNumber(rate)} events/s. Its writer committed ` +
    `${formatNumber(transactionsPerSecond)} transactions a second of ${formatNumber(eventsPerTransaction, 1)} events ` +
    `each, in ${WRITE_LANES} lanes that write at the same time, each lane one transaction after another. That is ` +
    `${formatNumber(laneMs, 1)} ms per transaction in a lane, of which PostgreSQL spent ` +
    `${formatNumber(postgresPerTransaction, 1)} ms on CPU.`
  const cpu = `CPU in cores: the service ${formatNumber(server, 2)} (${formatNumber(thread, 2)} on its JavaScript ` +
    `thread, which cannot use more than 1), PostgreSQL ${formatNumber(postgres, 2)}, the load generator ` +
    `${formatNumber(generator, 2)}, the whole machine ${formatNumber(machine, 2)} of ${cores}.`
  let bound: string
  if (thread >= 0.85) {
    bound = "The service's JavaScript thread is saturated, so this figure is bound by the CPU of the Node process."
  } else if (machine >= 0.9 * cores) {
    bound = `All ${cores} cores are busy, so this figure is bound by the machine's CPU, which the service, ` +
      "PostgreSQL and the load generator share."
  } else if (postgres >= 0.85 * WRITE_LANES) {
    bound = `PostgreSQL is near ${WRITE_LANES} cores, one per writing lane, so this figure is bound by its CPU ` +
      "per transaction."
  } else if (others >= record.contendedCores) {
    bound = contendedText(others, cores)
  } else {
    bound = "No CPU is saturated, so this figure is bound by the latency of the group commit. A request waits " +
      "for its lane's transaction in progress and then for its own, so the median latency " +
      `(${formatNumber(p50, 1)} ms) is about two transaction times of a lane, and each transaction carries about ` +
      `${formatNumber(requestsPerTransaction, 0)} requests. A transaction's time is PostgreSQL's CPU, the flush ` +
      "of the commit to disk, and the round trip through the service's event loop, which serves HTTP requests " +
      "in between."
  }
  return `${writes} ${cpu} ${bound}`
}

const contendedText = (others: number, cores: number) =>
  `Processes that the benchmark did not start used ${formatNumber(others, 2)} cores during these runs, so all ` +
  `${cores} cores were busy and this figure is bound by a machine shared with them: it is not a clean ` +
  "measurement, and a run on a quiet machine is needed to tell what bounds it."

const readFloor = (record: BenchmarkRecord, variant: Variant): string => {
  const runs = measuredRuns(record, "floor", variant)
  const ingest = measuredRuns(record, "ingest", variant)
  const cores = record.machine.cores
  const rate = medianOf(runs, (run) => run.eventsPerSecond)
  const server = medianOf(runs, (run) => run.cores.server)
  const generator = medianOf(runs, (run) => run.cores.loadGenerator)
  const machine = medianOf(runs, (run) => run.cores.machine)
  const others = medianOf(runs, (run) => run.cores.others)
  const cpuRatio = medianOf(ingest, (run) => run.serverCpuMsPer1000) / medianOf(runs, (run) => run.serverCpuMsPer1000)
  const bound = generator >= 0.85
    ? "The load generator's single thread is saturated, so the floor is bound by the client and is a lower bound " +
      "for the bare server."
    : others >= record.contendedCores
    ? contendedText(others, cores)
    : machine >= 0.9 * cores
    ? `All ${cores} cores are busy, so the floor is bound by the CPU that the bare server and the load generator share.`
    : "No CPU is saturated, so the floor is bound by the round trips of the closed loop."
  return `The floor with ${variant.label} accepted ${formatNumber(rate)} events/s, with the bare server at ` +
    `${formatNumber(server, 2)} cores and the load generator at ${formatNumber(generator, 2)}. ${bound} The service ` +
    `reached ${formatNumber(floorRatio(record, variant), 2)} of the floor's rate and used ` +
    `${formatNumber(cpuRatio, 1)} times the bare server's CPU per event.`
}

/** Renders the summary table as plain text for the terminal. */
export const renderConsole = (record: BenchmarkRecord): string => {
  const columns = columnsOf(record)
  const rows = [
    ["", ...columns.map((column) => column.title)],
    ...SUMMARY_ROWS.map((row) => [row.title, ...columns.map((column) => row.cell(column.runs))]),
    ["ingest ÷ floor, events/s", ...record.variants.flatMap((variant) => [formatNumber(floorRatio(record, variant), 2), "—"])]
  ]
  const widths = rows[0]?.map((_, index) => Math.max(...rows.map((row) => (row[index] ?? "").length))) ?? []
  return rows.map((row) => row.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join("  ")).join("\n")
}

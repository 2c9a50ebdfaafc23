/**
 * The lead benchmark's reports: the console summary, the JSON of quick
 * mode, and its section of docs/benchmarks.md.
 */
import { connectionVerdict, PROFILE_TEXT, renderDesign, renderReading } from "./leadsReading.ts"
import {
  acknowledgedOf,
  floorRatio,
  type LeadsRecord,
  measuredRuns,
  medianOf,
  type PhaseFigures,
  summaryOf,
  type Target
} from "./leadsRecord.ts"
import { formatNumber, formatSummary } from "./stats.ts"

interface SummaryRow {
  readonly title: string
  readonly digits: number
  readonly figure: (run: PhaseFigures) => number
}

const SUMMARY_ROWS: ReadonlyArray<SummaryRow> = [
  { title: "captures/s (201 or 200)", digits: 0, figure: (run) => run.capturesPerSecond },
  { title: "p50 latency, ms", digits: 1, figure: (run) => run.p50Ms },
  { title: "p99 latency, ms", digits: 1, figure: (run) => run.p99Ms },
  { title: "server CPU, ms per capture", digits: 3, figure: (run) => run.serverCpuMsPerCapture },
  { title: "PostgreSQL CPU, ms per capture", digits: 3, figure: (run) => run.postgresCpuMsPerCapture },
  { title: "server, cores", digits: 2, figure: (run) => run.cores.server },
  { title: "server JS thread, cores", digits: 2, figure: (run) => run.cores.serverMainThread },
  { title: "PostgreSQL, cores", digits: 2, figure: (run) => run.cores.postgres },
  { title: "load generator, cores", digits: 2, figure: (run) => run.cores.loadGenerator },
  { title: "other processes, cores", digits: 2, figure: (run) => run.cores.others },
  { title: "machine, cores", digits: 2, figure: (run) => run.cores.machine },
  { title: "write transactions per capture", digits: 2, figure: (run) => run.transactions / acknowledgedOf(run) },
  { title: "WAL bytes per capture", digits: 0, figure: (run) => run.walBytes / acknowledgedOf(run) },
  { title: "WAL flushes/s (about)", digits: 0, figure: (run) => run.walSyncs / run.elapsedSeconds }
]

const summaryCells = (record: LeadsRecord, row: SummaryRow) =>
  (["service", "floor"] as const).map((target) => formatSummary(summaryOf(record, target, row.figure), row.digits))

/** Renders the summary table as plain text for the terminal. */
export const renderConsole = (record: LeadsRecord): string => {
  const rows = [
    ["", "service", "floor"],
    ...SUMMARY_ROWS.map((row) => [row.title, ...summaryCells(record, row)]),
    ["service ÷ floor, captures/s", formatNumber(floorRatio(record), 2), ""]
  ]
  const widths = rows[0]?.map((_, index) => Math.max(...rows.map((row) => (row[index] ?? "").length))) ?? []
  const table = rows.map((row) => row.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join("  ")).join("\n")
  const check = record.verification
  return `${table}\n\n` +
    `service: ${formatNumber(check.service.acknowledged)} leads acknowledged, ${formatNumber(check.service.leads)} in leads, ` +
    `${formatNumber(check.service.missing)} missing; floor: ${formatNumber(check.floor.acknowledged)} acknowledged, ` +
    `${formatNumber(check.floor.rows)} rows, ${formatNumber(check.floor.missing)} missing; ` +
    `service log lines at warn or above: ${record.serviceProblems.count}`
}

/** Builds the JSON of quick mode: the ratio that a regression check compares, and the medians behind it. */
export const renderJson = (record: LeadsRecord) => {
  const median = (target: Target, figure: (run: PhaseFigures) => number) => round(medianOf(record, target, figure))
  return {
    name: "leads",
    ratios: { captures_vs_insert_floor: { value: round(floorRatio(record)), better: "higher" } },
    figures: {
      service_captures_per_second: median("service", (run) => run.capturesPerSecond),
      floor_captures_per_second: median("floor", (run) => run.capturesPerSecond),
      service_p50_ms: median("service", (run) => run.p50Ms),
      service_p99_ms: median("service", (run) => run.p99Ms),
      floor_p50_ms: median("floor", (run) => run.p50Ms),
      floor_p99_ms: median("floor", (run) => run.p99Ms),
      service_cpu_ms_per_capture: median("service", (run) => run.serverCpuMsPerCapture),
      floor_cpu_ms_per_capture: median("floor", (run) => run.serverCpuMsPerCapture),
      service_postgres_cpu_ms_per_capture: median("service", (run) => run.postgresCpuMsPerCapture),
      floor_postgres_cpu_ms_per_capture: median("floor", (run) => run.postgresCpuMsPerCapture),
      service_run_other_processes_cores: median("service", (run) => run.cores.others),
      floor_run_other_processes_cores: median("floor", (run) => run.cores.others),
      connections: record.connections,
      pool_size: record.poolSize,
      measured_runs_per_server: measuredRuns(record, "service").length,
      acknowledged_leads_missing: record.verification.service.missing,
      acknowledged_floor_rows_missing: record.verification.floor.missing
    }
  }
}

const round = (value: number) => Number.isFinite(value) ? Math.round(value * 1000) / 1000 : null

const markdownTable = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) =>
  [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, index) => index === 0 ? "---" : "---:").join("|")}|`,
    ...rows.map((row) => `| ${row.join(" | ")} |`)
  ].join("\n")

/** Renders the section of docs/benchmarks.md, without its markers. */
export const renderMarkdown = (record: LeadsRecord): string => {
  const machine = record.machine
  const database = record.database
  const runs = measuredRuns(record, "service")
  const runSeconds = formatNumber(runs[0]?.elapsedSeconds ?? Number.NaN, 0)
  const summaryTable = markdownTable(
    ["median (min–max) of the measured runs", "service", "floor"],
    [
      ...SUMMARY_ROWS.map((row) => [row.title, ...summaryCells(record, row)]),
      ["**service ÷ floor, captures/s**", `**${formatNumber(floorRatio(record), 2)}**`, "target ≥ 0.80"]
    ]
  )
  const phaseTable = markdownTable(
    ["phase", "server", "conn.", "s", "requests", "captures/s", "p50 ms", "p99 ms", "failed", "server cores",
      "JS thread", "PostgreSQL", "load gen.", "others", "machine", "txn/capture", "WAL flushes", "autovacuum", "jobs",
      "sockets"],
    record.phases.map((phase) => [
      phase.label,
      phase.target,
      String(phase.connections),
      formatNumber(phase.elapsedSeconds, 1),
      formatNumber(phase.requests),
      formatNumber(phase.capturesPerSecond),
      formatNumber(phase.p50Ms, 1),
      formatNumber(phase.p99Ms, 1),
      formatNumber(phase.failed),
      formatNumber(phase.cores.server, 2),
      formatNumber(phase.cores.serverMainThread, 2),
      formatNumber(phase.cores.postgres, 2),
      formatNumber(phase.cores.loadGenerator, 2),
      formatNumber(phase.cores.others, 2),
      formatNumber(phase.cores.machine, 2),
      formatNumber(phase.transactions / acknowledgedOf(phase), 2),
      formatNumber(phase.walSyncs),
      String(phase.autovacuumRuns),
      String(phase.jobRuns),
      String(phase.socketsOpened)
    ])
  )
  const bodies = record.phases.filter((phase) => phase.requests > 0)
  const minBody = Math.min(...bodies.map((phase) => phase.minBodyBytes))
  const maxBody = Math.max(...bodies.map((phase) => phase.maxBodyBytes))

  return `## Lead capture: \`POST /v1/leads/capture\`

Command: \`${record.command}\`${record.quick ? " (quick mode: one short run per server, figures are rough)" : ""}

Date: ${record.startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC; the whole run took ${formatNumber(record.wallSeconds)} s, of which ${formatNumber(record.serviceStartSeconds, 1)} s to start the service.

Code: commit ${record.code.commit}${record.code.uncommitted.length === 0 ? "" : `, with uncommitted changes in ${record.code.uncommitted.map((file) => `\`${file}\``).join(", ")}`}.

Machine: ${machine.cores} cores (\`nproc\`), ${machine.cpuModel}, ${formatNumber(machine.memoryGiB, 1)} GiB of memory, ${machine.kernel}, Node ${machine.nodeVersion}. PostgreSQL ${database.version}, embedded, with DATA_DIR on ${database.dataDirFilesystem}; \`fsync\` ${database.fsync}, \`synchronous_commit\` ${database.synchronousCommit}, \`commit_delay\` ${database.commitDelay}, \`shared_buffers\` ${database.sharedBuffers}.

### What runs

- The service, \`node src/main.ts\`, on its embedded PostgreSQL in a new temporary DATA_DIR, with default settings except fixed keys and pepper, \`CORS_ALLOWED_ORIGINS=${"https://www.example.com"}\`, \`TRUST_PROXY=fly\` and \`DATABASE_POOL_SIZE=${record.poolSize}\` (the default, set explicitly). The lead rate limits keep their defaults (10 per client IP per minute, 5 per address per hour): every request sends its own \`Fly-Client-IP\`, a random public IPv4 address, and its own address, so no limit is reached and the limiter still counts every request.
- The leads: each request is one person sending the contact form of \`static/dist/contact.html\` as \`porchlight.js\` posts it, as JSON: the ingest key, a new email address, the visitor's \`anonId\`, \`formName\` \`contact-sales\`, \`locale\` (a quarter \`fr\`), the empty honeypot, \`name\` and \`company\` for some, and \`consent: "express"\` with the form's consent wording as \`consentText\`. Visitors who came from a campaign also send the hidden inputs \`utm_source\`, \`utm_medium\` and \`utm_campaign\`, which the service ignores because it reads the campaign from the visitor's session. Bodies are ${formatNumber(minBody)} to ${formatNumber(maxBody)} bytes. Addresses are the ${record.emailTemplates} test-set addresses (is_email, python-email-validator, validator.js) that the service accepts, with a number added before the \`@\`, so every lead is new and answered 201. User agents are real browsers from the Intoli sample.
- The visitors: before each service phase, the benchmark stores as the owner, outside the measured time, the visitors that the phase's leads come from, each with one session that landed from search or social (Matomo referrer lists), a campaign with UTM tags, another site or directly. So each capture finds an existing visitor and a session, as it would after the tracker's page views, and reads the lead's touches from it. ${record.unseededLeads === 0 ? "No lead came from a visitor that was not stored." : `${formatNumber(record.unseededLeads)} leads came from a visitor that was not stored, because the stored ones ran out.`}
- The floor: a bare \`node:http\` server in its own process (\`bench/lib/leadFloorServer.ts\`). Per request it reads the body, parses the JSON, and runs \`BEGIN\`, one \`INSERT\` of one row (a prepared statement) into a plain table of its own with 17 columns and a primary key, and \`COMMIT\` through a \`pg\` pool of ${record.poolSize} connections, as the embedded superuser, on the same PostgreSQL; then it responds with 201. It validates nothing and applies no consent rule.
- The load generator, in the benchmark's own process: ${record.connections} connections over HTTP/1.1 keep-alive without pipelining, each posting its next lead when the previous response has arrived. Both servers get the same bodies from the same generator.
- Phases: a warm-up per server, ${record.quick ? "no probe" : "a probe of several connection counts"}, then ${runs.length} measured run${runs.length === 1 ? "" : "s"} of ${runSeconds} s per server, alternating service and floor${record.requestPath === undefined ? "" : `, and last ${formatNumber(record.requestPath.elapsedSeconds, 0)} s of the service with leads that it rejects with 400 before any SQL (a \`formName\` with a space), to measure its request path outside the database`}. Before each probe and run the benchmark waits, for a limited time, until other processes use less than ${formatNumber(record.quietCores, 2)} cores; a run during which they used ${formatNumber(record.contendedCores, 2)} cores or more is measured again, up to ${record.maxRepeats} times in all. CPU times come from \`/proc/<pid>/stat\`: the server process and its main thread, PostgreSQL's postmaster with every backend under it, the benchmark's own process, and the machine from \`/proc/stat\`. Transactions are the growth of the transaction id counter, so they count only transactions that wrote.

### Connections

${record.connectionReason} The database pool is ${record.poolSize} connections on both servers, the service's default, so at most ${record.poolSize} transactions are open at a time and the other requests wait for a pooled connection. While one transaction waits for its commit's WAL flush, the others run their statements, and PostgreSQL flushes the WAL of every commit that arrived in the meantime together. ${connectionVerdict(record)}

### Results

${summaryTable}

### Reading

${renderReading(record)}

### Profile and what bounds the ratio

${PROFILE_TEXT}

### What would meet the target

${renderDesign(record)}

### Correctness

${renderCorrectness(record)}

### Every phase

"sockets" counts the connections that the load generator opened in the phase; it equals the connection count when keep-alive held throughout. "txn/capture" is write transactions per acknowledged capture, over the whole database. "WAL flushes" come from \`pg_stat_io\` and count the WAL writer's flushes as well as the commits'. Backends update these counters about once a second, so they are approximate for a phase of a few seconds.

${phaseTable}
`
}

const renderCorrectness = (record: LeadsRecord): string => {
  const service = record.verification.service
  const floor = record.verification.floor
  const failures = new Map<string, number>()
  for (const phase of record.phases) {
    for (const [key, count] of phase.failures) failures.set(`${phase.target}: ${key}`, (failures.get(`${phase.target}: ${key}`) ?? 0) + count)
  }
  const failureText = failures.size === 0
    ? "none"
    : [...failures].map(([key, count]) => `${formatNumber(count)} × ${key}`).join(", ")
  const channels = service.sourceChannels.map((entry) => `${entry.name} ${formatNumber(entry.count)}`).join(", ")
  return [
    `- Service: ${formatNumber(service.acknowledged)} leads acknowledged over every phase, warm-ups and probes included; ${formatNumber(service.leads)} rows in \`leads\`; acknowledged addresses missing from \`leads\`: ${formatNumber(service.missing)}; stored addresses never acknowledged: ${formatNumber(service.unacknowledged)}.`,
    `- Leads with express consent and exactly one consent event with source \`contact-sales\` and the form's wording: ${formatNumber(service.expressWithEvent)}. Consent events: ${formatNumber(service.consentEvents)}. Form submissions: ${formatNumber(service.formSubmissions)}, ${formatNumber(service.submissionsWithSession)} of them with the visitor's session. Visitor links: ${formatNumber(service.formSubmitLinks)} \`form_submit\`, ${formatNumber(service.sameIpLinks)} \`same_ip_ua_window\`. Leads with a first touch from the session: ${formatNumber(service.withFirstTouch)}; with a campaign medium: ${formatNumber(service.withCampaign)}. Source channels: ${channels}.`,
    `- Floor: ${formatNumber(floor.acknowledged)} rows acknowledged, ${formatNumber(floor.rows)} in its table, ${formatNumber(floor.missing)} missing.`,
    `- Failed requests: ${failureText}.`,
    `- Service log lines at warn or above: ${formatNumber(record.serviceProblems.count)}.${record.serviceProblems.lines.length > 0 ? ` The first: \`${record.serviceProblems.lines[0]?.slice(0, 300) ?? ""}\`` : ""}`,
    `- Shutdown on SIGTERM after the load: exit code ${record.shutdown.code ?? "none"}${record.shutdown.signal === null ? "" : `, signal ${record.shutdown.signal}`}.`
  ].join("\n")
}

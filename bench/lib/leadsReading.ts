/**
 * The lead benchmark's explanation of its ratio: what bounds each server,
 * the profiles behind it, and what the target would take.
 */
import { floorRatio, type LeadsRecord, medianOf, type PhaseFigures, type Target } from "./leadsRecord.ts"
import { formatNumber } from "./stats.ts"

/**
 * Explains the ratio from the medians of the measured runs. When both
 * servers are bound by CPU, the ratio of captures per second is about the
 * inverse ratio of CPU per capture, load generator included.
 */
export const renderReading = (record: LeadsRecord): string => {
  const cores = record.machine.cores
  const rate = (target: Target) => medianOf(record, target, (run) => run.capturesPerSecond)
  const server = (target: Target) => medianOf(record, target, (run) => run.serverCpuMsPerCapture)
  const postgres = (target: Target) => medianOf(record, target, (run) => run.postgresCpuMsPerCapture)
  const generator = (target: Target) =>
    medianOf(record, target, (run) => (run.cores.loadGenerator * 1000) / Math.max(1, run.capturesPerSecond))
  const perCapture = (target: Target) => server(target) + postgres(target) + generator(target)
  const ceiling = (target: Target) => (cores * 1000) / perCapture(target)
  const ratio = floorRatio(record)
  const ms = (value: number) => `${formatNumber(value, 2)} ms`
  const budget = (server("floor") + postgres("floor") + generator("floor")) / 0.8 - generator("service")

  const outcome = `The service captured ${formatNumber(rate("service"))} leads/s and the floor inserted ` +
    `${formatNumber(rate("floor"))} rows/s, so the service reached ${formatNumber(ratio, 2)} of the floor against ` +
    `a target of 0.80: the target is ${ratio >= 0.8 ? "met" : "missed"}.`
  const cpu = `CPU per capture: the service ${ms(server("service"))} and PostgreSQL ${ms(postgres("service"))}, ` +
    `against ${ms(server("floor"))} and ${ms(postgres("floor"))} for the floor; the load generator used ` +
    `${ms(generator("service"))} per request against the service and ${ms(generator("floor"))} against the floor. ` +
    `On these costs alone the ${cores} cores allow about ${formatNumber(ceiling("service"))} captures/s and ` +
    `${formatNumber(ceiling("floor"))} floor rows/s. The runs reached ` +
    `${formatNumber((rate("service") / ceiling("service")) * 100)}% and ` +
    `${formatNumber((rate("floor") / ceiling("floor")) * 100)}% of these ceilings, so both figures are bound mainly ` +
    "by CPU, and the ratio follows the CPU per capture."
  const target = `To reach 0.80 at the floor's costs, the service and its PostgreSQL could use about ${ms(budget)} ` +
    "of CPU per capture together (an estimate from the costs above)."
  const path = record.requestPath
  const outside = path === undefined
    ? ""
    : ` Outside the database the service alone used ${ms(path.serviceCpuMsPerRequest)} per request, on leads that ` +
      "it rejected with 400 before any SQL (after the key check, JSON and email parsing, the per-IP rate limit and " +
      `hashing): ${formatNumber(path.serviceCpuMsPerRequest / (server("floor") + postgres("floor")), 1)} times the ` +
      "floor server's and PostgreSQL's CPU for a whole floor request, insert and commit included. That phase ran " +
      `${formatNumber(path.requestsPerSecond)} requests/s over ${path.connections} connections, with ` +
      `${formatNumber(path.otherOutcomes)} answers other than 400.`
  return [outcome, cpu, `${target}${outside}`].join("\n\n")
}

/**
 * Estimates what the service and PostgreSQL may spend per capture for a
 * ratio of 0.80, and what is left for the database once the request path
 * outside it is paid. The estimate assumes that both servers stay bound by
 * CPU, as they are on the 2-core machine of the record.
 */
export const renderDesign = (record: LeadsRecord): string => {
  const path = record.requestPath
  if (path === undefined) return "The quick mode does not measure the request path outside the database, so it gives no estimate."

  const median = (target: Target, figure: (run: PhaseFigures) => number) => medianOf(record, target, figure)
  const generator = (target: Target) =>
    median(target, (run) => (run.cores.loadGenerator * 1000) / Math.max(1, run.capturesPerSecond))
  const floorPostgres = median("floor", (run) => run.postgresCpuMsPerCapture)
  const floorTotal = median("floor", (run) => run.serverCpuMsPerCapture) + floorPostgres + generator("floor")
  const budget = floorTotal / 0.8 - generator("service")
  const left = budget - path.serviceCpuMsPerRequest
  const today = median("service", (run) => run.serverCpuMsPerCapture + run.postgresCpuMsPerCapture) -
    path.serviceCpuMsPerRequest
  const ms = (value: number) => `${formatNumber(value, 2)} ms`

  const estimate = `By the estimate under "Reading", the request path outside the database takes ` +
    `${ms(path.serviceCpuMsPerRequest)} of the ${ms(budget)} per capture, which leaves ` +
    `${left > 0 ? `about ${ms(left)}` : "nothing"} for the database work of the service and PostgreSQL together, ` +
    `against ${ms(today)} today and ${ms(floorPostgres)} of PostgreSQL CPU for the floor's single insert. So no change ` +
    "to the SQL of a capture can reach 0.80 on this machine while each capture writes its five tables before the " +
    "response. These changes of design would be needed, estimated and not measured:"

  const steps = [
    "- one durable row per capture: commit the submission as it arrived, with its consent wording, time and IP hash " +
    "(the CASL record), to an append-only capture log, respond, and expand the log into leads, consent events, " +
    "visitor links and form submissions in batches afterwards. Export, erasure and unsubscribe would then have to " +
    "read the captures not yet expanded. Committing the log rows of concurrent captures together (a group commit, " +
    "as the ingest writer does) would also share each transaction's round trips and WAL flush;"
  ]

  if (left < floorPostgres) {
    steps.push("- and, since even one row per capture costs PostgreSQL about what the floor's insert does, a request " +
      `path that costs less CPU than today's ${ms(path.serviceCpuMsPerRequest)}.`)
  }
  return [estimate, steps.join("\n")].join("\n\n")
}

/**
 * Findings of profiles that a run does not repeat: the commands are given,
 * and the figures belong to the code and the date named.
 */
export const PROFILE_TEXT = `Profiles taken on 2026-12-04 on the machine above, with the code of this record (\`src/services/Leads.ts\` as
changed that day) unless said otherwise:

- **Before the change.** The capture ran BEGIN, the tenant setting, nine statements and COMMIT: eleven round trips.
  It inserted the lead, then updated it twice (consent, then touches), and PostgreSQL runs a row's foreign-key
  checks again when the transaction that inserted the row updates it, so a capture ran 13 key checks. A full run
  (\`npx node bench/leads.ts\`, \`src/services/Leads.ts\` of commit 1eed8b7) measured 310 captures/s (257–328) against a floor of 2,704
  (2,313–3,013), a ratio of 0.11, with 1.84 ms of service CPU and 3.33 ms of PostgreSQL CPU per capture.
- **The change.** A new address now takes BEGIN, the tenant setting, one statement and COMMIT. The statement
  upserts the visitor, inserts the lead with its consent and touches already set, and inserts the consent event,
  the visitor links and the form submission in data-modifying CTEs. It runs 9 key checks. A known address takes
  four more statements. The behaviour is unchanged: the lead, unsubscribe and erasure tests pass.
- **PostgreSQL** (\`npx node bench/leads.ts --quick --pg-stats\`, 32 connections, 1,876 captures; times from
  pg_stat_statements, which add their own cost). Per capture, the capture statement took 0.69 ms to plan and
  1.21 ms to run, and its key checks 0.29 ms to plan: the pool runs with \`plan_cache_mode = force_custom_plan\`
  (\`src/services/Database.ts\`), so the statement and every key check are planned again at each call, and
  planning is 45% of PostgreSQL's time. The rest is the work itself: five tables written with sixteen index
  entries (the visitor's update changes an indexed column) against the floor's one table and one index, nine key
  checks and row-level security.
  pg_stat_statements lists the five two-column key checks (on leads, properties and visitors) under one entry with
  the text of the first. Generic plans are no way out: an experiment that set \`plan_cache_mode = auto\` for the
  capture transaction removed the planning, but the cached generic plan of a key check on \`leads\` read about
  4,000 rows of \`leads\` per capture (\`idx_tup_fetch\` in \`pg_stat_user_tables\`), because it was made
  while the new table had no statistics.
- **Waiting.** Sampled every 10 ms in the same run, the service's database connections were idle inside a
  transaction, waiting for the service's next statement, in 55% of the samples, idle outside a transaction in 26%,
  waiting for a WAL write or flush in 11%, and running in 7%. A transaction spends most of its time waiting for
  the service's event loop between its four round trips, so PostgreSQL's backends are not the queue.
- **The service** (\`npx node bench/leads.ts --quick --cpu-prof DIR\`). Of the JavaScript thread's samples outside
  idle time while it served captures, about half fell inside \`write()\` calls on its sockets. The profiler samples
  wall-clock time, and the service's system time was only 11% of its CPU time (\`/proc/<pid>/stat\` over 6 s at
  16 connections), so these samples are mostly time the thread waited for a core after waking the PostgreSQL
  backend or the client it wrote to. The Effect runtime (fibers and contexts) took 16% of the samples, the SQL
  client 6%, email parsing 4% and garbage collection 4%.

On a machine with more cores, where CPU does not bound either server, the ratio would follow latency instead
(four round trips in the service's transaction against three in the floor's, plus the request path), so this
record applies to a 2-core machine.`

/** Says whether the measured runs were bound by the CPU or by waiting, from the machine's use of its cores. */
export const connectionVerdict = (record: LeadsRecord): string => {
  const cores = record.machine.cores
  const busy = (target: Target) => medianOf(record, target, (run) => run.cores.machine)
  const service = busy("service")
  const floor = busy("floor")
  const both = `The machine's cores were ${formatNumber((service / cores) * 100)}% busy during the service's runs and ` +
    `${formatNumber((floor / cores) * 100)}% during the floor's`
  return Math.min(service, floor) >= 0.8 * cores
    ? `${both}, so both figures are bound mostly by CPU rather than by the wait for commits, and more connections ` +
      "would mostly lengthen the queue for the pool."
    : `${both}. Below 80%, a figure may be bound in part by waiting, for commits or for a turn on a core.`
}

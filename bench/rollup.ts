/**
 * Rollup benchmark. It loads one property's day of 1,000,000 events, with
 * the visitors, sessions, leads and ingest rejections that go with them,
 * into a fresh embedded PostgreSQL in a temporary folder. Then it times
 * `rollupDay` against a floor, one bare `GROUP BY` scan of the same events.
 * Both run as the application role inside a tenant transaction, three times
 * each, alternating. It prints the figures and writes the `## Rollups`
 * section of docs/benchmarks.md.
 *
 * Usage: npx node bench/rollup.ts
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { type DayRollup, Rollup } from "../src/jobs/Rollup.ts"
import { enableAppRole } from "../src/services/AppRole.ts"
import { startEmbeddedPostgres } from "../src/services/EmbeddedPostgres.ts"
import { runMigrations } from "../src/services/Migrations.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TenantDb } from "../src/services/TenantDb.ts"
import { clockTicksPerSecond, machineBusyCpuSeconds, machineFacts, processTreeCpuSeconds } from "./lib/processes.ts"
import { freePort } from "./lib/service.ts"

const REPOSITORY = fileURLToPath(new URL("..", import.meta.url))
const DOCS_FILE = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
const SECTION_START = "<!-- bench:rollup:start -->"
const SECTION_END = "<!-- bench:rollup:end -->"
const FILE_HEADER = `# Benchmarks

Measured figures for Porchlight, one section per benchmark. Each section
names the command that produced it, the machine and the date. A benchmark
script rewrites only its own section, between its \`bench:NAME:start\` and
\`bench:NAME:end\` markers, and appends the section when it is missing.
`

const DAY = "2026-03-10"
const TIMEZONE = "America/Toronto"
const EVENTS = 1_000_000
const SESSIONS = 150_000
const VISITORS = 110_000
const NEW_LEADS = 4_000
const REJECTIONS = 10_000
const PATHS = 2_000
const MEASURED_RUNS = 3
/** The whole run, data load included, must finish within this time, or the script exits with an error. */
const RUN_LIMIT_MS = 5 * 60_000
/** Before each measured run, the benchmark waits until other processes use fewer cores than this. */
const QUIET_MAX_OTHER_CORES = 0.2
/** Maximum wait for a quiet machine; then the run starts anyway, and the figures show how busy the machine was. */
const QUIET_WAIT_MS = 45_000
const QUIET_SAMPLE_MS = 1_000


/** PostgreSQL's log lines reach this process through a pipe, a little after the statements end. */
const LOG_SETTLE_MS = 300
const settleLog = () => new Promise((resolve) => setTimeout(resolve, LOG_SETTLE_MS))

interface CpuSample {
  readonly at: number
  /** CPU seconds of this process and of PostgreSQL with all its backends. */
  readonly ours: number
  /** Busy CPU seconds of the whole machine. */
  readonly machine: number
}

/** Measures how many cores processes other than this benchmark and its PostgreSQL keep busy. */
class CpuMeter {
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

  /** Cores that other processes kept busy since `start`, on average. */
  otherCoresSince(start: CpuSample): number {
    const now = this.sample()
    const seconds = (now.at - start.at) / 1000
    return Math.max(0, (now.machine - start.machine - (now.ours - start.ours)) / seconds)
  }

  /** Waits, at most QUIET_WAIT_MS, until other processes use fewer than QUIET_MAX_OTHER_CORES, and returns their last load. */
  async waitForQuiet(): Promise<number> {
    let others = Number.POSITIVE_INFINITY
    for (let waited = 0; waited < QUIET_WAIT_MS && others >= QUIET_MAX_OTHER_CORES; waited += QUIET_SAMPLE_MS) {
      const start = this.sample()
      await new Promise((resolve) => setTimeout(resolve, QUIET_SAMPLE_MS))
      others = this.otherCoresSince(start)
    }
    return others
  }
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

const milliseconds = (value: number) => value.toLocaleString("en-US", { maximumFractionDigits: 0 })
const count = (value: number) => value.toLocaleString("en-US")

/**
 * Statement durations that PostgreSQL logs for the application role
 * (`log_min_duration_statement = 0`), grouped by the rollup step they belong
 * to. A log entry is its first line plus the lines that follow it without a
 * timestamp, which hold the rest of the statement text.
 */
class StatementLog {
  private recording = false
  private entry: Array<string> = []
  private readonly durations = new Map<string, Array<number>>()
  private run = new Map<string, number>()

  readonly onLine = (line: string) => {
    if (/^\d{4}-\d{2}-\d{2} /.test(line)) {
      this.finishEntry()
      this.entry = [line]
    } else if (this.entry.length > 0) {
      this.entry.push(line)
    }
  }

  start() {
    this.finishEntry()
    this.recording = true
    this.run = new Map()
  }

  /** Stops recording and keeps the run's total per step. */
  stop() {
    this.finishEntry()
    this.recording = false
    for (const [step, total] of this.run) {
      this.durations.set(step, [...(this.durations.get(step) ?? []), total])
    }
  }

  /** Median per step over the recorded runs, largest first. */
  medians(): ReadonlyArray<readonly [string, number]> {
    return [...this.durations]
      .map(([step, values]) => [step, median(values)] as const)
      .sort((a, b) => b[1] - a[1])
  }

  private finishEntry() {
    const text = this.entry.join("\n")
    this.entry = []
    if (!this.recording) return
    const match = /duration: ([\d.]+) ms\s+(?:parse|bind|execute|statement)/.exec(text)
    if (match === null) return
    const step = stepOf(text)
    this.run.set(step, (this.run.get(step) ?? 0) + Number(match[1]))
  }
}

const stepOf = (statement: string) => {
  if (statement.includes("INSERT INTO daily_visitors")) return "`daily_visitors` rows"
  if (statement.includes("WITH counted_events")) return "total row"
  if (/'path', \w+\.path/.test(statement)) return "path rows"
  if (statement.includes("CROSS JOIN LATERAL (VALUES")) return "source, referrer, keyword, country and device rows"
  if (statement.includes("INSERT INTO daily_ingest_rollups")) return "ingest row"
  if (statement.includes("DELETE FROM daily_")) return "deleting the day's old rows"
  if (statement.includes("\"totalRows\"")) return "reading the invariant figures"
  if (statement.includes("day_start::text")) return "day bounds"
  return "transaction control and tenant setting"
}

/** Owner statements that write the day's raw rows, in order. Every random() is in a select list, so it runs per row. */
const loadStatements = (tenantId: string, propertyId: string, dayStart: string, dayEnd: string) => {
  const tenant = `'${tenantId}'::uuid`
  const ids = `${tenant}, '${propertyId}'::uuid`
  const window = `timestamptz '${dayStart}'`
  const span = `(timestamptz '${dayEnd}' - timestamptz '${dayStart}')`
  return [
    // A quarter of the visitors came before the day (returning), the rest arrive during it.
    `INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at)
     SELECT ${ids}, 'anon-' || g.i, g.seen_at, g.seen_at
     FROM (SELECT i, CASE WHEN random() < 0.25 THEN ${window} - random() * interval '60 days'
                          ELSE ${window} + random() * ${span} END AS seen_at
           FROM generate_series(1, ${VISITORS}) AS i) AS g`,
    // Sessions start more often around midday (two uniform draws averaged),
    // with a traffic mix, referrers and search terms that match their source.
    `WITH v AS (SELECT array_agg(id ORDER BY id) AS ids FROM visitors),
     s AS (
       SELECT ${window} + (random() + random()) / 2 * ${span} AS started_at, random() AS source_draw,
              random() AS device_draw, floor(random() * 300)::int AS pick, random() AS country_draw
       FROM generate_series(1, ${SESSIONS})
     )
     INSERT INTO sessions (tenant_id, property_id, visitor_id, started_at, last_event_at, traffic_source,
                           referrer_domain, utm_term, device_type, country_code)
     SELECT ${ids}, v.ids[1 + floor(random() * ${VISITORS})::int], s.started_at, s.started_at, src.source,
            CASE src.source
              WHEN 'organic_search' THEN (ARRAY['google.com', 'bing.com', 'duckduckgo.com'])[1 + s.pick % 3]
              WHEN 'paid_search' THEN 'google.com'
              WHEN 'social' THEN (ARRAY['facebook.com', 'linkedin.com', 'x.com'])[1 + s.pick % 3]
              WHEN 'referral' THEN 'site-' || (s.pick % 200) || '.example'
              WHEN 'internal' THEN 'www.example.com'
            END,
            CASE WHEN src.source IN ('paid_search', 'campaign') THEN 'keyword ' || s.pick END,
            CASE WHEN s.device_draw < 0.55 THEN 'desktop' WHEN s.device_draw < 0.93 THEN 'mobile'
                 WHEN s.device_draw < 0.97 THEN 'tablet' ELSE 'bot' END::device_type,
            CASE WHEN s.country_draw < 0.03 THEN NULL
                 ELSE (ARRAY['CA', 'CA', 'CA', 'CA', 'US', 'US', 'US', 'FR', 'GB', 'DE', 'IN', 'BR', 'AU', 'MX'])
                      [1 + floor(s.country_draw * 14)::int] END
     FROM v, s,
          LATERAL (SELECT CASE WHEN s.source_draw < 0.30 THEN 'direct' WHEN s.source_draw < 0.65 THEN 'organic_search'
                               WHEN s.source_draw < 0.73 THEN 'paid_search' WHEN s.source_draw < 0.81 THEN 'social'
                               WHEN s.source_draw < 0.85 THEN 'email' WHEN s.source_draw < 0.95 THEN 'referral'
                               WHEN s.source_draw < 0.98 THEN 'campaign' WHEN s.source_draw < 0.99 THEN 'internal'
                               ELSE 'unknown' END::traffic_source AS source) AS src`,
    // Events go to uniformly drawn sessions, within 25 minutes of the start
    // and before the day ends, in time order as ingest writes them. A
    // session's first event is its entrance page view, and later ones are
    // page views, web vitals with TTFB, scrolls, clicks and a few form
    // events. Paths are drawn log-uniformly, so a few pages get most views.
    `WITH s AS (SELECT array_agg(id ORDER BY id) AS ids FROM sessions),
     drawn AS (
       SELECT s.ids[1 + floor(random() * ${SESSIONS})::int] AS session_id, random() AS offset_draw,
              random() AS type_draw, floor(power(${PATHS}, random()))::int AS path_rank, random() AS ttfb_draw
       FROM s, generate_series(1, ${EVENTS})
     ),
     placed AS (
       SELECT d.*, se.visitor_id, se.device_type, se.traffic_source, se.country_code,
              LEAST(se.started_at + d.offset_draw * interval '25 minutes',
                    timestamptz '${dayEnd}' - interval '1 millisecond') AS at
       FROM drawn d JOIN sessions se ON se.id = d.session_id
     ),
     ranked AS (
       SELECT p.*, row_number() OVER (PARTITION BY p.session_id ORDER BY p.at, p.offset_draw) AS rank FROM placed p
     ),
     typed AS (
       SELECT r.*,
              CASE WHEN r.rank = 1 OR r.type_draw < 0.55 THEN 'page_view' WHEN r.type_draw < 0.75 THEN 'web_vitals'
                   WHEN r.type_draw < 0.87 THEN 'scroll' WHEN r.type_draw < 0.979 THEN 'cta_click'
                   WHEN r.type_draw < 0.994 THEN 'form_start' ELSE 'form_submit' END AS event_type
       FROM ranked r
     )
     INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp",
                         traffic_source, device_type, country_code, is_entrance, is_conversion, props)
     SELECT ${ids}, t.visitor_id, t.session_id, t.event_type,
            CASE t.path_rank WHEN 1 THEN '/' WHEN 2 THEN '/pricing' ELSE '/page/' || t.path_rank END,
            t.at, t.traffic_source, t.device_type, t.country_code, t.rank = 1, t.event_type = 'form_submit',
            CASE WHEN t.event_type = 'web_vitals'
                 THEN jsonb_build_object('ttfbMs', round((40 + 1200 * power(t.ttfb_draw, 3))::numeric, 1),
                                         'lcpMs', round((600 + 3000 * t.ttfb_draw)::numeric))
                 ELSE '{}'::jsonb END
     FROM typed t
     ORDER BY t.at`,
    `UPDATE sessions s SET page_views = c.page_views, events = c.events, is_conversion = c.converted,
                           last_event_at = c.last_event_at, landing_path = '/'
     FROM (SELECT session_id, count(*) FILTER (WHERE event_type = 'page_view') AS page_views, count(*) AS events,
                  bool_or(event_type = 'form_submit') AS converted, max("timestamp") AS last_event_at
           FROM events GROUP BY session_id) AS c
     WHERE s.id = c.session_id`,
    `WITH v AS (SELECT array_agg(id ORDER BY id) AS ids FROM visitors),
     l AS (
       INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, first_captured_at, last_captured_at)
       SELECT ${ids}, 'lead-' || c.i || '@example.com', 'lead-' || c.i || '@example.com', c.at, c.at
       FROM (SELECT i, ${window} + random() * ${span} AS at FROM generate_series(1, ${NEW_LEADS}) AS i) AS c
       RETURNING id, first_captured_at
     )
     INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence, created_at)
     SELECT ${tenant}, l.id, v.ids[1 + floor(random() * ${VISITORS})::int], 'form_submit', 1,
            l.first_captured_at
     FROM l, v`,
    `INSERT INTO ingest_rejections (tenant_id, property_id, received_at, reason, field)
     SELECT ${ids}, ${window} + random() * ${span},
            (ARRAY['invalid_event', 'invalid_event', 'invalid_event', 'not_an_object', 'too_many_events'])
              [1 + floor(random() * 5)::int], 'path'
     FROM generate_series(1, ${REJECTIONS})`,
    "VACUUM ANALYZE",
    // Writes the load's dirty pages now, so that no checkpoint runs during the measured runs.
    "CHECKPOINT"
  ]
}

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

/** Replaces the rollup section of the docs file, or appends it, and leaves the other sections as they are. */
const writeDocsSection = (section: string) => {
  const block = `${SECTION_START}\n${section.trimEnd()}\n${SECTION_END}`
  const current = Fs.existsSync(DOCS_FILE) ? Fs.readFileSync(DOCS_FILE, "utf8") : FILE_HEADER
  const start = current.indexOf(SECTION_START)
  const end = current.indexOf(SECTION_END)
  const next = start !== -1 && end > start
    ? `${current.slice(0, start)}${block}${current.slice(end + SECTION_END.length)}`
    : `${current.trimEnd()}\n\n${block}\n`
  Fs.writeFileSync(DOCS_FILE, next)
}

interface Measurement {
  readonly rollupMs: ReadonlyArray<number>
  readonly floorMs: ReadonlyArray<number>
  /** Cores that other processes kept busy during each `rollupDay` run. */
  readonly otherCores: ReadonlyArray<number>
  /** Cores that other processes kept busy during each floor run. */
  readonly floorOtherCores: ReadonlyArray<number>
  readonly steps: ReadonlyArray<readonly [string, number]>
  readonly result: DayRollup
  readonly floorGroups: number
  readonly metricRows: number
  readonly visitorRows: number
  readonly loadSeconds: number
  readonly postgresVersion: string
  readonly settings: string
}

const main = async () => {
  const began = performance.now()
  const watchdog = setTimeout(() => {
    console.error(`bench/rollup.ts: the run exceeded ${RUN_LIMIT_MS / 60_000} minutes; stopping`)
    process.exit(1)
  }, RUN_LIMIT_MS)
  watchdog.unref()

  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-bench-rollup-"))
  const scope = Effect.runSync(Scope.make())
  const statements = new StatementLog()
  try {
    const cluster = await Effect.runPromise(
      startEmbeddedPostgres({
        dataDir,
        port: await freePort(),
        superuserPassword: Redacted.make(randomBytes(18).toString("base64url")),
        onLog: statements.onLine
      }).pipe(Scope.provide(scope))
    )
    const measurement = await measure(cluster.ownerUrl, new CpuMeter(cluster.pid), statements, began)
    const elapsedSeconds = (performance.now() - began) / 1000
    report(measurement, elapsedSeconds)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    Fs.rmSync(dataDir, { recursive: true, force: true })
    clearTimeout(watchdog)
  }
}

const measure = async (
  clusterUrl: Redacted.Redacted<URL>,
  meter: CpuMeter,
  statements: StatementLog,
  began: number
): Promise<Measurement> => {
  const ownerUrl = new URL(Redacted.value(clusterUrl).href)
  const owner = <A>(url: URL, use: (query: (text: string) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, unknown>) => Effect.Effect<A, unknown>) =>
    Effect.runPromise(withOwnerClient(Redacted.make(url), (client) =>
      use((text) => Effect.map(ownerQuery(client, text), (result) => result.rows))))

  await owner(ownerUrl, (query) => query("CREATE DATABASE porchlight_bench"))
  const databaseUrl = new URL(ownerUrl.href)
  databaseUrl.pathname = "/porchlight_bench"
  await Effect.runPromise(runMigrations(Redacted.make(databaseUrl)))
  const appUrl = await Effect.runPromise(
    enableAppRole(Redacted.make(databaseUrl), Redacted.make(randomBytes(24).toString("base64url")))
  )

  console.log(`loading ${count(EVENTS)} events for ${DAY} in ${TIMEZONE}…`)
  const loadStarted = performance.now()
  const setup = await owner(databaseUrl, (query) =>
    Effect.gen(function*() {
      const tenant = yield* query("INSERT INTO tenants (name) VALUES ('bench') RETURNING id")
      const tenantId = String(tenant[0]?.["id"])
      const property = yield* query(
        `INSERT INTO properties (tenant_id, slug, name, timezone) VALUES ('${tenantId}', 'site', 'site', '${TIMEZONE}')
         RETURNING id, ('${DAY}'::timestamp AT TIME ZONE timezone)::text AS day_start,
                   (('${DAY}'::date + 1)::timestamp AT TIME ZONE timezone)::text AS day_end`
      )
      const propertyId = String(property[0]?.["id"])
      const dayStart = String(property[0]?.["day_start"])
      const dayEnd = String(property[0]?.["day_end"])
      for (const statement of loadStatements(tenantId, propertyId, dayStart, dayEnd)) yield* query(statement)
      const version = yield* query("SELECT version() AS version, current_setting('shared_buffers') AS buffers, current_setting('work_mem') AS work_mem")
      // Logs every statement of the application role with its duration, for the per-step figures.
      yield* query("ALTER ROLE porchlight_app SET log_min_duration_statement = 0")
      return {
        tenantId,
        propertyId,
        dayStart,
        dayEnd,
        postgresVersion: String(version[0]?.["version"]),
        settings: `\`shared_buffers\` ${String(version[0]?.["buffers"])}, \`work_mem\` ${String(version[0]?.["work_mem"])}`
      }
    }))
  const loadSeconds = (performance.now() - loadStarted) / 1000
  console.log(`loaded in ${loadSeconds.toFixed(1)} s (${((performance.now() - began) / 1000).toFixed(0)} s since start)`)

  const sqlLayer = PgClient.layer({
    url: Redacted.make(Redacted.value(appUrl).href),
    maxConnections: 2,
    connectTimeout: Duration.seconds(10)
  })
  const runtime = ManagedRuntime.make(Rollup.layer.pipe(Layer.provideMerge(TenantDb.layer.pipe(Layer.provideMerge(sqlLayer)))))
  try {
    const rollupOnce = () =>
      runtime.runPromise(Effect.gen(function*() {
        const rollup = yield* Rollup
        return yield* rollup.rollupDay(setup.tenantId, setup.propertyId, DAY)
      }))
    const floorOnce = () =>
      runtime.runPromise(Effect.gen(function*() {
        const sql = yield* SqlClient
        const tenants = yield* TenantDb
        return yield* tenants.withTenant(setup.tenantId, sql`
          SELECT ("timestamp" AT TIME ZONE ${TIMEZONE})::date AS day, path, count(*)
          FROM events
          WHERE tenant_id = ${setup.tenantId} AND property_id = ${setup.propertyId}
            AND "timestamp" >= ${setup.dayStart}::timestamptz AND "timestamp" < ${setup.dayEnd}::timestamptz
          GROUP BY 1, 2`)
      }))
    const timed = async <A>(run: () => Promise<A>) => {
      const started = performance.now()
      const value = await run()
      return { value, ms: performance.now() - started }
    }

    // One untimed floor scan reads the events into the caches, so the first
    // measured run of either does not pay for the cold start alone.
    await floorOnce()
    const rollupMs: Array<number> = []
    const floorMs: Array<number> = []
    const otherCores: Array<number> = []
    const floorOtherCores: Array<number> = []
    let result: DayRollup | undefined
    let floorGroups = 0
    for (let run = 1; run <= MEASURED_RUNS; run++) {
      await meter.waitForQuiet()
      await settleLog()
      statements.start()
      const start = meter.sample()
      const rolled = await timed(rollupOnce)
      const others = meter.otherCoresSince(start)
      await settleLog()
      statements.stop()
      await meter.waitForQuiet()
      const floorStart = meter.sample()
      const floor = await timed(floorOnce)
      const floorOthers = meter.otherCoresSince(floorStart)
      rollupMs.push(rolled.ms)
      floorMs.push(floor.ms)
      otherCores.push(others)
      floorOtherCores.push(floorOthers)
      result = rolled.value
      floorGroups = floor.value.length
      console.log(
        `run ${run}: rollupDay ${milliseconds(rolled.ms)} ms (other processes ${others.toFixed(2)} cores), ` +
          `floor ${milliseconds(floor.ms)} ms (other processes ${floorOthers.toFixed(2)} cores)`
      )
    }
    if (result === undefined) throw new Error("no measured run")

    const written = await owner(databaseUrl, (query) =>
      query(`SELECT (SELECT count(*)::int FROM daily_metric_rollups) AS metric_rows,
                    (SELECT count(*)::int FROM daily_visitors) AS visitor_rows`))
    return {
      rollupMs,
      floorMs,
      otherCores,
      floorOtherCores,
      steps: statements.medians(),
      result,
      floorGroups,
      metricRows: Number(written[0]?.["metric_rows"]),
      visitorRows: Number(written[0]?.["visitor_rows"]),
      loadSeconds,
      postgresVersion: setup.postgresVersion,
      settings: setup.settings
    }
  } finally {
    await runtime.dispose()
  }
}

const report = (m: Measurement, elapsedSeconds: number) => {
  const machine = machineFacts()
  const rollupMedian = median(m.rollupMs)
  const floorMedian = median(m.floorMs)
  const ratio = rollupMedian / floorMedian
  const figures = m.result.figures
  const runs = (values: ReadonlyArray<number>) => values.map(milliseconds).join(", ")
  const cores = (values: ReadonlyArray<number>) => values.map((value) => value.toFixed(2)).join(", ")

  console.log("")
  console.log(`rollupDay: median ${milliseconds(rollupMedian)} ms (runs ${runs(m.rollupMs)})`)
  console.log(`floor:     median ${milliseconds(floorMedian)} ms (runs ${runs(m.floorMs)})`)
  console.log(`ratio:     ${ratio.toFixed(1)}× the floor`)
  for (const [step, ms] of m.steps) console.log(`  ${step}: ${milliseconds(ms)} ms`)

  const stepRows = m.steps.map(([step, ms]) => `| ${step} | ${milliseconds(ms)} |`).join("\n")
  const section = `## Rollups

Command: \`npx node bench/rollup.ts\`

Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; the whole run took ${elapsedSeconds.toFixed(0)} s, of which loading the data took ${m.loadSeconds.toFixed(0)} s.

Code: commit ${gitCommit()}.

Machine: ${machine.cores} cores (\`nproc\`), ${machine.cpuModel}, ${machine.memoryGiB} GiB of memory, ${machine.kernel}, Node ${machine.nodeVersion}. ${m.postgresVersion}, embedded, in a new temporary folder, with default settings (${m.settings}).

### What runs

- The data: one tenant and one property in ${TIMEZONE}, and on ${DAY} (local) ${count(EVENTS)} events, ${count(SESSIONS)} sessions, ${count(VISITORS)} visitors (a quarter first seen before the day), ${count(NEW_LEADS)} new leads with a \`form_submit\` identity each, and ${count(REJECTIONS)} ingest rejections. Sessions start more often around midday and come from a traffic mix: 30% direct, 35% organic search, 10% referral from 200 sites, paid search and campaigns with 300 keywords, and a few others. 3% of them are bots. Each event goes to a session drawn uniformly, within 25 minutes of its start. A session's first event is its entrance page view, and the others are page views (55%), web vitals with \`ttfbMs\` (20%), scrolls, clicks and about 2% form events. Paths are drawn log-uniformly from ${count(PATHS)}. Events are inserted in time order, as ingest writes them, and the load ends with \`VACUUM ANALYZE\` and \`CHECKPOINT\`.
- \`rollupDay\` of that day, through \`Rollup.layer\`, as \`porchlight_app\` in its REPEATABLE READ tenant transaction: it deletes the day's rows and writes ${count(m.metricRows)} rows of \`daily_metric_rollups\`, ${count(m.visitorRows)} of \`daily_visitors\` and one of \`daily_ingest_rollups\`.
- The floor: \`SELECT ("timestamp" AT TIME ZONE '${TIMEZONE}')::date AS day, path, count(*) FROM events WHERE <tenant, property and the day's bounds> GROUP BY 1, 2\`, as \`porchlight_app\` in a tenant transaction, returning ${count(m.floorGroups)} groups.
- One untimed floor scan first, then ${MEASURED_RUNS} runs of each, alternating. Before each run the benchmark waits, for at most ${QUIET_WAIT_MS / 1000} s, until processes other than itself and its PostgreSQL use less than ${QUIET_MAX_OTHER_CORES} cores (from \`/proc/stat\` and \`/proc/<pid>/stat\`), and it reports what they used during the run. Times are wall-clock milliseconds around each call, in the benchmark's process, over a pool of 2 connections on 127.0.0.1.

### Results

| figure | median | runs |
| --- | --- | --- |
| \`rollupDay\`, ms | ${milliseconds(rollupMedian)} | ${runs(m.rollupMs)} |
| floor scan, ms | ${milliseconds(floorMedian)} | ${runs(m.floorMs)} |
| \`rollupDay\` / floor | ${ratio.toFixed(1)} | |
| other processes during \`rollupDay\`, cores | ${median(m.otherCores).toFixed(2)} | ${cores(m.otherCores)} |
| other processes during the floor scan, cores | ${median(m.floorOtherCores).toFixed(2)} | ${cores(m.floorOtherCores)} |

The day's figures: ${count(figures.visitors)} visitors (${count(figures.returningVisitors)} returning), ${count(figures.sessions)} sessions, ${count(figures.pageViews)} page views, ${count(figures.entrances)} entrances, of which ${count(figures.convertingEntrances)} converting.

Time per step of \`rollupDay\`, the median over the runs of the durations PostgreSQL logged for each statement (\`log_min_duration_statement = 0\` for \`porchlight_app\`):

| step | ms |
| --- | --- |
${stepRows}
`
  writeDocsSection(section)
  console.log(`\nwrote the rollup section of ${Path.relative(REPOSITORY, DOCS_FILE)}`)
}

await main()

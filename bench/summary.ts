/**
 * Summary benchmark: 90 days of one property's traffic (visitors, sessions,
 * events with Core Web Vitals props, leads) in a fresh embedded PostgreSQL,
 * rolled up with the real rollup, then the metrics summary's reads for the
 * 90 days timed against a floor: one bare sum over the same stored rollup
 * rows. Both run as the application role in a tenant transaction, three
 * times each after a warm-up. Writes the `## Metrics summary` section of
 * docs/benchmarks.md.
 *
 * Usage: npx node bench/summary.ts
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { Rollup } from "../src/jobs/Rollup.ts"
import { enableAppRole } from "../src/services/AppRole.ts"
import { startEmbeddedPostgres } from "../src/services/EmbeddedPostgres.ts"
import { Metrics } from "../src/services/Metrics.ts"
import { runMigrations } from "../src/services/Migrations.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TenantDb } from "../src/services/TenantDb.ts"
import { machineFacts } from "./lib/processes.ts"
import { freePort } from "./lib/service.ts"

const DOCS_FILE = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
const SECTION_START = "<!-- bench:summary:start -->"
const SECTION_END = "<!-- bench:summary:end -->"
const FIRST_DAY = "2026-06-01"
const DAYS = 90
const VISITORS_PER_DAY = 5_000
/** Share of a day's visitors that also came on an earlier day. */
const RETURNING_SHARE = 0.3
const EVENTS_PER_VISITOR = 5
const MEASURED_RUNS = 3
const PEPPER = "bench-pepper-0123456789abcdefghijklmnopqrstuvwxyz"


const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0

const timed = async (run: () => Promise<unknown>) => {
  const started = performance.now()
  await run()
  return performance.now() - started
}

/** Inserts the 90 days as the owner, with set-based SQL. */
const loadData = (ownerUrl: Redacted.Redacted<URL>) =>
  withOwnerClient(ownerUrl, (client) =>
    Effect.gen(function*() {
      const q = (text: string, values?: ReadonlyArray<unknown>) => ownerQuery(client, text, values)
      const tenant = yield* q("INSERT INTO tenants (name) VALUES ('bench') RETURNING id")
      const tenantId = String(tenant.rows[0]?.["id"])
      const property = yield* q(
        "INSERT INTO properties (tenant_id, slug, name, domains, timezone) VALUES ($1, 'www', 'www', '{www.example.com}', 'America/Toronto') RETURNING id",
        [tenantId]
      )
      const propertyId = String(property.rows[0]?.["id"])
      const distinctVisitors = Math.round(VISITORS_PER_DAY * DAYS * (1 - RETURNING_SHARE))
      yield* q(`
        INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at)
        SELECT $1, $2, 'v' || g,
               ($3::date + (g % $4) * interval '1 day' + interval '14 hours') AT TIME ZONE 'America/Toronto',
               ($3::date + (g % $4) * interval '1 day' + interval '15 hours') AT TIME ZONE 'America/Toronto'
        FROM generate_series(1, $5) AS g`, [tenantId, propertyId, FIRST_DAY, DAYS, distinctVisitors])
      yield* q(`
        INSERT INTO sessions (tenant_id, property_id, visitor_id, started_at, last_event_at, landing_path,
                              exit_path, traffic_source, device_type, country_code, page_views, events,
                              is_conversion, referrer_domain, utm_term)
        SELECT $1, $2, v.id, t, t + interval '5 minutes', '/p/' || (d.n % 50), '/p/' || (d.n % 40),
               (ARRAY['direct','organic_search','social','referral','email','campaign'])[1 + d.n % 6]::traffic_source,
               (ARRAY['desktop','mobile','tablet'])[1 + d.n % 3]::device_type, 'CA', 3, $5, d.n % 20 = 0,
               'site' || (d.n % 30) || '.example', CASE WHEN d.n % 7 = 0 THEN 'term' || (d.n % 15) END
        FROM (SELECT row_number() OVER () AS n, id FROM visitors WHERE property_id = $2) AS d
        JOIN visitors v ON v.id = d.id
        CROSS JOIN LATERAL (SELECT v.first_seen_at + (k * interval '17 days') AS t
                            FROM generate_series(0, 1) AS k) AS s
        WHERE t < ($3::date + $4 * interval '1 day') AT TIME ZONE 'America/Toronto'`,
      [tenantId, propertyId, FIRST_DAY, DAYS, EVENTS_PER_VISITOR])
      yield* q(`
        INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp",
                            traffic_source, device_type, is_entrance, is_exit, props)
        SELECT s.tenant_id, s.property_id, s.visitor_id, s.id,
               CASE WHEN k = 4 THEN 'web_vitals' ELSE 'page_view' END, '/p/' || (k * 7 % 50),
               s.started_at + k * interval '1 minute', s.traffic_source, s.device_type, k = 0, k = 3,
               CASE WHEN k = 4 THEN jsonb_build_object('ttfbMs', 100 + (random() * 900)::int,
                                                       'lcpMs', 800 + (random() * 4000)::int)
                    ELSE '{}'::jsonb END
        FROM sessions s CROSS JOIN generate_series(0, $1 - 1) AS k`, [EVENTS_PER_VISITOR])
      yield* q("ANALYZE")
      const events = yield* q("SELECT count(*)::int AS n FROM events")
      return { tenantId, propertyId, events: Number(events.rows[0]?.["n"]) }
    }))

const main = async () => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-bench-summary-"))
  const scope = Effect.runSync(Scope.make())
  try {
    const cluster = await Effect.runPromise(startEmbeddedPostgres({
      dataDir,
      port: await freePort(),
      superuserPassword: Redacted.make("bench-superuser")
    }).pipe(Scope.provide(scope)))
    await Effect.runPromise(runMigrations(cluster.ownerUrl))
    const appUrl = await Effect.runPromise(enableAppRole(cluster.ownerUrl, Redacted.make(PEPPER)))
    const loadStarted = performance.now()
    const { tenantId, propertyId, events } = await Effect.runPromise(loadData(cluster.ownerUrl))
    console.log(`loaded ${events.toLocaleString("en-US")} events in ${Math.round(performance.now() - loadStarted)} ms`)

    const sqlLayer = PgClient.layer({ url: Redacted.make(Redacted.value(appUrl).href), connectTimeout: Duration.seconds(5) })
    const runtime = ManagedRuntime.make(
      Layer.mergeAll(Metrics.layer, Rollup.layer).pipe(Layer.provideMerge(TenantDb.layer), Layer.provideMerge(sqlLayer))
    )
    const lastDay = new Date(Date.parse(`${FIRST_DAY}T00:00:00Z`) + (DAYS - 1) * 86_400_000).toISOString().slice(0, 10)
    const rollupStarted = performance.now()
    await runtime.runPromise(Effect.gen(function*() {
      const rollup = yield* Rollup
      return yield* rollup.rollupRange(tenantId, propertyId, FIRST_DAY, lastDay)
    }))
    const rollupMs = performance.now() - rollupStarted
    const range = { from: FIRST_DAY, to: lastDay }

    const summary = () =>
      runtime.runPromise(Effect.gen(function*() {
        const metrics = yield* Metrics
        return yield* Effect.all([
          metrics.totals(tenantId, [propertyId], range),
          metrics.breakdown(tenantId, [propertyId], range, "source", { limit: 20, offset: 0 }),
          metrics.breakdown(tenantId, [propertyId], range, "keyword", { limit: 10, offset: 0 }),
          metrics.breakdown(tenantId, [propertyId], range, "referrer", { limit: 10, offset: 0 })
        ])
      }))
    const floor = () =>
      runtime.runPromise(Effect.gen(function*() {
        const sql = yield* SqlClient
        const tenants = yield* TenantDb
        return yield* tenants.withTenant(tenantId, sql`
          SELECT sum(visitors), sum(sessions), sum(page_views) FROM daily_metric_rollups
          WHERE property_id = ${propertyId} AND dimension = 'total' AND day BETWEEN ${FIRST_DAY}::date AND ${lastDay}::date`)
      }))

    await summary()
    await floor()
    const summaryTimes: Array<number> = []
    const floorTimes: Array<number> = []
    for (let run = 0; run < MEASURED_RUNS; run++) {
      summaryTimes.push(await timed(summary))
      floorTimes.push(await timed(floor))
    }
    await runtime.dispose()
    writeSection({ events, rollupMs, summaryTimes, floorTimes })
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    Fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

const writeSection = (figures: {
  readonly events: number
  readonly rollupMs: number
  readonly summaryTimes: ReadonlyArray<number>
  readonly floorTimes: ReadonlyArray<number>
}) => {
  const machine = machineFacts()
  const ms = (values: ReadonlyArray<number>) =>
    `${median(values).toFixed(1)} (${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)})`
  const section = `${SECTION_START}
## Metrics summary

Command: \`npx node bench/summary.ts\`

Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC. Machine: ${machine.cores} cores
(${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.kernel}, Node ${machine.nodeVersion}.

Data: one property in America/Toronto, ${DAYS} days, ${VISITORS_PER_DAY.toLocaleString("en-US")} visitors a day
(${RETURNING_SHARE * 100}% of them returning), ${figures.events.toLocaleString("en-US")} events (page views and
\`web_vitals\` with \`ttfbMs\`), rolled up with the real rollup in ${Math.round(figures.rollupMs).toLocaleString("en-US")} ms
(${(figures.rollupMs / DAYS).toFixed(0)} ms a day).

| read for ${DAYS} days (median of ${MEASURED_RUNS}, min–max) | ms |
| --- | --- |
| the summary's reads: totals (rollup sums, exact unique visitors from \`daily_visitors\`, p95 TTFB and capture median from raw rows) and three breakdowns | ${ms(figures.summaryTimes)} |
| floor: one bare sum over the same stored rollup rows | ${ms(figures.floorTimes)} |

The summary reads raw rows for the figures that cannot be summed from days
(distinct visitors, percentiles), so it scans ${DAYS} days of \`daily_visitors\` and of the
events that carry \`ttfbMs\`; that scan, not the rollup sums, is its cost.
${SECTION_END}`
  const current = Fs.existsSync(DOCS_FILE) ? Fs.readFileSync(DOCS_FILE, "utf8") : "# Benchmarks\n"
  const start = current.indexOf(SECTION_START)
  const end = current.indexOf(SECTION_END)
  const next = start !== -1 && end !== -1
    ? `${current.slice(0, start)}${section}${current.slice(end + SECTION_END.length)}`
    : `${current.trimEnd()}\n\n${section}\n`
  Fs.writeFileSync(DOCS_FILE, next)
  console.log(section)
}

await main()

/**
 * Rollup benchmark. It loads one property's 30 days of events, with the
 * visitors, sessions, leads and ingest rejections that go with them, into a
 * fresh embedded PostgreSQL in a temporary folder (bench/lib/rollupCorpus.ts).
 * Then it times three figures, as the application role in tenant
 * transactions:
 *
 * - the full run: `rollupRange` over the 30 days, from empty rollup tables.
 * - the floor: one bare `GROUP BY day, path` over the same events.
 * - the incremental run: `rollupDay` of the last day, as the scheduler
 *   reruns today, over the rows that the full run wrote.
 *
 * The default run loads 10,000,000 events, measures each figure three times,
 * alternating, and writes the `## Rollups` section of docs/benchmarks.md.
 * `--quick` loads 1,000,000 events, measures each figure once and leaves the
 * docs alone. `--json FILE` writes the ratios and figures to FILE.
 *
 * Usage: npx node bench/rollup.ts [--quick] [--json FILE]
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { type DayRollup, Rollup } from "../src/jobs/Rollup.ts"
import { enableAppRole } from "../src/services/AppRole.ts"
import { startEmbeddedPostgres } from "../src/services/EmbeddedPostgres.ts"
import { runMigrations } from "../src/services/Migrations.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TenantDb } from "../src/services/TenantDb.ts"
import { type CorpusCounts, type CorpusSize, loadCorpus } from "./lib/rollupCorpus.ts"
import { type CpuUse, CpuMeter, StatementLog } from "./lib/rollupMeasure.ts"
import { type Measurement, type Setup, report } from "./lib/rollupReport.ts"
import { freePort } from "./lib/service.ts"

const FIRST_DAY = "2026-02-20"
const TIMEZONE = "America/Toronto"
const FULL_SIZE: CorpusSize = {
  days: 30,
  events: 10_000_000,
  visitors: 600_000,
  leads: 40_000,
  rejections: 100_000,
  paths: 2_000
}
const QUICK_SIZE: CorpusSize = { ...FULL_SIZE, events: 1_000_000, visitors: 60_000, leads: 4_000, rejections: 10_000 }
/** Before each measured run, the benchmark waits until other processes use fewer cores than this. */
const QUIET_MAX_OTHER_CORES = 0.2
/** Maximum wait for a quiet machine; then the run starts anyway, and the figures show how busy the machine was. */
const QUIET_WAIT_MS = 20_000
/** PostgreSQL's log lines reach this process through a pipe, a little after the statements end. */
const LOG_SETTLE_MS = 300

interface Options {
  readonly quick: boolean
  readonly jsonFile: string | undefined
}

const USAGE = "usage: npx node bench/rollup.ts [--quick] [--json FILE]"

const parseOptions = (args: ReadonlyArray<string>): Options => {
  let quick = false
  let jsonFile: string | undefined
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]
    if (arg === "--quick") {
      quick = true
    } else if (arg === "--json" && args[index + 1] !== undefined) {
      jsonFile = args[++index]
    } else {
      throw new Error(`invalid argument ${JSON.stringify(arg)}. ${USAGE}`)
    }
  }
  return { quick, jsonFile }
}

/** Per mode: the corpus, the measured runs of each figure, and the time after which the run stops with an error. */
const modeOf = (options: Options) =>
  options.quick
    ? { size: QUICK_SIZE, runs: 1, quietWaitMs: 0, limitMs: 2 * 60_000 }
    : { size: FULL_SIZE, runs: 3, quietWaitMs: QUIET_WAIT_MS, limitMs: 15 * 60_000 }

type Mode = ReturnType<typeof modeOf>

const main = async () => {
  const began = performance.now()
  const options = parseOptions(process.argv.slice(2))
  const mode = modeOf(options)
  const watchdog = setTimeout(() => {
    console.error(`bench/rollup.ts: timed out after ${mode.limitMs / 60_000} minutes`)
    process.exit(1)
  }, mode.limitMs)
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
    const setup = await prepare(cluster.ownerUrl, mode.size, began)
    const measurement = await measure(setup, mode, new CpuMeter(cluster.pid), statements)
    report({
      setup,
      measurement,
      quick: options.quick,
      jsonFile: options.jsonFile,
      quietWaitMs: mode.quietWaitMs,
      elapsedSeconds: (performance.now() - began) / 1000
    })
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    Fs.rmSync(dataDir, { recursive: true, force: true })
    clearTimeout(watchdog)
  }
}

type OwnerQuery = (text: string) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, unknown>

const asOwner = <A>(url: URL, use: (query: OwnerQuery) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(withOwnerClient(Redacted.make(url), (client) =>
    use((text) => Effect.map(ownerQuery(client, text), (result) => result.rows))))

/** Creates the database, the tenant and the property, and loads the corpus as the owner. */
const prepare = async (clusterUrl: Redacted.Redacted<URL>, size: CorpusSize, began: number): Promise<Setup> => {
  const ownerUrl = new URL(Redacted.value(clusterUrl).href)
  await asOwner(ownerUrl, (query) => query("CREATE DATABASE porchlight_bench"))
  const databaseUrl = new URL(ownerUrl.href)
  databaseUrl.pathname = "/porchlight_bench"
  await Effect.runPromise(runMigrations(Redacted.make(databaseUrl)))
  const appUrl = await Effect.runPromise(
    enableAppRole(Redacted.make(databaseUrl), Redacted.make(randomBytes(24).toString("base64url")))
  )

  console.log(`loading ${size.events.toLocaleString("en-US")} events over ${size.days} days from ${FIRST_DAY}…`)
  const loadStarted = performance.now()
  const setup = await Effect.runPromise(withOwnerClient(Redacted.make(databaseUrl), (client) =>
    Effect.gen(function*() {
      const query = (text: string) => Effect.map(ownerQuery(client, text), (result) => result.rows)
      const tenant = yield* query("INSERT INTO tenants (name) VALUES ('bench') RETURNING id")
      const tenantId = String(tenant[0]?.["id"])
      const property = yield* query(
        `INSERT INTO properties (tenant_id, slug, name, timezone) VALUES ('${tenantId}', 'site', 'site', '${TIMEZONE}')
         RETURNING id, to_char(date '${FIRST_DAY}' + ${size.days - 1}, 'YYYY-MM-DD') AS last_day,
                   (date '${FIRST_DAY}'::timestamp AT TIME ZONE timezone)::text AS range_start,
                   ((date '${FIRST_DAY}' + ${size.days})::timestamp AT TIME ZONE timezone)::text AS range_end`
      )
      const row = property[0] ?? {}
      const propertyId = String(row["id"])
      const counts: CorpusCounts = yield* loadCorpus(client, { tenantId, propertyId, timezone: TIMEZONE, firstDay: FIRST_DAY }, size)
      const vacuumStarted = performance.now()
      yield* query("VACUUM ANALYZE")
      const vacuumSeconds = (performance.now() - vacuumStarted) / 1000
      const version = yield* query(
        "SELECT version() AS version, current_setting('shared_buffers') AS buffers, current_setting('work_mem') AS work_mem"
      )
      // Logs every statement of the application role with its duration, for the per-step figures.
      yield* query("ALTER ROLE porchlight_app SET log_min_duration_statement = 0")
      return {
        tenantId,
        propertyId,
        firstDay: FIRST_DAY,
        lastDay: String(row["last_day"]),
        timezone: TIMEZONE,
        rangeStart: String(row["range_start"]),
        rangeEnd: String(row["range_end"]),
        size,
        counts,
        loadPhaseSeconds: [...counts.phaseSeconds, ["`VACUUM ANALYZE`", vacuumSeconds] as const],
        postgresVersion: String(version[0]?.["version"]),
        settings: `\`shared_buffers\` ${String(version[0]?.["buffers"])}, \`work_mem\` ${String(version[0]?.["work_mem"])}`
      }
    })))
  const loadSeconds = (performance.now() - loadStarted) / 1000
  const phases = setup.loadPhaseSeconds.map(([phase, seconds]) => `${phase} ${seconds.toFixed(1)} s`).join(", ")
  console.log(`loaded in ${loadSeconds.toFixed(1)} s (${phases}; ${((performance.now() - began) / 1000).toFixed(0)} s since start)`)
  return { ...setup, databaseUrl, appUrl: new URL(Redacted.value(appUrl).href), loadSeconds }
}

interface Timed<A> {
  readonly value: A
  readonly ms: number
  readonly cpu: CpuUse
}

const measure = async (setup: Setup, mode: Mode, meter: CpuMeter, statements: StatementLog): Promise<Measurement> => {
  const sqlLayer = PgClient.layer({
    url: Redacted.make(setup.appUrl.href),
    maxConnections: 2,
    connectTimeout: Duration.seconds(10)
  })
  const runtime = ManagedRuntime.make(Rollup.layer.pipe(Layer.provideMerge(TenantDb.layer.pipe(Layer.provideMerge(sqlLayer)))))
  const settleLog = () => new Promise((resolve) => setTimeout(resolve, LOG_SETTLE_MS))
  try {
    const fullOnce = () =>
      runtime.runPromise(Effect.gen(function*() {
        const rollup = yield* Rollup
        return yield* rollup.rollupRange(setup.tenantId, setup.propertyId, setup.firstDay, setup.lastDay)
      }))
    const incrementalOnce = () =>
      runtime.runPromise(Effect.gen(function*() {
        const rollup = yield* Rollup
        return yield* rollup.rollupDay(setup.tenantId, setup.propertyId, setup.lastDay)
      }))
    const floorQuery = (sql: SqlClient, explain: boolean) =>
      sql`
        ${sql.unsafe(explain ? "EXPLAIN (FORMAT JSON)" : "")}
        SELECT ("timestamp" AT TIME ZONE ${setup.timezone})::date AS day, path, count(*)
        FROM events
        WHERE tenant_id = ${setup.tenantId} AND property_id = ${setup.propertyId}
          AND "timestamp" >= ${setup.rangeStart}::timestamptz AND "timestamp" < ${setup.rangeEnd}::timestamptz
        GROUP BY 1, 2`
    const asApp = <A>(run: (sql: SqlClient) => Effect.Effect<A, unknown>) =>
      runtime.runPromise(Effect.gen(function*() {
        const sql = yield* SqlClient
        const tenants = yield* TenantDb
        return yield* tenants.withTenant(setup.tenantId, run(sql))
      }))
    const floorOnce = () => asApp((sql) => floorQuery(sql, false))
    // Each full run starts from empty rollup tables, and no checkpoint of
    // the previous run's writes falls inside it.
    const emptyRollups = () =>
      asOwner(setup.databaseUrl, (query) =>
        Effect.gen(function*() {
          yield* query("TRUNCATE daily_metric_rollups, daily_ingest_rollups, daily_visitors")
          yield* query("CHECKPOINT")
        }))
    const timed = async <A>(figure: string | undefined, run: () => Promise<A>): Promise<Timed<A>> => {
      await meter.waitForQuiet(QUIET_MAX_OTHER_CORES, mode.quietWaitMs)
      await settleLog()
      if (figure !== undefined) statements.start(figure)
      const start = meter.sample()
      const began = performance.now()
      const value = await run()
      const ms = performance.now() - began
      const cpu = meter.since(start)
      await settleLog()
      statements.stop()
      return { value, ms, cpu }
    }

    const floorPlan = planShape(await asApp((sql) => floorQuery(sql, true)))
    // One untimed floor scan reads the events into the caches, so the first
    // measured run of either does not pay for the cold start alone.
    await floorOnce()
    const full: Array<Timed<number>> = []
    const floor: Array<Timed<ReadonlyArray<unknown>>> = []
    const incremental: Array<Timed<DayRollup>> = []
    for (let run = 1; run <= mode.runs; run++) {
      await emptyRollups()
      full.push(await timed("full", fullOnce))
      floor.push(await timed(undefined, floorOnce))
      incremental.push(await timed("incremental", incrementalOnce))
      const last = (values: ReadonlyArray<Timed<unknown>>) => values.at(-1)
      console.log(
        `run ${run}: full ${describe(last(full))}, floor ${describe(last(floor))}, incremental ${describe(last(incremental))}`
      )
    }

    const written = await asOwner(setup.databaseUrl, (query) =>
      query(`SELECT (SELECT count(*)::int FROM daily_metric_rollups) AS metric_rows,
                    (SELECT count(*)::int FROM daily_visitors) AS visitor_rows,
                    (SELECT count(*)::int FROM daily_ingest_rollups) AS ingest_rows`))
    const lastDay = incremental.at(-1)?.value
    if (lastDay === undefined) throw new Error("no measured run")
    return {
      full: full.map(({ ms, cpu }) => ({ ms, cpu })),
      floor: floor.map(({ ms, cpu }) => ({ ms, cpu })),
      incremental: incremental.map(({ ms, cpu }) => ({ ms, cpu })),
      daysRolledUp: full.at(-1)?.value ?? 0,
      floorGroups: floor.at(-1)?.value.length ?? 0,
      floorPlan,
      lastDay,
      fullSteps: statements.steps("full"),
      incrementalSteps: statements.steps("incremental"),
      metricRows: Number(written[0]?.["metric_rows"]),
      visitorRows: Number(written[0]?.["visitor_rows"]),
      ingestRows: Number(written[0]?.["ingest_rows"])
    }
  } finally {
    await runtime.dispose()
  }
}

interface PlanNode {
  readonly "Node Type"?: string
  readonly Strategy?: string
  readonly "Relation Name"?: string
  readonly "Parent Relationship"?: string
  readonly "Workers Planned"?: number
  readonly Plans?: ReadonlyArray<PlanNode>
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/**
 * Names the nodes of an `EXPLAIN (FORMAT JSON)` plan from the top down,
 * along each node's outer child, leaving out init plans and subplans.
 */
const planShape = (rows: ReadonlyArray<Record<string, unknown>>) => {
  const output = rows[0]?.["QUERY PLAN"]
  const first: unknown = Array.isArray(output) ? output[0] : undefined
  const plan: PlanNode | undefined = isRecord(first) && isRecord(first["Plan"]) ? first["Plan"] : undefined
  const names: Array<string> = []
  for (let node = plan; node !== undefined; node = node.Plans?.find((child) => child["Parent Relationship"] === "Outer")) {
    const strategy = node.Strategy === undefined ? "" : ` (${node.Strategy})`
    const relation = node["Relation Name"] === undefined ? "" : ` on ${node["Relation Name"]}`
    const workers = node["Workers Planned"] === undefined ? "" : `, ${node["Workers Planned"]} workers`
    names.push(`${node["Node Type"] ?? "unknown node"}${strategy}${relation}${workers}`)
  }
  return names.join(" → ")
}

const describe = (timed: Timed<unknown> | undefined) =>
  timed === undefined
    ? "none"
    : `${Math.round(timed.ms).toLocaleString("en-US")} ms (other processes ${timed.cpu.otherCores.toFixed(2)} cores)`

await main()

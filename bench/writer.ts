/**
 * Write-path benchmark: rows per second that the ingest writer brings to
 * PostgreSQL, against `COPY FROM STDIN` of the same rows into the same
 * tables and indexes.
 *
 * Both sides run on one embedded PostgreSQL 18 in a temporary folder. The
 * rows come from the ingest benchmark's traffic (bench/lib/corpus.ts). Each
 * body's events become enriched events (traffic source from the real
 * classifier, hashed address and user agent) and pass through the visitor
 * actors' pure step, `applyEvents`. So the writer gets what it gets in
 * production: for each beacon the visitor row, the session's whole state and
 * the event. This is built before the clock starts.
 *
 * - The writer: the real `EventWriter` layer over an `@effect/sql-pg` pool of
 *   the application role, as the service configures it. SUBMITTERS fibers
 *   each submit one beacon's rows and wait for the commit, then take the
 *   next beacon. The writer thus gets the load of SUBMITTERS connections
 *   that never wait for HTTP.
 * - The floor: one transaction of three `COPY ... FROM STDIN` (CSV) through
 *   `pg-copy-streams`, as the superuser: the run's visitors, the final state
 *   of each session, and the events. It writes each row once; the writer
 *   upserts a visitor and a session for every event and records each event's
 *   client id in `event_receipts`, and that difference is what the ratio
 *   measures.
 *
 * Runs alternate, writer then COPY, each on new visitors, so both write into
 * tables of the same size.
 *
 * Usage: npx node bench/writer.ts [--quick] [--json FILE]
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { performance } from "node:perf_hooks"
import { pipeline } from "node:stream/promises"
import { Readable } from "node:stream"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import { v7 as uuidv7 } from "uuid"
import { enableAppRole } from "../src/services/AppRole.ts"
import { startEmbeddedPostgres } from "../src/services/EmbeddedPostgres.ts"
import { runMigrations } from "../src/services/Migrations.ts"
import { classifyTrafficSource } from "../src/services/TrafficSource.ts"
import type { EnrichedEvent, EventRow, SessionRow, VisitorRow } from "../src/streams/IngestMessages.ts"
import { EventWriter, type WriteRequest } from "../src/streams/EventWriter.ts"
import { applyEvents, initialState, type VisitorState } from "../src/streams/VisitorSession.ts"
import { loadCorpus, VisitorStream } from "./lib/corpus.ts"
import { clockTicksPerSecond, machineBusyCpuSeconds, machineFacts, processTreeCpuSeconds } from "./lib/processes.ts"
import { writeSection } from "./lib/sections.ts"
import { freePort } from "./lib/service.ts"
import { formatNumber, summarize } from "./lib/stats.ts"

const TESTDATA_DIR = new URL("../../shared/testdata/", import.meta.url)
const DOCS_FILE = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url))
const SUBMITTERS = 256
const POOL_SIZE = 10
const VISITORS_PER_STREAM = 16
const RUN_LIMIT_MS = 10 * 60_000

interface Plan {
  readonly warmupEvents: number
  readonly runEvents: number
  readonly runs: number
}
const FULL_PLAN: Plan = { warmupEvents: 20_000, runEvents: 100_000, runs: 3 }
const QUICK_PLAN: Plan = { warmupEvents: 5_000, runEvents: 20_000, runs: 1 }

/** One run's rows: a write request per beacon, and the same rows for COPY. */
interface RunRows {
  readonly requests: ReadonlyArray<WriteRequest>
  readonly visitors: ReadonlyArray<VisitorRow & { readonly id: string }>
  readonly sessions: ReadonlyArray<SessionRow & { readonly visitorId: string }>
  readonly events: ReadonlyArray<EventRow & { readonly visitorId: string }>
}

interface Measured {
  readonly target: "writer" | "copy"
  readonly rows: number
  readonly seconds: number
  readonly rowsPerSecond: number
  readonly postgresCores: number
  readonly benchCores: number
  readonly otherCores: number
  readonly postgresMsPer1000: number
  readonly benchMsPer1000: number
}

const main = async () => {
  const { values } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "string" } }, strict: true })
  const quick = values.quick === true
  const plan = quick ? QUICK_PLAN : FULL_PLAN
  const began = performance.now()
  const watchdog = setTimeout(() => {
    console.error(`bench/writer.ts: the run exceeded ${RUN_LIMIT_MS / 60_000} minutes; stopping`)
    process.exit(1)
  }, RUN_LIMIT_MS)
  watchdog.unref()

  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "porchlight-bench-writer-"))
  const scope = Effect.runSync(Scope.make())
  try {
    const cluster = await Effect.runPromise(
      startEmbeddedPostgres({
        dataDir,
        port: await freePort(),
        superuserPassword: Redacted.make(randomBytes(18).toString("base64url"))
      }).pipe(Scope.provide(scope))
    )
    const ownerUrl = new URL(Redacted.value(cluster.ownerUrl).href)
    const admin = new pg.Client({ connectionString: ownerUrl.href })
    await admin.connect()
    await admin.query("CREATE DATABASE porchlight_bench")
    await admin.end()
    const databaseUrl = new URL(ownerUrl.href)
    databaseUrl.pathname = "/porchlight_bench"
    await Effect.runPromise(runMigrations(Redacted.make(databaseUrl)))
    const appUrl = await Effect.runPromise(
      enableAppRole(Redacted.make(databaseUrl), Redacted.make(randomBytes(24).toString("base64url")))
    )
    const owner = new pg.Client({ connectionString: databaseUrl.href })
    await owner.connect()
    const tenant = await owner.query<{ id: string }>("INSERT INTO tenants (name) VALUES ('bench') RETURNING id")
    const tenantId = tenant.rows[0]!.id
    const property = await owner.query<{ id: string }>(
      "INSERT INTO properties (tenant_id, slug, name, timezone) VALUES ($1, 'site', 'site', 'America/Toronto') RETURNING id",
      [tenantId]
    )
    const propertyId = property.rows[0]!.id
    const versions = await owner.query<{ version: string }>("SELECT version()")

    const runtime = ManagedRuntime.make(EventWriter.layer.pipe(Layer.provideMerge(PgClient.layer({
      url: Redacted.make(Redacted.value(appUrl).href),
      maxConnections: POOL_SIZE,
      connectTimeout: Duration.seconds(10),
      startupParameters: { plan_cache_mode: "force_custom_plan" }
    }))))
    const generator = new RowGenerator(tenantId, propertyId)
    const meter = new CpuMeter(cluster.pid)
    const results: Array<Measured> = []
    let hotUpdates: ReadonlyArray<{ table: string; updates: number; hot: number }> = []
    try {
      say(`warm-up: ${formatNumber(plan.warmupEvents)} events through the writer, then by COPY`)
      await runWriter(runtime, generator.next(plan.warmupEvents), meter)
      await runCopy(owner, generator.next(plan.warmupEvents), meter)
      for (let run = 1; run <= plan.runs; run++) {
        for (const target of ["writer", "copy"] as const) {
          const rows = generator.next(plan.runEvents)
          await settle(owner)
          const result = target === "writer" ? await runWriter(runtime, rows, meter) : await runCopy(owner, rows, meter)
          say(`run ${run} ${target}: ${formatNumber(result.rowsPerSecond)} rows/s (${formatNumber(result.rows)} in ${result.seconds.toFixed(2)} s), PostgreSQL ${result.postgresCores.toFixed(2)} cores, benchmark process ${result.benchCores.toFixed(2)}, other processes ${result.otherCores.toFixed(2)}`)
          results.push(result)
        }
      }
      const updates = await owner.query<{ relname: string; upd: string; hot: string }>(
        `SELECT relname, n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot FROM pg_stat_user_tables
         WHERE relname IN ('sessions', 'visitors', 'events', 'event_receipts') ORDER BY relname`
      )
      hotUpdates = updates.rows.map((row) => ({ table: row.relname, updates: Number(row.upd), hot: Number(row.hot) }))
      say(`updates (heap-only of all): ${hotUpdates.map((row) => `${row.table} ${formatNumber(row.hot)} of ${formatNumber(row.updates)}`).join(", ")}`)
      const stored = await owner.query<{ n: string }>("SELECT count(*) AS n FROM events")
      const expected = generator.generatedEvents
      if (Number(stored.rows[0]?.n) !== expected) {
        throw new Error(`events missing after the run: the events table contains ${stored.rows[0]?.n} rows, expected ${expected}`)
      }
    } finally {
      await runtime.dispose()
      await owner.end()
    }
    const writer = summarize(results.filter((result) => result.target === "writer").map((result) => result.rowsPerSecond))
    const copy = summarize(results.filter((result) => result.target === "copy").map((result) => result.rowsPerSecond))
    const ratio = writer.median / copy.median
    say(`writer ÷ COPY: ${ratio.toFixed(2)} (target at least 0.7)`)
    if (values.json !== undefined) {
      Fs.writeFileSync(values.json, `${JSON.stringify({
        name: "writer",
        ratios: { writer_vs_copy: { value: ratio, better: "higher" } },
        figures: { writerRowsPerSecond: writer.median, copyRowsPerSecond: copy.median }
      }, null, 2)}\n`)
    }
    if (!quick) {
      writeSection(DOCS_FILE, "writer", render(results, plan, versions.rows[0]?.version ?? "unknown", (performance.now() - began) / 1000, hotUpdates))
      say(`wrote the writer section of ${DOCS_FILE}`)
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    Fs.rmSync(dataDir, { recursive: true, force: true })
    clearTimeout(watchdog)
  }
}

const say = (line: string) => console.log(`[writer] ${line}`)

/** Waits for autovacuum and the checkpointer to leave the run alone as far as they will. */
const settle = async (owner: pg.Client) => {
  await owner.query("CHECKPOINT")
  await new Promise((resolve) => setTimeout(resolve, 500))
}

const runWriter = async (
  runtime: ManagedRuntime.ManagedRuntime<EventWriter, unknown>,
  rows: RunRows,
  meter: CpuMeter
): Promise<Measured> => {
  const before = meter.sample()
  const started = performance.now()
  await runtime.runPromise(Effect.gen(function*() {
    const writer = yield* EventWriter
    let next = 0
    const submitter = Effect.gen(function*() {
      while (next < rows.requests.length) {
        const request = rows.requests[next++]!
        yield* writer.submit(request)
      }
    })
    yield* Effect.all(Array.from({ length: SUBMITTERS }, () => submitter), { concurrency: "unbounded", discard: true })
  }))
  return meter.result("writer", rows.events.length, (performance.now() - started) / 1000, before)
}

const runCopy = async (owner: pg.Client, rows: RunRows, meter: CpuMeter): Promise<Measured> => {
  const before = meter.sample()
  const started = performance.now()
  await owner.query("BEGIN")
  await copyRows(owner, "visitors (id, tenant_id, property_id, anon_id, first_seen_at, last_seen_at, first_ip_hash, last_ip_hash, first_ua_hash, last_ua_hash)",
    rows.visitors.map((row) => [row.id, row.tenantId, row.propertyId, row.anonId, iso(row.seenAt), iso(row.seenAt),
      hex(row.ipHash), hex(row.ipHash), hex(row.uaHash), hex(row.uaHash)]))
  await copyRows(owner, "sessions (id, tenant_id, property_id, visitor_id, started_at, last_event_at, landing_path, exit_path, referrer, referrer_domain, search_term, utm_source, utm_medium, utm_campaign, utm_term, utm_content, traffic_source, device_type, country_code, page_views, events, is_conversion)",
    rows.sessions.map((row) => [row.id, row.tenantId, row.propertyId, row.visitorId, iso(row.startedAt), iso(row.lastEventAt),
      row.landingPath, row.exitPath, row.referrer, row.referrerDomain, row.searchTerm, row.utmSource, row.utmMedium,
      row.utmCampaign, row.utmTerm, row.utmContent, row.trafficSource, row.deviceType, row.countryCode,
      String(row.pageViews), String(row.events), String(row.isConversion)]))
  await copyRows(owner, `events (id, tenant_id, property_id, visitor_id, session_id, client_event_id, event_type, path, referrer, "timestamp", client_timestamp, clock_skew_ms, ip_hash, ua_hash, traffic_source, device_type, country_code, is_entrance, is_exit, is_conversion, props)`,
    rows.events.map((row) => [row.eventId, row.tenantId, row.propertyId, row.visitorId, row.sessionId, row.clientEventId,
      row.eventType, row.path, row.referrer, iso(row.receivedAt),
      row.clientTimestamp === null ? null : iso(row.clientTimestamp), row.clockSkewMs === null ? null : String(row.clockSkewMs),
      hex(row.ipHash), hex(row.uaHash), row.trafficSource, row.deviceType, row.countryCode, String(row.isEntrance),
      String(row.isExit), String(row.isConversion), JSON.stringify(row.props)]))
  await owner.query("COMMIT")
  return meter.result("copy", rows.events.length, (performance.now() - started) / 1000, before)
}

const copyRows = async (client: pg.Client, target: string, rows: ReadonlyArray<ReadonlyArray<string | null>>) => {
  const stream = client.query(copyFrom(`COPY ${target} FROM STDIN WITH (FORMAT csv)`))
  const CHUNK = 1_000
  async function* lines() {
    for (let index = 0; index < rows.length; index += CHUNK) {
      yield rows.slice(index, index + CHUNK).map((row) => `${row.map(csvField).join(",")}\n`).join("")
    }
  }
  await pipeline(Readable.from(lines()), stream)
}

/** A CSV field: null as an empty unquoted field, anything else quoted. */
const csvField = (value: string | null) => value === null ? "" : `"${value.replaceAll("\"", "\"\"")}"`

const iso = (millis: number) => new Date(millis).toISOString()
const hex = (digest: string) => digest === "" ? null : `\\x${digest}`

/**
 * Turns the ingest benchmark's traffic into the writer's requests: one
 * request per beacon, visitors interleaved as on a busy site, with the
 * visitor actor's real step deciding sessions and flags.
 */
class RowGenerator {
  private readonly tenantId: string
  private readonly propertyId: string
  private readonly corpus: ReturnType<typeof loadCorpus>
  private streams: Array<VisitorStream> = []
  private runs = 0
  private readonly states = new Map<string, VisitorState>()
  private readonly visitorIds = new Map<string, string>()
  private turn = 0
  private clock = Date.now()
  generatedEvents = 0

  constructor(tenantId: string, propertyId: string) {
    this.tenantId = tenantId
    this.propertyId = propertyId
    this.corpus = loadCorpus(TESTDATA_DIR)
  }

  next(events: number): RunRows {
    const requests: Array<WriteRequest> = []
    const visitors = new Map<string, VisitorRow & { id: string }>()
    const sessions = new Map<string, SessionRow & { visitorId: string }>()
    const rows: Array<EventRow & { visitorId: string }> = []
    // Each run takes new visitors, so that the COPY floor inserts only new rows.
    this.states.clear()
    this.runs++
    this.streams = Array.from({ length: SUBMITTERS }, (_, index) =>
      new VisitorStream(this.corpus, "pk_writerBench", this.runs * 10_000 + index, VISITORS_PER_STREAM))
    for (let count = 0; count < events; count++) {
      const stream = this.streams[this.turn]!
      this.turn = (this.turn + 1) % this.streams.length
      const planned = stream.nextRequest(1)
      const body = JSON.parse(planned.body) as { events: ReadonlyArray<Record<string, unknown>> }
      const raw = body.events[0]!
      this.clock += 1
      const event = enrich(raw, planned.userAgent, planned.clientIp, this.clock)
      const anonId = String(raw["anonId"])
      const key = { tenantId: this.tenantId, propertyId: this.propertyId, anonId }
      const step = applyEvents(this.states.get(anonId) ?? initialState(key, this.clock), { key, events: [event] }, uuidv7)
      this.states.set(anonId, step.state)
      requests.push({ tenantId: this.tenantId, writes: [step.writes], rejections: [] })
      let visitorId = this.visitorIds.get(anonId)
      if (visitorId === undefined) {
        visitorId = uuidv7()
        this.visitorIds.set(anonId, visitorId)
      }
      visitors.set(anonId, { ...step.writes.visitor, id: visitorId })
      for (const session of step.writes.sessions) sessions.set(session.id, { ...session, visitorId })
      for (const row of step.writes.events) rows.push({ ...row, visitorId })
      for (const id of step.writes.exitClearedEventIds) {
        const index = rows.findLastIndex((row) => row.eventId === id)
        if (index !== -1) rows[index] = { ...rows[index]!, isExit: false }
      }
    }
    this.generatedEvents += rows.length
    return { requests, visitors: [...visitors.values()], sessions: [...sessions.values()], events: rows }
  }
}

/** Builds what the ingest route makes of one tracker event, without its network lookups. */
const enrich = (raw: Record<string, unknown>, userAgent: string, clientIp: string, now: number): EnrichedEvent => {
  const rawPath = String(raw["path"])
  const referrer = typeof raw["referrer"] === "string" ? raw["referrer"] : null
  const utm = typeof raw["utm"] === "object" && raw["utm"] !== null ? raw["utm"] as Record<string, string> : {}
  const source = classifyTrafficSource({ referrer, pageUrl: rawPath, utm, ownDomains: ["www.example.com"] })
  const props = typeof raw["props"] === "object" && raw["props"] !== null
    ? raw["props"] as Record<string, string | number | boolean>
    : {}
  return {
    eventId: uuidv7(),
    clientEventId: String(raw["eventId"]),
    eventType: String(raw["eventType"]),
    path: rawPath.split("?")[0] ?? "/",
    referrer: referrer?.split("?")[0] ?? null,
    referrerDomain: source.referrerDomain,
    receivedAt: now,
    clientTimestamp: now,
    clockSkewMs: null,
    ipHash: createHash("sha256").update(clientIp).digest("hex"),
    uaHash: createHash("sha256").update(userAgent).digest("hex"),
    countryCode: "CA",
    deviceType: /Mobile|Android|iPhone/.test(userAgent) ? "mobile" : "desktop",
    trafficSource: source.trafficSource,
    sourceName: source.sourceName,
    searchTerm: source.searchTerm,
    utmSource: utm["source"] ?? null,
    utmMedium: utm["medium"] ?? null,
    utmCampaign: utm["campaign"] ?? null,
    utmTerm: null,
    utmContent: null,
    props
  }
}

interface CpuSample {
  readonly at: number
  readonly postgres: number
  readonly bench: number
  readonly machine: number
}

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
      postgres: processTreeCpuSeconds(this.postgresPid, this.ticks),
      bench: (usage.user + usage.system) / 1e6,
      machine: machineBusyCpuSeconds(this.ticks)
    }
  }

  result(target: Measured["target"], rows: number, seconds: number, before: CpuSample): Measured {
    const after = this.sample()
    const wall = (after.at - before.at) / 1000
    const postgres = after.postgres - before.postgres
    const bench = after.bench - before.bench
    const machine = after.machine - before.machine
    return {
      target,
      rows,
      seconds,
      rowsPerSecond: rows / seconds,
      postgresCores: postgres / wall,
      benchCores: bench / wall,
      otherCores: (machine - postgres - bench) / wall,
      postgresMsPer1000: (postgres * 1000 * 1000) / rows,
      benchMsPer1000: (bench * 1000 * 1000) / rows
    }
  }
}

const render = (
  results: ReadonlyArray<Measured>,
  plan: Plan,
  postgresVersion: string,
  wallSeconds: number,
  hotUpdates: ReadonlyArray<{ table: string; updates: number; hot: number }>
): string => {
  const machine = machineFacts()
  const of = (target: Measured["target"]) => results.filter((result) => result.target === target)
  const cell = (target: Measured["target"], figure: (result: Measured) => number, digits = 0) => {
    const summary = summarize(of(target).map(figure))
    return `${formatNumber(summary.median, digits)} (${formatNumber(summary.min, digits)}–${formatNumber(summary.max, digits)})`
  }
  const ratio = summarize(of("writer").map((result) => result.rowsPerSecond)).median /
    summarize(of("copy").map((result) => result.rowsPerSecond)).median
  const rows: ReadonlyArray<[string, (result: Measured) => number, number]> = [
    ["events written/s", (result) => result.rowsPerSecond, 0],
    ["seconds per run", (result) => result.seconds, 2],
    ["PostgreSQL CPU, cores", (result) => result.postgresCores, 2],
    ["PostgreSQL CPU per 1,000 events, ms", (result) => result.postgresMsPer1000, 1],
    ["benchmark process CPU, cores", (result) => result.benchCores, 2],
    ["benchmark process CPU per 1,000 events, ms", (result) => result.benchMsPer1000, 1],
    ["other processes, cores", (result) => result.otherCores, 2]
  ]
  return `## Write path: the ingest writer against COPY

Command: \`npx node bench/writer.ts\`

Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; the whole run took ${wallSeconds.toFixed(0)} s.

Machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryGiB.toFixed(1)} GiB, ${machine.kernel}, Node ${process.version}. ${postgresVersion}, embedded, default settings.

### What runs

- The rows: the ingest benchmark's traffic, one event per beacon, each made into an enriched event and passed through the visitor actors' step, as the service does. ${formatNumber(plan.runEvents)} events a run, on new visitors each run.
- The writer: the real \`EventWriter\` over a pool of ${POOL_SIZE} connections of the application role. ${SUBMITTERS} submitters each submit one beacon's rows (the visitor, the session's whole state, the event) and wait for the commit before the next.
- The floor: \`COPY ... FROM STDIN\` (CSV) of the same run's visitors, sessions and events into the same tables and indexes, in one transaction, as the superuser. It writes each row once; the writer upserts a visitor and a session for each event and records each client event id in \`event_receipts\`.
- A warm-up of ${formatNumber(plan.warmupEvents)} events each, then ${plan.runs} runs each, alternating, with a \`CHECKPOINT\` before each run.

### Results

| figure (median, min–max) | writer | COPY |
| --- | --- | --- |
${rows.map(([title, figure, digits]) => `| ${title} | ${cell("writer", figure, digits)} | ${cell("copy", figure, digits)} |`).join("\n")}
| writer ÷ COPY, events/s | ${ratio.toFixed(2)} | |

Target: at least 0.7.

Row updates over the whole run, from \`pg_stat_user_tables\`; a heap-only (HOT) update writes no index entry:

| table | updates | of which heap-only |
| --- | --- | --- |
${hotUpdates.map((row) => `| \`${row.table}\` | ${formatNumber(row.updates)} | ${formatNumber(row.hot)} |`).join("\n")}
`
}

await main()

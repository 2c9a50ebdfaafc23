/**
 * Daily rollups against a real PostgreSQL: raw rows are written as the
 * owner, the rollup runs as the application role through `TenantDb`, and the
 * rows it writes are read back as the owner.
 */
import { Effect, Layer, Logger, ManagedRuntime, References } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type InvariantFigures,
  invariantViolations,
  Rollup,
  RollupInvariantViolated,
  type RollupShape
} from "../src/jobs/Rollup.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TenantDb } from "../src/services/TenantDb.ts"
import { type AppDatabase, appSqlLayer, createAppDatabase } from "./support/appDatabase.ts"

interface LogEntry {
  readonly message: unknown
  readonly annotations: Readonly<Record<string, unknown>>
}

const makeRuntime = (database: AppDatabase, logs: Array<LogEntry>) => {
  const capture = Logger.make<unknown, void>(({ fiber, message }) => {
    logs.push({ message, annotations: { ...fiber.getRef(References.CurrentLogAnnotations) } })
  })
  return ManagedRuntime.make(
    Rollup.layer.pipe(Layer.provideMerge(appSqlLayer(database, 4)), Layer.provideMerge(Logger.layer([capture])))
  )
}

type Runtime = ReturnType<typeof makeRuntime>

let database: AppDatabase
let runtime: Runtime
const logs: Array<LogEntry> = []

beforeAll(async () => {
  database = await createAppDatabase()
  runtime = makeRuntime(database, logs)
})

afterAll(async () => {
  await runtime?.dispose()
})

const query = (db: AppDatabase, text: string, values?: ReadonlyArray<unknown>) =>
  Effect.runPromise(withOwnerClient(db.url, (client) =>
    Effect.map(ownerQuery(client, text, values), (result) => result.rows)))

const owner = (text: string, values?: ReadonlyArray<unknown>) => query(database, text, values)

const firstId = (rows: ReadonlyArray<Record<string, unknown>>) => String(rows[0]?.["id"])

const createTenant = async (db: AppDatabase, name: string) =>
  firstId(await query(db, "INSERT INTO tenants (name) VALUES ($1) RETURNING id", [name]))

const createProperty = async (db: AppDatabase, tenantId: string, slug: string, timezone: string) =>
  firstId(await query(
    db,
    "INSERT INTO properties (tenant_id, slug, name, timezone) VALUES ($1, $2, $2, $3) RETURNING id",
    [tenantId, slug, timezone]
  ))

interface Site {
  readonly tenantId: string
  readonly propertyId: string
}

const createSite = async (label: string, timezone: string): Promise<Site> => {
  const tenantId = await createTenant(database, label)
  return { tenantId, propertyId: await createProperty(database, tenantId, "site", timezone) }
}

const insertVisitor = async (site: Site, firstSeenAt: string) =>
  firstId(await owner(
    `INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at)
     VALUES ($1, $2, $3, $4, $4) RETURNING id`,
    [site.tenantId, site.propertyId, `anon-${randomUUID()}`, firstSeenAt]
  ))

interface SessionFields {
  readonly startedAt: string
  readonly trafficSource?: string
  readonly referrerDomain?: string | null
  readonly utmTerm?: string | null
  readonly deviceType?: string
  readonly countryCode?: string | null
  readonly pageViews: number
  readonly isConversion?: boolean
}

const insertSession = async (site: Site, visitorId: string, fields: SessionFields) =>
  firstId(await owner(
    `INSERT INTO sessions (tenant_id, property_id, visitor_id, started_at, last_event_at, traffic_source,
                           referrer_domain, utm_term, device_type, country_code, page_views, is_conversion)
     VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
    [
      site.tenantId,
      site.propertyId,
      visitorId,
      fields.startedAt,
      fields.trafficSource ?? "direct",
      fields.referrerDomain ?? null,
      fields.utmTerm ?? null,
      fields.deviceType ?? "desktop",
      fields.countryCode ?? null,
      fields.pageViews,
      fields.isConversion ?? false
    ]
  ))

interface EventFields {
  readonly type: string
  readonly path: string
  readonly at: string
  readonly deviceType?: string
  readonly isEntrance?: boolean
  readonly props?: Record<string, unknown>
}

const insertEvent = (site: Site, visitorId: string, sessionId: string, fields: EventFields) =>
  owner(
    `INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp",
                         device_type, is_entrance, is_conversion, props)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $5 = 'form_submit', $10)`,
    [
      site.tenantId,
      site.propertyId,
      visitorId,
      sessionId,
      fields.type,
      fields.path,
      fields.at,
      fields.deviceType ?? "desktop",
      fields.isEntrance ?? false,
      JSON.stringify(fields.props ?? {})
    ]
  )

const insertLead = async (site: Site, email: string, firstCapturedAt: string, propertyId = site.propertyId) =>
  firstId(await owner(
    `INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, first_captured_at, last_captured_at)
     VALUES ($1, $2, $3, $3, $4, $4) RETURNING id`,
    [site.tenantId, propertyId, email, firstCapturedAt]
  ))

const linkLead = (site: Site, leadId: string, visitorId: string, linkSource: string, createdAt: string) =>
  owner(
    `INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [site.tenantId, leadId, visitorId, linkSource, linkSource === "form_submit" ? 1 : 0.5, createdAt]
  )

const insertRejection = (site: Site, reason: string, receivedAt: string) =>
  owner(
    "INSERT INTO ingest_rejections (tenant_id, property_id, received_at, reason) VALUES ($1, $2, $3, $4)",
    [site.tenantId, site.propertyId, receivedAt, reason]
  )

const withRollup = <A, E>(use: (service: RollupShape) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const service = yield* Rollup
    return yield* use(service)
  })

const rollup = <A, E>(use: (service: RollupShape) => Effect.Effect<A, E>) => runtime.runPromise(withRollup(use))

/** Runs `use` and returns its failure, or fails the test when it succeeds. */
const rollupFailure = <A, E>(use: (service: RollupShape) => Effect.Effect<A, E>) =>
  runtime.runPromise(Effect.flip(withRollup(use)))

const METRIC_COLUMNS = `
  dimension, dimension_value, visitors::int, returning_visitors::int, sessions::int, page_views::int,
  entrances::int, converting_entrances::int, conversions::int, form_starts::int, form_submits::int,
  new_leads::int, bot_events::int, events::int, ttfb_p95_ms, time_to_first_capture_median_s, metrics`

interface MetricRow {
  readonly dimension: string
  readonly dimension_value: string
  readonly visitors: number
  readonly returning_visitors: number
  readonly sessions: number
  readonly page_views: number
  readonly entrances: number
  readonly converting_entrances: number
  readonly conversions: number
  readonly form_starts: number
  readonly form_submits: number
  readonly new_leads: number
  readonly bot_events: number
  readonly events: number
  readonly ttfb_p95_ms: number | null
  readonly time_to_first_capture_median_s: number | null
  readonly metrics: Record<string, unknown>
}

const ZERO_ROW: Omit<MetricRow, "dimension" | "dimension_value"> = {
  visitors: 0,
  returning_visitors: 0,
  sessions: 0,
  page_views: 0,
  entrances: 0,
  converting_entrances: 0,
  conversions: 0,
  form_starts: 0,
  form_submits: 0,
  new_leads: 0,
  bot_events: 0,
  events: 0,
  ttfb_p95_ms: null,
  time_to_first_capture_median_s: null,
  metrics: {}
}

/** A breakdown row: every column not given is zero, null or `{}`. */
const breakdown = (dimension: string, value: string, columns: Partial<MetricRow>): MetricRow => ({
  ...ZERO_ROW,
  dimension,
  dimension_value: value,
  ...columns
})

const metricRows = (site: Site, day: string, db = database) =>
  query(
    db,
    `SELECT ${METRIC_COLUMNS} FROM daily_metric_rollups
     WHERE tenant_id = $1 AND property_id = $2 AND day = $3 ORDER BY dimension, dimension_value`,
    [site.tenantId, site.propertyId, day]
  )

const rowsOf = async (site: Site, day: string, dimension: string) =>
  (await metricRows(site, day)).filter((row) => row["dimension"] === dimension)

const totalRow = async (site: Site, day: string) => (await rowsOf(site, day, "total"))[0]

const ingestRow = async (site: Site, day: string) =>
  (await owner(
    `SELECT accepted::int, rejected::int, rejected_by_reason FROM daily_ingest_rollups
     WHERE tenant_id = $1 AND property_id = $2 AND day = $3`,
    [site.tenantId, site.propertyId, day]
  ))[0]

const dailyVisitors = (site: Site, day: string) =>
  owner(
    `SELECT visitor_id, "returning" FROM daily_visitors
     WHERE tenant_id = $1 AND property_id = $2 AND day = $3 ORDER BY visitor_id`,
    [site.tenantId, site.propertyId, day]
  )

/** Every rollup row of a day, `rolled_up_at` included, to tell a rewrite from a rollback. */
const snapshot = async (site: Site, day: string) => ({
  metrics: await owner(
    "SELECT * FROM daily_metric_rollups WHERE tenant_id = $1 AND property_id = $2 AND day = $3 ORDER BY dimension, dimension_value",
    [site.tenantId, site.propertyId, day]
  ),
  ingest: await owner(
    "SELECT * FROM daily_ingest_rollups WHERE tenant_id = $1 AND property_id = $2 AND day = $3",
    [site.tenantId, site.propertyId, day]
  ),
  visitors: await dailyVisitors(site, day)
})

describe("rollup of a hand-computed day", () => {
  // 2026-06-10 in America/Toronto (UTC-4 in summer): 04:00Z to 04:00Z the next day.
  const DAY = "2026-06-10"
  let site: Site
  let visitorIds: Record<string, string>

  beforeAll(async () => {
    site = await createSite("fixture", "America/Toronto")
    const otherProperty = await createProperty(database, site.tenantId, "other", "America/Toronto")
    const at = (time: string, date = DAY) => `${date} ${time}-04`

    // v1 returns (first seen nine days before): an organic search session that
    // does not convert, and a later internal session.
    const v1 = await insertVisitor(site, "2026-06-01 12:00:00-04")
    const s1 = await insertSession(site, v1, {
      startedAt: at("09:00:00"),
      trafficSource: "organic_search",
      referrerDomain: "google.com",
      countryCode: "CA",
      pageViews: 2
    })
    await insertEvent(site, v1, s1, { type: "page_view", path: "/", at: at("09:00:00"), isEntrance: true, props: { ttfbMs: 100 } })
    await insertEvent(site, v1, s1, { type: "page_view", path: "/pricing", at: at("09:05:00"), props: { ttfbMs: 200 } })
    await insertEvent(site, v1, s1, { type: "scroll", path: "/pricing", at: at("09:06:00"), props: { ttfbMs: "n/a" } })
    const s1b = await insertSession(site, v1, {
      startedAt: at("15:00:00"),
      trafficSource: "internal",
      referrerDomain: "acme.example",
      countryCode: "CA",
      pageViews: 1
    })
    await insertEvent(site, v1, s1b, { type: "page_view", path: "/contact", at: at("15:00:00"), isEntrance: true })

    // v2 is new: a referral session whose entrance converts through a form.
    const v2 = await insertVisitor(site, at("10:00:00"))
    const s2 = await insertSession(site, v2, {
      startedAt: at("10:00:00"),
      trafficSource: "referral",
      referrerDomain: "blog.example.org",
      deviceType: "mobile",
      countryCode: "US",
      pageViews: 1,
      isConversion: true
    })
    await insertEvent(site, v2, s2, { type: "page_view", path: "/pricing", at: at("10:00:00"), deviceType: "mobile", isEntrance: true, props: { ttfbMs: 300 } })
    await insertEvent(site, v2, s2, { type: "form_start", path: "/pricing", at: at("10:01:00"), deviceType: "mobile" })
    await insertEvent(site, v2, s2, { type: "form_submit", path: "/pricing", at: at("10:02:00"), deviceType: "mobile" })

    // v3 is new: a paid search session with a utm_term keyword that converts,
    // and a later session without any page view.
    const v3 = await insertVisitor(site, at("11:00:00"))
    const s3 = await insertSession(site, v3, {
      startedAt: at("11:00:00"),
      trafficSource: "paid_search",
      referrerDomain: "google.com",
      utmTerm: "lead capture",
      pageViews: 1,
      isConversion: true
    })
    await insertEvent(site, v3, s3, { type: "page_view", path: "/", at: at("11:00:00"), isEntrance: true, props: { ttfbMs: 400 } })
    await insertEvent(site, v3, s3, { type: "form_start", path: "/", at: at("11:01:00") })
    await insertEvent(site, v3, s3, { type: "form_submit", path: "/", at: at("11:03:00") })
    const s3b = await insertSession(site, v3, { startedAt: at("20:00:00"), utmTerm: "", pageViews: 0 })
    await insertEvent(site, v3, s3b, { type: "heartbeat", path: "/", at: at("20:00:00") })

    // v4 is a bot: its events count only as events and bot events.
    const v4 = await insertVisitor(site, at("12:00:00"))
    const s4 = await insertSession(site, v4, { startedAt: at("12:00:00"), deviceType: "bot", pageViews: 2 })
    await insertEvent(site, v4, s4, { type: "page_view", path: "/", at: at("12:00:00"), deviceType: "bot", isEntrance: true })
    await insertEvent(site, v4, s4, { type: "page_view", path: "/pricing", at: at("12:01:00"), deviceType: "bot", props: { ttfbMs: 9999 } })

    // v5 returns from the evening before. Its session started the day before,
    // and only its page view at local midnight falls on the day.
    const v5 = await insertVisitor(site, at("23:50:00", "2026-06-09"))
    const s5 = await insertSession(site, v5, { startedAt: at("23:50:00", "2026-06-09"), pageViews: 2 })
    await insertEvent(site, v5, s5, { type: "page_view", path: "/", at: at("23:50:00", "2026-06-09"), isEntrance: true })
    await insertEvent(site, v5, s5, { type: "page_view", path: "/about", at: at("00:00:00") })

    // v6 is new in the day's last second, and its next page view is on the next day.
    const v6 = await insertVisitor(site, at("23:59:59"))
    const s6 = await insertSession(site, v6, { startedAt: at("23:59:59"), deviceType: "tablet", countryCode: "CA", pageViews: 2 })
    await insertEvent(site, v6, s6, { type: "page_view", path: "/", at: at("23:59:59"), deviceType: "tablet", isEntrance: true, props: { ttfbMs: 500 } })
    await insertEvent(site, v6, s6, { type: "page_view", path: "/", at: at("00:00:00", "2026-06-11"), deviceType: "tablet" })

    // Another property of the tenant, the same day: none of it may count.
    const otherSite = { tenantId: site.tenantId, propertyId: otherProperty }
    const v7 = await insertVisitor(otherSite, at("09:00:00"))
    const s7 = await insertSession(otherSite, v7, { startedAt: at("09:00:00"), pageViews: 1 })
    await insertEvent(otherSite, v7, s7, { type: "page_view", path: "/", at: at("09:00:00"), isEntrance: true })
    await insertRejection(otherSite, "invalid_event", at("09:00:00"))

    // Leads: two new ones with form_submit identities (120 s and 180 s after
    // their visitors were first seen), one new without any, one captured the
    // day before and one of the other property.
    const lead1 = await insertLead(site, "one@example.com", at("10:02:00"))
    await linkLead(site, lead1, v2, "form_submit", at("10:02:00"))
    // A later capture from v1 links a second form_submit visitor, first seen
    // nine days earlier, and the first capture's visitor stays the one measured.
    await linkLead(site, lead1, v1, "form_submit", at("18:00:00"))
    const lead2 = await insertLead(site, "two@example.com", at("11:03:00"))
    await linkLead(site, lead2, v3, "form_submit", at("11:03:00"))
    const lead3 = await insertLead(site, "three@example.com", at("16:00:00"))
    await linkLead(site, lead3, v1, "same_ip_ua_window", at("16:00:00"))
    const lead4 = await insertLead(site, "four@example.com", at("16:00:00", "2026-06-09"))
    await linkLead(site, lead4, v1, "form_submit", at("16:00:00", "2026-06-09"))
    await insertLead(site, "five@example.com", at("12:00:00"), otherProperty)

    await insertRejection(site, "invalid_event", at("08:00:00"))
    await insertRejection(site, "invalid_event", at("23:59:59"))
    await insertRejection(site, "not_an_object", at("00:00:00"))
    await insertRejection(site, "invalid_event", at("00:00:00", "2026-06-11"))

    visitorIds = { v1, v2, v3, v5, v6 }
  })

  it("writes every column of the total row", async () => {
    const result = await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))

    expect(result.figures.dayHours).toBe(24)
    expect(await totalRow(site, DAY)).toEqual({
      dimension: "total",
      dimension_value: "",
      visitors: 5,
      returning_visitors: 2,
      sessions: 5,
      page_views: 7,
      entrances: 5,
      converting_entrances: 2,
      conversions: 2,
      form_starts: 2,
      form_submits: 2,
      new_leads: 3,
      bot_events: 2,
      events: 15,
      // ttfbMs 100, 200, 300, 400, 500: rank 0.95 × 4 = 3.8, so 400 + 0.8 × 100.
      ttfb_p95_ms: 480,
      // Median of 120 s and 180 s.
      time_to_first_capture_median_s: 150,
      metrics: { referral_sessions: 1, referral_conversions: 1 }
    })
  })

  it("writes the path rows", async () => {
    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))

    expect(await rowsOf(site, DAY, "path")).toEqual([
      breakdown("path", "/", { page_views: 3, entrances: 3, converting_entrances: 1, visitors: 3 }),
      breakdown("path", "/about", { page_views: 1, visitors: 1 }),
      breakdown("path", "/contact", { page_views: 1, entrances: 1, visitors: 1 }),
      breakdown("path", "/pricing", { page_views: 2, entrances: 1, converting_entrances: 1, visitors: 2 })
    ])
  })

  it("writes the source and referrer rows", async () => {
    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))

    expect(await rowsOf(site, DAY, "source")).toEqual([
      breakdown("source", "direct", { sessions: 1, visitors: 1 }),
      breakdown("source", "internal", { sessions: 1, visitors: 1 }),
      breakdown("source", "organic_search", { sessions: 1, visitors: 1 }),
      breakdown("source", "paid_search", { sessions: 1, conversions: 1, visitors: 1 }),
      breakdown("source", "referral", { sessions: 1, conversions: 1, visitors: 1 })
    ])
    expect(await rowsOf(site, DAY, "referrer")).toEqual([
      breakdown("referrer", "blog.example.org", { sessions: 1, conversions: 1, visitors: 1 }),
      breakdown("referrer", "google.com", { sessions: 2, conversions: 1, visitors: 2 })
    ])
  })

  it("writes the keyword, country and device rows", async () => {
    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))

    expect(await rowsOf(site, DAY, "keyword")).toEqual([
      breakdown("keyword", "lead capture", { sessions: 1, conversions: 1 })
    ])
    expect(await rowsOf(site, DAY, "country")).toEqual([
      breakdown("country", "", { sessions: 1, visitors: 1 }),
      breakdown("country", "CA", { sessions: 3, visitors: 2 }),
      breakdown("country", "US", { sessions: 1, visitors: 1 })
    ])
    expect(await rowsOf(site, DAY, "device")).toEqual([
      breakdown("device", "desktop", { sessions: 3, visitors: 2 }),
      breakdown("device", "mobile", { sessions: 1, visitors: 1 }),
      breakdown("device", "tablet", { sessions: 1, visitors: 1 })
    ])
  })

  it("writes the ingest row and the day's visitors", async () => {
    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))

    expect(await ingestRow(site, DAY)).toEqual({
      accepted: 15,
      rejected: 3,
      rejected_by_reason: { invalid_event: 2, not_an_object: 1 }
    })
    const expected = Object.entries(visitorIds)
      .map(([label, id]) => ({ visitor_id: id, returning: label === "v1" || label === "v5" }))
      .sort((a, b) => a.visitor_id.localeCompare(b.visitor_id))
    expect(await dailyVisitors(site, DAY)).toEqual(expected)
  })

  it("writes identical rows when run again", async () => {
    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))
    const first = await snapshot(site, DAY)

    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))
    const second = await snapshot(site, DAY)

    const withoutTime = (rows: ReadonlyArray<Record<string, unknown>>) =>
      rows.map(({ rolled_up_at: _rolledUpAt, ...rest }) => rest)
    expect(first.metrics.length).toBeGreaterThan(10)
    expect(withoutTime(second.metrics)).toEqual(withoutTime(first.metrics))
    expect(withoutTime(second.ingest)).toEqual(withoutTime(first.ingest))
    expect(second.visitors).toEqual(first.visitors)
  })

  it("succeeds when three rollups of the day run at once", async () => {
    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))
    const alone = await metricRows(site, DAY)

    const results = await Promise.all([1, 2, 3].map(() =>
      rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))))

    expect(results.map((result) => result.figures.totalRows)).toEqual([1, 1, 1])
    expect(await metricRows(site, DAY)).toEqual(alone)
  })

  it("writes no rows for other properties", async () => {
    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, DAY))

    const otherTotals = await owner(
      `SELECT count(*)::int AS n FROM daily_metric_rollups
       WHERE tenant_id = $1 AND property_id <> $2 AND day = $3`,
      [site.tenantId, site.propertyId, DAY]
    )
    expect(otherTotals[0]?.["n"]).toBe(0)
  })
})

describe("rollup of an empty day", () => {
  it("writes zeros, nulls and no breakdown rows", async () => {
    const site = await createSite("empty", "Europe/Paris")

    const result = await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, "2026-02-14"))

    expect(result.figures.totalRows).toBe(1)
    expect(await metricRows(site, "2026-02-14")).toEqual([
      breakdown("total", "", { metrics: { referral_sessions: 0, referral_conversions: 0 } })
    ])
    expect(await ingestRow(site, "2026-02-14")).toEqual({ accepted: 0, rejected: 0, rejected_by_reason: {} })
    expect(await dailyVisitors(site, "2026-02-14")).toEqual([])
  })
})

describe("rollup across daylight saving changes in America/Toronto", () => {
  let site: Site

  /** Inserts a visitor, its session and its entrance page view at `instant`. */
  const visitAt = async (instant: string) => {
    const visitorId = await insertVisitor(site, instant)
    const sessionId = await insertSession(site, visitorId, { startedAt: instant, pageViews: 1 })
    await insertEvent(site, visitorId, sessionId, { type: "page_view", path: "/", at: instant, isEntrance: true })
  }

  const rollupDays = (days: ReadonlyArray<string>) =>
    Promise.all(days.map((day) => rollup((service) => service.rollupDay(site.tenantId, site.propertyId, day))))

  const eventsOn = async (day: string) => ({
    events: (await totalRow(site, day))?.["events"],
    sessions: (await totalRow(site, day))?.["sessions"]
  })

  beforeAll(async () => {
    site = await createSite("dst", "America/Toronto")
    // 2026-03-08 begins at 05:00Z (EST) and ends at 04:00Z on 03-09 (EDT).
    for (const instant of ["2026-03-08T04:59:59Z", "2026-03-08T05:00:00Z", "2026-03-09T03:59:59Z", "2026-03-09T04:00:00Z"]) {
      await visitAt(instant)
    }
    // 2026-11-01 begins at 04:00Z (EDT) and ends at 05:00Z on 11-02 (EST);
    // 05:30Z and 06:30Z are both 01:30 local, in the repeated hour.
    for (const instant of [
      "2026-11-01T03:59:59Z",
      "2026-11-01T04:00:00Z",
      "2026-11-01T05:30:00Z",
      "2026-11-01T06:30:00Z",
      "2026-11-02T04:59:59Z",
      "2026-11-02T05:00:00Z"
    ]) {
      await visitAt(instant)
    }
  })

  it("gives 2026-03-08 23 hours and its edge events", async () => {
    const results = await rollupDays(["2026-03-07", "2026-03-08", "2026-03-09"])

    expect(results.map((result) => result.figures.dayHours)).toEqual([24, 23, 24])
    expect(await eventsOn("2026-03-07")).toEqual({ events: 1, sessions: 1 })
    expect(await eventsOn("2026-03-08")).toEqual({ events: 2, sessions: 2 })
    expect(await eventsOn("2026-03-09")).toEqual({ events: 1, sessions: 1 })
  })

  it("gives 2026-11-01 25 hours and its edge events", async () => {
    const results = await rollupDays(["2026-10-31", "2026-11-01", "2026-11-02"])

    expect(results.map((result) => result.figures.dayHours)).toEqual([24, 25, 24])
    expect(await eventsOn("2026-10-31")).toEqual({ events: 1, sessions: 1 })
    expect(await eventsOn("2026-11-01")).toEqual({ events: 4, sessions: 4 })
    expect(await eventsOn("2026-11-02")).toEqual({ events: 1, sessions: 1 })
  })
})

describe("rollup of a day whose local midnight is skipped", () => {
  it("starts 2026-09-06 in America/Santiago at 01:00 local, 23 hours long", async () => {
    // Chile moves its clocks from 00:00 to 01:00 on 2026-09-06 (04:00Z).
    const site = await createSite("santiago", "America/Santiago")
    for (const instant of ["2026-09-06T03:59:59Z", "2026-09-06T04:00:00Z", "2026-09-07T02:59:59Z", "2026-09-07T03:00:00Z"]) {
      const visitorId = await insertVisitor(site, instant)
      const sessionId = await insertSession(site, visitorId, { startedAt: instant, pageViews: 1 })
      await insertEvent(site, visitorId, sessionId, { type: "page_view", path: "/", at: instant, isEntrance: true })
    }

    const results = await Promise.all(["2026-09-05", "2026-09-06", "2026-09-07"].map((day) =>
      rollup((service) => service.rollupDay(site.tenantId, site.propertyId, day))))

    expect(results.map((result) => result.figures.dayHours)).toEqual([24, 23, 24])
    expect((await totalRow(site, "2026-09-05"))?.["events"]).toBe(1)
    expect((await totalRow(site, "2026-09-06"))?.["events"]).toBe(2)
    expect((await totalRow(site, "2026-09-07"))?.["events"]).toBe(1)
  })
})

describe("rollup invariants", () => {
  const GOOD: InvariantFigures = {
    dayHours: 24,
    totalRows: 1,
    visitors: 10,
    dailyVisitorRows: 10,
    returningVisitors: 4,
    sessions: 12,
    sourceSessions: 12,
    pageViews: 30,
    entrances: 12,
    convertingEntrances: 3
  }

  it("accepts consistent figures, 23- and 25-hour days included", () => {
    expect(invariantViolations(GOOD)).toEqual([])
    expect(invariantViolations({ ...GOOD, dayHours: 23 })).toEqual([])
    expect(invariantViolations({ ...GOOD, dayHours: 25 })).toEqual([])
  })

  it.each<[string, Partial<InvariantFigures>, RegExp]>([
    ["no total row", { totalRows: 0 }, /total row exists 0 times/],
    ["two total rows", { totalRows: 2 }, /total row exists 2 times/],
    ["a 22-hour day", { dayHours: 22 }, /lasts 22 hours/],
    ["a 26-hour day", { dayHours: 26 }, /lasts 26 hours/],
    ["visitors unlike daily_visitors", { dailyVisitorRows: 9 }, /visitors \(10\) differs from the daily_visitors rows \(9\)/],
    ["source sessions unlike total", { sourceSessions: 11 }, /source rows' sessions \(11\) differ from total sessions \(12\)/],
    ["more returning than visitors", { returningVisitors: 11 }, /returning_visitors \(11\) exceeds visitors \(10\)/],
    ["more entrances than page views", { entrances: 31 }, /entrances \(31\) exceeds page_views \(30\)/],
    ["more converting entrances", { convertingEntrances: 13 }, /converting_entrances \(13\) exceeds entrances \(12\)/]
  ])("reports %s", (_case, tampered, expected) => {
    const violations = invariantViolations({ ...GOOD, ...tampered })

    expect(violations).toHaveLength(1)
    expect(violations[0]).toMatch(expected)
  })

  it("rolls the day back and keeps its old rows when one fails", async () => {
    const site = await createSite("invariant", "UTC")
    const visitorId = await insertVisitor(site, "2026-05-01T09:00:00Z")
    const sessionId = await insertSession(site, visitorId, { startedAt: "2026-05-01T09:00:00Z", pageViews: 1 })
    await insertEvent(site, visitorId, sessionId, { type: "page_view", path: "/", at: "2026-05-01T09:00:00Z", isEntrance: true })
    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, "2026-05-01"))
    const before = await snapshot(site, "2026-05-01")
    // An event whose visitor row does not exist: it counts in `visitors` but
    // cannot be listed in daily_visitors, so the two disagree.
    await insertEvent(site, randomUUID(), sessionId, { type: "page_view", path: "/", at: "2026-05-01T10:00:00Z" })
    logs.length = 0

    const failure = await rollupFailure((service) => service.rollupDay(site.tenantId, site.propertyId, "2026-05-01"))

    expect(failure).toBeInstanceOf(RollupInvariantViolated)
    expect(failure._tag === "RollupInvariantViolated" ? failure.violations : []).toEqual([
      "visitors (2) differs from the daily_visitors rows (1)"
    ])
    expect(await snapshot(site, "2026-05-01")).toEqual(before)
    const logged = logs.find((entry) => String(entry.message).includes("invariant violated"))
    expect(logged?.annotations).toMatchObject({
      tenantId: site.tenantId,
      propertyId: site.propertyId,
      day: "2026-05-01",
      visitors: 2,
      dailyVisitorRows: 1
    })
  })

  it("rejects a day that does not last 23 to 25 hours", async () => {
    // Samoa skipped 2011-12-30 when it moved across the date line.
    const site = await createSite("apia", "Pacific/Apia")

    const failure = await rollupFailure((service) => service.rollupDay(site.tenantId, site.propertyId, "2011-12-30"))

    expect(failure._tag).toBe("RollupInvariantViolated")
    expect(failure._tag === "RollupInvariantViolated" ? failure.violations : []).toEqual([
      "the day lasts 0 hours instead of 23 to 25"
    ])
    expect(await metricRows(site, "2011-12-30")).toEqual([])
  })
})

describe("rollup input checks", () => {
  it("rejects a day that is not a calendar date", async () => {
    const site = await createSite("input", "UTC")

    const failure = await rollupFailure((service) => service.rollupDay(site.tenantId, site.propertyId, "2026-02-30"))

    expect(failure._tag).toBe("InvalidRollupDay")
  })

  it("rejects a property of another tenant", async () => {
    const mine = await createSite("mine", "UTC")
    const theirs = await createSite("theirs", "UTC")

    const failure = await rollupFailure((service) => service.rollupDay(mine.tenantId, theirs.propertyId, "2026-01-01"))

    expect(failure._tag).toBe("RollupPropertyNotFound")
    expect(await metricRows(theirs, "2026-01-01")).toEqual([])
  })

  it("rolls up a range day by day and rejects a backward one", async () => {
    const site = await createSite("range", "UTC")

    const days = await rollup((service) => service.rollupRange(site.tenantId, site.propertyId, "2026-01-30", "2026-02-02"))
    const backward = await rollupFailure((service) =>
      service.rollupRange(site.tenantId, site.propertyId, "2026-02-02", "2026-01-30"))

    expect(days).toBe(4)
    const written = await owner(
      "SELECT to_char(day, 'YYYY-MM-DD') AS day FROM daily_metric_rollups WHERE property_id = $1 ORDER BY day",
      [site.propertyId]
    )
    expect(written.map((row) => row["day"])).toEqual(["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"])
    expect(backward._tag).toBe("InvalidRollupDay")
  })
})

describe("daily_visitors row-level security", () => {
  it("hides a tenant's rows from another and rejects rows that claim it", async () => {
    const alpha = await createSite("rls-alpha", "UTC")
    const bravo = await createSite("rls-bravo", "UTC")
    const visitorId = await insertVisitor(alpha, "2026-01-01T00:00:00Z")
    await owner(
      `INSERT INTO daily_visitors (tenant_id, property_id, day, visitor_id, "returning") VALUES ($1, $2, '2026-01-01', $3, false)`,
      [alpha.tenantId, alpha.propertyId, visitorId]
    )
    const asBravo = <A>(statement: (sql: SqlClient) => Effect.Effect<A, unknown>) =>
      runtime.runPromise(Effect.gen(function*() {
        const sql = yield* SqlClient
        const tenants = yield* TenantDb
        return yield* tenants.withTenant(bravo.tenantId, statement(sql))
      }))

    const seen = await asBravo((sql) => sql`SELECT visitor_id FROM daily_visitors`)
    const inserted = await asBravo((sql) =>
      sql`INSERT INTO daily_visitors (tenant_id, property_id, day, visitor_id, "returning")
          VALUES (${alpha.tenantId}, ${alpha.propertyId}, '2026-01-02', ${visitorId}, false)`).then(
        () => "inserted",
        (error: unknown) => String(error)
      )

    expect(seen).toEqual([])
    expect(inserted).not.toBe("inserted")
  })
})

describe("statement-level tenant checks", () => {
  const ownerFailure = (text: string, values: ReadonlyArray<unknown>) =>
    Effect.runPromise(Effect.flip(withOwnerClient(database.url, (client) => ownerQuery(client, text, values))))

  it.each([
    [
      "daily_visitors",
      `INSERT INTO daily_visitors (tenant_id, property_id, day, visitor_id, "returning")
       VALUES ($1, $2, '2026-01-01', $3, false)`
    ],
    [
      "daily_metric_rollups",
      `INSERT INTO daily_metric_rollups (tenant_id, property_id, day, dimension, dimension_value)
       VALUES ($1, $2, '2026-01-01', 'path', $3)`
    ],
    [
      "events",
      `INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp")
       VALUES ($1, $2, $3, $3, 'page_view', '/', now())`
    ],
    [
      "event_receipts",
      `INSERT INTO event_receipts (tenant_id, property_id, client_event_id, received_at)
       VALUES ($1, $2, $3, now())`
    ]
  ])("rejects %s rows of an unknown tenant", async (_table, insert) => {
    const site = await createSite("unknown-tenant", "UTC")

    const failure = await ownerFailure(insert, [randomUUID(), site.propertyId, randomUUID()])

    expect(failure.code).toBe("23503")
  })

  it("deletes a tenant's events, receipts and rollup rows with it", async () => {
    const site = await createSite("deleted-tenant", "UTC")
    const visitorId = await insertVisitor(site, "2026-05-01T09:00:00Z")
    const sessionId = await insertSession(site, visitorId, { startedAt: "2026-05-01T09:00:00Z", pageViews: 1 })
    await insertEvent(site, visitorId, sessionId, { type: "page_view", path: "/", at: "2026-05-01T09:00:00Z", isEntrance: true })
    await rollup((service) => service.rollupDay(site.tenantId, site.propertyId, "2026-05-01"))
    const countRows = async () =>
      (await owner(
        `SELECT (SELECT count(*)::int FROM daily_visitors WHERE tenant_id = $1) AS visitors,
                (SELECT count(*)::int FROM daily_metric_rollups WHERE tenant_id = $1) AS metrics,
                (SELECT count(*)::int FROM events WHERE tenant_id = $1) AS events`,
        [site.tenantId]
      ))[0]
    const before = await countRows()

    await owner("DELETE FROM tenants WHERE id = $1", [site.tenantId])

    expect(before).toEqual({ visitors: 1, metrics: 5, events: 1 })
    expect(await countRows()).toEqual({ visitors: 0, metrics: 0, events: 0 })
  })
})

describe("rollup of generated traffic", () => {
  // Four days that include 2026-03-29, when Europe/Paris moves to summer time.
  const DAYS = ["2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31"]
  const ZONES = ["America/Toronto", "Europe/Paris", "Asia/Kolkata"]
  let sites: ReadonlyArray<Site & { readonly timezone: string }>

  beforeAll(async () => {
    const tenantId = await createTenant(database, "generated")
    sites = await Promise.all(ZONES.map(async (timezone, index) => ({
      tenantId,
      timezone,
      propertyId: await createProperty(database, tenantId, `generated-${index}`, timezone)
    })))
    for (const site of sites) await generateTraffic(site)
    const counted = await owner("SELECT count(*)::int AS n FROM events WHERE tenant_id = $1", [tenantId])
    expect(Number(counted[0]?.["n"])).toBeGreaterThanOrEqual(100_000)
    for (const site of sites) {
      await rollup((service) => service.rollupRange(site.tenantId, site.propertyId, DAYS[0] ?? "", DAYS.at(-1) ?? ""))
    }
  }, 240_000)

  /**
   * 1,500 visitors and 4,000 sessions per property over the four days and
   * six hours either side, with 1 to 21 events each, then the session
   * counters and entrance flags derived from the events as ingest sets them.
   * Every random() sits in a select list, where PostgreSQL evaluates it once
   * per row; in an uncorrelated LATERAL it may run only once.
   */
  const generateTraffic = async (site: Site) => {
    const params = [site.tenantId, site.propertyId]
    await owner(
      `INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at)
       SELECT $1, $2, 'generated-' || g.i, g.seen_at, g.seen_at
       FROM (SELECT i, timestamptz '2026-03-20T00:00:00Z' + random() * interval '12 days' AS seen_at
             FROM generate_series(1, 1500) AS i) AS g`,
      params
    )
    await owner(
      `WITH v AS (SELECT array_agg(id ORDER BY id) AS ids FROM visitors WHERE property_id = $2)
       INSERT INTO sessions (tenant_id, property_id, visitor_id, started_at, last_event_at, traffic_source,
                             referrer_domain, utm_term, device_type, country_code)
       SELECT $1, $2, v.ids[1 + floor(random() * 1500)::int], g.started_at, g.started_at,
              (ARRAY['direct', 'organic_search', 'paid_search', 'social', 'email', 'referral', 'campaign',
                     'internal', 'unknown'])[1 + floor(random() * 9)::int]::traffic_source,
              (ARRAY['google.com', 'news.example', 'blog.example.org', NULL, 'acme.example'])[1 + floor(random() * 5)::int],
              (ARRAY[NULL, '', 'crm', 'lead capture', 'Lead Capture'])[1 + floor(random() * 5)::int],
              (ARRAY['desktop', 'desktop', 'mobile', 'mobile', 'tablet', 'unknown', 'bot'])[1 + floor(random() * 7)::int]::device_type,
              (ARRAY['CA', 'US', 'FR', NULL])[1 + floor(random() * 4)::int]
       FROM v,
            (SELECT timestamptz '2026-03-27T18:00:00Z' + random() * interval '4 days 12 hours' AS started_at
             FROM generate_series(1, 4000)) AS g`,
      params
    )
    await owner(
      `INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp",
                           device_type, is_conversion, props)
       SELECT k.tenant_id, k.property_id, k.visitor_id, k.id, k.event_type, k.path, k.at, k.device_type,
              k.event_type = 'form_submit',
              CASE WHEN k.event_type <> 'page_view' OR k.draw < 0.3 THEN '{}'::jsonb
                   WHEN k.draw < 0.35 THEN '{"ttfbMs": "slow"}'::jsonb
                   ELSE jsonb_build_object('ttfbMs', round((50 + random() * 1500)::numeric, 1)) END
       FROM (
         SELECT s.tenant_id, s.property_id, s.visitor_id, s.id, s.device_type,
                s.started_at + n * interval '3 minutes' * random() AS at,
                CASE WHEN n = 0 AND random() < 0.9 THEN 'page_view'
                     ELSE (ARRAY['page_view', 'page_view', 'page_view', 'page_view', 'page_view', 'page_view',
                                 'form_start', 'form_submit', 'scroll', 'scroll'])[1 + floor(random() * 10)::int]
                END AS event_type,
                '/page-' || floor(random() * 30)::int AS path,
                random() AS draw
         FROM (SELECT *, floor(random() * 21)::int AS extra FROM sessions WHERE property_id = $1) AS s,
              generate_series(0, s.extra) AS n
       ) AS k`,
      [site.propertyId]
    )
    await owner(
      `UPDATE events SET is_entrance = true
       WHERE id IN (SELECT DISTINCT ON (session_id) id FROM events
                    WHERE property_id = $1 AND event_type = 'page_view'
                    ORDER BY session_id, "timestamp", id)`,
      [site.propertyId]
    )
    await owner(
      `UPDATE sessions s SET page_views = c.page_views, events = c.events, is_conversion = c.converted,
                             last_event_at = c.last_event_at
       FROM (SELECT session_id, count(*) FILTER (WHERE event_type = 'page_view') AS page_views, count(*) AS events,
                    bool_or(event_type = 'form_submit') AS converted, max("timestamp") AS last_event_at
             FROM events WHERE property_id = $1 GROUP BY session_id) AS c
       WHERE s.id = c.session_id`,
      [site.propertyId]
    )
    await owner(
      `WITH v AS (SELECT array_agg(id ORDER BY id) AS ids FROM visitors WHERE property_id = $2),
       l AS (
         INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, first_captured_at, last_captured_at)
         SELECT $1, $2, 'lead-' || c.i || '-' || $2 || '@example.com', 'x', c.at, c.at
         FROM (SELECT i, timestamptz '2026-03-27T18:00:00Z' + random() * interval '4 days 12 hours' AS at
               FROM generate_series(1, 400) AS i) AS c
         RETURNING id, first_captured_at
       )
       INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence, created_at)
       SELECT $1, l.id, v.ids[1 + floor(random() * 1500)::int], link.source::identity_link_source, 1,
              l.first_captured_at + link.delay
       FROM l, v,
            (VALUES ('form_submit', interval '0'), ('form_submit', interval '2 days'),
                    ('same_ip_ua_window', interval '0')) AS link(source, delay)
       WHERE random() < 0.7
       ON CONFLICT DO NOTHING`,
      params
    )
    await owner(
      `INSERT INTO ingest_rejections (tenant_id, property_id, received_at, reason)
       SELECT $1, $2, timestamptz '2026-03-27T18:00:00Z' + random() * interval '4 days 12 hours',
              (ARRAY['invalid_event', 'not_an_object', 'too_large'])[1 + floor(random() * 3)::int]
       FROM generate_series(1, 600)`,
      params
    )
  }

  // The expected rows, computed here without the rollup's SQL: days come from
  // converting each timestamp to the property's local date, sessions and
  // conversions from the events rather than the session counters.
  const EXPECTED_SQL = `
    WITH p AS (SELECT id, tenant_id, timezone, $2::date AS day FROM properties WHERE id = $1),
    e AS (
      SELECT ev.* FROM events ev, p
      WHERE ev.property_id = p.id AND (ev."timestamp" AT TIME ZONE p.timezone)::date = p.day
    ),
    human AS (SELECT * FROM e WHERE device_type <> 'bot'),
    converted AS (SELECT DISTINCT session_id FROM events WHERE property_id = $1 AND event_type = 'form_submit'),
    viewed AS (SELECT DISTINCT session_id FROM events WHERE property_id = $1 AND event_type = 'page_view'),
    s AS (
      SELECT se.*, se.id IN (SELECT session_id FROM converted) AS converted FROM sessions se, p
      WHERE se.property_id = p.id AND (se.started_at AT TIME ZONE p.timezone)::date = p.day
        AND se.device_type <> 'bot' AND se.id IN (SELECT session_id FROM viewed)
    ),
    first_visitor AS (
      SELECT DISTINCT ON (i.lead_id) i.lead_id, v.first_seen_at
      FROM lead_identities i JOIN visitors v ON v.id = i.visitor_id
      WHERE i.link_source = 'form_submit'
      ORDER BY i.lead_id, i.created_at, i.id
    ),
    new_leads AS (
      SELECT l.id, extract(epoch FROM l.first_captured_at - f.first_seen_at)::float8 AS seconds
      FROM leads l CROSS JOIN p LEFT JOIN first_visitor f ON f.lead_id = l.id
      WHERE l.property_id = p.id AND (l.first_captured_at AT TIME ZONE p.timezone)::date = p.day
    ),
    entrances AS (SELECT * FROM human WHERE event_type = 'page_view' AND is_entrance)
    SELECT 'total' AS dimension, '' AS dimension_value,
      (SELECT count(DISTINCT visitor_id) FROM human)::int AS visitors,
      (SELECT count(DISTINCT h.visitor_id) FROM human h JOIN visitors v ON v.id = h.visitor_id, p
       WHERE (v.first_seen_at AT TIME ZONE p.timezone)::date < p.day)::int AS returning_visitors,
      (SELECT count(*) FROM s)::int AS sessions,
      (SELECT count(*) FROM human WHERE event_type = 'page_view')::int AS page_views,
      (SELECT count(*) FROM entrances)::int AS entrances,
      (SELECT count(*) FROM entrances WHERE session_id IN (SELECT session_id FROM converted))::int AS converting_entrances,
      (SELECT count(*) FROM s WHERE converted)::int AS conversions,
      (SELECT count(*) FROM human WHERE event_type = 'form_start')::int AS form_starts,
      (SELECT count(*) FROM human WHERE event_type = 'form_submit')::int AS form_submits,
      (SELECT count(*) FROM new_leads)::int AS new_leads,
      (SELECT count(*) FROM e WHERE device_type = 'bot')::int AS bot_events,
      (SELECT count(*) FROM e)::int AS events,
      (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY (props ->> 'ttfbMs')::float8) FROM human
       WHERE jsonb_typeof(props -> 'ttfbMs') = 'number') AS ttfb_p95_ms,
      (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM new_leads WHERE seconds >= 0)
        AS time_to_first_capture_median_s,
      jsonb_build_object(
        'referral_sessions', (SELECT count(*) FROM s WHERE traffic_source = 'referral'),
        'referral_conversions', (SELECT count(*) FROM s WHERE traffic_source = 'referral' AND converted)) AS metrics
    UNION ALL
    SELECT 'path', path, count(DISTINCT visitor_id)::int, 0, 0, count(*)::int, count(*) FILTER (WHERE is_entrance)::int,
           count(*) FILTER (WHERE is_entrance AND session_id IN (SELECT session_id FROM converted))::int,
           0, 0, 0, 0, 0, 0, NULL, NULL, '{}'::jsonb
    FROM human WHERE event_type = 'page_view' GROUP BY path
    UNION ALL
    SELECT 'source', traffic_source::text, count(DISTINCT visitor_id)::int, 0, count(*)::int, 0, 0, 0,
           count(*) FILTER (WHERE converted)::int, 0, 0, 0, 0, 0, NULL, NULL, '{}'
    FROM s GROUP BY traffic_source
    UNION ALL
    SELECT 'referrer', referrer_domain, count(DISTINCT visitor_id)::int, 0, count(*)::int, 0, 0, 0,
           count(*) FILTER (WHERE converted)::int, 0, 0, 0, 0, 0, NULL, NULL, '{}'
    FROM s WHERE referrer_domain IS NOT NULL AND traffic_source <> 'internal' GROUP BY referrer_domain
    UNION ALL
    SELECT 'keyword', utm_term, 0, 0, count(*)::int, 0, 0, 0, count(*) FILTER (WHERE converted)::int,
           0, 0, 0, 0, 0, NULL, NULL, '{}'
    FROM s WHERE utm_term <> '' GROUP BY utm_term
    UNION ALL
    SELECT 'country', COALESCE(country_code::text, ''), count(DISTINCT visitor_id)::int, 0, count(*)::int,
           0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, '{}'
    FROM s GROUP BY 2
    UNION ALL
    SELECT 'device', device_type::text, count(DISTINCT visitor_id)::int, 0, count(*)::int,
           0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, '{}'
    FROM s GROUP BY device_type
    ORDER BY 1, 2`

  const cases = DAYS.flatMap((day) => ZONES.map((zone, index) => [day, zone, index] as const))

  it.each(cases)("matches plain SQL for every metric row on %s in %s", async (day, _zone, index) => {
    const site = sites[index]
    if (site === undefined) throw new Error(`no generated property ${index}`)

    const expected = await owner(EXPECTED_SQL, [site.propertyId, day])
    const actual = await metricRows(site, day)

    const expectedTotal = expected.find((row) => row["dimension"] === "total")
    expect(expectedTotal?.["events"]).toBeGreaterThan(1_000)
    expect(actual.find((row) => row["dimension"] === "total")).toEqual(expectedTotal)
    for (const dimension of ["path", "source", "referrer", "keyword", "country", "device"]) {
      const pick = (rows: ReadonlyArray<Record<string, unknown>>) => rows.filter((row) => row["dimension"] === dimension)
      expect({ dimension, rows: pick(actual) }).toEqual({ dimension, rows: pick(expected) })
    }
  })

  it.each(cases)("matches plain SQL for daily visitors and ingest on %s in %s", async (day, _zone, index) => {
    const site = sites[index]
    if (site === undefined) throw new Error(`no generated property ${index}`)

    const expectedVisitors = await owner(
      `SELECT DISTINCT e.visitor_id, (v.first_seen_at AT TIME ZONE p.timezone)::date < $2::date AS "returning"
       FROM events e JOIN visitors v ON v.id = e.visitor_id JOIN properties p ON p.id = e.property_id
       WHERE e.property_id = $1 AND e.device_type <> 'bot'
         AND (e."timestamp" AT TIME ZONE p.timezone)::date = $2::date
       ORDER BY e.visitor_id`,
      [site.propertyId, day]
    )
    const expectedIngest = await owner(
      `SELECT (SELECT count(*)::int FROM events e WHERE e.property_id = p.id
                 AND (e."timestamp" AT TIME ZONE p.timezone)::date = $2::date) AS accepted,
              (SELECT count(*)::int FROM ingest_rejections r WHERE r.property_id = p.id
                 AND (r.received_at AT TIME ZONE p.timezone)::date = $2::date) AS rejected,
              (SELECT COALESCE(jsonb_object_agg(reason, n), '{}') FROM (
                 SELECT reason, count(*) AS n FROM ingest_rejections r WHERE r.property_id = p.id
                   AND (r.received_at AT TIME ZONE p.timezone)::date = $2::date GROUP BY reason) AS g)
                AS rejected_by_reason
       FROM properties p WHERE p.id = $1`,
      [site.propertyId, day]
    )

    const actualVisitors = await dailyVisitors(site, day)
    expect(actualVisitors.length).toBeGreaterThan(100)
    expect(actualVisitors).toEqual(expectedVisitors)
    expect(await ingestRow(site, day)).toEqual(expectedIngest[0])
  })
})

describe("rollup of recent days", () => {
  let recentDatabase: AppDatabase
  let recentRuntime: Runtime
  const recentLogs: Array<LogEntry> = []

  beforeAll(async () => {
    recentDatabase = await createAppDatabase()
    recentRuntime = makeRuntime(recentDatabase, recentLogs)
  })

  afterAll(async () => {
    await recentRuntime?.dispose()
  })

  it("rolls up today and yesterday in each zone and skips what fails", async () => {
    const first = await createTenant(recentDatabase, "first")
    const auckland = await createProperty(recentDatabase, first, "auckland", "Pacific/Auckland")
    const losAngeles = await createProperty(recentDatabase, first, "los-angeles", "America/Los_Angeles")
    const second = await createTenant(recentDatabase, "second")
    const toronto = await createProperty(recentDatabase, second, "toronto", "America/Toronto")
    const broken = await createProperty(recentDatabase, second, "broken", "America/Toronto")
    const unknownZone = await createProperty(recentDatabase, second, "unknown-zone", "Not/A_Zone")
    // An event of a visitor that does not exist makes "today" (2026-06-09 in
    // Toronto) of the broken property fail its visitors invariant.
    await query(
      recentDatabase,
      `INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp")
       VALUES ($1, $2, $3, $4, 'page_view', '/', '2026-06-09T16:00:00Z')`,
      [second, broken, randomUUID(), randomUUID()]
    )

    // 02:00Z is 14:00 on 06-10 in Auckland, 19:00 on 06-09 in Los Angeles and
    // 22:00 on 06-09 in Toronto.
    const result = await recentRuntime.runPromise(
      withRollup((service) => service.rollupRecent(new Date("2026-06-10T02:00:00Z")))
    )

    expect(result).toEqual({ rolledUp: 7, failed: 3 })
    const days = await query(
      recentDatabase,
      `SELECT property_id, array_agg(to_char(day, 'YYYY-MM-DD') ORDER BY day) AS days
       FROM daily_metric_rollups WHERE dimension = 'total' GROUP BY property_id`
    )
    const byProperty = new Map(days.map((row) => [String(row["property_id"]), row["days"]]))
    expect(byProperty.get(auckland)).toEqual(["2026-06-09", "2026-06-10"])
    expect(byProperty.get(losAngeles)).toEqual(["2026-06-08", "2026-06-09"])
    expect(byProperty.get(toronto)).toEqual(["2026-06-08", "2026-06-09"])
    expect(byProperty.get(broken)).toEqual(["2026-06-08"])
    expect(byProperty.has(unknownZone)).toBe(false)
    const failures = recentLogs.filter((entry) => String(entry.message).startsWith("daily rollup"))
    expect(failures.map((entry) => entry.annotations["propertyId"])).toEqual(
      expect.arrayContaining([broken, unknownZone])
    )
  })
})

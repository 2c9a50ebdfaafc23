/**
 * Reads the metrics of docs/metrics.md for a set of properties and a range
 * of days in each property's time zone. Counts and breakdowns come from the
 * daily rollups. Exact range values that cannot be summed from days (unique
 * visitors, percentiles, medians) come from `daily_visitors` and raw rows.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { TenantDb } from "./TenantDb.ts"

export interface DayRange {
  /** First day, YYYY-MM-DD, in each property's zone. */
  readonly from: string
  /** Last day, inclusive. */
  readonly to: string
}

export interface RangeTotals {
  readonly uniqueVisitors: number
  readonly returningVisitors: number
  readonly sessions: number
  readonly pageViews: number
  readonly entrances: number
  readonly convertingEntrances: number
  readonly conversions: number
  readonly formStarts: number
  readonly formSubmits: number
  readonly newLeads: number
  readonly botEvents: number
  readonly events: number
  readonly referralSessions: number
  readonly referralConversions: number
  readonly accepted: number
  readonly rejected: number
  readonly ttfbP95Ms: number | null
  readonly timeToFirstCaptureMedianS: number | null
  readonly rolledUpAt: Date | null
  readonly oldestRollupAt: Date | null
}

export const DIMENSIONS = ["path", "source", "referrer", "keyword", "country", "device"] as const
export type Dimension = (typeof DIMENSIONS)[number]

export interface BreakdownRow {
  readonly value: string
  readonly visitors: number
  readonly sessions: number
  readonly pageViews: number
  readonly entrances: number
  readonly convertingEntrances: number
  readonly conversions: number
}

export interface DailyPoint {
  readonly day: string
  readonly visitors: number
  readonly sessions: number
  readonly pageViews: number
  readonly conversions: number
  readonly newLeads: number
}

export interface LeadSourceRow {
  readonly source: string
  readonly marketable: number
  readonly notMarketable: number
}

export interface WebVitalsRow {
  readonly path: string
  readonly samples: number
  readonly vitals: Readonly<Record<string, { p75: number | null; good: number; needsImprovement: number; poor: number }>>
}

export interface MetricsShape {
  readonly totals: (tenantId: string, propertyIds: ReadonlyArray<string>, range: DayRange) => Effect.Effect<RangeTotals>
  readonly breakdown: (
    tenantId: string,
    propertyIds: ReadonlyArray<string>,
    range: DayRange,
    dimension: Dimension,
    page: { readonly limit: number; readonly offset: number }
  ) => Effect.Effect<ReadonlyArray<BreakdownRow>>
  readonly series: (tenantId: string, propertyIds: ReadonlyArray<string>, range: DayRange) => Effect.Effect<
    ReadonlyArray<DailyPoint>
  >
  readonly leadsBySource: (tenantId: string, propertyIds: ReadonlyArray<string>, range: DayRange) => Effect.Effect<
    ReadonlyArray<LeadSourceRow>
  >
  readonly webVitals: (
    tenantId: string,
    propertyIds: ReadonlyArray<string>,
    range: DayRange,
    page: { readonly limit: number; readonly offset: number }
  ) => Effect.Effect<ReadonlyArray<WebVitalsRow>>
}

/**
 * Published Core Web Vitals thresholds (web.dev, 2024): a value at or below
 * the first is good, above the second is poor, between is needs-improvement.
 */
export const WEB_VITAL_THRESHOLDS: Readonly<Record<string, readonly [number, number]>> = {
  lcpMs: [2500, 4000],
  inpMs: [200, 500],
  clsScore: [0.1, 0.25],
  fcpMs: [1800, 3000],
  ttfbMs: [800, 1800]
}

export class Metrics extends Context.Service<Metrics, MetricsShape>()("porchlight/services/Metrics") {
  static readonly layer = Layer.effect(
    Metrics,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const tenants = yield* TenantDb
      const read = <A>(tenantId: string, effect: Effect.Effect<A, unknown>) =>
        tenants.withTenant(tenantId, effect).pipe(Effect.orDie)

      /** Each property's range bounds as instants, from its zone. */
      const bounds = (propertyIds: ReadonlyArray<string>, range: DayRange) =>
        sql`
          SELECT p.id AS property_id,
                 (${range.from}::date::timestamp AT TIME ZONE p.timezone) AS starts_at,
                 ((${range.to}::date + 1)::timestamp AT TIME ZONE p.timezone) AS ends_at
          FROM properties p WHERE p.id = ANY(${propertyIds}::uuid[])`

      const totals = (tenantId: string, propertyIds: ReadonlyArray<string>, range: DayRange) =>
        read(tenantId, Effect.gen(function*() {
          const [sums] = yield* sql<Record<string, string | number | Date | null>>`
            SELECT coalesce(sum(sessions), 0)::float8 AS sessions,
                   coalesce(sum(page_views), 0)::float8 AS page_views,
                   coalesce(sum(entrances), 0)::float8 AS entrances,
                   coalesce(sum(converting_entrances), 0)::float8 AS converting_entrances,
                   coalesce(sum(conversions), 0)::float8 AS conversions,
                   coalesce(sum(form_starts), 0)::float8 AS form_starts,
                   coalesce(sum(form_submits), 0)::float8 AS form_submits,
                   coalesce(sum(new_leads), 0)::float8 AS new_leads,
                   coalesce(sum(bot_events), 0)::float8 AS bot_events,
                   coalesce(sum(events), 0)::float8 AS events,
                   coalesce(sum((metrics->>'referral_sessions')::bigint), 0)::float8 AS referral_sessions,
                   coalesce(sum((metrics->>'referral_conversions')::bigint), 0)::float8 AS referral_conversions,
                   max(rolled_up_at) AS rolled_up_at,
                   min(rolled_up_at) AS oldest_rollup_at
            FROM daily_metric_rollups
            WHERE property_id = ANY(${propertyIds}::uuid[]) AND dimension = 'total'
              AND day BETWEEN ${range.from}::date AND ${range.to}::date`
          const [visitors] = yield* sql<{ unique_visitors: number; returning_visitors: number }>`
            WITH b AS (${bounds(propertyIds, range)})
            SELECT count(DISTINCT dv.visitor_id)::float8 AS unique_visitors,
                   count(DISTINCT dv.visitor_id) FILTER (WHERE v.first_seen_at < b.starts_at)::float8
                     AS returning_visitors
            FROM daily_visitors dv
            JOIN b ON b.property_id = dv.property_id
            JOIN visitors v ON v.id = dv.visitor_id
            WHERE dv.property_id = ANY(${propertyIds}::uuid[])
              AND dv.day BETWEEN ${range.from}::date AND ${range.to}::date`
          const [ingest] = yield* sql<{ accepted: number; rejected: number }>`
            SELECT coalesce(sum(accepted), 0)::float8 AS accepted, coalesce(sum(rejected), 0)::float8 AS rejected
            FROM daily_ingest_rollups
            WHERE property_id = ANY(${propertyIds}::uuid[]) AND day BETWEEN ${range.from}::date AND ${range.to}::date`
          const [ttfb] = yield* sql<{ p95: number | null }>`
            WITH b AS (${bounds(propertyIds, range)})
            SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY (e.props->>'ttfbMs')::float8) AS p95
            FROM events e JOIN b ON b.property_id = e.property_id
            WHERE e."timestamp" >= b.starts_at AND e."timestamp" < b.ends_at
              AND e.device_type <> 'bot' AND jsonb_typeof(e.props->'ttfbMs') = 'number'`
          const [capture] = yield* sql<{ median: number | null }>`
            WITH b AS (${bounds(propertyIds, range)}),
            firsts AS (
              SELECT l.id, l.first_captured_at, min(v.first_seen_at) AS first_seen_at
              FROM leads l
              JOIN b ON b.property_id = l.property_id
              JOIN lead_identities i ON i.lead_id = l.id AND i.link_source = 'form_submit'
              JOIN visitors v ON v.id = i.visitor_id
              WHERE l.first_captured_at >= b.starts_at AND l.first_captured_at < b.ends_at
              GROUP BY l.id, l.first_captured_at
            )
            SELECT percentile_cont(0.5) WITHIN GROUP (
              ORDER BY extract(epoch FROM first_captured_at - first_seen_at)) AS median
            FROM firsts`
          return {
            uniqueVisitors: Number(visitors?.unique_visitors ?? 0),
            returningVisitors: Number(visitors?.returning_visitors ?? 0),
            sessions: Number(sums?.["sessions"] ?? 0),
            pageViews: Number(sums?.["page_views"] ?? 0),
            entrances: Number(sums?.["entrances"] ?? 0),
            convertingEntrances: Number(sums?.["converting_entrances"] ?? 0),
            conversions: Number(sums?.["conversions"] ?? 0),
            formStarts: Number(sums?.["form_starts"] ?? 0),
            formSubmits: Number(sums?.["form_submits"] ?? 0),
            newLeads: Number(sums?.["new_leads"] ?? 0),
            botEvents: Number(sums?.["bot_events"] ?? 0),
            events: Number(sums?.["events"] ?? 0),
            referralSessions: Number(sums?.["referral_sessions"] ?? 0),
            referralConversions: Number(sums?.["referral_conversions"] ?? 0),
            accepted: Number(ingest?.accepted ?? 0),
            rejected: Number(ingest?.rejected ?? 0),
            ttfbP95Ms: ttfb?.p95 ?? null,
            timeToFirstCaptureMedianS: capture?.median ?? null,
            rolledUpAt: dateOrNull(sums?.["rolled_up_at"]),
            oldestRollupAt: dateOrNull(sums?.["oldest_rollup_at"])
          }
        }))

      const breakdown = (
        tenantId: string,
        propertyIds: ReadonlyArray<string>,
        range: DayRange,
        dimension: Dimension,
        page: { readonly limit: number; readonly offset: number }
      ) =>
        read(tenantId, sql<BreakdownRow>`
          SELECT dimension_value AS value,
                 coalesce(sum(visitors), 0)::float8 AS visitors,
                 coalesce(sum(sessions), 0)::float8 AS sessions,
                 coalesce(sum(page_views), 0)::float8 AS "pageViews",
                 coalesce(sum(entrances), 0)::float8 AS entrances,
                 coalesce(sum(converting_entrances), 0)::float8 AS "convertingEntrances",
                 coalesce(sum(conversions), 0)::float8 AS conversions
          FROM daily_metric_rollups
          WHERE property_id = ANY(${propertyIds}::uuid[]) AND dimension = ${dimension}
            AND day BETWEEN ${range.from}::date AND ${range.to}::date
          GROUP BY dimension_value
          ORDER BY ${dimension === "path" ? sql`sum(page_views)` : sql`sum(sessions)`} DESC, dimension_value
          LIMIT ${page.limit} OFFSET ${page.offset}`)

      const series = (tenantId: string, propertyIds: ReadonlyArray<string>, range: DayRange) =>
        read(tenantId, sql<DailyPoint>`
          SELECT to_char(d.day, 'YYYY-MM-DD') AS day,
                 coalesce(sum(r.visitors), 0)::float8 AS visitors,
                 coalesce(sum(r.sessions), 0)::float8 AS sessions,
                 coalesce(sum(r.page_views), 0)::float8 AS "pageViews",
                 coalesce(sum(r.conversions), 0)::float8 AS conversions,
                 coalesce(sum(r.new_leads), 0)::float8 AS "newLeads"
          FROM generate_series(${range.from}::date, ${range.to}::date, interval '1 day') AS d(day)
          LEFT JOIN daily_metric_rollups r
            ON r.day = d.day::date AND r.dimension = 'total' AND r.property_id = ANY(${propertyIds}::uuid[])
          GROUP BY d.day ORDER BY d.day`)

      const leadsBySource = (tenantId: string, propertyIds: ReadonlyArray<string>, range: DayRange) =>
        read(tenantId, sql<LeadSourceRow>`
          WITH b AS (${bounds(propertyIds, range)})
          SELECT coalesce(l.first_touch_source::text, 'unknown') AS source,
                 count(*) FILTER (WHERE ${marketable(sql)})::float8 AS marketable,
                 count(*) FILTER (WHERE NOT (${marketable(sql)}))::float8 AS "notMarketable"
          FROM leads l JOIN b ON b.property_id = l.property_id
          WHERE l.first_captured_at >= b.starts_at AND l.first_captured_at < b.ends_at
          GROUP BY 1 ORDER BY count(*) DESC, 1`)

      const webVitals = (
        tenantId: string,
        propertyIds: ReadonlyArray<string>,
        range: DayRange,
        page: { readonly limit: number; readonly offset: number }
      ) =>
        read(tenantId, Effect.gen(function*() {
          const rows = yield* sql<{ path: string; samples: number; vitals: Record<string, unknown> }>`
            WITH b AS (${bounds(propertyIds, range)}),
            samples AS (
              SELECT e.path, e.props FROM events e JOIN b ON b.property_id = e.property_id
              WHERE e."timestamp" >= b.starts_at AND e."timestamp" < b.ends_at AND e.device_type <> 'bot'
                AND (e.props ?| array['lcpMs', 'inpMs', 'clsScore', 'fcpMs', 'ttfbMs'])
            )
            SELECT path, count(*)::float8 AS samples, jsonb_build_object(
              ${sql.unsafe(Object.entries(WEB_VITAL_THRESHOLDS).map(([name, [good, poor]]) => `
                '${name}', jsonb_build_object(
                  'p75', percentile_cont(0.75) WITHIN GROUP (ORDER BY (props->>'${name}')::float8)
                         FILTER (WHERE jsonb_typeof(props->'${name}') = 'number'),
                  'good', count(*) FILTER (WHERE (props->>'${name}')::float8 <= ${good}),
                  'needsImprovement', count(*) FILTER (WHERE (props->>'${name}')::float8 > ${good}
                                                        AND (props->>'${name}')::float8 <= ${poor}),
                  'poor', count(*) FILTER (WHERE (props->>'${name}')::float8 > ${poor}))`).join(","))}
            ) AS vitals
            FROM samples GROUP BY path ORDER BY count(*) DESC, path
            LIMIT ${page.limit} OFFSET ${page.offset}`
          return rows.map((row): WebVitalsRow => ({
            path: row.path,
            samples: Number(row.samples),
            vitals: Object.fromEntries(Object.keys(WEB_VITAL_THRESHOLDS).map((name) => {
              const entry = row.vitals[name]
              const record = typeof entry === "object" && entry !== null ? entry : {}
              const field = (key: string) => key in record ? Reflect.get(record, key) : null
              const p75 = field("p75")
              return [name, {
                p75: typeof p75 === "number" ? p75 : null,
                good: Number(field("good") ?? 0),
                needsImprovement: Number(field("needsImprovement") ?? 0),
                poor: Number(field("poor") ?? 0)
              }]
            }))
          }))
        }))

      return Metrics.of({ totals, breakdown, series, leadsBySource, webVitals })
    })
  )
}

/** Marketable: express consent, or implied consent that has not run out (six months, unexpired). */
const marketable = (sql: SqlClient) =>
  sql`(l.consent_status = 'express' OR (l.consent_status = 'implied' AND l.consent_expired_at IS NULL
        AND l.implied_consent_at > now() - interval '6 months'))`

const dateOrNull = (value: unknown): Date | null => {
  if (value instanceof Date) return value
  if (typeof value === "string") return new Date(value)
  return null
}

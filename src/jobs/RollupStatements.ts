/**
 * The SQL of one property's daily rollup, run by `Rollup.rollupDay` in one
 * tenant transaction, in this order: the day's bounds, deleting its old
 * rows, the session pass and the events pass, then reading back the figures
 * that the invariants compare. The definitions are those of docs/metrics.md.
 *
 * Each pass reads its raw rows once. The session pass groups the day's
 * counted sessions by every breakdown with GROUPING SETS. The events pass
 * aggregates the day's events per (visitor, path) and per TTFB value in one
 * scan, and derives the path rows, the visitors, the total row and the
 * ingest row from that aggregate.
 */
import { Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { InvariantFigures } from "./Rollup.ts"

/** Start and end of the day as timestamptz text, computed by PostgreSQL from the property's time zone. */
export interface DayBounds {
  readonly dayStart: string
  readonly dayEnd: string
  readonly hours: number
}

/** The ids every statement of a day's rollup filters on. */
export interface DayKey {
  readonly tenantId: string
  readonly propertyId: string
  readonly day: string
}

/** The day's counted sessions, for the total row. */
export interface SessionTotals {
  readonly sessions: number
  readonly conversions: number
  readonly referralSessions: number
  readonly referralConversions: number
}

const NO_SESSIONS: SessionTotals = { sessions: 0, conversions: 0, referralSessions: 0, referralConversions: 0 }

export const makeDayStatements = (sql: SqlClient) => {
  // Local midnight of the day and of the next day, so that a day across
  // a daylight saving change lasts 23 or 25 hours. A local midnight that
  // the zone skips is read with the offset in force before the change.
  // Returns undefined when the tenant has no such property.
  const readBounds = (key: DayKey) =>
    Effect.map(
      sql<DayBounds>`
        SELECT b.day_start::text AS "dayStart", b.day_end::text AS "dayEnd",
               (extract(epoch FROM b.day_end - b.day_start) / 3600)::float8 AS hours
        FROM properties p,
             LATERAL (SELECT ${key.day}::date::timestamp AT TIME ZONE p.timezone AS day_start,
                             (${key.day}::date + 1)::timestamp AT TIME ZONE p.timezone AS day_end) AS b
        WHERE p.id = ${key.propertyId}`,
      (rows): DayBounds | undefined => rows[0]
    )

  const deleteDay = (key: DayKey) =>
    Effect.all([
      sql`DELETE FROM daily_metric_rollups
          WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId} AND day = ${key.day}::date`,
      sql`DELETE FROM daily_ingest_rollups
          WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId} AND day = ${key.day}::date`,
      sql`DELETE FROM daily_visitors
          WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId} AND day = ${key.day}::date`
    ], { discard: true })

  /**
   * Writes the source, referrer, keyword, country and device rows, and
   * returns the day's counted sessions. Every counted session lands in one
   * row of each dimension it has a value for, and a row's visitors are the
   * distinct visitors of its sessions. Keyword rows carry no visitors
   * (docs/metrics.md).
   *
   * Most visitors have one session a day, and such a session adds one
   * visitor to each of its rows, so those sessions are counted per value
   * alone, in small hash tables. Only the sessions of visitors with several
   * are grouped per (value, visitor), which counts each visitor once.
   */
  const insertSessionRows = (key: DayKey, bounds: DayBounds) =>
    Effect.map(
      sql<SessionTotals>`
        WITH day_sessions AS MATERIALIZED (
          SELECT s.visitor_id, s.traffic_source::text AS source,
                 CASE WHEN s.traffic_source <> 'internal' THEN s.referrer_domain END AS referrer,
                 NULLIF(s.utm_term, '') AS keyword, COALESCE(s.country_code::text, '') AS country,
                 s.device_type::text AS device, s.is_conversion,
                 count(*) OVER (PARTITION BY s.visitor_id) > 1 AS is_repeat_visitor
          FROM sessions s
          WHERE s.tenant_id = ${key.tenantId} AND s.property_id = ${key.propertyId}
            AND s.started_at >= ${bounds.dayStart}::timestamptz AND s.started_at < ${bounds.dayEnd}::timestamptz
            AND s.device_type <> 'bot' AND s.page_views > 0
        ),
        single_visitor_groups AS (
          SELECT CASE WHEN GROUPING(source) = 0 THEN 'source' WHEN GROUPING(referrer) = 0 THEN 'referrer'
                      WHEN GROUPING(keyword) = 0 THEN 'keyword' WHEN GROUPING(country) = 0 THEN 'country'
                      ELSE 'device' END AS dimension,
                 COALESCE(source, referrer, keyword, country, device) AS value,
                 count(*) AS sessions, count(*) FILTER (WHERE is_conversion) AS conversions, count(*) AS visitors
          FROM day_sessions
          WHERE NOT is_repeat_visitor
          GROUP BY GROUPING SETS ((source), (referrer), (keyword), (country), (device))
        ),
        repeat_visitor_groups AS (
          SELECT CASE WHEN GROUPING(source) = 0 THEN 'source' WHEN GROUPING(referrer) = 0 THEN 'referrer'
                      WHEN GROUPING(keyword) = 0 THEN 'keyword' WHEN GROUPING(country) = 0 THEN 'country'
                      ELSE 'device' END AS dimension,
                 COALESCE(source, referrer, keyword, country, device) AS value,
                 count(*) AS sessions, count(*) FILTER (WHERE is_conversion) AS conversions, 1 AS visitors
          FROM day_sessions
          WHERE is_repeat_visitor
          GROUP BY GROUPING SETS ((source, visitor_id), (referrer, visitor_id), (keyword, visitor_id),
                                  (country, visitor_id), (device, visitor_id))
        ),
        breakdown_rows AS (
          INSERT INTO daily_metric_rollups (
            tenant_id, property_id, day, dimension, dimension_value, sessions, conversions, visitors)
          SELECT ${key.tenantId}, ${key.propertyId}, ${key.day}::date, g.dimension, g.value, sum(g.sessions),
                 CASE WHEN g.dimension IN ('country', 'device') THEN 0 ELSE sum(g.conversions) END,
                 CASE WHEN g.dimension = 'keyword' THEN 0 ELSE sum(g.visitors) END
          FROM (SELECT * FROM single_visitor_groups UNION ALL SELECT * FROM repeat_visitor_groups) AS g
          WHERE g.value IS NOT NULL
          GROUP BY g.dimension, g.value
        )
        SELECT count(*)::int AS sessions, count(*) FILTER (WHERE is_conversion)::int AS conversions,
               count(*) FILTER (WHERE source = 'referral')::int AS "referralSessions",
               count(*) FILTER (WHERE source = 'referral' AND is_conversion)::int AS "referralConversions"
        FROM day_sessions`,
      (rows) => rows[0] ?? NO_SESSIONS
    )

  /**
   * Writes the path rows, the `daily_visitors` rows, the total row and the
   * ingest row from one scan of the day's events.
   *
   * `day_events` groups the events per (visitor, page view path) and, as a
   * second grouping set, per TTFB value. Bots' events fall in the group
   * whose visitor is null, and other events than page views in the groups
   * whose path is null. So a path's visitors are its groups, and the TTFB
   * groups, with their counts, give the percentile. Only entrances look up
   * their session, for its conversion flag, once each.
   *
   * The total's `visitors` is counted from the events, independently of the
   * `daily_visitors` rows, which are joined with `visitors`, so that the
   * invariant comparing them can fail.
   */
  const insertEventRows = (key: DayKey, bounds: DayBounds, sessions: SessionTotals) =>
    sql`
      WITH day_events AS MATERIALIZED (
        SELECT GROUPING(e.ttfb_ms) = 0 AS is_ttfb_group, e.visitor_id, e.path, e.ttfb_ms, count(*) AS events,
               count(*) FILTER (WHERE e.is_bot) AS bot_events,
               count(*) FILTER (WHERE NOT e.is_bot AND e.event_type = 'form_start') AS form_starts,
               count(*) FILTER (WHERE NOT e.is_bot AND e.event_type = 'form_submit') AS form_submits,
               count(e.path) AS page_views,
               count(e.path) FILTER (WHERE e.is_entrance) AS entrances,
               count(e.path) FILTER (WHERE e.is_converting_entrance) AS converting_entrances
        FROM (
          SELECT ev.device_type = 'bot' AS is_bot, ev.event_type, ev.is_entrance,
                 CASE WHEN ev.device_type <> 'bot' THEN ev.visitor_id END AS visitor_id,
                 CASE WHEN ev.device_type <> 'bot' AND ev.event_type = 'page_view' THEN ev.path END AS path,
                 CASE WHEN ev.device_type <> 'bot' AND jsonb_typeof(ev.props -> 'ttfbMs') = 'number'
                      THEN (ev.props -> 'ttfbMs')::float8 END AS ttfb_ms,
                 CASE WHEN ev.device_type <> 'bot' AND ev.event_type = 'page_view' AND ev.is_entrance
                      THEN (SELECT s.is_conversion FROM sessions s
                            WHERE s.tenant_id = ev.tenant_id AND s.id = ev.session_id) END AS is_converting_entrance
          FROM events ev
          WHERE ev.tenant_id = ${key.tenantId} AND ev.property_id = ${key.propertyId}
            AND ev."timestamp" >= ${bounds.dayStart}::timestamptz AND ev."timestamp" < ${bounds.dayEnd}::timestamptz
        ) AS e
        GROUP BY GROUPING SETS ((e.visitor_id, e.path), (e.ttfb_ms))
      ),
      -- Sorted, so that the lookups in visitors below read its index and
      -- table in key order, which is faster than random order.
      day_visitors AS MATERIALIZED (
        SELECT visitor_id FROM day_events
        WHERE NOT is_ttfb_group AND visitor_id IS NOT NULL
        GROUP BY visitor_id
        ORDER BY visitor_id
      ),
      -- Aggregates without GROUP BY return one row, so an empty day still
      -- gets its total row.
      event_totals AS (
        SELECT COALESCE(sum(events), 0) AS events, COALESCE(sum(bot_events), 0) AS bot_events,
               COALESCE(sum(form_starts), 0) AS form_starts, COALESCE(sum(form_submits), 0) AS form_submits,
               COALESCE(sum(page_views), 0) AS page_views, COALESCE(sum(entrances), 0) AS entrances,
               COALESCE(sum(converting_entrances), 0) AS converting_entrances,
               (SELECT count(*) FROM day_visitors) AS visitors,
               (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY t.ttfb_ms)
                FROM day_events t, generate_series(1, t.events)
                WHERE t.is_ttfb_group AND t.ttfb_ms IS NOT NULL) AS ttfb_p95_ms
        FROM day_events
        WHERE NOT is_ttfb_group
      ),
      path_rows AS (
        INSERT INTO daily_metric_rollups (
          tenant_id, property_id, day, dimension, dimension_value, visitors, page_views, entrances,
          converting_entrances)
        SELECT ${key.tenantId}, ${key.propertyId}, ${key.day}::date, 'path', path, count(*), sum(page_views),
               sum(entrances), sum(converting_entrances)
        FROM day_events
        WHERE NOT is_ttfb_group AND path IS NOT NULL
        GROUP BY path
      ),
      -- Sorted by visitor, the rows extend the key's index at its right edge
      -- when the day is the newest one rolled up.
      visitor_rows AS (
        INSERT INTO daily_visitors (tenant_id, property_id, day, visitor_id, "returning")
        SELECT v.tenant_id, ${key.propertyId}, ${key.day}::date, v.id, v.first_seen_at < ${bounds.dayStart}::timestamptz
        FROM day_visitors d
        JOIN visitors v ON v.tenant_id = ${key.tenantId} AND v.id = d.visitor_id
        ORDER BY v.id
        RETURNING "returning"
      ),
      -- Each new lead's visitor is the one of its earliest form_submit
      -- identity, which is the visitor that sent the first capture. A
      -- visitor first seen after that capture gives no value.
      new_leads AS (
        SELECT count(*) AS new_leads,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY first_capture.seconds) AS time_to_first_capture_median_s
        FROM leads l
        LEFT JOIN LATERAL (
          SELECT i.visitor_id FROM lead_identities i
          WHERE i.tenant_id = l.tenant_id AND i.lead_id = l.id AND i.link_source = 'form_submit'
          ORDER BY i.created_at, i.id
          LIMIT 1
        ) AS first_identity ON true
        LEFT JOIN visitors v ON v.tenant_id = l.tenant_id AND v.id = first_identity.visitor_id
        CROSS JOIN LATERAL (
          SELECT CASE WHEN v.first_seen_at <= l.first_captured_at
                      THEN extract(epoch FROM l.first_captured_at - v.first_seen_at)::float8 END AS seconds
        ) AS first_capture
        WHERE l.tenant_id = ${key.tenantId} AND l.property_id = ${key.propertyId}
          AND l.first_captured_at >= ${bounds.dayStart}::timestamptz
          AND l.first_captured_at < ${bounds.dayEnd}::timestamptz
      ),
      total_row AS (
        INSERT INTO daily_metric_rollups (
          tenant_id, property_id, day, dimension, dimension_value, visitors, returning_visitors, sessions,
          page_views, entrances, converting_entrances, conversions, form_starts, form_submits, new_leads,
          bot_events, events, ttfb_p95_ms, time_to_first_capture_median_s, metrics)
        SELECT ${key.tenantId}, ${key.propertyId}, ${key.day}::date, 'total', '', e.visitors,
               (SELECT count(*) FROM visitor_rows WHERE "returning"), ${sessions.sessions}, e.page_views,
               e.entrances, e.converting_entrances, ${sessions.conversions}, e.form_starts, e.form_submits,
               l.new_leads, e.bot_events, e.events, e.ttfb_p95_ms, l.time_to_first_capture_median_s,
               jsonb_build_object('referral_sessions', ${sessions.referralSessions}::bigint,
                                  'referral_conversions', ${sessions.referralConversions}::bigint)
        FROM event_totals e, new_leads l
      ),
      ingest_row AS (
        INSERT INTO daily_ingest_rollups (tenant_id, property_id, day, accepted, rejected, rejected_by_reason)
        SELECT ${key.tenantId}, ${key.propertyId}, ${key.day}::date, (SELECT events FROM event_totals),
               COALESCE(sum(r.rejected), 0), COALESCE(jsonb_object_agg(r.reason, r.rejected), '{}')
        FROM (
          SELECT reason, count(*) AS rejected
          FROM ingest_rejections
          WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId}
            AND received_at >= ${bounds.dayStart}::timestamptz AND received_at < ${bounds.dayEnd}::timestamptz
          GROUP BY reason
        ) AS r
      )
      SELECT events FROM event_totals`

  const readFigures = (key: DayKey, bounds: DayBounds) =>
    Effect.map(
      sql<Omit<InvariantFigures, "dayHours">>`
        SELECT
          (SELECT count(*)::int FROM daily_metric_rollups
           WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId} AND day = ${key.day}::date
             AND dimension = 'total' AND dimension_value = '') AS "totalRows",
          COALESCE(t.visitors, 0)::int AS visitors,
          (SELECT count(*)::int FROM daily_visitors
           WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId}
             AND day = ${key.day}::date) AS "dailyVisitorRows",
          COALESCE(t.returning_visitors, 0)::int AS "returningVisitors",
          COALESCE(t.sessions, 0)::int AS sessions,
          (SELECT COALESCE(sum(sessions), 0)::int FROM daily_metric_rollups
           WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId} AND day = ${key.day}::date
             AND dimension = 'source') AS "sourceSessions",
          COALESCE(t.page_views, 0)::int AS "pageViews",
          COALESCE(t.entrances, 0)::int AS entrances,
          COALESCE(t.converting_entrances, 0)::int AS "convertingEntrances"
        FROM (SELECT 1) AS one
        LEFT JOIN daily_metric_rollups t
          ON t.tenant_id = ${key.tenantId} AND t.property_id = ${key.propertyId} AND t.day = ${key.day}::date
         AND t.dimension = 'total' AND t.dimension_value = ''`,
      (rows): InvariantFigures => {
        const row = rows[0]
        const empty = {
          totalRows: 0,
          visitors: 0,
          dailyVisitorRows: 0,
          returningVisitors: 0,
          sessions: 0,
          sourceSessions: 0,
          pageViews: 0,
          entrances: 0,
          convertingEntrances: 0
        }
        return { ...(row ?? empty), dayHours: bounds.hours }
      }
    )

  return { readBounds, deleteDay, insertSessionRows, insertEventRows, readFigures }
}

/**
 * Daily rollups. For one property and one calendar day in the property's
 * time zone, `rollupDay` deletes the day's rows of `daily_metric_rollups`,
 * `daily_ingest_rollups` and `daily_visitors` and computes them again from
 * the raw tables, with the definitions of docs/metrics.md.
 *
 * A day runs in one tenant transaction at REPEATABLE READ, so every
 * statement reads the same snapshot, and events that arrive meanwhile cannot
 * make the totals and the breakdowns disagree. Before the commit the
 * invariants of `invariantViolations` are checked. A violated one is logged
 * and fails the effect with `RollupInvariantViolated`, which rolls the
 * transaction back, so the day keeps its previous rows.
 *
 * Running a day twice on the same data writes identical rows, except
 * `rolled_up_at`. When two rollups of the same day run at the same time,
 * PostgreSQL fails the later one, which then starts again (at most
 * `CONFLICT_RETRIES` times) and writes its rows after the other's.
 */
import { Cause, Context, Data, Effect, Layer } from "effect"
import { BeginTransaction, SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { TenantDb } from "../services/TenantDb.ts"

/** Maximum number of days that `rollupRange` accepts: a little over the 24 months that rollups are kept. */
export const MAX_RANGE_DAYS = 800

const MILLIS_PER_DAY = 86_400_000

/** Attempts after the first when another transaction rolled up the same day at the same time. */
const CONFLICT_RETRIES = 2

export class InvalidRollupDay extends Data.TaggedError("InvalidRollupDay")<{
  readonly message: string
  readonly value: string
}> {}

export class RollupPropertyNotFound extends Data.TaggedError("RollupPropertyNotFound")<{
  readonly message: string
  readonly tenantId: string
  readonly propertyId: string
}> {}

export class RollupInvariantViolated extends Data.TaggedError("RollupInvariantViolated")<{
  readonly message: string
  readonly tenantId: string
  readonly propertyId: string
  readonly day: string
  readonly violations: ReadonlyArray<string>
  readonly figures: InvariantFigures
}> {}

export type RollupError = InvalidRollupDay | RollupPropertyNotFound | RollupInvariantViolated

/** The numbers that the invariants compare, read back from the rows just written. */
export interface InvariantFigures {
  /** Length of the day in the property's time zone. */
  readonly dayHours: number
  /** Rows with `dimension = 'total'` for the day. */
  readonly totalRows: number
  readonly visitors: number
  readonly dailyVisitorRows: number
  readonly returningVisitors: number
  readonly sessions: number
  /** Sum of `sessions` over the day's `source` rows. */
  readonly sourceSessions: number
  readonly pageViews: number
  readonly entrances: number
  readonly convertingEntrances: number
}

export interface DayRollup {
  readonly tenantId: string
  readonly propertyId: string
  readonly day: string
  readonly figures: InvariantFigures
}

export interface RecentRollups {
  /** Days rolled up and committed. */
  readonly rolledUp: number
  /** Days that failed, plus tenants whose properties could not be listed. Each one is logged. */
  readonly failed: number
}

export interface RollupShape {
  /** Recomputes one day (`YYYY-MM-DD`, in the property's time zone) of one property. */
  readonly rollupDay: (
    tenantId: string,
    propertyId: string,
    day: string
  ) => Effect.Effect<DayRollup, RollupError | SqlError>
  /**
   * Recomputes today and yesterday, in each property's own time zone, for
   * every property of every tenant. A day that fails is logged and skipped.
   */
  readonly rollupRecent: (now: Date) => Effect.Effect<RecentRollups, SqlError>
  /**
   * Recomputes the days from `from` to `to`, both included, one transaction
   * per day, and returns the number of days. It stops at the first failing
   * day, and the days before it stay committed.
   */
  readonly rollupRange: (
    tenantId: string,
    propertyId: string,
    from: string,
    to: string
  ) => Effect.Effect<number, RollupError | SqlError>
}

/** Describes each violated invariant. An empty list means that the day may be committed. */
export const invariantViolations = (figures: InvariantFigures): ReadonlyArray<string> => {
  const violations: Array<string> = []
  if (figures.totalRows !== 1) {
    violations.push(`the total row exists ${figures.totalRows} times instead of once`)
  }
  if (!(figures.dayHours >= 23 && figures.dayHours <= 25)) {
    violations.push(`the day lasts ${figures.dayHours} hours instead of 23 to 25`)
  }
  if (figures.visitors !== figures.dailyVisitorRows) {
    violations.push(`visitors (${figures.visitors}) differs from the daily_visitors rows (${figures.dailyVisitorRows})`)
  }
  if (figures.sourceSessions !== figures.sessions) {
    violations.push(`the source rows' sessions (${figures.sourceSessions}) differ from total sessions (${figures.sessions})`)
  }
  if (figures.returningVisitors > figures.visitors) {
    violations.push(`returning_visitors (${figures.returningVisitors}) exceeds visitors (${figures.visitors})`)
  }
  if (figures.entrances > figures.pageViews) {
    violations.push(`entrances (${figures.entrances}) exceeds page_views (${figures.pageViews})`)
  }
  if (figures.convertingEntrances > figures.entrances) {
    violations.push(`converting_entrances (${figures.convertingEntrances}) exceeds entrances (${figures.entrances})`)
  }
  return violations
}

/** Parses a `YYYY-MM-DD` calendar date into its UTC midnight in milliseconds, or undefined when it is no such date. */
export const parseDay = (value: string): number | undefined => {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return undefined
  const millis = Date.parse(`${value}T00:00:00Z`)
  if (Number.isNaN(millis) || new Date(millis).toISOString().slice(0, 10) !== value) return undefined
  return millis
}

const formatDay = (millis: number) => new Date(millis).toISOString().slice(0, 10)

/**
 * The failures that a concurrent rollup of the same day causes: its commit
 * makes this transaction's DELETE a serialization failure, its new rows make
 * this transaction's INSERT a duplicate key, or the two wait for each
 * other's rows (a deadlock). A new transaction, with a new snapshot, then
 * succeeds.
 */
const isConcurrentRollup = (error: RollupError | SqlError) =>
  error._tag === "SqlError" &&
  (error.reason._tag === "SerializationError" || error.reason._tag === "UniqueViolation" ||
    error.reason._tag === "DeadlockError")

/** Start and end of the day as timestamptz text, computed by PostgreSQL from the property's time zone. */
interface DayBounds {
  readonly dayStart: string
  readonly dayEnd: string
  readonly hours: number
}

/** The ids every statement of a day's rollup filters on. */
interface DayKey {
  readonly tenantId: string
  readonly propertyId: string
  readonly day: string
}

export class Rollup extends Context.Service<Rollup, RollupShape>()("porchlight/jobs/Rollup") {
  static readonly layer = Layer.effect(
    Rollup,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const tenants = yield* TenantDb

      // Local midnight of the day and of the next day, so that a day across
      // a daylight saving change lasts 23 or 25 hours. A local midnight that
      // the zone skips is read with the offset in force before the change.
      const readBounds = (key: DayKey) =>
        Effect.gen(function*() {
          const rows = yield* sql<DayBounds>`
            SELECT b.day_start::text AS "dayStart", b.day_end::text AS "dayEnd",
                   (extract(epoch FROM b.day_end - b.day_start) / 3600)::float8 AS hours
            FROM properties p,
                 LATERAL (SELECT ${key.day}::date::timestamp AT TIME ZONE p.timezone AS day_start,
                                 (${key.day}::date + 1)::timestamp AT TIME ZONE p.timezone AS day_end) AS b
            WHERE p.id = ${key.propertyId}`
          const bounds = rows[0]
          if (bounds === undefined) {
            return yield* Effect.fail(
              new RollupPropertyNotFound({
                message: `property ${key.propertyId} not found in tenant ${key.tenantId}`,
                tenantId: key.tenantId,
                propertyId: key.propertyId
              })
            )
          }
          return bounds
        })

      const deleteDay = (key: DayKey) =>
        Effect.all([
          sql`DELETE FROM daily_metric_rollups
              WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId} AND day = ${key.day}::date`,
          sql`DELETE FROM daily_ingest_rollups
              WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId} AND day = ${key.day}::date`,
          sql`DELETE FROM daily_visitors
              WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId} AND day = ${key.day}::date`
        ], { discard: true })

      /** Filters the property's events received during the day, bots included, as `e`. */
      const dayEvents = (key: DayKey, bounds: DayBounds) =>
        sql`e.tenant_id = ${key.tenantId} AND e.property_id = ${key.propertyId}
            AND e."timestamp" >= ${bounds.dayStart}::timestamptz AND e."timestamp" < ${bounds.dayEnd}::timestamptz`

      /** Filters the sessions that count, as `s`: started during the day, not a bot's, with a page view. */
      const daySessions = (key: DayKey, bounds: DayBounds) =>
        sql`s.tenant_id = ${key.tenantId} AND s.property_id = ${key.propertyId}
            AND s.started_at >= ${bounds.dayStart}::timestamptz AND s.started_at < ${bounds.dayEnd}::timestamptz
            AND s.device_type <> 'bot' AND s.page_views > 0`

      const insertVisitors = (key: DayKey, bounds: DayBounds) =>
        sql`
          INSERT INTO daily_visitors (tenant_id, property_id, day, visitor_id, "returning")
          SELECT v.tenant_id, ${key.propertyId}, ${key.day}::date, v.id, v.first_seen_at < ${bounds.dayStart}::timestamptz
          FROM (SELECT DISTINCT e.visitor_id FROM events e WHERE ${dayEvents(key, bounds)} AND e.device_type <> 'bot') AS d
          JOIN visitors v ON v.tenant_id = ${key.tenantId} AND v.id = d.visitor_id`

      // `visitors` is counted from the events, independently of the
      // daily_visitors rows, so that the invariant comparing them can fail.
      // Aggregates without GROUP BY return one row even for an empty day.
      const insertTotal = (key: DayKey, bounds: DayBounds) =>
        sql`
          WITH counted_events AS (
            SELECT count(*) AS events,
                   count(*) FILTER (WHERE e.device_type = 'bot') AS bot_events,
                   count(*) FILTER (WHERE e.device_type <> 'bot' AND e.event_type = 'form_start') AS form_starts,
                   count(*) FILTER (WHERE e.device_type <> 'bot' AND e.event_type = 'form_submit') AS form_submits,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY
                     CASE WHEN e.device_type <> 'bot' AND jsonb_typeof(e.props -> 'ttfbMs') = 'number'
                          THEN (e.props -> 'ttfbMs')::float8 END) AS ttfb_p95_ms
            FROM events e
            WHERE ${dayEvents(key, bounds)}
          ),
          -- The path rows, written just before, hold every page view of the
          -- day once, so their sums are the day's; this saves a second join
          -- of the day's events with their sessions.
          counted_page_views AS (
            SELECT COALESCE(sum(p.page_views), 0) AS page_views, COALESCE(sum(p.entrances), 0) AS entrances,
                   COALESCE(sum(p.converting_entrances), 0) AS converting_entrances
            FROM daily_metric_rollups p
            WHERE p.tenant_id = ${key.tenantId} AND p.property_id = ${key.propertyId} AND p.day = ${key.day}::date
              AND p.dimension = 'path'
          ),
          counted_visitors AS (
            SELECT count(*) AS visitors
            FROM (SELECT DISTINCT e.visitor_id FROM events e WHERE ${dayEvents(key, bounds)} AND e.device_type <> 'bot') AS d
          ),
          counted_sessions AS (
            SELECT count(*) AS sessions,
                   count(*) FILTER (WHERE s.is_conversion) AS conversions,
                   count(*) FILTER (WHERE s.traffic_source = 'referral') AS referral_sessions,
                   count(*) FILTER (WHERE s.traffic_source = 'referral' AND s.is_conversion) AS referral_conversions
            FROM sessions s
            WHERE ${daySessions(key, bounds)}
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
          returning_visitors AS (
            SELECT count(*) AS returning_visitors
            FROM daily_visitors d
            WHERE d.tenant_id = ${key.tenantId} AND d.property_id = ${key.propertyId}
              AND d.day = ${key.day}::date AND d."returning"
          )
          INSERT INTO daily_metric_rollups (
            tenant_id, property_id, day, dimension, dimension_value, visitors, returning_visitors, sessions,
            page_views, entrances, converting_entrances, conversions, form_starts, form_submits, new_leads,
            bot_events, events, ttfb_p95_ms, time_to_first_capture_median_s, metrics)
          SELECT ${key.tenantId}, ${key.propertyId}, ${key.day}::date, 'total', '', v.visitors, r.returning_visitors,
                 s.sessions, p.page_views, p.entrances, p.converting_entrances, s.conversions, e.form_starts,
                 e.form_submits, l.new_leads, e.bot_events, e.events, e.ttfb_p95_ms,
                 l.time_to_first_capture_median_s,
                 jsonb_build_object('referral_sessions', s.referral_sessions,
                                    'referral_conversions', s.referral_conversions)
          FROM counted_events e, counted_page_views p, counted_visitors v, counted_sessions s, new_leads l,
               returning_visitors r`

      // Distinct visitors per row are counted in two hashed steps, per
      // (row, visitor) and then per row, because count(DISTINCT) sorts its
      // whole input and took most of the time of these statements. Only
      // entrances are joined to their session, for its conversion flag.
      const insertPaths = (key: DayKey, bounds: DayBounds) =>
        sql`
          INSERT INTO daily_metric_rollups (
            tenant_id, property_id, day, dimension, dimension_value, visitors, page_views, entrances,
            converting_entrances)
          SELECT ${key.tenantId}, ${key.propertyId}, ${key.day}::date, 'path', v.path,
                 count(*), sum(v.page_views), sum(v.entrances), sum(v.converting_entrances)
          FROM (
            SELECT e.path, e.visitor_id, count(*) AS page_views,
                   count(*) FILTER (WHERE e.is_entrance) AS entrances,
                   count(*) FILTER (WHERE e.is_entrance AND entrance_session.is_conversion) AS converting_entrances
            FROM events e
            LEFT JOIN sessions entrance_session
              ON e.is_entrance AND entrance_session.tenant_id = e.tenant_id AND entrance_session.id = e.session_id
            WHERE ${dayEvents(key, bounds)} AND e.device_type <> 'bot' AND e.event_type = 'page_view'
            GROUP BY e.path, e.visitor_id
          ) AS v
          GROUP BY v.path`

      // Every counted session lands in one row of each session dimension it
      // has a value for. Keyword rows carry no visitors (docs/metrics.md).
      const insertSessionBreakdowns = (key: DayKey, bounds: DayBounds) =>
        sql`
          INSERT INTO daily_metric_rollups (
            tenant_id, property_id, day, dimension, dimension_value, sessions, conversions, visitors)
          SELECT ${key.tenantId}, ${key.propertyId}, ${key.day}::date, v.dimension, v.value,
                 sum(v.sessions), sum(v.conversions),
                 CASE WHEN v.dimension = 'keyword' THEN 0 ELSE count(*) END
          FROM (
            SELECT d.dimension, d.value, s.visitor_id, count(*) AS sessions,
                   count(*) FILTER (WHERE d.counts_conversions AND s.is_conversion) AS conversions
            FROM sessions s
            CROSS JOIN LATERAL (VALUES
              ('source', s.traffic_source::text, true),
              ('referrer', CASE WHEN s.traffic_source <> 'internal' THEN s.referrer_domain END, true),
              ('keyword', NULLIF(s.utm_term, ''), true),
              ('country', COALESCE(s.country_code::text, ''), false),
              ('device', s.device_type::text, false)
            ) AS d(dimension, value, counts_conversions)
            WHERE ${daySessions(key, bounds)} AND d.value IS NOT NULL
            GROUP BY d.dimension, d.value, s.visitor_id
          ) AS v
          GROUP BY v.dimension, v.value`

      const insertIngest = (key: DayKey, bounds: DayBounds) =>
        sql`
          INSERT INTO daily_ingest_rollups (tenant_id, property_id, day, accepted, rejected, rejected_by_reason)
          SELECT ${key.tenantId}, ${key.propertyId}, ${key.day}::date,
                 (SELECT count(*) FROM events e WHERE ${dayEvents(key, bounds)}),
                 COALESCE(sum(r.rejected), 0),
                 COALESCE(jsonb_object_agg(r.reason, r.rejected), '{}')
          FROM (
            SELECT reason, count(*) AS rejected
            FROM ingest_rejections
            WHERE tenant_id = ${key.tenantId} AND property_id = ${key.propertyId}
              AND received_at >= ${bounds.dayStart}::timestamptz AND received_at < ${bounds.dayEnd}::timestamptz
            GROUP BY reason
          ) AS r`

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

      const checkInvariants = (key: DayKey, figures: InvariantFigures) =>
        Effect.gen(function*() {
          const violations = invariantViolations(figures)
          if (violations.length === 0) return
          yield* Effect.logError("daily rollup invariant violated; the day is rolled back").pipe(
            Effect.annotateLogs({ violations, ...figures })
          )
          return yield* Effect.fail(
            new RollupInvariantViolated({
              message: `rollup of ${key.day} for property ${key.propertyId} violates: ${violations.join("; ")}`,
              ...key,
              violations,
              figures
            })
          )
        })

      const writeDay = (key: DayKey) =>
        Effect.gen(function*() {
          // The client keeps prepared statements per connection, and after
          // five runs PostgreSQL may switch a statement to a generic plan,
          // chosen without the day's bounds and property. In
          // test/rollup.test.ts such plans made the suite take 134 s instead
          // of 14 s, so every statement here is planned for its own values.
          yield* sql`SET LOCAL plan_cache_mode = force_custom_plan`
          // The hash aggregates of the path and breakdown rows took about
          // 60 MB for a day of 1,000,000 events in bench/rollup.ts. With the
          // default 4 MB they spill to disk, and the day takes longer.
          yield* sql`SET LOCAL work_mem = '64MB'`
          const bounds = yield* readBounds(key)
          yield* deleteDay(key)
          yield* insertVisitors(key, bounds)
          yield* insertPaths(key, bounds)
          yield* insertTotal(key, bounds)
          yield* insertSessionBreakdowns(key, bounds)
          yield* insertIngest(key, bounds)
          const figures = yield* readFigures(key, bounds)
          yield* checkInvariants(key, figures)
          return { ...key, figures }
        })

      const rollupDay = (tenantId: string, propertyId: string, day: string) =>
        Effect.gen(function*() {
          if (parseDay(day) === undefined) {
            return yield* Effect.fail(
              new InvalidRollupDay({ message: `invalid day ${JSON.stringify(day)}; expected YYYY-MM-DD`, value: day })
            )
          }
          return yield* tenants.withTenant(tenantId, writeDay({ tenantId, propertyId, day })).pipe(
            Effect.provideService(BeginTransaction, "BEGIN ISOLATION LEVEL REPEATABLE READ"),
            Effect.retry({ times: CONFLICT_RETRIES, while: isConcurrentRollup })
          )
        }).pipe(Effect.annotateLogs({ service: "rollup", tenantId, propertyId, day }))

      /** Runs `effect` and returns whether it succeeded. A failure other than an interruption is logged. */
      const attempt = <A, E>(effect: Effect.Effect<A, E>, message: string, ids: Record<string, string>) =>
        effect.pipe(
          Effect.as(true),
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause)
              ? Effect.interrupt
              : Effect.as(Effect.logError(message, cause).pipe(Effect.annotateLogs(ids)), false)
          )
        )

      // The local dates come from PostgreSQL's time zone data, the same data
      // that sets the day bounds. No tenant table is read here.
      const localDays = (now: Date, timezone: string) =>
        Effect.flatMap(
          sql<{ readonly today: string; readonly yesterday: string }>`
            SELECT to_char(d.today, 'YYYY-MM-DD') AS today, to_char(d.today - 1, 'YYYY-MM-DD') AS yesterday
            FROM (SELECT (${now}::timestamptz AT TIME ZONE ${timezone})::date AS today) AS d`,
          (rows) => rows[0] === undefined ? Effect.die("the local date query returned no row") : Effect.succeed(rows[0])
        )

      const rollupProperty = (tenantId: string, propertyId: string, timezone: string, now: Date) =>
        Effect.gen(function*() {
          const ids = { service: "rollup", tenantId, propertyId }
          const days = yield* Effect.result(localDays(now, timezone))
          if (days._tag === "Failure") {
            yield* Effect.logError("daily rollup skipped: the local date could not be computed", days.failure).pipe(
              Effect.annotateLogs({ ...ids, timezone })
            )
            return { rolledUp: 0, failed: 2 }
          }
          let rolledUp = 0
          let failed = 0
          for (const day of [days.success.yesterday, days.success.today]) {
            const ok = yield* attempt(rollupDay(tenantId, propertyId, day), "daily rollup failed", { ...ids, day })
            if (ok) rolledUp++
            else failed++
          }
          return { rolledUp, failed }
        })

      const rollupRecent = (now: Date) =>
        Effect.gen(function*() {
          const tenantRows = yield* sql<{ readonly id: string }>`SELECT id FROM porchlight_tenant_ids() AS t(id)`
          let rolledUp = 0
          let failed = 0
          for (const { id: tenantId } of tenantRows) {
            const listed = yield* Effect.result(
              tenants.withTenant(
                tenantId,
                sql<{ readonly id: string; readonly timezone: string }>`SELECT id, timezone FROM properties ORDER BY id`
              )
            )
            if (listed._tag === "Failure") {
              yield* Effect.logError("daily rollup skipped a tenant: its properties could not be listed", listed.failure)
                .pipe(Effect.annotateLogs({ service: "rollup", tenantId }))
              failed++
              continue
            }
            for (const property of listed.success) {
              const outcome = yield* rollupProperty(tenantId, property.id, property.timezone, now)
              rolledUp += outcome.rolledUp
              failed += outcome.failed
            }
          }
          yield* Effect.logInfo("recent days rolled up").pipe(
            Effect.annotateLogs({ service: "rollup", rolledUp, failed })
          )
          return { rolledUp, failed }
        })

      const rollupRange = (tenantId: string, propertyId: string, from: string, to: string) =>
        Effect.gen(function*() {
          const first = parseDay(from)
          const last = parseDay(to)
          if (first === undefined || last === undefined) {
            const value = first === undefined ? from : to
            return yield* Effect.fail(
              new InvalidRollupDay({ message: `invalid day ${JSON.stringify(value)}; expected YYYY-MM-DD`, value })
            )
          }
          const count = (last - first) / MILLIS_PER_DAY + 1
          if (count < 1 || count > MAX_RANGE_DAYS) {
            return yield* Effect.fail(
              new InvalidRollupDay({
                message: `invalid range ${from} to ${to}; it must run forward and span at most ${MAX_RANGE_DAYS} days`,
                value: `${from}..${to}`
              })
            )
          }
          for (let index = 0; index < count; index++) {
            yield* rollupDay(tenantId, propertyId, formatDay(first + index * MILLIS_PER_DAY))
          }
          return count
        })

      return Rollup.of({ rollupDay, rollupRecent, rollupRange })
    })
  )
}

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
import { type DayKey, makeDayStatements } from "./RollupStatements.ts"

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

export class Rollup extends Context.Service<Rollup, RollupShape>()("porchlight/jobs/Rollup") {
  static readonly layer = Layer.effect(
    Rollup,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const tenants = yield* TenantDb

      const statements = makeDayStatements(sql)

      const readBounds = (key: DayKey) =>
        Effect.flatMap(statements.readBounds(key), (bounds) =>
          bounds === undefined
            ? Effect.fail(
              new RollupPropertyNotFound({
                message: `property ${key.propertyId} not found in tenant ${key.tenantId}`,
                tenantId: key.tenantId,
                propertyId: key.propertyId
              })
            )
            : Effect.succeed(bounds))

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
          // The events pass of a day of 334,627 events in bench/rollup.ts
          // builds a 50 MB hash aggregate and 30 MB of materialized rows.
          // This limit keeps days up to about four times that size in
          // memory, and larger ones spill to disk and take longer.
          yield* sql`SET LOCAL work_mem = '128MB'`
          const bounds = yield* readBounds(key)
          yield* statements.deleteDay(key)
          const sessions = yield* statements.insertSessionRows(key, bounds)
          yield* statements.insertEventRows(key, bounds, sessions)
          const figures = yield* statements.readFigures(key, bounds)
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

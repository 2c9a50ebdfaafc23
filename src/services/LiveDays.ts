/**
 * Keeps today's rollup current for the metrics API: before a response that
 * reaches today in a property's zone, today's rows are recomputed from the
 * raw events when they are older than REFRESH_AFTER_MS. Past days are left
 * to the scheduled rollup job.
 */
import { Clock, Context, Effect, Layer, Semaphore } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { Rollup } from "../jobs/Rollup.ts"
import type { DayRange } from "./Metrics.ts"
import type { Property } from "./Properties.ts"
import { TenantDb } from "./TenantDb.ts"

/** Today's numbers are at most this old in a metrics response. */
export const REFRESH_AFTER_MS = 60_000

export interface LiveDaysShape {
  readonly refreshToday: (
    tenantId: string,
    properties: ReadonlyArray<Property>,
    range: DayRange
  ) => Effect.Effect<void>
}

export class LiveDays extends Context.Service<LiveDays, LiveDaysShape>()("porchlight/services/LiveDays") {
  static readonly layer = Layer.effect(
    LiveDays,
    Effect.gen(function*() {
      const rollup = yield* Rollup
      const sql = yield* SqlClient
      const tenants = yield* TenantDb
      // One refresh at a time in this process; the rollup's own lock keeps
      // other processes out of the same day.
      const gate = yield* Semaphore.make(1)

      const refreshOne = (tenantId: string, property: Property, now: number) =>
        Effect.gen(function*() {
          const today = dayIn(property.timezone, now)
          const rows = yield* tenants.withTenant(tenantId, sql<{ rolledUpAt: Date }>`
            SELECT rolled_up_at AS "rolledUpAt" FROM daily_metric_rollups
            WHERE property_id = ${property.id} AND day = ${today}::date AND dimension = 'total'`)
          const rolledUpAt = rows[0]?.rolledUpAt.getTime()
          if (rolledUpAt !== undefined && now - rolledUpAt < REFRESH_AFTER_MS) return
          yield* rollup.rollupDay(tenantId, property.id, today)
        }).pipe(
          // Stale numbers are better than none: the response still goes out.
          Effect.catchCause((cause) =>
            Effect.logWarning("today's rollup refresh failed", cause).pipe(
              Effect.annotateLogs({ tenantId, propertyId: property.id })
            ))
        )

      const refreshToday = (tenantId: string, properties: ReadonlyArray<Property>, range: DayRange) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const reaching = properties.filter((property) => {
            const today = dayIn(property.timezone, now)
            return range.from <= today && today <= range.to
          })
          if (reaching.length === 0) return
          yield* gate.withPermits(1)(Effect.forEach(reaching, (property) => refreshOne(tenantId, property, now), {
            discard: true
          }))
        })

      return LiveDays.of({ refreshToday })
    }).pipe(Effect.annotateLogs("service", "live-days"))
  )
}

/** The calendar day (YYYY-MM-DD) of `now` in `timezone`. */
export const dayIn = (timezone: string, now: number) =>
  new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date(now))

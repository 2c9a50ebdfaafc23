/**
 * Expiry of implied consent. Under CASL, an inquiry gives implied consent
 * for six months. After that the lead may no longer be messaged unless it
 * gives express consent. For every lead with `consent_status = 'implied'`,
 * no `consent_expired_at`, and an `implied_consent_at` more than six calendar
 * months (UTC) before `now`, this sets `consent_expired_at = now` and records
 * a consent event with status `implied` and source `implied_consent_expired`.
 * `consent_status` stays `implied`, because the record of how consent was
 * obtained does not change; `consent_expired_at` is what stops messaging.
 *
 * It runs per tenant, through `TenantDb.withTenant`, in batches of at most
 * `BATCH_SIZE` leads, each batch its own transaction. It is idempotent: an
 * expired lead no longer matches, so a second run with the same `now`
 * changes nothing. The schedule that calls it lives elsewhere.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { TenantDb } from "./TenantDb.ts"

export const BATCH_SIZE = 1_000
/** Upper bound of batches per tenant in one run (ten million leads). The next run takes the rest. */
export const MAX_BATCHES_PER_TENANT = 10_000

export const EXPIRY_SOURCE = "implied_consent_expired"
export const EXPIRY_PURPOSE = "Implied consent from an inquiry ran out six months after the inquiry."

export interface TenantExpiryCount {
  readonly tenantId: string
  readonly expired: number
}

export interface ConsentExpiryShape {
  /** Expires implied consent older than six months before `now` and returns the count for every tenant. */
  readonly run: (now: Date) => Effect.Effect<ReadonlyArray<TenantExpiryCount>, SqlError>
}

export class ConsentExpiry extends Context.Service<ConsentExpiry, ConsentExpiryShape>()(
  "porchlight/services/ConsentExpiry"
) {
  static readonly layer = Layer.effect(
    ConsentExpiry,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const tenants = yield* TenantDb

      // SKIP LOCKED leaves a lead that a capture is updating right now (it
      // may be turning into express consent) to the next run. Fewer rows
      // than BATCH_SIZE therefore means that no unlocked lead is due.
      const expireBatch = (tenantId: string, now: Date) =>
        tenants.withTenant(
          tenantId,
          sql<{ readonly n: number }>`
            WITH due AS (
              SELECT id FROM leads
              WHERE consent_status = 'implied' AND consent_expired_at IS NULL
                AND implied_consent_at < ((${now}::timestamptz AT TIME ZONE 'UTC') - interval '6 months')
                                         AT TIME ZONE 'UTC'
              ORDER BY implied_consent_at, id
              LIMIT ${BATCH_SIZE}
              FOR UPDATE SKIP LOCKED
            ), expired AS (
              UPDATE leads SET consent_expired_at = ${now}
              FROM due WHERE leads.id = due.id
              RETURNING leads.tenant_id, leads.id
            ), recorded AS (
              INSERT INTO consent_events (tenant_id, lead_id, status, source, purpose, "timestamp")
              SELECT tenant_id, id, 'implied', ${EXPIRY_SOURCE}, ${EXPIRY_PURPOSE}, ${now} FROM expired
              RETURNING 1
            )
            SELECT count(*)::int AS n FROM recorded`
        ).pipe(Effect.map((rows) => rows[0]?.n ?? 0))

      const expireTenant = (tenantId: string, now: Date) =>
        Effect.gen(function*() {
          let expired = 0
          for (let batch = 0; batch < MAX_BATCHES_PER_TENANT; batch++) {
            const count = yield* expireBatch(tenantId, now)
            expired += count
            if (count < BATCH_SIZE) return expired
          }
          yield* Effect.logWarning("consent expiry stopped at the batch limit; the next run continues").pipe(
            Effect.annotateLogs({ tenantId, expired, maxBatches: MAX_BATCHES_PER_TENANT })
          )
          return expired
        })

      const run = (now: Date) =>
        Effect.gen(function*() {
          const tenantIds = yield* sql<{ readonly id: string }>`SELECT id FROM porchlight_tenant_ids() AS t(id)`
          const counts: Array<TenantExpiryCount> = []
          for (const { id } of tenantIds) {
            const expired = yield* expireTenant(id, now)
            if (expired > 0) {
              yield* Effect.logInfo("implied consent expired").pipe(Effect.annotateLogs({ tenantId: id, expired }))
            }
            counts.push({ tenantId: id, expired })
          }
          return counts
        }).pipe(Effect.annotateLogs("service", "consent-expiry"))

      return ConsentExpiry.of({ run })
    })
  )
}

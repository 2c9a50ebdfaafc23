/**
 * Withdrawal of a lead's consent, from an unsubscribe link (a signed token,
 * see `UnsubscribeTokens`) or from an admin request naming the email
 * address. Withdrawal takes effect at once: the lead's `consent_status`
 * becomes `withdrawn`, `withdrawn_at` is set, and one `consent_events` row
 * records it, in one transaction.
 *
 * It is idempotent: a lead that has already withdrawn is left as it is, no
 * second consent event is written, and the stored withdrawal time is
 * returned again. Concurrent requests for one lead serialise on the lead's
 * row lock, so exactly one of them records the event.
 */
import { Clock, Context, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { TenantDb } from "./TenantDb.ts"
import { type InvalidUnsubscribeToken, UnsubscribeTokens } from "./UnsubscribeTokens.ts"

/** `consent_events.source` of a withdrawal. */
export type WithdrawalSource = "unsubscribe_link" | "admin"

export interface Withdrawal {
  readonly leadId: string
  /** When consent was withdrawn: this request's time, or the earlier one for a repeat. */
  readonly withdrawnAt: Date | null
  /** False when the lead had already withdrawn and nothing was written. */
  readonly changed: boolean
}

export class LeadNotFound extends Schema.TaggedError<LeadNotFound>()("LeadNotFound", {}) {}

/** The lead exists, but not in the property that the admin key is limited to. */
export class LeadOutsideKeyProperty extends Schema.TaggedError<LeadOutsideKeyProperty>()(
  "LeadOutsideKeyProperty",
  {}
) {}

export interface UnsubscribeShape {
  /**
   * Withdraws the consent of the lead that `token` names. Returns undefined
   * when the token is valid but its lead no longer exists (it was erased):
   * there is nobody left to message, so callers report success.
   * `ipHashHex` is the keyed hash of the request's address, when known.
   */
  readonly byToken: (
    token: string,
    ipHashHex: string | null
  ) => Effect.Effect<Withdrawal | undefined, InvalidUnsubscribeToken>
  /**
   * Withdraws the consent of the tenant's lead with this normalized email.
   * With `propertyId` (an admin key limited to one property) the lead must
   * have been captured on that property.
   */
  readonly byEmail: (
    tenantId: string,
    propertyId: string | null,
    emailNormalized: string,
    ipHashHex: string | null
  ) => Effect.Effect<Withdrawal, LeadNotFound | LeadOutsideKeyProperty>
}

export class Unsubscribe extends Context.Service<Unsubscribe, UnsubscribeShape>()(
  "porchlight/services/Unsubscribe"
) {
  static readonly layer = Layer.effect(
    Unsubscribe,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const tenants = yield* TenantDb
      const tokens = yield* UnsubscribeTokens

      /** Runs inside the tenant's transaction. */
      const withdraw = (leadId: string, source: WithdrawalSource, ipHashHex: string | null) =>
        Effect.gen(function*() {
          const now = new Date(yield* Clock.currentTimeMillis)
          const changed = yield* sql<{ readonly withdrawnAt: Date }>`
            WITH changed AS (
              UPDATE leads SET consent_status = 'withdrawn', withdrawn_at = ${now}
              WHERE id = ${leadId} AND consent_status <> 'withdrawn'
              RETURNING tenant_id, id, withdrawn_at
            ), recorded AS (
              INSERT INTO consent_events (tenant_id, lead_id, status, source, "timestamp", ip_hash)
              SELECT tenant_id, id, 'withdrawn', ${source}, ${now}, decode(${ipHashHex}, 'hex') FROM changed
            )
            SELECT withdrawn_at AS "withdrawnAt" FROM changed`
          const first = changed[0]
          if (first !== undefined) return { leadId, withdrawnAt: first.withdrawnAt, changed: true }
          const current = yield* sql<{ readonly withdrawnAt: Date | null }>`
            SELECT withdrawn_at AS "withdrawnAt" FROM leads WHERE id = ${leadId}`
          const lead = current[0]
          return lead === undefined ? undefined : { leadId, withdrawnAt: lead.withdrawnAt, changed: false }
        })

      const byToken = (token: string, ipHashHex: string | null) =>
        Effect.gen(function*() {
          const target = yield* tokens.verify(token)
          const withdrawal = yield* tenants.withTenant(
            target.tenantId,
            withdraw(target.leadId, "unsubscribe_link", ipHashHex)
          ).pipe(Effect.orDie)
          yield* logWithdrawal(target.tenantId, target.leadId, "unsubscribe_link", withdrawal)
          return withdrawal
        })

      const byEmail = (tenantId: string, propertyId: string | null, emailNormalized: string, ipHashHex: string | null) =>
        Effect.gen(function*() {
          const withdrawal = yield* tenants.withTenant(
            tenantId,
            Effect.gen(function*() {
              const leads = yield* sql<{ readonly id: string; readonly propertyId: string | null }>`
                SELECT id, property_id AS "propertyId" FROM leads WHERE email_normalized = ${emailNormalized}`
              const lead = leads[0]
              if (lead === undefined) return yield* new LeadNotFound()
              if (propertyId !== null && lead.propertyId !== propertyId) return yield* new LeadOutsideKeyProperty()
              const withdrawal = yield* withdraw(lead.id, "admin", ipHashHex)
              // An erasure that commits between the two statements leaves no lead.
              return withdrawal ?? (yield* new LeadNotFound())
            })
          ).pipe(Effect.catchTag("SqlError", Effect.die))
          yield* logWithdrawal(tenantId, withdrawal.leadId, "admin", withdrawal)
          return withdrawal
        })

      return Unsubscribe.of({ byToken, byEmail })
    })
  )
}

const logWithdrawal = (
  tenantId: string,
  leadId: string,
  source: WithdrawalSource,
  withdrawal: Withdrawal | undefined
) =>
  Effect.logInfo(
    withdrawal === undefined
      ? "unsubscribe for a lead that no longer exists"
      : withdrawal.changed
      ? "consent withdrawn"
      : "consent already withdrawn"
  ).pipe(Effect.annotateLogs({ service: "unsubscribe", tenantId, leadId, source }))

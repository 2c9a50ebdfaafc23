/**
 * Tenant-scoped database work. `withTenant` runs an effect in a transaction
 * that first sets `porchlight.tenant_id` for that transaction only
 * (`set_config(..., true)`), so the row-level security policies admit that
 * tenant's rows and no others, and the setting cannot leak to the next user
 * of the pooled connection. Tenant tables queried outside `withTenant` raise
 * an error in PostgreSQL (see the row-level security migration).
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"

export interface TenantDbShape {
  readonly withTenant: <A, E, R>(tenantId: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
}

export class TenantDb extends Context.Service<TenantDb, TenantDbShape>()("porchlight/services/TenantDb") {
  static readonly layer = Layer.effect(
    TenantDb,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const withTenant = <A, E, R>(tenantId: string, effect: Effect.Effect<A, E, R>) =>
        sql.withTransaction(
          Effect.andThen(sql`SELECT set_config('porchlight.tenant_id', ${tenantId}, true)`, effect)
        ).pipe(Effect.annotateLogs("tenantId", tenantId))
      return TenantDb.of({ withTenant })
    })
  )
}

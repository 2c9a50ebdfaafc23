/**
 * A migrated test database with the application role enabled, and the
 * layers that connect to it as that role, the way the service does.
 */
import { PgClient } from "@effect/sql-pg"
import { Duration, Layer, Redacted } from "effect"
import { Effect } from "effect"
import { enableAppRole } from "../../src/services/AppRole.ts"
import { runMigrations } from "../../src/services/Migrations.ts"
import { TenantDb } from "../../src/services/TenantDb.ts"
import { createTestDatabase, type TestDatabase } from "./testDatabase.ts"

/** The pepper every test uses, so all suites derive the same app-role password. */
export const TEST_PEPPER = "test-pepper-0123456789abcdefghijklmnopqrstuvwxyz"

export interface AppDatabase extends TestDatabase {
  readonly appUrl: Redacted.Redacted<URL>
}

export const createAppDatabase = async (): Promise<AppDatabase> => {
  const database = await createTestDatabase()
  await Effect.runPromise(runMigrations(database.url))
  const appUrl = await Effect.runPromise(enableAppRole(database.url, Redacted.make(TEST_PEPPER)))
  return { ...database, appUrl }
}

/** Builds the SQL pool as the application role, with `TenantDb` on top. */
export const appSqlLayer = (database: AppDatabase, maxConnections = 10) => {
  const Sql = PgClient.layer({
    url: Redacted.make(Redacted.value(database.appUrl).href),
    maxConnections,
    connectTimeout: Duration.seconds(5)
  })
  return TenantDb.layer.pipe(Layer.provideMerge(Sql))
}

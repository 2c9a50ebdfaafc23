import { Effect, ManagedRuntime, Redacted } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TenantDb } from "../src/services/TenantDb.ts"
import { type AppDatabase, appSqlLayer, createAppDatabase } from "./support/appDatabase.ts"
import { craftedInsert, type SeededTenant, seedTenant, TENANT_TABLES } from "./support/seed.ts"

let database: AppDatabase
let runtime: ManagedRuntime.ManagedRuntime<TenantDb | SqlClient, unknown>
let tenantA: SeededTenant
let tenantB: SeededTenant

beforeAll(async () => {
  database = await createAppDatabase()
  const seeded = await Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.all([seedTenant(client, "alpha"), seedTenant(client, "bravo")])))
  tenantA = seeded[0]
  tenantB = seeded[1]
  runtime = ManagedRuntime.make(appSqlLayer(database))
})

afterAll(async () => {
  await runtime?.dispose()
})

/** Collects the messages and SQLSTATE codes along an error's cause chain. */
const describeFailure = (error: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    if ("message" in current && typeof current.message === "string") parts.push(current.message)
    if ("code" in current && typeof current.code === "string") parts.push(current.code)
    current = "reason" in current && typeof current.reason === "object" ? current.reason
      : "cause" in current ? current.cause
      : undefined
  }
  return parts.join(" | ")
}

/** Runs `statement` as the application role inside `tenant`'s transaction. */
const asTenant = <A>(tenant: SeededTenant, statement: (sql: SqlClient) => Effect.Effect<A, unknown>) =>
  runtime.runPromise(Effect.gen(function*() {
    const sql = yield* SqlClient
    const tenants = yield* TenantDb
    return yield* tenants.withTenant(tenant.tenantId, statement(sql))
  }))

const ownerCount = async (table: string, tenantId: string) => {
  const result = await Effect.runPromise(withOwnerClient(database.url, (client) =>
    ownerQuery(client, `SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`, [tenantId])))
  return Number(result.rows[0]?.["n"])
}

describe("row-level security", () => {
  it.each(TENANT_TABLES)("%s: tenant B reads none of tenant A's rows", async (table) => {
    const seen = await asTenant(tenantB, (sql) =>
      sql<{ tenantId: string }>`SELECT tenant_id AS "tenantId" FROM ${sql(table)}`)

    expect(seen.length).toBeGreaterThan(0)
    expect(seen.every((row) => row.tenantId === tenantB.tenantId)).toBe(true)
  })

  it.each(TENANT_TABLES)("%s: tenant B updates and deletes none of tenant A's rows", async (table) => {
    const before = await ownerCount(table, tenantA.tenantId)
    const touchColumn = table === "tenants" ? "name" : "tenant_id"

    const updated = await asTenant(tenantB, (sql) =>
      sql.unsafe(`UPDATE ${table} SET ${touchColumn} = ${touchColumn} WHERE tenant_id = $1 RETURNING 1`, [
        tenantA.tenantId
      ]))
    // The application role may not delete tenants at all.
    const deleted = await asTenant(tenantB, (sql) =>
      sql.unsafe(`DELETE FROM ${table} WHERE tenant_id = $1 RETURNING 1`, [tenantA.tenantId])).then(
        (rows) => rows.length,
        describeFailure
      )

    expect(updated).toHaveLength(0)
    if (table === "tenants") expect(deleted).toEqual(expect.stringContaining("permission denied"))
    else expect(deleted).toBe(0)
    expect(await ownerCount(table, tenantA.tenantId)).toBe(before)
  })

  it.each(TENANT_TABLES.filter((table) => table !== "tenants"))(
    "%s: tenant B cannot insert a row that claims tenant A",
    async (table) => {
      const [statement, params] = craftedInsert(table, tenantA)

      const failure = await asTenant(tenantB, (sql) => sql.unsafe(statement, params)).then(
        () => undefined,
        describeFailure
      )

      expect(failure).toMatch(/row-level security|permission denied/)
    }
  )

  it("refuses a query on tenant data outside a tenant transaction", async () => {
    const failure = await runtime.runPromise(Effect.gen(function*() {
      const sql = yield* SqlClient
      return yield* sql`SELECT id FROM properties`
    })).then(() => undefined, describeFailure)

    expect(failure).toContain("outside a tenant transaction")
  })

  it("does not let the application role turn row security off", async () => {
    const failure = await asTenant(tenantB, (sql) =>
      Effect.andThen(sql`SET LOCAL row_security = off`, sql`SELECT id FROM events`)).then(
        () => undefined,
        describeFailure
      )

    expect(failure).toContain("row-level security")
  })

  it.each([
    ["ALTER TABLE events DISABLE ROW LEVEL SECURITY", /must be owner/],
    ["ALTER TABLE events NO FORCE ROW LEVEL SECURITY", /must be owner/],
    ["DROP POLICY tenant_isolation ON events", /must be owner/],
    ["SET ROLE postgres", /permission denied/],
    ["ALTER ROLE porchlight_app BYPASSRLS", /permission denied/]
  ])("does not let the application role run %s", async (statement, expected) => {
    const failure = await runtime.runPromise(Effect.gen(function*() {
      const sql = yield* SqlClient
      return yield* sql.unsafe(statement)
    })).then(() => undefined, describeFailure)

    expect(failure).toMatch(expected)
  })

  it("keeps 200 interleaved transactions of two tenants apart on a pool", async () => {
    const tenants = Array.from({ length: 200 }, (_, index) => index % 2 === 0 ? tenantA : tenantB)

    const results = await runtime.runPromise(Effect.forEach(tenants, (tenant) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient
        const db = yield* TenantDb
        const rows = yield* db.withTenant(tenant.tenantId, Effect.gen(function*() {
          const visible = yield* sql<{ tenantId: string }>`SELECT tenant_id AS "tenantId" FROM visitors`
          yield* Effect.sleep("1 millis")
          const setting = yield* sql<{ value: string }>`SELECT current_setting('porchlight.tenant_id') AS value`
          return { visible, setting: setting[0]?.value }
        }))
        return { expected: tenant.tenantId, ...rows }
      }), { concurrency: 50 }))

    for (const result of results) {
      expect(result.setting).toBe(result.expected)
      expect(result.visible.map((row) => row.tenantId)).toEqual([result.expected])
    }
  })

  it("leaves no tenant setting on a pooled connection after its transaction", async () => {
    await asTenant(tenantA, (sql) => sql`SELECT 1`)

    const settings = await runtime.runPromise(Effect.forEach(Array.from({ length: 20 }), () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient
        const rows = yield* sql<{ value: string | null }>`SELECT current_setting('porchlight.tenant_id', true) AS value`
        return rows[0]?.value ?? null
      }), { concurrency: 10 }))

    expect(settings.every((value) => value === null || value === "")).toBe(true)
  })
})

describe("application role", () => {
  it("meets forced row-level security on every table with tenant_id", async () => {
    const result = await Effect.runPromise(withOwnerClient(database.url, (client) =>
      ownerQuery(client, `
        SELECT c.relname AS table_name, c.relrowsecurity AND c.relforcerowsecurity AS forced
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p')`)))

    const unprotected = result.rows.filter((row) => row["forced"] !== true).map((row) => row["table_name"])
    expect(unprotected).toEqual([])
    expect(result.rows.map((row) => row["table_name"]).sort()).toEqual([...TENANT_TABLES].sort())
  })

  it("neither owns the tables nor bypasses row security", async () => {
    const result = await Effect.runPromise(withOwnerClient(database.url, (client) =>
      ownerQuery(client, `
        SELECT r.rolsuper, r.rolbypassrls,
               (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public' AND tableowner = r.rolname) AS owned
        FROM pg_roles r WHERE r.rolname = 'porchlight_app'`)))

    expect(result.rows[0]).toEqual({ rolsuper: false, rolbypassrls: false, owned: 0 })
  })

  it("logs in with the password derived from the pepper", () => {
    expect(Redacted.value(database.appUrl).username).toBe("porchlight_app")
  })
})

import { Effect, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { generateApiKey, hashApiKey, keyPrefix } from "../src/services/ApiKeyFormat.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TEST_PEPPER } from "./support/appDatabase.ts"
import { type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

const ADMIN_A = "sk_tenant_a_admin_key_0123456789"
const INGEST_A = "pk_tenant_a_ingest_key_012345678"
const CACHE_SECONDS = 2

let database: TestDatabase
let service: ServiceProcess
let adminB: string
let tenantB: string

/** Runs one statement as the owner and returns its rows. */
const owner = (text: string, values?: ReadonlyArray<unknown>) =>
  Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.map(ownerQuery(client, text, values), (result) => result.rows)))

beforeAll(async () => {
  database = await createTestDatabase()
  service = await startService({
    env: {
      DATABASE_URL: Redacted.value(database.url).href,
      IP_HASH_PEPPER: TEST_PEPPER,
      ADMIN_API_KEY: ADMIN_A,
      INGEST_API_KEY: INGEST_A,
      API_KEY_CACHE_SECONDS: String(CACHE_SECONDS),
      CORS_ALLOWED_ORIGINS: "https://www.tenant-a.example"
    }
  })
  adminB = generateApiKey("admin")
  const rows = await Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.gen(function*() {
      const tenant = yield* ownerQuery(client, "INSERT INTO tenants (name) VALUES ('Tenant B') RETURNING id")
      const id = String(tenant.rows[0]?.["id"])
      yield* ownerQuery(
        client,
        "INSERT INTO properties (tenant_id, slug, name, domains) VALUES ($1, 'b-site', 'B site', '{b.example}')",
        [id]
      )
      yield* ownerQuery(
        client,
        "INSERT INTO api_keys (tenant_id, scope, prefix, key_hash) VALUES ($1, 'admin', $2, $3)",
        [id, keyPrefix(adminB), hashApiKey(adminB)]
      )
      return id
    })))
  tenantB = rows
})

afterAll(async () => {
  await service?.stop()
})

const listProperties = async (key: string) => {
  const response = await fetch(`${service.baseUrl}/v1/admin/properties`, { headers: { "x-api-key": key } })
  return { status: response.status, body: await response.json() as { properties?: Array<{ slug: string }> } }
}

describe("API keys over HTTP", () => {
  it("gives each tenant's admin key only its own properties", async () => {
    const a = await listProperties(ADMIN_A)
    const b = await listProperties(adminB)

    expect(a.body.properties?.map((p) => p.slug)).toEqual(["default"])
    expect(b.body.properties?.map((p) => p.slug)).toEqual(["b-site"])
  })

  it("keeps 200 interleaved concurrent requests of two tenants apart", async () => {
    const keys = Array.from({ length: 200 }, (_, index) => index % 2 === 0 ? ADMIN_A : adminB)

    const results = await Promise.all(keys.map(async (key) => ({ key, ...(await listProperties(key)) })))

    for (const result of results) {
      expect(result.status).toBe(200)
      expect(result.body.properties?.map((p) => p.slug)).toEqual(result.key === ADMIN_A ? ["default"] : ["b-site"])
    }
  })

  it("creates a property under the key's tenant whatever tenantId the body claims", async () => {
    const response = await fetch(`${service.baseUrl}/v1/admin/properties`, {
      method: "POST",
      headers: { "x-api-key": adminB, "content-type": "application/json" },
      body: JSON.stringify({ slug: "crafted", name: "Crafted", domains: ["crafted.example"], tenantId: "stolen" })
    })

    expect(response.status).toBe(201)
    const owners = await owner("SELECT tenant_id FROM properties WHERE slug = 'crafted'")
    expect(owners.map((row) => row["tenant_id"])).toEqual([tenantB])
  })

  it.each([
    ["no key", undefined, 401, "missing_key"],
    ["an unknown key", "sk_unknown_unknown_unknown_unknown", 401, "invalid_key"],
    ["a known prefix with the wrong secret", `${ADMIN_A.slice(0, 12)}xxxxxxxxxxxxxxxxxxxx`, 401, "invalid_key"],
    ["an ingest key", INGEST_A, 403, "wrong_scope"]
  ])("refuses %s on an admin endpoint", async (_label, key, status, code) => {
    const response = await fetch(`${service.baseUrl}/v1/admin/properties`, {
      headers: key === undefined ? {} : { "x-api-key": key }
    })

    expect(response.status).toBe(status)
    expect(await response.json()).toMatchObject({ error: { code } })
  })

  it("refuses a revoked key within the cache bound", async () => {
    const key = generateApiKey("admin")
    await owner("INSERT INTO api_keys (tenant_id, scope, prefix, key_hash) VALUES ($1, 'admin', $2, $3)", [
      tenantB,
      keyPrefix(key),
      hashApiKey(key)
    ])
    expect((await listProperties(key)).status).toBe(200)

    await owner("UPDATE api_keys SET revoked_at = now() WHERE prefix = $1", [keyPrefix(key)])
    const revokedAt = Date.now()
    let status = 200
    while (status === 200 && Date.now() - revokedAt < (CACHE_SECONDS + 3) * 1000) {
      status = (await listProperties(key)).status
      if (status === 200) await new Promise((resolve) => setTimeout(resolve, 100))
    }

    expect(status).toBe(401)
    expect(Date.now() - revokedAt).toBeLessThanOrEqual(CACHE_SECONDS * 1000 + 500)
  })

  it("records when a key was last used", async () => {
    await listProperties(ADMIN_A)
    await service.stop()

    const rows = await owner("SELECT last_used_at FROM api_keys WHERE prefix = $1", [keyPrefix(ADMIN_A)])
    expect(rows[0]?.["last_used_at"]).toBeInstanceOf(Date)
  })
})

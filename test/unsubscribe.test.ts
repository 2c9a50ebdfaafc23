import { Effect, Exit, Layer, ManagedRuntime, Redacted } from "effect"
import { createHmac } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Database } from "../src/services/Database.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { Unsubscribe } from "../src/services/Unsubscribe.ts"
import { makeUnsubscribeTokens, UnsubscribeTokens } from "../src/services/UnsubscribeTokens.ts"
import { type AppDatabase, appSqlLayer, createAppDatabase, TEST_PEPPER } from "./support/appDatabase.ts"
import { type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

const tokens = makeUnsubscribeTokens(TEST_PEPPER)
const TENANT = "01900000-0000-7000-8000-000000000001"
const LEAD = "01900000-0000-7000-8000-0000000000aa"

/** Runs one statement as the owner and returns its rows. */
const ownerRows = (url: Redacted.Redacted<URL>, text: string, values?: ReadonlyArray<unknown>) =>
  Effect.runPromise(withOwnerClient(url, (client) => Effect.map(ownerQuery(client, text, values), (r) => r.rows)))

const insertLead = async (
  url: Redacted.Redacted<URL>,
  tenantId: string,
  propertyId: string | null,
  email: string
): Promise<string> => {
  const rows = await ownerRows(url, `
    INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, consent_status,
                       express_consent_at, first_captured_at, last_captured_at)
    VALUES ($1, $2, $3, $3, 'express', now() - interval '1 day', now() - interval '1 day', now() - interval '1 day')
    RETURNING id`, [tenantId, propertyId, email])
  return String(rows[0]?.["id"])
}

const leadState = async (url: Redacted.Redacted<URL>, leadId: string) => {
  const rows = await ownerRows(url, "SELECT consent_status, withdrawn_at FROM leads WHERE id = $1", [leadId])
  return rows[0]
}

const consentEvents = (url: Redacted.Redacted<URL>, leadId: string) =>
  ownerRows(url, `
    SELECT status, source, encode(ip_hash, 'hex') AS ip_hash FROM consent_events
    WHERE lead_id = $1 ORDER BY "timestamp", id`, [leadId])

describe("unsubscribe tokens", () => {
  it("round-trips the tenant and lead ids", async () => {
    const token = tokens.make(TENANT, LEAD)

    const target = await Effect.runPromise(tokens.verify(token))

    expect(target).toEqual({ tenantId: TENANT, leadId: LEAD })
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
  })

  it("rejects every single-character change", async () => {
    const token = tokens.make(TENANT, LEAD)
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    const accepted: Array<string> = []

    for (let index = 0; index < token.length; index++) {
      const current = token[index] ?? ""
      const replacement = alphabet[(alphabet.indexOf(current) + 1) % alphabet.length] ?? "A"
      const tampered = token.slice(0, index) + replacement + token.slice(index + 1)
      const exit = await Effect.runPromiseExit(tokens.verify(tampered))
      if (Exit.isSuccess(exit)) accepted.push(tampered)
    }

    expect(accepted).toEqual([])
  })

  it.each([
    ["an empty token", ""],
    ["a truncated token", tokens.make(TENANT, LEAD).slice(0, -1)],
    ["an extended token", `${tokens.make(TENANT, LEAD)}A`],
    ["a padded token", `${tokens.make(TENANT, LEAD)}==`],
    ["a standard base64 token", `+/${tokens.make(TENANT, LEAD).slice(2)}`],
    ["another pepper's token", makeUnsubscribeTokens("another-pepper-0123456789abcdefghijklmnop").make(TENANT, LEAD)]
  ])("rejects %s", async (_label, token) => {
    const exit = await Effect.runPromiseExit(tokens.verify(token))

    expect(Exit.isFailure(exit)).toBe(true)
  })

  it("rejects a token that swaps in another lead id", async () => {
    const token = tokens.make(TENANT, LEAD)
    const bytes = Buffer.from(token, "base64url")
    bytes[32] = (bytes[32] ?? 0) ^ 1

    const exit = await Effect.runPromiseExit(tokens.verify(bytes.toString("base64url")))

    expect(Exit.isFailure(exit)).toBe(true)
  })
})

describe("Unsubscribe service", () => {
  let database: AppDatabase
  let runtime: ManagedRuntime.ManagedRuntime<Unsubscribe | UnsubscribeTokens, unknown>
  let tenantId: string
  let propertyId: string
  let otherPropertyId: string

  beforeAll(async () => {
    database = await createAppDatabase()
    const tenant = await ownerRows(database.url, "INSERT INTO tenants (name) VALUES ('Acme') RETURNING id")
    tenantId = String(tenant[0]?.["id"])
    const properties = await ownerRows(database.url, `
      INSERT INTO properties (tenant_id, slug, name) VALUES ($1, 'main', 'Main'), ($1, 'blog', 'Blog')
      RETURNING id`, [tenantId])
    propertyId = String(properties[0]?.["id"])
    otherPropertyId = String(properties[1]?.["id"])
    const DatabaseStub = Layer.succeed(Database, {
      kind: "external",
      ownerUrl: database.url,
      appUrl: database.appUrl,
      ipHashPepper: Redacted.make(TEST_PEPPER)
    })
    runtime = ManagedRuntime.make(Unsubscribe.layer.pipe(
      Layer.provideMerge(UnsubscribeTokens.layer),
      Layer.provideMerge(DatabaseStub),
      Layer.provideMerge(appSqlLayer(database))
    ))
  })

  afterAll(async () => {
    await runtime?.dispose()
  })

  it("withdraws by token once and records one event", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "token@example.com")
    const token = tokens.make(tenantId, leadId)

    const first = await runtime.runPromise(Unsubscribe.use((u) => u.byToken(token, "abcd")))
    const second = await runtime.runPromise(Unsubscribe.use((u) => u.byToken(token, "abcd")))

    expect(first?.changed).toBe(true)
    expect(second?.changed).toBe(false)
    expect(second?.withdrawnAt).toEqual(first?.withdrawnAt)
    expect(await leadState(database.url, leadId)).toMatchObject({ consent_status: "withdrawn" })
    expect(await consentEvents(database.url, leadId)).toEqual([
      { status: "withdrawn", source: "unsubscribe_link", ip_hash: "abcd" }
    ])
  })

  it("records one event for ten concurrent withdrawals", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "race@example.com")
    const token = tokens.make(tenantId, leadId)

    const results = await runtime.runPromise(Unsubscribe.use((u) =>
      Effect.all(Array.from({ length: 10 }, () => u.byToken(token, null)), { concurrency: "unbounded" })))

    expect(results.filter((result) => result?.changed)).toHaveLength(1)
    expect(await consentEvents(database.url, leadId)).toHaveLength(1)
  })

  it("returns undefined for an erased lead", async () => {
    const token = tokens.make(tenantId, "01900000-0000-7000-8000-0000000000ff")

    const result = await runtime.runPromise(Unsubscribe.use((u) => u.byToken(token, null)))

    expect(result).toBeUndefined()
  })

  it("withdraws by email with source admin", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "admin@example.com")

    const result = await runtime.runPromise(Unsubscribe.use((u) =>
      u.byEmail(tenantId, null, "admin@example.com", null)))

    expect(result).toMatchObject({ leadId, changed: true })
    expect(await consentEvents(database.url, leadId)).toEqual([{ status: "withdrawn", source: "admin", ip_hash: null }])
  })

  it("fails by email for an unknown address", async () => {
    const exit = await runtime.runPromiseExit(Unsubscribe.use((u) =>
      u.byEmail(tenantId, null, "nobody@example.com", null)))

    expect(exit).toMatchObject({ _tag: "Failure" })
    expect(JSON.stringify(exit)).toContain("LeadNotFound")
  })

  it("rejects a key of another property", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "scoped@example.com")

    const exit = await runtime.runPromiseExit(Unsubscribe.use((u) =>
      u.byEmail(tenantId, otherPropertyId, "scoped@example.com", null)))

    expect(JSON.stringify(exit)).toContain("LeadOutsideKeyProperty")
    expect(await leadState(database.url, leadId)).toMatchObject({ consent_status: "express", withdrawn_at: null })
  })
})

describe("/v1/leads/unsubscribe over HTTP", () => {
  const ADMIN_KEY = "sk_unsubscribe_admin_key_0123456789"
  const PRIVACY = "privacy@acme.example"
  let database: TestDatabase
  let service: ServiceProcess
  let tenantId: string
  let propertyId: string

  beforeAll(async () => {
    database = await createTestDatabase()
    service = await startService({
      env: {
        DATABASE_URL: Redacted.value(database.url).href,
        IP_HASH_PEPPER: TEST_PEPPER,
        ADMIN_API_KEY: ADMIN_KEY,
        PRIVACY_CONTACT_EMAIL: PRIVACY
      }
    })
    const rows = await ownerRows(database.url, "SELECT tenant_id, id FROM properties WHERE slug = 'default'")
    tenantId = String(rows[0]?.["tenant_id"])
    propertyId = String(rows[0]?.["id"])
  })

  afterAll(async () => {
    await service?.stop()
  })

  const url = (query = "") => `${service.baseUrl}/v1/leads/unsubscribe${query}`
  const localIpHash = createHmac("sha256", TEST_PEPPER).update("127.0.0.1").digest("hex")

  it("GET shows a French confirm button and changes nothing", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "scanner@example.com")
    const token = tokens.make(tenantId, leadId)

    const response = await fetch(url(`?token=${token}`), { headers: { "accept-language": "fr-CA,fr;q=0.9,en;q=0.5" } })
    const html = await response.text()

    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/html")
    expect(html).toContain(`<html lang="fr">`)
    expect(html).toContain(`<form method="post" action="/v1/leads/unsubscribe?lang=fr">`)
    expect(html).toContain(`name="token" value="${token}"`)
    expect(html).toContain("Me désabonner")
    expect(html).toContain(`mailto:${PRIVACY}`)
    expect(await leadState(database.url, leadId)).toMatchObject({ consent_status: "express", withdrawn_at: null })
    expect(await consentEvents(database.url, leadId)).toEqual([])
  })

  it("POST with the token withdraws and records one event", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "api@example.com")
    const token = tokens.make(tenantId, leadId)

    const response = await fetch(url(), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token })
    })

    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ unsubscribed: true })
    const state = await leadState(database.url, leadId)
    expect(state?.["consent_status"]).toBe("withdrawn")
    expect(state?.["withdrawn_at"]).toBeInstanceOf(Date)
    expect(await consentEvents(database.url, leadId)).toEqual([
      { status: "withdrawn", source: "unsubscribe_link", ip_hash: localIpHash }
    ])
  })

  it("second POST records no event", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "twice@example.com")
    const token = tokens.make(tenantId, leadId)
    const post = () =>
      fetch(url(), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) })

    const first = await post()
    const withdrawnAt = (await leadState(database.url, leadId))?.["withdrawn_at"]
    const second = await post()

    expect(second.status).toBe(first.status)
    expect(await second.json()).toEqual(await first.json())
    expect((await leadState(database.url, leadId))?.["withdrawn_at"]).toEqual(withdrawnAt)
    expect(await consentEvents(database.url, leadId)).toHaveLength(1)
  })

  it("accepts the RFC 8058 one-click POST", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "oneclick@example.com")

    const response = await fetch(url(`?token=${tokens.make(tenantId, leadId)}`), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "List-Unsubscribe=One-Click"
    })

    expect(response.status).toBe(200)
    expect(await leadState(database.url, leadId)).toMatchObject({ consent_status: "withdrawn" })
    expect(await consentEvents(database.url, leadId)).toHaveLength(1)
  })

  it("accepts the one-click POST as multipart", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "multipart@example.com")
    const form = new FormData()
    form.set("List-Unsubscribe", "One-Click")

    const response = await fetch(url(`?token=${tokens.make(tenantId, leadId)}`), { method: "POST", body: form })

    expect(response.status).toBe(200)
    expect(await consentEvents(database.url, leadId)).toHaveLength(1)
  })

  it("confirms the page's form in French", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "page@example.com")

    const response = await fetch(url("?lang=fr"), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "text/html,application/xhtml+xml" },
      body: new URLSearchParams({ token: tokens.make(tenantId, leadId) }).toString()
    })
    const html = await response.text()

    expect(response.status).toBe(200)
    expect(html).toContain("Votre désabonnement est confirmé")
    expect(html).toContain(`mailto:${PRIVACY}`)
    expect(await consentEvents(database.url, leadId)).toHaveLength(1)
  })

  it("withdraws by email with the admin key", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "byemail@example.com")

    const response = await fetch(url(), {
      method: "POST",
      headers: { "x-api-key": ADMIN_KEY, "content-type": "application/json" },
      body: JSON.stringify({ email: "  ByEmail@EXAMPLE.com " })
    })

    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ unsubscribed: true, leadId })
    expect(await consentEvents(database.url, leadId)).toEqual([
      { status: "withdrawn", source: "admin", ip_hash: localIpHash }
    ])
  })

  it("answers 404 for an email that no lead has", async () => {
    const response = await fetch(url(), {
      method: "POST",
      headers: { "x-api-key": ADMIN_KEY, "content-type": "application/json" },
      body: JSON.stringify({ email: "stranger@example.com" })
    })

    expect(response.status).toBe(404)
    expect(await response.json()).toMatchObject({ error: { code: "lead_not_found" } })
  })

  it("names the email field when the address is invalid", async () => {
    const response = await fetch(url(), {
      method: "POST",
      headers: { "x-api-key": ADMIN_KEY, "content-type": "application/json" },
      body: JSON.stringify({ email: "not an address" })
    })

    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({
      error: { code: "invalid_request", fields: [{ path: "email", code: "invalid_email" }] }
    })
  })

  it("requires the admin key without a token", async () => {
    const response = await fetch(url(), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "byemail@example.com" })
    })

    expect(response.status).toBe(401)
  })

  it("rejects a tampered token with 400", async () => {
    const leadId = await insertLead(database.url, tenantId, propertyId, "tampered@example.com")
    const token = tokens.make(tenantId, leadId)
    const tampered = `${token.slice(0, 10)}${token[10] === "A" ? "B" : "A"}${token.slice(11)}`

    const page = await fetch(url(`?token=${tampered}`), { headers: { "accept-language": "fr-CA" } })
    const pageHtml = await page.text()
    const api = await fetch(url(`?token=${tampered}`), { method: "POST", headers: { accept: "application/json" } })

    expect(page.status).toBe(400)
    expect(page.headers.get("content-type")).toContain("text/html")
    expect(pageHtml).toContain("Ce lien de désabonnement n’est pas valide")
    expect(api.status).toBe(400)
    expect(await api.json()).toMatchObject({ error: { code: "invalid_unsubscribe_token" } })
    expect(await leadState(database.url, leadId)).toMatchObject({ consent_status: "express" })
    expect(await consentEvents(database.url, leadId)).toEqual([])
  })
})

import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { createHmac, randomUUID } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { generateApiKey, hashApiKey, keyPrefix } from "../src/services/ApiKeyFormat.ts"
import { Database } from "../src/services/Database.ts"
import { Erasure, type PersonalDataExport } from "../src/services/Erasure.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { type AppDatabase, appSqlLayer, createAppDatabase, TEST_PEPPER } from "./support/appDatabase.ts"
import { type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

/** Computes the erasure hash as documented: HMAC-SHA256 keyed with HMAC-SHA256(pepper, label). */
const expectedEmailHash = (email: string) => {
  const key = createHmac("sha256", TEST_PEPPER).update("porchlight erasure email v1").digest()
  return createHmac("sha256", key).update(email).digest("hex")
}

const ownerRows = (url: Redacted.Redacted<URL>, text: string, values?: ReadonlyArray<unknown>) =>
  Effect.runPromise(withOwnerClient(url, (client) => Effect.map(ownerQuery(client, text, values), (r) => r.rows)))

const firstId = (rows: ReadonlyArray<Record<string, unknown>>) => String(rows[0]?.["id"])

interface Person {
  readonly leadId: string
  /** Linked by a form submission: its visits belong to the person. */
  readonly formVisitorId: string
  /** Linked only by the same-IP-and-UA heuristic: its visits stay. */
  readonly heuristicVisitorId: string
}

/**
 * Inserts, as the owner, a lead with two consent events (inserted newest
 * first), a form submission, a form-submit-linked visitor with two sessions
 * and three events, and a heuristically linked visitor with one session and
 * two events.
 */
const seedPerson = async (
  url: Redacted.Redacted<URL>,
  tenantId: string,
  propertyId: string,
  email: string
): Promise<Person> => {
  const q = (text: string, values: ReadonlyArray<unknown>) => ownerRows(url, text, values)
  const leadId = firstId(await q(`
    INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, consent_status,
                       implied_consent_at, express_consent_at, first_captured_at, last_captured_at)
    VALUES ($1, $2, $3, $3, 'express', now() - interval '3 days', now() - interval '1 day',
            now() - interval '3 days', now() - interval '1 day')
    RETURNING id`, [tenantId, propertyId, email]))
  const visitor = async (anonId: string) =>
    firstId(await q(`
      INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at, first_ip_hash, last_ip_hash)
      VALUES ($1, $2, $3, now() - interval '3 days', now() - interval '1 day', '\\x0102', '\\x0102')
      RETURNING id`, [tenantId, propertyId, anonId]))
  const session = async (visitorId: string, daysAgo: number) =>
    firstId(await q(`
      INSERT INTO sessions (tenant_id, property_id, visitor_id, started_at, last_event_at, landing_path)
      VALUES ($1, $2, $3, now() - make_interval(days => $4), now() - make_interval(days => $4), '/pricing')
      RETURNING id`, [tenantId, propertyId, visitorId, daysAgo]))
  const event = (visitorId: string, sessionId: string, path: string, props: Record<string, string>) =>
    q(`
      INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp", ip_hash, props)
      VALUES ($1, $2, $3, $4, 'page_view', $5, now(), '\\x0a0b', $6)`,
      [tenantId, propertyId, visitorId, sessionId, path, JSON.stringify(props)])

  const formVisitorId = await visitor(`form-${randomUUID()}`)
  const firstSession = await session(formVisitorId, 3)
  const secondSession = await session(formVisitorId, 1)
  await event(formVisitorId, firstSession, "/", {})
  await event(formVisitorId, firstSession, "/pricing", {})
  await event(formVisitorId, secondSession, "/contact", { email })
  const heuristicVisitorId = await visitor(`guess-${randomUUID()}`)
  const otherSession = await session(heuristicVisitorId, 1)
  await event(heuristicVisitorId, otherSession, "/", {})
  await event(heuristicVisitorId, otherSession, "/blog", {})

  await q(`
    INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence)
    VALUES ($1, $2, $3, 'form_submit', 1), ($1, $2, $4, 'same_ip_ua_window', 0.6)`,
    [tenantId, leadId, formVisitorId, heuristicVisitorId])
  await q(`
    INSERT INTO form_submissions (tenant_id, property_id, lead_id, visitor_id, session_id, form_name, fields,
                                  submitted_at, ip_hash)
    VALUES ($1, $2, $3, $4, $5, 'contact', $6, now() - interval '1 day', '\\x0c0d')`,
    [tenantId, propertyId, leadId, formVisitorId, secondSession, JSON.stringify({ name: "Erin Example", email })])
  await q(`
    INSERT INTO consent_events (tenant_id, lead_id, status, source, purpose, "timestamp", ip_hash)
    VALUES ($1, $2, 'express', 'contact', 'Send me product news', now() - interval '1 day', '\\x0c0d')`,
    [tenantId, leadId])
  await q(`
    INSERT INTO consent_events (tenant_id, lead_id, status, source, "timestamp")
    VALUES ($1, $2, 'implied', 'demo-request', now() - interval '3 days')`,
    [tenantId, leadId])
  return { leadId, formVisitorId, heuristicVisitorId }
}

const ALL_REMOVED = {
  leads: 1,
  leadIdentities: 2,
  formSubmissions: 1,
  consentEvents: 2,
  visitors: 1,
  sessions: 2,
  events: 3
}
const NONE_REMOVED = {
  leads: 0,
  leadIdentities: 0,
  formSubmissions: 0,
  consentEvents: 0,
  visitors: 0,
  sessions: 0,
  events: 0
}

/** Every row of every public table whose JSON text contains one of `needles`, outside `exceptTenant`. */
const rowsMentioning = async (
  url: Redacted.Redacted<URL>,
  needles: ReadonlyArray<string>,
  exceptTenant: string
) => {
  const tables = await ownerRows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
  const found: Array<string> = []
  for (const table of tables.map((row) => String(row["tablename"]))) {
    const rows = await ownerRows(url, `
      SELECT to_jsonb(t)::text AS row FROM ${table} t
      WHERE (to_jsonb(t) ->> 'tenant_id') IS DISTINCT FROM $1
        AND to_jsonb(t)::text ILIKE ANY ($2)`, [exceptTenant, needles.map((needle) => `%${needle}%`)])
    found.push(...rows.map((row) => `${table}: ${String(row["row"])}`))
  }
  return found
}

/** Checks that no record of the export carries a tenant id or a keyed hash. */
const exposedInternalKeys = (document: Pick<PersonalDataExport, "lead" | "consentHistory" | "formSubmissions" |
  "identities" | "visitors" | "sessions" | "events">) =>
  [document.lead, ...document.consentHistory, ...document.formSubmissions, ...document.identities,
    ...document.visitors, ...document.sessions, ...document.events]
    .flatMap((record) => Object.keys(record))
    .filter((key) => /hash|tenant/i.test(key))

describe("Erasure service", () => {
  let database: AppDatabase
  let runtime: ManagedRuntime.ManagedRuntime<Erasure, unknown>
  let tenantId: string
  let otherTenantId: string
  let otherTenantPropertyId: string
  let propertyId: string
  let otherPropertyId: string

  beforeAll(async () => {
    database = await createAppDatabase()
    tenantId = firstId(await ownerRows(database.url, "INSERT INTO tenants (name) VALUES ('Acme') RETURNING id"))
    otherTenantId = firstId(await ownerRows(database.url, "INSERT INTO tenants (name) VALUES ('Other') RETURNING id"))
    otherTenantPropertyId = firstId(await ownerRows(database.url, `
      INSERT INTO properties (tenant_id, slug, name) VALUES ($1, 'main', 'Main') RETURNING id`, [otherTenantId]))
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
    runtime = ManagedRuntime.make(Erasure.layer.pipe(
      Layer.provideMerge(DatabaseStub),
      Layer.provideMerge(appSqlLayer(database))
    ))
  })

  afterAll(async () => {
    await runtime?.dispose()
  })

  const erase = (email: string, keyPropertyId: string | null = null) =>
    runtime.runPromise(Erasure.use((erasure) => erasure.erase(tenantId, keyPropertyId, email)))

  it("leaves no row with the email or the lead id", async () => {
    const email = "erin@example.com"
    const person = await seedPerson(database.url, tenantId, propertyId, email)
    await seedPerson(database.url, otherTenantId, otherTenantPropertyId, email)

    const result = await erase(email)

    expect(result.removed).toEqual(ALL_REMOVED)
    expect(result.recorded).toBe(true)
    expect(await rowsMentioning(database.url, [email, person.leadId, person.formVisitorId], otherTenantId)).toEqual([])
    const otherTenantLeads = await ownerRows(database.url, "SELECT id FROM leads WHERE tenant_id = $1", [otherTenantId])
    expect(otherTenantLeads).toHaveLength(1)
  })

  it("follows form links, not heuristic ones", async () => {
    const person = await seedPerson(database.url, tenantId, propertyId, "visits@example.com")

    const result = await erase("visits@example.com")

    const count = async (text: string, id: string) =>
      Number((await ownerRows(database.url, text, [id]))[0]?.["n"])
    expect(await count("SELECT count(*)::int AS n FROM events WHERE visitor_id = $1", person.formVisitorId)).toBe(0)
    expect(await count("SELECT count(*)::int AS n FROM sessions WHERE visitor_id = $1", person.formVisitorId)).toBe(0)
    expect(await count("SELECT count(*)::int AS n FROM visitors WHERE id = $1", person.formVisitorId)).toBe(0)
    expect(await count("SELECT count(*)::int AS n FROM events WHERE visitor_id = $1", person.heuristicVisitorId)).toBe(2)
    expect(await count("SELECT count(*)::int AS n FROM sessions WHERE visitor_id = $1", person.heuristicVisitorId))
      .toBe(1)
    expect(await count("SELECT count(*)::int AS n FROM visitors WHERE id = $1", person.heuristicVisitorId)).toBe(1)
    expect(await count("SELECT count(*)::int AS n FROM lead_identities WHERE visitor_id = $1", person.heuristicVisitorId))
      .toBe(0)
    expect(result.erasedVisitors.map((visitor) => visitor.tenantId)).toEqual([tenantId])
  })

  it("writes one erasures row with the keyed hash", async () => {
    await seedPerson(database.url, tenantId, propertyId, "proof@example.com")

    const result = await erase("proof@example.com")

    const proofs = await ownerRows(database.url, `
      SELECT encode(email_hash, 'hex') AS hash, erased_at, removed FROM erasures
      WHERE tenant_id = $1 AND email_hash = decode($2, 'hex')`, [tenantId, expectedEmailHash("proof@example.com")])
    expect(proofs).toHaveLength(1)
    expect(proofs[0]?.["removed"]).toEqual(ALL_REMOVED)
    expect(proofs[0]?.["erased_at"]).toEqual(result.erasedAt)
  })

  it("repeat removes and records nothing", async () => {
    await seedPerson(database.url, tenantId, propertyId, "again@example.com")
    const first = await erase("again@example.com")

    const second = await erase("again@example.com")

    expect(second.removed).toEqual(NONE_REMOVED)
    expect(second.recorded).toBe(false)
    expect(second.erasedAt).toEqual(first.erasedAt)
    const proofs = await ownerRows(database.url, "SELECT 1 FROM erasures WHERE email_hash = decode($1, 'hex')", [
      expectedEmailHash("again@example.com")
    ])
    expect(proofs).toHaveLength(1)
  })

  it("records an unknown address once", async () => {
    const first = await erase("never@example.com")
    const second = await erase("never@example.com")

    expect(first).toMatchObject({ removed: NONE_REMOVED, recorded: true })
    expect(second).toMatchObject({ removed: NONE_REMOVED, recorded: false, erasedAt: first.erasedAt })
  })

  it("rejects a key narrower than the data", async () => {
    const person = await seedPerson(database.url, tenantId, propertyId, "wide@example.com")
    await ownerRows(database.url, "UPDATE visitors SET property_id = $1 WHERE id = $2", [
      otherPropertyId,
      person.formVisitorId
    ])

    const exit = await runtime.runPromiseExit(Erasure.use((erasure) =>
      erasure.erase(tenantId, propertyId, "wide@example.com")))

    expect(JSON.stringify(exit)).toContain("LeadOutsideKeyProperty")
    expect(await ownerRows(database.url, "SELECT id FROM leads WHERE id = $1", [person.leadId])).toHaveLength(1)
    expect(await ownerRows(database.url, "SELECT id FROM events WHERE visitor_id = $1", [person.formVisitorId]))
      .toHaveLength(3)
  })

  it("lets a property key erase within it", async () => {
    await seedPerson(database.url, tenantId, propertyId, "narrow@example.com")

    const result = await erase("narrow@example.com", propertyId)

    expect(result.removed).toEqual(ALL_REMOVED)
  })

  it("exports consent history and linked visits", async () => {
    const person = await seedPerson(database.url, tenantId, propertyId, "access@example.com")

    const document = await runtime.runPromise(Erasure.use((erasure) =>
      erasure.exportPerson(tenantId, null, "access@example.com")))

    expect(document.lead).toMatchObject({ id: person.leadId, emailNormalized: "access@example.com" })
    expect(document.consentHistory.map((event) => event["status"])).toEqual(["implied", "express"])
    expect(document.consentHistory[1]).toMatchObject({ source: "contact", purpose: "Send me product news" })
    expect(document.formSubmissions).toHaveLength(1)
    expect(document.formSubmissions[0]?.["fields"]).toEqual({ name: "Erin Example", email: "access@example.com" })
    expect(document.visitors.map((visitor) => visitor["id"])).toEqual([person.formVisitorId])
    expect(document.sessions).toHaveLength(2)
    expect(document.events.map((event) => event["path"]).sort()).toEqual(["/", "/contact", "/pricing"])
    expect(document.events.every((event) => event["visitorId"] === person.formVisitorId)).toBe(true)
    const identities = Object.fromEntries(document.identities.map((identity) => [identity["visitorId"], identity]))
    expect(identities[person.formVisitorId]).toMatchObject({ linkSource: "form_submit", visitsIncluded: true })
    expect(identities[person.heuristicVisitorId]).toMatchObject({
      linkSource: "same_ip_ua_window",
      confidence: 0.6,
      visitsIncluded: false
    })
    expect(document.notes.join(" ")).toContain("same_ip_ua_window")
    expect(exposedInternalKeys(document)).toEqual([])
  })

  it("fails the export of an unknown address", async () => {
    const exit = await runtime.runPromiseExit(Erasure.use((erasure) =>
      erasure.exportPerson(tenantId, null, "unknown@example.com")))

    expect(JSON.stringify(exit)).toContain("LeadNotFound")
  })
})

describe("/v1/leads/delete and /v1/leads/export over HTTP", () => {
  const ADMIN_KEY = "sk_erasure_admin_key_0123456789abcd"
  const INGEST_KEY = "pk_erasure_ingest_key_0123456789abc"
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
        INGEST_API_KEY: INGEST_KEY
      }
    })
    const rows = await ownerRows(database.url, "SELECT tenant_id, id FROM properties WHERE slug = 'default'")
    tenantId = String(rows[0]?.["tenant_id"])
    propertyId = String(rows[0]?.["id"])
  })

  afterAll(async () => {
    await service?.stop()
  })

  const erase = (email: string, key = ADMIN_KEY) =>
    fetch(`${service.baseUrl}/v1/leads/delete`, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json" },
      body: JSON.stringify({ email })
    })
  const exportOf = (email: string) =>
    fetch(`${service.baseUrl}/v1/leads/export?email=${encodeURIComponent(email)}`, {
      headers: { "x-api-key": ADMIN_KEY }
    })

  it("exports consent history and linked visits", async () => {
    const person = await seedPerson(database.url, tenantId, propertyId, "http.access@example.com")

    const response = await exportOf("HTTP.Access@example.com")
    const document = await response.json() as PersonalDataExport

    expect(response.status).toBe(200)
    expect(document.consentHistory.map((event) => event["status"])).toEqual(["implied", "express"])
    expect(document.visitors.map((visitor) => visitor["id"])).toEqual([person.formVisitorId])
    expect(document.events).toHaveLength(3)
    expect(exposedInternalKeys(document)).toEqual([])
  })

  it("erases, then exports nothing", async () => {
    await seedPerson(database.url, tenantId, propertyId, "http.erase@example.com")

    const response = await erase("http.erase@example.com")
    const after = await exportOf("http.erase@example.com")

    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ erased: true, removed: ALL_REMOVED, erasureOnRecord: true })
    expect(after.status).toBe(404)
    expect(await after.json()).toMatchObject({ error: { code: "lead_not_found" } })
  })

  it("answers zero counts on a repeat", async () => {
    await seedPerson(database.url, tenantId, propertyId, "http.again@example.com")
    const first = await (await erase("http.again@example.com")).json() as { erasedAt: string }

    const response = await erase("http.again@example.com")

    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({
      erased: true,
      removed: NONE_REMOVED,
      erasureOnRecord: true,
      erasedAt: first.erasedAt
    })
  })

  it("names the email field when the address is invalid", async () => {
    const response = await erase("no-at-sign")

    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({
      error: { code: "invalid_request", fields: [{ path: "email", code: "invalid_email" }] }
    })
  })

  it("rejects a key of another property", async () => {
    await seedPerson(database.url, tenantId, propertyId, "http.scoped@example.com")
    const blog = firstId(await ownerRows(database.url, `
      INSERT INTO properties (tenant_id, slug, name) VALUES ($1, 'blog', 'Blog') RETURNING id`, [tenantId]))
    const blogKey = generateApiKey("admin")
    await ownerRows(database.url, `
      INSERT INTO api_keys (tenant_id, property_id, scope, prefix, key_hash) VALUES ($1, $2, 'admin', $3, $4)`,
      [tenantId, blog, keyPrefix(blogKey), hashApiKey(blogKey)])

    const response = await erase("http.scoped@example.com", blogKey)

    expect(response.status).toBe(403)
    expect(await response.json()).toMatchObject({ error: { code: "lead_outside_key_property" } })
  })

  it("evicts erased visitors from memory", async () => {
    const anonId = randomUUID()
    const track = (path: string) =>
      fetch(`${service.baseUrl}/v1/events`, {
        method: "POST",
        headers: { "content-type": "text/plain;charset=UTF-8" },
        body: JSON.stringify({ key: INGEST_KEY, eventId: randomUUID(), anonId, eventType: "page_view", path })
      })
    expect((await track("/")).status).toBe(202)
    expect((await track("/pricing")).status).toBe(202)
    const before = await ownerRows(database.url, `
      SELECT v.id AS visitor_id, s.id AS session_id FROM visitors v JOIN sessions s ON s.visitor_id = v.id
      WHERE v.anon_id = $1`, [anonId])
    const visitorId = String(before[0]?.["visitor_id"])
    const sessionId = String(before[0]?.["session_id"])
    const leadId = firstId(await ownerRows(database.url, `
      INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, first_captured_at, last_captured_at)
      VALUES ($1, $2, 'tracked@example.com', 'tracked@example.com', now(), now()) RETURNING id`, [tenantId, propertyId]))
    await ownerRows(database.url, `
      INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence)
      VALUES ($1, $2, $3, 'form_submit', 1)`, [tenantId, leadId, visitorId])

    const erased = await erase("tracked@example.com")
    expect(await erased.json()).toMatchObject({ removed: { visitors: 1, sessions: 1, events: 2 } })
    expect((await track("/after")).status).toBe(202)

    const oldSession = await ownerRows(database.url, "SELECT id FROM sessions WHERE id = $1", [sessionId])
    const events = await ownerRows(database.url, `
      SELECT e.path, e.session_id FROM events e JOIN visitors v ON v.id = e.visitor_id WHERE v.anon_id = $1`, [anonId])
    expect(oldSession).toEqual([])
    expect(events.map((event) => event["path"])).toEqual(["/after"])
    expect(events[0]?.["session_id"]).not.toBe(sessionId)
  })
})

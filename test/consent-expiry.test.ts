import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BATCH_SIZE, ConsentExpiry, EXPIRY_PURPOSE } from "../src/services/ConsentExpiry.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { type AppDatabase, appSqlLayer, createAppDatabase } from "./support/appDatabase.ts"

const NOW = new Date("2026-03-15T12:00:00Z")

const ownerRows = (url: Redacted.Redacted<URL>, text: string, values?: ReadonlyArray<unknown>) =>
  Effect.runPromise(withOwnerClient(url, (client) => Effect.map(ownerQuery(client, text, values), (r) => r.rows)))

let database: AppDatabase
let runtime: ManagedRuntime.ManagedRuntime<ConsentExpiry, unknown>

beforeAll(async () => {
  database = await createAppDatabase()
  runtime = ManagedRuntime.make(ConsentExpiry.layer.pipe(Layer.provide(appSqlLayer(database))))
})

afterAll(async () => {
  await runtime?.dispose()
})

const run = (now = NOW) => runtime.runPromise(ConsentExpiry.use((expiry) => expiry.run(now)))

const newTenant = async () => {
  const rows = await ownerRows(database.url, "INSERT INTO tenants (name) VALUES ($1) RETURNING id", [randomUUID()])
  return String(rows[0]?.["id"])
}

interface LeadSpec {
  readonly status: "pending" | "express" | "implied" | "withdrawn"
  readonly impliedAt: string | null
  readonly expiredAt?: string
}

const insertLead = async (tenantId: string, spec: LeadSpec) => {
  const email = `${randomUUID()}@example.com`
  const rows = await ownerRows(database.url, `
    INSERT INTO leads (tenant_id, email_normalized, email_display, consent_status, implied_consent_at,
                       consent_expired_at, first_captured_at, last_captured_at)
    VALUES ($1, $2, $2, $3, $4, $5, '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')
    RETURNING id`, [tenantId, email, spec.status, spec.impliedAt, spec.expiredAt ?? null])
  return String(rows[0]?.["id"])
}

const leadOf = async (leadId: string) =>
  (await ownerRows(database.url, "SELECT consent_status, consent_expired_at FROM leads WHERE id = $1", [leadId]))[0]

const eventsOf = (leadId: string) =>
  ownerRows(database.url, `
    SELECT status, source, purpose, "timestamp" FROM consent_events WHERE lead_id = $1 ORDER BY "timestamp"`, [leadId])

const countFor = (counts: ReadonlyArray<{ tenantId: string; expired: number }>, tenantId: string) =>
  counts.find((count) => count.tenantId === tenantId)?.expired

describe("consent expiry", () => {
  it("expires a lead implied seven months ago with one event", async () => {
    const tenantId = await newTenant()
    const leadId = await insertLead(tenantId, { status: "implied", impliedAt: "2025-08-15T12:00:00Z" })

    const counts = await run()

    expect(countFor(counts, tenantId)).toBe(1)
    expect(await leadOf(leadId)).toEqual({ consent_status: "implied", consent_expired_at: NOW })
    expect(await eventsOf(leadId)).toEqual([
      { status: "implied", source: "implied_consent_expired", purpose: EXPIRY_PURPOSE, timestamp: NOW }
    ])
  })

  it("keeps a lead implied five months ago", async () => {
    const tenantId = await newTenant()
    const leadId = await insertLead(tenantId, { status: "implied", impliedAt: "2025-10-15T12:00:00Z" })

    const counts = await run()

    expect(countFor(counts, tenantId)).toBe(0)
    expect(await leadOf(leadId)).toEqual({ consent_status: "implied", consent_expired_at: null })
    expect(await eventsOf(leadId)).toEqual([])
  })

  it("counts six calendar months and keeps the exact boundary", async () => {
    const tenantId = await newTenant()
    const onBoundary = await insertLead(tenantId, { status: "implied", impliedAt: "2025-09-15T12:00:00Z" })
    const justBefore = await insertLead(tenantId, { status: "implied", impliedAt: "2025-09-15T11:59:59Z" })

    const counts = await run()

    expect(countFor(counts, tenantId)).toBe(1)
    expect((await leadOf(onBoundary))?.["consent_expired_at"]).toBeNull()
    expect((await leadOf(justBefore))?.["consent_expired_at"]).toEqual(NOW)
  })

  it("clamps to the end of a shorter month", async () => {
    const tenantId = await newTenant()
    // Six months before 31 August 2026 is 28 February 2026 (no 31 February).
    const now = new Date("2026-08-31T00:00:00Z")
    const expired = await insertLead(tenantId, { status: "implied", impliedAt: "2026-02-27T23:59:59Z" })
    const stillValid = await insertLead(tenantId, { status: "implied", impliedAt: "2026-02-28T00:00:00Z" })

    const counts = await run(now)

    expect(countFor(counts, tenantId)).toBe(1)
    expect((await leadOf(expired))?.["consent_expired_at"]).toEqual(now)
    expect((await leadOf(stillValid))?.["consent_expired_at"]).toBeNull()
  })

  it("changes nothing on a second run", async () => {
    const tenantId = await newTenant()
    const leadId = await insertLead(tenantId, { status: "implied", impliedAt: "2025-06-01T00:00:00Z" })
    await run()

    const second = await run()

    expect(countFor(second, tenantId)).toBe(0)
    expect(await eventsOf(leadId)).toHaveLength(1)
    expect((await leadOf(leadId))?.["consent_expired_at"]).toEqual(NOW)
  })

  it("leaves express, withdrawn and already expired leads alone", async () => {
    const tenantId = await newTenant()
    const old = "2024-01-01T00:00:00Z"
    const express = await insertLead(tenantId, { status: "express", impliedAt: old })
    const withdrawn = await insertLead(tenantId, { status: "withdrawn", impliedAt: old })
    const pending = await insertLead(tenantId, { status: "pending", impliedAt: null })
    const expiredBefore = await insertLead(tenantId, {
      status: "implied",
      impliedAt: old,
      expiredAt: "2024-07-02T00:00:00Z"
    })

    const counts = await run()

    expect(countFor(counts, tenantId)).toBe(0)
    for (const leadId of [express, withdrawn, pending]) {
      expect((await leadOf(leadId))?.["consent_expired_at"]).toBeNull()
      expect(await eventsOf(leadId)).toEqual([])
    }
    expect((await leadOf(expiredBefore))?.["consent_expired_at"]).toEqual(new Date("2024-07-02T00:00:00Z"))
    expect(await eventsOf(expiredBefore)).toEqual([])
  })

  it("expires several batches of leads", async () => {
    const tenantId = await newTenant()
    const total = BATCH_SIZE * 2 + 500
    await ownerRows(database.url, `
      INSERT INTO leads (tenant_id, email_normalized, email_display, consent_status, implied_consent_at,
                         first_captured_at, last_captured_at)
      SELECT $1, 'bulk' || n || '@example.com', 'bulk' || n || '@example.com', 'implied',
             '2025-01-01T00:00:00Z'::timestamptz + make_interval(mins => n), '2025-01-01', '2025-01-01'
      FROM generate_series(1, $2::int) AS n`, [tenantId, total])

    const counts = await run()

    expect(countFor(counts, tenantId)).toBe(total)
    const summary = await ownerRows(database.url, `
      SELECT count(*)::int AS leads, count(*) FILTER (WHERE consent_expired_at = $2)::int AS expired,
             (SELECT count(*)::int FROM consent_events WHERE tenant_id = $1) AS events,
             (SELECT count(DISTINCT lead_id)::int FROM consent_events WHERE tenant_id = $1) AS leads_with_events
      FROM leads WHERE tenant_id = $1`, [tenantId, NOW])
    expect(summary[0]).toEqual({ leads: total, expired: total, events: total, leads_with_events: total })
  })

  it("lists every tenant, zero included", async () => {
    const busy = await newTenant()
    const quiet = await newTenant()
    await insertLead(busy, { status: "implied", impliedAt: "2025-05-01T00:00:00Z" })
    await insertLead(quiet, { status: "express", impliedAt: null })

    const counts = await run()

    expect(countFor(counts, busy)).toBe(1)
    expect(countFor(counts, quiet)).toBe(0)
    const tenants = await ownerRows(database.url, "SELECT count(*)::int AS n FROM tenants")
    expect(counts).toHaveLength(Number(tenants[0]?.["n"]))
  })
})

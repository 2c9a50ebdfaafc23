import { Effect, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TEST_PEPPER } from "./support/appDatabase.ts"
import { type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

const INGEST_KEY = "pk_leads_test_key_0123456789abcdef"
const SITE = "https://www.acme.example"
const CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

let database: TestDatabase
let service: ServiceProcess

beforeAll(async () => {
  database = await createTestDatabase()
  service = await startService({
    env: {
      DATABASE_URL: Redacted.value(database.url).href,
      IP_HASH_PEPPER: TEST_PEPPER,
      INGEST_API_KEY: INGEST_KEY,
      CORS_ALLOWED_ORIGINS: SITE,
      LEAD_RATE_LIMIT_PER_MINUTE: "1000",
      LEAD_RATE_LIMIT_PER_EMAIL_HOUR: "1000"
    }
  })
})

afterAll(async () => {
  await service?.stop()
})

const rows = (text: string, values?: ReadonlyArray<unknown>) =>
  Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.map(ownerQuery(client, text, values), (result) => result.rows)))

const captureJson = (fields: Record<string, unknown>, headers: Record<string, string> = {}) =>
  fetch(`${service.baseUrl}/v1/leads/capture`, {
    method: "POST",
    headers: { "content-type": "application/json", "user-agent": CHROME, ...headers },
    body: JSON.stringify({ key: INGEST_KEY, formName: "contact", ...fields }),
    signal: AbortSignal.timeout(15_000)
  })

const captureForm = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${service.baseUrl}/v1/leads/capture`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "user-agent": CHROME, ...headers },
    body: new URLSearchParams({ key: INGEST_KEY, formName: "contact", website: "", ...fields }).toString(),
    redirect: "manual",
    signal: AbortSignal.timeout(15_000)
  })

const leadByEmail = async (normalized: string) =>
  (await rows("SELECT * FROM leads WHERE email_normalized = $1", [normalized]))[0]

const consentTrail = async (normalized: string) =>
  (await rows(`
    SELECT c.status, c.source, c.purpose FROM consent_events c JOIN leads l ON l.id = c.lead_id
    WHERE l.email_normalized = $1 ORDER BY c."timestamp", c.id`, [normalized]))

describe("lead capture as JSON", () => {
  it("answers 201 for a new lead and 200 for a known one", async () => {
    const email = `new-${randomUUID()}@example.com`

    const capturedAt = async () =>
      Number((await rows("SELECT extract(epoch FROM last_captured_at)::float8 AS at FROM leads WHERE email_normalized = $1", [
        email
      ]))[0]?.["at"])

    const first = await captureJson({ email, consent: "express" })
    const before = await capturedAt()
    await new Promise((resolve) => setTimeout(resolve, 20))
    const second = await captureJson({ email })
    const after = await capturedAt()

    expect(first.status).toBe(201)
    expect(await first.json()).toEqual({ status: "created" })
    expect(second.status).toBe(200)
    expect(await second.json()).toEqual({ status: "updated" })
    expect((await rows("SELECT count(*)::int AS n FROM leads WHERE email_normalized = $1", [email]))[0]?.["n"]).toBe(1)
    expect(after).toBeGreaterThan(before)
  })

  it("normalises the address and keeps it as typed for display", async () => {
    const local = `Jörg.${randomUUID().slice(0, 8)}`

    const response = await captureJson({ email: `  ${local}@Bücher.DE ` })

    expect(response.status).toBe(201)
    const normalized = `${local.toLowerCase()}@xn--bcher-kva.de`
    const lead = await leadByEmail(normalized)
    expect(lead?.["email_display"]).toBe(`${local}@Bücher.DE`)
    expect(lead?.["email_domain"]).toBe("xn--bcher-kva.de")
  })

  it("keeps different addresses apart, with no provider-specific merging", async () => {
    const tag = randomUUID().slice(0, 8)

    await captureJson({ email: `first.last+${tag}@gmail.com` })
    await captureJson({ email: `firstlast+${tag}@gmail.com` })

    const stored = await rows("SELECT email_normalized FROM leads WHERE email_normalized LIKE $1", [`%+${tag}@gmail.com`])
    expect(stored).toHaveLength(2)
  })

  it("answers an invalid email with a localised 400 naming the field", async () => {
    const response = await captureJson({ email: "not an address" }, { "accept-language": "fr-CA" })

    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({
      error: {
        code: "invalid_lead",
        fields: [{ path: "email", code: "invalid_email", message: "email n’est pas une adresse courriel valide." }]
      }
    })
  })

  it("records express, then implied is not raised over a withdrawal", async () => {
    const email = `consent-${randomUUID()}@example.com`

    await captureJson({ email, consentText: "Send me the newsletter" })
    const implied = await leadByEmail(email)
    await rows("UPDATE leads SET consent_status = 'withdrawn', withdrawn_at = now() WHERE email_normalized = $1", [email])
    await captureJson({ email })
    const stillWithdrawn = await leadByEmail(email)
    await captureJson({ email, consent: "express", consentText: "Send me the newsletter" })
    const express = await leadByEmail(email)

    expect(implied?.["consent_status"]).toBe("implied")
    expect(implied?.["implied_consent_at"]).not.toBeNull()
    expect(stillWithdrawn?.["consent_status"]).toBe("withdrawn")
    expect(express?.["consent_status"]).toBe("express")
    expect(await consentTrail(email)).toEqual([
      { status: "implied", source: "contact", purpose: "Send me the newsletter" },
      { status: "express", source: "contact", purpose: "Send me the newsletter" }
    ])
  })

  it("keeps express consent when a later inquiry has no ticked box", async () => {
    const email = `keep-${randomUUID()}@example.com`

    await captureJson({ email, consent: "express" })
    await captureJson({ email })

    expect((await leadByEmail(email))?.["consent_status"]).toBe("express")
    expect(await consentTrail(email)).toHaveLength(1)
  })

  it("links the visitor with confidence 1 and a same-IP visitor with less", async () => {
    const email = `link-${randomUUID()}@example.com`
    const submitting = `v-${randomUUID()}`
    const earlier = `v-${randomUUID()}`
    await fetch(`${service.baseUrl}/v1/events`, {
      method: "POST",
      headers: { "content-type": "text/plain", "user-agent": CHROME },
      body: JSON.stringify({ key: INGEST_KEY, anonId: earlier, eventType: "page_view", path: "/" })
    })

    await captureJson({ email, anonId: submitting })

    const links = await rows(`
      SELECT v.anon_id, i.link_source, i.confidence::float8 AS confidence
      FROM lead_identities i JOIN visitors v ON v.id = i.visitor_id JOIN leads l ON l.id = i.lead_id
      WHERE l.email_normalized = $1 ORDER BY i.confidence DESC`, [email])
    expect(links[0]).toEqual({ anon_id: submitting, link_source: "form_submit", confidence: 1 })
    expect(links.find((link) => link["anon_id"] === earlier)).toMatchObject({ link_source: "same_ip_ua_window" })
    expect(Number(links.find((link) => link["anon_id"] === earlier)?.["confidence"])).toBeLessThan(1)
  })

  it("keeps the first touch and the last non-direct touch", async () => {
    const email = `touch-${randomUUID()}@example.com`
    const anonId = `v-${randomUUID()}`
    const send = (body: Record<string, unknown>) =>
      fetch(`${service.baseUrl}/v1/events`, {
        method: "POST",
        headers: { "content-type": "text/plain", "user-agent": CHROME },
        body: JSON.stringify({ key: INGEST_KEY, anonId, eventType: "page_view", ...body })
      })
    await send({ path: "/blog", referrer: "https://www.google.com/search?q=lead+capture" })
    await send({ path: "/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=launch" })
    await send({ path: "/contact" })

    await captureJson({ email, anonId })

    expect(await leadByEmail(email)).toMatchObject({
      first_touch_source: "organic_search",
      first_touch_landing_path: "/blog",
      source_channel: "organic_search",
      last_touch_source: "email",
      last_touch_medium: "email",
      last_touch_campaign: "launch",
      last_touch_landing_path: "/pricing"
    })
  })

  it("stores the allow-listed fields and drops the others", async () => {
    const email = `fields-${randomUUID()}@example.com`

    await captureJson({ email, name: "Ada", company: "Acme", password: "hunter2", message: "Hello" })

    const submission = (await rows(`
      SELECT f.fields FROM form_submissions f JOIN leads l ON l.id = f.lead_id WHERE l.email_normalized = $1`, [email]))[0]
    expect(submission?.["fields"]).toEqual({ name: "Ada", company: "Acme", message: "Hello" })
  })

  it("stores the lead's locale from the page, else from Accept-Language", async () => {
    const fromPage = `locale-a-${randomUUID()}@example.com`
    const fromHeader = `locale-b-${randomUUID()}@example.com`

    await captureJson({ email: fromPage, locale: "fr-CA" })
    await captureJson({ email: fromHeader }, { "accept-language": "fr-CA,fr;q=0.9" })

    expect((await leadByEmail(fromPage))?.["locale"]).toBe("fr-CA")
    expect((await leadByEmail(fromHeader))?.["locale"]).toBe("fr")
  })

  it("adds no conversion event of its own on the JSON path", async () => {
    const anonId = `v-${randomUUID()}`

    await captureJson({ email: `noevent-${randomUUID()}@example.com`, anonId })

    const events = await rows(`
      SELECT e.event_type FROM events e JOIN visitors v ON v.id = e.visitor_id WHERE v.anon_id = $1`, [anonId])
    expect(events).toEqual([])
  })
})

describe("lead capture as a plain HTML form", () => {
  it("redirects with 303 to the confirmation page and records the conversion", async () => {
    const email = `form-${randomUUID()}@example.com`
    const anonId = `v-${randomUUID()}`

    const response = await captureForm({ email, consent: "express", anonId }, { referer: `${SITE}/contact` })

    expect(response.status).toBe(303)
    expect(response.headers.get("location")).toBe("/v1/leads/thanks?lang=en")
    expect((await leadByEmail(email))?.["consent_status"]).toBe("express")
    const events = await rows(`
      SELECT e.event_type, e.is_conversion, e.path FROM events e JOIN visitors v ON v.id = e.visitor_id
      WHERE v.anon_id = $1`, [anonId])
    expect(events).toEqual([{ event_type: "form_submit", is_conversion: true, path: "/contact" }])
  })

  it("redirects to the property's thank-you page on its own domain", async () => {
    await rows("UPDATE properties SET thank_you_url = $1 WHERE slug = 'default'", [`${SITE}/thanks`])
    try {
      const response = await captureForm({ email: `thanks-${randomUUID()}@example.com` })

      expect(response.status).toBe(303)
      expect(response.headers.get("location")).toBe(`${SITE}/thanks`)
    } finally {
      await rows("UPDATE properties SET thank_you_url = NULL WHERE slug = 'default'")
    }
  })

  it("refuses to redirect to a thank-you page on a foreign domain", async () => {
    await rows("UPDATE properties SET thank_you_url = 'https://evil.example/phish' WHERE slug = 'default'")
    try {
      const response = await captureForm({ email: `foreign-${randomUUID()}@example.com` })

      expect(response.status).toBe(303)
      expect(response.headers.get("location")).toBe("/v1/leads/thanks?lang=en")
    } finally {
      await rows("UPDATE properties SET thank_you_url = NULL WHERE slug = 'default'")
    }
  })

  it("answers invalid input with a localised HTML page that links back", async () => {
    const response = await captureForm({ email: "nope" }, { "accept-language": "fr-CA", referer: `${SITE}/contact` })

    expect(response.status).toBe(400)
    expect(response.headers.get("content-type")).toContain("text/html")
    const page = await response.text()
    expect(page).toContain("Courriel n’est pas une adresse courriel valide.")
    expect(page).toContain(`href="${SITE}/contact"`)
  })

  it("shows the confirmation page in French", async () => {
    const response = await fetch(`${service.baseUrl}/v1/leads/thanks?lang=fr`)

    expect(response.status).toBe(200)
    expect(await response.text()).toContain("Nous avons bien reçu votre message")
  })
})

describe("lead capture spam control", () => {
  it("answers a filled honeypot as accepted and stores nothing but a count", async () => {
    const email = `bot-${randomUUID()}@example.com`

    const json = await captureJson({ email, website: "http://spam.example" })
    const form = await captureForm({ email, website: "http://spam.example" })

    expect(json.status).toBe(201)
    expect(form.status).toBe(303)
    expect(await leadByEmail(email)).toBeUndefined()
    const counted = await rows("SELECT submissions::int AS n FROM lead_spam_counts WHERE reason = 'honeypot'")
    expect(counted[0]?.["n"]).toBe(2)
  })

  it("answers 429 with Retry-After past the per-email limit", async () => {
    const limited = await startService({
      env: {
        DATABASE_URL: Redacted.value(database.url).href,
        IP_HASH_PEPPER: TEST_PEPPER,
        INGEST_API_KEY: INGEST_KEY,
        LEAD_RATE_LIMIT_PER_EMAIL_HOUR: "2"
      }
    })
    try {
      const email = `limit-${randomUUID()}@example.com`
      const send = () =>
        fetch(`${limited.baseUrl}/v1/leads/capture`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ key: INGEST_KEY, formName: "contact", email })
        })

      const statuses = [(await send()).status, (await send()).status]
      const third = await send()

      expect(statuses).toEqual([201, 200])
      expect(third.status).toBe(429)
      expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0)
    } finally {
      await limited.stop()
    }
  })
})

describe("lead capture atomicity", () => {
  it("leaves no half-written lead when the transaction fails", async () => {
    const email = `crash-${randomUUID()}@example.com`
    await rows(`
      CREATE OR REPLACE FUNCTION test_fail_submission() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected failure'; END $$`)
    await rows(`
      CREATE TRIGGER test_fail_submission BEFORE INSERT ON form_submissions
      FOR EACH ROW WHEN (NEW.form_name = 'explode') EXECUTE FUNCTION test_fail_submission()`)
    try {
      const response = await captureJson({ email, formName: "explode", consent: "express" })

      expect(response.status).toBe(500)
      expect(await leadByEmail(email)).toBeUndefined()
      expect(await rows("SELECT 1 FROM consent_events c JOIN leads l ON l.id = c.lead_id WHERE l.email_normalized = $1", [
        email
      ])).toEqual([])
    } finally {
      await rows("DROP TRIGGER test_fail_submission ON form_submissions")
    }
  })
})

describe("email test data through the endpoint", () => {
  it("accepts and refuses the is_email cases as the parser does", async () => {
    const file = new URL("../../shared/testdata/email_isemail.json", import.meta.url)
    const vectors: Array<{ input: string; strict_valid: boolean }> = JSON.parse(Fs.readFileSync(file, "utf8")).vectors

    let agree = 0
    for (const vector of vectors) {
      const response = await captureJson({ email: vector.input })
      const accepted = response.status === 201 || response.status === 200
      if (accepted === vector.strict_valid) agree++
    }

    const share = agree / vectors.length
    console.log(`email_isemail.json through POST /v1/leads/capture: ${agree}/${vectors.length} (${(share * 100).toFixed(1)}%)`)
    expect(share).toBeGreaterThanOrEqual(0.95)
  })
})

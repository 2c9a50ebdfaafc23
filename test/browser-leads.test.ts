/**
 * The lead form with JavaScript off, in headless Debian Chromium: a plain
 * HTML form post to the real service, which responds with 303 to its localised
 * confirmation page once the lead is committed.
 */
import { Effect, Redacted } from "effect"
import { type Browser, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { generateApiKey } from "../src/services/ApiKeyFormat.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TEST_PEPPER } from "./support/appDatabase.ts"
import { freePort } from "./support/ports.ts"
import { type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

const INGEST_KEY = generateApiKey("ingest")
const ACTION_TIMEOUT_MS = 10_000

let database: TestDatabase
let service: ServiceProcess
let browser: Browser
let origin: string

beforeAll(async () => {
  database = await createTestDatabase()
  const port = await freePort()
  origin = `http://127.0.0.1:${port}`
  service = await startService({
    env: {
      PORT: String(port),
      DATABASE_URL: Redacted.value(database.url).href,
      IP_HASH_PEPPER: TEST_PEPPER,
      INGEST_API_KEY: INGEST_KEY,
      CORS_ALLOWED_ORIGINS: origin
    }
  })
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: 30_000
  })
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await service?.stop()
})

const rows = (text: string, values?: ReadonlyArray<unknown>) =>
  Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.map(ownerQuery(client, text, values), (result) => result.rows)))

describe("lead form without JavaScript", () => {
  it("posts the plain form, follows the 303 and stores the lead", async () => {
    const context = await browser.newContext({ javaScriptEnabled: false, locale: "fr-CA" })
    const page = await context.newPage()
    page.setDefaultTimeout(ACTION_TIMEOUT_MS)
    try {
      await page.goto(`${origin}/contact.html`)
      await page.fill("#email", "Marie.Tremblay@Example.CA")
      await page.fill("#name", "Marie Tremblay")
      await page.check("#consent")
      const [response] = await Promise.all([
        page.waitForNavigation(),
        page.click("button[type=submit]")
      ])

      expect(new URL(page.url()).pathname).toBe("/v1/leads/thanks")
      expect(response?.status()).toBe(200)
      expect(await page.textContent("h1")).toBe("Merci")
      const leads = await rows(`
        SELECT email_display, consent_status, locale FROM leads WHERE email_normalized = 'marie.tremblay@example.ca'`)
      expect(leads).toEqual([{ email_display: "Marie.Tremblay@Example.CA", consent_status: "express", locale: "en" }])
      const trail = await rows(`
        SELECT c.status, c.source, c.purpose LIKE 'Acme Invoicing Inc.%' AS purpose_shown
        FROM consent_events c JOIN leads l ON l.id = c.lead_id
        WHERE l.email_normalized = 'marie.tremblay@example.ca'`)
      expect(trail).toEqual([{ status: "express", source: "contact-sales", purpose_shown: true }])
      const conversions = await rows(`
        SELECT e.path, e.is_conversion FROM events e JOIN form_submissions f ON f.visitor_id = e.visitor_id
        JOIN leads l ON l.id = f.lead_id
        WHERE l.email_normalized = 'marie.tremblay@example.ca' AND e.event_type = 'form_submit'`)
      expect(conversions).toEqual([{ path: "/contact.html", is_conversion: true }])
    } finally {
      await context.close()
    }
  }, 60_000)

  it("shows a French page naming the problem for an invalid address", async () => {
    const context = await browser.newContext({ javaScriptEnabled: false, locale: "fr-CA" })
    const page = await context.newPage()
    page.setDefaultTimeout(ACTION_TIMEOUT_MS)
    try {
      await page.goto(`${origin}/contact.html`)
      // Browsers check type=email themselves; turn that off to reach the server's check.
      await page.$eval("form", (form) => form.setAttribute("novalidate", ""))
      await page.fill("#email", "marie@")
      const [response] = await Promise.all([
        page.waitForNavigation(),
        page.click("button[type=submit]")
      ])

      expect(response?.status()).toBe(400)
      expect(await page.textContent("h1")).toBe("Votre formulaire n’a pas pu être envoyé")
      expect(await page.textContent("li")).toBe("Courriel n’est pas une adresse courriel valide.")
      expect(await page.getAttribute("a", "href")).toBe(`${origin}/contact.html`)
    } finally {
      await context.close()
    }
  }, 60_000)
})

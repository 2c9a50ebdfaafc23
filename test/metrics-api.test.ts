import { Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { TEST_PEPPER } from "./support/appDatabase.ts"
import { type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase } from "./support/testDatabase.ts"

const ADMIN_KEY = "sk_metrics_admin_key_0123456789ab"
const INGEST_KEY = "pk_metrics_ingest_key_0123456789a"
const CHROME = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
const BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

let service: ServiceProcess
const today = new Date().toISOString().slice(0, 10)

const track = (anonId: string, events: ReadonlyArray<Record<string, unknown>>, userAgent = CHROME) =>
  fetch(`${service.baseUrl}/v1/events`, {
    method: "POST",
    headers: { "content-type": "text/plain", "user-agent": userAgent },
    body: JSON.stringify({ key: INGEST_KEY, events: events.map((event) => ({ anonId, ...event })) })
  })

const get = async (path: string) => {
  const response = await fetch(`${service.baseUrl}${path}`, { headers: { "x-api-key": ADMIN_KEY } })
  return { status: response.status, body: await response.json() }
}

beforeAll(async () => {
  const database = await createTestDatabase()
  service = await startService({
    env: {
      DATABASE_URL: Redacted.value(database.url).href,
      IP_HASH_PEPPER: TEST_PEPPER,
      ADMIN_API_KEY: ADMIN_KEY,
      INGEST_API_KEY: INGEST_KEY
    }
  })
  const alice = `alice-${randomUUID()}`
  const bob = `bob-${randomUUID()}`
  await track(alice, [
    { eventType: "page_view", path: "/", referrer: "https://www.google.com/search?q=invoicing" },
    { eventType: "web_vitals", path: "/", props: { ttfbMs: 100, lcpMs: 2000, clsScore: 0.05 } },
    { eventType: "page_view", path: "/contact" },
    { eventType: "form_start", path: "/contact" },
    { eventType: "form_submit", path: "/contact" }
  ])
  await track(bob, [
    { eventType: "page_view", path: "/pricing?utm_source=news&utm_medium=email&utm_campaign=launch&utm_term=billing" },
    { eventType: "web_vitals", path: "/pricing", props: { ttfbMs: 900, lcpMs: 5000, clsScore: 0.3 } }
  ])
  await track(`bot-${randomUUID()}`, [{ eventType: "page_view", path: "/" }], BOT)
  await fetch(`${service.baseUrl}/v1/leads/capture`, {
    method: "POST",
    headers: { "content-type": "application/json", "user-agent": CHROME },
    body: JSON.stringify({ key: INGEST_KEY, email: `alice-${randomUUID()}@example.com`, anonId: alice, formName: "contact" })
  })
})

afterAll(async () => {
  await service?.stop()
})

describe("metrics API", () => {
  it("summarises today from live events", async () => {
    const { status, body } = await get(`/v1/metrics/summary?from=${today}&to=${today}`)

    expect(status).toBe(200)
    expect(body).toMatchObject({
      metrics: {
        uniqueVisitors: { value: 2, previous: 0, change: null },
        sessions: { value: 2 },
        pageViews: { value: 3 },
        formCompletionRate: { value: 1 },
        newLeads: { value: 1 },
        leadCaptureRate: { value: 0.5 },
        landingPageConversionRate: { value: 0.5 },
        botShare: { value: 1 / 8 },
        ingestSuccessRate: { value: 1 }
      },
      topSearchKeywords: [{ keyword: "billing", sessions: 1 }],
      freshness: { rolledUpAt: expect.any(String), dataThrough: expect.any(String) }
    })
    expect(body).toMatchObject({
      trafficSourceMix: expect.arrayContaining([
        { source: "organic_search", sessions: 1, share: 0.5 },
        { source: "email", sessions: 1, share: 0.5 }
      ])
    })
  })

  it("breaks down pages with their entrance conversion", async () => {
    const { status, body } = await get(`/v1/metrics/breakdown?dimension=path&from=${today}&to=${today}`)

    expect(status).toBe(200)
    expect(body).toMatchObject({
      rows: expect.arrayContaining([
        expect.objectContaining({ value: "/", pageViews: 1, entrances: 1, convertingEntrances: 1, entranceConversionRate: 1 })
      ])
    })
  })

  it("gives a daily series with a zero day", async () => {
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)

    const { body } = await get(`/v1/metrics/series?from=${yesterday}&to=${today}`)

    expect(body).toMatchObject({
      days: [
        { day: yesterday, visitors: 0, sessions: 0, pageViews: 0, conversions: 0, newLeads: 0 },
        { day: today, visitors: 2 }
      ]
    })
  })

  it("counts leads by first-touch source and marketability", async () => {
    const { body } = await get(`/v1/metrics/leads?from=${today}&to=${today}`)

    expect(body).toMatchObject({ sources: [{ source: "organic_search", marketable: 1, notMarketable: 0 }] })
  })

  it("reports Core Web Vitals per page with p75 and shares", async () => {
    const { body } = await get(`/v1/metrics/web-vitals?from=${today}&to=${today}`)

    expect(body).toMatchObject({
      pages: expect.arrayContaining([expect.objectContaining({
        path: "/pricing",
        vitals: expect.objectContaining({
          lcpMs: { p75: 5000, good: 0, needsImprovement: 0, poor: 1 },
          ttfbMs: { p75: 900, good: 0, needsImprovement: 1, poor: 0 }
        })
      })])
    })
  })

  it("counts visitors active in the last five minutes", async () => {
    const { status, body } = await get("/v1/metrics/realtime")

    expect(status).toBe(200)
    expect(body).toMatchObject({ visitors: 3 })
  })

  it.each([
    ["from=2026-02-30&to=2026-03-01", "from", "invalid_date"],
    ["from=2026-03-02&to=2026-03-01", "to", "before_from"],
    ["from=2020-01-01&to=2026-01-01", "from", "range_too_long"],
    ["compare=yesterday", "compare", "invalid"]
  ])("refuses %s naming the field", async (query, path, code) => {
    const { status, body } = await get(`/v1/metrics/summary?${query}`)

    expect(status).toBe(400)
    expect(body).toMatchObject({ error: { fields: [expect.objectContaining({ path, code })] } })
  })

  it("answers an unknown property with 404", async () => {
    const { status, body } = await get("/v1/metrics/summary?property=nope")

    expect(status).toBe(404)
    expect(body).toMatchObject({ error: { code: "property_not_found" } })
  })
})

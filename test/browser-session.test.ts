/**
 * End-to-end sessions: headless Debian Chromium, driven by playwright-core,
 * browses the example site served by the real service. The tracker's beacons
 * go to the service's POST /v1/events, and the test reads the stored
 * visitors, sessions and events as the database owner.
 */
import { Effect, Redacted } from "effect"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { generateApiKey } from "../src/services/ApiKeyFormat.ts"
import { ownerQuery, withOwnerClient } from "../src/services/OwnerClient.ts"
import { TEST_PEPPER } from "./support/appDatabase.ts"
import { freePort } from "./support/ports.ts"
import { type ServiceProcess, startService } from "./support/serviceProcess.ts"
import { createTestDatabase, type TestDatabase } from "./support/testDatabase.ts"

const CHROMIUM_PATH = "/usr/bin/chromium"
const INGEST_KEY = generateApiKey("ingest")
const NEWSLETTER_QUERY = "?utm_source=newsletter&utm_medium=email&utm_campaign=launch"
const AD_QUERY = "?utm_campaign=other&utm_source=ads&utm_medium=cpc"
// Each step takes well under a second on a local server. The limits leave
// room for a slow CI machine and bound every wait.
const ACTION_TIMEOUT_MS = 10_000
const STORE_TIMEOUT_MS = 15_000
const POLL_INTERVAL_MS = 100
const TEST_TIMEOUT_MS = 60_000

// The tracker posts a lead form as JSON and, when that fails, falls back to
// HTMLFormElement.prototype.submit, a plain form post that leaves the page.
// This init script replaces that fallback with a counter, so the visit stays
// on the contact page whether or not the service has a lead endpoint.
const STOP_FORM_POSTS = `
  window.porchlightTestFormPosts = 0
  HTMLFormElement.prototype.submit = function () { window.porchlightTestFormPosts++ }
`

interface StoredVisitor {
  readonly id: string
  readonly anonId: string
}

interface StoredSession {
  readonly id: string
  readonly visitorId: string
  readonly landingPath: string | null
  readonly exitPath: string | null
  readonly pageViews: number
  readonly isConversion: boolean
  readonly trafficSource: string
  readonly utmSource: string | null
  readonly utmMedium: string | null
  readonly utmCampaign: string | null
  readonly endedAt: Date | null
}

interface StoredEvent {
  readonly id: string
  readonly visitorId: string
  readonly sessionId: string
  readonly eventType: string
  readonly path: string
  readonly isEntrance: boolean
  readonly isExit: boolean
  readonly isConversion: boolean
  /** The `cta` prop of a cta_click. */
  readonly cta: string | null
  /** The `formName` prop of a form event. */
  readonly formName: string | null
}

/** The rows of the visitors created since a snapshot of visitor ids. */
interface StoredVisit {
  readonly visitors: ReadonlyArray<StoredVisitor>
  readonly sessions: ReadonlyArray<StoredSession>
  /** In receive order. */
  readonly events: ReadonlyArray<StoredEvent>
}

let database: TestDatabase
let service: ServiceProcess
let origin: string
let browser: Browser
let context: BrowserContext | undefined

/** Runs one statement as the owner, whose own policy reads every tenant's rows, and returns its rows. */
const owner = (text: string, values?: ReadonlyArray<unknown>): Promise<Array<Record<string, unknown>>> =>
  Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.map(ownerQuery(client, text, values), (result) => result.rows)))

const text = (row: Record<string, unknown>, column: string): string => String(row[column])

const nullableText = (row: Record<string, unknown>, column: string): string | null => {
  const value = row[column]
  return value === null || value === undefined ? null : String(value)
}

const visitorIds = async (): Promise<Array<string>> =>
  (await owner("SELECT id FROM visitors")).map((row) => text(row, "id"))

const toSession = (row: Record<string, unknown>): StoredSession => {
  const endedAt = row["ended_at"]
  return {
    id: text(row, "id"),
    visitorId: text(row, "visitor_id"),
    landingPath: nullableText(row, "landing_path"),
    exitPath: nullableText(row, "exit_path"),
    pageViews: Number(row["page_views"]),
    isConversion: row["is_conversion"] === true,
    trafficSource: text(row, "traffic_source"),
    utmSource: nullableText(row, "utm_source"),
    utmMedium: nullableText(row, "utm_medium"),
    utmCampaign: nullableText(row, "utm_campaign"),
    endedAt: endedAt instanceof Date ? endedAt : null
  }
}

const toEvent = (row: Record<string, unknown>): StoredEvent => ({
  id: text(row, "id"),
  visitorId: text(row, "visitor_id"),
  sessionId: text(row, "session_id"),
  eventType: text(row, "event_type"),
  path: text(row, "path"),
  isEntrance: row["is_entrance"] === true,
  isExit: row["is_exit"] === true,
  isConversion: row["is_conversion"] === true,
  cta: nullableText(row, "cta"),
  formName: nullableText(row, "form_name")
})

// The three reads share one REPEATABLE READ snapshot, so a batch committed
// between two of them cannot pair its events with the session row from
// before it (three page views stored, but page_views 2 and exit_path
// /pricing.html).
const readVisit = (knownVisitorIds: ReadonlyArray<string>): Promise<StoredVisit> =>
  Effect.runPromise(withOwnerClient(database.url, (client) =>
    Effect.gen(function*() {
      const rowsOf = (statement: string, values: ReadonlyArray<unknown>) =>
        Effect.map(ownerQuery(client, statement, values), (result): Array<Record<string, unknown>> => result.rows)
      yield* ownerQuery(client, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
      const visitorRows = yield* rowsOf(
        "SELECT id, anon_id FROM visitors WHERE NOT (id = ANY($1::uuid[])) ORDER BY first_seen_at, id",
        [knownVisitorIds]
      )
      const visitors = visitorRows.map((row) => ({ id: text(row, "id"), anonId: text(row, "anon_id") }))
      const ids = visitors.map((visitor) => visitor.id)
      const sessionRows = yield* rowsOf(
        `SELECT id, visitor_id, landing_path, exit_path, page_views, is_conversion, traffic_source,
                utm_source, utm_medium, utm_campaign, ended_at
         FROM sessions WHERE visitor_id = ANY($1::uuid[]) ORDER BY started_at, id`,
        [ids]
      )
      // Event ids are UUIDv7 made in batch order, so (timestamp, id) is receive order.
      const eventRows = yield* rowsOf(
        `SELECT id, visitor_id, session_id, event_type, path, is_entrance, is_exit, is_conversion,
                props ->> 'cta' AS cta, props ->> 'formName' AS form_name
         FROM events WHERE visitor_id = ANY($1::uuid[]) ORDER BY "timestamp", id`,
        [ids]
      )
      yield* ownerQuery(client, "COMMIT")
      return { visitors, sessions: sessionRows.map(toSession), events: eventRows.map(toEvent) }
    })))

const describeEvents = (visit: StoredVisit) =>
  visit.events.map((event) => `${event.eventType} ${event.path}`).join(", ") || "none"

/** Polls the database until `isComplete` holds for the visit, or fails after STORE_TIMEOUT_MS. */
const waitForVisit = async (
  knownVisitorIds: ReadonlyArray<string>,
  description: string,
  isComplete: (visit: StoredVisit) => boolean
): Promise<StoredVisit> => {
  const deadline = Date.now() + STORE_TIMEOUT_MS
  for (;;) {
    const visit = await readVisit(knownVisitorIds)
    if (isComplete(visit)) return visit
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${STORE_TIMEOUT_MS} ms waiting for ${description} (events stored: ${describeEvents(visit)})`
      )
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS))
  }
}

const ofType = (visit: StoredVisit, eventType: string) => visit.events.filter((event) => event.eventType === eventType)

// Closing with runBeforeUnload takes the browser's normal close path, which
// fires pagehide and visibilitychange the way closing a tab does, so the
// tracker flushes its queue.
const closeLikeATab = (page: Page) => page.close({ runBeforeUnload: true })

const openContext = async (): Promise<BrowserContext> => {
  const opened = await browser.newContext()
  opened.setDefaultTimeout(ACTION_TIMEOUT_MS)
  opened.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS)
  return opened
}

beforeAll(async () => {
  database = await createTestDatabase()
  // startService picks its own port and offers no way to learn it before the
  // start, but its env option is applied last, so PORT set here wins. That
  // lets CORS_ALLOWED_ORIGINS name the exact origin the pages are served from.
  // service.port and service.baseUrl then describe the unused port it picked,
  // so this file uses `origin` only.
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
  const started = service.logs().find((entry) => entry["msg"] === "service started")
  if (!String(started?.["address"]).endsWith(`:${port}`)) {
    throw new Error(`expected the service to listen on ${origin}, but it logged ${JSON.stringify(started)}`)
  }

  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    timeout: ACTION_TIMEOUT_MS,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
})

afterEach(async () => {
  await context?.close()
  context = undefined
})

afterAll(async () => {
  await browser?.close()
  await service?.stop()
})

describe("browser visit stored by the service", () => {
  it("makes one session from newsletter to lead", async () => {
    const knownVisitorIds = await visitorIds()
    context = await openContext()
    await context.addInitScript({ content: STOP_FORM_POSTS })
    const page = await context.newPage()
    // Fails the JSON lead post, so the result does not depend on whether the
    // service captures leads. A captured lead would open /thanks.html and add
    // a fourth page view.
    await page.route(`${origin}/v1/leads/capture`, (route) =>
      route.fulfill({ status: 503, contentType: "application/json", body: "{\"error\":\"stubbed by the test\"}" }))

    await page.goto(`${origin}/${NEWSLETTER_QUERY}`)
    await page.getByRole("link", { name: "Start a free trial" }).click()
    await page.waitForURL(`${origin}/pricing.html`)
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Contact sales" }).click()
    await page.waitForURL(`${origin}/contact.html`)
    await page.getByLabel("Work email").pressSequentially("dana.lee@example.com")
    await page.getByRole("button", { name: /Send/ }).click()
    // The fallback post runs after form_submit is queued and the JSON post failed.
    await page.waitForFunction("window.porchlightTestFormPosts === 1", undefined, { timeout: ACTION_TIMEOUT_MS })
    const anonId = await page.evaluate("localStorage.getItem('porchlight_anon_id')")
    expect(page.url()).toBe(`${origin}/contact.html`)
    await closeLikeATab(page)

    const visit = await waitForVisit(knownVisitorIds, "three page views and a form_submit", (stored) =>
      ofType(stored, "page_view").length >= 3 && ofType(stored, "form_submit").length >= 1)

    expect(visit.visitors).toHaveLength(1)
    expect(visit.visitors[0]?.anonId).toBe(anonId)
    expect(visit.sessions).toHaveLength(1)
    const session = visit.sessions[0]
    expect(session?.visitorId).toBe(visit.visitors[0]?.id)
    expect(session?.landingPath).toBe("/")
    // The site links to /pricing.html and /contact.html, and the tracker sends
    // location.pathname as it is.
    expect(session?.exitPath).toBe("/contact.html")
    expect(session?.pageViews).toBe(3)
    expect(session?.isConversion).toBe(true)
    expect(session?.trafficSource).toBe("email")
    expect(session?.utmSource).toBe("newsletter")
    expect(session?.utmMedium).toBe("email")
    expect(session?.utmCampaign).toBe("launch")

    for (const event of visit.events) {
      expect(event.sessionId, `session of ${event.eventType} ${event.path}`).toBe(session?.id)
      expect(event.path, `stored path of ${event.eventType}`).not.toMatch(/[?#]/)
    }

    const pageViews = ofType(visit, "page_view")
    expect(pageViews.map((event) => event.path)).toEqual(["/", "/pricing.html", "/contact.html"])
    const entrances = visit.events.filter((event) => event.isEntrance)
    expect(entrances).toHaveLength(1)
    expect(entrances[0]?.id).toBe(pageViews[0]?.id)
    const exits = visit.events.filter((event) => event.isExit)
    expect(exits).toHaveLength(1)
    expect(exits[0]?.id).toBe(pageViews[2]?.id)

    const ctaClicks = ofType(visit, "cta_click")
    expect(ctaClicks).toHaveLength(1)
    expect(ctaClicks[0]?.path).toBe("/")
    expect(ctaClicks[0]?.cta).toBe("hero-start-trial")
    const formStarts = ofType(visit, "form_start")
    expect(formStarts).toHaveLength(1)
    expect(formStarts[0]?.path).toBe("/contact.html")
    expect(formStarts[0]?.formName).toBe("contact-sales")
    const formSubmits = ofType(visit, "form_submit")
    expect(formSubmits).toHaveLength(1)
    expect(formSubmits[0]?.isConversion).toBe(true)
    expect(formSubmits[0]?.formName).toBe("contact-sales")
    const conversions = visit.events.filter((event) => event.isConversion)
    expect(conversions.map((event) => event.eventType)).toEqual(["form_submit"])
  }, TEST_TIMEOUT_MS)

  it("splits the session on a new campaign", async () => {
    const knownVisitorIds = await visitorIds()
    context = await openContext()
    const page = await context.newPage()

    await page.goto(`${origin}/${NEWSLETTER_QUERY}`)
    // The same tab follows an ad link: no referrer, other UTM tags.
    await page.goto(`${origin}/pricing${AD_QUERY}`)
    await page.getByRole("link", { name: "Talk to sales" }).click()
    await page.waitForURL(`${origin}/contact.html`)
    await closeLikeATab(page)

    const visit = await waitForVisit(knownVisitorIds, "three page views", (stored) =>
      ofType(stored, "page_view").length >= 3)

    expect(visit.visitors).toHaveLength(1)
    expect(ofType(visit, "page_view").map((event) => event.path)).toEqual(["/", "/pricing", "/contact.html"])
    expect(visit.sessions).toHaveLength(2)
    const [newsletter, ad] = visit.sessions

    expect(newsletter?.landingPath).toBe("/")
    expect(newsletter?.exitPath).toBe("/")
    expect(newsletter?.pageViews).toBe(1)
    expect(newsletter?.trafficSource).toBe("email")
    expect(newsletter?.utmCampaign).toBe("launch")
    expect(newsletter?.endedAt).toBeInstanceOf(Date)

    expect(ad?.landingPath).toBe("/pricing")
    expect(ad?.exitPath).toBe("/contact.html")
    expect(ad?.pageViews).toBe(2)
    expect(ad?.trafficSource).toBe("paid_search")
    expect(ad?.utmSource).toBe("ads")
    expect(ad?.utmMedium).toBe("cpc")
    expect(ad?.utmCampaign).toBe("other")
    expect(ad?.endedAt).toBeNull()

    for (const session of visit.sessions) {
      const pageViews = ofType(visit, "page_view").filter((event) => event.sessionId === session.id)
      const entrances = visit.events.filter((event) => event.sessionId === session.id && event.isEntrance)
      const exits = visit.events.filter((event) => event.sessionId === session.id && event.isExit)
      expect(entrances, `entrances of the session landing on ${session.landingPath}`).toHaveLength(1)
      expect(entrances[0]?.id).toBe(pageViews[0]?.id)
      expect(exits, `exits of the session landing on ${session.landingPath}`).toHaveLength(1)
      expect(exits[0]?.id).toBe(pageViews.at(-1)?.id)
    }
  }, TEST_TIMEOUT_MS)
})

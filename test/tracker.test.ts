/**
 * Browser tests of the demo site and its tracker (static/dist/porchlight.js).
 * A capture server of the test's own serves static/dist/ on 127.0.0.1 and
 * records every POST. Headless Debian Chromium, driven by playwright-core,
 * browses the site like a visitor.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from "playwright-core"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"

const DIST_DIR = fileURLToPath(new URL("../static/dist/", import.meta.url))
const CHROMIUM_PATH = "/usr/bin/chromium"
const DEMO_KEY = "pk_demo_replace_me"
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const BEACON_CONTENT_TYPE = "text/plain;charset=UTF-8"
// Each step takes well under a second on a local server. The limits leave
// room for a slow CI machine and bound every wait.
const ACTION_TIMEOUT_MS = 10_000
const BEACON_TIMEOUT_MS = 10_000
const TEST_TIMEOUT_MS = 45_000
const MAX_BODY_BYTES = 1_000_000

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8"
}

interface RecordedPost {
  readonly path: string
  readonly contentType: string
  /** The Sec-Fetch-Mode request header: "no-cors" for sendBeacon, "cors" for fetch. */
  readonly fetchMode: string
  readonly body: string
}

interface TrackedEvent {
  readonly eventId: string
  readonly anonId: string
  readonly eventType: string
  readonly path: string
  readonly referrer?: string
  readonly utm?: Readonly<Record<string, string>>
  readonly props?: Readonly<Record<string, string | number>>
  readonly timestamp: string
}

interface EventBatch {
  readonly key: string
  readonly events: ReadonlyArray<TrackedEvent>
}

interface CaptureServer {
  readonly origin: string
  readonly posts: Array<RecordedPost>
  readonly close: () => Promise<void>
}

const readBody = (request: Http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`request body is larger than ${MAX_BODY_BYTES} bytes`))
        request.destroy()
        return
      }
      chunks.push(chunk)
    })
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

const sendJson = (response: Http.ServerResponse, status: number, value: unknown) => {
  response.writeHead(status, { "content-type": "application/json" })
  response.end(JSON.stringify(value))
}

interface CaptureOptions {
  /** HTTP status for a lead posted as JSON, 201 unless a test needs the capture to fail. */
  readonly jsonLeadStatus?: number
  /** Milliseconds to wait before responding to a lead posted as JSON. */
  readonly jsonLeadDelayMs?: number
}

// Responds as the service's contract specifies: 202 with counts for events,
// 201 JSON for a lead posted by script, 303 to the thank-you page for a plain
// HTML form post.
const answerPost = (
  request: Http.IncomingMessage,
  response: Http.ServerResponse,
  post: RecordedPost,
  options: CaptureOptions
) => {
  if (post.path === "/v1/events") {
    let batch: Partial<EventBatch>
    try {
      batch = JSON.parse(post.body) as Partial<EventBatch>
    } catch {
      sendJson(response, 400, { error: "invalid JSON body" })
      return
    }
    sendJson(response, 202, { accepted: batch.events?.length ?? 1, rejected: 0 })
  } else if (post.path === "/v1/leads/capture" && post.contentType.startsWith("application/x-www-form-urlencoded")) {
    response.writeHead(303, { location: "/thanks.html" })
    response.end()
  } else if (post.path === "/v1/leads/capture") {
    const status = options.jsonLeadStatus ?? 201
    const body = status < 300 ? { status: "captured" } : { error: "capture failed in this test" }
    setTimeout(() => sendJson(response, status, body), options.jsonLeadDelayMs ?? 0)
  } else {
    sendJson(response, 404, { error: `no route for POST ${request.url}` })
  }
}

const serveFile = (requestPath: string, response: Http.ServerResponse) => {
  const relative = requestPath === "/" ? "index.html" : decodeURIComponent(requestPath).replace(/^\/+/, "")
  const file = Path.resolve(DIST_DIR, relative)
  if (!file.startsWith(DIST_DIR) || !Fs.existsSync(file) || !Fs.statSync(file).isFile()) {
    response.writeHead(404, { "content-type": "text/plain" })
    response.end(`not found: ${requestPath}`)
    return
  }
  response.writeHead(200, { "content-type": CONTENT_TYPES[Path.extname(file)] ?? "application/octet-stream" })
  response.end(Fs.readFileSync(file))
}

const startCaptureServer = async (options: CaptureOptions = {}): Promise<CaptureServer> => {
  const posts: Array<RecordedPost> = []
  const server = Http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1")
    if (request.method !== "POST") {
      serveFile(url.pathname, response)
      return
    }
    readBody(request).then(
      (body) => {
        const post: RecordedPost = {
          path: url.pathname,
          contentType: request.headers["content-type"] ?? "",
          fetchMode: String(request.headers["sec-fetch-mode"] ?? ""),
          body
        }
        posts.push(post)
        answerPost(request, response, post, options)
      },
      (error: unknown) => sendJson(response, 400, { error: String(error) })
    )
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    posts,
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    }
  }
}

const eventPosts = (server: CaptureServer) => server.posts.filter((post) => post.path === "/v1/events")

const recordedEvents = (server: CaptureServer): Array<TrackedEvent> =>
  eventPosts(server).flatMap((post) => (JSON.parse(post.body) as EventBatch).events)

const eventsOfType = (server: CaptureServer, eventType: string) =>
  recordedEvents(server).filter((event) => event.eventType === eventType)

const leadPosts = (server: CaptureServer) => server.posts.filter((post) => post.path === "/v1/leads/capture")

// Closing with runBeforeUnload takes the browser's normal close path, which
// fires visibilitychange and pagehide the way closing a tab does.
const closeLikeATab = (page: Page) => page.close({ runBeforeUnload: true })

// A polling loop of its own, because expect.poll works only inside a test
// and the journey below runs in beforeAll.
const waitForEvent = async (server: CaptureServer, description: string, predicate: (event: TrackedEvent) => boolean) => {
  const deadline = Date.now() + BEACON_TIMEOUT_MS
  while (!recordedEvents(server).some(predicate)) {
    if (Date.now() > deadline) {
      const seen = recordedEvents(server).map((event) => `${event.eventType} ${event.path}`)
      throw new Error(`timed out after ${BEACON_TIMEOUT_MS} ms waiting for ${description} (events seen: ${seen.join(", ") || "none"})`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

let browser: Browser

beforeAll(async () => {
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

afterAll(async () => {
  await browser?.close()
})

const openContext = async (options: BrowserContextOptions = {}): Promise<BrowserContext> => {
  const context = await browser.newContext(options)
  context.setDefaultTimeout(ACTION_TIMEOUT_MS)
  return context
}

describe("tracker on a visit from landing page to lead", () => {
  const entryQuery = "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-launch&gclid=test-click-id"
  const searchReferrer = "http://search.example/results?q=invoicing"
  const typedEmail = "dana.lee@example.com"
  let server: CaptureServer

  beforeAll(async () => {
    server = await startCaptureServer()
    const context = await openContext()
    try {
      const page = await context.newPage()
      await page.goto(`${server.origin}/${entryQuery}`, { referer: searchReferrer })
      await page.getByRole("link", { name: "Start a free trial" }).click()
      await page.waitForURL("**/pricing.html")
      await page.getByRole("link", { name: "Talk to sales" }).click()
      await page.waitForURL("**/contact.html")

      await page.getByLabel("Work email").fill(typedEmail)
      await page.getByLabel(/^Name/).fill("Dana Lee")
      await page.getByLabel("Company").fill("Lee & Daughters Plumbing")
      await page.getByRole("checkbox", { name: /email me product news/ }).check()
      await page.getByRole("button", { name: /Send/ }).click()
      await page.waitForURL("**/thanks.html")
      await page.getByRole("heading", { name: /Thank you/ }).waitFor()

      await closeLikeATab(page)
      await waitForEvent(server, "web_vitals from /thanks.html", (event) => event.eventType === "web_vitals" && event.path === "/thanks.html")
    } finally {
      await context.close()
    }
  }, TEST_TIMEOUT_MS)

  afterAll(async () => {
    await server?.close()
  })

  it("sends one page view per page", () => {
    const paths = eventsOfType(server, "page_view").map((event) => event.path)

    expect(paths).toEqual([`/${entryQuery}`, "/pricing.html", "/contact.html", "/thanks.html"])
  })

  it("keeps one anonId across pages", () => {
    const anonIds = new Set(recordedEvents(server).map((event) => event.anonId))

    expect(anonIds.size).toBe(1)
    expect([...anonIds][0]).toMatch(UUID_PATTERN)
  })

  it("gives each event a unique eventId", () => {
    const eventIds = recordedEvents(server).map((event) => event.eventId)

    expect(new Set(eventIds).size).toBe(eventIds.length)
    for (const eventId of eventIds) expect(eventId).toMatch(UUID_PATTERN)
  })

  it("sends referrer with each page load", () => {
    const [landing, pricing] = eventsOfType(server, "page_view")

    expect(landing?.referrer).toBe(searchReferrer)
    expect(pricing?.referrer).toBe(`${server.origin}/${entryQuery}`)
  })

  it("sends referrer only on page views", () => {
    const withReferrer = recordedEvents(server).filter((event) => event.referrer !== undefined)

    expect(new Set(withReferrer.map((event) => event.eventType))).toEqual(new Set(["page_view"]))
  })

  it("reads utm parameters from the URL", () => {
    const landingEvents = recordedEvents(server).filter((event) => event.path === `/${entryQuery}`)

    expect(landingEvents.length).toBeGreaterThan(1)
    for (const event of landingEvents) {
      expect(event.utm).toEqual({ source: "newsletter", medium: "email", campaign: "spring-launch" })
    }
    expect(eventsOfType(server, "page_view")[1]?.utm).toBeUndefined()
  })

  it("sends cta_click with its label", () => {
    const clicks = eventsOfType(server, "cta_click").map((event) => [event.path, event.props?.["cta"]])

    expect(clicks).toEqual([
      [`/${entryQuery}`, "hero-start-trial"],
      ["/pricing.html", "pricing-scale-contact"]
    ])
  })

  it("sends form_start, then form_submit", () => {
    const formEvents = recordedEvents(server).filter((event) => event.eventType.startsWith("form_"))

    expect(formEvents.map((event) => event.eventType)).toEqual(["form_start", "form_submit"])
    for (const event of formEvents) {
      expect(event.path).toBe("/contact.html")
      expect(event.props).toEqual({ formName: "contact-sales" })
    }
  })

  it("sends web_vitals for each page view", () => {
    const pageViews = eventsOfType(server, "page_view")
    const vitals = eventsOfType(server, "web_vitals")

    for (const pageView of pageViews) {
      const linked = vitals.filter((event) => event.props?.["pageViewId"] === pageView.eventId)
      expect(linked.length, `web_vitals for ${pageView.path}`).toBeGreaterThanOrEqual(1)
      const props = linked.at(-1)?.props ?? {}
      expect(props["ttfbMs"]).toBeTypeOf("number")
      expect(props["ttfbMs"]).toBeGreaterThanOrEqual(0)
      expect(props["engagedTimeMs"]).toBeTypeOf("number")
      expect(props["scrollDepthPercent"]).toBeGreaterThan(0)
      expect(props["scrollDepthPercent"]).toBeLessThanOrEqual(100)
    }
  })

  it("posts text/plain batches with the key", () => {
    const posts = eventPosts(server)

    expect(posts.length).toBeGreaterThanOrEqual(4)
    for (const post of posts) {
      expect(post.contentType).toBe(BEACON_CONTENT_TYPE)
      expect(post.fetchMode).toBe("no-cors")
      const batch = JSON.parse(post.body) as EventBatch
      expect(batch.key).toBe(DEMO_KEY)
      expect(batch.events.length).toBeGreaterThan(0)
      expect(batch.events.length).toBeLessThanOrEqual(50)
    }
  })

  it("stamps events with ISO 8601 time", () => {
    for (const event of recordedEvents(server)) {
      expect(new Date(event.timestamp).toISOString()).toBe(event.timestamp)
    }
  })

  it("posts the lead as JSON", () => {
    const posts = leadPosts(server)

    expect(posts).toHaveLength(1)
    expect(posts[0]?.contentType).toBe("application/json")
    const lead = JSON.parse(posts[0]?.body ?? "{}") as Record<string, unknown>
    expect(lead).toEqual({
      key: DEMO_KEY,
      email: typedEmail,
      anonId: recordedEvents(server)[0]?.anonId,
      consent: "express",
      formName: "contact-sales",
      name: "Dana Lee",
      company: "Lee & Daughters Plumbing",
      locale: "en",
      website: "",
      consentText: expect.stringContaining("Acme Invoicing Inc.")
    })
  })
})

describe("tracker", () => {
  let server: CaptureServer
  let context: BrowserContext | undefined

  beforeEach(async () => {
    server = await startCaptureServer()
  })

  afterEach(async () => {
    await context?.close()
    context = undefined
    await server.close()
  })

  it("sends page views on pushState and popstate", async () => {
    context = await openContext()
    const page = await context.newPage()
    await page.goto(`${server.origin}/`, { referer: "http://search.example/" })

    await page.evaluate("history.pushState({}, '', '/app/step-2?plan=growth')")
    await page.evaluate("history.replaceState({}, '', '/app/step-2?plan=growth&tidy=1')")
    await page.evaluate("new Promise((resolve) => { addEventListener('popstate', resolve, { once: true }); history.back() })")
    await closeLikeATab(page)
    await waitForEvent(server, "web_vitals from /", (event) => event.eventType === "web_vitals" && event.path === "/")

    const pageViews = eventsOfType(server, "page_view")
    expect(pageViews.map((event) => event.path)).toEqual(["/", "/app/step-2?plan=growth", "/"])
    expect(pageViews.map((event) => event.referrer)).toEqual(["http://search.example/", undefined, undefined])
    const vitals = eventsOfType(server, "web_vitals")
    const loadVitals = vitals.find((event) => event.props?.["pageViewId"] === pageViews[0]?.eventId)
    const softVitals = vitals.find((event) => event.props?.["pageViewId"] === pageViews[1]?.eventId)
    expect(loadVitals?.props?.["ttfbMs"]).toBeTypeOf("number")
    expect(softVitals?.props?.["engagedTimeMs"]).toBeTypeOf("number")
    expect(softVitals?.props?.["ttfbMs"]).toBeUndefined()
  }, TEST_TIMEOUT_MS)

  it("sends custom events from track", async () => {
    context = await openContext()
    const page = await context.newPage()
    await page.goto(`${server.origin}/pricing.html`)

    await page.evaluate("porchlight.track('plan_compare', { plan: 'growth', seats: 3, nested: { a: 1 }, yearly: true, bad: NaN })")
    const invalidCall = await page.evaluate("(() => { try { porchlight.track(''); return 'no error' } catch (error) { return error.name } })()")
    await closeLikeATab(page)
    await waitForEvent(server, "web_vitals", (event) => event.eventType === "web_vitals")

    expect(invalidCall).toBe("TypeError")
    const custom = eventsOfType(server, "plan_compare")
    expect(custom).toHaveLength(1)
    expect(custom[0]?.props).toEqual({ plan: "growth", seats: 3 })
    expect(custom[0]?.path).toBe("/pricing.html")
  }, TEST_TIMEOUT_MS)

  it("splits over 50 events into batches", async () => {
    context = await openContext()
    const page = await context.newPage()
    await page.goto(`${server.origin}/`)

    await page.evaluate("for (let i = 0; i < 120; i++) porchlight.track('bulk', { index: i })")
    await closeLikeATab(page)
    await waitForEvent(server, "web_vitals", (event) => event.eventType === "web_vitals")

    for (const post of eventPosts(server)) {
      expect((JSON.parse(post.body) as EventBatch).events.length).toBeLessThanOrEqual(50)
    }
    const indexes = eventsOfType(server, "bulk").map((event) => event.props?.["index"])
    expect(indexes).toEqual(Array.from({ length: 120 }, (_, i) => i))
  }, TEST_TIMEOUT_MS)

  it("falls back to fetch when sendBeacon fails", async () => {
    context = await openContext()
    await context.addInitScript({ content: "Navigator.prototype.sendBeacon = function () { return false }" })
    const page = await context.newPage()
    await page.goto(`${server.origin}/`)

    await closeLikeATab(page)
    await waitForEvent(server, "web_vitals", (event) => event.eventType === "web_vitals")

    const posts = eventPosts(server)
    expect(posts.length).toBeGreaterThan(0)
    for (const post of posts) {
      expect(post.contentType).toBe(BEACON_CONTENT_TYPE)
      expect(post.fetchMode).toBe("cors")
    }
    expect(eventsOfType(server, "page_view").map((event) => event.path)).toEqual(["/"])
  }, TEST_TIMEOUT_MS)

  it("uses a per-load anonId without storage", async () => {
    context = await openContext()
    await context.addInitScript({
      content: "Object.defineProperty(window, 'localStorage', { get() { throw new DOMException('blocked', 'SecurityError') } })"
    })
    const page = await context.newPage()
    await page.goto(`${server.origin}/`)
    await page.getByRole("link", { name: "Start a free trial" }).click()
    await page.waitForURL("**/pricing.html")

    await closeLikeATab(page)
    await waitForEvent(server, "web_vitals from /pricing.html", (event) => event.eventType === "web_vitals" && event.path === "/pricing.html")

    const anonIds = eventsOfType(server, "page_view").map((event) => event.anonId)
    expect(anonIds).toHaveLength(2)
    for (const anonId of anonIds) expect(anonId).toMatch(UUID_PATTERN)
    expect(anonIds[0]).not.toBe(anonIds[1])
  }, TEST_TIMEOUT_MS)

  it("stores the anonId in localStorage", async () => {
    context = await openContext()
    const page = await context.newPage()
    await page.goto(`${server.origin}/`)

    const stored = await page.evaluate("localStorage.getItem('porchlight_anon_id')")
    await closeLikeATab(page)
    await waitForEvent(server, "a page view", (event) => event.eventType === "page_view")

    expect(stored).toMatch(UUID_PATTERN)
    expect(eventsOfType(server, "page_view")[0]?.anonId).toBe(stored)
  }, TEST_TIMEOUT_MS)
})

describe("contact form when the JSON capture fails", () => {
  let server: CaptureServer
  let context: BrowserContext | undefined

  beforeAll(async () => {
    server = await startCaptureServer({ jsonLeadStatus: 503 })
  })

  afterAll(async () => {
    await context?.close()
    await server?.close()
  })

  it("falls back to the plain HTML post", async () => {
    context = await openContext()
    const page = await context.newPage()
    await page.goto(`${server.origin}/contact.html`)

    await page.getByLabel("Work email").fill("retry@example.com")
    await page.getByRole("button", { name: /Send/ }).click()
    await page.waitForURL("**/thanks.html")

    const posts = leadPosts(server)
    expect(posts.map((post) => post.contentType)).toEqual(["application/json", "application/x-www-form-urlencoded"])
    const form = new URLSearchParams(posts[1]?.body)
    expect(form.get("email")).toBe("retry@example.com")
    expect(form.has("consent")).toBe(false)
    const lead = JSON.parse(posts[0]?.body ?? "{}") as Record<string, unknown>
    expect(lead["consent"]).toBeUndefined()
  }, TEST_TIMEOUT_MS)
})

describe("contact form while the lead is sending", () => {
  let server: CaptureServer
  let context: BrowserContext | undefined

  beforeAll(async () => {
    server = await startCaptureServer({ jsonLeadDelayMs: 1_000 })
  })

  afterAll(async () => {
    await context?.close()
    await server?.close()
  })

  it("ignores a second submit", async () => {
    context = await openContext()
    const page = await context.newPage()
    await page.goto(`${server.origin}/contact.html`)

    await page.getByLabel("Work email").fill("twice@example.com")
    const send = page.getByRole("button", { name: /Send/ })
    await send.click()
    await send.click()
    await page.waitForURL("**/thanks.html")
    await closeLikeATab(page)
    await waitForEvent(server, "web_vitals from /thanks.html", (event) => event.eventType === "web_vitals" && event.path === "/thanks.html")

    expect(leadPosts(server)).toHaveLength(1)
    expect(eventsOfType(server, "form_submit")).toHaveLength(1)
  }, TEST_TIMEOUT_MS)
})

describe("contact form without JavaScript", () => {
  let server: CaptureServer
  let context: BrowserContext | undefined

  beforeAll(async () => {
    server = await startCaptureServer()
  })

  afterAll(async () => {
    await context?.close()
    await server?.close()
  })

  it("posts a urlencoded form and follows the redirect", async () => {
    context = await openContext({ javaScriptEnabled: false })
    const page = await context.newPage()
    await page.goto(`${server.origin}/contact.html`)

    await page.getByLabel("Work email").fill("no-script@example.com")
    await page.getByRole("checkbox", { name: /email me product news/ }).check()
    await page.getByRole("button", { name: /Send/ }).click()
    await page.waitForURL("**/thanks.html")

    const posts = leadPosts(server)
    expect(posts).toHaveLength(1)
    expect(posts[0]?.contentType).toBe("application/x-www-form-urlencoded")
    const form = new URLSearchParams(posts[0]?.body)
    expect(form.get("email")).toBe("no-script@example.com")
    expect(form.get("consent")).toBe("express")
    expect(form.get("formName")).toBe("contact-sales")
    expect(form.get("key")).toBe(DEMO_KEY)
    expect(form.get("locale")).toBe("en")
    expect(form.has("website")).toBe(true)
    expect(form.get("website")).toBe("")
    expect(eventPosts(server)).toEqual([])
  }, TEST_TIMEOUT_MS)
})

// Each privacy signal is tested on a visit that would otherwise send page
// views, a click and a custom event. Afterwards a control visit without the
// signal sends its own beacon, later and from the same browser, so a beacon
// from the first visit would normally have arrived before it.
describe.each([
  { signal: "Global Privacy Control", initScript: "Object.defineProperty(navigator, 'globalPrivacyControl', { get: () => true })" },
  { signal: "Do Not Track", initScript: "Object.defineProperty(navigator, 'doNotTrack', { get: () => '1' })" }
])("tracker under $signal", ({ initScript }) => {
  let server: CaptureServer
  let privateContext: BrowserContext | undefined
  let controlContext: BrowserContext | undefined

  beforeAll(async () => {
    server = await startCaptureServer()
  })

  afterAll(async () => {
    await privateContext?.close()
    await controlContext?.close()
    await server?.close()
  })

  it("sends and stores nothing", async () => {
    privateContext = await openContext()
    await privateContext.addInitScript({ content: initScript })
    const page = await privateContext.newPage()
    await page.goto(`${server.origin}/`)
    await page.getByRole("link", { name: "Start a free trial" }).click()
    await page.waitForURL("**/pricing.html")
    await page.evaluate("porchlight.track('plan_compare', { plan: 'growth' })")
    const storedKeys = await page.evaluate("localStorage.length")
    await closeLikeATab(page)

    controlContext = await openContext()
    const control = await controlContext.newPage()
    await control.goto(`${server.origin}/thanks.html?control`)
    await closeLikeATab(control)
    await waitForEvent(server, "the control visit's events", (event) => event.path === "/thanks.html?control")

    expect(storedKeys).toBe(0)
    const otherPaths = recordedEvents(server).filter((event) => event.path !== "/thanks.html?control")
    expect(otherPaths).toEqual([])
    expect(leadPosts(server)).toEqual([])
  }, TEST_TIMEOUT_MS)
})

import { describe, expect, it } from "vitest"
import type { EnrichedEvent, TrackEvents } from "../src/streams/IngestMessages.ts"
import { applyEvents, initialState, SESSION_TIMEOUT_MS, type VisitorState } from "../src/streams/VisitorSession.ts"

const KEY = { tenantId: "t1", propertyId: "p1", anonId: "a1" }
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0)
let sequence = 0
const nextId = () => `id-${++sequence}`

const event = (overrides: Partial<EnrichedEvent> = {}): EnrichedEvent => ({
  eventId: nextId(),
  clientEventId: null,
  eventType: "page_view",
  path: "/",
  referrer: null,
  referrerDomain: null,
  receivedAt: T0,
  clientTimestamp: null,
  clockSkewMs: null,
  ipHash: "aa",
  uaHash: "bb",
  countryCode: "CA",
  deviceType: "desktop",
  trafficSource: "direct",
  sourceName: null,
  searchTerm: null,
  utmSource: null,
  utmMedium: null,
  utmCampaign: null,
  utmTerm: null,
  utmContent: null,
  props: {},
  ...overrides
})

const track = (state: VisitorState, ...events: ReadonlyArray<EnrichedEvent>) => {
  const message: TrackEvents = { key: KEY, events }
  return applyEvents(state, message, nextId)
}

describe("visitor session rules", () => {
  it("marks the first page view entrance and the last one exit", () => {
    const result = track(
      initialState(KEY, T0),
      event({ path: "/" }),
      event({ path: "/pricing", receivedAt: T0 + 1000 }),
      event({ path: "/contact", receivedAt: T0 + 2000 })
    )

    expect(result.writes.events.map((row) => row.isEntrance)).toEqual([true, false, false])
    expect(result.writes.events.map((row) => row.isExit)).toEqual([false, false, true])
    expect(result.writes.sessions).toHaveLength(1)
    expect(result.writes.sessions[0]).toMatchObject({ landingPath: "/", exitPath: "/contact", pageViews: 3 })
  })

  it("moves the exit flag off a page view written in an earlier message", () => {
    const first = track(initialState(KEY, T0), event({ path: "/" }))
    const firstId = first.writes.events[0]?.eventId

    const second = track(first.state, event({ path: "/pricing", receivedAt: T0 + 5000 }))

    expect(second.writes.exitClearedEventIds).toEqual([firstId])
    expect(second.writes.events[0]).toMatchObject({ isExit: true, isEntrance: false })
  })

  it("keeps the exit flag on a page view when only other events follow", () => {
    const first = track(initialState(KEY, T0), event({ path: "/" }))

    const second = track(first.state, event({ eventType: "cta_click", receivedAt: T0 + 1000 }))

    expect(second.writes.exitClearedEventIds).toEqual([])
    expect(second.writes.events[0]).toMatchObject({ isExit: false, isEntrance: false })
  })

  it("marks a form submit as a conversion of the event and the session", () => {
    const result = track(
      initialState(KEY, T0),
      event(),
      event({ eventType: "form_start", receivedAt: T0 + 1 }),
      event({ eventType: "form_submit", receivedAt: T0 + 2 })
    )

    expect(result.writes.events.map((row) => row.isConversion)).toEqual([false, false, true])
    expect(result.writes.sessions[0]?.isConversion).toBe(true)
  })

  it("continues the session at exactly 30 minutes of silence", () => {
    const first = track(initialState(KEY, T0), event())

    const second = track(first.state, event({ path: "/later", receivedAt: T0 + SESSION_TIMEOUT_MS }))

    expect(second.writes.events[0]?.sessionId).toBe(first.writes.events[0]?.sessionId)
  })

  it("starts a new session after more than 30 minutes of silence", () => {
    const first = track(initialState(KEY, T0), event())

    const second = track(first.state, event({ path: "/later", receivedAt: T0 + SESSION_TIMEOUT_MS + 1 }))

    expect(second.writes.events[0]?.sessionId).not.toBe(first.writes.events[0]?.sessionId)
    expect(second.writes.events[0]).toMatchObject({ isEntrance: true, isExit: true })
    expect(second.writes.exitClearedEventIds).toEqual([])
    expect(second.writes.endedSessions).toEqual([
      { id: first.writes.events[0]?.sessionId, endedAt: T0 + SESSION_TIMEOUT_MS }
    ])
  })

  it("starts a new session when a new campaign arrives", () => {
    const first = track(initialState(KEY, T0), event({
      trafficSource: "campaign",
      utmSource: "news",
      utmMedium: "letter",
      utmCampaign: "spring"
    }))

    const second = track(first.state, event({
      receivedAt: T0 + 60_000,
      trafficSource: "campaign",
      utmSource: "news",
      utmMedium: "letter",
      utmCampaign: "summer"
    }))

    expect(second.writes.events[0]?.sessionId).not.toBe(first.writes.events[0]?.sessionId)
    expect(second.writes.sessions[0]?.utmCampaign).toBe("summer")
  })

  it("compares campaign tags without regard to case", () => {
    const tags = { trafficSource: "campaign" as const, utmSource: "News", utmMedium: "Letter", utmCampaign: "Spring" }
    const first = track(initialState(KEY, T0), event(tags))

    const second = track(first.state, event({ ...tags, utmCampaign: "spring", receivedAt: T0 + 1000 }))

    expect(second.writes.events[0]?.sessionId).toBe(first.writes.events[0]?.sessionId)
  })

  it("starts a new session when a new external referrer arrives", () => {
    const first = track(initialState(KEY, T0), event())

    const second = track(first.state, event({
      receivedAt: T0 + 1000,
      trafficSource: "organic_search",
      referrer: "https://www.google.com/search",
      referrerDomain: "google.com"
    }))

    expect(second.writes.events[0]?.sessionId).not.toBe(first.writes.events[0]?.sessionId)
    expect(second.writes.endedSessions).toHaveLength(1)
  })

  it.each(["internal", "direct"] as const)("keeps the session for a %s page view", (trafficSource) => {
    const first = track(initialState(KEY, T0), event({ trafficSource: "social", referrerDomain: "facebook.com" }))

    const second = track(first.state, event({ receivedAt: T0 + 1000, trafficSource }))

    expect(second.writes.events[0]?.sessionId).toBe(first.writes.events[0]?.sessionId)
  })

  it("acknowledges a retried client event id without a second row", () => {
    const first = track(initialState(KEY, T0), event({ clientEventId: "retry-1" }))

    const second = track(first.state, event({ clientEventId: "retry-1", receivedAt: T0 + 500 }))

    expect(second.duplicates).toBe(1)
    expect(second.writes.events).toEqual([])
  })

  it("keeps state that survives a JSON round trip", () => {
    const result = track(initialState(KEY, T0), event({ clientEventId: "c1" }), event({ path: "/x" }))

    const copy: VisitorState = JSON.parse(JSON.stringify(result.state))

    expect(copy).toEqual(result.state)
  })
})

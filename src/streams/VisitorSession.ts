/**
 * The visitor actor's behaviour as a pure function: given the visitor's
 * state and one message of events, it returns the next state and the rows to
 * write. It decides session boundaries and the entrance, exit and conversion
 * flags. Keeping it pure keeps the rules testable with any clock and lets
 * the actor run anywhere its state can be sent.
 *
 * Session rules:
 * - a session ends after 30 minutes without events (server receive time);
 * - a page view with external attribution (a search engine, social network,
 *   referral, email or campaign) that differs from the session's starts a
 *   new session, and internal and direct page views never do;
 * - the first page view of a session is its entrance; the latest page view
 *   is its exit, and a later page view takes the flag over;
 * - a `form_submit` is a conversion, of the event and of its session.
 */
import type {
  EnrichedEvent,
  EventRow,
  SessionRow,
  TrackEvents,
  VisitorKey,
  VisitorWrites
} from "./IngestMessages.ts"

export const SESSION_TIMEOUT_MS = 30 * 60 * 1000

/** Client event ids remembered per visitor to acknowledge retries without storing them twice. */
const RECENT_EVENT_IDS = 32

export interface VisitorState {
  readonly key: VisitorKey
  readonly session: SessionRow | undefined
  /** The current session's latest page view, which carries is_exit. */
  readonly exitEventId: string | null
  readonly recentClientEventIds: ReadonlyArray<string>
  readonly lastActiveAt: number
}

export interface StepResult {
  readonly state: VisitorState
  readonly writes: VisitorWrites
  /** Events dropped as retries of events this visitor sent before. */
  readonly duplicates: number
}

export const initialState = (key: VisitorKey, now: number): VisitorState => ({
  key,
  session: undefined,
  exitEventId: null,
  recentClientEventIds: [],
  lastActiveAt: now
})

/** Applies one message's events in order; `newId` makes session ids. */
export const applyEvents = (state: VisitorState, message: TrackEvents, newId: () => string): StepResult => {
  let session = state.session
  let exitEventId = state.exitEventId
  let recent = [...state.recentClientEventIds]
  let duplicates = 0
  const sessions = new Map<string, SessionRow>()
  const events: Array<EventRow> = []
  const exitCleared: Array<string> = []
  const ended: Array<{ id: string; endedAt: number }> = []

  for (const event of message.events) {
    if (event.clientEventId !== null && recent.includes(event.clientEventId)) {
      duplicates++
      continue
    }
    if (event.clientEventId !== null) recent = [...recent.slice(-(RECENT_EVENT_IDS - 1)), event.clientEventId]

    if (session === undefined || startsNewSession(session, event)) {
      if (session !== undefined) {
        const endedAt = Math.min(event.receivedAt, session.lastEventAt + SESSION_TIMEOUT_MS)
        ended.push({ id: session.id, endedAt })
      }
      session = openSession(message.key, event, newId())
      exitEventId = null
    }

    const isPageView = event.eventType === "page_view"
    const isConversion = event.eventType === "form_submit"
    const isEntrance = isPageView && session.pageViews === 0
    if (isPageView && exitEventId !== null) {
      const inThisMessage = events.find((row) => row.eventId === exitEventId)
      if (inThisMessage !== undefined) {
        events[events.indexOf(inThisMessage)] = { ...inThisMessage, isExit: false }
      } else {
        exitCleared.push(exitEventId)
      }
    }
    session = {
      ...session,
      lastEventAt: Math.max(session.lastEventAt, event.receivedAt),
      events: session.events + 1,
      pageViews: session.pageViews + (isPageView ? 1 : 0),
      landingPath: session.landingPath ?? (isPageView ? event.path : null),
      exitPath: isPageView ? event.path : session.exitPath,
      isConversion: session.isConversion || isConversion
    }
    if (isPageView) exitEventId = event.eventId
    sessions.set(session.id, session)
    events.push({
      ...event,
      tenantId: message.key.tenantId,
      propertyId: message.key.propertyId,
      anonId: message.key.anonId,
      sessionId: session.id,
      isEntrance,
      isExit: isPageView,
      isConversion
    })
  }

  const last = message.events.at(-1)
  const lastActiveAt = Math.max(state.lastActiveAt, last?.receivedAt ?? 0)
  return {
    state: { key: message.key, session, exitEventId, recentClientEventIds: recent, lastActiveAt },
    writes: {
      visitor: {
        tenantId: message.key.tenantId,
        propertyId: message.key.propertyId,
        anonId: message.key.anonId,
        seenAt: lastActiveAt,
        ipHash: last?.ipHash ?? "",
        uaHash: last?.uaHash ?? ""
      },
      sessions: [...sessions.values()],
      events,
      exitClearedEventIds: exitCleared,
      endedSessions: ended
    },
    duplicates
  }
}

const startsNewSession = (session: SessionRow, event: EnrichedEvent) => {
  if (event.receivedAt - session.lastEventAt > SESSION_TIMEOUT_MS) return true
  if (event.eventType !== "page_view" || !hasExternalAttribution(event)) return false
  return attributionOf(event) !== attributionOf(session)
}

const hasExternalAttribution = (event: EnrichedEvent) =>
  event.trafficSource !== "direct" && event.trafficSource !== "internal" && event.trafficSource !== "unknown"

/** Key of where a visit came from: the source and the campaign tags. */
const attributionOf = (row: {
  readonly trafficSource: string
  readonly referrerDomain: string | null
  readonly utmSource: string | null
  readonly utmMedium: string | null
  readonly utmCampaign: string | null
}) =>
  [row.trafficSource, row.referrerDomain ?? "", lower(row.utmSource), lower(row.utmMedium), lower(row.utmCampaign)]
    .join("\u0000")

const lower = (value: string | null) => value?.toLowerCase() ?? ""

const openSession = (key: VisitorKey, event: EnrichedEvent, id: string): SessionRow => ({
  id,
  tenantId: key.tenantId,
  propertyId: key.propertyId,
  anonId: key.anonId,
  startedAt: event.receivedAt,
  lastEventAt: event.receivedAt,
  landingPath: null,
  exitPath: null,
  referrer: event.referrer,
  referrerDomain: event.referrerDomain,
  searchTerm: event.searchTerm,
  utmSource: event.utmSource,
  utmMedium: event.utmMedium,
  utmCampaign: event.utmCampaign,
  utmTerm: event.utmTerm,
  utmContent: event.utmContent,
  trafficSource: event.trafficSource,
  deviceType: event.deviceType,
  countryCode: event.countryCode,
  pageViews: 0,
  events: 0,
  isConversion: false
})

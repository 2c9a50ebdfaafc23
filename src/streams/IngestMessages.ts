/**
 * The plain-data messages of the ingest path: what the HTTP layer hands to a
 * visitor actor, and the rows an actor hands to the writer. Everything here
 * is serialisable (strings, numbers, booleans, null), so actors can move to
 * other machines (sharded by visitor key) without changing these shapes.
 */
import type { DeviceType } from "../services/UserAgentClassifier.ts"
import type { TrafficSourceKind } from "../services/TrafficSource.ts"

/** An accepted event after validation and enrichment. Times are epoch milliseconds. */
export interface EnrichedEvent {
  readonly eventId: string
  readonly clientEventId: string | null
  readonly eventType: string
  /** Path without query string or fragment. */
  readonly path: string
  /** Referrer without query string or fragment, or null. */
  readonly referrer: string | null
  readonly referrerDomain: string | null
  readonly receivedAt: number
  readonly clientTimestamp: number | null
  /** Set when the client clock differs from the receive time by more than the accepted bound. */
  readonly clockSkewMs: number | null
  readonly ipHash: string
  readonly uaHash: string
  readonly countryCode: string | null
  readonly deviceType: DeviceType
  readonly trafficSource: TrafficSourceKind
  readonly sourceName: string | null
  readonly searchTerm: string | null
  readonly utmSource: string | null
  readonly utmMedium: string | null
  readonly utmCampaign: string | null
  readonly utmTerm: string | null
  readonly utmContent: string | null
  readonly props: Readonly<Record<string, string | number | boolean>>
}

export interface VisitorKey {
  readonly tenantId: string
  readonly propertyId: string
  readonly anonId: string
}

/** The message a visitor actor receives: one request's events for that visitor, in order. */
export interface TrackEvents {
  readonly key: VisitorKey
  readonly events: ReadonlyArray<EnrichedEvent>
}

export interface VisitorRow {
  readonly tenantId: string
  readonly propertyId: string
  readonly anonId: string
  readonly seenAt: number
  readonly ipHash: string
  readonly uaHash: string
}

/** A session's whole current state; the writer upserts it by id. */
export interface SessionRow {
  readonly id: string
  readonly tenantId: string
  readonly propertyId: string
  readonly anonId: string
  readonly startedAt: number
  readonly lastEventAt: number
  readonly landingPath: string | null
  readonly exitPath: string | null
  readonly referrer: string | null
  readonly referrerDomain: string | null
  readonly searchTerm: string | null
  readonly utmSource: string | null
  readonly utmMedium: string | null
  readonly utmCampaign: string | null
  readonly utmTerm: string | null
  readonly utmContent: string | null
  readonly trafficSource: TrafficSourceKind
  readonly deviceType: DeviceType
  readonly countryCode: string | null
  readonly pageViews: number
  readonly events: number
  readonly isConversion: boolean
}

export interface EventRow extends EnrichedEvent {
  readonly tenantId: string
  readonly propertyId: string
  readonly anonId: string
  readonly sessionId: string
  readonly isEntrance: boolean
  readonly isExit: boolean
  readonly isConversion: boolean
}

/** Rows that one TrackEvents produces for the database, written in one transaction. */
export interface VisitorWrites {
  readonly visitor: VisitorRow
  readonly sessions: ReadonlyArray<SessionRow>
  readonly events: ReadonlyArray<EventRow>
  /** Earlier page views that lost the exit flag to a page view in this message. */
  readonly exitClearedEventIds: ReadonlyArray<string>
  /** Sessions that a new session replaced; their ended_at is set. */
  readonly endedSessions: ReadonlyArray<{ readonly id: string; readonly endedAt: number }>
}

/** A rejected event, counted in ingest_rejections with its reason. */
export interface RejectionRow {
  readonly tenantId: string
  readonly propertyId: string
  readonly receivedAt: number
  readonly reason: string
  readonly field: string | null
}

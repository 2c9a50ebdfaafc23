/**
 * The write of one tenant's share of a flush: a single call of the SQL
 * function `porchlight_write_events` (migration 0009), outside an explicit
 * transaction, so the call is its own transaction and costs one round trip.
 * The function sets the tenant for that transaction itself and runs as the
 * application role, under row-level security.
 *
 * The rows travel as one jsonb document, an array of rows per table whose
 * keys are the function's column names. `JSON.stringify` builds it in
 * native code, which costs the service less than a typed array per column.
 */
import type { Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { EventRow, RejectionRow, SessionRow, VisitorRow } from "./IngestMessages.ts"

export interface TenantBatch {
  readonly tenantId: string
  readonly visitors: ReadonlyArray<VisitorRow>
  readonly sessions: ReadonlyArray<SessionRow>
  readonly endedSessions: ReadonlyArray<{ readonly id: string; readonly endedAt: number }>
  readonly events: ReadonlyArray<EventRow>
  readonly exitClearedEventIds: ReadonlyArray<string>
  readonly rejections: ReadonlyArray<RejectionRow>
}

/** Writes the batch in its own transaction, so the call must not run inside another one. */
export const writeTenantBatch = (sql: SqlClient, batch: TenantBatch): Effect.Effect<unknown, SqlError> =>
  sql`SELECT porchlight_write_events(${batch.tenantId}::uuid, ${batchDocument(batch)}::jsonb)`

/** Builds the function's jsonb argument. Empty arrays are left out, and the function skips a missing table. */
export const batchDocument = (batch: TenantBatch): string => {
  const document: Record<string, ReadonlyArray<unknown>> = {}
  if (batch.visitors.length > 0) document["visitors"] = batch.visitors.map(visitorRow)
  if (batch.sessions.length > 0) document["sessions"] = batch.sessions.map(sessionRow)
  if (batch.endedSessions.length > 0) {
    document["endedSessions"] = batch.endedSessions.map((row) => ({ id: row.id, ended_at: iso(row.endedAt) }))
  }
  if (batch.events.length > 0) document["events"] = batch.events.map(eventRow)
  if (batch.exitClearedEventIds.length > 0) document["exitClearedEventIds"] = batch.exitClearedEventIds
  if (batch.rejections.length > 0) document["rejections"] = batch.rejections.map(rejectionRow)
  return JSON.stringify(document)
}

const visitorRow = (row: VisitorRow) => ({
  property_id: row.propertyId,
  anon_id: row.anonId,
  seen_at: iso(row.seenAt),
  ip_hash: hexOrNull(row.ipHash),
  ua_hash: hexOrNull(row.uaHash)
})

const sessionRow = (row: SessionRow) => ({
  id: row.id,
  property_id: row.propertyId,
  anon_id: row.anonId,
  started_at: iso(row.startedAt),
  last_event_at: iso(row.lastEventAt),
  landing_path: row.landingPath,
  exit_path: row.exitPath,
  referrer: row.referrer,
  referrer_domain: row.referrerDomain,
  search_term: row.searchTerm,
  utm_source: row.utmSource,
  utm_medium: row.utmMedium,
  utm_campaign: row.utmCampaign,
  utm_term: row.utmTerm,
  utm_content: row.utmContent,
  traffic_source: row.trafficSource,
  device_type: row.deviceType,
  country_code: row.countryCode,
  page_views: row.pageViews,
  events: row.events,
  is_conversion: row.isConversion
})

const eventRow = (row: EventRow) => ({
  id: row.eventId,
  property_id: row.propertyId,
  anon_id: row.anonId,
  session_id: row.sessionId,
  client_event_id: row.clientEventId,
  event_type: row.eventType,
  path: row.path,
  referrer: row.referrer,
  ts: iso(row.receivedAt),
  client_ts: row.clientTimestamp === null ? null : iso(row.clientTimestamp),
  skew: row.clockSkewMs,
  ip_hash: hexOrNull(row.ipHash),
  ua_hash: hexOrNull(row.uaHash),
  traffic_source: row.trafficSource,
  device_type: row.deviceType,
  country_code: row.countryCode,
  is_entrance: row.isEntrance,
  is_exit: row.isExit,
  is_conversion: row.isConversion,
  props: row.props
})

const rejectionRow = (row: RejectionRow) => ({
  property_id: row.propertyId,
  received_at: iso(row.receivedAt),
  reason: row.reason,
  field: row.field
})

const iso = (millis: number) => new Date(millis).toISOString()

/** A hex digest for `decode(..., 'hex')`, or null for an empty one. */
const hexOrNull = (hex: string) => hex === "" ? null : hex

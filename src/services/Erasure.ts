/**
 * A person's PIPEDA requests about the data stored under their email
 * address: erasure and access (export). Both use one definition of what
 * belongs to the person, so an export shows exactly what an erasure removes:
 *
 * - the tenant's lead with that normalized email, its identities, form
 *   submissions and consent events;
 * - the visitors linked to the lead by a form submission (a `form_submit`
 *   identity, or a visitor named by one of the lead's form submissions),
 *   with their sessions and events.
 *
 * Visitors linked only by the `same_ip_ua_window` heuristic are not
 * followed: the link is a guess, and their visits may be someone else's.
 * Erasure removes those links and keeps the visits; an export lists the
 * links without the visits. `manual_merge` links are not followed either.
 *
 * An admin key limited to one property may act only on a lead whose every
 * trace is in that property: the lead's `property_id`, its form submissions
 * and its followed visitors. Anything wider needs a tenant-wide key, because
 * a partial erasure or export would leave data behind or hide it.
 */
import { Clock, Context, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { createHmac } from "node:crypto"
import { Database } from "./Database.ts"
import { TenantDb } from "./TenantDb.ts"
import { LeadNotFound, LeadOutsideKeyProperty } from "./Unsubscribe.ts"

/** Label of the key that hashes erased emails. Changing it breaks lookups of older erasure records. */
const ERASURE_HASH_LABEL = "porchlight erasure email v1"

/** Link sources whose visitors count as the person's own. */
const FOLLOWED_LINK_SOURCES = ["form_submit"] as const

/** Upper bound of events in one export, so that a very busy visitor cannot exhaust memory. */
export const MAX_EXPORT_EVENTS = 50_000

export interface RemovedCounts {
  readonly leads: number
  readonly leadIdentities: number
  readonly formSubmissions: number
  readonly consentEvents: number
  readonly visitors: number
  readonly sessions: number
  readonly events: number
}

/** The key of a visitor actor, so that the caller can evict it after the commit. */
export interface ErasedVisitor {
  readonly tenantId: string
  readonly propertyId: string
  readonly anonId: string
}

export interface ErasureResult {
  readonly removed: RemovedCounts
  /** This erasure's time, or the latest one on record when nothing was left to remove. */
  readonly erasedAt: Date
  /** True when this request wrote an `erasures` row. */
  readonly recorded: boolean
  readonly erasedVisitors: ReadonlyArray<ErasedVisitor>
}

/** Rows as stored, without tenant ids and keyed hashes, with camelCase keys. */
export type ExportRecord = Readonly<Record<string, unknown>>

export interface PersonalDataExport {
  readonly exportedAt: Date
  readonly email: string
  readonly lead: ExportRecord
  /** Oldest first. */
  readonly consentHistory: ReadonlyArray<ExportRecord>
  readonly formSubmissions: ReadonlyArray<ExportRecord>
  /** Every identity link, each with `visitsIncluded`. */
  readonly identities: ReadonlyArray<ExportRecord>
  readonly visitors: ReadonlyArray<ExportRecord>
  readonly sessions: ReadonlyArray<ExportRecord>
  readonly events: ReadonlyArray<ExportRecord>
  /** True when the events were cut at `MAX_EXPORT_EVENTS`. */
  readonly eventsTruncated: boolean
  readonly notes: ReadonlyArray<string>
}

export interface ErasureShape {
  /**
   * Erases everything stored about the person in one transaction and
   * records the erasure. Repeating it removes nothing and writes no second
   * record. The caller must evict `erasedVisitors` from the visitor actors
   * after it returns.
   */
  readonly erase: (
    tenantId: string,
    propertyId: string | null,
    emailNormalized: string
  ) => Effect.Effect<ErasureResult, LeadOutsideKeyProperty>
  /** Everything stored about the person, for an access request. */
  readonly exportPerson: (
    tenantId: string,
    propertyId: string | null,
    emailNormalized: string
  ) => Effect.Effect<PersonalDataExport, LeadNotFound | LeadOutsideKeyProperty>
  /** The keyed hash stored in `erasures.email_hash`. */
  readonly emailHash: (emailNormalized: string) => Buffer
}

interface LeadRow {
  readonly id: string
  readonly propertyId: string | null
}

interface VisitorRow {
  readonly id: string
  readonly propertyId: string
  readonly anonId: string
}

const HEURISTIC_NOTE = "Visitors linked to this lead only by the same_ip_ua_window heuristic (the same IP address " +
  "hash and user agent hash within a short window) are listed under identities with visitsIncluded false, but " +
  "their sessions and events are not included, because that link is a guess and those visits may be another " +
  "person's."
const HASH_NOTE = "Keyed hashes of IP addresses and user agents are stored with events and form submissions " +
  "but left out of this export: they cannot be reversed and identify nothing on their own."
const truncatedNote = (limit: number) =>
  `Only the first ${limit} events are included; ask the operator for the rest.`

export class Erasure extends Context.Service<Erasure, ErasureShape>()("porchlight/services/Erasure") {
  static readonly layer = Layer.effect(
    Erasure,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const tenants = yield* TenantDb
      const database = yield* Database
      const hashKey = createHmac("sha256", Redacted.value(database.ipHashPepper)).update(ERASURE_HASH_LABEL).digest()
      const emailHash = (emailNormalized: string) => createHmac("sha256", hashKey).update(emailNormalized).digest()

      /** Visitors linked by a form submission to any of the leads, locked when `lock` is set. */
      const followedVisitors = (leadIds: ReadonlyArray<string>, lock: boolean) =>
        sql<VisitorRow>`
          SELECT v.id, v.property_id AS "propertyId", v.anon_id AS "anonId"
          FROM visitors v
          WHERE v.id IN (
            SELECT visitor_id FROM lead_identities
            WHERE lead_id = ANY(${leadIds}::uuid[]) AND link_source::text = ANY(${FOLLOWED_LINK_SOURCES}::text[])
            UNION
            SELECT visitor_id FROM form_submissions
            WHERE lead_id = ANY(${leadIds}::uuid[]) AND visitor_id IS NOT NULL
          )
          ORDER BY v.first_seen_at, v.id
          ${lock ? sql.literal("FOR UPDATE") : sql.literal("")}`

      /** Fails when a property-limited key reaches past its property. */
      const checkScope = (
        propertyId: string | null,
        leads: ReadonlyArray<LeadRow>,
        visitors: ReadonlyArray<VisitorRow>
      ): Effect.Effect<void, LeadOutsideKeyProperty | SqlError> =>
        Effect.gen(function*() {
          if (propertyId === null || leads.length === 0) return
          const outside = leads.some((lead) => lead.propertyId !== propertyId) ||
            visitors.some((visitor) => visitor.propertyId !== propertyId)
          if (outside) return yield* new LeadOutsideKeyProperty()
          const submissions = yield* sql<{ readonly n: number }>`
            SELECT count(*)::int AS n FROM form_submissions
            WHERE lead_id = ANY(${leads.map((lead) => lead.id)}::uuid[]) AND property_id <> ${propertyId}`
          if ((submissions[0]?.n ?? 0) > 0) return yield* new LeadOutsideKeyProperty()
        })

      const deleted = (statement: Effect.Effect<ReadonlyArray<{ readonly n: number }>, SqlError>) =>
        Effect.map(statement, (rows) => rows[0]?.n ?? 0)

      const removeAll = (leadIds: ReadonlyArray<string>, visitorIds: ReadonlyArray<string>) =>
        Effect.gen(function*() {
          const events = yield* deleted(sql`
            WITH d AS (DELETE FROM events WHERE visitor_id = ANY(${visitorIds}::uuid[]) RETURNING 1)
            SELECT count(*)::int AS n FROM d`)
          const sessions = yield* deleted(sql`
            WITH d AS (DELETE FROM sessions WHERE visitor_id = ANY(${visitorIds}::uuid[]) RETURNING 1)
            SELECT count(*)::int AS n FROM d`)
          // Heuristic links of the lead go too, and so do other leads' links
          // to the erased visitors, which would otherwise cascade uncounted.
          const leadIdentities = yield* deleted(sql`
            WITH d AS (
              DELETE FROM lead_identities
              WHERE lead_id = ANY(${leadIds}::uuid[]) OR visitor_id = ANY(${visitorIds}::uuid[])
              RETURNING 1
            )
            SELECT count(*)::int AS n FROM d`)
          // Submissions that named an erased visitor but no lead are that
          // visitor's data, so they go with it.
          const formSubmissions = yield* deleted(sql`
            WITH d AS (
              DELETE FROM form_submissions
              WHERE lead_id = ANY(${leadIds}::uuid[])
                 OR (lead_id IS NULL AND visitor_id = ANY(${visitorIds}::uuid[]))
              RETURNING 1
            )
            SELECT count(*)::int AS n FROM d`)
          // Another lead's submission from the same browser stays, without
          // the ids of the visitor and session that no longer exist.
          yield* sql`
            UPDATE form_submissions SET visitor_id = NULL, session_id = NULL
            WHERE visitor_id = ANY(${visitorIds}::uuid[])`
          const consentEvents = yield* deleted(sql`
            WITH d AS (DELETE FROM consent_events WHERE lead_id = ANY(${leadIds}::uuid[]) RETURNING 1)
            SELECT count(*)::int AS n FROM d`)
          // The rollups' per-day visitor lists name the visitor too; the daily
          // totals stay, since they hold counts, not people.
          yield* sql`DELETE FROM daily_visitors WHERE visitor_id = ANY(${visitorIds}::uuid[])`
          const visitors = yield* deleted(sql`
            WITH d AS (DELETE FROM visitors WHERE id = ANY(${visitorIds}::uuid[]) RETURNING 1)
            SELECT count(*)::int AS n FROM d`)
          const leads = yield* deleted(sql`
            WITH d AS (DELETE FROM leads WHERE id = ANY(${leadIds}::uuid[]) RETURNING 1)
            SELECT count(*)::int AS n FROM d`)
          return { leads, leadIdentities, formSubmissions, consentEvents, visitors, sessions, events }
        })

      const erase = (tenantId: string, propertyId: string | null, emailNormalized: string) =>
        Effect.gen(function*() {
          const now = new Date(yield* Clock.currentTimeMillis)
          const hash = emailHash(emailNormalized)
          const result = yield* tenants.withTenant(
            tenantId,
            Effect.gen(function*() {
              const leads = yield* sql<LeadRow>`
                SELECT id, property_id AS "propertyId" FROM leads
                WHERE email_normalized = ${emailNormalized}
                FOR UPDATE`
              const leadIds = leads.map((lead) => lead.id)
              const visitors = leads.length === 0 ? [] : yield* followedVisitors(leadIds, true)
              yield* checkScope(propertyId, leads, visitors)
              const removed = yield* removeAll(leadIds, visitors.map((visitor) => visitor.id))
              const previous = yield* sql<{ readonly erasedAt: Date | null }>`
                SELECT max(erased_at) AS "erasedAt" FROM erasures WHERE email_hash = ${hash}`
              const previousAt = previous[0]?.erasedAt ?? null
              const removedAny = Object.values(removed).some((count) => count > 0)
              if (!removedAny && previousAt !== null) {
                return { removed, erasedAt: previousAt, recorded: false, visitors }
              }
              yield* sql`
                INSERT INTO erasures (tenant_id, email_hash, erased_at, removed)
                VALUES (${tenantId}, ${hash}, ${now}, ${JSON.stringify(removed)}::jsonb)`
              return { removed, erasedAt: now, recorded: true, visitors }
            })
          ).pipe(Effect.catchTag("SqlError", Effect.die))
          yield* Effect.logInfo(result.recorded ? "lead data erased" : "erasure repeated, nothing left to remove").pipe(
            Effect.annotateLogs({ service: "erasure", tenantId, ...result.removed })
          )
          return {
            removed: result.removed,
            erasedAt: result.erasedAt,
            recorded: result.recorded,
            erasedVisitors: result.visitors.map((visitor) => ({
              tenantId,
              propertyId: visitor.propertyId,
              anonId: visitor.anonId
            }))
          }
        })

      const records = (statement: Effect.Effect<ReadonlyArray<{ readonly data: unknown }>, SqlError>) =>
        Effect.map(statement, (rows) => rows.map((row) => camelCaseKeys(row.data)))

      const exportPerson = (tenantId: string, propertyId: string | null, emailNormalized: string) =>
        Effect.gen(function*() {
          const exportedAt = new Date(yield* Clock.currentTimeMillis)
          return yield* tenants.withTenant(
            tenantId,
            Effect.gen(function*() {
              const leads = yield* sql<LeadRow & { readonly data: unknown }>`
                SELECT id, property_id AS "propertyId", to_jsonb(l) - 'tenant_id' AS data
                FROM leads l WHERE email_normalized = ${emailNormalized}`
              const lead = leads[0]
              if (lead === undefined) return yield* new LeadNotFound()
              const visitors = yield* followedVisitors([lead.id], false)
              yield* checkScope(propertyId, [lead], visitors)
              const visitorIds = visitors.map((visitor) => visitor.id)

              const consentHistory = yield* records(sql`
                SELECT to_jsonb(c) - ARRAY['tenant_id', 'lead_id', 'ip_hash'] AS data
                FROM consent_events c WHERE lead_id = ${lead.id}
                ORDER BY "timestamp", id`)
              const formSubmissions = yield* records(sql`
                SELECT to_jsonb(f) - ARRAY['tenant_id', 'lead_id', 'ip_hash'] AS data
                FROM form_submissions f WHERE lead_id = ${lead.id}
                ORDER BY submitted_at, id`)
              const identities = yield* records(sql`
                SELECT (to_jsonb(i) - ARRAY['tenant_id', 'lead_id'])
                       || jsonb_build_object('visits_included', i.visitor_id = ANY(${visitorIds}::uuid[])) AS data
                FROM lead_identities i WHERE lead_id = ${lead.id}
                ORDER BY created_at, id`)
              const visitorRecords = yield* records(sql`
                SELECT to_jsonb(v) - ARRAY['tenant_id', 'first_ip_hash', 'last_ip_hash', 'first_ua_hash',
                                           'last_ua_hash'] AS data
                FROM visitors v WHERE id = ANY(${visitorIds}::uuid[])
                ORDER BY first_seen_at, id`)
              const sessions = yield* records(sql`
                SELECT to_jsonb(s) - 'tenant_id' AS data
                FROM sessions s WHERE visitor_id = ANY(${visitorIds}::uuid[])
                ORDER BY started_at, id`)
              const events = yield* records(sql`
                SELECT to_jsonb(e) - ARRAY['tenant_id', 'ip_hash', 'ua_hash'] AS data
                FROM events e WHERE visitor_id = ANY(${visitorIds}::uuid[])
                ORDER BY "timestamp", id
                LIMIT ${MAX_EXPORT_EVENTS + 1}`)
              const eventsTruncated = events.length > MAX_EXPORT_EVENTS

              return {
                exportedAt,
                email: emailNormalized,
                lead: camelCaseKeys(lead.data),
                consentHistory,
                formSubmissions,
                identities,
                visitors: visitorRecords,
                sessions,
                events: eventsTruncated ? events.slice(0, MAX_EXPORT_EVENTS) : events,
                eventsTruncated,
                notes: [HEURISTIC_NOTE, HASH_NOTE, ...(eventsTruncated ? [truncatedNote(MAX_EXPORT_EVENTS)] : [])]
              }
            })
          ).pipe(Effect.catchTag("SqlError", Effect.die))
        })

      return Erasure.of({ erase, exportPerson, emailHash })
    })
  )
}

/** Renames the top-level keys of a JSON object from snake_case to camelCase, and leaves nested values as stored. */
const camelCaseKeys = (value: unknown): ExportRecord => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return {}
  return Object.fromEntries(
    Object.entries(value).map(([key, field]) => [key.replace(/_([a-z0-9])/g, (_, next: string) => next.toUpperCase()), field])
  )
}

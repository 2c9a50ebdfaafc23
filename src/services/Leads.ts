/**
 * Lead capture: one transaction per submission that upserts the lead,
 * applies the consent rules and records the consent event, links the
 * submitting visitor (form_submit, confidence 1) and recent visitors with
 * the same IP and UA hashes (same_ip_ua_window, lower confidence), stores
 * the form submission and the lead's first and last non-direct touch. The
 * caller answers only after this transaction has committed.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { type ConsentStatus, decideConsent } from "./ConsentRules.ts"
import { TenantDb } from "./TenantDb.ts"

/** Visitors seen from the same IP and UA hashes this long before a capture may be linked heuristically. */
export const HEURISTIC_WINDOW_MS = 30 * 60 * 1000
const MAX_HEURISTIC_LINKS = 5

export interface CaptureInput {
  readonly tenantId: string
  readonly propertyId: string
  readonly emailDisplay: string
  readonly emailNormalized: string
  readonly anonId: string | null
  readonly expressConsent: boolean
  /** The consent wording the form showed, kept in the audit trail. */
  readonly purpose: string | null
  readonly formName: string
  /** Allow-listed, size-bounded form fields. */
  readonly fields: Readonly<Record<string, string>>
  readonly locale: string | null
  readonly ipHash: string | null
  readonly uaHash: string | null
  readonly now: number
}

export interface CaptureResult {
  readonly leadId: string
  readonly created: boolean
  readonly consentStatus: ConsentStatus
  readonly visitorId: string | null
}

export interface LeadsShape {
  readonly capture: (input: CaptureInput) => Effect.Effect<CaptureResult, SqlError>
  /** Counts a submission dropped as spam, by reason, per property and day. */
  readonly countSpam: (tenantId: string, propertyId: string, reason: string) => Effect.Effect<void, SqlError>
}

export class Leads extends Context.Service<Leads, LeadsShape>()("porchlight/services/Leads") {
  static readonly layer = Layer.effect(
    Leads,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const tenants = yield* TenantDb

      const capture = (input: CaptureInput) =>
        tenants.withTenant(input.tenantId, Effect.gen(function*() {
          const now = new Date(input.now)
          const visitorId = input.anonId === null ? null : yield* upsertVisitor(sql, input, now)
          const { leadId, created, previous } = yield* lockOrCreateLead(sql, input, now)
          const consent = decideConsent(previous, input.expressConsent)
          yield* sql`
            UPDATE leads SET
              consent_status = ${consent.status},
              implied_consent_at = CASE WHEN ${consent.startsImpliedClock} THEN ${now} ELSE implied_consent_at END,
              consent_expired_at = CASE WHEN ${consent.startsImpliedClock} THEN NULL ELSE consent_expired_at END,
              express_consent_at = CASE WHEN ${consent.status === "express" && consent.record}
                                        THEN ${now} ELSE express_consent_at END,
              withdrawn_at = CASE WHEN ${consent.status === "express"} THEN NULL ELSE withdrawn_at END
            WHERE id = ${leadId}`
          if (consent.record) {
            yield* sql`
              INSERT INTO consent_events (tenant_id, lead_id, status, source, purpose, "timestamp", ip_hash)
              VALUES (${input.tenantId}, ${leadId}, ${consent.status}, ${input.formName}, ${input.purpose},
                      ${now}, decode(${hex(input.ipHash)}, 'hex'))`
          }
          if (visitorId !== null) {
            yield* sql`
              INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence)
              VALUES (${input.tenantId}, ${leadId}, ${visitorId}, 'form_submit', 1)
              ON CONFLICT (tenant_id, lead_id, visitor_id, link_source) DO NOTHING`
          }
          yield* linkSameIpAndUa(sql, input, leadId, visitorId, now)
          yield* sql`
            INSERT INTO form_submissions (tenant_id, property_id, lead_id, visitor_id, session_id, form_name,
                                          fields, submitted_at, ip_hash)
            VALUES (${input.tenantId}, ${input.propertyId}, ${leadId}, ${visitorId},
                    ${visitorId === null ? null : sql`(SELECT id FROM sessions WHERE visitor_id = ${visitorId}
                                                       ORDER BY last_event_at DESC LIMIT 1)`},
                    ${input.formName}, ${JSON.stringify(input.fields)}::jsonb, ${now}, decode(${hex(input.ipHash)}, 'hex'))`
          if (visitorId !== null) yield* recordTouches(sql, leadId, visitorId)
          return { leadId, created, consentStatus: consent.status, visitorId }
        }))

      const countSpam = (tenantId: string, propertyId: string, reason: string) =>
        tenants.withTenant(tenantId, sql`
          INSERT INTO lead_spam_counts (tenant_id, property_id, day, reason, submissions)
          VALUES (${tenantId}, ${propertyId}, current_date, ${reason}, 1)
          ON CONFLICT (tenant_id, property_id, day, reason)
          DO UPDATE SET submissions = lead_spam_counts.submissions + 1`).pipe(Effect.asVoid)

      return Leads.of({ capture, countSpam })
    })
  )
}

const upsertVisitor = (sql: SqlClient, input: CaptureInput, now: Date) =>
  Effect.map(
    sql<{ id: string }>`
      INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at,
                            first_ip_hash, last_ip_hash, first_ua_hash, last_ua_hash)
      VALUES (${input.tenantId}, ${input.propertyId}, ${input.anonId}, ${now}, ${now},
              decode(${hex(input.ipHash)}, 'hex'), decode(${hex(input.ipHash)}, 'hex'), decode(${hex(input.uaHash)}, 'hex'), decode(${hex(input.uaHash)}, 'hex'))
      ON CONFLICT (tenant_id, property_id, anon_id) DO UPDATE SET last_seen_at = GREATEST(visitors.last_seen_at, EXCLUDED.last_seen_at)
      RETURNING id`,
    (rows) => rows[0]?.id ?? null
  )

/** Inserts the lead, or locks the existing one so that concurrent captures apply in turn. */
const lockOrCreateLead = (sql: SqlClient, input: CaptureInput, now: Date) =>
  Effect.gen(function*() {
    const inserted = yield* sql<{ id: string }>`
      INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, first_captured_at,
                         last_captured_at, locale)
      VALUES (${input.tenantId}, ${input.propertyId}, ${input.emailNormalized}, ${input.emailDisplay}, ${now},
              ${now}, ${input.locale})
      ON CONFLICT (tenant_id, email_normalized) DO NOTHING
      RETURNING id`
    const created = inserted[0]
    if (created !== undefined) return { leadId: created.id, created: true, previous: undefined }
    const existing = yield* sql<{ id: string; consentStatus: ConsentStatus }>`
      SELECT id, consent_status AS "consentStatus" FROM leads
      WHERE email_normalized = ${input.emailNormalized} FOR UPDATE`
    const lead = existing[0]
    if (lead === undefined) return yield* Effect.die(new Error("lead vanished between insert and lock"))
    yield* sql`
      UPDATE leads SET last_captured_at = GREATEST(last_captured_at, ${now}),
                       email_display = ${input.emailDisplay},
                       locale = COALESCE(${input.locale}, locale)
      WHERE id = ${lead.id}`
    return { leadId: lead.id, created: false, previous: lead.consentStatus }
  })

/**
 * Links visitors seen from the same IP and UA hashes within the window.
 * Confidence falls linearly with the time gap from 0.9 to 0.1, and such a
 * link never merges leads: it only records who may be the same person.
 */
const linkSameIpAndUa = (
  sql: SqlClient,
  input: CaptureInput,
  leadId: string,
  visitorId: string | null,
  now: Date
) => {
  if (input.ipHash === null || input.uaHash === null) return Effect.void
  const since = new Date(input.now - HEURISTIC_WINDOW_MS)
  return sql`
    INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence)
    SELECT ${input.tenantId}, ${leadId}, v.id, 'same_ip_ua_window',
           round(greatest(0.1, 0.9 * (1 - extract(epoch FROM (${now}::timestamptz - v.last_seen_at))
                 / ${HEURISTIC_WINDOW_MS / 1000}))::numeric, 3)
    FROM visitors v
    WHERE v.property_id = ${input.propertyId}
      AND v.last_ip_hash = decode(${hex(input.ipHash)}, 'hex') AND v.last_ua_hash = decode(${hex(input.uaHash)}, 'hex')
      AND v.last_seen_at >= ${since}
      AND v.id IS DISTINCT FROM ${visitorId}::uuid
    ORDER BY v.last_seen_at DESC
    LIMIT ${MAX_HEURISTIC_LINKS}
    ON CONFLICT (tenant_id, lead_id, visitor_id, link_source) DO NOTHING`.pipe(Effect.asVoid)
}

/** First touch (kept from the first capture) and last non-direct touch, from the visitor's sessions. */
const recordTouches = (sql: SqlClient, leadId: string, visitorId: string) =>
  sql`
    WITH first_session AS (
      SELECT traffic_source, utm_medium, COALESCE(utm_campaign, referrer_domain) AS campaign, landing_path, started_at
      FROM sessions WHERE visitor_id = ${visitorId} ORDER BY started_at LIMIT 1
    ), last_session AS (
      SELECT traffic_source, utm_medium, COALESCE(utm_campaign, referrer_domain) AS campaign, landing_path, started_at
      FROM sessions
      WHERE visitor_id = ${visitorId} AND traffic_source NOT IN ('direct', 'internal', 'unknown')
      ORDER BY started_at DESC LIMIT 1
    )
    UPDATE leads SET
      first_touch_source = COALESCE(leads.first_touch_source, (SELECT traffic_source FROM first_session)),
      first_touch_medium = CASE WHEN leads.first_touch_at IS NULL THEN (SELECT utm_medium FROM first_session)
                                ELSE leads.first_touch_medium END,
      first_touch_campaign = CASE WHEN leads.first_touch_at IS NULL THEN (SELECT campaign FROM first_session)
                                  ELSE leads.first_touch_campaign END,
      first_touch_landing_path = CASE WHEN leads.first_touch_at IS NULL THEN (SELECT landing_path FROM first_session)
                                      ELSE leads.first_touch_landing_path END,
      first_touch_at = COALESCE(leads.first_touch_at, (SELECT started_at FROM first_session)),
      source_channel = COALESCE(leads.source_channel, (SELECT traffic_source FROM first_session)),
      last_touch_source = COALESCE((SELECT traffic_source FROM last_session), leads.last_touch_source),
      last_touch_medium = COALESCE((SELECT utm_medium FROM last_session), leads.last_touch_medium),
      last_touch_campaign = COALESCE((SELECT campaign FROM last_session), leads.last_touch_campaign),
      last_touch_landing_path = COALESCE((SELECT landing_path FROM last_session), leads.last_touch_landing_path),
      last_touch_at = COALESCE((SELECT started_at FROM last_session), leads.last_touch_at)
    WHERE id = ${leadId}`.pipe(Effect.asVoid)

/** A hex digest for `decode(..., 'hex')`, or null when there is none. */
const hex = (digest: string | null) => digest === null || digest === "" ? null : digest

/**
 * Rows for one tenant in every tenant table, written as the owner. The
 * isolation tests seed two tenants and check that neither can read the other's rows.
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import type pg from "pg"
import { ownerQuery } from "../../src/services/OwnerClient.ts"

export interface SeededTenant {
  readonly tenantId: string
  readonly propertyId: string
  readonly visitorId: string
  readonly sessionId: string
  readonly leadId: string
  readonly userId: string
}

/** Every table that carries tenant_id, with its row-level security. */
export const TENANT_TABLES = [
  "tenants", "properties", "api_keys", "users", "auth_sessions", "visitors", "sessions", "events",
  "event_receipts", "leads", "lead_identities", "form_submissions", "consent_events", "erasures",
  "daily_metric_rollups", "daily_ingest_rollups", "ingest_rejections", "lead_spam_counts", "daily_visitors"
] as const

export type TenantTable = (typeof TENANT_TABLES)[number]

const id = (result: pg.QueryResult) => String(result.rows[0]?.["id"])

export const seedTenant = (client: pg.Client, label: string) =>
  Effect.gen(function*() {
    const q = (text: string, values: ReadonlyArray<unknown>) => ownerQuery(client, text, values)
    const tenantId = id(yield* q("INSERT INTO tenants (name) VALUES ($1) RETURNING id", [label]))
    const propertyId = id(yield* q(
      "INSERT INTO properties (tenant_id, slug, name, domains) VALUES ($1, 'site', $2, '{example.com}') RETURNING id",
      [tenantId, `${label} site`]
    ))
    yield* q(
      "INSERT INTO api_keys (tenant_id, scope, prefix, key_hash) VALUES ($1, 'admin', $2, $3)",
      [tenantId, `sk_${randomBytes(6).toString("hex")}`.slice(0, 12), randomBytes(32)]
    )
    const userId = id(yield* q(
      "INSERT INTO users (tenant_id, email, password_hash) VALUES ($1, $2, 'x') RETURNING id",
      [tenantId, `${label}@example.com`]
    ))
    yield* q(
      "INSERT INTO auth_sessions (tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, now() + interval '1 day')",
      [tenantId, userId, randomBytes(32)]
    )
    const visitorId = id(yield* q(
      `INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at)
       VALUES ($1, $2, $3, now(), now()) RETURNING id`,
      [tenantId, propertyId, `anon-${label}`]
    ))
    const sessionId = id(yield* q(
      `INSERT INTO sessions (tenant_id, property_id, visitor_id, started_at, last_event_at)
       VALUES ($1, $2, $3, now(), now()) RETURNING id`,
      [tenantId, propertyId, visitorId]
    ))
    yield* q(
      `INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp")
       VALUES ($1, $2, $3, $4, 'page_view', '/', now())`,
      [tenantId, propertyId, visitorId, sessionId]
    )
    yield* q(
      "INSERT INTO event_receipts (tenant_id, property_id, client_event_id, received_at) VALUES ($1, $2, $3, now())",
      [tenantId, propertyId, `event-${label}`]
    )
    const leadId = id(yield* q(
      `INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, first_captured_at, last_captured_at)
       VALUES ($1, $2, $3, $3, now(), now()) RETURNING id`,
      [tenantId, propertyId, `lead-${label}@example.com`]
    ))
    yield* q(
      "INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence) VALUES ($1, $2, $3, 'form_submit', 1)",
      [tenantId, leadId, visitorId]
    )
    yield* q(
      "INSERT INTO form_submissions (tenant_id, property_id, lead_id, form_name, submitted_at) VALUES ($1, $2, $3, 'contact', now())",
      [tenantId, propertyId, leadId]
    )
    yield* q(
      "INSERT INTO consent_events (tenant_id, lead_id, status, source, \"timestamp\") VALUES ($1, $2, 'express', 'contact', now())",
      [tenantId, leadId]
    )
    yield* q("INSERT INTO erasures (tenant_id, email_hash, erased_at) VALUES ($1, $2, now())", [tenantId, randomBytes(32)])
    yield* q(
      "INSERT INTO daily_metric_rollups (tenant_id, property_id, day, dimension) VALUES ($1, $2, current_date, 'total')",
      [tenantId, propertyId]
    )
    yield* q(
      "INSERT INTO daily_ingest_rollups (tenant_id, property_id, day) VALUES ($1, $2, current_date)",
      [tenantId, propertyId]
    )
    yield* q(
      "INSERT INTO ingest_rejections (tenant_id, property_id, received_at, reason) VALUES ($1, $2, now(), 'invalid')",
      [tenantId, propertyId]
    )
    yield* q(
      "INSERT INTO lead_spam_counts (tenant_id, property_id, day, reason, submissions) VALUES ($1, $2, current_date, 'honeypot', 1)",
      [tenantId, propertyId]
    )
    yield* q(
      "INSERT INTO daily_visitors (tenant_id, property_id, day, visitor_id, \"returning\") VALUES ($1, $2, current_date, $3, false)",
      [tenantId, propertyId, visitorId]
    )
    return { tenantId, propertyId, visitorId, sessionId, leadId, userId }
  })

/**
 * A row for `table` that claims tenant `victim`'s id and parents, as an
 * attacker would craft it: the statement and its parameters.
 */
export const craftedInsert = (
  table: Exclude<TenantTable, "tenants">,
  victim: SeededTenant
): readonly [string, ReadonlyArray<string>] => {
  const { tenantId: t, propertyId: p, visitorId: v, sessionId: s, leadId: l, userId: u } = victim
  switch (table) {
    case "properties":
      return ["INSERT INTO properties (tenant_id, slug, name) VALUES ($1, 'stolen', 'x')", [t]]
    case "api_keys":
      return ["INSERT INTO api_keys (tenant_id, property_id, scope, prefix, key_hash) VALUES ($1, $2, 'admin', 'sk_stolen001', '\\x00')", [t, p]]
    case "users":
      return ["INSERT INTO users (tenant_id, email, password_hash) VALUES ($1, 'x@y.z', 'x')", [t]]
    case "auth_sessions":
      return ["INSERT INTO auth_sessions (tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, '\\x01', now())", [t, u]]
    case "visitors":
      return ["INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at) VALUES ($1, $2, 'stolen', now(), now())", [t, p]]
    case "sessions":
      return ["INSERT INTO sessions (tenant_id, property_id, visitor_id, started_at, last_event_at) VALUES ($1, $2, $3, now(), now())", [t, p, v]]
    case "events":
      return ["INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, \"timestamp\") VALUES ($1, $2, $3, $4, 'x', '/', now())", [t, p, v, s]]
    case "event_receipts":
      return ["INSERT INTO event_receipts (tenant_id, property_id, client_event_id, received_at) VALUES ($1, $2, 'stolen', now())", [t, p]]
    case "leads":
      return ["INSERT INTO leads (tenant_id, email_normalized, email_display, first_captured_at, last_captured_at) VALUES ($1, 's@t.ca', 's@t.ca', now(), now())", [t]]
    case "lead_identities":
      return ["INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence) VALUES ($1, $2, $3, 'manual_merge', 1)", [t, l, v]]
    case "form_submissions":
      return ["INSERT INTO form_submissions (tenant_id, property_id, lead_id, form_name, submitted_at) VALUES ($1, $2, $3, 'x', now())", [t, p, l]]
    case "consent_events":
      return ["INSERT INTO consent_events (tenant_id, lead_id, status, source, \"timestamp\") VALUES ($1, $2, 'withdrawn', 'x', now())", [t, l]]
    case "erasures":
      return ["INSERT INTO erasures (tenant_id, email_hash, erased_at) VALUES ($1, '\\x02', now())", [t]]
    case "daily_metric_rollups":
      return ["INSERT INTO daily_metric_rollups (tenant_id, property_id, day, dimension) VALUES ($1, $2, current_date, 'stolen')", [t, p]]
    case "daily_ingest_rollups":
      return ["INSERT INTO daily_ingest_rollups (tenant_id, property_id, day) VALUES ($1, $2, current_date - 1)", [t, p]]
    case "lead_spam_counts":
      return ["INSERT INTO lead_spam_counts (tenant_id, property_id, day, reason) VALUES ($1, $2, current_date, 'stolen')", [t, p]]
    case "daily_visitors":
      return ["INSERT INTO daily_visitors (tenant_id, property_id, day, visitor_id, \"returning\") VALUES ($1, $2, current_date - 1, $3, false)", [t, p, v]]
    case "ingest_rejections":
      return ["INSERT INTO ingest_rejections (tenant_id, property_id, received_at, reason) VALUES ($1, $2, now(), 'x')", [t, p]]
  }
}

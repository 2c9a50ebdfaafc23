/**
 * The lead benchmark's check after the load. It looks up every lead
 * acknowledged with 201 or 200 in `leads` and counts the consent events,
 * form submissions and visitor links stored with the leads. It also looks
 * up every row that the floor acknowledged in the floor's table.
 */
import type pg from "pg"

export interface ServiceCheck {
  readonly acknowledged: number
  readonly leads: number
  /** Acknowledged addresses with no row in `leads`. */
  readonly missing: number
  /** Rows in `leads` whose address was never acknowledged (a request that failed after its commit). */
  readonly unacknowledged: number
  /** Leads with express consent and one consent event with the form's name and consent wording. */
  readonly expressWithEvent: number
  readonly consentEvents: number
  readonly formSubmissions: number
  /** Form submissions that name the visitor's session. */
  readonly submissionsWithSession: number
  readonly formSubmitLinks: number
  readonly sameIpLinks: number
  /** Leads whose first touch was read from the visitor's session. */
  readonly withFirstTouch: number
  readonly withCampaign: number
  readonly sourceChannels: ReadonlyArray<{ readonly name: string; readonly count: number }>
}

export interface FloorCheck {
  readonly acknowledged: number
  readonly rows: number
  readonly missing: number
}

export interface Verification {
  readonly service: ServiceCheck
  readonly floor: FloorCheck
}

export const verifyLeads = async (
  owner: pg.Client,
  floorTable: string,
  consentText: string,
  acknowledged: {
    readonly service: ReadonlyArray<{ readonly emailNormalized: string }>
    readonly floor: ReadonlyArray<{ readonly anonId: string }>
  }
): Promise<Verification> => {
  const count = async (sql: string, values: ReadonlyArray<unknown> = []) => {
    const result = await owner.query<{ count: string }>(sql, [...values])
    return Number(result.rows[0]?.count ?? Number.NaN)
  }

  const stored = await owner.query<[string]>({ text: "SELECT email_normalized FROM leads", rowMode: "array" })
  const storedEmails = new Set(stored.rows.map(([email]) => email))
  const acknowledgedEmails = new Set(acknowledged.service.map((lead) => lead.emailNormalized))
  const channels = await owner.query<{ name: string; count: string }>(
    "SELECT coalesce(source_channel::text, 'none') AS name, count(*) AS count FROM leads GROUP BY 1 ORDER BY 2 DESC"
  )
  const service: ServiceCheck = {
    acknowledged: acknowledged.service.length,
    leads: stored.rows.length,
    missing: acknowledged.service.filter((lead) => !storedEmails.has(lead.emailNormalized)).length,
    unacknowledged: [...storedEmails].filter((email) => !acknowledgedEmails.has(email)).length,
    expressWithEvent: await count(
      `SELECT count(*) AS count FROM leads l
       WHERE l.consent_status = 'express' AND l.express_consent_at IS NOT NULL
         AND (SELECT count(*) FROM consent_events c
              WHERE c.lead_id = l.id AND c.status = 'express' AND c.source = 'contact-sales' AND c.purpose = $1) = 1`,
      [consentText]
    ),
    consentEvents: await count("SELECT count(*) AS count FROM consent_events"),
    formSubmissions: await count("SELECT count(*) AS count FROM form_submissions"),
    submissionsWithSession: await count("SELECT count(*) AS count FROM form_submissions WHERE session_id IS NOT NULL"),
    formSubmitLinks: await count("SELECT count(*) AS count FROM lead_identities WHERE link_source = 'form_submit'"),
    sameIpLinks: await count("SELECT count(*) AS count FROM lead_identities WHERE link_source = 'same_ip_ua_window'"),
    withFirstTouch: await count("SELECT count(*) AS count FROM leads WHERE first_touch_at IS NOT NULL"),
    withCampaign: await count("SELECT count(*) AS count FROM leads WHERE last_touch_medium IS NOT NULL"),
    sourceChannels: channels.rows.map((row) => ({ name: row.name, count: Number(row.count) }))
  }

  const floorRows = await owner.query<[string | null]>({ text: `SELECT anon_id FROM ${floorTable}`, rowMode: "array" })
  const floorIds = new Set(floorRows.rows.map(([anonId]) => anonId))
  const floor: FloorCheck = {
    acknowledged: acknowledged.floor.length,
    rows: floorRows.rows.length,
    missing: acknowledged.floor.filter((lead) => !floorIds.has(lead.anonId)).length
  }
  return { service, floor }
}

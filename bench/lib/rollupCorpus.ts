/**
 * The rollup benchmark's corpus: one property's visitors, sessions, events,
 * leads and ingest rejections over a range of days, generated inside
 * PostgreSQL as the owner with set-based SQL. Every random() sits in a
 * select list, where PostgreSQL evaluates it once per row.
 */
import { Effect } from "effect"
import { performance } from "node:perf_hooks"
import type pg from "pg"
import { ownerQuery } from "../../src/services/OwnerClient.ts"

export interface CorpusSize {
  readonly days: number
  /** Events over all the days, exactly. */
  readonly events: number
  readonly visitors: number
  readonly leads: number
  readonly rejections: number
  readonly paths: number
}

export interface CorpusPlace {
  readonly tenantId: string
  readonly propertyId: string
  readonly timezone: string
  /** First local day, `YYYY-MM-DD`. */
  readonly firstDay: string
}

export interface CorpusCounts {
  readonly events: number
  readonly sessions: number
  readonly visitors: number
  readonly leads: number
  readonly rejections: number
  /** Seconds per load phase, in order. */
  readonly phaseSeconds: ReadonlyArray<readonly [string, number]>
}

/** Maximum number of events in one session. Each session's count is drawn uniformly from 1 to this. */
export const MAX_EVENTS_PER_SESSION = 12
/** Share of the visitors first seen in the 60 days before the corpus begins. */
export const EARLIER_VISITOR_SHARE = 0.25

/**
 * Writes the corpus and returns what it wrote. The events of each day's
 * sessions are inserted in time order, as ingest writes them, and each
 * session's counters are computed from its events in the same statement.
 * The load skips foreign key checks (`session_replication_role = replica`,
 * the data is consistent by construction) and builds the secondary indexes
 * of the loaded tables after their rows, which takes a fraction of the time
 * that maintaining them row by row would.
 */
export const loadCorpus = (client: pg.Client, place: CorpusPlace, size: CorpusSize) =>
  Effect.gen(function*() {
    const run = (text: string, values?: ReadonlyArray<unknown>) => ownerQuery(client, text, values)
    const phaseSeconds: Array<readonly [string, number]> = []
    let phaseStarted = performance.now()
    const endPhase = (name: string) => {
      const now = performance.now()
      phaseSeconds.push([name, (now - phaseStarted) / 1000])
      phaseStarted = now
    }
    yield* run("SET session_replication_role = replica")
    yield* run("SET work_mem = '256MB'")
    yield* run("SET maintenance_work_mem = '512MB'")
    const indexes = yield* run(
      `SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS definition
       FROM pg_index
       WHERE indrelid = ANY (ARRAY['events', 'sessions', 'visitors']::regclass[])
         AND NOT indisprimary AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = indexrelid)`
    )
    for (const row of indexes.rows) yield* run(`DROP INDEX ${String(row["name"])}`)

    for (const statement of draftStatements(place, size)) yield* run(statement)
    yield* run(insertVisitors(place))
    endPhase("session drafts and visitors")
    for (let day = 0; day < size.days; day++) yield* run(insertDay(place, size), [day])
    endPhase("events and sessions")
    yield* run(insertLeads(place, size))
    yield* run(insertRejections(place, size))
    endPhase("leads and rejections")

    for (const row of indexes.rows) yield* run(String(row["definition"]))
    yield* run("RESET session_replication_role")
    yield* run("RESET work_mem")
    yield* run("RESET maintenance_work_mem")
    endPhase("secondary indexes")
    const counted = yield* run(
      `SELECT (SELECT count(*)::int FROM events) AS events, (SELECT count(*)::int FROM sessions) AS sessions,
              (SELECT count(*)::int FROM visitors) AS visitors, (SELECT count(*)::int FROM leads) AS leads,
              (SELECT count(*)::int FROM ingest_rejections) AS rejections`
    )
    const row = counted.rows[0] ?? {}
    return {
      events: Number(row["events"]),
      sessions: Number(row["sessions"]),
      visitors: Number(row["visitors"]),
      leads: Number(row["leads"]),
      rejections: Number(row["rejections"]),
      phaseSeconds
    } satisfies CorpusCounts
  })

/** Local day bounds, the session drafts and the visitors' first visits, as temporary tables. */
const draftStatements = (place: CorpusPlace, size: CorpusSize) => {
  // 5% more drafts than the mean needs, so that the running total reaches the event count.
  const drafts = Math.ceil((size.events / ((1 + MAX_EVENTS_PER_SESSION) / 2)) * 1.05)
  return [
    `CREATE TEMP TABLE bench_days AS
     SELECT d, b.day_start, b.day_end
     FROM generate_series(0, ${size.days - 1}) AS d,
          LATERAL (SELECT (date '${place.firstDay}' + d)::timestamp AT TIME ZONE '${place.timezone}' AS day_start,
                          (date '${place.firstDay}' + d + 1)::timestamp AT TIME ZONE '${place.timezone}' AS day_end) AS b`,
    // Sessions start more often around midday (two uniform draws averaged)
    // on a uniformly drawn day. The running total of their event counts
    // keeps the first sessions that hold exactly the corpus's events.
    `CREATE TEMP TABLE bench_sessions AS
     WITH drawn AS (
       SELECT g AS seq, 1 + floor(random() * ${MAX_EVENTS_PER_SESSION})::int AS drawn_events,
              floor(random() * ${size.days})::int AS d, (random() + random()) / 2 AS time_draw,
              1 + floor(random() * ${size.visitors})::int AS visitor_index, random() AS source_draw,
              random() AS device_draw, floor(random() * 300)::int AS pick, random() AS country_draw,
              random() * interval '4 minutes' AS gap
       FROM generate_series(1, ${drafts}) AS g
     ),
     totalled AS (SELECT drawn.*, sum(drawn_events) OVER (ORDER BY seq) AS through FROM drawn),
     kept AS (
       SELECT t.*, LEAST(t.drawn_events, ${size.events} - (t.through - t.drawn_events))::int AS events,
              b.day_start + t.time_draw * (b.day_end - b.day_start) AS started_at
       FROM totalled t JOIN bench_days b USING (d)
       WHERE t.through - t.drawn_events < ${size.events}
     )
     -- Ids are UUIDv7 of the start time, as ingest would have made them.
     SELECT kept.*, uuidv7(kept.started_at - clock_timestamp()) AS id FROM kept`,
    // A visitor first seen inside the range was first seen at its first session.
    `CREATE TEMP TABLE bench_visitors AS
     SELECT v.visitor_index, f.first_seen_at, uuidv7(f.first_seen_at - clock_timestamp()) AS id
     FROM (SELECT i AS visitor_index, random() < ${EARLIER_VISITOR_SHARE} AS earlier, random() AS draw
           FROM generate_series(1, ${size.visitors}) AS i) AS v
     LEFT JOIN (SELECT visitor_index, min(started_at) AS first_session FROM bench_sessions GROUP BY visitor_index) AS s
       USING (visitor_index)
     CROSS JOIN LATERAL (
       SELECT CASE WHEN v.earlier THEN ${RANGE_START} - v.draw * interval '60 days'
                   ELSE COALESCE(s.first_session, ${RANGE_START} + v.draw * ${RANGE_SPAN}) END
                AS first_seen_at
     ) AS f`,
    "CREATE UNIQUE INDEX ON bench_visitors (visitor_index)",
    "ANALYZE bench_sessions",
    "ANALYZE bench_visitors"
  ]
}

const RANGE_START = "(SELECT day_start FROM bench_days WHERE d = 0)"
const RANGE_END = "(SELECT max(day_end) FROM bench_days)"
const RANGE_SPAN = `(${RANGE_END} - ${RANGE_START})`

const ids = (place: CorpusPlace) => `'${place.tenantId}'::uuid, '${place.propertyId}'::uuid`

const insertVisitors = (place: CorpusPlace) =>
  `INSERT INTO visitors (id, tenant_id, property_id, anon_id, first_seen_at, last_seen_at)
   SELECT id, ${ids(place)}, 'anon-' || visitor_index, first_seen_at, first_seen_at FROM bench_visitors`

/**
 * Inserts the events of the sessions that start on day `$1` and then the
 * sessions, with the counters taken from those events. A session's first
 * event is its entrance page view, and later ones, a random gap of up to 4
 * minutes apart, are page views, web vitals with TTFB, scrolls, clicks and
 * a few form events. Paths are drawn log-uniformly, so a few pages get most
 * views. The traffic mix, referrers and search terms match each source.
 */
const insertDay = (place: CorpusPlace, size: CorpusSize) =>
  `WITH s AS (
     SELECT bs.*, v.id AS visitor_id, src.source,
            CASE WHEN bs.device_draw < 0.55 THEN 'desktop' WHEN bs.device_draw < 0.93 THEN 'mobile'
                 WHEN bs.device_draw < 0.97 THEN 'tablet' ELSE 'bot' END::device_type AS device_type,
            CASE WHEN bs.country_draw < 0.03 THEN NULL
                 ELSE (ARRAY['CA', 'CA', 'CA', 'CA', 'US', 'US', 'US', 'FR', 'GB', 'DE', 'IN', 'BR', 'AU', 'MX'])
                      [1 + floor(bs.country_draw * 14)::int] END AS country_code
     FROM bench_sessions bs
     JOIN bench_visitors v USING (visitor_index)
     CROSS JOIN LATERAL (
       SELECT CASE WHEN bs.source_draw < 0.30 THEN 'direct' WHEN bs.source_draw < 0.65 THEN 'organic_search'
                   WHEN bs.source_draw < 0.73 THEN 'paid_search' WHEN bs.source_draw < 0.81 THEN 'social'
                   WHEN bs.source_draw < 0.85 THEN 'email' WHEN bs.source_draw < 0.95 THEN 'referral'
                   WHEN bs.source_draw < 0.98 THEN 'campaign' WHEN bs.source_draw < 0.99 THEN 'internal'
                   ELSE 'unknown' END::traffic_source AS source
     ) AS src
     WHERE bs.d = $1
   ),
   drawn AS (
     SELECT s.id AS session_id, s.visitor_id, s.source, s.device_type, s.country_code, k AS rank,
            LEAST(s.started_at + (k - 1) * s.gap, ${RANGE_END} - interval '1 millisecond') AS at,
            random() AS type_draw, floor(power(${size.paths}, random()))::int AS path_rank, random() AS ttfb_draw
     FROM s, generate_series(1, s.events) AS k
   ),
   typed AS (
     SELECT d.*,
            CASE WHEN d.rank = 1 OR d.type_draw < 0.55 THEN 'page_view' WHEN d.type_draw < 0.75 THEN 'web_vitals'
                 WHEN d.type_draw < 0.87 THEN 'scroll' WHEN d.type_draw < 0.979 THEN 'cta_click'
                 WHEN d.type_draw < 0.994 THEN 'form_start' ELSE 'form_submit' END AS event_type
     FROM drawn d
   ),
   inserted AS (
     INSERT INTO events (tenant_id, property_id, visitor_id, session_id, event_type, path, "timestamp",
                         traffic_source, device_type, country_code, is_entrance, is_conversion, props)
     SELECT ${ids(place)}, t.visitor_id, t.session_id, t.event_type,
            CASE t.path_rank WHEN 1 THEN '/' WHEN 2 THEN '/pricing' ELSE '/page/' || t.path_rank END,
            t.at, t.source, t.device_type, t.country_code, t.rank = 1, t.event_type = 'form_submit',
            CASE WHEN t.event_type = 'web_vitals'
                 THEN jsonb_build_object('ttfbMs', round((40 + 1200 * power(t.ttfb_draw, 3))::numeric, 1),
                                         'lcpMs', round((600 + 3000 * t.ttfb_draw)::numeric))
                 ELSE '{}'::jsonb END
     FROM typed t
     ORDER BY t.at
     RETURNING session_id, event_type, "timestamp"
   )
   INSERT INTO sessions (id, tenant_id, property_id, visitor_id, started_at, last_event_at, landing_path,
                         traffic_source, referrer_domain, utm_term, device_type, country_code, page_views, events,
                         is_conversion)
   SELECT s.id, ${ids(place)}, s.visitor_id, s.started_at, c.last_event_at, '/', s.source,
          CASE s.source
            WHEN 'organic_search' THEN (ARRAY['google.com', 'bing.com', 'duckduckgo.com'])[1 + s.pick % 3]
            WHEN 'paid_search' THEN 'google.com'
            WHEN 'social' THEN (ARRAY['facebook.com', 'linkedin.com', 'x.com'])[1 + s.pick % 3]
            WHEN 'referral' THEN 'site-' || (s.pick % 200) || '.example'
            WHEN 'internal' THEN 'www.example.com'
          END,
          CASE WHEN s.source IN ('paid_search', 'campaign') THEN 'keyword ' || s.pick END,
          s.device_type, s.country_code, c.page_views, c.events, c.converted
   FROM s
   JOIN (SELECT session_id, count(*) FILTER (WHERE event_type = 'page_view') AS page_views, count(*) AS events,
                bool_or(event_type = 'form_submit') AS converted, max("timestamp") AS last_event_at
         FROM inserted GROUP BY session_id) AS c ON c.session_id = s.id`

/** Leads first captured at random times, each with a \`form_submit\` identity of a random visitor. */
const insertLeads = (place: CorpusPlace, size: CorpusSize) =>
  `WITH l AS (
     INSERT INTO leads (tenant_id, property_id, email_normalized, email_display, first_captured_at, last_captured_at)
     SELECT ${ids(place)}, 'lead-' || c.i || '@example.com', 'lead-' || c.i || '@example.com', c.at, c.at
     FROM (SELECT i, ${RANGE_START} + random() * ${RANGE_SPAN} AS at
           FROM generate_series(1, ${size.leads}) AS i) AS c
     RETURNING id, first_captured_at
   )
   INSERT INTO lead_identities (tenant_id, lead_id, visitor_id, link_source, confidence, created_at)
   SELECT '${place.tenantId}'::uuid, l.id, v.id, 'form_submit', 1, l.first_captured_at
   FROM (SELECT id, first_captured_at, 1 + floor(random() * ${size.visitors})::int AS visitor_index FROM l) AS l
   JOIN bench_visitors v USING (visitor_index)`

const insertRejections = (place: CorpusPlace, size: CorpusSize) =>
  `INSERT INTO ingest_rejections (tenant_id, property_id, received_at, reason, field)
   SELECT ${ids(place)}, ${RANGE_START} + random() * ${RANGE_SPAN},
          (ARRAY['invalid_event', 'invalid_event', 'invalid_event', 'not_an_object', 'too_many_events'])
            [1 + floor(random() * 5)::int], 'path'
   FROM generate_series(1, ${size.rejections})`

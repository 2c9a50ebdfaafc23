-- Writes one tenant's share of an ingest flush in a single statement. The
-- service calls it outside an explicit transaction, so the call is its own
-- transaction: one round trip from the service to PostgreSQL instead of the
-- BEGIN, tenant setting, five statements and COMMIT it took before. Under
-- load each round trip also waited for the service's event loop, so the
-- count of round trips, not PostgreSQL's work, set the time of a flush.
--
-- The batch is one jsonb document with an array of rows per table, each row
-- keyed by the column names below; an empty array may be left out. See
-- src/streams/EventStatements.ts for its shape. The function runs as its
-- caller (SECURITY INVOKER), sets porchlight.tenant_id for the transaction
-- itself, and so stays under the same row-level security as any other
-- tenant write.
--
-- Every row of a batch finds its visitor, or its event, through a unique
-- index: a correlated subquery or a loop over ids, never a join. The
-- planner cannot see a batch's size (it assumes 100 rows for
-- jsonb_to_recordset), and with statistics that lag a fast-growing table it
-- joined a batch against the tenant's whole range of visitors or events: a
-- cost per batch that grew with the table. Lookups by a unique key are
-- planned as index scans whatever the statistics say.
CREATE FUNCTION porchlight_write_events(p_tenant uuid, p_batch jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
  cleared_id uuid;
BEGIN
  PERFORM set_config('porchlight.tenant_id', p_tenant::text, true);

  INSERT INTO visitors (tenant_id, property_id, anon_id, first_seen_at, last_seen_at,
                        first_ip_hash, last_ip_hash, first_ua_hash, last_ua_hash)
  SELECT p_tenant, v.property_id, v.anon_id, v.seen_at, v.seen_at,
         decode(v.ip_hash, 'hex'), decode(v.ip_hash, 'hex'), decode(v.ua_hash, 'hex'), decode(v.ua_hash, 'hex')
  FROM jsonb_to_recordset(p_batch -> 'visitors')
       AS v(property_id uuid, anon_id text, seen_at timestamptz, ip_hash text, ua_hash text)
  ORDER BY v.property_id, v.anon_id
  ON CONFLICT (tenant_id, property_id, anon_id) DO UPDATE SET
    last_seen_at = GREATEST(visitors.last_seen_at, EXCLUDED.last_seen_at),
    last_ip_hash = EXCLUDED.last_ip_hash,
    last_ua_hash = EXCLUDED.last_ua_hash
  -- last_seen_at is kept to the minute: an update with the same address and
  -- user agent within a minute of the last one is skipped. Each update
  -- writes a new entry in every index of visitors (last_seen_at and the
  -- hashes are indexed for lead linking), and a visit sends several events
  -- a minute.
  WHERE EXCLUDED.last_seen_at >= visitors.last_seen_at + interval '1 minute'
     OR visitors.last_ip_hash IS DISTINCT FROM EXCLUDED.last_ip_hash
     OR visitors.last_ua_hash IS DISTINCT FROM EXCLUDED.last_ua_hash;

  INSERT INTO sessions (id, tenant_id, property_id, visitor_id, started_at, last_event_at,
                        landing_path, exit_path, referrer, referrer_domain, search_term,
                        utm_source, utm_medium, utm_campaign, utm_term, utm_content,
                        traffic_source, device_type, country_code, page_views, events, is_conversion)
  SELECT s.id, p_tenant, s.property_id,
         (SELECT v.id FROM visitors v
          WHERE v.tenant_id = p_tenant AND v.property_id = s.property_id AND v.anon_id = s.anon_id),
         s.started_at, s.last_event_at,
         s.landing_path, s.exit_path, s.referrer, s.referrer_domain, s.search_term,
         s.utm_source, s.utm_medium, s.utm_campaign, s.utm_term, s.utm_content,
         s.traffic_source, s.device_type, s.country_code, s.page_views, s.events, s.is_conversion
  FROM jsonb_to_recordset(p_batch -> 'sessions')
       AS s(id uuid, property_id uuid, anon_id text, started_at timestamptz, last_event_at timestamptz,
            landing_path text, exit_path text, referrer text, referrer_domain text, search_term text,
            utm_source text, utm_medium text, utm_campaign text, utm_term text, utm_content text,
            traffic_source traffic_source, device_type device_type, country_code char(2),
            page_views integer, events integer, is_conversion boolean)
  ORDER BY s.id
  ON CONFLICT (id) DO UPDATE SET
    last_event_at = GREATEST(sessions.last_event_at, EXCLUDED.last_event_at),
    landing_path = COALESCE(sessions.landing_path, EXCLUDED.landing_path),
    exit_path = COALESCE(EXCLUDED.exit_path, sessions.exit_path),
    page_views = GREATEST(sessions.page_views, EXCLUDED.page_views),
    events = GREATEST(sessions.events, EXCLUDED.events),
    is_conversion = sessions.is_conversion OR EXCLUDED.is_conversion;

  IF p_batch ? 'endedSessions' THEN
    UPDATE sessions SET ended_at = e.ended_at
    FROM jsonb_to_recordset(p_batch -> 'endedSessions') AS e(id uuid, ended_at timestamptz)
    WHERE sessions.id = e.id;
  END IF;

  -- A client event id received in the last 24 hours marks a retry: the
  -- receipt insert returns only the fresh ids, and only their events (and
  -- events without a client id) are stored.
  WITH e AS (
    SELECT * FROM jsonb_to_recordset(p_batch -> 'events')
      AS e(id uuid, property_id uuid, anon_id text, session_id uuid, client_event_id text, event_type text,
           path text, referrer text, ts timestamptz, client_ts timestamptz, skew bigint, ip_hash text,
           ua_hash text, traffic_source traffic_source, device_type device_type, country_code char(2),
           is_entrance boolean, is_exit boolean, is_conversion boolean, props jsonb)
  ),
  fresh AS (
    INSERT INTO event_receipts (tenant_id, property_id, client_event_id, received_at)
    SELECT p_tenant, e.property_id, e.client_event_id, e.ts FROM e
    WHERE e.client_event_id IS NOT NULL
    ORDER BY e.property_id, e.client_event_id
    ON CONFLICT (tenant_id, property_id, client_event_id) DO UPDATE SET received_at = EXCLUDED.received_at
      WHERE event_receipts.received_at < EXCLUDED.received_at - interval '24 hours'
    RETURNING property_id, client_event_id
  )
  INSERT INTO events (id, tenant_id, property_id, visitor_id, session_id, client_event_id, event_type,
                      path, referrer, "timestamp", client_timestamp, clock_skew_ms, ip_hash, ua_hash,
                      traffic_source, device_type, country_code, is_entrance, is_exit, is_conversion, props)
  SELECT e.id, p_tenant, e.property_id,
         (SELECT v.id FROM visitors v
          WHERE v.tenant_id = p_tenant AND v.property_id = e.property_id AND v.anon_id = e.anon_id),
         e.session_id, e.client_event_id, e.event_type,
         e.path, e.referrer, e.ts, e.client_ts, e.skew, decode(e.ip_hash, 'hex'), decode(e.ua_hash, 'hex'),
         e.traffic_source, e.device_type, e.country_code, e.is_entrance, e.is_exit, e.is_conversion, e.props
  FROM e
  WHERE e.client_event_id IS NULL
     OR EXISTS (SELECT 1 FROM fresh f WHERE f.property_id = e.property_id AND f.client_event_id = e.client_event_id);

  -- One primary-key update per id. A join or `id = ANY (...)` let the
  -- planner scan the tenant's range of the events index instead.
  FOR cleared_id IN SELECT value::uuid FROM jsonb_array_elements_text(p_batch -> 'exitClearedEventIds') LOOP
    UPDATE events SET is_exit = false WHERE id = cleared_id AND is_exit;
  END LOOP;

  IF p_batch ? 'rejections' THEN
    INSERT INTO ingest_rejections (tenant_id, property_id, received_at, reason, field)
    SELECT p_tenant, r.property_id, r.received_at, r.reason, r.field
    FROM jsonb_to_recordset(p_batch -> 'rejections')
         AS r(property_id uuid, received_at timestamptz, reason text, field text);
  END IF;
END
$$;

REVOKE ALL ON FUNCTION porchlight_write_events(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION porchlight_write_events(uuid, jsonb) TO porchlight_app;

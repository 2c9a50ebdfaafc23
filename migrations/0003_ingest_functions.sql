-- Lets the service reload, at start, every session that was active recently,
-- across tenants, so that a restart does not split visits. It returns only
-- what a visitor actor keeps in memory, and runs as the owner because the
-- application role sees one tenant at a time.
CREATE FUNCTION porchlight_open_sessions(active_since timestamptz)
RETURNS TABLE (
  id uuid,
  tenant_id uuid,
  property_id uuid,
  anon_id text,
  started_at timestamptz,
  last_event_at timestamptz,
  landing_path text,
  exit_path text,
  referrer text,
  referrer_domain text,
  search_term text,
  utm_source text,
  utm_medium text,
  utm_campaign text,
  utm_term text,
  utm_content text,
  traffic_source traffic_source,
  device_type device_type,
  country_code char(2),
  page_views integer,
  events integer,
  is_conversion boolean,
  exit_event_id uuid
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT DISTINCT ON (s.tenant_id, s.visitor_id)
         s.id, s.tenant_id, s.property_id, v.anon_id, s.started_at, s.last_event_at, s.landing_path,
         s.exit_path, s.referrer, s.referrer_domain, s.search_term, s.utm_source, s.utm_medium,
         s.utm_campaign, s.utm_term, s.utm_content, s.traffic_source, s.device_type, s.country_code,
         s.page_views, s.events, s.is_conversion,
         (SELECT e.id FROM events e
          WHERE e.tenant_id = s.tenant_id AND e.session_id = s.id AND e.is_exit
          ORDER BY e."timestamp" DESC LIMIT 1)
  FROM sessions s
  JOIN visitors v ON v.tenant_id = s.tenant_id AND v.id = s.visitor_id
  WHERE s.last_event_at >= active_since AND s.ended_at IS NULL
  ORDER BY s.tenant_id, s.visitor_id, s.last_event_at DESC
$$;

REVOKE ALL ON FUNCTION porchlight_open_sessions(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION porchlight_open_sessions(timestamptz) TO porchlight_app;

-- Answers CORS preflights, which carry no key: is this origin allowed by
-- any property? It reveals only a yes or no for an origin the caller names.
CREATE FUNCTION porchlight_origin_allowed(request_origin text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM properties
    WHERE request_origin = ANY (allowed_origins)
       OR substring(request_origin FROM '^https?://([^:/]+)') = ANY (domains)
  )
$$;

REVOKE ALL ON FUNCTION porchlight_origin_allowed(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION porchlight_origin_allowed(text) TO porchlight_app;

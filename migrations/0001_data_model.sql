-- The data model: tenants and their properties, keys and users; visitors,
-- sessions and events from ingest; leads with their identities, form
-- submissions and consent trail; rollups and job bookkeeping.
--
-- Every tenant data table carries tenant_id and starts its indexes with it.
-- Ids are uuidv7() (PostgreSQL 18), so they sort by creation time.
-- job_runs is the one table without tenant_id: a job run covers all tenants.

CREATE TYPE traffic_source AS ENUM (
  'direct', 'organic_search', 'paid_search', 'social', 'email', 'referral',
  'campaign', 'internal', 'unknown'
);
CREATE TYPE device_type AS ENUM ('desktop', 'mobile', 'tablet', 'bot', 'unknown');
CREATE TYPE consent_status AS ENUM ('pending', 'express', 'implied', 'withdrawn');
CREATE TYPE api_key_scope AS ENUM ('ingest', 'admin');
CREATE TYPE identity_link_source AS ENUM ('form_submit', 'same_ip_ua_window', 'manual_merge');
CREATE TYPE job_outcome AS ENUM ('running', 'succeeded', 'failed');

CREATE TABLE tenants (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  -- The tenant's own id, so that row-level security treats this table like
  -- every other tenant table.
  tenant_id uuid GENERATED ALWAYS AS (id) STORED,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE properties (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  slug text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- Hosts (lower-case, no scheme or port) whose pages may send to this property.
  domains text[] NOT NULL DEFAULT '{}',
  -- Origins (scheme, host and port) allowed by CORS for this property.
  allowed_origins text[] NOT NULL DEFAULT '{}',
  timezone text NOT NULL DEFAULT 'UTC',
  thank_you_url text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, slug),
  UNIQUE (tenant_id, id)
);

CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid,
  scope api_key_scope NOT NULL,
  name text NOT NULL DEFAULT '',
  -- The key's public prefix, used to find it without scanning hashes.
  prefix text NOT NULL UNIQUE,
  -- SHA-256 of the whole key; keys are 32 random bytes, so no salt is needed.
  key_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz,
  FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at);

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  email text NOT NULL,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, email),
  UNIQUE (tenant_id, id)
);

CREATE TABLE auth_sessions (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  token_hash bytea NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX auth_sessions_expiry_idx ON auth_sessions (tenant_id, expires_at);

CREATE TABLE visitors (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  anon_id text NOT NULL,
  first_seen_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  first_ip_hash bytea,
  last_ip_hash bytea,
  first_ua_hash bytea,
  last_ua_hash bytea,
  UNIQUE (tenant_id, property_id, anon_id),
  UNIQUE (tenant_id, id),
  FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX visitors_ip_ua_idx ON visitors (tenant_id, last_ip_hash, last_ua_hash, last_seen_at);

CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  visitor_id uuid NOT NULL,
  started_at timestamptz NOT NULL,
  ended_at timestamptz,
  last_event_at timestamptz NOT NULL,
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
  traffic_source traffic_source NOT NULL DEFAULT 'unknown',
  device_type device_type NOT NULL DEFAULT 'unknown',
  country_code char(2),
  page_views integer NOT NULL DEFAULT 0,
  events integer NOT NULL DEFAULT 0,
  is_conversion boolean NOT NULL DEFAULT false,
  UNIQUE (tenant_id, id),
  FOREIGN KEY (tenant_id, visitor_id) REFERENCES visitors (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_property_started_idx ON sessions (tenant_id, property_id, started_at);
CREATE INDEX sessions_visitor_idx ON sessions (tenant_id, visitor_id, last_event_at DESC);
CREATE INDEX sessions_last_event_idx ON sessions (last_event_at);

CREATE TABLE events (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  visitor_id uuid NOT NULL,
  session_id uuid NOT NULL,
  client_event_id text,
  event_type text NOT NULL,
  path text NOT NULL,
  referrer text,
  -- Server receive time: the event's time for every metric and session rule.
  "timestamp" timestamptz NOT NULL,
  -- Time the client reported, kept as sent; clock_skew_ms is set when it is
  -- further from the receive time than the accepted bound.
  client_timestamp timestamptz,
  clock_skew_ms bigint,
  ip_hash bytea,
  ua_hash bytea,
  traffic_source traffic_source NOT NULL DEFAULT 'unknown',
  device_type device_type NOT NULL DEFAULT 'unknown',
  country_code char(2),
  is_entrance boolean NOT NULL DEFAULT false,
  is_exit boolean NOT NULL DEFAULT false,
  is_conversion boolean NOT NULL DEFAULT false,
  props jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_property_time_idx ON events (tenant_id, property_id, "timestamp");
CREATE INDEX events_session_idx ON events (tenant_id, session_id, "timestamp");
CREATE INDEX events_visitor_idx ON events (tenant_id, visitor_id);
CREATE INDEX events_time_idx ON events ("timestamp");

-- Client event ids seen in the last 24 hours, so a retried beacon is
-- acknowledged without being stored twice.
CREATE TABLE event_receipts (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  client_event_id text NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, property_id, client_event_id)
);
CREATE INDEX event_receipts_received_idx ON event_receipts (received_at);

CREATE TABLE leads (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid,
  email_normalized text NOT NULL,
  -- The address as typed, for display.
  email_display text NOT NULL,
  email_domain text GENERATED ALWAYS AS (split_part(email_normalized, '@', 2)) STORED,
  consent_status consent_status NOT NULL DEFAULT 'pending',
  -- Start of the six-month implied-consent clock (CASL inquiry).
  implied_consent_at timestamptz,
  express_consent_at timestamptz,
  withdrawn_at timestamptz,
  -- Set when implied consent has run out: the lead may no longer be messaged.
  consent_expired_at timestamptz,
  first_captured_at timestamptz NOT NULL,
  last_captured_at timestamptz NOT NULL,
  source_channel traffic_source,
  locale text,
  first_touch_source traffic_source,
  first_touch_medium text,
  first_touch_campaign text,
  first_touch_landing_path text,
  first_touch_at timestamptz,
  last_touch_source traffic_source,
  last_touch_medium text,
  last_touch_campaign text,
  last_touch_landing_path text,
  last_touch_at timestamptz,
  UNIQUE (tenant_id, email_normalized),
  UNIQUE (tenant_id, id),
  FOREIGN KEY (tenant_id, property_id) REFERENCES properties (tenant_id, id) ON DELETE SET NULL (property_id)
);
CREATE INDEX leads_first_captured_idx ON leads (tenant_id, property_id, first_captured_at);

CREATE TABLE lead_identities (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  lead_id uuid NOT NULL,
  visitor_id uuid NOT NULL,
  link_source identity_link_source NOT NULL,
  confidence numeric(4, 3) NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, lead_id, visitor_id, link_source),
  FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, visitor_id) REFERENCES visitors (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX lead_identities_visitor_idx ON lead_identities (tenant_id, visitor_id);

CREATE TABLE form_submissions (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  lead_id uuid,
  visitor_id uuid,
  session_id uuid,
  form_name text NOT NULL,
  -- Allow-listed fields only, bounded in size by the capture endpoint.
  fields jsonb NOT NULL DEFAULT '{}',
  submitted_at timestamptz NOT NULL,
  ip_hash bytea,
  FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX form_submissions_lead_idx ON form_submissions (tenant_id, lead_id);
CREATE INDEX form_submissions_property_idx ON form_submissions (tenant_id, property_id, submitted_at);

CREATE TABLE consent_events (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  lead_id uuid NOT NULL,
  status consent_status NOT NULL,
  -- Where the change came from: a form name, 'unsubscribe_link', 'admin', 'expiry'.
  source text NOT NULL,
  -- The consent wording shown to the person, when a form showed one.
  purpose text,
  "timestamp" timestamptz NOT NULL,
  ip_hash bytea,
  FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX consent_events_lead_idx ON consent_events (tenant_id, lead_id, "timestamp");

-- Proof of erasure: a keyed hash of the erased email and when it happened.
CREATE TABLE erasures (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  email_hash bytea NOT NULL,
  erased_at timestamptz NOT NULL,
  removed jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX erasures_email_idx ON erasures (tenant_id, email_hash);

CREATE TABLE daily_metric_rollups (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  day date NOT NULL,
  -- 'total' for the day's totals, or a breakdown: 'path', 'source',
  -- 'referrer', 'keyword', 'country', 'device'.
  dimension text NOT NULL,
  dimension_value text NOT NULL DEFAULT '',
  visitors bigint NOT NULL DEFAULT 0,
  returning_visitors bigint NOT NULL DEFAULT 0,
  sessions bigint NOT NULL DEFAULT 0,
  page_views bigint NOT NULL DEFAULT 0,
  entrances bigint NOT NULL DEFAULT 0,
  converting_entrances bigint NOT NULL DEFAULT 0,
  conversions bigint NOT NULL DEFAULT 0,
  form_starts bigint NOT NULL DEFAULT 0,
  form_submits bigint NOT NULL DEFAULT 0,
  new_leads bigint NOT NULL DEFAULT 0,
  bot_events bigint NOT NULL DEFAULT 0,
  events bigint NOT NULL DEFAULT 0,
  ttfb_p95_ms double precision,
  time_to_first_capture_median_s double precision,
  metrics jsonb NOT NULL DEFAULT '{}',
  rolled_up_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, property_id, day, dimension, dimension_value)
);

CREATE TABLE daily_ingest_rollups (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  day date NOT NULL,
  accepted bigint NOT NULL DEFAULT 0,
  rejected bigint NOT NULL DEFAULT 0,
  rejected_by_reason jsonb NOT NULL DEFAULT '{}',
  rolled_up_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, property_id, day)
);

CREATE TABLE ingest_rejections (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  received_at timestamptz NOT NULL,
  reason text NOT NULL,
  field text
);
CREATE INDEX ingest_rejections_property_idx ON ingest_rejections (tenant_id, property_id, received_at);

CREATE TABLE job_runs (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  job text NOT NULL,
  trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  outcome job_outcome NOT NULL DEFAULT 'running',
  rows_affected bigint,
  error text
);
CREATE INDEX job_runs_job_idx ON job_runs (job, started_at DESC);

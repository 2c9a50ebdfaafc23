-- Tenant isolation. The service connects as porchlight_app, which neither
-- owns the tables nor bypasses row-level security. Each request's work runs
-- in a transaction that sets porchlight.tenant_id with set_config(..., true);
-- every policy compares tenant_id with porchlight_current_tenant(), which
-- raises an error when no tenant is set, so a query on tenant data outside
-- such a transaction fails instead of silently returning nothing.
--
-- The migrating role (the owner) keeps full access through its own policies:
-- migrations, bootstrap and the operator CLI run as the owner.

DO $$
BEGIN
  CREATE ROLE porchlight_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
EXCEPTION
  -- The role is cluster-wide and may exist for another database already.
  WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO porchlight_app', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO porchlight_app;

CREATE FUNCTION porchlight_current_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  setting text := current_setting('porchlight.tenant_id', true);
BEGIN
  IF setting IS NULL OR setting = '' THEN
    RAISE EXCEPTION 'tenant data read or written outside a tenant transaction'
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'run the query inside a transaction that sets porchlight.tenant_id';
  END IF;
  RETURN setting::uuid;
END
$$;

DO $$
DECLARE
  table_name text;
BEGIN
  FOREACH table_name IN ARRAY ARRAY[
    'tenants', 'properties', 'api_keys', 'users', 'auth_sessions', 'visitors',
    'sessions', 'events', 'event_receipts', 'leads', 'lead_identities',
    'form_submissions', 'consent_events', 'erasures', 'daily_metric_rollups',
    'daily_ingest_rollups', 'ingest_rejections'
  ] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', table_name);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', table_name);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %I TO porchlight_app '
      'USING (tenant_id = porchlight_current_tenant()) '
      'WITH CHECK (tenant_id = porchlight_current_tenant())',
      table_name
    );
    EXECUTE format('CREATE POLICY owner_access ON %I TO CURRENT_USER USING (true) WITH CHECK (true)', table_name);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO porchlight_app', table_name);
  END LOOP;
END
$$;

-- A tenant row is created by the operator, never by the service.
REVOKE INSERT, DELETE ON tenants FROM porchlight_app;

-- Job runs cover every tenant: no tenant_id, no row-level security.
GRANT SELECT, INSERT, UPDATE ON job_runs TO porchlight_app;

-- Finds a key by its public prefix before the tenant is known. It runs as the
-- owner (SECURITY DEFINER) and returns only what key resolution needs.
CREATE FUNCTION porchlight_find_api_key(key_prefix text)
RETURNS TABLE (
  key_id uuid,
  tenant_id uuid,
  property_id uuid,
  scope api_key_scope,
  key_hash bytea,
  revoked boolean,
  property_domains text[],
  property_origins text[]
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT k.id, k.tenant_id, k.property_id, k.scope, k.key_hash, k.revoked_at IS NOT NULL,
         p.domains, p.allowed_origins
  FROM api_keys k
  LEFT JOIN properties p ON p.tenant_id = k.tenant_id AND p.id = k.property_id
  WHERE k.prefix = key_prefix
$$;

-- Records that keys were used, at most once a minute per key.
CREATE FUNCTION porchlight_touch_api_keys(key_ids uuid[])
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  UPDATE api_keys SET last_used_at = now()
  WHERE id = ANY (key_ids) AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
$$;

REVOKE ALL ON FUNCTION porchlight_find_api_key(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION porchlight_touch_api_keys(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION porchlight_find_api_key(text) TO porchlight_app;
GRANT EXECUTE ON FUNCTION porchlight_touch_api_keys(uuid[]) TO porchlight_app;
GRANT EXECUTE ON FUNCTION porchlight_current_tenant() TO porchlight_app;

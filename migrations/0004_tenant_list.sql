-- Lets jobs that cover every tenant (such as consent expiry) list the
-- tenants, and then do each tenant's work in that tenant's transaction. It
-- runs as the owner because the application role sees one tenant at a time,
-- and it returns only the ids.
CREATE FUNCTION porchlight_tenant_ids()
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT id FROM tenants ORDER BY id
$$;

REVOKE ALL ON FUNCTION porchlight_tenant_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION porchlight_tenant_ids() TO porchlight_app;

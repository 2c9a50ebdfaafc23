-- Evaluates the tenant once per statement instead of once per row. Written
-- as a scalar subquery, porchlight_current_tenant() becomes an InitPlan; as
-- a bare call, PostgreSQL ran the PL/pgSQL function for every row checked,
-- which made row-level security the largest cost of a batched ingest write.
-- The function still raises its error outside a tenant transaction.
DO $$
DECLARE
  table_name text;
BEGIN
  FOREACH table_name IN ARRAY ARRAY[
    'tenants', 'properties', 'api_keys', 'users', 'auth_sessions', 'visitors',
    'sessions', 'events', 'event_receipts', 'leads', 'lead_identities',
    'form_submissions', 'consent_events', 'erasures', 'daily_metric_rollups',
    'daily_ingest_rollups', 'ingest_rejections', 'lead_spam_counts', 'daily_visitors'
  ] LOOP
    EXECUTE format(
      'ALTER POLICY tenant_isolation ON %I '
      'USING (tenant_id = (SELECT porchlight_current_tenant())) '
      'WITH CHECK (tenant_id = (SELECT porchlight_current_tenant()))',
      table_name
    );
  END LOOP;
END
$$;

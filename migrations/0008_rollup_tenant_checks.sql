-- The daily rollup writes one daily_visitors row per visitor and day and one
-- daily_metric_rollups row per path and breakdown value: about 50,000 rows
-- for a day of 333,000 events in bench/rollup.ts. Their foreign keys to
-- tenants ran one check query per inserted row, which took longer than the
-- insert itself. These two tables now check their tenants once per
-- statement, and deleting a tenant deletes their rows, as the foreign keys'
-- ON DELETE CASCADE did.

ALTER TABLE daily_visitors DROP CONSTRAINT daily_visitors_tenant_id_fkey;
ALTER TABLE daily_metric_rollups DROP CONSTRAINT daily_metric_rollups_tenant_id_fkey;

-- Fails the statement with foreign_key_violation when one of its new rows
-- names a tenant that does not exist. It locks the tenants it finds with
-- FOR KEY SHARE, as a foreign key check does, so that none of them can be
-- deleted before this transaction ends. SECURITY DEFINER lets it read every
-- tenant: the owner's policy admits all rows.
CREATE FUNCTION porchlight_check_row_tenants() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  missing uuid;
BEGIN
  PERFORM 1 FROM tenants t WHERE t.id IN (SELECT n.tenant_id FROM new_rows n) FOR KEY SHARE OF t;
  SELECT n.tenant_id INTO missing
  FROM new_rows n
  WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = n.tenant_id)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "%" names tenant %, which does not exist', TG_TABLE_NAME, missing
      USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME, COLUMN = 'tenant_id';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER daily_visitors_insert_tenant_check AFTER INSERT ON daily_visitors
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION porchlight_check_row_tenants();
CREATE TRIGGER daily_visitors_update_tenant_check AFTER UPDATE ON daily_visitors
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION porchlight_check_row_tenants();
CREATE TRIGGER daily_metric_rollups_insert_tenant_check AFTER INSERT ON daily_metric_rollups
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION porchlight_check_row_tenants();
CREATE TRIGGER daily_metric_rollups_update_tenant_check AFTER UPDATE ON daily_metric_rollups
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION porchlight_check_row_tenants();

CREATE FUNCTION porchlight_delete_tenant_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  DELETE FROM daily_visitors d WHERE d.tenant_id IN (SELECT o.id FROM old_rows o);
  DELETE FROM daily_metric_rollups m WHERE m.tenant_id IN (SELECT o.id FROM old_rows o);
  RETURN NULL;
END
$$;

CREATE TRIGGER tenants_delete_rollups AFTER DELETE ON tenants
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION porchlight_delete_tenant_rollups();

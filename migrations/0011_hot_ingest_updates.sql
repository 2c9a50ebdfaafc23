-- Cuts the index work of each ingested event. Every event updates its
-- session row (last_event_at, page_views, exit_path and so on) and, before
-- this migration, its visitor row. An update that changes an indexed column
-- writes a new entry in every index of the table; one that changes none, and
-- finds room on the same page, is a heap-only (HOT) update and writes none.
--
-- - sessions: last_event_at was the only indexed column that ingest
--   changes. The visitor index no longer carries it (a visitor has few
--   sessions, sorted after the lookup), and the index that the purge and the
--   restart reload scan by last_event_at becomes a BRIN index: sessions are
--   written roughly in time order, and since PostgreSQL 16 a change to a
--   column of a BRIN index alone still allows a HOT update. A fill factor of
--   70 leaves room on each page for the new versions of its rows.
-- - events: the index on "timestamp" alone serves only the purge, and rows
--   arrive in time order, so a BRIN index does that job for a fraction of
--   the cost of a B-tree entry per event.
-- - visitors: porchlight_write_events (0009) now skips the update of a
--   visitor seen less than a minute before from the same address and user
--   agent; see there.
-- - events and event_receipts check their tenant once per INSERT statement
--   instead of once per row, as the rollup tables do since 0008: a foreign
--   key ran a lookup and a row lock on the tenant for every event and every
--   receipt. Deleting a tenant deletes their rows, as ON DELETE CASCADE did.
--   Updates are not checked: ingest never changes tenant_id, and row-level
--   security pins it to the transaction's tenant.
ALTER TABLE sessions SET (fillfactor = 70);
DROP INDEX sessions_visitor_idx;
CREATE INDEX sessions_visitor_idx ON sessions (tenant_id, visitor_id);
DROP INDEX sessions_last_event_idx;
CREATE INDEX sessions_last_event_idx ON sessions USING brin (last_event_at);

DROP INDEX events_time_idx;
CREATE INDEX events_time_idx ON events USING brin ("timestamp");

ALTER TABLE events DROP CONSTRAINT events_tenant_id_fkey;
ALTER TABLE event_receipts DROP CONSTRAINT event_receipts_tenant_id_fkey;

CREATE TRIGGER events_insert_tenant_check AFTER INSERT ON events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION porchlight_check_row_tenants();
CREATE TRIGGER event_receipts_insert_tenant_check AFTER INSERT ON event_receipts
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION porchlight_check_row_tenants();

CREATE FUNCTION porchlight_delete_tenant_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  DELETE FROM events e WHERE e.tenant_id IN (SELECT o.id FROM old_rows o);
  DELETE FROM event_receipts r WHERE r.tenant_id IN (SELECT o.id FROM old_rows o);
  RETURN NULL;
END
$$;

CREATE TRIGGER tenants_delete_events AFTER DELETE ON tenants
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION porchlight_delete_tenant_events();

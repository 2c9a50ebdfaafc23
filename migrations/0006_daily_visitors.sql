-- The visitors of each property and day, written by the daily rollup
-- (src/jobs/Rollup.ts), so that unique visitors over any range of days are
-- exact: a sum of daily unique counts would count a visitor once per day.
-- "returning" is true when the visitor was first seen before the day began
-- in the property's time zone. Bots are not listed (docs/metrics.md).
--
-- visitor_id has no foreign key to visitors, so that deleting raw visitors
-- does not rewrite past days. Whoever deletes a visitor for a person's
-- request must delete its rows here as well.
CREATE TABLE daily_visitors (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  day date NOT NULL,
  visitor_id uuid NOT NULL,
  -- RETURNING is a reserved word in PostgreSQL, so queries must quote it.
  "returning" boolean NOT NULL,
  -- The key doubles as the index for range queries (tenant, property and a
  -- range of days). INCLUDE ("returning") lets the returning-visitor share of a
  -- range be read from the index alone.
  PRIMARY KEY (tenant_id, property_id, day, visitor_id) INCLUDE ("returning")
);

ALTER TABLE daily_visitors ENABLE ROW LEVEL SECURITY;
ALTER TABLE daily_visitors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON daily_visitors TO porchlight_app
  USING (tenant_id = porchlight_current_tenant())
  WITH CHECK (tenant_id = porchlight_current_tenant());
CREATE POLICY owner_access ON daily_visitors TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON daily_visitors TO porchlight_app;

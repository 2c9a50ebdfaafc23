-- Lead submissions dropped as spam (a filled honeypot, a failed challenge),
-- counted per property, day and reason. Nothing else about them is kept.
CREATE TABLE lead_spam_counts (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  property_id uuid NOT NULL,
  day date NOT NULL,
  reason text NOT NULL,
  submissions bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, property_id, day, reason)
);

ALTER TABLE lead_spam_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_spam_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON lead_spam_counts TO porchlight_app
  USING (tenant_id = porchlight_current_tenant())
  WITH CHECK (tenant_id = porchlight_current_tenant());
CREATE POLICY owner_access ON lead_spam_counts TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON lead_spam_counts TO porchlight_app;

ALTER TABLE secrets DROP COLUMN aad_version;
ALTER TABLE audit_events DROP COLUMN call_count;

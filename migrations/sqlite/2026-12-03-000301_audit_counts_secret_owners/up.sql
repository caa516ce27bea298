-- Calls refused before a token was accepted are counted, one row per client address and
-- minute (id `anon-<minute>-<address>`); every other row stands for one call.
ALTER TABLE audit_events ADD COLUMN call_count BIGINT NOT NULL DEFAULT 1;

-- Which associated data a secret was sealed with: 1 = its row id (rows written before this
-- migration), 2 = `<owner kind>:<owner id>:<row id>`, which binds the ciphertext to the cluster
-- or credential that uses it. Servers re-seal version 1 rows at start.
ALTER TABLE secrets ADD COLUMN aad_version INTEGER NOT NULL DEFAULT 1;

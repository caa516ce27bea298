-- Clusters imported by agent (issue #19). Secrets are stored only as SHA-256 hashes.
-- A registration token is exchanged once (used_time set) for the cluster's agent credential.
CREATE TABLE agent_registrations (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    cluster_id  TEXT NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    create_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,
    used_time   BIGINT
);
CREATE INDEX agent_registrations_cluster ON agent_registrations (cluster_id);
-- The one live agent credential of a cluster; a new registration replaces it.
CREATE TABLE agent_credentials (
    cluster_id      TEXT PRIMARY KEY NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    credential_hash TEXT NOT NULL UNIQUE,
    kube_system_uid TEXT NOT NULL,
    create_time     BIGINT NOT NULL
);

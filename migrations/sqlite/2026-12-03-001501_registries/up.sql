-- Registries known here and how to reach them. Observed state (reachability, API version,
-- credential expiry) is not stored: the registry prober keeps it in memory. The credential is
-- a reference, so a credential in use cannot be deleted (CredentialService checks).
CREATE TABLE registries (
    id                 TEXT PRIMARY KEY NOT NULL,
    display_name       TEXT NOT NULL,
    labels             TEXT NOT NULL DEFAULT '{}',
    provider           TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    region             TEXT NOT NULL DEFAULT '',
    vendor_instance_id TEXT NOT NULL DEFAULT '',
    credential_id      TEXT REFERENCES credentials (id),
    ca_pem             TEXT,
    version            BIGINT NOT NULL DEFAULT 1,
    create_time        BIGINT NOT NULL,
    update_time        BIGINT NOT NULL
);
CREATE INDEX registries_provider ON registries (provider);
CREATE INDEX registries_credential ON registries (credential_id);

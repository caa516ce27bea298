-- Encrypted secrets (kubeconfigs, tokens, vendor keys, registry passwords).
-- ciphertext = AEAD(key[key_id], nonce, plaintext, aad = id).
CREATE TABLE secrets (
    id          TEXT PRIMARY KEY NOT NULL,
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE INDEX secrets_key_id ON secrets (key_id);

-- Vendor and registry credentials: metadata here, the secret in `secrets`.
CREATE TABLE credentials (
    id           TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    labels       TEXT NOT NULL DEFAULT '{}',
    kind         TEXT NOT NULL,
    provider     TEXT NOT NULL,
    principal    TEXT NOT NULL DEFAULT '',
    secret_id    TEXT NOT NULL REFERENCES secrets (id),
    create_time  BIGINT NOT NULL,
    rotate_time  BIGINT NOT NULL
);

-- Clusters known here and how to reach them. Observed state is not stored: it comes from
-- Kubernetes (prober) and the vendor.
CREATE TABLE clusters (
    id                TEXT PRIMARY KEY NOT NULL,
    display_name      TEXT NOT NULL,
    labels            TEXT NOT NULL DEFAULT '{}',
    provider          TEXT NOT NULL,
    region            TEXT NOT NULL DEFAULT '',
    vendor_cluster_id TEXT NOT NULL DEFAULT '',
    state             TEXT NOT NULL,
    endpoint          TEXT NOT NULL DEFAULT '',
    kube_system_uid   TEXT UNIQUE,
    credential_id     TEXT REFERENCES credentials (id),
    access_secret_id  TEXT REFERENCES secrets (id),
    spec              BLOB,
    warnings          TEXT NOT NULL DEFAULT '[]',
    last_operation_id TEXT,
    version           BIGINT NOT NULL DEFAULT 1,
    create_time       BIGINT NOT NULL,
    update_time       BIGINT NOT NULL
);
CREATE INDEX clusters_provider ON clusters (provider);
CREATE INDEX clusters_create_time ON clusters (create_time, id);
CREATE INDEX clusters_display_name ON clusters (display_name, id);

-- Image pull secrets Flotilla wrote: one row per (registry, cluster, namespace, Secret name).
-- No secret is kept here: the password lives only in the cluster's Secret. What is kept is
-- what renewal and revocation need: the vendor's id of the issued credential (a Harbor robot
-- account id), its username and expiry, and the registry credential (id and rotation time)
-- it was issued under, so a rotated registry credential is noticed.
CREATE TABLE pull_secrets (
    id                          TEXT PRIMARY KEY NOT NULL,
    registry_id                 TEXT NOT NULL,
    cluster_id                  TEXT NOT NULL,
    namespace                   TEXT NOT NULL,
    secret_name                 TEXT NOT NULL,
    service_account             TEXT NOT NULL DEFAULT '',
    registry_namespaces         TEXT NOT NULL DEFAULT '[]',
    vendor_credential_id        TEXT,
    username                    TEXT NOT NULL,
    issue_time                  BIGINT NOT NULL,
    expire_time                 BIGINT,
    registry_credential_id      TEXT,
    registry_credential_version BIGINT NOT NULL DEFAULT 0,
    outcome                     TEXT NOT NULL,
    message                     TEXT NOT NULL DEFAULT '',
    create_time                 BIGINT NOT NULL,
    update_time                 BIGINT NOT NULL
);
CREATE UNIQUE INDEX pull_secrets_target
    ON pull_secrets (registry_id, cluster_id, namespace, secret_name);
CREATE INDEX pull_secrets_vendor_credential ON pull_secrets (registry_id, vendor_credential_id);

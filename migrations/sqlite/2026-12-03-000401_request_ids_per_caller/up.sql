-- An idempotency key belongs to the caller that sent it: the key is (request_token, request_id),
-- where request_token is the API token's id ('' for Flotilla's own work). request_hash is a
-- SHA-256 of the request (kind, target and body, without the request_id): a replay must be the
-- same request. SQLite cannot drop the old column-level UNIQUE, so the table is rebuilt.
CREATE TABLE operations_new (
    id                TEXT PRIMARY KEY NOT NULL,
    resource          TEXT NOT NULL,
    cluster_id        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    state             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    request_id        TEXT,
    requested_by      TEXT NOT NULL DEFAULT '',
    detail            TEXT NOT NULL,
    lease_owner       TEXT,
    lease_expire_time BIGINT,
    next_run_time     BIGINT NOT NULL,
    version           BIGINT NOT NULL DEFAULT 1,
    create_time       BIGINT NOT NULL,
    update_time       BIGINT NOT NULL,
    request_token     TEXT NOT NULL DEFAULT '',
    request_hash      TEXT
);
-- Rows from before: the owner is the token named in requested_by (token names are unique);
-- they have no hash, so a replay of them is matched on kind and target only.
INSERT INTO operations_new (id, resource, cluster_id, kind, state, provider, request_id,
    requested_by, detail, lease_owner, lease_expire_time, next_run_time, version, create_time,
    update_time, request_token, request_hash)
SELECT o.id, o.resource, o.cluster_id, o.kind, o.state, o.provider, o.request_id,
    o.requested_by, o.detail, o.lease_owner, o.lease_expire_time, o.next_run_time, o.version,
    o.create_time, o.update_time,
    COALESCE((SELECT t.id FROM api_tokens t WHERE t.name = o.requested_by), ''), NULL
FROM operations o;
DROP TABLE operations;
ALTER TABLE operations_new RENAME TO operations;
CREATE INDEX operations_due ON operations (state, next_run_time);
CREATE INDEX operations_resource ON operations (resource, create_time);
CREATE INDEX operations_create_time ON operations (create_time, id);
CREATE UNIQUE INDEX operations_request ON operations (request_token, request_id);

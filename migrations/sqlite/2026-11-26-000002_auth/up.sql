-- API tokens: only a SHA-256 hash of the secret is stored (tokens are 256-bit random, so a
-- fast hash is enough; nothing can be brute-forced from it).
CREATE TABLE api_tokens (
    id             TEXT PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    cluster_ids    TEXT NOT NULL DEFAULT '[]',
    secret_hash    TEXT NOT NULL UNIQUE,
    expire_time    BIGINT,
    create_time    BIGINT NOT NULL,
    created_by     TEXT NOT NULL DEFAULT '',
    last_used_time BIGINT,
    revoke_time    BIGINT
);

-- Every mutating call and every denied call.
CREATE TABLE audit_events (
    id           TEXT PRIMARY KEY NOT NULL,
    time         BIGINT NOT NULL,
    token_name   TEXT NOT NULL DEFAULT '',
    method       TEXT NOT NULL,
    cluster_id   TEXT NOT NULL DEFAULT '',
    target       TEXT NOT NULL DEFAULT '',
    result_code  TEXT NOT NULL,
    request_id   TEXT NOT NULL DEFAULT '',
    peer_address TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_time ON audit_events (time, id);

-- Durable vendor-side operations. Queryable fields are columns; the rest of the operation's
-- record (input, checkpoint, steps, errors, vendor ids) is one JSON document in `detail`.
CREATE TABLE operations (
    id                TEXT PRIMARY KEY NOT NULL,
    resource          TEXT NOT NULL,
    cluster_id        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    state             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    -- Idempotency key from the caller; a repeated call with it returns this operation.
    request_id        TEXT UNIQUE,
    requested_by      TEXT NOT NULL DEFAULT '',
    detail            TEXT NOT NULL,
    -- The worker (server replica) working on it, until lease_expire_time.
    lease_owner       TEXT,
    lease_expire_time BIGINT,
    -- When a worker should next look at it (polls and retries are scheduled through this).
    next_run_time     BIGINT NOT NULL,
    version           BIGINT NOT NULL DEFAULT 1,
    create_time       BIGINT NOT NULL,
    update_time       BIGINT NOT NULL
);
CREATE INDEX operations_due ON operations (state, next_run_time);
CREATE INDEX operations_resource ON operations (resource, create_time);
CREATE INDEX operations_create_time ON operations (create_time, id);

-- A vendor's cluster is known here at most once.
CREATE UNIQUE INDEX clusters_vendor_cluster ON clusters (provider, region, vendor_cluster_id)
    WHERE vendor_cluster_id <> '';

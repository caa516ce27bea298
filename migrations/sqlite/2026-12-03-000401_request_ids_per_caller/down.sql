-- Back to one global key space (fails if two callers used the same request_id meanwhile).
CREATE TABLE operations_old (
    id                TEXT PRIMARY KEY NOT NULL,
    resource          TEXT NOT NULL,
    cluster_id        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    state             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    request_id        TEXT UNIQUE,
    requested_by      TEXT NOT NULL DEFAULT '',
    detail            TEXT NOT NULL,
    lease_owner       TEXT,
    lease_expire_time BIGINT,
    next_run_time     BIGINT NOT NULL,
    version           BIGINT NOT NULL DEFAULT 1,
    create_time       BIGINT NOT NULL,
    update_time       BIGINT NOT NULL
);
INSERT INTO operations_old SELECT id, resource, cluster_id, kind, state, provider, request_id,
    requested_by, detail, lease_owner, lease_expire_time, next_run_time, version, create_time,
    update_time FROM operations;
DROP TABLE operations;
ALTER TABLE operations_old RENAME TO operations;
CREATE INDEX operations_due ON operations (state, next_run_time);
CREATE INDEX operations_resource ON operations (resource, create_time);
CREATE INDEX operations_create_time ON operations (create_time, id);

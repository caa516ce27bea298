-- Replicas sharing the work (issue #18). Each `flotilla serve` process heartbeats its row; a
-- replica whose row expired counts as gone, and the others take over its clusters.
CREATE TABLE replicas (
    id             TEXT PRIMARY KEY NOT NULL,
    start_time     BIGINT NOT NULL,
    heartbeat_time BIGINT NOT NULL,
    expire_time    BIGINT NOT NULL
);
-- Which replica probes a cluster and keeps its watch caches and event hubs. A row exists only
-- while someone holds (or last held) the lease; it goes with the cluster.
CREATE TABLE cluster_leases (
    cluster_id   TEXT PRIMARY KEY NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    owner        TEXT NOT NULL,
    expire_time  BIGINT NOT NULL,
    acquire_time BIGINT NOT NULL
);
CREATE INDEX cluster_leases_owner ON cluster_leases (owner);
-- What the cluster's owner last observed (JSON of the service's ObservedStatus), so that every
-- replica answers GetCluster/ListClusters with the live status. It goes with the cluster.
CREATE TABLE cluster_status (
    cluster_id    TEXT PRIMARY KEY NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    observed_by   TEXT NOT NULL,
    status        TEXT NOT NULL,
    observed_time BIGINT NOT NULL
);

-- A count of the writes to the clusters table (issue #20), kept by triggers so that every writer
-- bumps it: this server, another process, the `sqlite3` tool. ListClusters keeps pages it
-- answered and serves one again only while the count is what it was when the page was read.
CREATE TABLE change_counts (
    name  TEXT PRIMARY KEY NOT NULL,
    count BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO change_counts (name, count) VALUES ('clusters', 0);

CREATE TRIGGER change_counts_clusters_insert AFTER INSERT ON clusters
BEGIN
    UPDATE change_counts SET count = count + 1 WHERE name = 'clusters';
END;
CREATE TRIGGER change_counts_clusters_update AFTER UPDATE ON clusters
BEGIN
    UPDATE change_counts SET count = count + 1 WHERE name = 'clusters';
END;
CREATE TRIGGER change_counts_clusters_delete AFTER DELETE ON clusters
BEGIN
    UPDATE change_counts SET count = count + 1 WHERE name = 'clusters';
END;

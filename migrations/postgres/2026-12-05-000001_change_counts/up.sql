-- A count of the writes to the clusters table (issue #20), kept by a trigger so that every
-- writer bumps it: every replica, psql, a restored dump. ListClusters keeps pages it answered
-- and serves one again only while the count is what it was when the page was read. The count
-- is a row, not a sequence: it changes in the writing transaction, so no reader sees the new
-- count before the rows it counts.
CREATE TABLE change_counts (
    name  TEXT PRIMARY KEY,
    count BIGINT NOT NULL
);
INSERT INTO change_counts (name, count) VALUES ('clusters', 0);

CREATE FUNCTION change_counts_clusters() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counts SET count = count + 1 WHERE name = 'clusters';
    RETURN NULL;
END;
$$;

CREATE TRIGGER change_counts_clusters AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clusters
FOR EACH STATEMENT EXECUTE FUNCTION change_counts_clusters();

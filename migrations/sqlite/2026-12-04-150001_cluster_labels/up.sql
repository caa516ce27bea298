-- Cluster labels as rows (issue #20): a label filter becomes an index lookup instead of parsing
-- every cluster's labels JSON on every page and count. `clusters.labels` stays the record; these
-- rows follow it through triggers, so every writer (and a restored backup) keeps them right.
-- Labels that are not a JSON object of strings get no rows, and so match no label filter.
CREATE TABLE cluster_labels (
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    cluster_id TEXT NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    PRIMARY KEY (key, value, cluster_id)
) WITHOUT ROWID;
CREATE INDEX cluster_labels_cluster ON cluster_labels (cluster_id);

CREATE TRIGGER cluster_labels_insert AFTER INSERT ON clusters
WHEN CASE WHEN json_valid(NEW.labels) THEN json_type(NEW.labels) = 'object' ELSE 0 END
BEGIN
    INSERT INTO cluster_labels (key, value, cluster_id)
    SELECT key, value, NEW.id FROM json_each(NEW.labels) WHERE type = 'text';
END;

CREATE TRIGGER cluster_labels_update AFTER UPDATE OF labels ON clusters
BEGIN
    DELETE FROM cluster_labels WHERE cluster_id = OLD.id;
    INSERT INTO cluster_labels (key, value, cluster_id)
    SELECT key, value, NEW.id
    FROM json_each(CASE WHEN NOT json_valid(NEW.labels) THEN '{}'
                        WHEN json_type(NEW.labels) = 'object' THEN NEW.labels ELSE '{}' END)
    WHERE type = 'text';
END;

-- Also without `PRAGMA foreign_keys` (the cascade above needs it on that connection).
CREATE TRIGGER cluster_labels_delete AFTER DELETE ON clusters
BEGIN
    DELETE FROM cluster_labels WHERE cluster_id = OLD.id;
END;

INSERT INTO cluster_labels (key, value, cluster_id)
SELECT l.key, l.value, c.id
FROM clusters AS c,
     json_each(CASE WHEN NOT json_valid(c.labels) THEN '{}'
                    WHEN json_type(c.labels) = 'object' THEN c.labels ELSE '{}' END) AS l
WHERE l.type = 'text';

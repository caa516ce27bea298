-- Cluster labels as rows (issue #20): a label filter becomes an index lookup instead of parsing
-- every cluster's labels JSON on every page and count. `clusters.labels` stays the record; these
-- rows follow it through a trigger, so every writer (and a restored dump) keeps them right.
-- Labels that are not a JSON object of strings get no rows, and so match no label filter.
CREATE TABLE cluster_labels (
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    cluster_id TEXT NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    PRIMARY KEY (key, value, cluster_id)
);
CREATE INDEX cluster_labels_cluster ON cluster_labels (cluster_id);

CREATE FUNCTION cluster_labels_json(labels TEXT) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(labels::jsonb) = 'object' THEN
        RETURN labels::jsonb;
    END IF;
    RETURN '{}'::jsonb;
EXCEPTION WHEN others THEN
    RETURN '{}'::jsonb;
END;
$$;

CREATE FUNCTION cluster_labels_follow() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM cluster_labels WHERE cluster_id = OLD.id;
    END IF;
    INSERT INTO cluster_labels (key, value, cluster_id)
    SELECT l.key, l.value #>> '{}', NEW.id
    FROM jsonb_each(cluster_labels_json(NEW.labels)) AS l
    WHERE jsonb_typeof(l.value) = 'string';
    RETURN NULL;
END;
$$;

CREATE TRIGGER cluster_labels_insert AFTER INSERT ON clusters
FOR EACH ROW EXECUTE FUNCTION cluster_labels_follow();
CREATE TRIGGER cluster_labels_update AFTER UPDATE OF labels ON clusters
FOR EACH ROW EXECUTE FUNCTION cluster_labels_follow();

INSERT INTO cluster_labels (key, value, cluster_id)
SELECT l.key, l.value #>> '{}', c.id
FROM clusters AS c, jsonb_each(cluster_labels_json(c.labels)) AS l
WHERE jsonb_typeof(l.value) = 'string';

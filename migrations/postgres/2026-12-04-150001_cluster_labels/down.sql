DROP TRIGGER cluster_labels_update ON clusters;
DROP TRIGGER cluster_labels_insert ON clusters;
DROP FUNCTION cluster_labels_follow();
DROP FUNCTION cluster_labels_json(TEXT);
DROP TABLE cluster_labels;

DROP TRIGGER change_counts_clusters_delete;
DROP TRIGGER change_counts_clusters_update;
DROP TRIGGER change_counts_clusters_insert;
DROP TABLE change_counts;

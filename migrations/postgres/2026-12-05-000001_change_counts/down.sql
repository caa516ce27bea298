DROP TRIGGER change_counts_clusters ON clusters;
DROP FUNCTION change_counts_clusters();
DROP TABLE change_counts;

DROP TRIGGER cluster_labels_delete;

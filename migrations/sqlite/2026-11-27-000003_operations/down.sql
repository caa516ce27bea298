DROP INDEX clusters_vendor_cluster;
DROP TABLE operations;

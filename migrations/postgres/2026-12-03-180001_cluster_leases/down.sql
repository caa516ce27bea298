DROP TABLE cluster_status;
DROP TABLE cluster_leases;
DROP TABLE replicas;

DROP TABLE clusters;
DROP TABLE credentials;
DROP TABLE secrets;

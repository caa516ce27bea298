DROP TABLE pull_secrets;

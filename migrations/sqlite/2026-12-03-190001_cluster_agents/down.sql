DROP TABLE agent_credentials;
DROP TABLE agent_registrations;

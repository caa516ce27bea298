ALTER TABLE agent_registrations DROP COLUMN image;
ALTER TABLE agent_registrations DROP COLUMN cluster_role;
ALTER TABLE agent_registrations DROP COLUMN namespace;
ALTER TABLE agent_registrations DROP COLUMN server_url;

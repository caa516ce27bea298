-- What an agent registration's manifest is made from, so the manifest can also be served at its
-- unguessable URL (GET /agent/v1/manifests/<registration token>.yaml) until the token is used or
-- expires. The token itself is still stored only as its hash.
ALTER TABLE agent_registrations ADD COLUMN server_url TEXT NOT NULL DEFAULT '';
ALTER TABLE agent_registrations ADD COLUMN namespace TEXT NOT NULL DEFAULT '';
ALTER TABLE agent_registrations ADD COLUMN cluster_role TEXT NOT NULL DEFAULT '';
ALTER TABLE agent_registrations ADD COLUMN image TEXT NOT NULL DEFAULT '';

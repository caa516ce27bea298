DROP INDEX operations_request;
ALTER TABLE operations DROP COLUMN request_hash;
ALTER TABLE operations DROP COLUMN request_token;
-- Fails if two callers used the same request_id meanwhile.
ALTER TABLE operations ADD CONSTRAINT operations_request_id_key UNIQUE (request_id);

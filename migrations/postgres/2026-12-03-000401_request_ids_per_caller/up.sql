-- An idempotency key belongs to the caller that sent it: the key is (request_token, request_id),
-- where request_token is the API token's id ('' for Flotilla's own work). request_hash is a
-- SHA-256 of the request (kind, target and body, without the request_id): a replay must be the
-- same request.
ALTER TABLE operations DROP CONSTRAINT IF EXISTS operations_request_id_key;
ALTER TABLE operations ADD COLUMN request_token TEXT NOT NULL DEFAULT '';
ALTER TABLE operations ADD COLUMN request_hash TEXT;
-- Rows from before: the owner is the token named in requested_by (token names are unique);
-- they have no hash, so a replay of them is matched on kind and target only.
UPDATE operations o SET request_token = t.id FROM api_tokens t WHERE t.name = o.requested_by;
CREATE UNIQUE INDEX operations_request ON operations (request_token, request_id);

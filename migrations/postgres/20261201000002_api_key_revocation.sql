-- A revoked key stays listed (who had access, until when) but no longer authenticates.
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;

-- Dashboard sessions: the cookie carries a random id, only its SHA-256 is kept.
-- A session ends when it expires, when it signs out, or when its key is revoked.
CREATE TABLE dashboard_sessions (
    id_hash TEXT COLLATE "C" PRIMARY KEY,
    key_id BIGINT NOT NULL REFERENCES api_keys (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
CREATE INDEX dashboard_sessions_by_key ON dashboard_sessions (key_id);

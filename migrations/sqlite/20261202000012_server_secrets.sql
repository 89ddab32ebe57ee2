-- Secrets the servers sharing a database generate once and share, such as the key
-- of pseudonymous user ids.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

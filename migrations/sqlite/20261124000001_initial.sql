-- The control plane's definitions, the audit log, API keys, and the event store.

-- One row: the ruleset version, bumped in the same transaction as every change that
-- alters what SDKs evaluate.
CREATE TABLE ruleset_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO ruleset_state (id, version) VALUES (1, 0);

CREATE TABLE metrics (
    key TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE experiments (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    revision INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT,
    after TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX audit_log_by_experiment ON audit_log (experiment, id);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    environment TEXT,
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- Raw events, kept for idempotency (the id) and to rebuild a user's aggregates when
-- an earlier exposure arrives late.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    experiment TEXT,
    variant TEXT,
    event TEXT,
    value REAL,
    ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX events_track_by_user ON events (user_id, ts) WHERE kind = 'track';

-- First exposure per user and experiment; `multiple` marks users seen in more than
-- one variant, whom analysis excludes.
CREATE TABLE exposures (
    experiment TEXT NOT NULL,
    user_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    first_ts INTEGER NOT NULL,
    multiple INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, user_id)
) WITHOUT ROWID;
CREATE INDEX exposures_by_user ON exposures (user_id);

-- Per user, experiment and event name: the sum of values and the number of events
-- at or after the user's first exposure. Reports read these, never raw events.
CREATE TABLE user_metrics (
    experiment TEXT NOT NULL,
    user_id TEXT NOT NULL,
    event TEXT NOT NULL,
    total REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (experiment, user_id, event)
) WITHOUT ROWID;

-- The whole schema on PostgreSQL, equal in meaning to the SQLite migrations up to
-- the same date. Integers are BIGINT and reals DOUBLE PRECISION so both backends
-- decode to the same Rust types; JSON documents are TEXT, as on SQLite. Keys and
-- names compare byte by byte (COLLATE "C"), as on SQLite and whatever the
-- database's locale: the same order on both backends, and index comparisons that
-- are a memcmp rather than a locale-aware strcoll.

-- One row: the ruleset version, bumped in the same transaction as every change that
-- alters what SDKs evaluate.
CREATE TABLE ruleset_state (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO ruleset_state (id, version) VALUES (1, 0);

CREATE TABLE metrics (
    key TEXT COLLATE "C" PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE experiments (
    key TEXT COLLATE "C" PRIMARY KEY,
    status TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experiment TEXT COLLATE "C" NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    before TEXT,
    after TEXT,
    evidence TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX audit_log_by_experiment ON audit_log (experiment, id);

CREATE TABLE api_keys (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C" NOT NULL,
    environment TEXT COLLATE "C",
    key_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Raw events, kept for idempotency (the id) and to rebuild a user's aggregates when
-- an earlier exposure arrives late. The heap appends; only index entries scatter.
CREATE TABLE events (
    id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    experiment TEXT COLLATE "C",
    variant TEXT COLLATE "C",
    event TEXT COLLATE "C",
    value DOUBLE PRECISION,
    ts BIGINT NOT NULL
);
CREATE INDEX events_track_by_user ON events (user_id, ts) INCLUDE (event, value)
    WHERE kind = 'track';

-- First exposure per user and experiment; `multiple` marks users seen in more than
-- one variant, whom analysis excludes; `dimensions` holds the kept attributes.
CREATE TABLE exposures (
    experiment TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    variant TEXT COLLATE "C" NOT NULL,
    first_ts BIGINT NOT NULL,
    multiple BOOLEAN NOT NULL DEFAULT FALSE,
    dimensions TEXT,
    PRIMARY KEY (experiment, user_id)
);
CREATE INDEX exposures_by_user ON exposures (user_id);

-- Per user, experiment and event name: the sum of values and the number of events
-- at or after the user's first exposure.
CREATE TABLE user_metrics (
    experiment TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    event TEXT COLLATE "C" NOT NULL,
    total DOUBLE PRECISION NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (experiment, user_id, event)
);

-- Running totals per variant, maintained by ingestion in the same transaction, so
-- that a report reads O(variants x metrics) rows.
CREATE TABLE variant_users (
    experiment TEXT COLLATE "C" NOT NULL,
    variant TEXT COLLATE "C" NOT NULL,
    users BIGINT NOT NULL,
    PRIMARY KEY (experiment, variant)
);

CREATE TABLE experiment_multiple_exposures (
    experiment TEXT COLLATE "C" PRIMARY KEY,
    users BIGINT NOT NULL
);

CREATE TABLE variant_totals (
    experiment TEXT COLLATE "C" NOT NULL,
    variant TEXT COLLATE "C" NOT NULL,
    event TEXT COLLATE "C" NOT NULL,
    converted BIGINT NOT NULL,
    value_sum DOUBLE PRECISION NOT NULL,
    value_sum_squares DOUBLE PRECISION NOT NULL,
    count_sum BIGINT NOT NULL,
    count_sum_squares BIGINT NOT NULL,
    PRIMARY KEY (experiment, variant, event)
);

-- Webhooks and their delivery log. A delivery is queued in the same transaction as
-- the audit entry it reports, so no change is announced twice or lost on a restart.
CREATE TABLE webhooks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event TEXT COLLATE "C" NOT NULL,
    payload TEXT NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);

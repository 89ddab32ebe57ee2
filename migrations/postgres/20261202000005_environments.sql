-- Environments: where an experiment is served. `production` always exists.
CREATE TABLE environments (
    key TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO environments (key, name, created_at) VALUES ('production', 'Production', 0);
-- Keys minted before environments existed may name one: it exists now.
INSERT INTO environments (key, name, created_at)
    SELECT DISTINCT environment, environment, 0 FROM api_keys
    WHERE environment IS NOT NULL AND environment <> 'production';
-- When the ruleset last changed (GrowthBook's `dateUpdated`): strictly
-- increasing with the version, whatever the servers' clocks say.
ALTER TABLE ruleset_state ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;

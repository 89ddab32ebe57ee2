-- The ruleset version each experiment was last written at: a server holding the
-- ruleset at version V reads only the experiments changed after V.
ALTER TABLE experiments ADD COLUMN changed_in BIGINT NOT NULL DEFAULT 0;
CREATE INDEX experiments_changed_in ON experiments (changed_in);

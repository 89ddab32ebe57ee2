-- Raw events in arrival order (a rowid table) with a separate unique index on the
-- client's id. Ids are usually random, so keeping whole rows ordered by id scattered
-- every batch over thousands of pages; now rows append and only the small index
-- entries land at random. The track index covers the rebuild query.

CREATE TABLE events_by_arrival (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    experiment TEXT,
    variant TEXT,
    event TEXT,
    value REAL,
    ts INTEGER NOT NULL
);
INSERT INTO events_by_arrival (id, kind, user_id, experiment, variant, event, value, ts)
SELECT id, kind, user_id, experiment, variant, event, value, ts FROM events;
DROP TABLE events;
ALTER TABLE events_by_arrival RENAME TO events;
CREATE INDEX events_track_by_user ON events (user_id, ts, event, value) WHERE kind = 'track';

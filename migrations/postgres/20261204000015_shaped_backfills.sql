-- Rebuilding shaped metrics from the raw events. When an experiment's shaped
-- metrics or CUPED change once users were exposed, its per-user rows and paired
-- totals are dropped and rebuilt in user id order (byte order), a chunk per
-- transaction: users up to `after_user` are rebuilt and folded by ingestion as
-- usual; ingestion leaves the others to the rebuild, which reads their events.
CREATE TABLE shaped_backfills (
    experiment TEXT COLLATE "C" PRIMARY KEY,
    after_user TEXT COLLATE "C",
    users_done BIGINT NOT NULL,
    users_total BIGINT NOT NULL,
    started_at BIGINT NOT NULL
);

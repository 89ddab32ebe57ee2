-- Paired totals are kept per hour of the users' first exposure too, so that a
-- report over the users first exposed between two whole hours (any date range)
-- reads totals instead of per-user rows. Totals kept so far have no such hour:
-- they are dropped with the per-user rows they were made of, and every experiment
-- that had them (or was being rebuilt) is rebuilt from the raw events, from its
-- first user on (see shaped_backfills), by the leading server.
INSERT INTO shaped_backfills (experiment, after_user, users_done, users_total, started_at)
SELECT x.experiment, NULL, 0, COUNT(*), CAST(strftime('%s', 'now') AS INTEGER) * 1000
FROM exposures x
WHERE x.experiment IN (SELECT experiment FROM paired_totals)
    AND x.experiment NOT IN (SELECT experiment FROM shaped_backfills)
GROUP BY x.experiment;
UPDATE shaped_backfills SET after_user = NULL, users_done = 0;
DELETE FROM user_metric_values;
DROP TABLE paired_totals;

CREATE TABLE paired_totals (
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    metric TEXT NOT NULL,
    closes_hour INTEGER NOT NULL,
    first_hour INTEGER NOT NULL,
    users INTEGER NOT NULL,
    sum_x REAL NOT NULL,
    sum_squares_x REAL NOT NULL,
    sum_y REAL NOT NULL,
    sum_squares_y REAL NOT NULL,
    sum_products REAL NOT NULL,
    PRIMARY KEY (experiment, variant, metric, closes_hour, first_hour)
) WITHOUT ROWID;

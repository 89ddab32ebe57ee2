-- Paired totals are kept per hour of the users' first exposure too, so that a
-- report over the users first exposed between two whole hours (any date range)
-- reads totals instead of per-user rows. Totals kept so far have no such hour:
-- they are dropped with the per-user rows they were made of, and every experiment
-- that had them (or was being rebuilt) is rebuilt from the raw events, from its
-- first user on (see shaped_backfills), by the leading server.
INSERT INTO shaped_backfills (experiment, after_user, users_done, users_total, started_at)
SELECT x.experiment, NULL, 0, COUNT(*), CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)
FROM exposures x
WHERE x.experiment IN (SELECT experiment FROM paired_totals)
    AND x.experiment NOT IN (SELECT experiment FROM shaped_backfills)
GROUP BY x.experiment;
UPDATE shaped_backfills SET after_user = NULL, users_done = 0;
DELETE FROM user_metric_values;
DROP TABLE paired_totals;

CREATE TABLE paired_totals (
    experiment TEXT COLLATE "C" NOT NULL,
    variant TEXT COLLATE "C" NOT NULL,
    metric TEXT COLLATE "C" NOT NULL,
    closes_hour BIGINT NOT NULL,
    first_hour BIGINT NOT NULL,
    users BIGINT NOT NULL,
    sum_x DOUBLE PRECISION NOT NULL,
    sum_squares_x DOUBLE PRECISION NOT NULL,
    sum_y DOUBLE PRECISION NOT NULL,
    sum_squares_y DOUBLE PRECISION NOT NULL,
    sum_products DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (experiment, variant, metric, closes_hour, first_hour)
);

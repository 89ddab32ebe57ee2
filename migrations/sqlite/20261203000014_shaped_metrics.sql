-- Shaped metrics (a window, a cap, a ratio; every metric under CUPED): per user and
-- base metric, the sum and count of the events in its window and in the CUPED
-- lookback; and per variant, metric and the hour a user's window closes, the
-- running totals of the pairs (x, y) those rows make (see src/domain/shaped.rs).

CREATE TABLE user_metric_values (
    experiment TEXT NOT NULL,
    user_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    total REAL NOT NULL,
    count INTEGER NOT NULL,
    pre_total REAL NOT NULL,
    pre_count INTEGER NOT NULL,
    PRIMARY KEY (experiment, user_id, metric)
) WITHOUT ROWID;
CREATE INDEX user_metric_values_by_user ON user_metric_values (user_id);

CREATE TABLE paired_totals (
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    metric TEXT NOT NULL,
    closes_hour INTEGER NOT NULL,
    users INTEGER NOT NULL,
    sum_x REAL NOT NULL,
    sum_squares_x REAL NOT NULL,
    sum_y REAL NOT NULL,
    sum_squares_y REAL NOT NULL,
    sum_products REAL NOT NULL,
    PRIMARY KEY (experiment, variant, metric, closes_hour)
) WITHOUT ROWID;

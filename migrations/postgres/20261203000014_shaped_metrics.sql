-- Shaped metrics (a window, a cap, a ratio; every metric under CUPED): per user and
-- base metric, the sum and count of the events in its window and in the CUPED
-- lookback; and per variant, metric and the hour a user's window closes, the
-- running totals of the pairs (x, y) those rows make (see src/domain/shaped.rs).

CREATE TABLE user_metric_values (
    experiment TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    metric TEXT COLLATE "C" NOT NULL,
    total DOUBLE PRECISION NOT NULL,
    count BIGINT NOT NULL,
    pre_total DOUBLE PRECISION NOT NULL,
    pre_count BIGINT NOT NULL,
    PRIMARY KEY (experiment, user_id, metric)
);
CREATE INDEX user_metric_values_by_user ON user_metric_values (user_id);

CREATE TABLE paired_totals (
    experiment TEXT COLLATE "C" NOT NULL,
    variant TEXT COLLATE "C" NOT NULL,
    metric TEXT COLLATE "C" NOT NULL,
    closes_hour BIGINT NOT NULL,
    users BIGINT NOT NULL,
    sum_x DOUBLE PRECISION NOT NULL,
    sum_squares_x DOUBLE PRECISION NOT NULL,
    sum_y DOUBLE PRECISION NOT NULL,
    sum_squares_y DOUBLE PRECISION NOT NULL,
    sum_products DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (experiment, variant, metric, closes_hour)
);

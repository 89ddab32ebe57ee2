-- Running totals per variant, maintained by ingestion in the same transaction as the
-- per-user aggregates, so that a report reads O(variants x metrics) rows.

CREATE TABLE variant_users (
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    users INTEGER NOT NULL,
    PRIMARY KEY (experiment, variant)
) WITHOUT ROWID;

CREATE TABLE experiment_multiple_exposures (
    experiment TEXT PRIMARY KEY,
    users INTEGER NOT NULL
);

-- Over the users of one variant (those exposed to one variant only): users with an
-- event, and sum and sum of squares of per-user event values and counts.
CREATE TABLE variant_totals (
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    event TEXT NOT NULL,
    converted INTEGER NOT NULL,
    value_sum REAL NOT NULL,
    value_sum_squares REAL NOT NULL,
    count_sum INTEGER NOT NULL,
    count_sum_squares INTEGER NOT NULL,
    PRIMARY KEY (experiment, variant, event)
) WITHOUT ROWID;

INSERT INTO variant_users (experiment, variant, users)
SELECT experiment, variant, COUNT(*) FROM exposures WHERE multiple = 0
GROUP BY experiment, variant;

INSERT INTO experiment_multiple_exposures (experiment, users)
SELECT experiment, COUNT(*) FROM exposures WHERE multiple = 1 GROUP BY experiment;

INSERT INTO variant_totals
SELECT x.experiment, x.variant, m.event, COUNT(*), SUM(m.total), SUM(m.total * m.total),
       SUM(m.count), SUM(m.count * m.count)
FROM user_metrics m JOIN exposures x ON x.experiment = m.experiment AND x.user_id = m.user_id
WHERE x.multiple = 0
GROUP BY x.experiment, x.variant, m.event;

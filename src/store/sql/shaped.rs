//! Shaped metrics in the ingestion transaction: which touched experiments have a
//! [`ShapedPlan`], their users' [`MetricRows`] before and after the batch, and the
//! paired totals those change; plus erasing a user's part and reading the totals.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::{decode, encode, group_columns, picked_users, Dialect, Params, SqlStore};
use crate::domain::shaped::{Backfill, BackfillStep, MetricRow, MetricRows, ShapedPlan, HOUR_MS};
use crate::domain::totals::{
    HourRange, PairedTotals, SegmentKey, SegmentMetrics, ShapedTotals, UserFilter,
};
use crate::domain::{Experiment, Metric, MetricKind, Millis};
use crate::store::fold::{FirstExposure, PairedChanges, Touched, UserKey};
use crate::store::StoreError;

/// What a batch changes in shaped metrics.
pub(super) struct ShapedFold {
    /// The users whose rows changed, with all their rows after the batch.
    writes: Vec<(UserKey, MetricRows)>,
    changes: PairedChanges,
}

/// A row of `paired_totals`: `(variant, closes_hour, users, Σx, Σx², Σy, Σy², Σxy)`.
pub(super) type PairedRow = (String, i64, i64, f64, f64, f64, f64, f64);

/// Per variant, the sums of the rows whose hour has closed at `now`; the users of
/// the others are pending.
pub(super) fn paired_at(
    rows: impl IntoIterator<Item = PairedRow>,
    now: Millis,
) -> Vec<PairedTotals> {
    let closed_through = now.div_euclid(HOUR_MS);
    let mut totals: Vec<PairedTotals> = Vec::new();
    for (variant, closes_hour, users, sx, sxx, sy, syy, sxy) in rows {
        let at = match totals.iter().position(|t| t.variant == variant) {
            Some(at) => at,
            None => {
                totals.push(PairedTotals::empty(&variant));
                totals.len() - 1
            }
        };
        let t = &mut totals[at];
        if closes_hour <= closed_through {
            t.users += users as u64;
            t.sum_x += sx;
            t.sum_squares_x += sxx;
            t.sum_y += sy;
            t.sum_squares_y += syy;
            t.sum_products += sxy;
        } else {
            t.users_pending += users as u64;
        }
    }
    totals
}

/// [`paired_at`] per metric, for rows of several metrics.
pub(super) fn paired_of(
    rows: &[(&str, PairedRow)],
    now: Millis,
) -> Vec<(String, Vec<PairedTotals>)> {
    let mut metrics: Vec<&str> = rows.iter().map(|(metric, _)| *metric).collect();
    metrics.sort_unstable();
    metrics.dedup();
    metrics
        .into_iter()
        .map(|metric| {
            let of_metric = rows
                .iter()
                .filter(|(m, _)| *m == metric)
                .map(|(_, row)| row.clone());
            (metric.to_owned(), paired_at(of_metric, now))
        })
        .collect()
}

/// A row of `shaped_backfills`.
type BackfillRow = (String, Option<String>, i64, i64, i64);

fn backfill_of(row: BackfillRow) -> Backfill {
    let (experiment, after_user, users_done, users_total, started_at) = row;
    Backfill {
        experiment,
        after_user,
        users_done: users_done as u64,
        users_total: users_total as u64,
        started_at,
    }
}

/// A batch's track events per user: `(event, value, ts)`.
pub(super) type BatchTracks<'e> = HashMap<&'e str, Vec<(&'e str, f64, Millis)>>;

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// The plans of those of `experiments` that have shaped metrics, read in the
    /// transaction so that a batch folds by the definitions it commits with.
    pub(super) async fn shaped_plans(
        conn: &mut DB::Connection,
        experiments: &HashSet<&str>,
    ) -> Result<HashMap<String, ShapedPlan>, StoreError> {
        let mut plans = HashMap::new();
        if experiments.is_empty() {
            return Ok(plans);
        }
        let keys: Vec<&str> = experiments.iter().copied().collect();
        let definitions: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT definition FROM experiments WHERE key IN ({})",
            DB::text_list("$1")
        ))
        .bind(encode(&keys))
        .fetch_all(&mut *conn)
        .await?;
        let experiments: Vec<Experiment> = definitions
            .iter()
            .map(|d| decode(d))
            .collect::<Result<_, _>>()?;
        let metrics = Self::defined_metrics(conn).await?;
        for experiment in experiments {
            if let Some(plan) = ShapedPlan::of(&experiment.spec, &metrics) {
                plans.insert(experiment.key().to_owned(), plan);
            }
        }
        Ok(plans)
    }

    async fn defined_metrics(conn: &mut DB::Connection) -> Result<Vec<Metric>, StoreError> {
        let metrics: Vec<String> = sqlx::query_scalar("SELECT definition FROM metrics")
            .fetch_all(&mut *conn)
            .await?;
        metrics.iter().map(|d| decode(d)).collect()
    }

    /// Restarts the shaped metrics of an experiment whose change changed what
    /// ingestion keeps for them (see [`ShapedPlan::of`]).
    pub(super) async fn restart_if_reshaped(
        conn: &mut DB::Connection,
        before: &Experiment,
        after: &Experiment,
    ) -> Result<(), StoreError> {
        if before.spec.metric_keys().eq(after.spec.metric_keys())
            && before.spec.cuped == after.spec.cuped
        {
            return Ok(());
        }
        let metrics = Self::defined_metrics(conn).await?;
        let plan = ShapedPlan::of(&after.spec, &metrics);
        if ShapedPlan::of(&before.spec, &metrics) == plan {
            return Ok(());
        }
        Self::restart_shaped(conn, after.key(), plan.as_ref(), after.updated_at).await
    }

    /// The rebuilds in progress, by experiment.
    pub(super) async fn backfills(
        conn: &mut DB::Connection,
    ) -> Result<HashMap<String, Backfill>, StoreError> {
        let rows: Vec<BackfillRow> = sqlx::query_as(
            "SELECT experiment, after_user, users_done, users_total, started_at \
             FROM shaped_backfills",
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.0.clone(), backfill_of(row)))
            .collect())
    }

    /// Drops an experiment's shaped rows and totals, kept by a plan that changed,
    /// and starts rebuilding them by `plan` (none without one, or without users).
    async fn restart_shaped(
        conn: &mut DB::Connection,
        experiment: &str,
        plan: Option<&ShapedPlan>,
        now: Millis,
    ) -> Result<(), StoreError> {
        DB::lock_out_ingestion(conn).await?;
        for table in ["user_metric_values", "paired_totals", "shaped_backfills"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE experiment = $1"))
                .bind(experiment)
                .execute(&mut *conn)
                .await?;
        }
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM exposures WHERE experiment = $1")
            .bind(experiment)
            .fetch_one(&mut *conn)
            .await?;
        if plan.is_none() || users == 0 {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO shaped_backfills \
             (experiment, after_user, users_done, users_total, started_at) \
             VALUES ($1, NULL, 0, $2, $3)",
        )
        .bind(experiment)
        .bind(users)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        tracing::info!(
            experiment,
            users,
            "rebuilding shaped metrics from the raw events"
        );
        Ok(())
    }

    /// Rebuilds the next `users` users of the first rebuild in progress from their
    /// raw events, with ingestion locked out meanwhile; `None` when none is.
    pub(super) async fn backfill_step(
        conn: &mut DB::Connection,
        users: usize,
    ) -> Result<Option<BackfillStep>, StoreError> {
        DB::lock_out_ingestion(conn).await?;
        let row: Option<BackfillRow> = sqlx::query_as(
            "SELECT experiment, after_user, users_done, users_total, started_at \
             FROM shaped_backfills ORDER BY experiment LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        let Some(mut backfill) = row.map(backfill_of) else {
            return Ok(None);
        };
        let experiment = backfill.experiment.clone();
        let plans = Self::shaped_plans(conn, &HashSet::from([experiment.as_str()])).await?;
        // A plan gone since the rebuild began has nothing left to rebuild.
        let mut exposures = Vec::new();
        if let Some(plan) = plans.get(&experiment) {
            exposures = Self::exposures_after(conn, &backfill, users).await?;
            let fold = Self::rebuild_users(conn, &experiment, plan, &exposures).await?;
            Self::write_shaped(conn, &fold).await?;
        }
        let finished = exposures.len() < users;
        backfill.users_done += exposures.len() as u64;
        if finished {
            sqlx::query("DELETE FROM shaped_backfills WHERE experiment = $1")
                .bind(&experiment)
                .execute(&mut *conn)
                .await?;
        } else {
            backfill.after_user = exposures.last().map(|(user, _)| user.clone());
            sqlx::query(
                "UPDATE shaped_backfills SET after_user = $1, users_done = $2 WHERE experiment = $3",
            )
            .bind(&backfill.after_user)
            .bind(backfill.users_done as i64)
            .bind(&experiment)
            .execute(&mut *conn)
            .await?;
        }
        Ok(Some(BackfillStep {
            backfill,
            users: exposures.len() as u64,
            finished,
        }))
    }

    /// The next `limit` exposures of a rebuild, in byte order of the user ids.
    async fn exposures_after(
        conn: &mut DB::Connection,
        backfill: &Backfill,
        limit: usize,
    ) -> Result<Vec<(String, FirstExposure)>, StoreError> {
        let after = if backfill.after_user.is_some() {
            "AND user_id > $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT user_id, variant, first_ts, multiple FROM exposures \
             WHERE experiment = $1 {after} ORDER BY user_id LIMIT $2"
        );
        let mut query = sqlx::query_as::<_, (String, String, Millis, bool)>(&sql)
            .bind(&backfill.experiment)
            .bind(limit as i64);
        if let Some(after) = &backfill.after_user {
            query = query.bind(after);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        Ok(rows
            .into_iter()
            .map(|(user, variant, first_ts, multiple)| {
                let exposure = FirstExposure {
                    variant,
                    first_ts,
                    multiple,
                    dimensions: None,
                };
                (user, exposure)
            })
            .collect())
    }

    /// The rows and totals of users rebuilt from every stored event of theirs.
    async fn rebuild_users(
        conn: &mut DB::Connection,
        experiment: &str,
        plan: &ShapedPlan,
        exposures: &[(String, FirstExposure)],
    ) -> Result<ShapedFold, StoreError> {
        let since: Vec<(&str, Millis)> = exposures
            .iter()
            .map(|(user, exposure)| (user.as_str(), exposure.first_ts - plan.lookback()))
            .collect();
        let mut tracks: HashMap<String, Vec<(String, f64, Millis)>> = HashMap::new();
        for (user, event, value, ts) in DB::tracks_since(conn, &since).await? {
            tracks.entry(user).or_default().push((event, value, ts));
        }
        let mut fold = ShapedFold {
            writes: Vec::new(),
            changes: PairedChanges::default(),
        };
        for (user, exposure) in exposures {
            let mut rows = MetricRows::new();
            let stored = tracks.get(user).map_or(&[][..], Vec::as_slice);
            let stored = stored.iter().map(|(e, v, ts)| (e.as_str(), *v, *ts));
            plan.add_tracks(&mut rows, exposure.first_ts, stored);
            rows.retain(|_, row| !row.is_empty());
            fold.changes
                .replace(experiment, plan, None, (exposure, &rows));
            fold.writes
                .push(((experiment.to_owned(), user.clone()), rows));
        }
        Ok(fold)
    }

    /// Works out the rows and totals of the touched users of experiments with a
    /// plan: rebuilt from every stored event where the first exposure is new or moved,
    /// otherwise the stored rows plus the batch's tracks.
    pub(super) async fn plan_shaped(
        conn: &mut DB::Connection,
        touched: &HashMap<UserKey, Touched>,
        batch: &BatchTracks<'_>,
    ) -> Result<Option<ShapedFold>, StoreError> {
        let experiments: HashSet<&str> = touched.keys().map(|(e, _)| e.as_str()).collect();
        let plans = Self::shaped_plans(conn, &experiments).await?;
        if plans.is_empty() {
            return Ok(None);
        }
        // Users a rebuild has yet to reach get their rows from it.
        let backfills = Self::backfills(conn).await?;
        let keys: Vec<&UserKey> = touched
            .keys()
            .filter(|(e, u)| plans.contains_key(e) && !is_waiting(&backfills, e, u))
            .collect();
        let exposed_before: Vec<&UserKey> = keys
            .iter()
            .copied()
            .filter(|key| touched[*key].before.is_some())
            .collect();
        let mut stored = Self::metric_rows_of(conn, &exposed_before).await?;
        let mut since: HashMap<&str, Millis> = HashMap::new();
        for key in keys.iter().filter(|k| touched[**k].needs_rebuild()) {
            let from = touched[*key].after.first_ts - plans[&key.0].lookback();
            let earliest = since.entry(key.1.as_str()).or_insert(from);
            *earliest = (*earliest).min(from);
        }
        let since: Vec<(&str, Millis)> = since.into_iter().collect();
        let mut earlier: HashMap<String, Vec<(String, f64, Millis)>> = HashMap::new();
        for (user, event, value, ts) in DB::tracks_since(conn, &since).await? {
            earlier.entry(user).or_default().push((event, value, ts));
        }
        let mut fold = ShapedFold {
            writes: Vec::new(),
            changes: PairedChanges::default(),
        };
        for key in keys {
            let plan = &plans[&key.0];
            let user = &touched[key];
            let before = stored.remove(key).unwrap_or_default();
            let first_ts = user.after.first_ts;
            let mut after = if user.needs_rebuild() {
                let mut rebuilt = MetricRows::new();
                let stored = earlier.get(key.1.as_str()).map_or(&[][..], Vec::as_slice);
                let stored = stored.iter().map(|(e, v, ts)| (e.as_str(), *v, *ts));
                plan.add_tracks(&mut rebuilt, first_ts, stored);
                rebuilt
            } else {
                before.clone()
            };
            let tracks = batch.get(key.1.as_str()).map_or(&[][..], Vec::as_slice);
            plan.add_tracks(&mut after, first_ts, tracks.iter().copied());
            after.retain(|_, row| !row.is_empty());
            if user.before.as_ref() == Some(&user.after) && after == before {
                continue;
            }
            let previous = user.before.as_ref().map(|b| (b, &before));
            fold.changes
                .replace(&key.0, plan, previous, (&user.after, &after));
            fold.writes.push((key.clone(), after));
        }
        Ok(Some(fold))
    }

    /// The stored rows of the `(experiment, user)` keys, a statement per
    /// experiment and chunk of users.
    async fn metric_rows_of(
        conn: &mut DB::Connection,
        keys: &[&UserKey],
    ) -> Result<HashMap<UserKey, MetricRows>, StoreError> {
        let mut users_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (experiment, user) in keys {
            users_of.entry(experiment).or_default().push(user);
        }
        let mut stored: HashMap<UserKey, MetricRows> = HashMap::new();
        for (experiment, users) in users_of {
            for chunk in users.chunks(ROWS_PER_STATEMENT) {
                let rows: Vec<(String, String, f64, i64, f64, i64)> = sqlx::query_as(&format!(
                    "SELECT user_id, metric, total, count, pre_total, pre_count \
                     FROM user_metric_values WHERE experiment = $1 AND user_id IN ({})",
                    DB::text_list("$2")
                ))
                .bind(experiment)
                .bind(encode(&chunk))
                .fetch_all(&mut *conn)
                .await?;
                for (user, metric, total, count, pre_total, pre_count) in rows {
                    let row = MetricRow {
                        total,
                        count,
                        pre_total,
                        pre_count,
                    };
                    stored
                        .entry((experiment.to_owned(), user))
                        .or_default()
                        .insert(metric, row);
                }
            }
        }
        Ok(stored)
    }

    /// Replaces the changed users' rows whole, then adds the totals' changes: a
    /// statement per chunk of rows, not per row.
    pub(super) async fn write_shaped(
        conn: &mut DB::Connection,
        fold: &ShapedFold,
    ) -> Result<(), StoreError> {
        let mut users_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for ((experiment, user), _) in &fold.writes {
            users_of.entry(experiment).or_default().push(user);
        }
        for (experiment, users) in users_of {
            for chunk in users.chunks(ROWS_PER_STATEMENT) {
                sqlx::query(&format!(
                    "DELETE FROM user_metric_values WHERE experiment = $1 AND user_id IN ({})",
                    DB::text_list("$2")
                ))
                .bind(experiment)
                .bind(encode(&chunk))
                .execute(&mut *conn)
                .await?;
            }
        }
        let rows: Vec<(&UserKey, &String, &MetricRow)> = fold
            .writes
            .iter()
            .flat_map(|(key, rows)| rows.iter().map(move |(metric, row)| (key, metric, row)))
            .collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO user_metric_values \
                 (experiment, user_id, metric, total, count, pre_total, pre_count) VALUES {}",
                DB::value_rows(chunk.len(), 7)
            );
            let mut query = sqlx::query(&sql);
            for ((experiment, user), metric, row) in chunk {
                query = query
                    .bind(experiment)
                    .bind(user)
                    .bind(*metric)
                    .bind(row.total)
                    .bind(row.count)
                    .bind(row.pre_total)
                    .bind(row.pre_count);
            }
            query.execute(&mut *conn).await?;
        }
        Self::write_paired(conn, &fold.changes).await
    }

    async fn write_paired(
        conn: &mut DB::Connection,
        changes: &PairedChanges,
    ) -> Result<(), StoreError> {
        let changes: Vec<_> = changes.0.iter().collect();
        for chunk in changes.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO paired_totals AS t (experiment, variant, metric, closes_hour, \
                 first_hour, users, sum_x, sum_squares_x, sum_y, sum_squares_y, sum_products) \
                 VALUES {} \
                 ON CONFLICT (experiment, variant, metric, closes_hour, first_hour) DO UPDATE SET \
                 users = t.users + excluded.users, sum_x = t.sum_x + excluded.sum_x, \
                 sum_squares_x = t.sum_squares_x + excluded.sum_squares_x, \
                 sum_y = t.sum_y + excluded.sum_y, \
                 sum_squares_y = t.sum_squares_y + excluded.sum_squares_y, \
                 sum_products = t.sum_products + excluded.sum_products",
                DB::value_rows(chunk.len(), 11)
            );
            let mut query = sqlx::query(&sql);
            for ((experiment, variant, metric, closes_hour, first_hour), d) in chunk {
                query = query
                    .bind(experiment)
                    .bind(variant)
                    .bind(metric)
                    .bind(*closes_hour)
                    .bind(*first_hour)
                    .bind(d.users)
                    .bind(d.sum_x)
                    .bind(d.sum_squares_x)
                    .bind(d.sum_y)
                    .bind(d.sum_squares_y)
                    .bind(d.sum_products);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Takes an erased user's part out of every shaped total and drops their rows.
    pub(super) async fn erase_shaped(
        conn: &mut DB::Connection,
        user: &str,
        exposures: &[(String, FirstExposure)],
    ) -> Result<(), StoreError> {
        let experiments: HashSet<&str> = exposures.iter().map(|(e, _)| e.as_str()).collect();
        let plans = Self::shaped_plans(conn, &experiments).await?;
        let backfills = Self::backfills(conn).await?;
        let mut changes = PairedChanges::default();
        for (experiment, exposure) in exposures {
            let Some(plan) = plans.get(experiment) else {
                continue;
            };
            if is_waiting(&backfills, experiment, user) {
                continue;
            }
            let key = (experiment.clone(), user.to_owned());
            let mut stored = Self::metric_rows_of(conn, &[&key]).await?;
            let rows = stored.remove(&key).unwrap_or_default();
            changes.remove(experiment, plan, exposure, &rows);
        }
        Self::write_paired(conn, &changes).await?;
        sqlx::query("DELETE FROM user_metric_values WHERE user_id = $1")
            .bind(user)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Per experiment (of those with totals or a rebuild in progress), its shaped
    /// metrics' totals per variant at `now` over the users first exposed in
    /// `hours`, read from the running totals (`keys`: a JSON list of experiments):
    /// users whose window has closed are counted, the others are pending.
    pub(super) async fn read_paired(
        conn: &mut DB::Connection,
        keys: &str,
        hours: HourRange,
        now: Millis,
    ) -> Result<HashMap<String, ShapedTotals>, StoreError> {
        // The rebuilds' state first: once one is seen finished, the totals read
        // next hold every user (two statements share no snapshot).
        let backfills = Self::backfills(conn).await?;
        let mut picked = String::new();
        if let Some(from) = hours.from {
            picked.push_str(&format!(" AND first_hour >= {from}"));
        }
        if let Some(to) = hours.to {
            picked.push_str(&format!(" AND first_hour < {to}"));
        }
        type Row = (String, String, String, i64, i64, f64, f64, f64, f64, f64);
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT experiment, metric, variant, closes_hour, CAST(SUM(users) AS BIGINT), \
             SUM(sum_x), SUM(sum_squares_x), SUM(sum_y), SUM(sum_squares_y), SUM(sum_products) \
             FROM paired_totals WHERE experiment IN ({}){picked} \
             GROUP BY experiment, metric, variant, closes_hour",
            DB::text_list("$1")
        ))
        .bind(keys)
        .fetch_all(&mut *conn)
        .await?;
        let mut by_experiment: HashMap<&str, Vec<(&str, PairedRow)>> = HashMap::new();
        for (e, m, v, h, n, sx, sxx, sy, syy, sxy) in &rows {
            let row = (v.clone(), *h, *n, *sx, *sxx, *sy, *syy, *sxy);
            by_experiment.entry(e).or_default().push((m, row));
        }
        let mut totals: HashMap<String, ShapedTotals> = by_experiment
            .into_iter()
            .map(|(experiment, rows)| {
                let metrics = paired_of(&rows, now);
                let totals = ShapedTotals {
                    metrics,
                    backfill: None,
                };
                (experiment.to_owned(), totals)
            })
            .collect();
        for (experiment, backfill) in backfills {
            totals.entry(experiment).or_default().backfill = Some(backfill);
        }
        Ok(totals)
    }

    /// Per experiment (of those with shaped metrics) and metric, the paired totals
    /// of the users a filter picks: from the running totals when it picks users by
    /// first exposure between whole hours, otherwise summed from per-user rows in
    /// the database (see [`experiment_sums`]).
    pub(super) async fn filtered_paired_of(
        conn: &mut DB::Connection,
        experiments: &[&str],
        filter: &UserFilter,
        now: Millis,
    ) -> Result<HashMap<String, ShapedTotals>, StoreError> {
        if let Some(hours) = filter.first_exposure_hours() {
            return Self::read_paired(conn, &encode(&experiments), hours, now).await;
        }
        let grouped = Self::grouped_paired_of(conn, experiments, filter, &[], now).await?;
        Ok(grouped
            .into_iter()
            .map(|(experiment, (backfill, mut segments))| {
                let totals = ShapedTotals {
                    metrics: segments
                        .pop()
                        .map(|(_, metrics)| metrics)
                        .unwrap_or_default(),
                    backfill,
                };
                (experiment, totals)
            })
            .collect())
    }

    /// [`Self::filtered_paired_of`] per value of up to two kept `dimensions`: per
    /// experiment its rebuild in progress and, per segment, each metric's totals.
    /// One statement per experiment (see [`experiment_sums`]).
    pub(super) async fn grouped_paired_of(
        conn: &mut DB::Connection,
        experiments: &[&str],
        filter: &UserFilter,
        dimensions: &[String],
        now: Millis,
    ) -> Result<HashMap<String, (Option<Backfill>, Vec<SegmentMetrics>)>, StoreError> {
        let plans = Self::shaped_plans(conn, &experiments.iter().copied().collect()).await?;
        let mut backfills = Self::backfills(conn).await?;
        let mut grouped = HashMap::new();
        for (experiment, plan) in &plans {
            let picked = Picked {
                filter,
                dimensions,
                backfill: backfills.get(experiment),
            };
            let mut params = Params::starting_with(experiment);
            let (sql, metrics) = experiment_sums::<DB>(plan, &picked, &mut params);
            let rows = params
                .bind_query(sqlx::query(&sql))
                .fetch_all(&mut *conn)
                .await?;
            let mut by_segment: BTreeMap<SegmentKey, MetricPairs> = BTreeMap::new();
            for row in &rows {
                let (key, paired) = segment_rows(row, dimensions.len(), plan, &metrics)?;
                by_segment.entry(key).or_default().extend(paired);
            }
            let segments = by_segment
                .into_iter()
                .map(|(key, rows)| (key, paired_of(&rows, now)))
                .collect();
            grouped.insert(experiment.clone(), (backfills.remove(experiment), segments));
        }
        Ok(grouped)
    }
}

/// Rows one bulk statement writes or looks up at most (SQLite takes 32,766
/// parameters in a statement, PostgreSQL 65,535).
const ROWS_PER_STATEMENT: usize = 1_000;

/// Whether a rebuild in progress has yet to reach the user in the experiment.
fn is_waiting(backfills: &HashMap<String, Backfill>, experiment: &str, user: &str) -> bool {
    backfills
        .get(experiment)
        .is_some_and(|backfill| !backfill.has_rebuilt(user))
}

/// The users a filtered read sums: those `filter` picks, and while a rebuild is in
/// progress, only those it has reached.
struct Picked<'a> {
    filter: &'a UserFilter,
    /// Dimensions to group by (up to two), none for one group.
    dimensions: &'a [String],
    backfill: Option<&'a Backfill>,
}

/// Where a metric's closing hour comes from in a row of [`experiment_sums`]: its
/// own base's column, or for a ratio the later of its parts'.
#[derive(Debug, Clone, Copy)]
enum ClosesAt {
    Base(usize),
    Later(usize, usize),
}

/// One experiment's statement summing its picked users' pairs: per segment,
/// variant and combination of the bases' closing hours, the users and, per metric
/// (in the order returned), Σx, Σx², Σy, Σy², Σxy. These are the rules of
/// [`crate::domain::shaped`] (`value`, `closes_hour`, `contributions`) written as
/// SQL, so that the database sums instead of sending each user's rows; grouping by
/// every base's closing hour at once (few distinct combinations: they follow the
/// first exposure's hour) reads and sorts the users once for all the metrics.
/// `tests/shaped_metrics.rs` checks filtered reports and breakdowns against sums it
/// works out.
fn experiment_sums<DB: Dialect>(
    plan: &ShapedPlan,
    picked: &Picked,
    params: &mut Params,
) -> (String, Vec<(String, ClosesAt)>) {
    let mut joins = String::new();
    let mut columns = Vec::new();
    for (j, base) in plan.bases.iter().enumerate() {
        let key = params.next(&base.key);
        joins.push_str(&format!(
            " LEFT JOIN user_metric_values r{j} ON r{j}.experiment = x.experiment \
             AND r{j}.user_id = x.user_id AND r{j}.metric = {key}"
        ));
        let y = if plan.lookback.is_some() {
            value_sql(base, &format!("r{j}.pre_total"), &format!("r{j}.pre_count"))
        } else {
            "CAST(0 AS DOUBLE PRECISION)".to_owned()
        };
        let x = value_sql(base, &format!("r{j}.total"), &format!("r{j}.count"));
        columns.push(format!(
            "{} AS h{j}, {x} AS x{j}, {y} AS y{j}",
            closes_sql(base)
        ));
    }
    let sums = |x: &str, y: &str| {
        format!("SUM({x}), SUM({x} * {x}), SUM({y}), SUM({y} * {y}), SUM({x} * {y})")
    };
    let mut metrics = Vec::new();
    let mut sum_columns = Vec::new();
    for (j, base) in plan.bases.iter().enumerate() {
        metrics.push((base.key.clone(), ClosesAt::Base(j)));
        sum_columns.push(sums(&format!("x{j}"), &format!("y{j}")));
    }
    let at = |key: &str| plan.bases.iter().position(|b| b.key == key);
    for (ratio, numerator, denominator) in &plan.ratios {
        let (Some(n), Some(d)) = (at(numerator), at(denominator)) else {
            continue;
        };
        metrics.push((ratio.clone(), ClosesAt::Later(n, d)));
        sum_columns.push(sums(&format!("x{n}"), &format!("x{d}")));
    }
    let mut picked_sql = picked_users::<DB>(picked.filter, params);
    if let Some(backfill) = picked.backfill {
        match &backfill.after_user {
            Some(after) => {
                picked_sql.push_str(&format!(" AND x.user_id <= {}", params.next(after)))
            }
            None => picked_sql.push_str(" AND 1 = 0"),
        }
    }
    let [g1, g2] = group_columns::<DB>(picked.dimensions, params);
    let hours: Vec<String> = (0..plan.bases.len()).map(|j| format!("h{j}")).collect();
    let hours = hours.join(", ");
    let sql = format!(
        "SELECT g1, g2, variant, {hours}, COUNT(*), {} FROM (SELECT x.variant AS variant, \
         {g1} AS g1, {g2} AS g2, {} FROM exposures x{joins} \
         WHERE x.experiment = $1 AND NOT x.multiple{picked_sql}) p \
         GROUP BY g1, g2, variant, {hours}",
        sum_columns.join(", "),
        columns.join(", ")
    );
    (sql, metrics)
}

/// Per metric, one of its rows of `paired_totals` (or their equivalent).
type MetricPairs<'m> = Vec<(&'m str, PairedRow)>;

/// One row of [`experiment_sums`] as its segment's key and a [`PairedRow`] per
/// metric.
fn segment_rows<'m, R: sqlx::Row>(
    row: &R,
    dimensions: usize,
    plan: &ShapedPlan,
    metrics: &'m [(String, ClosesAt)],
) -> Result<(SegmentKey, MetricPairs<'m>), StoreError>
where
    usize: ColumnIndex<R>,
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> f64: Decode<'q, R::Database> + Type<R::Database>,
{
    let key: SegmentKey = (0..dimensions)
        .map(|i| row.try_get::<Option<String>, _>(i))
        .collect::<Result<_, _>>()?;
    let variant: String = row.try_get(2)?;
    let bases = plan.bases.len();
    let hours: Vec<i64> = (0..bases)
        .map(|j| row.try_get(3 + j))
        .collect::<Result<_, _>>()?;
    let users: i64 = row.try_get(3 + bases)?;
    let mut paired = Vec::with_capacity(metrics.len());
    for (m, (metric, closes)) in metrics.iter().enumerate() {
        let at = 4 + bases + 5 * m;
        let sum = |k: usize| row.try_get::<f64, _>(at + k);
        let hour = match *closes {
            ClosesAt::Base(j) => hours[j],
            ClosesAt::Later(n, d) => hours[n].max(hours[d]),
        };
        let row = (
            variant.clone(),
            hour,
            users,
            sum(0)?,
            sum(1)?,
            sum(2)?,
            sum(3)?,
            sum(4)?,
        );
        paired.push((metric.as_str(), row));
    }
    Ok((key, paired))
}

/// [`crate::domain::shaped::value`] as SQL over a row's sum and count columns
/// (NULL without a row: no events).
fn value_sql(metric: &Metric, total: &str, count: &str) -> String {
    let raw = match metric.kind {
        MetricKind::Conversion => {
            return format!(
                "CAST(CASE WHEN COALESCE({count}, 0) > 0 THEN 1 ELSE 0 END AS DOUBLE PRECISION)"
            )
        }
        MetricKind::Mean | MetricKind::Ratio => {
            format!("CAST(COALESCE({total}, 0) AS DOUBLE PRECISION)")
        }
        MetricKind::Count => format!("CAST(COALESCE({count}, 0) AS DOUBLE PRECISION)"),
    };
    // A validated cap is a finite number: written inline.
    match metric.cap {
        Some(cap) => format!(
            "CASE WHEN {raw} > {cap:?} THEN CAST({cap:?} AS DOUBLE PRECISION) ELSE {raw} END"
        ),
        None => raw,
    }
}

/// [`crate::domain::shaped::closes_hour`] as SQL over the exposure `x`.
fn closes_sql(metric: &Metric) -> String {
    match metric.window {
        Some(window) => {
            let end = window.bounds_ms().1;
            format!("((x.first_ts + {end} + {}) / {HOUR_MS})", HOUR_MS - 1)
        }
        None => "CAST(0 AS BIGINT)".to_owned(),
    }
}

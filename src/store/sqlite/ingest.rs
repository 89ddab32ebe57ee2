//! Event ingestion on SQLite: append raw events idempotently, then apply what
//! [`crate::store::fold`] says the batch changes, with multi-row statements.

use std::collections::{HashMap, HashSet};

use sqlx::{Sqlite, Transaction};

use crate::domain::{Event, EventKind, Millis};
use crate::store::fold::{
    add_tracks, fold_exposures, touched_users, tracks_by_user, FirstExposure, TotalsChanges,
    Touched, UserKey, UserMetric, UserMetrics,
};
use crate::store::{IngestOutcome, StoreError};

/// Rows per multi-row statement: large enough to amortise the per-statement cost,
/// small enough to stay far below SQLite's bound-parameter limit.
const ROWS_PER_STATEMENT: usize = 1000;

type Tx<'c> = Transaction<'c, Sqlite>;

/// `(?, ?), (?, ?)`: the VALUES rows of a multi-row statement, `columns` parameters each.
fn value_rows(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// Splits per-event freshness into each batch's accepted and duplicate counts.
pub(super) fn outcomes_per_batch(batches: &[&[Event]], is_new: &[bool]) -> Vec<IngestOutcome> {
    let mut rest = is_new;
    batches
        .iter()
        .map(|batch| {
            let (mine, others) = rest.split_at(batch.len());
            rest = others;
            let accepted = mine.iter().filter(|new| **new).count() as u64;
            IngestOutcome {
                accepted,
                duplicates: batch.len() as u64 - accepted,
            }
        })
        .collect()
}

/// Stores the events and folds the new ones in; says which events were new.
pub(super) async fn store_events(
    tx: &mut Tx<'_>,
    events: &[&Event],
) -> Result<Vec<bool>, StoreError> {
    let is_new = new_events(tx, events).await?;
    let fresh: Vec<&Event> = events
        .iter()
        .zip(&is_new)
        .filter_map(|(event, new)| new.then_some(*event))
        .collect();
    // Everything the fold reads is read before the batch is appended, so the
    // users' earlier events come back without this batch's (usually: none at all).
    let fold = plan_fold(tx, &fresh).await?;
    append_raw_events(tx, &fresh).await?;
    if let Some(fold) = fold {
        write_fold(tx, &fold).await?;
    }
    Ok(is_new)
}

/// Says which events are new: their id was not stored before (nor earlier in the
/// batch). Looking up the (usually absent) known ids is cheaper than having SQLite
/// return every inserted id; the single writer connection makes it race-free.
async fn new_events(tx: &mut Tx<'_>, events: &[&Event]) -> Result<Vec<bool>, StoreError> {
    let mut known = HashSet::new();
    for chunk in events.chunks(ROWS_PER_STATEMENT * 4) {
        let sql = format!(
            "SELECT id FROM events WHERE id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for event in chunk {
            query = query.bind(event.id.as_str());
        }
        known.extend(query.fetch_all(&mut **tx).await?);
    }
    // A repeated id inside the batch is new only the first time.
    Ok(events.iter().map(|e| known.insert(e.id.clone())).collect())
}

/// Appends new events to the raw log.
async fn append_raw_events(tx: &mut Tx<'_>, fresh: &[&Event]) -> Result<(), StoreError> {
    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO events (id, kind, user_id, experiment, variant, event, value, ts) VALUES {}",
            value_rows(chunk.len(), 8)
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            let (kind, experiment, variant, name, value) = match &event.kind {
                EventKind::Exposure {
                    experiment,
                    variant,
                    ..
                } => (
                    "exposure",
                    Some(experiment.as_str()),
                    Some(variant.as_str()),
                    None,
                    None,
                ),
                EventKind::Track { event, value } => {
                    ("track", None, None, Some(event.as_str()), Some(*value))
                }
            };
            query = query
                .bind(event.id.as_str())
                .bind(kind)
                .bind(event.user.as_str())
                .bind(experiment)
                .bind(variant)
                .bind(name)
                .bind(value)
                .bind(event.ts);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// What a batch changes, computed from the stored state before it is appended.
struct Fold {
    touched: HashMap<UserKey, Touched>,
    metric_writes: Vec<(UserKey, String, UserMetric)>,
    changes: TotalsChanges,
}

/// Works out new first exposures, per-user aggregates and running totals.
async fn plan_fold(tx: &mut Tx<'_>, fresh: &[&Event]) -> Result<Option<Fold>, StoreError> {
    let tracks = tracks_by_user(fresh);
    let exposures = fold_exposures(fresh);
    if tracks.is_empty() && exposures.is_empty() {
        return Ok(None);
    }
    let users: HashSet<&str> = tracks
        .keys()
        .copied()
        .chain(exposures.keys().map(|(_, user)| user.as_str()))
        .collect();
    let stored = stored_exposures(tx, &users).await?;
    let touched = touched_users(exposures, stored);
    let mut old = read_user_metrics(tx, &touched).await?;
    let earlier = earlier_tracks(tx, &touched).await?;
    let no_tracks: &[(&str, f64, Millis)] = &[];

    let mut changes = TotalsChanges::default();
    let mut metric_writes = Vec::new();
    for (key, user) in &touched {
        let before = old.remove(key).unwrap_or_default();
        let batch_tracks = tracks.get(key.1.as_str()).map_or(no_tracks, Vec::as_slice);
        let after = if user.needs_rebuild() {
            // From every track since the (new or earlier) first exposure.
            let mut after = UserMetrics::new();
            let stored = earlier.get(key.1.as_str()).map_or(&[][..], Vec::as_slice);
            let stored = stored.iter().map(|(e, v, ts)| (e.as_str(), *v, *ts));
            add_tracks(&mut after, user.after.first_ts, stored);
            add_tracks(
                &mut after,
                user.after.first_ts,
                batch_tracks.iter().copied(),
            );
            after
        } else {
            let mut after = before.clone();
            add_tracks(
                &mut after,
                user.after.first_ts,
                batch_tracks.iter().copied(),
            );
            after
        };
        if user.before.as_ref() == Some(&user.after) && after == before {
            continue;
        }
        let previous = user.before.as_ref().map(|b| (b, &before));
        changes.replace(&key.0, previous, (&user.after, &after));
        for (event, metric) in after {
            if before.get(&event) != Some(&metric) {
                metric_writes.push((key.clone(), event, metric));
            }
        }
    }
    Ok(Some(Fold {
        touched,
        metric_writes,
        changes,
    }))
}

async fn write_fold(tx: &mut Tx<'_>, fold: &Fold) -> Result<(), StoreError> {
    write_exposures(tx, &fold.touched).await?;
    write_user_metrics(tx, &fold.metric_writes).await?;
    write_totals(tx, &fold.changes).await
}

type ExposureRow = (String, String, String, Millis, bool, Option<String>);

/// Every stored exposure of the given users, in any experiment.
async fn stored_exposures(
    tx: &mut Tx<'_>,
    users: &HashSet<&str>,
) -> Result<HashMap<UserKey, FirstExposure>, StoreError> {
    let users: Vec<&str> = users.iter().copied().collect();
    let mut stored = HashMap::new();
    for chunk in users.chunks(ROWS_PER_STATEMENT * 4) {
        let sql = format!(
            "SELECT experiment, user_id, variant, first_ts, multiple, dimensions FROM exposures WHERE user_id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query_as::<_, ExposureRow>(&sql);
        for user in chunk {
            query = query.bind(*user);
        }
        for (experiment, user, variant, first_ts, multiple, dimensions) in
            query.fetch_all(&mut **tx).await?
        {
            let first = FirstExposure {
                variant,
                first_ts,
                multiple,
                dimensions,
            };
            stored.insert((experiment, user), first);
        }
    }
    Ok(stored)
}

type MetricRow = (String, String, String, f64, i64);

fn collect_metrics(rows: Vec<MetricRow>, into: &mut HashMap<UserKey, UserMetrics>) {
    for (experiment, user, event, total, count) in rows {
        into.entry((experiment, user))
            .or_default()
            .insert(event, UserMetric { total, count });
    }
}

/// The stored aggregates of users who were exposed before this batch.
async fn read_user_metrics(
    tx: &mut Tx<'_>,
    touched: &HashMap<UserKey, Touched>,
) -> Result<HashMap<UserKey, UserMetrics>, StoreError> {
    let keys: Vec<&UserKey> = touched
        .iter()
        .filter(|(_, t)| t.before.is_some())
        .map(|(key, _)| key)
        .collect();
    let mut metrics = HashMap::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT experiment, user_id, event, total, count FROM user_metrics \
             WHERE (experiment, user_id) IN (VALUES {})",
            value_rows(chunk.len(), 2)
        );
        let mut query = sqlx::query_as::<_, MetricRow>(&sql);
        for (experiment, user) in chunk {
            query = query.bind(experiment.as_str()).bind(user.as_str());
        }
        collect_metrics(query.fetch_all(&mut **tx).await?, &mut metrics);
    }
    Ok(metrics)
}

/// The stored track events of users whose aggregates must be rebuilt (new to an
/// experiment, or first exposure moved earlier), from their earliest first exposure
/// on: `user → (event, value, ts)`.
async fn earlier_tracks(
    tx: &mut Tx<'_>,
    touched: &HashMap<UserKey, Touched>,
) -> Result<HashMap<String, Vec<(String, f64, Millis)>>, StoreError> {
    let mut since: HashMap<&str, Millis> = HashMap::new();
    for ((_, user), t) in touched.iter().filter(|(_, t)| t.needs_rebuild()) {
        let first = since.entry(user.as_str()).or_insert(t.after.first_ts);
        *first = (*first).min(t.after.first_ts);
    }
    let users: Vec<(&str, Millis)> = since.into_iter().collect();
    let mut tracks: HashMap<String, Vec<(String, f64, Millis)>> = HashMap::new();
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "WITH u (user_id, since) AS (VALUES {}) \
             SELECT e.user_id, e.event, e.value, e.ts FROM u JOIN events e \
             ON e.kind = 'track' AND e.user_id = u.user_id AND e.ts >= u.since",
            value_rows(chunk.len(), 2)
        );
        let mut query = sqlx::query_as::<_, (String, String, f64, Millis)>(&sql);
        for (user, first_ts) in chunk {
            query = query.bind(*user).bind(*first_ts);
        }
        for (user, event, value, ts) in query.fetch_all(&mut **tx).await? {
            tracks.entry(user).or_default().push((event, value, ts));
        }
    }
    Ok(tracks)
}

async fn write_exposures(
    tx: &mut Tx<'_>,
    touched: &HashMap<UserKey, Touched>,
) -> Result<(), StoreError> {
    let writes: Vec<(&UserKey, &FirstExposure)> = touched
        .iter()
        .filter(|(_, t)| t.before.as_ref() != Some(&t.after))
        .map(|(key, t)| (key, &t.after))
        .collect();
    for chunk in writes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO exposures (experiment, user_id, variant, first_ts, multiple, dimensions) \
             VALUES {} ON CONFLICT (experiment, user_id) DO UPDATE SET variant = excluded.variant, \
             first_ts = excluded.first_ts, multiple = excluded.multiple, dimensions = excluded.dimensions",
            value_rows(chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for ((experiment, user), first) in chunk {
            query = query
                .bind(experiment.as_str())
                .bind(user.as_str())
                .bind(first.variant.as_str())
                .bind(first.first_ts)
                .bind(first.multiple)
                .bind(first.dimensions.as_deref());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Upserts changed per-user aggregates. A rebuild only ever adds events (the first
/// exposure moves earlier), so no stored row has to disappear.
async fn write_user_metrics(
    tx: &mut Tx<'_>,
    writes: &[(UserKey, String, UserMetric)],
) -> Result<(), StoreError> {
    for chunk in writes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO user_metrics (experiment, user_id, event, total, count) VALUES {} \
             ON CONFLICT (experiment, user_id, event) DO UPDATE SET \
             total = excluded.total, count = excluded.count",
            value_rows(chunk.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for ((experiment, user), event, metric) in chunk {
            query = query
                .bind(experiment.as_str())
                .bind(user.as_str())
                .bind(event.as_str())
                .bind(metric.total)
                .bind(metric.count);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn write_totals(tx: &mut Tx<'_>, changes: &TotalsChanges) -> Result<(), StoreError> {
    for ((experiment, variant), delta) in &changes.users {
        sqlx::query(
            "INSERT INTO variant_users (experiment, variant, users) VALUES (?, ?, ?) \
             ON CONFLICT (experiment, variant) DO UPDATE SET users = users + excluded.users",
        )
        .bind(experiment)
        .bind(variant)
        .bind(delta)
        .execute(&mut **tx)
        .await?;
    }
    for (experiment, delta) in &changes.multiple {
        sqlx::query(
            "INSERT INTO experiment_multiple_exposures (experiment, users) VALUES (?, ?) \
             ON CONFLICT (experiment) DO UPDATE SET users = users + excluded.users",
        )
        .bind(experiment)
        .bind(delta)
        .execute(&mut **tx)
        .await?;
    }
    for ((experiment, variant, event), delta) in &changes.totals {
        sqlx::query(
            "INSERT INTO variant_totals (experiment, variant, event, converted, value_sum, \
             value_sum_squares, count_sum, count_sum_squares) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (experiment, variant, event) DO UPDATE SET \
             converted = converted + excluded.converted, value_sum = value_sum + excluded.value_sum, \
             value_sum_squares = value_sum_squares + excluded.value_sum_squares, \
             count_sum = count_sum + excluded.count_sum, \
             count_sum_squares = count_sum_squares + excluded.count_sum_squares",
        )
        .bind(experiment)
        .bind(variant)
        .bind(event)
        .bind(delta.converted)
        .bind(delta.value_sum)
        .bind(delta.value_sum_squares)
        .bind(delta.count_sum)
        .bind(delta.count_sum_squares)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

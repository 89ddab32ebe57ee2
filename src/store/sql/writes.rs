//! The statements that run inside a caller's transaction: audit entries with their
//! webhook deliveries, ruleset versions, and event ingestion (append raw events
//! idempotently, then apply what [`crate::store::fold`] says the batch changes).
use super::shaped::ShapedFold;
use super::{decode, encode, Dialect, SqlStore};
use crate::domain::{Event, EventKind, Experiment, Millis, NewAuditEntry, Status};
use crate::store::fold::{
    add_tracks, fold_exposures, touched_users, tracks_by_user, FirstExposure, TotalsChanges,
    Touched, UserKey, UserMetric, UserMetrics,
};
use crate::store::{IngestOutcome, StoreError};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};
use std::collections::{HashMap, HashSet};
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
/// What a batch changes, computed from the stored state before it is appended.
struct Fold {
    touched: HashMap<UserKey, Touched>,
    metric_writes: Vec<(UserKey, String, UserMetric)>,
    changes: TotalsChanges,
    shaped: Option<ShapedFold>,
}
/// `(experiment, user, variant, first_ts, multiple, dimensions)`.
pub(crate) type ExposureRow = (String, String, String, Millis, bool, Option<String>);
/// `(user, event, value, ts)`.
pub(crate) type TrackRow = (String, String, f64, Millis);
/// `(experiment, user, event, total, count)`.
pub(crate) type MetricRow = (String, String, String, f64, i64);
/// An event's columns in the raw log beyond id, user and time.
pub(crate) struct RawEvent<'e> {
    pub(crate) kind: &'static str,
    pub(crate) experiment: Option<&'e str>,
    pub(crate) variant: Option<&'e str>,
    pub(crate) event: Option<&'e str>,
    pub(crate) value: Option<f64>,
}
impl<'e> RawEvent<'e> {
    pub(crate) fn of(event: &'e Event) -> Self {
        match &event.kind {
            EventKind::Exposure {
                experiment,
                variant,
                ..
            } => Self {
                kind: "exposure",
                experiment: Some(experiment),
                variant: Some(variant),
                event: None,
                value: None,
            },
            EventKind::Track { event, value } => Self {
                kind: "track",
                experiment: None,
                variant: None,
                event: Some(event),
                value: Some(*value),
            },
        }
    }
}

/// The statements every backend shares that run inside a caller's transaction.
impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    usize: ColumnIndex<DB::Row>,
{
    pub(super) async fn bump_ruleset_version(conn: &mut DB::Connection) -> Result<u64, StoreError> {
        let version: i64 = sqlx::query_scalar(
            "UPDATE ruleset_state SET version = version + 1, \
             updated_at = CASE WHEN updated_at >= $1 THEN updated_at + 1 ELSE $1 END \
             WHERE id = 1 RETURNING version",
        )
        .bind(crate::domain::now_millis())
        .fetch_one(&mut *conn)
        .await?;
        DB::announce_ruleset(conn, version as u64).await?;
        Ok(version as u64)
    }

    /// The ruleset version a write of `experiment` commits at: a new one when
    /// it is served, the current one for a draft, which no SDK sees.
    pub(super) async fn version_after(
        conn: &mut DB::Connection,
        experiment: &Experiment,
    ) -> Result<u64, StoreError> {
        if experiment.status != Status::Draft {
            return Self::bump_ruleset_version(conn).await;
        }
        let version: i64 = sqlx::query_scalar("SELECT version FROM ruleset_state WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        Ok(version as u64)
    }

    pub(super) async fn insert_audit(
        conn: &mut DB::Connection,
        audit: &NewAuditEntry,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (experiment, subject_kind, actor, actor_kind, action, before, after, evidence, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(audit.subject.id())
        .bind(audit.subject.kind())
        .bind(audit.actor.name())
        .bind(audit.actor.kind().as_str())
        .bind(audit.action.as_str())
        .bind(audit.before.as_ref().map(encode))
        .bind(audit.after.as_ref().map(encode))
        .bind(audit.evidence.as_ref().map(encode))
        .bind(audit.at)
        .execute(&mut *conn)
        .await?;
        Self::queue_deliveries(conn, audit).await
    }

    /// Announces the change to subscribed webhooks in the caller's transaction.
    async fn queue_deliveries(
        conn: &mut DB::Connection,
        audit: &NewAuditEntry,
    ) -> Result<(), StoreError> {
        if !audit.action.is_webhook_event() {
            return Ok(());
        }
        let hooks: Vec<(i64, String)> = sqlx::query_as("SELECT id, events FROM webhooks")
            .fetch_all(&mut *conn)
            .await?;
        let payload = crate::domain::webhook::payload(audit);
        for (id, events) in hooks {
            let events: Vec<String> = decode(&events)?;
            if !crate::domain::webhook::subscribed(&events, audit.action) {
                continue;
            }
            sqlx::query(
                "INSERT INTO webhook_deliveries (webhook_id, event, payload, status, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, 'pending', 0, $4, $5)",
            )
            .bind(id)
            .bind(audit.action.as_str())
            .bind(payload.as_str())
            .bind(audit.at)
            .bind(audit.at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Stores the events and folds the new ones in; says which events were new.
    pub(super) async fn store_events(
        conn: &mut DB::Connection,
        events: &[&Event],
    ) -> Result<Vec<bool>, StoreError> {
        let is_new = Self::new_events(conn, events).await?;
        let fresh: Vec<&Event> = events
            .iter()
            .zip(&is_new)
            .filter_map(|(event, new)| new.then_some(*event))
            .collect();
        // Everything the fold reads is read before the batch is appended, so the
        // users' earlier events come back without this batch's (usually: none at all).
        let fold = Self::plan_fold(conn, &fresh).await?;
        DB::append_events(conn, &fresh).await?;
        if let Some(fold) = fold {
            Self::write_fold(conn, &fold).await?;
        }
        Ok(is_new)
    }
    /// Says which events are new: their id was not stored before (nor earlier in the
    /// batch). Looking up the (usually absent) known ids is cheaper than having the
    /// database return every inserted id. Race-free because a retried event comes
    /// with the same user, whom no other transaction folds meanwhile; the same id
    /// sent for two users at once fails one batch on the unique id instead.
    async fn new_events(
        conn: &mut DB::Connection,
        events: &[&Event],
    ) -> Result<Vec<bool>, StoreError> {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let mut known: HashSet<String> = DB::known_ids(conn, &ids).await?.into_iter().collect();
        // A repeated id inside the batch is new only the first time.
        Ok(events.iter().map(|e| known.insert(e.id.clone())).collect())
    }

    /// Works out new first exposures, per-user aggregates and running totals.
    async fn plan_fold(
        conn: &mut DB::Connection,
        fresh: &[&Event],
    ) -> Result<Option<Fold>, StoreError> {
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
        let stored = Self::stored_exposures(conn, &users).await?;
        let touched = touched_users(exposures, stored);
        let mut old = Self::read_user_metrics(conn, &touched).await?;
        let earlier = Self::earlier_tracks(conn, &touched).await?;
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
        let shaped = Self::plan_shaped(conn, &touched, &tracks).await?;
        Ok(Some(Fold {
            touched,
            metric_writes,
            changes,
            shaped,
        }))
    }
    async fn write_fold(conn: &mut DB::Connection, fold: &Fold) -> Result<(), StoreError> {
        Self::write_exposures(conn, &fold.touched).await?;
        // A rebuild only ever adds events (the first exposure moves earlier), so no
        // stored aggregate has to disappear: upserts suffice.
        DB::upsert_metrics(conn, &fold.metric_writes).await?;
        if let Some(shaped) = &fold.shaped {
            Self::write_shaped(conn, shaped).await?;
        }
        Self::write_totals(conn, &fold.changes).await
    }
    /// Every stored exposure of the given users, in any experiment.
    async fn stored_exposures(
        conn: &mut DB::Connection,
        users: &HashSet<&str>,
    ) -> Result<HashMap<UserKey, FirstExposure>, StoreError> {
        let users: Vec<&str> = users.iter().copied().collect();
        let rows = DB::exposures_of(conn, &users).await?;
        Ok(rows
            .into_iter()
            .map(
                |(experiment, user, variant, first_ts, multiple, dimensions)| {
                    let first = FirstExposure {
                        variant,
                        first_ts,
                        multiple,
                        dimensions,
                    };
                    ((experiment, user), first)
                },
            )
            .collect())
    }

    /// The stored aggregates of users who were exposed before this batch.
    async fn read_user_metrics(
        conn: &mut DB::Connection,
        touched: &HashMap<UserKey, Touched>,
    ) -> Result<HashMap<UserKey, UserMetrics>, StoreError> {
        let keys: Vec<&UserKey> = touched
            .iter()
            .filter(|(_, t)| t.before.is_some())
            .map(|(key, _)| key)
            .collect();
        let mut metrics: HashMap<UserKey, UserMetrics> = HashMap::new();
        for (experiment, user, event, total, count) in DB::metrics_of(conn, &keys).await? {
            metrics
                .entry((experiment, user))
                .or_default()
                .insert(event, UserMetric { total, count });
        }
        Ok(metrics)
    }
    /// The stored track events of users whose aggregates must be rebuilt (new to an
    /// experiment, or first exposure moved earlier), from their earliest first exposure
    /// on: `user → (event, value, ts)`.
    async fn earlier_tracks(
        conn: &mut DB::Connection,
        touched: &HashMap<UserKey, Touched>,
    ) -> Result<HashMap<String, Vec<(String, f64, Millis)>>, StoreError> {
        let mut since: HashMap<&str, Millis> = HashMap::new();
        for ((_, user), t) in touched.iter().filter(|(_, t)| t.needs_rebuild()) {
            let first = since.entry(user.as_str()).or_insert(t.after.first_ts);
            *first = (*first).min(t.after.first_ts);
        }
        let users: Vec<(&str, Millis)> = since.into_iter().collect();
        let mut tracks: HashMap<String, Vec<(String, f64, Millis)>> = HashMap::new();
        for (user, event, value, ts) in DB::tracks_since(conn, &users).await? {
            tracks.entry(user).or_default().push((event, value, ts));
        }
        Ok(tracks)
    }
    async fn write_exposures(
        conn: &mut DB::Connection,
        touched: &HashMap<UserKey, Touched>,
    ) -> Result<(), StoreError> {
        let writes: Vec<(&UserKey, &FirstExposure)> = touched
            .iter()
            .filter(|(_, t)| t.before.as_ref() != Some(&t.after))
            .map(|(key, t)| (key, &t.after))
            .collect();
        DB::upsert_exposures(conn, &writes).await
    }
    pub(super) async fn write_totals(
        conn: &mut DB::Connection,
        changes: &TotalsChanges,
    ) -> Result<(), StoreError> {
        for ((experiment, variant), delta) in &changes.users {
            sqlx::query(
                "INSERT INTO variant_users (experiment, variant, users) VALUES ($1, $2, $3) \
                 ON CONFLICT (experiment, variant) DO UPDATE SET users = variant_users.users + excluded.users",
            )
            .bind(experiment)
            .bind(variant)
            .bind(delta)
            .execute(&mut *conn)
            .await?;
        }
        for (experiment, delta) in &changes.multiple {
            sqlx::query(
                "INSERT INTO experiment_multiple_exposures (experiment, users) VALUES ($1, $2) \
                 ON CONFLICT (experiment) DO UPDATE SET users = experiment_multiple_exposures.users + excluded.users",
            )
            .bind(experiment)
            .bind(delta)
            .execute(&mut *conn)
            .await?;
        }
        for ((experiment, variant, event), delta) in &changes.totals {
            sqlx::query(
                "INSERT INTO variant_totals AS t (experiment, variant, event, converted, value_sum, \
                 value_sum_squares, count_sum, count_sum_squares) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (experiment, variant, event) DO UPDATE SET \
                 converted = t.converted + excluded.converted, value_sum = t.value_sum + excluded.value_sum, \
                 value_sum_squares = t.value_sum_squares + excluded.value_sum_squares, \
                 count_sum = t.count_sum + excluded.count_sum, \
                 count_sum_squares = t.count_sum_squares + excluded.count_sum_squares",
            )
            .bind(experiment)
            .bind(variant)
            .bind(event)
            .bind(delta.converted)
            .bind(delta.value_sum)
            .bind(delta.value_sum_squares)
            .bind(delta.count_sum)
            .bind(delta.count_sum_squares)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

//! One implementation of [`Store`] in SQL, shared by every backend: the statements
//! are written once in the dialect SQLite and PostgreSQL both speak (`$N` parameters,
//! `ON CONFLICT` upserts, `RETURNING`), and a [`Dialect`] supplies the few places
//! where they differ: JSON access, bulk appends, locking and change notification.

mod shaped;

mod writes;

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::fold::{FirstExposure, TotalsChanges, UserKey, UserMetric, UserMetrics};
use super::{
    AuditOf, ExposedUser, ExposureSummary, IngestOutcome, RulesetChanges, RunningTotals,
    SegmentMetrics, ShapedTotals, Store, StoreError, TrackFact, UserFilter, UserTrack,
    VariantTotals,
};
use crate::domain::event::Expiry;
use crate::domain::shaped::{Backfill, BackfillStep};
use crate::domain::totals::HourRange;
use crate::domain::validation::is_storable;
use crate::domain::webhook::{Delivery, DeliveryOutcome, NewWebhook, Webhook, WebhookFormat};
use crate::domain::{
    format_millis, ActorKind, ApiKey, AuditEntry, AuditSubject, Environment, Event, Experiment,
    Metric, Millis, NewApiKey, NewAuditEntry, Role,
};

pub(crate) use writes::{ExposureRow, MetricRow, RawEvent, TrackRow};

/// What differs between backends.
#[async_trait]
pub(crate) trait Dialect: Database {
    /// State a backend keeps beside its pools (a leadership connection, say).
    type Coordination: Send + Sync + 'static;

    /// An expression for the text of the kept dimension whose key (see
    /// [`Dialect::dimension_key`]) is bound as the parameter `key` (`$3`, say), in a
    /// JSON object column.
    fn dimension_value(column: &str, key: &str) -> String;
    /// How the name of a kept dimension is bound for [`Dialect::dimension_value`].
    fn dimension_key(dimension: &str) -> String;
    /// A subquery giving one row per text of the JSON array of strings bound as
    /// parameter `param` (`$1`): a list of any length in one parameter.
    fn text_list(param: &str) -> String;
    /// `rows` rows of `columns` parameters for a multi-row `VALUES`, the only
    /// parameters of their statement (SQLite would look `$N` names up one by one,
    /// in time growing with their number).
    fn value_rows(rows: usize, columns: usize) -> String;

    /// How many ingestion transactions may run at once.
    const INGEST_WRITERS: usize;
    /// Readies an ingestion transaction for `events`: no other transaction, on any
    /// server, may fold the same users until it ends.
    async fn prepare_ingestion(
        conn: &mut Self::Connection,
        users: &[&str],
    ) -> Result<(), StoreError>;
    /// Waits for every ingestion transaction in flight and keeps new ones out until
    /// this transaction ends: for changes to what ingestion folds by.
    async fn lock_out_ingestion(conn: &mut Self::Connection) -> Result<(), StoreError>;

    // Bulk statements: each backend reads and writes many rows its fastest way.
    /// The ids among `ids` already stored.
    async fn known_ids(
        conn: &mut Self::Connection,
        ids: &[&str],
    ) -> Result<Vec<String>, StoreError>;
    /// Every stored exposure of the users, in any experiment.
    async fn exposures_of(
        conn: &mut Self::Connection,
        users: &[&str],
    ) -> Result<Vec<ExposureRow>, StoreError>;
    /// The stored per-user aggregates of the `(experiment, user)` keys.
    async fn metrics_of(
        conn: &mut Self::Connection,
        keys: &[&UserKey],
    ) -> Result<Vec<MetricRow>, StoreError>;
    /// Each user's stored track events at or after the given time.
    async fn tracks_since(
        conn: &mut Self::Connection,
        since: &[(&str, Millis)],
    ) -> Result<Vec<TrackRow>, StoreError>;
    /// Appends new events to the raw log.
    async fn append_events(
        conn: &mut Self::Connection,
        events: &[&Event],
    ) -> Result<(), StoreError>;
    async fn upsert_exposures(
        conn: &mut Self::Connection,
        rows: &[(&UserKey, &FirstExposure)],
    ) -> Result<(), StoreError>;
    async fn upsert_metrics(
        conn: &mut Self::Connection,
        rows: &[(UserKey, String, UserMetric)],
    ) -> Result<(), StoreError>;
    /// Tells other servers, on commit, that the ruleset moved to `version`.
    async fn announce_ruleset(conn: &mut Self::Connection, version: u64) -> Result<(), StoreError>;
    /// Whether this server holds the leadership (see [`Store::lead`]).
    async fn lead(coordination: &Self::Coordination) -> Result<bool, StoreError>;
    /// A feed of changes committed by other servers, if others can exist.
    async fn changes(
        coordination: &Self::Coordination,
    ) -> Result<Option<super::ChangeFeed>, StoreError>;
}

/// A [`Store`] over a SQL database: a pool for writes, one for reads (the same pool
/// where the backend has no reason to split them) and the backend's coordination.
pub(crate) struct SqlStore<DB: Dialect> {
    writer: Pool<DB>,
    reader: Pool<DB>,
    coordination: DB::Coordination,
}

impl<DB: Dialect> SqlStore<DB> {
    pub(crate) fn new(writer: Pool<DB>, reader: Pool<DB>, coordination: DB::Coordination) -> Self {
        Self {
            writer,
            reader,
            coordination,
        }
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn encode<T: serde::Serialize>(value: &T) -> String {
    // Serialising our own plain data types cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
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
    async fn insert_metric(&self, metric: &Metric) -> Result<(), StoreError> {
        let result =
            sqlx::query("INSERT INTO metrics (key, definition, created_at) VALUES ($1, $2, $3)")
                .bind(&metric.key)
                .bind(encode(metric))
                .bind(crate::domain::now_millis())
                .execute(&self.writer)
                .await;
        match result {
            Err(err) if is_unique_violation(&err) => Err(StoreError::AlreadyExists(format!(
                "metric {:?}",
                metric.key
            ))),
            other => other.map(drop).map_err(Into::into),
        }
    }

    async fn list_metrics(&self) -> Result<Vec<Metric>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT definition FROM metrics ORDER BY key")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|r| decode(r)).collect()
    }

    async fn get_metric(&self, key: &str) -> Result<Option<Metric>, StoreError> {
        // Nothing stored holds NUL, and PostgreSQL refuses to be asked about it.
        if !is_storable(key) {
            return Ok(None);
        }
        let row: Option<String> =
            sqlx::query_scalar("SELECT definition FROM metrics WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.reader)
                .await?;
        row.as_deref().map(decode).transpose()
    }

    async fn insert_experiment(
        &self,
        experiment: &Experiment,
        audit: &NewAuditEntry,
    ) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let version = Self::version_after(&mut tx, experiment).await?;
        let inserted = sqlx::query(
            "INSERT INTO experiments (key, status, revision, definition, created_at, updated_at, changed_in) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(experiment.key())
        .bind(experiment.status.as_str())
        .bind(experiment.revision as i64)
        .bind(encode(experiment))
        .bind(experiment.created_at)
        .bind(experiment.updated_at)
        .bind(version as i64)
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            return Err(if is_unique_violation(&err) {
                StoreError::AlreadyExists(format!("experiment {:?}", experiment.key()))
            } else {
                err.into()
            });
        }
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn update_experiment(
        &self,
        experiment: &Experiment,
        expected_revision: u64,
        audit: &NewAuditEntry,
    ) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let before: Option<String> =
            sqlx::query_scalar("SELECT definition FROM experiments WHERE key = $1")
                .bind(experiment.key())
                .fetch_optional(&mut *tx)
                .await?;
        let version = Self::version_after(&mut tx, experiment).await?;
        let updated: Option<i64> = sqlx::query_scalar(
            "UPDATE experiments SET status = $1, revision = $2, definition = $3, updated_at = $4, \
             changed_in = $5 WHERE key = $6 AND revision = $7 RETURNING revision",
        )
        .bind(experiment.status.as_str())
        .bind(experiment.revision as i64)
        .bind(encode(experiment))
        .bind(experiment.updated_at)
        .bind(version as i64)
        .bind(experiment.key())
        .bind(expected_revision as i64)
        .fetch_optional(&mut *tx)
        .await?;
        if updated.is_none() {
            return Err(StoreError::Conflict(format!(
                "experiment {:?}",
                experiment.key()
            )));
        }
        if let Some(before) = before {
            Self::restart_if_reshaped(&mut tx, &decode(&before)?, experiment).await?;
        }
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn get_experiment(&self, key: &str) -> Result<Option<Experiment>, StoreError> {
        // Nothing stored holds NUL, and PostgreSQL refuses to be asked about it.
        if !is_storable(key) {
            return Ok(None);
        }
        let row: Option<String> =
            sqlx::query_scalar("SELECT definition FROM experiments WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.reader)
                .await?;
        row.as_deref().map(decode).transpose()
    }

    async fn list_experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT definition FROM experiments ORDER BY created_at DESC, key")
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(|r| decode(r)).collect()
    }

    async fn ruleset_version(&self) -> Result<u64, StoreError> {
        let version: i64 = sqlx::query_scalar("SELECT version FROM ruleset_state WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        Ok(version as u64)
    }

    async fn ruleset_changes(&self, since: Option<u64>) -> Result<RulesetChanges, StoreError> {
        let mut tx = self.reader.begin().await?;
        // The version first: every change up to it is committed, so the next
        // statement sees it (and perhaps later ones, which are read again).
        let (version, updated_at): (i64, i64) =
            sqlx::query_as("SELECT version, updated_at FROM ruleset_state WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let definitions: Vec<String> = sqlx::query_scalar(
            "SELECT definition FROM experiments WHERE status <> 'draft' AND changed_in > $1",
        )
        .bind(since.map_or(-1, |v| v as i64))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RulesetChanges {
            version: version as u64,
            updated_at,
            changed: definitions
                .iter()
                .map(|d| decode(d))
                .collect::<Result<_, _>>()?,
        })
    }

    async fn audit_log(&self, experiment: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log \
             WHERE experiment = $1 AND subject_kind = 'experiment' ORDER BY id"
        ))
        .bind(experiment)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(audit_entry).collect()
    }

    async fn settings_audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log \
             WHERE subject_kind <> 'experiment' ORDER BY id DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(audit_entry).collect()
    }

    async fn insert_environment(
        &self,
        environment: &Environment,
        audit: &NewAuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        let inserted =
            sqlx::query("INSERT INTO environments (key, name, created_at) VALUES ($1, $2, $3)")
                .bind(&environment.key)
                .bind(&environment.name)
                .bind(audit.at)
                .execute(&mut *tx)
                .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => {
                let key = &environment.key;
                return Err(StoreError::AlreadyExists(format!("environment {key:?}")));
            }
            other => other?,
        };
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_environments(&self) -> Result<Vec<Environment>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT key, name FROM environments ORDER BY key")
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(key, name)| Environment { key, name })
            .collect())
    }

    async fn insert_api_key(
        &self,
        key: &NewApiKey,
        audit: AuditOf<'_>,
    ) -> Result<ApiKey, StoreError> {
        let created_at = crate::domain::now_millis();
        let mut tx = self.writer.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (name, role, environment, key_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.environment)
        .bind(&key.hash)
        .bind(created_at)
        .fetch_one(&mut *tx)
        .await?;
        let stored = ApiKey {
            id,
            name: key.name.clone(),
            role: key.role,
            environment: key.environment.clone(),
            created_at,
            revoked_at: None,
        };
        Self::insert_audit(&mut tx, &audit(id)).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(key_hash)
        .fetch_optional(&self.reader)
        .await?;
        row.map(api_key).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(api_key).collect()
    }

    async fn revoke_api_key(&self, id: i64, audit: &NewAuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let revoked: Option<i64> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(audit.at)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if revoked.is_none() {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM api_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Ok(exists.is_some());
        }
        sqlx::query("DELETE FROM dashboard_sessions WHERE key_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_session(
        &self,
        id_hash: &str,
        key_id: i64,
        created_at: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (id_hash, key_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(key_id)
        .bind(created_at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_session(&self, id_hash: &str, now: Millis) -> Result<Option<ApiKey>, StoreError> {
        let row: Option<ApiKeyRow> = sqlx::query_as(
            "SELECT k.id, k.name, k.role, k.environment, k.created_at, k.revoked_at \
             FROM dashboard_sessions s JOIN api_keys k ON k.id = s.key_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        row.map(api_key).transpose()
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    fn ingest_writers(&self) -> usize {
        DB::INGEST_WRITERS
    }

    async fn lead(&self) -> Result<bool, StoreError> {
        DB::lead(&self.coordination).await
    }

    async fn changes(&self) -> Result<Option<super::ChangeFeed>, StoreError> {
        DB::changes(&self.coordination).await
    }

    async fn ingest(&self, batches: &[&[Event]]) -> Result<Vec<IngestOutcome>, StoreError> {
        let events: Vec<&Event> = batches.iter().flat_map(|batch| batch.iter()).collect();
        if events.is_empty() {
            return Ok(vec![IngestOutcome::default(); batches.len()]);
        }
        let mut tx = self.writer.begin().await?;
        let users: Vec<&str> = events.iter().map(|e| e.user.as_str()).collect();
        DB::prepare_ingestion(&mut tx, &users).await?;
        let is_new = Self::store_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(writes::outcomes_per_batch(batches, &is_new))
    }

    async fn expire_events(&self, expiry: &Expiry) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for experiment in &expiry.finished {
            sqlx::query(
                "DELETE FROM events WHERE kind = 'exposure' AND experiment = $1 AND ts < $2",
            )
            .bind(experiment)
            .bind(expiry.before)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM events WHERE kind = 'track' AND ts < $1")
            .bind(expiry.tracks_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn server_secret(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.writer)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.writer)
                .await?,
        )
    }

    async fn erase_user(&self, user: &str, audit: &NewAuditEntry) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        DB::prepare_ingestion(&mut tx, &[user]).await?;
        let exposures: Vec<(String, String, Millis, bool)> = sqlx::query_as(
            "SELECT experiment, variant, first_ts, multiple FROM exposures WHERE user_id = $1",
        )
        .bind(user)
        .fetch_all(&mut *tx)
        .await?;
        let rows: Vec<(String, String, f64, i64)> = sqlx::query_as(
            "SELECT experiment, event, total, count FROM user_metrics WHERE user_id = $1",
        )
        .bind(user)
        .fetch_all(&mut *tx)
        .await?;
        let mut metrics: HashMap<String, UserMetrics> = HashMap::new();
        for (experiment, event, total, count) in rows {
            let metric = UserMetric { total, count };
            metrics.entry(experiment).or_default().insert(event, metric);
        }
        let mut changes = TotalsChanges::default();
        let mut exposed = Vec::with_capacity(exposures.len());
        for (experiment, variant, first_ts, multiple) in exposures {
            let exposure = FirstExposure {
                variant,
                first_ts,
                multiple,
                dimensions: None,
            };
            let of_user = metrics.remove(&experiment).unwrap_or_default();
            changes.remove(&experiment, &exposure, &of_user);
            exposed.push((experiment, exposure));
        }
        Self::write_totals(&mut tx, &changes).await?;
        Self::erase_shaped(&mut tx, user, &exposed).await?;
        for table in ["user_metrics", "exposures"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        let erased: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE user_id = $1")
            .bind(user)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM events WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        Self::insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(erased as u64)
    }

    async fn exposure_summary(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<ExposureSummary, StoreError> {
        if !filter.is_everyone() {
            return self.filtered_exposures(experiment, filter).await;
        }
        let users: Vec<(String, i64)> = sqlx::query_as(
            "SELECT variant, users FROM variant_users WHERE experiment = $1 AND users > 0 ORDER BY variant",
        )
        .bind(experiment)
        .fetch_all(&self.reader)
        .await?;
        let multiple: Option<i64> = sqlx::query_scalar(
            "SELECT users FROM experiment_multiple_exposures WHERE experiment = $1",
        )
        .bind(experiment)
        .fetch_optional(&self.reader)
        .await?;
        Ok(ExposureSummary {
            users: users.into_iter().map(|(v, n)| (v, n as u64)).collect(),
            multiple_exposures: multiple.unwrap_or(0) as u64,
        })
    }

    async fn variant_totals(
        &self,
        experiment: &str,
        event: &str,
        filter: &UserFilter,
    ) -> Result<Vec<VariantTotals>, StoreError> {
        if !filter.is_everyone() {
            let rows = self.segment_totals(experiment, &[], event, filter).await?;
            return Ok(rows.into_iter().map(|(_, totals)| totals).collect());
        }
        type TotalsRow = (String, i64, i64, f64, f64, i64, i64);
        let rows: Vec<TotalsRow> = sqlx::query_as(
            "SELECT u.variant, u.users, COALESCE(t.converted, 0), \
             COALESCE(t.value_sum, 0.0), COALESCE(t.value_sum_squares, 0.0), \
             COALESCE(t.count_sum, 0), COALESCE(t.count_sum_squares, 0) \
             FROM variant_users u LEFT JOIN variant_totals t \
             ON t.experiment = u.experiment AND t.variant = u.variant AND t.event = $1 \
             WHERE u.experiment = $2 AND u.users > 0 ORDER BY u.variant",
        )
        .bind(event)
        .bind(experiment)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(variant, users, converted, sum, sum_sq, count, count_sq)| VariantTotals {
                    variant,
                    users: users as u64,
                    converted: converted as u64,
                    value_sum: sum,
                    value_sum_squares: sum_sq,
                    count_sum: count as f64,
                    count_sum_squares: count_sq as f64,
                },
            )
            .collect())
    }

    async fn running_totals(
        &self,
        experiments: &[&str],
        events: &[&str],
        filter: &UserFilter,
    ) -> Result<Vec<RunningTotals>, StoreError> {
        // Nothing stored holds NUL, and PostgreSQL refuses to be asked about it:
        // such a key is not asked for, and its totals are empty.
        let storable = |names: &[&str]| {
            let kept: Vec<&str> = names.iter().copied().filter(|n| is_storable(n)).collect();
            encode(&kept)
        };
        let (keys, names) = (storable(experiments), storable(events));
        let rows = if filter.is_everyone() {
            self.running_rows(&keys, &names).await?
        } else {
            self.filtered_rows(&keys, &names, filter).await?
        };
        let TotalsRows {
            users,
            multiple,
            sums,
            paired,
        } = rows;
        let mut exposed: HashMap<&str, Vec<(&str, u64)>> = HashMap::new();
        for (experiment, variant, n) in &users {
            let variants = exposed.entry(experiment.as_str()).or_default();
            variants.push((variant.as_str(), *n as u64));
        }
        let multiple: HashMap<&str, u64> = multiple
            .iter()
            .map(|(e, n)| (e.as_str(), *n as u64))
            .collect();
        let sums: HashMap<(&str, &str, &str), &SumsRow> = sums
            .iter()
            .map(|row| ((row.0.as_str(), row.1.as_str(), row.2.as_str()), row))
            .collect();
        Ok(experiments
            .iter()
            .map(|experiment| {
                let variants = exposed.get(experiment).map_or(&[][..], Vec::as_slice);
                let totals_of = |event: &str| {
                    variants
                        .iter()
                        .map(|(variant, n)| {
                            let mut totals = VariantTotals {
                                variant: (*variant).to_owned(),
                                users: *n,
                                ..VariantTotals::default()
                            };
                            if let Some(row) = sums.get(&(*experiment, *variant, event)) {
                                totals.converted = row.3 as u64;
                                totals.value_sum = row.4;
                                totals.value_sum_squares = row.5;
                                totals.count_sum = row.6 as f64;
                                totals.count_sum_squares = row.7 as f64;
                            }
                            totals
                        })
                        .collect()
                };
                RunningTotals {
                    experiment: (*experiment).to_owned(),
                    exposures: ExposureSummary {
                        users: variants
                            .iter()
                            .map(|(v, n)| ((*v).to_owned(), *n))
                            .collect(),
                        multiple_exposures: multiple.get(experiment).copied().unwrap_or(0),
                    },
                    events: events
                        .iter()
                        .map(|event| ((*event).to_owned(), totals_of(event)))
                        .collect(),
                    paired: paired.get(*experiment).cloned().unwrap_or_default(),
                }
            })
            .collect())
    }

    async fn paired_totals(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<ShapedTotals, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let now = crate::domain::now_millis();
        if let Some(hours) = filter.first_exposure_hours() {
            let mut read = Self::read_paired(&mut conn, &encode(&[experiment]), hours, now).await?;
            return Ok(read.remove(experiment).unwrap_or_default());
        }
        let mut of_experiment =
            Self::filtered_paired_of(&mut conn, &[experiment], filter, now).await?;
        Ok(of_experiment.remove(experiment).unwrap_or_default())
    }

    async fn segment_paired(
        &self,
        experiment: &str,
        dimensions: &[String],
        filter: &UserFilter,
    ) -> Result<Vec<SegmentMetrics>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let now = crate::domain::now_millis();
        let mut grouped =
            Self::grouped_paired_of(&mut conn, &[experiment], filter, dimensions, now).await?;
        Ok(grouped
            .remove(experiment)
            .map(|(_, segments)| segments)
            .unwrap_or_default())
    }

    async fn shaped_backfill(&self, experiment: &str) -> Result<Option<Backfill>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        Ok(Self::backfills(&mut conn).await?.remove(experiment))
    }

    async fn backfill_shaped(&self, users: usize) -> Result<Option<BackfillStep>, StoreError> {
        let mut tx = self.writer.begin().await?;
        let step = Self::backfill_step(&mut tx, users).await?;
        tx.commit().await?;
        Ok(step)
    }

    async fn exposed_users(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<Vec<ExposedUser>, StoreError> {
        let mut params = Params::starting_with(experiment);
        let picked = picked_users::<DB>(filter, &mut params);
        let sql = format!(
            "SELECT x.user_id, x.variant, x.first_ts FROM exposures x \
             WHERE x.experiment = $1 AND NOT x.multiple{picked} ORDER BY x.first_ts"
        );
        let rows: Vec<(String, String, Millis)> = params
            .bind(sqlx::query_as(&sql))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(user, variant, first_ts)| ExposedUser {
                user,
                variant,
                first_ts,
            })
            .collect())
    }

    async fn tracks_around_exposure(
        &self,
        experiment: &str,
        events: &[&str],
        lookback: Millis,
        filter: &UserFilter,
    ) -> Result<Vec<UserTrack>, StoreError> {
        let mut params = Params::starting_with(experiment);
        let names = params.next(&encode(&events));
        let picked = picked_users::<DB>(filter, &mut params);
        let sql = format!(
            "SELECT e.user_id, e.event, e.value, e.ts FROM exposures x JOIN events e \
             ON e.kind = 'track' AND e.user_id = x.user_id AND e.ts >= x.first_ts - {lookback} \
             WHERE x.experiment = $1 AND NOT x.multiple AND e.event IN ({}){picked} \
             ORDER BY e.ts",
            DB::text_list(&names)
        );
        let rows: Vec<(String, String, f64, Millis)> = params
            .bind(sqlx::query_as(&sql))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(user, event, value, ts)| UserTrack {
                user,
                event,
                value,
                ts,
            })
            .collect())
    }

    async fn tracks_since_exposure(
        &self,
        experiment: &str,
        event: &str,
        filter: &UserFilter,
    ) -> Result<Vec<TrackFact>, StoreError> {
        let mut params = Params::starting_with(experiment);
        let event = params.next(event);
        let picked = picked_users::<DB>(filter, &mut params);
        let sql = format!(
            "SELECT e.user_id, e.ts, e.value FROM exposures x JOIN events e \
             ON e.kind = 'track' AND e.user_id = x.user_id AND e.ts >= x.first_ts \
             WHERE x.experiment = $1 AND NOT x.multiple AND e.event = {event}{picked} \
             ORDER BY e.ts"
        );
        let rows: Vec<(String, Millis, f64)> = params
            .bind(sqlx::query_as(&sql))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(user, ts, value)| TrackFact { user, ts, value })
            .collect())
    }

    async fn segment_totals(
        &self,
        experiment: &str,
        dimensions: &[String],
        event: &str,
        filter: &UserFilter,
    ) -> Result<Vec<(Vec<Option<String>>, VariantTotals)>, StoreError> {
        let mut params = Params::starting_with(experiment);
        let groups = grouping::<DB>(dimensions, &mut params);
        let picked = picked_users::<DB>(filter, &mut params);
        let users: Vec<(Option<String>, Option<String>, String, i64)> = params
            .bind(sqlx::query_as(&format!(
                "SELECT {groups}, x.variant, COUNT(*) FROM exposures x \
                 WHERE x.experiment = $1 AND NOT x.multiple{picked} GROUP BY 1, 2, x.variant"
            )))
            .fetch_all(&self.reader)
            .await?;
        let mut params = Params::starting_with(experiment);
        let event = params.next(event);
        let groups = grouping::<DB>(dimensions, &mut params);
        let picked = picked_users::<DB>(filter, &mut params);
        type SumsRow = (
            Option<String>,
            Option<String>,
            String,
            i64,
            f64,
            f64,
            i64,
            i64,
        );
        let sums: Vec<SumsRow> = params
            .bind(sqlx::query_as(&format!(
                "SELECT {groups}, x.variant, COUNT(*), SUM(m.total), SUM(m.total * m.total), \
                 CAST(SUM(m.count) AS BIGINT), CAST(SUM(m.count * m.count) AS BIGINT) \
                 FROM user_metrics m JOIN exposures x \
                 ON x.experiment = m.experiment AND x.user_id = m.user_id \
                 WHERE m.experiment = $1 AND m.event = {event} AND NOT x.multiple{picked} \
                 GROUP BY 1, 2, x.variant"
            )))
            .fetch_all(&self.reader)
            .await?;
        let segment = |first: &Option<String>, second: &Option<String>| {
            [first, second]
                .into_iter()
                .take(dimensions.len())
                .cloned()
                .collect::<Vec<_>>()
        };
        Ok(users
            .into_iter()
            .map(|(first, second, variant, n)| {
                let mut totals = VariantTotals {
                    variant,
                    users: n as u64,
                    ..VariantTotals::default()
                };
                let found = sums
                    .iter()
                    .find(|s| s.0 == first && s.1 == second && s.2 == totals.variant);
                if let Some((_, _, _, converted, sum, sum_sq, count, count_sq)) = found {
                    totals.converted = *converted as u64;
                    totals.value_sum = *sum;
                    totals.value_sum_squares = *sum_sq;
                    totals.count_sum = *count as f64;
                    totals.count_sum_squares = *count_sq as f64;
                }
                (segment(&first, &second), totals)
            })
            .collect())
    }

    async fn insert_webhook(
        &self,
        hook: &NewWebhook,
        audit: AuditOf<'_>,
    ) -> Result<Webhook, StoreError> {
        let created_at = crate::domain::now_millis();
        let mut tx = self.writer.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhooks (url, secret, events, format, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&hook.url)
        .bind(hook.secret.as_deref().unwrap_or(NO_SECRET))
        .bind(encode(&hook.events))
        .bind(hook.format.as_str())
        .bind(created_at)
        .fetch_one(&mut *tx)
        .await?;
        Self::insert_audit(&mut tx, &audit(id)).await?;
        tx.commit().await?;
        Ok(Webhook {
            id,
            url: hook.url.clone(),
            secret: hook.secret.clone(),
            events: hook.events.clone(),
            format: hook.format,
            created_at,
        })
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let rows: Vec<WebhookRow> = sqlx::query_as(
            "SELECT id, url, secret, events, format, created_at FROM webhooks ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(webhook).collect()
    }

    async fn delete_webhook(&self, id: i64, audit: &NewAuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted: Option<i64> =
            sqlx::query_scalar("DELETE FROM webhooks WHERE id = $1 RETURNING id")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if deleted.is_some() {
            Self::insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(deleted.is_some())
    }

    async fn webhook_deliveries(&self, id: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, webhook_id, event, payload, status, attempts, last_error, created_at \
             FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT 1000",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(delivery).collect())
    }

    async fn due_deliveries(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<(Delivery, Webhook)>, StoreError> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, webhook_id, event, payload, status, attempts, last_error, created_at \
             FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let hooks = self.list_webhooks().await?;
        Ok(rows
            .into_iter()
            .map(delivery)
            .filter_map(|d| {
                let hook = hooks.iter().find(|h| h.id == d.webhook_id)?.clone();
                Some((d, hook))
            })
            .collect())
    }

    async fn record_delivery(&self, id: i64, outcome: &DeliveryOutcome) -> Result<(), StoreError> {
        let query = match outcome {
            DeliveryOutcome::Delivered { at } => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, \
                 delivered_at = $1, last_error = NULL WHERE id = $2",
            )
            .bind(*at),
            DeliveryOutcome::Retry {
                error,
                next_attempt_at,
            } => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $1, \
                 next_attempt_at = $2 WHERE id = $3",
            )
            .bind(error.clone())
            .bind(*next_attempt_at),
            DeliveryOutcome::GaveUp { error } => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1, \
                 last_error = $1 WHERE id = $2",
            )
            .bind(error.clone()),
        };
        query.bind(id).execute(&self.writer).await?;
        Ok(())
    }

    async fn kept_values(
        &self,
        experiment: &str,
        dimension: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut params = Params::starting_with(experiment);
        let key = params.next(&DB::dimension_key(dimension));
        let value = DB::dimension_value("x.dimensions", &key);
        let rows: Vec<(String, i64)> = params
            .bind(sqlx::query_as(&format!(
                "SELECT {value}, COUNT(*) FROM exposures x \
                 WHERE x.experiment = $1 AND {value} IS NOT NULL \
                 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {limit}"
            )))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(|(value, _)| value).collect())
    }
}

const API_KEY_COLUMNS: &str = "id, name, role, environment, created_at, revoked_at";
type ApiKeyRow = (i64, String, String, Option<String>, Millis, Option<Millis>);

/// `(experiment, variant, event, converted, Σvalue, Σvalue², Σcount, Σcount²)`.
type SumsRow = (String, String, String, i64, f64, f64, i64, i64);

/// What [`Store::running_totals`] assembles its answer from, read from the running
/// totals or, under a filter, from per-user rows.
struct TotalsRows {
    /// `(experiment, variant, users)`, users exposed to one variant.
    users: Vec<(String, String, i64)>,
    /// `(experiment, users exposed to several variants)`.
    multiple: Vec<(String, i64)>,
    sums: Vec<SumsRow>,
    /// Per experiment, its shaped metrics' totals as of now.
    paired: HashMap<String, ShapedTotals>,
}

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
    /// The rows of [`Store::running_totals`] for every user: the running totals of
    /// the experiments `keys` (a JSON list) for the events `names`.
    async fn running_rows(&self, keys: &str, names: &str) -> Result<TotalsRows, StoreError> {
        let list = |param: &str| DB::text_list(param);
        let users: Vec<(String, String, i64)> = sqlx::query_as(&format!(
            "SELECT experiment, variant, users FROM variant_users \
             WHERE experiment IN ({}) AND users > 0 ORDER BY experiment, variant",
            list("$1")
        ))
        .bind(keys)
        .fetch_all(&self.reader)
        .await?;
        let multiple: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT experiment, users FROM experiment_multiple_exposures WHERE experiment IN ({})",
            list("$1")
        ))
        .bind(keys)
        .fetch_all(&self.reader)
        .await?;
        let sums: Vec<SumsRow> = sqlx::query_as(&format!(
            "SELECT experiment, variant, event, converted, value_sum, value_sum_squares, \
             count_sum, count_sum_squares FROM variant_totals \
             WHERE experiment IN ({}) AND event IN ({})",
            list("$1"),
            list("$2")
        ))
        .bind(keys)
        .bind(names)
        .fetch_all(&self.reader)
        .await?;
        let now = crate::domain::now_millis();
        let mut conn = self.reader.acquire().await?;
        let paired = Self::read_paired(&mut conn, keys, HourRange::ALL, now).await?;
        Ok(TotalsRows {
            users,
            multiple,
            sums,
            paired,
        })
    }

    /// The rows of [`Store::running_totals`] over the users a filter picks, from
    /// per-user rows.
    async fn filtered_rows(
        &self,
        keys: &str,
        names: &str,
        filter: &UserFilter,
    ) -> Result<TotalsRows, StoreError> {
        let list = |param: &str| DB::text_list(param);
        let mut params = Params::starting_with(keys);
        let picked = picked_users::<DB>(filter, &mut params);
        let counts: Vec<(String, String, bool, i64)> = params
            .bind(sqlx::query_as(&format!(
                "SELECT x.experiment, x.variant, x.multiple, COUNT(*) FROM exposures x \
                 WHERE x.experiment IN ({}){picked} \
                 GROUP BY x.experiment, x.variant, x.multiple ORDER BY x.experiment, x.variant",
                list("$1")
            )))
            .fetch_all(&self.reader)
            .await?;
        let mut params = Params::starting_with(keys);
        params.next(names);
        let picked = picked_users::<DB>(filter, &mut params);
        let sums: Vec<SumsRow> = params
            .bind(sqlx::query_as(&format!(
                "SELECT x.experiment, x.variant, m.event, COUNT(*), SUM(m.total), \
                 SUM(m.total * m.total), CAST(SUM(m.count) AS BIGINT), \
                 CAST(SUM(m.count * m.count) AS BIGINT) \
                 FROM user_metrics m JOIN exposures x \
                 ON x.experiment = m.experiment AND x.user_id = m.user_id \
                 WHERE x.experiment IN ({}) AND m.event IN ({}) AND NOT x.multiple{picked} \
                 GROUP BY x.experiment, x.variant, m.event",
                list("$1"),
                list("$2")
            )))
            .fetch_all(&self.reader)
            .await?;
        let experiments: Vec<String> = decode(keys)?;
        let experiments: Vec<&str> = experiments.iter().map(String::as_str).collect();
        let mut conn = self.reader.acquire().await?;
        let now = crate::domain::now_millis();
        let paired = Self::filtered_paired_of(&mut conn, &experiments, filter, now).await?;
        let mut users = Vec::new();
        let mut multiple: Vec<(String, i64)> = Vec::new();
        for (experiment, variant, several, n) in counts {
            if several {
                match multiple.iter_mut().find(|(e, _)| *e == experiment) {
                    Some((_, total)) => *total += n,
                    None => multiple.push((experiment, n)),
                }
            } else {
                users.push((experiment, variant, n));
            }
        }
        Ok(TotalsRows {
            users,
            multiple,
            sums,
            paired,
        })
    }

    /// Who was exposed, counted over the users a filter picks (from per-user rows).
    async fn filtered_exposures(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<ExposureSummary, StoreError> {
        let mut params = Params::starting_with(experiment);
        let picked = picked_users::<DB>(filter, &mut params);
        let counts: Vec<(String, bool, i64)> = params
            .bind(sqlx::query_as(&format!(
                "SELECT x.variant, x.multiple, COUNT(*) FROM exposures x \
                 WHERE x.experiment = $1{picked} GROUP BY x.variant, x.multiple ORDER BY x.variant"
            )))
            .fetch_all(&self.reader)
            .await?;
        let mut summary = ExposureSummary::default();
        for (variant, multiple, n) in counts {
            if multiple {
                summary.multiple_exposures += n as u64;
            } else {
                summary.users.push((variant, n as u64));
            }
        }
        Ok(summary)
    }
}

/// The text parameters of a statement built at run time, numbered in order.
struct Params(Vec<String>);

impl Params {
    /// Parameters whose `$1` is `first`.
    fn starting_with(first: &str) -> Self {
        Params(vec![first.to_owned()])
    }

    /// Adds a parameter; returns its placeholder.
    fn next(&mut self, value: &str) -> String {
        self.0.push(value.to_owned());
        format!("${}", self.0.len())
    }

    fn bind<'q, DB, O>(
        self,
        mut query: sqlx::query::QueryAs<'q, DB, O, DB::Arguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, DB, O, DB::Arguments<'q>>
    where
        DB: Database,
        String: Encode<'q, DB> + Type<DB>,
    {
        for value in self.0 {
            query = query.bind(value);
        }
        query
    }

    /// [`Params::bind`] for a query read row by row (a varying number of columns).
    fn bind_query<'q, DB>(
        self,
        mut query: sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
    ) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
    where
        DB: Database,
        String: Encode<'q, DB> + Type<DB>,
    {
        for value in self.0 {
            query = query.bind(value);
        }
        query
    }
}

/// The conditions on the exposures `x` that keep the users a filter picks, each
/// beginning with ` AND` (none for everyone). Times are integers we made, so they
/// are written inline; names and values are parameters.
fn picked_users<DB: Dialect>(filter: &UserFilter, params: &mut Params) -> String {
    let mut conditions = String::new();
    if let Some(from) = filter.from {
        conditions.push_str(&format!(" AND x.first_ts >= {from}"));
    }
    if let Some(to) = filter.to {
        conditions.push_str(&format!(" AND x.first_ts < {to}"));
    }
    for (dimension, values) in &filter.segments {
        let key = params.next(&DB::dimension_key(dimension));
        let value = DB::dimension_value("x.dimensions", &key);
        let listed: Vec<String> = values.iter().map(|v| params.next(v)).collect();
        conditions.push_str(&format!(" AND {value} IN ({})", listed.join(", ")));
    }
    conditions
}

/// Two grouping columns: the values of up to two kept dimensions, NULL for the
/// ones not asked for.
fn grouping<DB: Dialect>(dimensions: &[String], params: &mut Params) -> String {
    group_columns::<DB>(dimensions, params).join(", ")
}

/// The two grouping columns of [`grouping`], over the exposure `x`.
fn group_columns<DB: Dialect>(dimensions: &[String], params: &mut Params) -> [String; 2] {
    let mut column = |dimension: Option<&String>| match dimension {
        Some(dimension) => {
            let key = params.next(&DB::dimension_key(dimension));
            DB::dimension_value("x.dimensions", &key)
        }
        None => "CAST(NULL AS TEXT)".to_owned(),
    };
    [column(dimensions.first()), column(dimensions.get(1))]
}

fn api_key(row: ApiKeyRow) -> Result<ApiKey, StoreError> {
    let (id, name, role, environment, created_at, revoked_at) = row;
    Ok(ApiKey {
        id,
        name,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        environment,
        created_at,
        revoked_at,
    })
}

/// The stored `secret` of a webhook without one (see the webhook_formats migration).
const NO_SECRET: &str = "";

type WebhookRow = (i64, String, String, String, String, Millis);

fn webhook(row: WebhookRow) -> Result<Webhook, StoreError> {
    let (id, url, secret, events, format, created_at) = row;
    Ok(Webhook {
        id,
        url,
        secret: Some(secret).filter(|secret| secret != NO_SECRET),
        events: decode(&events)?,
        format: WebhookFormat::parse(&format)
            .ok_or_else(|| StoreError::Corrupt(format!("webhook {id}: format {format:?}")))?,
        created_at,
    })
}

type DeliveryRow = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Millis,
);

fn delivery(row: DeliveryRow) -> Delivery {
    let (id, webhook_id, event, payload, status, attempts, last_error, created_at) = row;
    Delivery {
        id,
        webhook_id,
        event,
        payload,
        status,
        attempts,
        last_error,
        created_at,
    }
}

const AUDIT_COLUMNS: &str =
    "id, experiment, subject_kind, actor, actor_kind, action, before, after, evidence, at";

type AuditRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Millis,
);

fn audit_entry(row: AuditRow) -> Result<AuditEntry, StoreError> {
    let (id, subject, subject_kind, actor, actor_kind, action, before, after, evidence, at) = row;
    let actor_kind = ActorKind::parse(&actor_kind).ok_or_else(|| {
        StoreError::Corrupt(format!("audit entry {id}: actor kind {actor_kind:?}"))
    })?;
    let experiment = AuditSubject::parse(&subject_kind, &subject)
        .and_then(|s| s.experiment().map(str::to_owned));
    Ok(AuditEntry {
        id,
        experiment,
        subject_kind,
        subject,
        actor,
        actor_kind,
        action,
        before: before.as_deref().map(decode).transpose()?,
        after: after.as_deref().map(decode).transpose()?,
        evidence: evidence.as_deref().map(decode).transpose()?,
        at: format_millis(at),
    })
}

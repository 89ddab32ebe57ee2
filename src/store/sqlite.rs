//! The embedded default: SQLite in WAL mode. Writes go through a single connection
//! (SQLite has one writer at a time, and a single writer avoids lock-upgrade
//! deadlocks between deferred transactions); reads use a small pool of their own.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::{ExposureSummary, IngestOutcome, RulesetSource, Store, StoreError, VariantTotals};
use crate::domain::{
    format_millis, ApiKey, AuditEntry, Event, EventKind, Experiment, Metric, Millis, NewApiKey,
    NewAuditEntry, Role,
};

/// Rows per multi-row statement: large enough to amortise the per-statement cost,
/// small enough to stay far below SQLite's bound-parameter limit.
const ROWS_PER_STATEMENT: usize = 250;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens the database at `url` (`sqlite://PATH`), creating and migrating it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we acknowledge it, even on power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            // 64 MiB of page cache per connection (the default is 2 MiB): ingestion
            // touches index pages all over the event and exposure tables.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(StoreError::Migrate)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(value: &T) -> String {
    // Serialising our own plain data types cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

async fn bump_ruleset_version(tx: &mut Transaction<'_, Sqlite>) -> Result<u64, StoreError> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE ruleset_state SET version = version + 1 WHERE id = 1 RETURNING version",
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(version as u64)
}

async fn insert_audit(
    tx: &mut Transaction<'_, Sqlite>,
    audit: &NewAuditEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (experiment, actor, action, before, after, at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&audit.experiment)
    .bind(&audit.actor)
    .bind(&audit.action)
    .bind(audit.before.as_ref().map(encode))
    .bind(audit.after.as_ref().map(encode))
    .bind(audit.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `(?, ?), (?, ?)` for `rows` rows of `columns` parameters.
fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_metric(&self, metric: &Metric) -> Result<(), StoreError> {
        let result =
            sqlx::query("INSERT INTO metrics (key, definition, created_at) VALUES (?, ?, ?)")
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
        let row: Option<String> =
            sqlx::query_scalar("SELECT definition FROM metrics WHERE key = ?")
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
        let inserted = sqlx::query(
            "INSERT INTO experiments (key, status, revision, definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(experiment.key())
        .bind(experiment.status.as_str())
        .bind(experiment.revision as i64)
        .bind(encode(experiment))
        .bind(experiment.created_at)
        .bind(experiment.updated_at)
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            return Err(if is_unique_violation(&err) {
                StoreError::AlreadyExists(format!("experiment {:?}", experiment.key()))
            } else {
                err.into()
            });
        }
        insert_audit(&mut tx, audit).await?;
        let version = bump_ruleset_version(&mut tx).await?;
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
        let updated = sqlx::query(
            "UPDATE experiments SET status = ?, revision = ?, definition = ?, updated_at = ? WHERE key = ? AND revision = ?",
        )
        .bind(experiment.status.as_str())
        .bind(experiment.revision as i64)
        .bind(encode(experiment))
        .bind(experiment.updated_at)
        .bind(experiment.key())
        .bind(expected_revision as i64)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "experiment {:?}",
                experiment.key()
            )));
        }
        insert_audit(&mut tx, audit).await?;
        let version = bump_ruleset_version(&mut tx).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn get_experiment(&self, key: &str) -> Result<Option<Experiment>, StoreError> {
        let row: Option<String> =
            sqlx::query_scalar("SELECT definition FROM experiments WHERE key = ?")
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

    async fn ruleset_source(&self) -> Result<RulesetSource, StoreError> {
        let mut tx = self.reader.begin().await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM ruleset_state WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT definition FROM experiments WHERE status <> 'draft' ORDER BY key",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RulesetSource {
            version: version as u64,
            experiments: rows.iter().map(|r| decode(r)).collect::<Result<_, _>>()?,
        })
    }

    async fn audit_log(&self, experiment: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, experiment, actor, action, before, after, at FROM audit_log WHERE experiment = ? ORDER BY id",
        )
        .bind(experiment)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let before: Option<String> = row.try_get("before")?;
                let after: Option<String> = row.try_get("after")?;
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    experiment: row.try_get("experiment")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    before: before.as_deref().map(decode).transpose()?,
                    after: after.as_deref().map(decode).transpose()?,
                    at: format_millis(row.try_get("at")?),
                })
            })
            .collect()
    }

    async fn insert_api_key(&self, key: &NewApiKey) -> Result<ApiKey, StoreError> {
        let created_at = crate::domain::now_millis();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (name, role, environment, key_hash, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.environment)
        .bind(&key.hash)
        .bind(created_at)
        .fetch_one(&self.writer)
        .await?;
        Ok(ApiKey {
            id,
            name: key.name.clone(),
            role: key.role,
            environment: key.environment.clone(),
            created_at,
        })
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, role, environment, created_at FROM api_keys WHERE key_hash = ?",
        )
        .bind(key_hash)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        Ok(Some(ApiKey {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
            environment: row.try_get("environment")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    async fn ingest(&self, batches: &[&[Event]]) -> Result<Vec<IngestOutcome>, StoreError> {
        let events: Vec<&Event> = batches.iter().flat_map(|batch| batch.iter()).collect();
        if events.is_empty() {
            return Ok(vec![IngestOutcome::default(); batches.len()]);
        }
        let mut tx = self.writer.begin().await?;
        let is_new = insert_raw_events(&mut tx, &events).await?;
        let fresh: Vec<&Event> = events
            .iter()
            .zip(&is_new)
            .filter_map(|(event, new)| new.then_some(*event))
            .collect();
        add_track_events(&mut tx, &fresh).await?;
        record_exposures(&mut tx, &fresh).await?;
        tx.commit().await?;
        Ok(outcomes_per_batch(batches, &is_new))
    }

    async fn exposure_summary(&self, experiment: &str) -> Result<ExposureSummary, StoreError> {
        let rows: Vec<(String, bool, i64)> = sqlx::query_as(
            "SELECT variant, multiple, COUNT(*) FROM exposures WHERE experiment = ? GROUP BY variant, multiple ORDER BY variant",
        )
        .bind(experiment)
        .fetch_all(&self.reader)
        .await?;
        let mut summary = ExposureSummary::default();
        for (variant, multiple, users) in rows {
            if multiple {
                summary.multiple_exposures += users as u64;
            } else {
                summary.users.push((variant, users as u64));
            }
        }
        Ok(summary)
    }

    async fn variant_totals(
        &self,
        experiment: &str,
        event: &str,
    ) -> Result<Vec<VariantTotals>, StoreError> {
        let rows = sqlx::query(
            "SELECT x.variant, COUNT(*) AS users, COUNT(m.count) AS converted, \
             COALESCE(SUM(m.total), 0.0) AS value_sum, COALESCE(SUM(m.total * m.total), 0.0) AS value_sq, \
             COALESCE(SUM(m.count), 0) AS count_sum, COALESCE(SUM(m.count * m.count), 0) AS count_sq \
             FROM exposures x LEFT JOIN user_metrics m \
             ON m.experiment = x.experiment AND m.user_id = x.user_id AND m.event = ? \
             WHERE x.experiment = ? AND x.multiple = 0 GROUP BY x.variant ORDER BY x.variant",
        )
        .bind(event)
        .bind(experiment)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(VariantTotals {
                    variant: row.try_get("variant")?,
                    users: row.try_get::<i64, _>("users")? as u64,
                    converted: row.try_get::<i64, _>("converted")? as u64,
                    value_sum: row.try_get("value_sum")?,
                    value_sum_squares: row.try_get("value_sq")?,
                    count_sum: row.try_get::<i64, _>("count_sum")? as f64,
                    count_sum_squares: row.try_get::<i64, _>("count_sq")? as f64,
                })
            })
            .collect()
    }
}

/// Splits per-event freshness into each batch's accepted and duplicate counts.
fn outcomes_per_batch(batches: &[&[Event]], is_new: &[bool]) -> Vec<IngestOutcome> {
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

/// Appends the events, skipping ids stored before; says which of them were new.
/// Looking up the (usually absent) known ids first is cheaper than having SQLite
/// return every inserted id; the single writer connection makes it race-free.
async fn insert_raw_events(
    tx: &mut Transaction<'_, Sqlite>,
    events: &[&Event],
) -> Result<Vec<bool>, StoreError> {
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
    let is_new: Vec<bool> = events.iter().map(|e| known.insert(e.id.clone())).collect();
    let fresh: Vec<&Event> = events
        .iter()
        .zip(&is_new)
        .filter_map(|(event, new)| new.then_some(*event))
        .collect();
    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO events (id, kind, user_id, experiment, variant, event, value, ts) VALUES {}",
            placeholders(chunk.len(), 8)
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            let (kind, experiment, variant, name, value) = match &event.kind {
                EventKind::Exposure {
                    experiment,
                    variant,
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
    Ok(is_new)
}

/// Adds new track events to the aggregates of every experiment the user had already
/// been exposed to at the event's time.
async fn add_track_events(
    tx: &mut Transaction<'_, Sqlite>,
    fresh: &[&Event],
) -> Result<(), StoreError> {
    let tracks: Vec<(&Event, &str, f64)> = fresh
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Track { event, value } => Some((*e, event.as_str(), *value)),
            EventKind::Exposure { .. } => None,
        })
        .collect();
    for chunk in tracks.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "WITH t (user_id, event, value, ts) AS (VALUES {}) \
             INSERT INTO user_metrics (experiment, user_id, event, total, count) \
             SELECT x.experiment, t.user_id, t.event, SUM(t.value), COUNT(*) \
             FROM t JOIN exposures x ON x.user_id = t.user_id AND x.first_ts <= t.ts \
             WHERE true GROUP BY x.experiment, t.user_id, t.event \
             ON CONFLICT (experiment, user_id, event) DO UPDATE SET \
             total = total + excluded.total, count = count + excluded.count",
            placeholders(chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for (event, name, value) in chunk {
            query = query
                .bind(&event.user)
                .bind(*name)
                .bind(*value)
                .bind(event.ts);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A user's first exposure to an experiment: folded over the batch, then merged
/// with what was stored.
#[derive(Clone, PartialEq)]
struct FirstExposure {
    variant: String,
    first_ts: Millis,
    multiple: bool,
}

impl FirstExposure {
    /// Folds in a later-read exposure (from the batch or the table).
    fn merge(&mut self, other: &FirstExposure) {
        self.multiple |= other.multiple || other.variant != self.variant;
        if other.first_ts < self.first_ts {
            self.first_ts = other.first_ts;
            self.variant.clone_from(&other.variant);
        }
    }
}

type UserKey = (String, String);

/// What a batch's exposures change: new first exposures, first exposures that moved
/// earlier (their aggregates start at another time), and flag-only changes.
#[derive(Default)]
struct ExposureChanges {
    writes: Vec<(UserKey, FirstExposure)>,
    new: Vec<(UserKey, Millis)>,
    moved: Vec<(UserKey, Millis)>,
}

/// Records first exposures and rebuilds the aggregates of users whose first
/// exposure is new or moved. Exposures that change nothing (a user seen again later
/// in the same variant) cost one lookup and no write.
async fn record_exposures(
    tx: &mut Transaction<'_, Sqlite>,
    fresh: &[&Event],
) -> Result<(), StoreError> {
    let batch = fold_exposures(fresh);
    if batch.is_empty() {
        return Ok(());
    }
    let stored = stored_exposures(tx, &batch).await?;
    let changes = diff_exposures(batch, &stored);
    write_exposures(tx, &changes.writes).await?;
    delete_user_metrics(tx, &changes.moved).await?;
    let mut rebuild = changes.new;
    rebuild.extend(changes.moved);
    rebuild_user_metrics(tx, &rebuild).await
}

fn fold_exposures(fresh: &[&Event]) -> HashMap<UserKey, FirstExposure> {
    let mut firsts: HashMap<UserKey, FirstExposure> = HashMap::new();
    for event in fresh {
        let EventKind::Exposure {
            experiment,
            variant,
        } = &event.kind
        else {
            continue;
        };
        let seen = FirstExposure {
            variant: variant.clone(),
            first_ts: event.ts,
            multiple: false,
        };
        firsts
            .entry((experiment.clone(), event.user.clone()))
            .and_modify(|first| first.merge(&seen))
            .or_insert(seen);
    }
    firsts
}

async fn stored_exposures(
    tx: &mut Transaction<'_, Sqlite>,
    batch: &HashMap<UserKey, FirstExposure>,
) -> Result<HashMap<UserKey, FirstExposure>, StoreError> {
    let keys: Vec<&UserKey> = batch.keys().collect();
    let mut stored = HashMap::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT experiment, user_id, variant, first_ts, multiple FROM exposures \
             WHERE (experiment, user_id) IN (VALUES {})",
            placeholders(chunk.len(), 2)
        );
        let mut query = sqlx::query_as::<_, (String, String, String, Millis, bool)>(&sql);
        for (experiment, user) in chunk {
            query = query.bind(experiment.as_str()).bind(user.as_str());
        }
        for (experiment, user, variant, first_ts, multiple) in query.fetch_all(&mut **tx).await? {
            let first = FirstExposure {
                variant,
                first_ts,
                multiple,
            };
            stored.insert((experiment, user), first);
        }
    }
    Ok(stored)
}

fn diff_exposures(
    batch: HashMap<UserKey, FirstExposure>,
    stored: &HashMap<UserKey, FirstExposure>,
) -> ExposureChanges {
    let mut changes = ExposureChanges::default();
    for (key, seen) in batch {
        match stored.get(&key) {
            None => {
                changes.new.push((key.clone(), seen.first_ts));
                changes.writes.push((key, seen));
            }
            Some(before) => {
                let mut after = before.clone();
                after.merge(&seen);
                if after.first_ts != before.first_ts {
                    changes.moved.push((key.clone(), after.first_ts));
                }
                if after != *before {
                    changes.writes.push((key, after));
                }
            }
        }
    }
    changes
}

async fn write_exposures(
    tx: &mut Transaction<'_, Sqlite>,
    writes: &[(UserKey, FirstExposure)],
) -> Result<(), StoreError> {
    for chunk in writes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO exposures (experiment, user_id, variant, first_ts, multiple) VALUES {} \
             ON CONFLICT (experiment, user_id) DO UPDATE SET variant = excluded.variant, \
             first_ts = excluded.first_ts, multiple = excluded.multiple",
            placeholders(chunk.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for ((experiment, user), first) in chunk {
            query = query
                .bind(experiment.as_str())
                .bind(user.as_str())
                .bind(first.variant.as_str())
                .bind(first.first_ts)
                .bind(first.multiple);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn delete_user_metrics(
    tx: &mut Transaction<'_, Sqlite>,
    users: &[(UserKey, Millis)],
) -> Result<(), StoreError> {
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "DELETE FROM user_metrics WHERE (experiment, user_id) IN (VALUES {})",
            placeholders(chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for ((experiment, user), _) in chunk {
            query = query.bind(experiment.as_str()).bind(user.as_str());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Computes the aggregates of each `(experiment, user)` from the raw track events at
/// or after the user's first exposure. Callers clear old aggregates first.
async fn rebuild_user_metrics(
    tx: &mut Transaction<'_, Sqlite>,
    users: &[(UserKey, Millis)],
) -> Result<(), StoreError> {
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "WITH c (experiment, user_id, first_ts) AS (VALUES {}) \
             INSERT INTO user_metrics (experiment, user_id, event, total, count) \
             SELECT c.experiment, c.user_id, e.event, SUM(e.value), COUNT(*) \
             FROM c JOIN events e ON e.kind = 'track' AND e.user_id = c.user_id AND e.ts >= c.first_ts \
             WHERE true GROUP BY c.experiment, c.user_id, e.event",
            placeholders(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for ((experiment, user), first_ts) in chunk {
            query = query
                .bind(experiment.as_str())
                .bind(user.as_str())
                .bind(*first_ts);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

//! The embedded default: SQLite in WAL mode. Writes go through a single connection
//! (SQLite has one writer at a time, and a single writer avoids lock-upgrade
//! deadlocks between deferred transactions); reads use a small pool of their own.

mod ingest;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::{
    ExposedUser, ExposureSummary, IngestOutcome, RulesetSource, Store, StoreError, TrackFact,
    VariantTotals,
};
use crate::domain::webhook::{Delivery, DeliveryOutcome, NewWebhook, Webhook};
use crate::domain::{
    format_millis, ApiKey, AuditEntry, Event, Experiment, Metric, Millis, NewApiKey, NewAuditEntry,
    Role,
};

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
            .pragma("temp_store", "memory")
            // Checkpoint every ~40 MiB of WAL instead of 4 MiB: a page changed by many
            // batches is copied back once per checkpoint, not once per batch.
            .pragma("wal_autocheckpoint", "10000");
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
        "INSERT INTO audit_log (experiment, actor, action, before, after, evidence, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&audit.experiment)
    .bind(&audit.actor)
    .bind(&audit.action)
    .bind(audit.before.as_ref().map(encode))
    .bind(audit.after.as_ref().map(encode))
    .bind(audit.evidence.as_ref().map(encode))
    .bind(audit.at)
    .execute(&mut **tx)
    .await?;
    // Announce the change to subscribed webhooks in the same transaction.
    sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, event, payload, status, attempts, next_attempt_at, created_at) \
         SELECT w.id, ?, ?, 'pending', 0, ?, ? FROM webhooks w \
         WHERE EXISTS (SELECT 1 FROM json_each(w.events) j WHERE j.value = ? OR j.value = '*')",
    )
    .bind(&audit.action)
    .bind(crate::domain::webhook::payload(audit))
    .bind(audit.at)
    .bind(audit.at)
    .bind(&audit.action)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
            "SELECT id, experiment, actor, action, before, after, evidence, at FROM audit_log WHERE experiment = ? ORDER BY id",
        )
        .bind(experiment)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let before: Option<String> = row.try_get("before")?;
                let after: Option<String> = row.try_get("after")?;
                let evidence: Option<String> = row.try_get("evidence")?;
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    experiment: row.try_get("experiment")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    before: before.as_deref().map(decode).transpose()?,
                    after: after.as_deref().map(decode).transpose()?,
                    evidence: evidence.as_deref().map(decode).transpose()?,
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
        let is_new = ingest::store_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(ingest::outcomes_per_batch(batches, &is_new))
    }

    async fn exposure_summary(&self, experiment: &str) -> Result<ExposureSummary, StoreError> {
        let users: Vec<(String, i64)> = sqlx::query_as(
            "SELECT variant, users FROM variant_users WHERE experiment = ? AND users > 0 ORDER BY variant",
        )
        .bind(experiment)
        .fetch_all(&self.reader)
        .await?;
        let multiple: Option<i64> = sqlx::query_scalar(
            "SELECT users FROM experiment_multiple_exposures WHERE experiment = ?",
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
    ) -> Result<Vec<VariantTotals>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.variant, u.users, COALESCE(t.converted, 0) AS converted, \
             COALESCE(t.value_sum, 0.0) AS value_sum, COALESCE(t.value_sum_squares, 0.0) AS value_sq, \
             COALESCE(t.count_sum, 0) AS count_sum, COALESCE(t.count_sum_squares, 0) AS count_sq \
             FROM variant_users u LEFT JOIN variant_totals t \
             ON t.experiment = u.experiment AND t.variant = u.variant AND t.event = ? \
             WHERE u.experiment = ? AND u.users > 0 ORDER BY u.variant",
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

    async fn exposed_users(&self, experiment: &str) -> Result<Vec<ExposedUser>, StoreError> {
        let rows: Vec<(String, String, Millis)> = sqlx::query_as(
            "SELECT user_id, variant, first_ts FROM exposures \
             WHERE experiment = ? AND multiple = 0 ORDER BY first_ts",
        )
        .bind(experiment)
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

    async fn tracks_since_exposure(
        &self,
        experiment: &str,
        event: &str,
    ) -> Result<Vec<TrackFact>, StoreError> {
        let rows: Vec<(String, Millis, f64)> = sqlx::query_as(
            "SELECT e.user_id, e.ts, e.value FROM exposures x JOIN events e \
             ON e.kind = 'track' AND e.user_id = x.user_id AND e.ts >= x.first_ts \
             WHERE x.experiment = ? AND x.multiple = 0 AND e.event = ? ORDER BY e.ts",
        )
        .bind(experiment)
        .bind(event)
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
        dimension: &str,
        event: &str,
    ) -> Result<Vec<(Option<String>, VariantTotals)>, StoreError> {
        let path = format!("$.\"{dimension}\"");
        let users: Vec<(Option<String>, String, i64)> = sqlx::query_as(
            "SELECT CAST(json_extract(dimensions, ?) AS TEXT) AS value, variant, COUNT(*) \
             FROM exposures WHERE experiment = ? AND multiple = 0 GROUP BY value, variant",
        )
        .bind(&path)
        .bind(experiment)
        .fetch_all(&self.reader)
        .await?;
        type SegmentRow = (Option<String>, String, i64, f64, f64, i64, i64);
        let sums: Vec<SegmentRow> = sqlx::query_as(
            "SELECT CAST(json_extract(x.dimensions, ?) AS TEXT) AS value, x.variant, COUNT(*), \
             SUM(m.total), SUM(m.total * m.total), SUM(m.count), SUM(m.count * m.count) \
             FROM user_metrics m JOIN exposures x \
             ON x.experiment = m.experiment AND x.user_id = m.user_id \
             WHERE m.experiment = ? AND m.event = ? AND x.multiple = 0 GROUP BY value, x.variant",
        )
        .bind(&path)
        .bind(experiment)
        .bind(event)
        .fetch_all(&self.reader)
        .await?;
        Ok(users
            .into_iter()
            .map(|(value, variant, n)| {
                let mut totals = VariantTotals {
                    variant,
                    users: n as u64,
                    ..VariantTotals::default()
                };
                let found = sums.iter().find(|s| s.0 == value && s.1 == totals.variant);
                if let Some((_, _, converted, sum, sum_sq, count, count_sq)) = found {
                    totals.converted = *converted as u64;
                    totals.value_sum = *sum;
                    totals.value_sum_squares = *sum_sq;
                    totals.count_sum = *count as f64;
                    totals.count_sum_squares = *count_sq as f64;
                }
                (value, totals)
            })
            .collect())
    }

    async fn insert_webhook(&self, hook: &NewWebhook) -> Result<Webhook, StoreError> {
        let created_at = crate::domain::now_millis();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhooks (url, secret, events, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(&hook.url)
        .bind(&hook.secret)
        .bind(encode(&hook.events))
        .bind(created_at)
        .fetch_one(&self.writer)
        .await?;
        Ok(Webhook {
            id,
            url: hook.url.clone(),
            secret: hook.secret.clone(),
            events: hook.events.clone(),
            created_at,
        })
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let rows: Vec<WebhookRow> =
            sqlx::query_as("SELECT id, url, secret, events, created_at FROM webhooks ORDER BY id")
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter().map(webhook).collect()
    }

    async fn delete_webhook(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn webhook_deliveries(&self, id: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, webhook_id, event, payload, status, attempts, last_error, created_at \
             FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT 1000",
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
             FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? \
             ORDER BY next_attempt_at, id LIMIT ?",
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
                 delivered_at = ?, last_error = NULL WHERE id = ?",
            )
            .bind(*at),
            DeliveryOutcome::Retry {
                error,
                next_attempt_at,
            } => sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?, \
                 next_attempt_at = ? WHERE id = ?",
            )
            .bind(error.clone())
            .bind(*next_attempt_at),
            DeliveryOutcome::GaveUp { error } => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1, \
                 last_error = ? WHERE id = ?",
            )
            .bind(error.clone()),
        };
        query.bind(id).execute(&self.writer).await?;
        Ok(())
    }
}

type WebhookRow = (i64, String, String, String, Millis);

fn webhook((id, url, secret, events, created_at): WebhookRow) -> Result<Webhook, StoreError> {
    Ok(Webhook {
        id,
        url,
        secret,
        events: decode(&events)?,
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

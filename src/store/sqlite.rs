//! The embedded default: SQLite in WAL mode. Writes go through a single connection
//! (SQLite has one writer at a time, and a single writer avoids lock-upgrade
//! deadlocks between deferred transactions); reads use a small pool of their own.
//! One process owns the file, so it always leads and hears of no other server.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Sqlite;

use super::fold::{FirstExposure, UserKey, UserMetric};
use super::sql::{Dialect, ExposureRow, MetricRow, RawEvent, SqlStore, TrackRow};
use super::{ChangeFeed, StoreError};
use crate::domain::{Event, Millis};

/// Rows per multi-row statement: large enough to amortise the per-statement cost,
/// small enough to stay far below SQLite's bound-parameter limit.
const ROWS_PER_STATEMENT: usize = 1000;

/// Opens the database at `url` (`sqlite://PATH`), creating and migrating it.
pub(super) async fn open(url: &str) -> Result<SqlStore<Sqlite>, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a commit is on disk before we acknowledge it, even on power loss.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .pragma("temp_store", "memory")
        // Checkpoint every ~40 MiB of WAL instead of 4 MiB: a page changed by many
        // batches is copied back once per checkpoint, not once per batch.
        .pragma("wal_autocheckpoint", "10000");
    // The writer gets 64 MiB of page cache (the default is 2 MiB): ingestion
    // touches index pages all over the event and exposure tables. Readers look at
    // running totals and definitions: 8 MiB each keeps the process's ceiling known.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone().pragma("cache_size", "-65536"))
        .await?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&writer)
        .await
        .map_err(StoreError::Migrate)?;
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options.read_only(true).pragma("cache_size", "-8192"))
        .await?;
    Ok(SqlStore::new(writer, reader, ()))
}

#[async_trait]
impl Dialect for Sqlite {
    type Coordination = ();
    const INGEST_WRITERS: usize = 1;

    fn dimension_value(column: &str, key: &str) -> String {
        // json_extract gives booleans as 1 and 0; name them as PostgreSQL does.
        format!(
            "CASE json_type({column}, {key}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
             ELSE CAST(json_extract({column}, {key}) AS TEXT) END"
        )
    }

    fn dimension_key(dimension: &str) -> String {
        format!("$.\"{dimension}\"")
    }

    fn text_list(param: &str) -> String {
        format!("SELECT value FROM json_each({param})")
    }

    fn value_rows(rows: usize, columns: usize) -> String {
        value_rows(rows, columns)
    }

    async fn prepare_ingestion(_: &mut SqliteConnection, _: &[&str]) -> Result<(), StoreError> {
        // The single writer connection already serialises ingestion.
        Ok(())
    }

    async fn lock_out_ingestion(_: &mut SqliteConnection) -> Result<(), StoreError> {
        Ok(())
    }

    async fn append_events(
        conn: &mut SqliteConnection,
        events: &[&Event],
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO events (id, kind, user_id, experiment, variant, event, value, ts) VALUES {}",
                value_rows(chunk.len(), 8)
            );
            let mut query = sqlx::query(&sql);
            for event in chunk {
                let row = RawEvent::of(event);
                query = query
                    .bind(event.id.as_str())
                    .bind(row.kind)
                    .bind(event.user.as_str())
                    .bind(row.experiment)
                    .bind(row.variant)
                    .bind(row.event)
                    .bind(row.value)
                    .bind(event.ts);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn known_ids(
        conn: &mut SqliteConnection,
        ids: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        let mut known = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 4) {
            let sql = format!(
                "SELECT id FROM events WHERE id IN ({})",
                parameters(chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            known.extend(query.fetch_all(&mut *conn).await?);
        }
        Ok(known)
    }

    async fn exposures_of(
        conn: &mut SqliteConnection,
        users: &[&str],
    ) -> Result<Vec<ExposureRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in users.chunks(ROWS_PER_STATEMENT * 4) {
            let sql = format!(
                "SELECT experiment, user_id, variant, first_ts, multiple, dimensions FROM exposures WHERE user_id IN ({})",
                parameters(chunk.len())
            );
            let mut query = sqlx::query_as::<_, ExposureRow>(&sql);
            for user in chunk {
                query = query.bind(*user);
            }
            rows.extend(query.fetch_all(&mut *conn).await?);
        }
        Ok(rows)
    }

    async fn metrics_of(
        conn: &mut SqliteConnection,
        keys: &[&UserKey],
    ) -> Result<Vec<MetricRow>, StoreError> {
        let mut rows = Vec::new();
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
            rows.extend(query.fetch_all(&mut *conn).await?);
        }
        Ok(rows)
    }

    async fn tracks_since(
        conn: &mut SqliteConnection,
        since: &[(&str, Millis)],
    ) -> Result<Vec<TrackRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in since.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "WITH u (user_id, since) AS (VALUES {}) \
                 SELECT e.user_id, e.event, e.value, e.ts FROM u JOIN events e \
                 ON e.kind = 'track' AND e.user_id = u.user_id AND e.ts >= u.since",
                value_rows(chunk.len(), 2)
            );
            let mut query = sqlx::query_as::<_, TrackRow>(&sql);
            for (user, first_ts) in chunk {
                query = query.bind(*user).bind(*first_ts);
            }
            rows.extend(query.fetch_all(&mut *conn).await?);
        }
        Ok(rows)
    }

    async fn upsert_exposures(
        conn: &mut SqliteConnection,
        rows: &[(&UserKey, &FirstExposure)],
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
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
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn upsert_metrics(
        conn: &mut SqliteConnection,
        rows: &[(UserKey, String, UserMetric)],
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
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
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn announce_ruleset(_: &mut SqliteConnection, _: u64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn lead(_: &()) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn changes(_: &()) -> Result<Option<ChangeFeed>, StoreError> {
        Ok(None)
    }
}

/// `(?, ?), (?, ?)`: the VALUES rows of a multi-row statement, `columns` parameters
/// each. Anonymous parameters: numbered ones have names, and binding looks each name
/// up in a list, quadratic in the thousands of parameters of a bulk statement.
fn value_rows(rows: usize, columns: usize) -> String {
    let row = format!("({})", parameters(columns));
    vec![row; rows].join(", ")
}

/// `?, ?, ?`: the parameters of an `IN` list.
fn parameters(count: usize) -> String {
    vec!["?"; count].join(", ")
}

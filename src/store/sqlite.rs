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

use super::sql::{value_rows, Dialect, RawEvent, SqlStore};
use super::{ChangeFeed, StoreError};
use crate::domain::Event;

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
    Ok(SqlStore::new(writer, reader, ()))
}

#[async_trait]
impl Dialect for Sqlite {
    type Coordination = ();

    fn push_parameter(sql: &mut String, _: usize) {
        // Anonymous: a numbered parameter has a name, and binding looks each name up
        // in a list, which is quadratic in the thousands of parameters of a bulk
        // statement.
        sql.push('?');
    }

    fn dimension_value(column: &str) -> String {
        format!("CAST(json_extract({column}, $1) AS TEXT)")
    }

    fn dimension_key(dimension: &str) -> String {
        format!("$.\"{dimension}\"")
    }

    async fn lock_ingestion(_: &mut SqliteConnection) -> Result<(), StoreError> {
        // The single writer connection already serialises ingestion.
        Ok(())
    }

    async fn append_events(
        conn: &mut SqliteConnection,
        events: &[&Event],
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO events (id, kind, user_id, experiment, variant, event, value, ts) VALUES {}",
                value_rows::<Sqlite>(chunk.len(), 8)
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

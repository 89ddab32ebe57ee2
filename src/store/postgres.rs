//! PostgreSQL, for several servers sharing one database. Beyond the shared SQL it
//! appends events in bulk with `UNNEST`, serialises ingestion with a transaction
//! advisory lock, announces ruleset versions with `NOTIFY`, and elects the one server
//! that runs the guard loop, the scheduler and webhook delivery with a session
//! advisory lock held on a connection of its own.
//!
//! Lock keys and the channel name derive from the schema (`current_schema()`), so
//! deployments sharing a database in separate schemas (`options[search_path]=…` in
//! the URL) stay apart.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres};
use tokio::sync::{mpsc, Mutex};

use super::sql::{Dialect, RawEvent, SqlStore};
use super::{ChangeFeed, StoreError};
use crate::domain::Event;

const MAX_CONNECTIONS: u32 = 16;

/// The NOTIFY channel of this deployment's ruleset versions.
const CHANNEL: &str = "'sluice_ruleset_' || to_hex(hashtextextended(current_schema(), 1))";
/// Advisory-lock keys: ingestion (per transaction) and leadership (per session).
const INGEST_LOCK: &str = "hashtextextended(current_schema(), 2)";
const LEADER_LOCK: &str = "hashtextextended(current_schema(), 3)";

/// Keys and names that single out one deployment (one schema) in the database.
pub(crate) struct Coordination {
    options: PgConnectOptions,
    pool: PgPool,
    channel: String,
    /// The connection holding the leader lock, or waiting to take it.
    leadership: Mutex<Leadership>,
}

#[derive(Default)]
struct Leadership {
    connection: Option<PgConnection>,
    held: bool,
}

/// Opens the database at `url` (`postgres://…`) and migrates it.
pub(super) async fn open(url: &str) -> Result<SqlStore<Postgres>, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await?;
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .map_err(StoreError::Migrate)?;
    let channel: String = sqlx::query_scalar(&format!("SELECT {CHANNEL}"))
        .fetch_one(&pool)
        .await?;
    let coordination = Coordination {
        options,
        pool: pool.clone(),
        channel,
        leadership: Mutex::default(),
    };
    Ok(SqlStore::new(pool.clone(), pool, coordination))
}

#[async_trait]
impl Dialect for Postgres {
    type Coordination = Coordination;

    fn push_parameter(sql: &mut String, n: usize) {
        sql.push('$');
        sql.push_str(&n.to_string());
    }

    fn dimension_value(column: &str) -> String {
        format!("({column}::jsonb ->> $1)")
    }

    fn dimension_key(dimension: &str) -> String {
        dimension.to_owned()
    }

    async fn lock_ingestion(conn: &mut PgConnection) -> Result<(), StoreError> {
        // Ingestion reads a user's stored state, then writes what changed: two servers
        // folding the same user at once would both add to the running totals.
        sqlx::query(&format!("SELECT pg_advisory_xact_lock({INGEST_LOCK})"))
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn append_events(conn: &mut PgConnection, events: &[&Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows: Vec<RawEvent> = events.iter().map(|e| RawEvent::of(e)).collect();
        sqlx::query(
            "INSERT INTO events (id, kind, user_id, experiment, variant, event, value, ts) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::float8[], $8::int8[])",
        )
        .bind(events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.user.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.experiment).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.variant).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.value).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.ts).collect::<Vec<_>>())
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn announce_ruleset(conn: &mut PgConnection, version: u64) -> Result<(), StoreError> {
        // Delivered to listeners when the transaction commits, never before.
        sqlx::query(&format!("SELECT pg_notify({CHANNEL}, $1)"))
            .bind(version.to_string())
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn lead(coordination: &Coordination) -> Result<bool, StoreError> {
        let mut leadership = coordination.leadership.lock().await;
        let result = try_lead(coordination, &mut leadership).await;
        if result.is_err() {
            // The connection (and any lock it held) is gone; start afresh next time.
            *leadership = Leadership::default();
        }
        result
    }

    async fn changes(coordination: &Coordination) -> Result<Option<ChangeFeed>, StoreError> {
        let mut listener = PgListener::connect_with(&coordination.pool).await?;
        listener.listen(&coordination.channel).await?;
        let (sender, feed) = mpsc::channel(1);
        tokio::spawn(forward_notifications(listener, sender));
        Ok(Some(feed))
    }
}

async fn try_lead(
    coordination: &Coordination,
    leadership: &mut Leadership,
) -> Result<bool, StoreError> {
    let connection = match &mut leadership.connection {
        Some(connection) => connection,
        None => leadership
            .connection
            .insert(PgConnection::connect_with(&coordination.options).await?),
    };
    if leadership.held {
        // Proves the session, and with it the lock, is still alive.
        sqlx::query("SELECT 1").execute(&mut *connection).await?;
    } else {
        leadership.held =
            sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock({LEADER_LOCK})"))
                .fetch_one(&mut *connection)
                .await?;
    }
    Ok(leadership.held)
}

/// Wakes the server on every notification, and after a reconnect (notifications
/// sent while the listener was away are lost, so the server must re-read).
async fn forward_notifications(mut listener: PgListener, sender: mpsc::Sender<()>) {
    loop {
        match listener.try_recv().await {
            Ok(_) => {
                // A full channel already holds a wake-up; one is enough.
                if let Err(mpsc::error::TrySendError::Closed(())) = sender.try_send(()) {
                    return;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "ruleset change listener failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if sender.is_closed() {
            return;
        }
    }
}

//! PostgreSQL, for several servers sharing one database. Beyond the shared SQL it
//! reads and writes in bulk with `UNNEST` arrays, keeps concurrent ingestion
//! transactions off each other's users with advisory locks, announces ruleset versions with `NOTIFY`, and elects the one server
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

use super::fold::{FirstExposure, UserKey, UserMetric};
use super::sql::{Dialect, ExposureRow, MetricRow, RawEvent, SqlStore, TrackRow};
use super::{ChangeFeed, StoreError};
use crate::domain::{Event, Millis};

const MAX_CONNECTIONS: u32 = 16;
/// How long a leadership check may take before the session counts as lost.
const LEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The NOTIFY channel of this deployment's ruleset versions.
const CHANNEL: &str = "'sluice_ruleset_' || to_hex(hashtextextended(current_schema(), 1))";
/// Advisory locks: leadership (one per session), ingestion (per transaction:
/// shared by transactions that lock their users, each user a pair of integer keys,
/// and taken alone by one with too many users for that).
const LEADER_LOCK: &str = "hashtextextended(current_schema(), 3)";
const INGEST_LOCK: &str = "hashtextextended(current_schema(), 2)";
const USER_LOCKS: &str = "hashtext(current_schema())";
/// Users one transaction locks one by one at most. PostgreSQL's lock table is
/// shared by every server (by default 64 × max_connections entries): four writers'
/// worth per server must fit, a few servers over.
const MAX_USER_LOCKS: usize = 512;

fn user_lock_key(user: &str) -> i32 {
    let hash = user.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// Keys and names that single out one deployment (one schema) in the database.
pub(crate) struct Coordination {
    options: PgConnectOptions,
    pool: PgPool,
    channel: String,
    /// The connection holding the leader lock, or waiting to take it.
    leadership: Mutex<LeaderSession>,
}

#[derive(Default)]
struct LeaderSession {
    connection: Option<PgConnection>,
    held: bool,
}

/// Opens the database at `url` (`postgres://…`) and migrates it.
pub(super) async fn open(url: &str) -> Result<SqlStore<Postgres>, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    // One connection first: the pool retries until its timeout and then reports only
    // that it timed out, hiding why (refused, unknown host, bad password).
    PgConnection::connect_with(&options).await?.close().await?;
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
    const INGEST_WRITERS: usize = 4;

    fn dimension_value(column: &str, key: &str) -> String {
        format!("({column}::jsonb ->> {key})")
    }

    fn dimension_key(dimension: &str) -> String {
        dimension.to_owned()
    }

    fn text_list(param: &str) -> String {
        format!("SELECT json_array_elements_text(CAST({param} AS json))")
    }

    fn value_rows(rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|r| {
                let row: Vec<String> = (1..=columns)
                    .map(|c| format!("${}", r * columns + c))
                    .collect();
                format!("({})", row.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn prepare_ingestion(conn: &mut PgConnection, users: &[&str]) -> Result<(), StoreError> {
        // Ingestion reads a user's stored state, then writes what changed: two
        // transactions folding the same user at once would both add to the running
        // totals. Each locks its users (in one order, so they cannot deadlock) and
        // shares a lock that a transaction with too many users to lock one by one
        // takes alone instead.
        // Its reads all look rows up by key, one batch key at a time (the joins are
        // LATERAL and fenced with OFFSET 0). While a young table grows faster than
        // autovacuum analyses it, the planner believes it tiny and would rather scan
        // all of it; for this transaction, it may only walk the indexes by key.
        let mut keys: Vec<i32> = users.iter().map(|user| user_lock_key(user)).collect();
        keys.sort_unstable();
        keys.dedup();
        let one_by_one = keys.len() <= MAX_USER_LOCKS;
        let ingest_lock = if one_by_one {
            "pg_advisory_xact_lock_shared"
        } else {
            "pg_advisory_xact_lock"
        };
        sqlx::query(&format!(
            "SELECT set_config('enable_seqscan', 'off', true), \
             set_config('enable_bitmapscan', 'off', true), {ingest_lock}({INGEST_LOCK})"
        ))
        .execute(&mut *conn)
        .await?;
        if one_by_one {
            sqlx::query(&format!(
                "SELECT pg_advisory_xact_lock({USER_LOCKS}, key) FROM UNNEST($1::int4[]) AS k (key)"
            ))
            .bind(keys)
            .execute(conn)
            .await?;
        }
        Ok(())
    }

    async fn lock_out_ingestion(conn: &mut PgConnection) -> Result<(), StoreError> {
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

    async fn known_ids(conn: &mut PgConnection, ids: &[&str]) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM events WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(conn)
                .await?,
        )
    }

    async fn exposures_of(
        conn: &mut PgConnection,
        users: &[&str],
    ) -> Result<Vec<ExposureRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT experiment, user_id, variant, first_ts, multiple, dimensions \
             FROM exposures WHERE user_id = ANY($1)",
        )
        .bind(users)
        .fetch_all(conn)
        .await?)
    }

    async fn metrics_of(
        conn: &mut PgConnection,
        keys: &[&UserKey],
    ) -> Result<Vec<MetricRow>, StoreError> {
        let (experiments, users): (Vec<&str>, Vec<&str>) = keys
            .iter()
            .map(|(experiment, user)| (experiment.as_str(), user.as_str()))
            .unzip();
        Ok(sqlx::query_as(
            "SELECT m.experiment, m.user_id, m.event, m.total, m.count \
             FROM UNNEST($1::text[], $2::text[]) AS k (experiment, user_id) \
             CROSS JOIN LATERAL (SELECT * FROM user_metrics \
             WHERE experiment = k.experiment AND user_id = k.user_id OFFSET 0) m",
        )
        .bind(experiments)
        .bind(users)
        .fetch_all(conn)
        .await?)
    }

    async fn tracks_since(
        conn: &mut PgConnection,
        since: &[(&str, Millis)],
    ) -> Result<Vec<TrackRow>, StoreError> {
        let (users, times): (Vec<&str>, Vec<Millis>) = since.iter().copied().unzip();
        Ok(sqlx::query_as(
            "SELECT e.user_id, e.event, e.value, e.ts \
             FROM UNNEST($1::text[], $2::int8[]) AS u (user_id, since) \
             CROSS JOIN LATERAL (SELECT user_id, event, value, ts FROM events \
             WHERE kind = 'track' AND user_id = u.user_id AND ts >= u.since OFFSET 0) e",
        )
        .bind(users)
        .bind(times)
        .fetch_all(conn)
        .await?)
    }

    async fn upsert_exposures(
        conn: &mut PgConnection,
        rows: &[(&UserKey, &FirstExposure)],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO exposures (experiment, user_id, variant, first_ts, multiple, dimensions) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::bool[], $6::text[]) \
             ON CONFLICT (experiment, user_id) DO UPDATE SET variant = excluded.variant, \
             first_ts = excluded.first_ts, multiple = excluded.multiple, dimensions = excluded.dimensions",
        )
        .bind(rows.iter().map(|((e, _), _)| e.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|((_, u), _)| u.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, f)| f.variant.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, f)| f.first_ts).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, f)| f.multiple).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, f)| f.dimensions.as_deref()).collect::<Vec<_>>())
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn upsert_metrics(
        conn: &mut PgConnection,
        rows: &[(UserKey, String, UserMetric)],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_metrics (experiment, user_id, event, total, count) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::int8[]) \
             ON CONFLICT (experiment, user_id, event) DO UPDATE SET \
             total = excluded.total, count = excluded.count",
        )
        .bind(
            rows.iter()
                .map(|((e, _), _, _)| e.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|((_, u), _, _)| u.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|(_, event, _)| event.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|(_, _, m)| m.total).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, _, m)| m.count).collect::<Vec<_>>())
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
        let result = tokio::time::timeout(LEAD_TIMEOUT, try_lead(coordination, &mut leadership))
            .await
            .unwrap_or_else(|_| Err(StoreError::Database(sqlx::Error::PoolTimedOut)));
        if result.is_err() {
            // The connection (and any lock it held) is gone; start afresh next time.
            *leadership = LeaderSession::default();
        }
        result
    }

    async fn changes(coordination: &Coordination) -> Result<Option<ChangeFeed>, StoreError> {
        let mut listener = PgListener::connect_with(&coordination.pool).await?;
        listener.listen(&coordination.channel).await?;
        let (sender, feed) = mpsc::channel(1);
        // The server loaded its ruleset before it listened: re-read once now.
        let _ = sender.try_send(());
        tokio::spawn(forward_notifications(listener, sender));
        Ok(Some(feed))
    }
}

async fn try_lead(
    coordination: &Coordination,
    leadership: &mut LeaderSession,
) -> Result<bool, StoreError> {
    let connection = match &mut leadership.connection {
        Some(connection) => connection,
        None => leadership
            .connection
            .insert(leader_connection(&coordination.options).await?),
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

/// The connection that holds the leader lock. The server drops a session whose
/// client stopped answering within about a minute (not the OS's two hours), which
/// frees the lock for another server.
async fn leader_connection(options: &PgConnectOptions) -> Result<PgConnection, StoreError> {
    let options = options.clone().options([
        ("tcp_keepalives_idle", "20"),
        ("tcp_keepalives_interval", "10"),
        ("tcp_keepalives_count", "3"),
    ]);
    Ok(PgConnection::connect_with(&options).await?)
}

/// Wakes the server on every notification, and whenever the listener lost its
/// connection (notifications sent meanwhile are lost, so the server must re-read;
/// a re-read while the database is still away fails and the next wake-up retries).
/// Ends when the server stops listening.
async fn forward_notifications(mut listener: PgListener, sender: mpsc::Sender<()>) {
    loop {
        let received = tokio::select! {
            received = listener.try_recv() => received,
            () = sender.closed() => return,
        };
        if let Err(err) = &received {
            tracing::warn!(error = %err, "ruleset change listener failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // A full channel already holds a wake-up; one is enough.
        if let Err(mpsc::error::TrySendError::Closed(())) = sender.try_send(()) {
            return;
        }
    }
}

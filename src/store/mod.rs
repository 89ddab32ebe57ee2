//! Persistence behind one trait, [`Store`], with a file per backend. Handlers and
//! the control layer only ever see `Arc<dyn Store>`.

mod fold;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::event::Expiry;
use crate::domain::shaped::{Backfill, BackfillStep};
pub use crate::domain::totals::{
    ExposedUser, ExposureSummary, PairedTotals, RunningTotals, SegmentMetrics, ShapedTotals,
    TrackFact, UserFilter, UserTrack, VariantTotals,
};
use crate::domain::webhook::{Delivery, DeliveryOutcome, NewWebhook, Webhook};
use crate::domain::{
    ApiKey, AuditEntry, Environment, Event, Experiment, Metric, Millis, NewApiKey, NewAuditEntry,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The row changed since it was read (optimistic concurrency).
    #[error("{0} was modified concurrently; read it again and retry")]
    Conflict(String),
    /// The row to change does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The database URL names no backend we support.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    UnsupportedUrl(String),
    /// Stored data could not be decoded: a bug or a hand-edited row.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Migrations failed to apply.
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// What kind of failure a [`StoreError`] is, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// A unique key is taken.
    AlreadyExists,
    /// Optimistic concurrency: read again and retry.
    Conflict,
    NotFound,
    /// The database could not be reached; the same call may succeed later.
    Unavailable,
    /// The URL or the schema is wrong: nothing will work until it is fixed.
    Configuration,
    /// Stored data could not be read back.
    Corrupt,
    /// The database refused a statement.
    Internal,
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::AlreadyExists(_) => StoreErrorKind::AlreadyExists,
            StoreError::Conflict(_) => StoreErrorKind::Conflict,
            StoreError::NotFound(_) => StoreErrorKind::NotFound,
            StoreError::UnsupportedUrl(_) | StoreError::Migrate(_) => StoreErrorKind::Configuration,
            StoreError::Corrupt(_) => StoreErrorKind::Corrupt,
            StoreError::Database(_) if self.is_unavailable() => StoreErrorKind::Unavailable,
            StoreError::Database(_) => StoreErrorKind::Internal,
        }
    }

    /// Whether the database could not be reached (as opposed to refusing a
    /// statement): the request may succeed if retried later.
    fn is_unavailable(&self) -> bool {
        let StoreError::Database(err) = self else {
            return false;
        };
        match err {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
            // PostgreSQL shutting down, restarting or out of connections (class 57
            // "operator intervention", 08 "connection exception", 53300).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("57P") || code.starts_with("08") || code == "53300"
            }),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Database(err)
    }
}

/// The outcome of storing a batch of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events stored for the first time.
    pub accepted: u64,
    /// Events whose id was stored before; they change nothing.
    pub duplicates: u64,
}

/// The served experiments changed after a ruleset version, as of the current one.
#[derive(Debug, Clone)]
pub struct RulesetChanges {
    pub version: u64,
    /// When the version was last bumped.
    pub updated_at: Millis,
    /// Every served experiment last changed after the version asked about (all
    /// of them when none was), in no particular order. Served experiments are never
    /// removed nor made drafts again, so these and what the caller held make up
    /// the whole ruleset.
    pub changed: Vec<Experiment>,
}

/// Makes the audit entry of a new row once its id is known, inside the transaction
/// that stores both.
pub type AuditOf<'a> = &'a (dyn Fn(i64) -> NewAuditEntry + Sync);

/// Wakes a server when another server sharing the database committed a change to
/// the ruleset (or when the feed reconnected and changes may have been missed).
pub type ChangeFeed = tokio::sync::mpsc::Receiver<()>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether this server should run the once-per-deployment work (the guard loop,
    /// the ramp scheduler, webhook delivery). Exactly one of the servers sharing a
    /// database leads at a time; a server that loses its connection loses the lead.
    async fn lead(&self) -> Result<bool, StoreError>;
    /// How many ingestion transactions may run at once (one where the database has
    /// a single writer).
    fn ingest_writers(&self) -> usize;
    /// Changes committed by other servers; `None` where no other server can exist.
    async fn changes(&self) -> Result<Option<ChangeFeed>, StoreError>;

    async fn insert_metric(&self, metric: &Metric) -> Result<(), StoreError>;
    async fn list_metrics(&self) -> Result<Vec<Metric>, StoreError>;
    async fn get_metric(&self, key: &str) -> Result<Option<Metric>, StoreError>;

    /// Inserts a new experiment with its audit entry; returns the ruleset version
    /// after it (a draft is not served: it leaves the version as it was).
    async fn insert_experiment(
        &self,
        experiment: &Experiment,
        audit: &NewAuditEntry,
    ) -> Result<u64, StoreError>;
    /// Replaces an experiment if it is still at `expected_revision`, with its audit
    /// entry, in one transaction; returns the ruleset version after it (a draft
    /// leaves it as it was).
    async fn update_experiment(
        &self,
        experiment: &Experiment,
        expected_revision: u64,
        audit: &NewAuditEntry,
    ) -> Result<u64, StoreError>;
    async fn get_experiment(&self, key: &str) -> Result<Option<Experiment>, StoreError>;
    async fn list_experiments(&self) -> Result<Vec<Experiment>, StoreError>;
    /// What changed in the ruleset after version `since` (everything for `None`):
    /// a change to one experiment reads and decodes that one alone.
    async fn ruleset_changes(&self, since: Option<u64>) -> Result<RulesetChanges, StoreError>;
    /// The current ruleset version alone: a cheap check before a re-read.
    async fn ruleset_version(&self) -> Result<u64, StoreError>;
    /// An experiment's audit entries, oldest first.
    async fn audit_log(&self, experiment: &str) -> Result<Vec<AuditEntry>, StoreError>;
    /// The latest `limit` audit entries about the settings (API keys, webhooks,
    /// environments), newest first.
    async fn settings_audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    /// Stores a new environment with its audit entry.
    async fn insert_environment(
        &self,
        environment: &Environment,
        audit: &NewAuditEntry,
    ) -> Result<(), StoreError>;
    /// Every environment, by key.
    async fn list_environments(&self) -> Result<Vec<Environment>, StoreError>;

    /// Stores a new key with the audit entry `audit` makes for its id, in one
    /// transaction.
    async fn insert_api_key(
        &self,
        key: &NewApiKey,
        audit: AuditOf<'_>,
    ) -> Result<ApiKey, StoreError>;
    /// The key with this hash, unless it was revoked.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Every key, revoked ones too, oldest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key at `audit.at` with its audit entry, and ends its dashboard
    /// sessions (a second revocation keeps the first time and writes no entry);
    /// false if there is no such key.
    async fn revoke_api_key(&self, id: i64, audit: &NewAuditEntry) -> Result<bool, StoreError>;

    /// Opens a dashboard session for a key (and drops the expired ones).
    async fn insert_session(
        &self,
        id_hash: &str,
        key_id: i64,
        created_at: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError>;
    /// The key of a session that has not expired at `now`, unless the key was
    /// revoked.
    async fn find_session(&self, id_hash: &str, now: Millis) -> Result<Option<ApiKey>, StoreError>;
    /// Ends a session (signing out); ending an unknown one is not an error.
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;

    /// Stores validated batches in one transaction and folds them into per-user
    /// aggregates; returns each batch's outcome only after commit. An id seen before
    /// (in an earlier batch or earlier in this one) is counted as a duplicate.
    async fn ingest(&self, batches: &[&[Event]]) -> Result<Vec<IngestOutcome>, StoreError>;

    /// The secret named `name`, made from `fresh` the first time it is asked for
    /// (by whichever server asks first).
    async fn server_secret(&self, name: &str, fresh: &str) -> Result<String, StoreError>;

    /// Deletes the raw events `expiry` names; aggregates and totals stay.
    async fn expire_events(&self, expiry: &Expiry) -> Result<(), StoreError>;

    /// Erases a user: their raw events, their per-user aggregates and their part
    /// of every running total, with the audit entry, in one transaction. Returns
    /// how many raw events were erased.
    async fn erase_user(&self, user: &str, audit: &NewAuditEntry) -> Result<u64, StoreError>;

    /// Who was exposed among the users `filter` picks: read from the running totals
    /// for everyone, from per-user rows otherwise.
    async fn exposure_summary(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<ExposureSummary, StoreError>;
    /// Per-variant totals of `event` over the users `filter` picks. For everyone
    /// they are read from the running totals: the cost grows with variants, not with
    /// users or events; a filter reads per-user rows.
    async fn variant_totals(
        &self,
        experiment: &str,
        event: &str,
        filter: &UserFilter,
    ) -> Result<Vec<VariantTotals>, StoreError>;

    /// The totals of several experiments at once, each for every one of `events`
    /// and for their shaped metrics, over the users `filter` picks, in the order of
    /// `experiments` (what [`Store::exposure_summary`], [`Store::variant_totals`] and
    /// [`Store::paired_totals`] say of each). A fixed number of statements whatever
    /// the number of experiments: for pages that summarise many at once. For everyone
    /// they come from the running totals; a filter reads per-user rows.
    async fn running_totals(
        &self,
        experiments: &[&str],
        events: &[&str],
        filter: &UserFilter,
    ) -> Result<Vec<RunningTotals>, StoreError>;

    /// Per shaped metric (see [`crate::domain::shaped`]), its per-variant totals over
    /// the users `filter` picks, as of now: users whose window has not closed are
    /// pending. For everyone, or users first exposed between whole hours, they are
    /// read from the running totals (kept per hour of first exposure); another
    /// filter reads per-user rows, once for all the metrics. With the rebuild in
    /// progress, if any.
    async fn paired_totals(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<ShapedTotals, StoreError>;

    /// The rebuild of an experiment's shaped metrics in progress, if any.
    async fn shaped_backfill(&self, experiment: &str) -> Result<Option<Backfill>, StoreError>;

    /// Rebuilds the next `users` users of the first rebuild of shaped metrics in
    /// progress from their raw events, in one transaction; `None` when none is.
    async fn backfill_shaped(&self, users: usize) -> Result<Option<BackfillStep>, StoreError>;

    /// Stores a webhook with the audit entry `audit` makes for its id.
    async fn insert_webhook(
        &self,
        hook: &NewWebhook,
        audit: AuditOf<'_>,
    ) -> Result<Webhook, StoreError>;
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// Deletes a webhook and its delivery log, with its audit entry; false if there
    /// was none.
    async fn delete_webhook(&self, id: i64, audit: &NewAuditEntry) -> Result<bool, StoreError>;
    /// A webhook's deliveries, newest first.
    async fn webhook_deliveries(&self, id: i64) -> Result<Vec<Delivery>, StoreError>;
    /// Pending deliveries due at `now`, oldest first, with their webhooks.
    async fn due_deliveries(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<(Delivery, Webhook)>, StoreError>;
    async fn record_delivery(&self, id: i64, outcome: &DeliveryOutcome) -> Result<(), StoreError>;

    /// Per combination of the values of `dimensions` (as [`Store::segment_totals`]),
    /// each shaped metric's paired totals over the users `filter` picks, as of now.
    async fn segment_paired(
        &self,
        experiment: &str,
        dimensions: &[String],
        filter: &UserFilter,
    ) -> Result<Vec<SegmentMetrics>, StoreError>;

    /// Per combination of the values of `dimensions` (at most two kept dimensions;
    /// `None`: not captured), per-variant totals of `event` over the users `filter`
    /// picks. For breakdowns and filters; the cost grows with users.
    async fn segment_totals(
        &self,
        experiment: &str,
        dimensions: &[String],
        event: &str,
        filter: &UserFilter,
    ) -> Result<Vec<(Vec<Option<String>>, VariantTotals)>, StoreError>;

    /// The users `filter` picks among those exposed to exactly one variant, with
    /// their first exposure, ordered by it. For time series; the cost grows with users.
    async fn exposed_users(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<Vec<ExposedUser>, StoreError>;
    /// Those users' track events named one of `events` from `lookback` before their
    /// first exposure on, ordered by time. For shaped metrics' time series.
    async fn tracks_around_exposure(
        &self,
        experiment: &str,
        events: &[&str],
        lookback: Millis,
        filter: &UserFilter,
    ) -> Result<Vec<UserTrack>, StoreError>;
    /// Those users' track events named `event` at or after their first exposure,
    /// ordered by time. For time series; the cost grows with those events.
    async fn tracks_since_exposure(
        &self,
        experiment: &str,
        event: &str,
        filter: &UserFilter,
    ) -> Result<Vec<TrackFact>, StoreError>;

    /// The values of a kept dimension among an experiment's exposed users, the most
    /// common first, at most `limit` (not captured is not a value). For the
    /// dashboard's segment filter; the cost grows with users.
    async fn kept_values(
        &self,
        experiment: &str,
        dimension: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
}

/// Opens (creating and migrating) the store a URL names.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

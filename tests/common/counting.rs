//! A [`Store`] that counts the calls one piece of work makes to it, for tests
//! that check how many times a page reaches the database. Every method is passed
//! on to the store it wraps; a call is counted, under its method's name, when it
//! is made inside [`calls_made_by`], so that the server's background tasks (the
//! webhook sender, the ruleset follower) do not count.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use sluice::domain::event::Expiry;
use sluice::domain::shaped::{Backfill, BackfillStep};
use sluice::domain::webhook::{Delivery, DeliveryOutcome, NewWebhook, Webhook};
use sluice::domain::{
    ApiKey, AuditEntry, Environment, Event, Experiment, Metric, Millis, NewApiKey, NewAuditEntry,
};
use sluice::store::{
    AuditOf, ChangeFeed, ExposedUser, ExposureSummary, IngestOutcome, RulesetChanges,
    RunningTotals, SegmentMetrics, ShapedTotals, Store, StoreError, TrackFact, UserFilter,
    UserTrack, VariantTotals,
};

pub type Calls = BTreeMap<&'static str, usize>;

tokio::task_local! {
    static CALLS: RefCell<Calls>;
}

/// Runs `work` and returns what it returns with the store calls it made, by
/// method name.
pub async fn calls_made_by<F: Future>(work: F) -> (F::Output, Calls) {
    CALLS
        .scope(RefCell::default(), async {
            let output = work.await;
            (output, CALLS.with(|calls| calls.take()))
        })
        .await
}

pub struct CountingStore {
    inner: Arc<dyn Store>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self { inner })
    }

    fn count(&self, method: &'static str) {
        let _ = CALLS.try_with(|calls| *calls.borrow_mut().entry(method).or_default() += 1);
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn lead(&self) -> Result<bool, StoreError> {
        self.count("lead");
        self.inner.lead().await
    }

    fn ingest_writers(&self) -> usize {
        self.count("ingest_writers");
        self.inner.ingest_writers()
    }

    async fn changes(&self) -> Result<Option<ChangeFeed>, StoreError> {
        self.count("changes");
        self.inner.changes().await
    }

    async fn insert_metric(&self, metric: &Metric) -> Result<(), StoreError> {
        self.count("insert_metric");
        self.inner.insert_metric(metric).await
    }

    async fn list_metrics(&self) -> Result<Vec<Metric>, StoreError> {
        self.count("list_metrics");
        self.inner.list_metrics().await
    }

    async fn get_metric(&self, key: &str) -> Result<Option<Metric>, StoreError> {
        self.count("get_metric");
        self.inner.get_metric(key).await
    }

    async fn insert_experiment(
        &self,
        experiment: &Experiment,
        audit: &NewAuditEntry,
    ) -> Result<u64, StoreError> {
        self.count("insert_experiment");
        self.inner.insert_experiment(experiment, audit).await
    }

    async fn update_experiment(
        &self,
        experiment: &Experiment,
        expected_revision: u64,
        audit: &NewAuditEntry,
    ) -> Result<u64, StoreError> {
        self.count("update_experiment");
        self.inner
            .update_experiment(experiment, expected_revision, audit)
            .await
    }

    async fn get_experiment(&self, key: &str) -> Result<Option<Experiment>, StoreError> {
        self.count("get_experiment");
        self.inner.get_experiment(key).await
    }

    async fn list_experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        self.count("list_experiments");
        self.inner.list_experiments().await
    }

    async fn ruleset_changes(&self, since: Option<u64>) -> Result<RulesetChanges, StoreError> {
        self.count("ruleset_changes");
        self.inner.ruleset_changes(since).await
    }

    async fn ruleset_version(&self) -> Result<u64, StoreError> {
        self.count("ruleset_version");
        self.inner.ruleset_version().await
    }

    async fn audit_log(&self, experiment: &str) -> Result<Vec<AuditEntry>, StoreError> {
        self.count("audit_log");
        self.inner.audit_log(experiment).await
    }

    async fn settings_audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.count("settings_audit_log");
        self.inner.settings_audit_log(limit).await
    }

    async fn insert_environment(
        &self,
        environment: &Environment,
        audit: &NewAuditEntry,
    ) -> Result<(), StoreError> {
        self.count("insert_environment");
        self.inner.insert_environment(environment, audit).await
    }

    async fn list_environments(&self) -> Result<Vec<Environment>, StoreError> {
        self.count("list_environments");
        self.inner.list_environments().await
    }

    async fn insert_api_key(
        &self,
        key: &NewApiKey,
        audit: AuditOf<'_>,
    ) -> Result<ApiKey, StoreError> {
        self.count("insert_api_key");
        self.inner.insert_api_key(key, audit).await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.count("find_api_key");
        self.inner.find_api_key(key_hash).await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.count("list_api_keys");
        self.inner.list_api_keys().await
    }

    async fn revoke_api_key(&self, id: i64, audit: &NewAuditEntry) -> Result<bool, StoreError> {
        self.count("revoke_api_key");
        self.inner.revoke_api_key(id, audit).await
    }

    async fn insert_session(
        &self,
        id_hash: &str,
        key_id: i64,
        created_at: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        self.count("insert_session");
        self.inner
            .insert_session(id_hash, key_id, created_at, expires_at)
            .await
    }

    async fn find_session(&self, id_hash: &str, now: Millis) -> Result<Option<ApiKey>, StoreError> {
        self.count("find_session");
        self.inner.find_session(id_hash, now).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.count("delete_session");
        self.inner.delete_session(id_hash).await
    }

    async fn ingest(&self, batches: &[&[Event]]) -> Result<Vec<IngestOutcome>, StoreError> {
        self.count("ingest");
        self.inner.ingest(batches).await
    }

    async fn server_secret(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
        self.count("server_secret");
        self.inner.server_secret(name, fresh).await
    }

    async fn expire_events(&self, expiry: &Expiry) -> Result<(), StoreError> {
        self.count("expire_events");
        self.inner.expire_events(expiry).await
    }

    async fn erase_user(&self, user: &str, audit: &NewAuditEntry) -> Result<u64, StoreError> {
        self.count("erase_user");
        self.inner.erase_user(user, audit).await
    }

    async fn exposure_summary(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<ExposureSummary, StoreError> {
        self.count("exposure_summary");
        self.inner.exposure_summary(experiment, filter).await
    }

    async fn variant_totals(
        &self,
        experiment: &str,
        event: &str,
        filter: &UserFilter,
    ) -> Result<Vec<VariantTotals>, StoreError> {
        self.count("variant_totals");
        self.inner.variant_totals(experiment, event, filter).await
    }

    async fn paired_totals(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<ShapedTotals, StoreError> {
        self.count("paired_totals");
        self.inner.paired_totals(experiment, filter).await
    }

    async fn segment_paired(
        &self,
        experiment: &str,
        dimensions: &[String],
        filter: &UserFilter,
    ) -> Result<Vec<SegmentMetrics>, StoreError> {
        self.count("segment_paired");
        self.inner
            .segment_paired(experiment, dimensions, filter)
            .await
    }

    async fn shaped_backfill(&self, experiment: &str) -> Result<Option<Backfill>, StoreError> {
        self.count("shaped_backfill");
        self.inner.shaped_backfill(experiment).await
    }

    async fn backfill_shaped(&self, users: usize) -> Result<Option<BackfillStep>, StoreError> {
        self.count("backfill_shaped");
        self.inner.backfill_shaped(users).await
    }

    async fn running_totals(
        &self,
        experiments: &[&str],
        events: &[&str],
        filter: &UserFilter,
    ) -> Result<Vec<RunningTotals>, StoreError> {
        self.count("running_totals");
        self.inner.running_totals(experiments, events, filter).await
    }

    async fn insert_webhook(
        &self,
        hook: &NewWebhook,
        audit: AuditOf<'_>,
    ) -> Result<Webhook, StoreError> {
        self.count("insert_webhook");
        self.inner.insert_webhook(hook, audit).await
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.count("list_webhooks");
        self.inner.list_webhooks().await
    }

    async fn delete_webhook(&self, id: i64, audit: &NewAuditEntry) -> Result<bool, StoreError> {
        self.count("delete_webhook");
        self.inner.delete_webhook(id, audit).await
    }

    async fn webhook_deliveries(&self, id: i64) -> Result<Vec<Delivery>, StoreError> {
        self.count("webhook_deliveries");
        self.inner.webhook_deliveries(id).await
    }

    async fn due_deliveries(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<(Delivery, Webhook)>, StoreError> {
        self.count("due_deliveries");
        self.inner.due_deliveries(now, limit).await
    }

    async fn record_delivery(&self, id: i64, outcome: &DeliveryOutcome) -> Result<(), StoreError> {
        self.count("record_delivery");
        self.inner.record_delivery(id, outcome).await
    }

    async fn segment_totals(
        &self,
        experiment: &str,
        dimensions: &[String],
        event: &str,
        filter: &UserFilter,
    ) -> Result<Vec<(Vec<Option<String>>, VariantTotals)>, StoreError> {
        self.count("segment_totals");
        self.inner
            .segment_totals(experiment, dimensions, event, filter)
            .await
    }

    async fn exposed_users(
        &self,
        experiment: &str,
        filter: &UserFilter,
    ) -> Result<Vec<ExposedUser>, StoreError> {
        self.count("exposed_users");
        self.inner.exposed_users(experiment, filter).await
    }

    async fn tracks_around_exposure(
        &self,
        experiment: &str,
        events: &[&str],
        lookback: Millis,
        filter: &UserFilter,
    ) -> Result<Vec<UserTrack>, StoreError> {
        self.count("tracks_around_exposure");
        self.inner
            .tracks_around_exposure(experiment, events, lookback, filter)
            .await
    }

    async fn tracks_since_exposure(
        &self,
        experiment: &str,
        event: &str,
        filter: &UserFilter,
    ) -> Result<Vec<TrackFact>, StoreError> {
        self.count("tracks_since_exposure");
        self.inner
            .tracks_since_exposure(experiment, event, filter)
            .await
    }

    async fn kept_values(
        &self,
        experiment: &str,
        dimension: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.count("kept_values");
        self.inner.kept_values(experiment, dimension, limit).await
    }
}

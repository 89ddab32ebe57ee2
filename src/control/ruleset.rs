//! The ruleset: a versioned, compiled snapshot of every served experiment per
//! environment, rebuilt after each committed change and swapped atomically.
//! Subscribers (SSE streams) are woken when their environment's snapshot changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use sluice_sdk::{CompiledRuleset, ExperimentRule, Ruleset};
use tokio::sync::{watch, Mutex, Notify};
use tokio_stream::wrappers::WatchStream;

use super::{growthbook, Control};
use crate::domain::environment::is_served_in;
use crate::domain::{hex, Experiment, Millis};
use crate::store::{ChangeFeed, RulesetSource, Store, StoreError};

/// How often a server re-reads the ruleset version even without a change
/// notification, on every backend: a notification lost while the database or the
/// listener was away, or a republish that failed, goes unseen no longer than this.
pub const REREAD_EVERY: Duration = Duration::from_secs(10);
/// How soon a republish that failed after a committed change is tried again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// What the server needs to know about a served experiment beyond evaluation.
#[derive(Debug, Clone)]
pub struct ServedExperiment {
    pub hash_attribute: String,
    pub variants: Vec<String>,
    /// The attributes kept at exposure for breakdowns.
    pub dimensions: Vec<String>,
    /// No exposure counts from before this time (the experiment's start).
    pub exposed_from: Millis,
}

/// What one environment is served, ready to evaluate and to serve. Its version is
/// that of the store when its content last changed: a change elsewhere leaves it
/// (and its ETag, and its stream) alone.
pub struct RulesetSnapshot {
    pub compiled: CompiledRuleset,
    /// The JSON body of `GET /sdk/v1/ruleset`, serialised once per version.
    pub body: Bytes,
    /// The `ETag` of both bodies, ready to send. It names the content alone, so
    /// that every server sharing a database gives the same ETag for the same
    /// experiments whenever it read them.
    pub etag: HeaderValue,
    pub served: HashMap<String, ServedExperiment>,
    /// The body of `GET /api/features/{key}`, for GrowthBook's SDKs.
    pub growthbook: Bytes,
}

impl RulesetSnapshot {
    pub fn version(&self) -> u64 {
        self.compiled.version()
    }

    fn rules(&self) -> &[ExperimentRule] {
        &self.compiled.ruleset().experiments
    }

    fn build(
        experiments: &[&Experiment],
        rules: Vec<ExperimentRule>,
        source: &RulesetSource,
    ) -> Self {
        let ruleset = Ruleset {
            version: source.version,
            experiments: rules,
        };
        let body = Bytes::from(serde_json::to_vec(&ruleset).unwrap_or_default());
        let content = serde_json::to_vec(&ruleset.experiments).unwrap_or_default();
        let etag = format!("\"{}\"", &hex(&Sha256::digest(&content))[..24]);
        let etag = HeaderValue::try_from(etag).unwrap_or(HeaderValue::from_static("\"\""));
        let served = experiments
            .iter()
            .zip(&ruleset.experiments)
            .map(|(experiment, rule)| {
                let served = ServedExperiment {
                    hash_attribute: rule.hash_attribute.clone(),
                    variants: rule.variants.iter().map(|v| v.key.clone()).collect(),
                    dimensions: rule.dimensions.clone(),
                    exposed_from: experiment.exposed_from(),
                };
                (rule.key.clone(), served)
            })
            .collect();
        let growthbook = serde_json::json!({
            "status": 200,
            "features": growthbook::features(&ruleset.experiments),
            "dateUpdated": growthbook::date_updated(source.updated_at),
        });
        let growthbook = Bytes::from(serde_json::to_vec(&growthbook).unwrap_or_default());
        let (compiled, warnings) = CompiledRuleset::compile(ruleset);
        for warning in warnings {
            tracing::warn!(%warning, "ruleset rule compiled to its safe default");
        }
        Self {
            compiled,
            body,
            etag,
            served,
            growthbook,
        }
    }
}

/// Every environment's ruleset at one version of the store.
pub struct Rulesets {
    version: u64,
    /// What an environment no experiment names sees: the experiments served
    /// everywhere.
    everywhere: Arc<RulesetSnapshot>,
    named: HashMap<String, Arc<RulesetSnapshot>>,
}

impl Rulesets {
    /// The store's ruleset version these were read at.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// What an SDK key of `environment` is served.
    pub fn environment(&self, environment: &str) -> &Arc<RulesetSnapshot> {
        self.named.get(environment).unwrap_or(&self.everywhere)
    }

    /// Builds each environment's snapshot, keeping `previous`'s where its
    /// experiments did not change.
    fn build(source: &RulesetSource, previous: Option<&Rulesets>) -> Self {
        let mut named: Vec<&str> = source
            .experiments
            .iter()
            .flat_map(|e| e.spec.environments.iter().map(String::as_str))
            .collect();
        named.sort_unstable();
        named.dedup();
        let snapshot = |environment: Option<&str>| {
            let experiments: Vec<&Experiment> = source
                .experiments
                .iter()
                .filter(|e| match environment {
                    None => e.spec.environments.is_empty(),
                    Some(env) => is_served_in(&e.spec.environments, env),
                })
                .collect();
            let rules: Vec<ExperimentRule> = experiments.iter().map(|e| e.to_rule()).collect();
            let before = previous.map(|p| match environment {
                None => &p.everywhere,
                Some(env) => p.environment(env),
            });
            match before {
                Some(before) if before.rules() == rules => before.clone(),
                _ => Arc::new(RulesetSnapshot::build(&experiments, rules, source)),
            }
        };
        Self {
            version: source.version,
            everywhere: snapshot(None),
            named: named
                .into_iter()
                .map(|env| (env.to_owned(), snapshot(Some(env))))
                .collect(),
        }
    }
}

pub struct RulesetHub {
    current: watch::Sender<Arc<Rulesets>>,
    refreshing: Mutex<()>,
    /// Wakes the follower to retry a republish that failed.
    retry: Arc<Notify>,
}

impl RulesetHub {
    /// Builds the hub from the store's current state.
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let source = store.ruleset_source().await?;
        let rulesets = Arc::new(Rulesets::build(&source, None));
        Ok(Self {
            current: watch::Sender::new(rulesets),
            refreshing: Mutex::new(()),
            retry: Arc::default(),
        })
    }

    pub fn current(&self) -> Arc<Rulesets> {
        self.current.borrow().clone()
    }

    /// What `environment` is served now, then each time it changes.
    pub fn follow(
        &self,
        environment: String,
    ) -> impl Stream<Item = Arc<RulesetSnapshot>> + Send + 'static {
        let mut last: Option<Arc<RulesetSnapshot>> = None;
        WatchStream::new(self.current.subscribe())
            .map(move |rulesets| rulesets.environment(&environment).clone())
            .filter(move |snapshot| {
                let changed = !last.as_ref().is_some_and(|l| Arc::ptr_eq(l, snapshot));
                last = Some(snapshot.clone());
                std::future::ready(changed)
            })
    }

    /// Asks the follower to try the republish again soon.
    pub(crate) fn retry_soon(&self) {
        self.retry.notify_one();
    }

    /// Re-reads the store and publishes its version if it is newer than ours.
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), StoreError> {
        // One rebuild at a time; a refresh that waited here usually finds the work done.
        let _guard = self.refreshing.lock().await;
        // Most refreshes (periodic ones, this server's own notifications) find the
        // version already published: one small read instead of every definition.
        let current = self.current();
        if store.ruleset_version().await? <= current.version() {
            return Ok(());
        }
        let source = store.ruleset_source().await?;
        let rulesets = Rulesets::build(&source, Some(&current));
        self.current.send_if_modified(|current| {
            let newer = rulesets.version() > current.version();
            if newer {
                *current = Arc::new(rulesets);
            }
            newer
        });
        Ok(())
    }
}

/// Keeps this server's ruleset current until it shuts down: re-reads when another
/// server sharing the database announces a change (`changes`, where servers can
/// share one), every [`REREAD_EVERY`] on every backend, and soon after a republish
/// that failed, so a committed change (a breaker's rollback!) always reaches the
/// SDKs.
pub async fn follow_changes(
    control: std::sync::Weak<Control>,
    mut changes: Option<ChangeFeed>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(retry) = control.upgrade().map(|c| c.rulesets().retry.clone()) else {
        return;
    };
    let mut reread = tokio::time::interval(REREAD_EVERY);
    loop {
        let announced = async {
            match changes.as_mut() {
                Some(feed) => feed.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        let woken = tokio::select! {
            woken = announced => woken,
            _ = reread.tick() => true,
            _ = retry.notified() => {
                tokio::time::sleep(RETRY_AFTER).await;
                true
            }
            _ = super::stopping(&mut shutdown) => false,
        };
        let Some(control) = control.upgrade().filter(|_| woken) else {
            return;
        };
        control.republish().await;
    }
}

//! The ruleset: a versioned, compiled snapshot of every served experiment, rebuilt
//! after each committed change and swapped atomically. Subscribers (SSE streams) are
//! woken on every new version.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_sdk::{CompiledRuleset, Ruleset};
use tokio::sync::{watch, Mutex, Notify};

use super::Control;
use crate::store::{ChangeFeed, Store, StoreError};

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
}

/// One ruleset version, ready to evaluate and to serve.
pub struct RulesetSnapshot {
    pub compiled: CompiledRuleset,
    /// The JSON body of `GET /sdk/v1/ruleset`, serialised once per version.
    pub body: Bytes,
    pub etag: String,
    pub served: HashMap<String, ServedExperiment>,
}

impl RulesetSnapshot {
    pub fn version(&self) -> u64 {
        self.compiled.version()
    }

    fn build(ruleset: Ruleset) -> Self {
        let body = Bytes::from(serde_json::to_vec(&ruleset).unwrap_or_default());
        let served = ruleset
            .experiments
            .iter()
            .map(|rule| {
                let served = ServedExperiment {
                    hash_attribute: rule.hash_attribute.clone(),
                    variants: rule.variants.iter().map(|v| v.key.clone()).collect(),
                    dimensions: rule.dimensions.clone(),
                };
                (rule.key.clone(), served)
            })
            .collect();
        let etag = format!("\"{}\"", ruleset.version);
        let (compiled, warnings) = CompiledRuleset::compile(ruleset);
        for warning in warnings {
            tracing::warn!(%warning, "ruleset rule compiled to its safe default");
        }
        Self {
            compiled,
            body,
            etag,
            served,
        }
    }
}

pub struct RulesetHub {
    current: watch::Sender<Arc<RulesetSnapshot>>,
    refreshing: Mutex<()>,
    /// Wakes the follower to retry a republish that failed.
    retry: Arc<Notify>,
}

impl RulesetHub {
    /// Builds the hub from the store's current state.
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let snapshot = Arc::new(read_snapshot(store).await?);
        Ok(Self {
            current: watch::Sender::new(snapshot),
            refreshing: Mutex::new(()),
            retry: Arc::default(),
        })
    }

    pub fn current(&self) -> Arc<RulesetSnapshot> {
        self.current.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<RulesetSnapshot>> {
        self.current.subscribe()
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
        if store.ruleset_version().await? <= self.current().version() {
            return Ok(());
        }
        let snapshot = read_snapshot(store).await?;
        self.current.send_if_modified(|current| {
            let newer = snapshot.version() > current.version();
            if newer {
                *current = Arc::new(snapshot);
            }
            newer
        });
        Ok(())
    }
}

async fn read_snapshot(store: &dyn Store) -> Result<RulesetSnapshot, StoreError> {
    let source = store.ruleset_source().await?;
    Ok(RulesetSnapshot::build(Ruleset {
        version: source.version,
        experiments: source.experiments.iter().map(|e| e.to_rule()).collect(),
    }))
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

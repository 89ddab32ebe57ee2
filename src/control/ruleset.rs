//! The ruleset: a versioned, compiled snapshot of every served experiment per
//! environment, rebuilt after each committed change and swapped atomically.
//! Subscribers (SSE streams) are woken when their environment's snapshot changes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use sluice_sdk::{CompiledRule, CompiledRuleset};
use tokio::sync::{watch, Mutex, Notify};
use tokio_stream::wrappers::WatchStream;

use super::{growthbook, Control};
use crate::domain::environment::is_served_in;
use crate::domain::{hex, Experiment, Millis};
use crate::store::{ChangeFeed, RulesetChanges, Store, StoreError};

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

/// One served experiment made ready once per revision: a change to one
/// experiment neither reads, converts nor serialises the others again.
struct PreparedRule {
    /// Where it is served (empty: everywhere).
    environments: Vec<String>,
    compiled: Arc<CompiledRule>,
    /// The rule as `GET /sdk/v1/ruleset` lists it.
    json: Vec<u8>,
    /// The SHA-256 of `json`: the ETag hashes these, not every body.
    digest: [u8; 32],
    /// Its entry in the `features` of `GET /api/features/{key}`: `"key":{…}`.
    feature: Vec<u8>,
    served: Arc<ServedExperiment>,
}

impl PreparedRule {
    fn new(experiment: &Experiment) -> Self {
        let rule = experiment.to_rule();
        let json = serde_json::to_vec(&rule).unwrap_or_default();
        let mut feature = serde_json::to_vec(&rule.key).unwrap_or_default();
        feature.push(b':');
        let _ = serde_json::to_writer(&mut feature, &growthbook::feature(&rule));
        let served = ServedExperiment {
            hash_attribute: rule.hash_attribute.clone(),
            variants: rule.variants.iter().map(|v| v.key.clone()).collect(),
            dimensions: rule.dimensions.clone(),
            exposed_from: experiment.exposed_from(),
        };
        Self {
            environments: experiment.spec.environments.clone(),
            compiled: Arc::new(CompiledRule::compile(rule)),
            digest: Sha256::digest(&json).into(),
            json,
            feature,
            served: Arc::new(served),
        }
    }

    fn key(&self) -> &str {
        &self.compiled.rule().key
    }
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
    pub served: HashMap<String, Arc<ServedExperiment>>,
    /// The body of `GET /api/features/{key}`, for GrowthBook's SDKs.
    pub growthbook: Bytes,
    /// What it was made of, in key order, to tell whether a new version
    /// changes it.
    prepared: Vec<Arc<PreparedRule>>,
}

impl RulesetSnapshot {
    pub fn version(&self) -> u64 {
        self.compiled.version()
    }

    fn build(prepared: Vec<Arc<PreparedRule>>, source: &RulesetChanges) -> Self {
        let rules: usize = prepared.iter().map(|p| p.json.len() + 1).sum();
        let mut body = Vec::with_capacity(rules + 48);
        let _ = write!(body, "{{\"version\":{},\"experiments\":[", source.version);
        let mut digests = Sha256::new();
        for (i, p) in prepared.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&p.json);
            digests.update(p.digest);
        }
        body.extend_from_slice(b"]}");
        let etag = format!("\"{}\"", &hex(&digests.finalize())[..24]);
        let etag = HeaderValue::try_from(etag).unwrap_or(HeaderValue::from_static("\"\""));
        let served = prepared
            .iter()
            .map(|p| (p.key().to_owned(), p.served.clone()))
            .collect();
        let rules = prepared.iter().map(|p| p.compiled.clone()).collect();
        let (compiled, warnings) = CompiledRuleset::assemble(source.version, rules);
        for warning in warnings {
            tracing::warn!(%warning, "ruleset rule compiled to its safe default");
        }
        Self {
            compiled,
            body: Bytes::from(body),
            etag,
            served,
            growthbook: Bytes::from(growthbook_body(&prepared, source.updated_at)),
            prepared,
        }
    }

    fn is_made_of(&self, prepared: &[Arc<PreparedRule>]) -> bool {
        self.prepared.len() == prepared.len()
            && self
                .prepared
                .iter()
                .zip(prepared)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

/// `{"dateUpdated":…,"features":{…},"status":200}`, the features in key order
/// as a JSON object writes them (`prepared` is in key order, and keys are
/// unique: they are the experiments').
fn growthbook_body(prepared: &[Arc<PreparedRule>], updated_at: Millis) -> Vec<u8> {
    let features: usize = prepared.iter().map(|p| p.feature.len() + 1).sum();
    let mut body = Vec::with_capacity(features + 64);
    body.extend_from_slice(b"{\"dateUpdated\":");
    let _ = serde_json::to_writer(&mut body, &growthbook::date_updated(updated_at));
    body.extend_from_slice(b",\"features\":{");
    for (i, p) in prepared.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&p.feature);
    }
    body.extend_from_slice(b"},\"status\":200}");
    body
}

/// Every environment's ruleset at one version of the store.
pub struct Rulesets {
    version: u64,
    /// What an environment no experiment names sees: the experiments served
    /// everywhere.
    everywhere: Arc<RulesetSnapshot>,
    named: HashMap<String, Arc<RulesetSnapshot>>,
    /// Every served experiment, by key, made ready at its current revision.
    prepared: BTreeMap<String, Arc<PreparedRule>>,
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

    /// `previous` with `changes` made: only the changed experiments are prepared
    /// again, and each environment keeps `previous`'s snapshot when what it
    /// serves did not change.
    fn build(changes: &RulesetChanges, previous: Option<&Rulesets>) -> Self {
        let mut prepared = previous.map(|p| p.prepared.clone()).unwrap_or_default();
        for experiment in &changes.changed {
            let rule = Arc::new(PreparedRule::new(experiment));
            prepared.insert(rule.key().to_owned(), rule);
        }
        let ordered: Vec<&Arc<PreparedRule>> = prepared.values().collect();
        let mut named: Vec<&str> = ordered
            .iter()
            .flat_map(|p| p.environments.iter().map(String::as_str))
            .collect();
        named.sort_unstable();
        named.dedup();
        let snapshot = |environment: Option<&str>| {
            let served: Vec<Arc<PreparedRule>> = ordered
                .iter()
                .filter(|p| match environment {
                    None => p.environments.is_empty(),
                    Some(env) => is_served_in(&p.environments, env),
                })
                .map(|p| Arc::clone(p))
                .collect();
            let before = previous.map(|p| match environment {
                None => &p.everywhere,
                Some(env) => p.environment(env),
            });
            match before {
                Some(before) if before.is_made_of(&served) => before.clone(),
                _ => Arc::new(RulesetSnapshot::build(served, changes)),
            }
        };
        let everywhere = snapshot(None);
        let named = named
            .into_iter()
            .map(|env| (env.to_owned(), snapshot(Some(env))))
            .collect();
        Self {
            version: changes.version,
            everywhere,
            named,
            prepared,
        }
    }

    /// Reads what changed after `previous` and builds on top of it.
    async fn read(store: &dyn Store, previous: Option<&Rulesets>) -> Result<Self, StoreError> {
        let changes = store
            .ruleset_changes(previous.map(Rulesets::version))
            .await?;
        Ok(Rulesets::build(&changes, previous))
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
        let rulesets = Arc::new(Rulesets::read(store, None).await?);
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
        let rulesets = Rulesets::read(store, Some(&current)).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExperimentSpec, LifecycleAction};
    use serde_json::json;
    use sluice_sdk::{ExperimentRule, Ruleset};

    fn running(key: &str, environments: &[&str], price: u32) -> Experiment {
        let spec: ExperimentSpec = serde_json::from_value(json!({
            "key": key,
            "variants": [{"key": "control", "weight": 0.5, "value": {"price": 199}},
                         {"key": "premium", "weight": 0.5, "value": {"price": price, "copy": "满99元包邮"}}],
            "condition": {"country": {"$in": ["CN", "US"]}},
            "environments": environments,
        }))
        .unwrap();
        let mut experiment = Experiment::new_draft(spec, 1_000);
        experiment.apply(&LifecycleAction::Start, 2_000).unwrap();
        experiment
    }

    fn changes(version: u64, changed: Vec<Experiment>) -> RulesetChanges {
        RulesetChanges {
            version,
            updated_at: 1_764_700_000_500,
            changed,
        }
    }

    #[test]
    fn prepared_bodies_are_what_serde_writes_for_the_whole_ruleset() {
        let experiments = vec![running("a-price", &[], 299), running("b-copy", &[], 249)];
        let source = changes(7, experiments.clone());
        let rulesets = Rulesets::build(&source, None);
        let snapshot = rulesets.environment("production");
        let rules: Vec<ExperimentRule> = experiments.iter().map(|e| e.to_rule()).collect();
        let expected = Ruleset {
            version: 7,
            experiments: rules.clone(),
        };
        assert_eq!(snapshot.body, serde_json::to_vec(&expected).unwrap());
        let mut digests = Sha256::new();
        for rule in &rules {
            digests.update(Sha256::digest(serde_json::to_vec(rule).unwrap()));
        }
        let etag = format!("\"{}\"", &hex(&digests.finalize())[..24]);
        assert_eq!(snapshot.etag, etag.as_str());
        let features: serde_json::Map<String, serde_json::Value> = rules
            .iter()
            .map(|r| (r.key.clone(), growthbook::feature(r)))
            .collect();
        let growthbook = json!({
            "status": 200,
            "features": features,
            "dateUpdated": growthbook::date_updated(source.updated_at),
        });
        assert_eq!(
            snapshot.growthbook,
            serde_json::to_vec(&growthbook).unwrap()
        );
    }

    #[test]
    fn a_change_to_one_experiment_prepares_that_one_again_only() {
        let experiments = vec![running("b", &["staging"], 249), running("a", &[], 249)];
        let before = Rulesets::build(&changes(1, experiments.clone()), None);
        let mut b = experiments[0].clone();
        b.revision += 1;
        b.spec.variants[1].value = json!({"price": 259});
        let after = Rulesets::build(&changes(2, vec![b]), Some(&before));
        assert!(Arc::ptr_eq(&before.prepared["a"], &after.prepared["a"]));
        assert!(!Arc::ptr_eq(&before.prepared["b"], &after.prepared["b"]));
        assert!(
            Arc::ptr_eq(
                before.environment("production"),
                after.environment("production")
            ),
            "production does not serve b: its snapshot, ETag and version stay"
        );
        let staging = after.environment("staging");
        assert_eq!(staging.version(), 2);
        assert_ne!(staging.etag, before.environment("staging").etag);
        assert!(String::from_utf8_lossy(&staging.body).contains("259"));
        let keys: Vec<&str> = staging.compiled.rules().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            ["a", "b"],
            "in key order, whatever order changes came in"
        );
    }
}

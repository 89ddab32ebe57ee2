//! The operations a team and its apps perform. Each one validates with the domain,
//! writes through the store (with its audit entry, in one transaction) and then
//! republishes the ruleset so connected SDKs see the change.

pub mod exposures;
pub mod guard;
pub mod ingest;
pub mod leader;
pub mod ruleset;
pub mod webhooks;

use std::sync::Arc;

use serde_json::Value;

use crate::domain::event::{validate_batch, EventInput, UnknownExposure};
use crate::domain::experiment::{merge_patch, ChangeRefused};
use crate::domain::validation::from_json;
use crate::domain::{
    format_millis, now_millis, ApiKey, AuditEntry, Experiment, ExperimentSpec, LifecycleAction,
    Metric, NewApiKey, NewAuditEntry, Role, ValidationError,
};
use crate::report::{self, Correction, Report, ReportInput};
use crate::store::{IngestOutcome, Store, StoreError};

pub use exposures::ExposureLog;
pub use ingest::{IngestClosed, IngestQueue};
pub use leader::Leadership;
pub use ruleset::{RulesetHub, RulesetSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The input is invalid; nothing was changed.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The change conflicts with the current state (lifecycle, frozen fields).
    #[error(transparent)]
    Refused(#[from] ChangeRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server is shutting down and takes no more events.
    #[error(transparent)]
    Unavailable(#[from] IngestClosed),
}

/// Who made a change, as the audit log names them.
pub type Actor<'a> = &'a str;

pub struct Control {
    store: Arc<dyn Store>,
    rulesets: RulesetHub,
    ingest: IngestQueue,
    exposures: Arc<ExposureLog>,
    leadership: Arc<Leadership>,
}

impl Control {
    pub fn new(
        store: Arc<dyn Store>,
        rulesets: RulesetHub,
        ingest: IngestQueue,
        exposures: Arc<ExposureLog>,
        leadership: Arc<Leadership>,
    ) -> Self {
        Self {
            store,
            rulesets,
            ingest,
            exposures,
            leadership,
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn rulesets(&self) -> &RulesetHub {
        &self.rulesets
    }

    pub fn exposures(&self) -> &ExposureLog {
        &self.exposures
    }

    pub fn leadership(&self) -> &Leadership {
        &self.leadership
    }

    pub async fn create_metric(&self, metric: Metric) -> Result<Metric, ControlError> {
        metric.validate()?;
        self.store.insert_metric(&metric).await?;
        Ok(metric)
    }

    pub async fn get_metric(&self, key: &str) -> Result<Metric, ControlError> {
        self.store
            .get_metric(key)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("metric {key:?}")))
    }

    pub async fn create_experiment(
        &self,
        spec: ExperimentSpec,
        actor: Actor<'_>,
    ) -> Result<Experiment, ControlError> {
        self.validate(&spec).await?;
        let now = now_millis();
        let experiment = Experiment::new_draft(spec, now);
        let audit = audit_entry(actor, "create", None, &experiment, now);
        self.store.insert_experiment(&experiment, &audit).await?;
        self.republish().await;
        Ok(experiment)
    }

    pub async fn get_experiment(&self, key: &str) -> Result<Experiment, ControlError> {
        self.store
            .get_experiment(key)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("experiment {key:?}")))
    }

    /// Applies a JSON merge patch to the definition. Status, key and timestamps are
    /// not patchable; a running experiment may ramp but not reshuffle users.
    pub async fn patch_experiment(
        &self,
        key: &str,
        patch: &Value,
        actor: Actor<'_>,
    ) -> Result<Experiment, ControlError> {
        let current = self.get_experiment(key).await?;
        let spec = patched_spec(&current, patch)?;
        self.validate(&spec).await?;
        let mut next = current.clone();
        next.redefine(spec, now_millis())?;
        self.save(current, next, "update", actor, None).await
    }

    pub async fn act(
        &self,
        key: &str,
        action: LifecycleAction,
        actor: Actor<'_>,
    ) -> Result<Experiment, ControlError> {
        let current = self.get_experiment(key).await?;
        if let LifecycleAction::Ship { variant } = &action {
            if !current.has_variant(variant) {
                return Err(ValidationError::single(
                    "variant",
                    "is not a variant of this experiment",
                )
                .into());
            }
        }
        let mut next = current.clone();
        next.apply(&action, now_millis())?;
        self.save(current, next, action.name(), actor, None).await
    }

    pub async fn audit_log(&self, key: &str) -> Result<Vec<AuditEntry>, ControlError> {
        self.get_experiment(key).await?;
        Ok(self.store.audit_log(key).await?)
    }

    pub async fn create_api_key(
        &self,
        role: Role,
        name: Option<String>,
        environment: Option<String>,
    ) -> Result<(String, ApiKey), ControlError> {
        let key = NewApiKey::generate(role, name, environment);
        let stored = self.store.insert_api_key(&key).await?;
        Ok((key.secret, stored))
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, ControlError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key at once on this server's store; servers that cached it keep
    /// accepting it for at most their cache lifetime.
    pub async fn revoke_api_key(&self, id: i64, actor: Actor<'_>) -> Result<(), ControlError> {
        if !self.store.revoke_api_key(id, now_millis()).await? {
            return Err(ControlError::NotFound(format!("API key {id}")));
        }
        tracing::info!(key = id, actor, "API key revoked");
        Ok(())
    }

    /// Validates a whole batch against the served experiments, then stores it.
    pub async fn ingest(&self, inputs: Vec<EventInput>) -> Result<IngestOutcome, ControlError> {
        let snapshot = self.rulesets.current();
        let events = validate_batch(inputs, now_millis(), |experiment, variant| {
            let served = snapshot
                .served
                .get(experiment)
                .ok_or(UnknownExposure::Experiment)?;
            if served.variants.iter().any(|v| v == variant) {
                Ok(served.dimensions.as_slice())
            } else {
                Err(UnknownExposure::Variant)
            }
        })?;
        Ok(self.ingest.submit(events).await??)
    }

    /// The significance report of an experiment.
    pub async fn report(&self, key: &str, options: ReportOptions) -> Result<Report, ControlError> {
        experiment_report(self.store.as_ref(), key, options).await
    }

    async fn validate(&self, spec: &ExperimentSpec) -> Result<(), ControlError> {
        let metrics = self.store.list_metrics().await?;
        spec.validate(|key| metrics.iter().any(|m| m.key == key))?;
        Ok(())
    }

    /// Writes a changed experiment if nobody changed it since `before` was read,
    /// with its audit entry (and the evidence an automatic change decided on), then
    /// republishes the ruleset.
    pub(crate) async fn save(
        &self,
        before: Experiment,
        after: Experiment,
        action: &str,
        actor: Actor<'_>,
        evidence: Option<serde_json::Value>,
    ) -> Result<Experiment, ControlError> {
        let mut audit = audit_entry(actor, action, Some(&before), &after, after.updated_at);
        audit.evidence = evidence;
        self.store
            .update_experiment(&after, before.revision, &audit)
            .await?;
        self.republish().await;
        Ok(after)
    }

    /// Rebuilds the ruleset after a committed change. The change is already durable,
    /// so a failure here is logged, not returned: the next change or restart
    /// republishes.
    pub async fn republish(&self) {
        if let Err(err) = self.rulesets.refresh(self.store.as_ref()).await {
            tracing::error!(error = %err, "republishing the ruleset failed");
        }
    }
}

/// The significance report of an experiment, from the per-variant totals: reads
/// O(variants × metrics) rows whatever the number of users or events.
pub async fn experiment_report(
    store: &dyn Store,
    key: &str,
    options: ReportOptions,
) -> Result<Report, ControlError> {
    let experiment = store
        .get_experiment(key)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("experiment {key:?}")))?;
    let defined = store.list_metrics().await?;
    let spec = &experiment.spec;
    let mut keys: Vec<&str> = spec.primary_metric.iter().map(String::as_str).collect();
    keys.extend(spec.secondary_metrics.iter().map(String::as_str));
    keys.extend(spec.guardrails.iter().map(|g| g.metric.as_str()));
    let mut metrics: Vec<(Metric, _)> = Vec::new();
    for metric_key in keys {
        if metrics.iter().any(|(m, _)| m.key == metric_key) {
            continue;
        }
        let Some(metric) = defined.iter().find(|m| m.key == metric_key) else {
            continue;
        };
        let totals = store.variant_totals(key, &metric.event).await?;
        metrics.push((metric.clone(), totals));
    }
    let exposures = store.exposure_summary(key).await?;
    let breakdown = match &options.dimension {
        None => None,
        Some(dimension) => Some(segments(store, &experiment, dimension, &metrics).await?),
    };
    let series = if options.daily_series {
        Some(daily_series(store, &experiment, &metrics).await?)
    } else {
        None
    };
    let mut report = report::build(ReportInput {
        experiment: &experiment,
        metrics,
        exposures,
        correction: options.correction,
        generated_at: format_millis(now_millis()),
    });
    report.series = series;
    report.breakdown = breakdown;
    Ok(report)
}

/// What a report includes beyond the default.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub correction: Option<Correction>,
    /// A dimension the experiment keeps, to break results down by.
    pub dimension: Option<String>,
    /// Cumulative effects per day; reads users and events, so it costs more.
    pub daily_series: bool,
}

async fn segments(
    store: &dyn Store,
    experiment: &Experiment,
    dimension: &str,
    metrics: &[(Metric, Vec<crate::store::VariantTotals>)],
) -> Result<report::breakdown::Breakdown, ControlError> {
    if !experiment.spec.dimensions.iter().any(|d| d == dimension) {
        let kept = experiment.spec.dimensions.join(", ");
        let problem = format!("is not kept by this experiment (its dimensions: [{kept}])");
        return Err(ValidationError::single("dimension", problem).into());
    }
    let mut data = Vec::new();
    for (metric, _) in metrics {
        let rows = store
            .segment_totals(experiment.key(), dimension, &metric.event)
            .await?;
        data.push((metric.clone(), rows));
    }
    Ok(report::breakdown::build(experiment, dimension, &data))
}

async fn daily_series(
    store: &dyn Store,
    experiment: &Experiment,
    metrics: &[(Metric, Vec<crate::store::VariantTotals>)],
) -> Result<Vec<report::series::SeriesPoint>, ControlError> {
    let users = store.exposed_users(experiment.key()).await?;
    let variants: Vec<String> = experiment
        .spec
        .variants
        .iter()
        .map(|v| v.key.clone())
        .collect();
    let mut points = Vec::new();
    for (metric, _) in metrics {
        let tracks = store
            .tracks_since_exposure(experiment.key(), &metric.event)
            .await?;
        let settings = report::settings(experiment, metric);
        points.extend(report::series::daily(
            metric, &variants, &users, &tracks, &settings,
        ));
    }
    Ok(points)
}

fn patched_spec(current: &Experiment, patch: &Value) -> Result<ExperimentSpec, ControlError> {
    if !patch.is_object() {
        return Err(ValidationError::single("", "a patch must be a JSON object").into());
    }
    if patch
        .get("key")
        .is_some_and(|key| key.as_str() != Some(current.key()))
    {
        return Err(ValidationError::single("key", "cannot be changed").into());
    }
    let status = current.status.as_str();
    if patch
        .get("status")
        .is_some_and(|s| s.as_str() != Some(status))
    {
        return Err(ChangeRefused::StatusViaPatch.into());
    }
    let mut document = serde_json::to_value(&current.spec).unwrap_or_default();
    merge_patch(&mut document, patch);
    Ok(from_json(document)?)
}

fn audit_entry(
    actor: Actor<'_>,
    action: &str,
    before: Option<&Experiment>,
    after: &Experiment,
    at: crate::domain::Millis,
) -> NewAuditEntry {
    NewAuditEntry {
        experiment: after.key().to_owned(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        before: before.and_then(|e| serde_json::to_value(e).ok()),
        after: serde_json::to_value(after).ok(),
        evidence: None,
        at,
    }
}

/// Resolves when the server begins to shut down.
pub(crate) async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

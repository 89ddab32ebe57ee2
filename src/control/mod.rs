//! The operations a team and its apps perform. Each one validates with the domain,
//! writes through the store (with its audit entry, in one transaction) and then
//! republishes the ruleset so connected SDKs see the change.

pub mod backfill;
pub mod exposures;
mod growthbook;
pub mod guard;
pub mod ingest;
pub mod keys;
pub mod leader;
pub mod notify;
pub mod planning;
pub mod report_query;
mod report_ready;
pub mod retention;
pub mod ruleset;
pub mod sessions;
mod summary;
pub mod webhooks;

use std::sync::Arc;

use serde_json::Value;

use crate::domain::event::{
    validate_batch, Clock, EventInput, NotCounted, ServedFacts, SkippedEvent,
};
use crate::domain::experiment::{merge_patch, ChangeRefused, Known};
use crate::domain::key::RoleRefused;
use crate::domain::shaped::ShapedPlan;
use crate::domain::totals::{
    ExposureSummary, PairedTotals, SegmentKey, SegmentMetrics, ShapedTotals, UserFilter,
};
use crate::domain::validation::{from_json_exact, is_storable, Problems, NUL_RULE};
use crate::domain::webhook::{Delivery, NewWebhook, Webhook};
use crate::domain::{
    format_millis, now_millis, Actor, ApiKey, AuditAction, AuditEntry, AuditSubject, Environment,
    Experiment, ExperimentSpec, LifecycleAction, Metric, MetricKind, Millis, NewAuditEntry,
    ValidationError,
};
use crate::report::breakdown::SegmentRows;
use crate::report::{self, Analysis, Correction, MetricTotals, Report, ReportError, ReportInput};
use crate::store::{IngestOutcome, Store, StoreError, StoreErrorKind};

pub use exposures::ExposureLog;
pub use guard::GuardHealth;
pub use ingest::{IngestClosed, IngestQueue};
pub use keys::{KeyRequest, Keys};
pub use leader::Leadership;
pub use notify::PublicUrl;
pub use report_query::{ReportFormat, ReportQuery};
pub use retention::Retention;
pub use ruleset::{RulesetHub, RulesetSnapshot, Rulesets};
pub use sessions::Sessions;
pub use summary::Summary;

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
    /// No unrevoked key has this secret.
    #[error("unknown API key")]
    UnknownKey,
    /// The dashboard session expired, signed out, or its key was revoked.
    #[error("no such session")]
    NoSession,
    /// The key's role does not allow this.
    #[error(transparent)]
    Forbidden(#[from] RoleRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored data cannot make a report.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The server is shutting down and takes no more events.
    #[error(transparent)]
    Unavailable(#[from] IngestClosed),
}

/// What kind of failure a [`ControlError`] is: what the HTTP layers branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlErrorKind {
    /// Bad input; nothing changed.
    Invalid,
    NotFound,
    /// The lifecycle or a frozen field forbids the change.
    Refused,
    AlreadyExists,
    /// Someone else changed it first: read again and retry.
    ConcurrentChange,
    UnknownKey,
    NoSession,
    Forbidden,
    /// The database cannot be reached: retry later.
    DatabaseUnavailable,
    /// The server is shutting down.
    ShuttingDown,
    /// A bug, a corrupt row or a refused statement: the log has the details.
    Internal,
}

impl ControlError {
    pub fn kind(&self) -> ControlErrorKind {
        match self {
            ControlError::Invalid(_) => ControlErrorKind::Invalid,
            ControlError::NotFound(_) => ControlErrorKind::NotFound,
            ControlError::Refused(_) => ControlErrorKind::Refused,
            ControlError::UnknownKey => ControlErrorKind::UnknownKey,
            ControlError::NoSession => ControlErrorKind::NoSession,
            ControlError::Forbidden(_) => ControlErrorKind::Forbidden,
            ControlError::Unavailable(_) => ControlErrorKind::ShuttingDown,
            ControlError::Report(_) => ControlErrorKind::Internal,
            ControlError::Store(err) => match err.kind() {
                StoreErrorKind::AlreadyExists => ControlErrorKind::AlreadyExists,
                StoreErrorKind::Conflict => ControlErrorKind::ConcurrentChange,
                StoreErrorKind::NotFound => ControlErrorKind::NotFound,
                StoreErrorKind::Unavailable => ControlErrorKind::DatabaseUnavailable,
                StoreErrorKind::Configuration
                | StoreErrorKind::Corrupt
                | StoreErrorKind::Internal => ControlErrorKind::Internal,
            },
        }
    }
}

pub struct Control {
    store: Arc<dyn Store>,
    rulesets: RulesetHub,
    ingest: IngestQueue,
    exposures: Arc<ExposureLog>,
    leadership: Arc<Leadership>,
    keys: Keys,
    sessions: Sessions,
    guard_health: GuardHealth,
    frozen_ramps: guard::FrozenRamps,
    /// How far ahead of this server's clock an event may be stamped.
    max_event_skew: Millis,
    retention: Retention,
    /// Wakes the rebuilder of shaped metrics (see [`backfill`]).
    backfill_wake: Arc<tokio::sync::Notify>,
}

impl Control {
    pub fn new(
        store: Arc<dyn Store>,
        rulesets: RulesetHub,
        ingest: IngestQueue,
        exposures: Arc<ExposureLog>,
        leadership: Arc<Leadership>,
        max_event_skew: Millis,
        retention: Retention,
    ) -> Self {
        Self {
            keys: Keys::new(store.clone()),
            sessions: Sessions::new(store.clone()),
            store,
            rulesets,
            ingest,
            exposures,
            leadership,
            guard_health: GuardHealth::default(),
            frozen_ramps: guard::FrozenRamps::default(),
            max_event_skew,
            retention,
            backfill_wake: Arc::default(),
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

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Signs in to the dashboard with a key's secret: the new session's secret.
    pub async fn open_session(&self, key_secret: &str) -> Result<(String, ApiKey), ControlError> {
        self.sessions.open(&self.keys, key_secret).await
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// How the guard loop is doing: its last pass and its failures.
    pub fn guard_health(&self) -> &GuardHealth {
        &self.guard_health
    }

    pub async fn list_metrics(&self) -> Result<Vec<Metric>, ControlError> {
        Ok(self.store.list_metrics().await?)
    }

    pub async fn create_metric(&self, metric: Metric) -> Result<Metric, ControlError> {
        metric.validate()?;
        if metric.kind == MetricKind::Ratio {
            let defined = self.store.list_metrics().await?;
            metric.validate_parts(&|key| defined.iter().find(|m| m.key == key).cloned())?;
        }
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
        actor: &Actor,
    ) -> Result<Experiment, ControlError> {
        self.validate(&spec).await?;
        let now = now_millis();
        let experiment = Experiment::new_draft(spec, now);
        let audit =
            NewAuditEntry::for_experiment(actor, AuditAction::Create, None, &experiment, now);
        self.store.insert_experiment(&experiment, &audit).await?;
        self.republish().await;
        Ok(experiment)
    }

    pub async fn list_experiments(&self) -> Result<Vec<Experiment>, ControlError> {
        Ok(self.store.list_experiments().await?)
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
        actor: &Actor,
    ) -> Result<Experiment, ControlError> {
        let current = self.get_experiment(key).await?;
        let spec = patched_spec(&current, patch)?;
        self.validate(&spec).await?;
        let mut next = current.clone();
        next.redefine(spec, now_millis())?;
        let saved = self
            .save(current, next, AuditAction::Update, actor, None)
            .await?;
        self.wake_backfill();
        Ok(saved)
    }

    /// Whether users have been exposed to an experiment: a change to its shaped
    /// metrics or CUPED then rebuilds their values from the raw events.
    pub async fn has_exposures(&self, key: &str) -> Result<bool, ControlError> {
        let exposed = self
            .store
            .exposure_summary(key, &UserFilter::EVERYONE)
            .await?;
        Ok(exposed.anyone())
    }

    pub async fn act(
        &self,
        key: &str,
        action: LifecycleAction,
        actor: &Actor,
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
        self.save(current, next, AuditAction::from(&action), actor, None)
            .await
    }

    pub async fn audit_log(&self, key: &str) -> Result<Vec<AuditEntry>, ControlError> {
        self.get_experiment(key).await?;
        Ok(self.store.audit_log(key).await?)
    }

    /// The latest changes to the settings (API keys, webhooks, environments),
    /// newest first.
    pub async fn settings_audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, ControlError> {
        Ok(self.store.settings_audit_log(limit).await?)
    }

    pub async fn list_environments(&self) -> Result<Vec<Environment>, ControlError> {
        Ok(self.store.list_environments().await?)
    }

    pub async fn create_environment(
        &self,
        mut environment: Environment,
        actor: &Actor,
    ) -> Result<Environment, ControlError> {
        environment.validate()?;
        if environment.name.trim().is_empty() {
            environment.name = environment.key.clone();
        }
        let audit = settings_entry(
            AuditSubject::Environment(environment.key.clone()),
            actor,
            AuditAction::EnvironmentCreate,
            serde_json::to_value(&environment).ok(),
            now_millis(),
        );
        self.store.insert_environment(&environment, &audit).await?;
        Ok(environment)
    }

    /// Erases everything stored about a user (their events, aggregates and part of
    /// the running totals); the audit entry names the user by a hash of the id.
    /// Returns how many events were erased.
    pub async fn erase_user(&self, user: &str, actor: &Actor) -> Result<u64, ControlError> {
        if user.is_empty() {
            return Err(ValidationError::single("user", "must not be empty").into());
        }
        if !is_storable(user) {
            return Err(ValidationError::single("user", NUL_RULE).into());
        }
        let audit = settings_entry(
            AuditSubject::User(crate::domain::key::hash_secret(user)),
            actor,
            AuditAction::UserErase,
            None,
            now_millis(),
        );
        let stored = self.ingest.stored_user_id(user);
        Ok(self.store.erase_user(&stored, &audit).await?)
    }

    /// Subscribes a URL to changes.
    pub async fn create_webhook(
        &self,
        hook: NewWebhook,
        actor: &Actor,
    ) -> Result<Webhook, ControlError> {
        hook.validate()?;
        let after =
            serde_json::json!({"url": hook.url, "events": hook.events, "format": hook.format});
        let at = now_millis();
        let audit = |id| {
            settings_entry(
                AuditSubject::Webhook(id),
                actor,
                AuditAction::WebhookCreate,
                Some(after.clone()),
                at,
            )
        };
        Ok(self.store.insert_webhook(&hook, &audit).await?)
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, ControlError> {
        Ok(self.store.list_webhooks().await?)
    }

    pub async fn get_webhook(&self, id: i64) -> Result<Webhook, ControlError> {
        self.list_webhooks()
            .await?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or_else(|| ControlError::NotFound(format!("webhook {id}")))
    }

    /// Deletes a webhook and its delivery log.
    pub async fn delete_webhook(&self, id: i64, actor: &Actor) -> Result<(), ControlError> {
        let audit = settings_entry(
            AuditSubject::Webhook(id),
            actor,
            AuditAction::WebhookDelete,
            None,
            now_millis(),
        );
        if self.store.delete_webhook(id, &audit).await? {
            Ok(())
        } else {
            Err(ControlError::NotFound(format!("webhook {id}")))
        }
    }

    /// A webhook's deliveries, newest first.
    pub async fn webhook_deliveries(&self, id: i64) -> Result<Vec<Delivery>, ControlError> {
        Ok(self.store.webhook_deliveries(id).await?)
    }

    /// Validates a whole batch against what `environment` is served, then stores
    /// it; exposures for experiments or variants not served there are skipped.
    pub async fn ingest(
        &self,
        environment: &str,
        inputs: Vec<EventInput>,
    ) -> Result<Ingested, ControlError> {
        let rulesets = self.rulesets.current();
        let snapshot = rulesets.environment(environment);
        let now = now_millis();
        let clock = Clock {
            now,
            max_skew: self.max_event_skew,
            kept_from: self.retention.kept_from(now),
        };
        let batch = validate_batch(inputs, clock, |experiment, variant| {
            let served = snapshot
                .served
                .get(experiment)
                .ok_or(NotCounted::Experiment)?;
            if served.variants.iter().any(|v| v == variant) {
                Ok(ServedFacts {
                    dimensions: &served.dimensions,
                    exposed_from: served.exposed_from,
                })
            } else {
                Err(NotCounted::Variant)
            }
        })?;
        let stored = if batch.events.is_empty() {
            IngestOutcome::default()
        } else {
            self.ingest.submit(batch.events).await??
        };
        Ok(Ingested {
            stored,
            skipped: batch.skipped,
        })
    }

    /// The significance report of an experiment.
    pub async fn report(&self, key: &str, options: ReportOptions) -> Result<Report, ControlError> {
        experiment_report(self.store.as_ref(), key, options).await
    }

    /// The report of each experiment, in the order given, from the running totals
    /// of all of them read at once: the number of statements does not grow with the
    /// number of experiments.
    pub async fn summaries(
        &self,
        experiments: Vec<Experiment>,
        filter: &UserFilter,
    ) -> Result<Vec<Summary>, ControlError> {
        summary::summarize(self.store.as_ref(), experiments, filter).await
    }

    /// How many users have been exposed to each variant of an experiment (from the
    /// running totals).
    pub async fn exposure_summary(&self, key: &str) -> Result<ExposureSummary, ControlError> {
        Ok(self
            .store
            .exposure_summary(key, &UserFilter::EVERYONE)
            .await?)
    }

    /// Per dimension the experiment keeps, the values its users have shown, the
    /// most common first: what a report's segments may pick from.
    pub async fn kept_values(
        &self,
        experiment: &Experiment,
    ) -> Result<Vec<(String, Vec<String>)>, ControlError> {
        let mut kept = Vec::with_capacity(experiment.spec.dimensions.len());
        for dimension in &experiment.spec.dimensions {
            let values = self
                .store
                .kept_values(experiment.key(), dimension, MAX_KEPT_VALUES)
                .await?;
            kept.push((dimension.clone(), values));
        }
        Ok(kept)
    }

    async fn validate(&self, spec: &ExperimentSpec) -> Result<(), ControlError> {
        let metrics = self.store.list_metrics().await?;
        let environments = self.store.list_environments().await?;
        spec.validate(&Known {
            metric: &|key| metrics.iter().any(|m| m.key == key),
            environment: &|key| environments.iter().any(|e| e.key == key),
        })?;
        Ok(())
    }

    /// Writes a changed experiment if nobody changed it since `before` was read,
    /// with its audit entry (and the evidence an automatic change decided on), then
    /// republishes the ruleset.
    pub(crate) async fn save(
        &self,
        before: Experiment,
        after: Experiment,
        action: AuditAction,
        actor: &Actor,
        evidence: Option<serde_json::Value>,
    ) -> Result<Experiment, ControlError> {
        let mut audit =
            NewAuditEntry::for_experiment(actor, action, Some(&before), &after, after.updated_at);
        audit.evidence = evidence;
        self.store
            .update_experiment(&after, before.revision, &audit)
            .await?;
        self.republish().await;
        Ok(after)
    }

    /// Rebuilds the ruleset after a committed change. The change is already durable,
    /// so a failure here is not returned: it is logged and retried by the follower
    /// ([`ruleset::follow_changes`]) until it succeeds.
    pub async fn republish(&self) {
        if let Err(err) = self.rulesets.refresh(self.store.as_ref()).await {
            tracing::error!(error = %err, "republishing the ruleset failed; retrying");
            self.rulesets.retry_soon();
        }
    }
}

/// The significance report of an experiment. For every user it reads the running
/// totals, O(variants × metrics) rows whatever the number of users or events; a
/// filter, a breakdown or a series reads per-user rows. Every part of the report
/// counts the same users: those the filter picks.
pub async fn experiment_report(
    store: &dyn Store,
    key: &str,
    options: ReportOptions,
) -> Result<Report, ControlError> {
    let experiment = store
        .get_experiment(key)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("experiment {key:?}")))?;
    check_report_options(&experiment, &options)?;
    let filter = &options.filter;
    let defined = store.list_metrics().await?;
    let metrics = report_metrics(&experiment, &defined);
    let plan = ShapedPlan::of(&experiment.spec, &defined);
    let shaped = match &plan {
        Some(_) => store.paired_totals(key, filter).await?,
        None => ShapedTotals::default(),
    };
    let mut paired = shaped.metrics;
    let mut with_totals = Vec::with_capacity(metrics.len());
    for metric in metrics {
        let totals = match shaped_analysis(&experiment, plan.as_ref(), &metric, &defined) {
            Some(analysis) => {
                let at = paired.iter().position(|(m, _)| *m == metric.key);
                let totals = at.map(|at| paired.swap_remove(at).1).unwrap_or_default();
                MetricTotals::Paired(analysis, totals)
            }
            None => MetricTotals::Running(store.variant_totals(key, &metric.event, filter).await?),
        };
        with_totals.push((metric, totals));
    }
    let analyses: Vec<(&Metric, Option<Analysis>)> = with_totals
        .iter()
        .map(|(metric, totals)| match totals {
            MetricTotals::Running(_) => (metric, None),
            MetricTotals::Paired(analysis, _) => (metric, Some(*analysis)),
        })
        .collect();
    let exposures = store.exposure_summary(key, filter).await?;
    let breakdown = if options.dimensions.is_empty() {
        None
    } else {
        Some(segments(store, &experiment, &options, &analyses).await?)
    };
    let series = if options.daily_series {
        Some(daily_series(store, &experiment, filter, plan.as_ref(), &analyses).await?)
    } else {
        None
    };
    let mut report = report::build(ReportInput {
        experiment: &experiment,
        metrics: with_totals,
        exposures,
        correction: options.correction,
        generated_at: format_millis(now_millis()),
    })?;
    report.filter = (!filter.is_everyone()).then(|| report::FilterEcho::of(filter));
    report.series = series;
    report.breakdown = breakdown;
    report.backfill = shaped
        .backfill
        .zip(plan)
        .map(|(backfill, plan)| report::BackfillReport::of(&backfill, &plan, &report.metrics));
    Ok(report)
}

/// The metrics an experiment reports, in report order (primary, secondary,
/// guardrails), each once; keys with no definition are left out.
fn report_metrics(experiment: &Experiment, defined: &[Metric]) -> Vec<Metric> {
    let mut metrics: Vec<Metric> = Vec::new();
    for key in experiment.spec.metric_keys() {
        if metrics.iter().any(|m| m.key == key) {
            continue;
        }
        if let Some(metric) = defined.iter().find(|m| m.key == key) {
            metrics.push(metric.clone());
        }
    }
    metrics
}

/// How a metric the experiment's shaped `plan` keeps is analysed: as the ratio of
/// its parts, with CUPED when the experiment has a covariate, or plainly; `None`
/// for a per-event metric, read from the running totals.
fn shaped_analysis(
    experiment: &Experiment,
    plan: Option<&ShapedPlan>,
    metric: &Metric,
    defined: &[Metric],
) -> Option<Analysis> {
    if !plan.is_some_and(|plan| plan.covers(&metric.key)) {
        return None;
    }
    let kind_of = |key: &Option<String>| {
        defined
            .iter()
            .find(|m| Some(&m.key) == key.as_ref())
            .map_or(MetricKind::Mean, |m| m.kind)
    };
    Some(if metric.kind == MetricKind::Ratio {
        Analysis::Ratio(kind_of(&metric.numerator), kind_of(&metric.denominator))
    } else if experiment.spec.cuped.is_some() {
        Analysis::Cuped(metric.kind)
    } else {
        Analysis::Plain(metric.kind)
    })
}

/// Breakdowns and segments may only name dimensions the experiment keeps.
fn check_report_options(
    experiment: &Experiment,
    options: &ReportOptions,
) -> Result<(), ValidationError> {
    let kept = &experiment.spec.dimensions;
    let not_kept = || {
        format!(
            "is not kept by this experiment (its dimensions: [{}])",
            kept.join(", ")
        )
    };
    let mut problems = Problems::default();
    problems.check(
        options.dimensions.len() <= MAX_BREAKDOWN_DIMENSIONS,
        "dimension",
        format!("names at most {MAX_BREAKDOWN_DIMENSIONS} dimensions"),
    );
    for (i, dimension) in options.dimensions.iter().enumerate() {
        problems.check(
            kept.contains(dimension),
            "dimension",
            format!("{dimension:?} {}", not_kept()),
        );
        problems.check(
            !options.dimensions[..i].contains(dimension),
            "dimension",
            format!("names {dimension:?} twice"),
        );
    }
    for (dimension, _) in &options.filter.segments {
        problems.check(
            kept.contains(dimension),
            "segment",
            format!("{dimension:?} {}", not_kept()),
        );
    }
    problems.into_result()
}

/// What became of a batch of events.
#[derive(Debug)]
pub struct Ingested {
    pub stored: IngestOutcome,
    /// Well-formed events that are not counted.
    pub skipped: Vec<SkippedEvent>,
}

/// A breakdown crosses at most this many kept dimensions.
pub const MAX_BREAKDOWN_DIMENSIONS: usize = 2;

/// At most this many values of one kept dimension are offered to pick a segment.
const MAX_KEPT_VALUES: u32 = 50;

/// What a report includes beyond the default.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub correction: Option<Correction>,
    /// The users counted (everyone by default).
    pub filter: UserFilter,
    /// Up to two dimensions the experiment keeps, to break results down by.
    pub dimensions: Vec<String>,
    /// Cumulative effects per day; reads users and events, so it costs more.
    pub daily_series: bool,
}

async fn segments(
    store: &dyn Store,
    experiment: &Experiment,
    options: &ReportOptions,
    metrics: &[(&Metric, Option<Analysis>)],
) -> Result<report::breakdown::Breakdown, ControlError> {
    let (key, dimensions, filter) = (experiment.key(), &options.dimensions, &options.filter);
    let mut shaped = if metrics.iter().any(|(_, analysis)| analysis.is_some()) {
        store.segment_paired(key, dimensions, filter).await?
    } else {
        Vec::new()
    };
    let mut data = Vec::new();
    for (metric, analysis) in metrics {
        let rows = match analysis {
            None => SegmentRows::Running(
                store
                    .segment_totals(key, dimensions, &metric.event, filter)
                    .await?,
            ),
            Some(analysis) => SegmentRows::Paired(*analysis, take_metric(&mut shaped, &metric.key)),
        };
        data.push(((*metric).clone(), rows));
    }
    Ok(report::breakdown::build(
        experiment,
        &options.dimensions,
        &data,
    ))
}

/// One shaped metric's per-variant totals in each segment, taken out of every
/// segment's metrics.
fn take_metric(segments: &mut [SegmentMetrics], metric: &str) -> Vec<(SegmentKey, PairedTotals)> {
    let mut rows = Vec::new();
    for (key, metrics) in segments.iter_mut() {
        if let Some(at) = metrics.iter().position(|(m, _)| m == metric) {
            let (_, totals) = metrics.swap_remove(at);
            rows.extend(totals.into_iter().map(|t| (key.clone(), t)));
        }
    }
    rows
}

async fn daily_series(
    store: &dyn Store,
    experiment: &Experiment,
    filter: &UserFilter,
    plan: Option<&ShapedPlan>,
    metrics: &[(&Metric, Option<Analysis>)],
) -> Result<Vec<report::series::SeriesPoint>, ControlError> {
    let users = store.exposed_users(experiment.key(), filter).await?;
    let variants: Vec<String> = experiment
        .spec
        .variants
        .iter()
        .map(|v| v.key.clone())
        .collect();
    let mut points = Vec::new();
    let mut shaped = Vec::new();
    for (metric, analysis) in metrics {
        let settings = report::settings(experiment, metric);
        if let Some(analysis) = analysis {
            shaped.push(report::series::ShapedSeries {
                metric,
                analysis: *analysis,
                settings,
            });
            continue;
        }
        let tracks = store
            .tracks_since_exposure(experiment.key(), &metric.event, filter)
            .await?;
        points.extend(report::series::daily(
            metric, &variants, &users, &tracks, &settings,
        ));
    }
    if let (Some(plan), false) = (plan, shaped.is_empty()) {
        let events: Vec<&str> = plan.bases.iter().map(|b| b.event.as_str()).collect();
        let tracks = store
            .tracks_around_exposure(experiment.key(), &events, plan.lookback(), filter)
            .await?;
        points.extend(report::series::shaped_daily(
            plan,
            &shaped,
            &variants,
            &users,
            &tracks,
            now_millis(),
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
    // A whole experiment sent back (GET, edit, PATCH) carries its read-only fields:
    // they are not typos, and the checks above kept them from changing anything.
    if let Some(fields) = document.as_object_mut() {
        for field in Experiment::READ_ONLY_FIELDS {
            fields.remove(*field);
        }
    }
    Ok(from_json_exact(document)?)
}

/// An audit entry about an API key or a webhook.
fn settings_entry(
    subject: AuditSubject,
    actor: &Actor,
    action: AuditAction,
    after: Option<Value>,
    at: Millis,
) -> NewAuditEntry {
    NewAuditEntry {
        subject,
        actor: actor.clone(),
        action,
        before: None,
        after,
        evidence: None,
        at,
    }
}

/// Resolves when the server begins to shut down.
pub(crate) async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
